//! Windows of time and the scope a metric is computed for.

use chrono::{Datelike, NaiveDate, NaiveTime};
use serde::Serialize;

use crate::Timestamp;

/// A half-open window of whole UTC days: an event at `t` belongs to it when
/// `from 00:00:00 <= t < to 00:00:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Why a window could not be built; names the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("{param}: '{value}' is not a date (expected YYYY-MM-DD)")]
    Malformed { param: &'static str, value: String },
    #[error("from: {from} is not before to: {to}")]
    Empty { from: NaiveDate, to: NaiveDate },
    #[error(
        "{param}: {value} is outside the supported range ({min} to {max}, at most {max_days} days long)"
    )]
    OutOfRange {
        param: &'static str,
        value: NaiveDate,
        min: NaiveDate,
        max: NaiveDate,
        max_days: i64,
    },
    #[error("{param}: '{value}' is not an ISO week such as 2026-W47 (years 1970 to 9999)")]
    Week { param: &'static str, value: String },
}

impl WindowError {
    /// The parameter a caller should point at.
    pub fn param(&self) -> &'static str {
        match self {
            WindowError::Malformed { param, .. } => param,
            WindowError::Empty { .. } => "from",
            WindowError::OutOfRange { param, .. } => param,
            WindowError::Week { param, .. } => param,
        }
    }
}

/// The longest window a report covers: ten years.
pub const MAX_DAYS: i64 = 3660;

impl Window {
    /// A window from 1970 to 9999, at most [`MAX_DAYS`] long (so that the previous window
    /// and every computation on its days stay in range).
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, WindowError> {
        let min = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        let max = NaiveDate::from_ymd_opt(9999, 12, 31).expect("a date");
        let out_of_range = |param, value| WindowError::OutOfRange {
            param,
            value,
            min,
            max,
            max_days: MAX_DAYS,
        };
        if !(min..=max).contains(&from) {
            return Err(out_of_range("from", from));
        }
        if !(min..=max).contains(&to) {
            return Err(out_of_range("to", to));
        }
        if from >= to {
            return Err(WindowError::Empty { from, to });
        }
        if (to - from).num_days() > MAX_DAYS {
            return Err(out_of_range("to", to));
        }
        Ok(Window { from, to })
    }

    /// Parses `YYYY-MM-DD` dates as given on a command line or in a query string.
    pub fn parse(from: &str, to: &str) -> Result<Self, WindowError> {
        let date = |param: &'static str, value: &str| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| WindowError::Malformed {
                param,
                value: value.to_string(),
            })
        };
        Window::new(date("from", from)?, date("to", to)?)
    }

    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days()
    }

    pub fn start(&self) -> Timestamp {
        self.from.and_time(NaiveTime::MIN).and_utc()
    }

    pub fn end(&self) -> Timestamp {
        self.to.and_time(NaiveTime::MIN).and_utc()
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start() <= t && t < self.end()
    }

    /// The window of the same length that ends where this one starts.
    pub fn previous(&self) -> Window {
        let days = chrono::Duration::days(self.days());
        Window {
            from: self.from - days,
            to: self.from,
        }
    }
}

/// An ISO 8601 week (`2026-W47`): Monday to Sunday, as whole UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    monday: NaiveDate,
}

