//! Query parameters shared by the dashboard and the API, with the API's names, so a view's URL
//! can be shared and turned into an API call.

use flowmeter_core::{Scope, Window};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::View;

/// Default window of the dashboard, in days, ending with the data's last day.
pub const DEFAULT_DAYS: i64 = 90;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    pub from: Option<String>,
    pub to: Option<String>,
    pub days: Option<String>,
    pub repo: Option<String>,
    pub service: Option<String>,
    pub team: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// A list page's page number, from 1.
    pub page: Option<String>,
    /// An ISO week (`2026-W47`), on the digest page.
    pub week: Option<String>,
    /// A range of ISO weeks (`2026-W40..2026-W47`), on the capitalization export.
    pub weeks: Option<String>,
    /// How many months a trend page covers: 6, 12 or 24.
    pub months: Option<String>,
    /// `csv`: a trend page's numbers as CSV.
    pub format: Option<String>,
    /// The column a table is sorted by, and `asc` or `desc`.
    pub sort: Option<String>,
    pub order: Option<String>,
}

/// A form field left empty means "not given".
pub(crate) fn given(value: &Option<String>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Filters {
    pub fn scope(&self) -> Scope {
        Scope {
            repo: given(&self.repo),
            service: given(&self.service),
            team: given(&self.team),
        }
    }

    /// Where a default is allowed: the last `days` days up to the data's last day when `days`
    /// is given, else `from` and `to` (both or neither), else the last 90 days. Where the window
    /// is required (the API): `from` and `to`.
    pub fn window(&self, view: &View, required: bool) -> Result<Window, ApiError> {
        self.window_ending(view.data_end, required)
    }

    /// [`Filters::window`] for data whose last day is `data_end`.
    pub fn window_ending(
        &self,
        data_end: chrono::NaiveDate,
        required: bool,
    ) -> Result<Window, ApiError> {
        // A window picked by length (the dashboard's list) wins over dates left in the form.
        let (from, to) = if given(&self.days).is_some() && !required {
            (None, None)
        } else {
            (given(&self.from), given(&self.to))
        };
        match (from, to) {
            (Some(from), Some(to)) => Ok(Window::parse(&from, &to)?),
            (None, Some(_)) => Err(ApiError::bad_request(
                "from",
                "missing (give both from and to)",
            )),
            (Some(_), None) => Err(ApiError::bad_request(
                "to",
                "missing (give both from and to)",
            )),
            (None, None) if required => Err(ApiError::bad_request("from", "missing")),
            (None, None) => {
                let days = match given(&self.days) {
                    None => DEFAULT_DAYS,
                    Some(d) => d
                        .parse::<i64>()
                        .ok()
                        .filter(|d| (1..=3660).contains(d))
                        .ok_or_else(|| {
                            ApiError::bad_request("days", format!("'{d}' is not a number of days"))
                        })?,
                };
                let from = data_end
                    .checked_sub_signed(chrono::Duration::days(days))
                    .unwrap_or(chrono::NaiveDate::MIN);
                Ok(Window::new(from, data_end)?)
            }
        }
    }

    /// Page size: 1 to 1000, default 100.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match given(&self.limit) {
            None => Ok(100),
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "limit",
                        format!("'{l}' is not a whole number from 1 to 1000"),
                    )
                }),
        }
    }

    /// A list page's page number: from 1, default 1.
    pub fn page(&self) -> Result<usize, ApiError> {
        match given(&self.page) {
            None => Ok(1),
            Some(p) => p
                .parse::<usize>()
                .ok()
                .filter(|p| (1..=1_000_000).contains(p))
                .ok_or_else(|| {
                    ApiError::bad_request("page", format!("'{p}' is not a page number"))
                }),
        }
    }

    /// The opaque position after which a page starts.
    pub fn cursor(&self) -> Result<Option<String>, ApiError> {
        match given(&self.cursor) {
            None => Ok(None),
            Some(c) => decode_cursor(&c)
                .map(Some)
                .ok_or_else(|| ApiError::bad_request("cursor", "not a cursor this API issued")),
        }
    }

    /// These filters for a window, as a query string (for links that keep the view).
    pub fn query_for(&self, window: &Window) -> String {
        let mut parts = vec![format!("from={}", window.from), format!("to={}", window.to)];
        let scope = self.scope();
        for (name, value) in [
            ("repo", scope.repo),
            ("service", scope.service),
            ("team", scope.team),
        ] {
            if let Some(value) = value {
                parts.push(format!("{name}={}", encode(&value)));
            }
        }
        parts.join("&")
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Cursors are the hex of the last item's sort key.
pub fn encode_cursor(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = "00001709251200000000\u{1f}acme/api\u{1f}d-1";
        assert_eq!(decode_cursor(&encode_cursor(key)).as_deref(), Some(key));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor("abc"), None);
        assert_eq!(encode("a b&c/d"), "a%20b%26c/d");
    }
}