impl IsoWeek {
    /// Reads `2026-W47`; a week that year does not have (`2025-W53`) or a week outside 1970
    /// to 9999 is an error naming `param`.
    pub fn parse(param: &'static str, text: &str) -> Result<IsoWeek, WindowError> {
        let malformed = || WindowError::Week {
            param,
            value: text.to_string(),
        };
        let (year, week) = text.trim().split_once("-W").ok_or_else(malformed)?;
        if year.len() != 4 || week.len() != 2 {
            return Err(malformed());
        }
        let year: i32 = year.parse().map_err(|_| malformed())?;
        let week: u32 = week.parse().map_err(|_| malformed())?;
        let monday = NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)
            .filter(|m| (1970..=9999).contains(&m.year()) && m.iso_week().year() == year)
            .ok_or_else(malformed)?;
        Ok(IsoWeek { monday })
    }

    /// The week a day belongs to.
    pub fn of(day: NaiveDate) -> IsoWeek {
        let back = u64::from(day.weekday().num_days_from_monday());
        IsoWeek {
            monday: day - chrono::Days::new(back),
        }
    }

    /// The last week that had ended (in UTC) by `t`.
    pub fn completed_before(t: Timestamp) -> IsoWeek {
        let this = IsoWeek::of(t.date_naive());
        IsoWeek {
            monday: this.monday - chrono::Days::new(7),
        }
    }

    pub fn monday(self) -> NaiveDate {
        self.monday
    }

    /// Monday 00:00 to the next Monday 00:00, UTC.
    pub fn window(self) -> Window {
        Window {
            from: self.monday,
            to: self.monday + chrono::Days::new(7),
        }
    }

    /// The `weeks` weeks that end with this one.
    pub fn trailing(self, weeks: u64) -> Window {
        Window {
            from: self.monday - chrono::Days::new(7 * weeks.saturating_sub(1)),
            to: self.monday + chrono::Days::new(7),
        }
    }
}

impl std::fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let week = self.monday.iso_week();
        write!(f, "{}-W{:02}", week.year(), week.week())
    }
}

/// What a report is filtered to. `None` everywhere is the whole organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub repo: Option<String>,
    pub service: Option<String>,
    pub team: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open() {
        let w = Window::parse("2024-01-01", "2024-01-08").unwrap();
        assert_eq!(w.days(), 7);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(w.contains(at("2024-01-01T00:00:00Z")));
        assert!(w.contains(at("2024-01-07T23:59:59Z")));
        assert!(!w.contains(at("2024-01-08T00:00:00Z")));
        assert!(!w.contains(at("2023-12-31T23:59:59Z")));
    }

    #[test]
    fn bad_windows_name_the_parameter() {
        let err = Window::parse("2024-13-01", "2024-02-01").unwrap_err();
        assert_eq!(err.param(), "from");
        let err = Window::parse("2024-01-01", "soon").unwrap_err();
        assert_eq!(err.param(), "to");
        let err = Window::parse("2024-02-01", "2024-02-01").unwrap_err();
        assert!(matches!(err, WindowError::Empty { .. }));
        let err = Window::parse("-200000-01-01", "2024-02-01").unwrap_err();
        assert_eq!(err.param(), "from");
        let err = Window::parse("2000-01-01", "2024-02-01").unwrap_err();
        assert_eq!(err.param(), "to", "longer than ten years");
        assert!(Window::parse("2015-01-01", "2024-12-31").is_ok());
    }
}

#[cfg(test)]
mod week_tests {
    use super::*;

    #[test]
    fn iso_weeks_read_print_and_cover_monday_to_sunday() {
        let w47 = IsoWeek::parse("week", "2026-W47").unwrap();
        assert_eq!(w47.to_string(), "2026-W47");
        assert_eq!(w47.monday(), NaiveDate::from_ymd_opt(2026, 11, 16).unwrap());
        assert_eq!(
            w47.window().to,
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
        assert_eq!(
            w47.trailing(4).from,
            NaiveDate::from_ymd_opt(2026, 10, 26).unwrap()
        );
        let w01 = IsoWeek::parse("week", "2026-W01").unwrap();
        assert_eq!(w01.monday(), NaiveDate::from_ymd_opt(2025, 12, 29).unwrap());
        assert!(IsoWeek::parse("week", "2026-W53").is_ok());
        for bad in [
            "2025-W53", "2026-W00", "2026-47", "2026-W7", "1969-W10", "x",
        ] {
            let e = IsoWeek::parse("week", bad).unwrap_err();
            assert_eq!(e.param(), "week", "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
        let sunday_night: Timestamp = "2026-11-22T23:59:59Z".parse().unwrap();
        assert_eq!(
            IsoWeek::completed_before(sunday_night).to_string(),
            "2026-W46"
        );
        let monday: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        assert_eq!(IsoWeek::completed_before(monday).to_string(), "2026-W47");
        assert_eq!(
            IsoWeek::of(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()),
            w47
        );
    }
}
