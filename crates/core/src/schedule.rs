//! When scheduled work is due: a five-field cron expression evaluated in an IANA time zone, by
//! the `croner` and `chrono-tz` libraries (daylight-saving changes included).

use chrono::Utc;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::Timestamp;

/// A cron expression (`minute hour day-of-month month day-of-week`) in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: chrono_tz::Tz,
}

impl Schedule {
    /// Parses both; the error says which of the two is wrong and why.
    pub fn new(expression: &str, zone: &str) -> Result<Schedule, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| ScheduleError::Cron(format!("'{expression}' is not a cron expression (minute hour day-of-month month day-of-week): {e}")))?;
        let zone = zone.parse::<chrono_tz::Tz>().map_err(|_| {
            ScheduleError::Zone(format!(
                "'{zone}' is not an IANA time zone name such as Europe/Berlin"
            ))
        })?;
        Ok(Schedule { cron, zone })
    }

    /// The latest scheduled moment at or before `now`.
    pub fn latest_due(&self, now: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_previous_occurrence(&now.with_timezone(&self.zone), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first scheduled moment after `now`.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&now.with_timezone(&self.zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// What is wrong with a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Cron(String),
    #[error("{0}")]
    Zone(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Monday 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer: stepping a clock
    /// minute by minute across the change of 29 March 2026, each Monday is due once.
    #[test]
    fn monday_nine_in_berlin_across_daylight_saving() {
        let schedule = Schedule::new("0 9 * * MON", "Europe/Berlin").unwrap();
        let mut now = t("2026-03-21T00:00:00Z");
        let mut due = Vec::new();
        while now < t("2026-04-02T00:00:00Z") {
            let latest = schedule.latest_due(now).unwrap();
            if due.last() != Some(&latest) {
                due.push(latest);
            }
            now += chrono::Duration::minutes(1);
        }
        assert_eq!(
            due,
            [
                t("2026-03-16T08:00:00Z"),
                t("2026-03-23T08:00:00Z"),
                t("2026-03-30T07:00:00Z")
            ]
        );
        assert_eq!(
            schedule.next_after(t("2026-10-20T00:00:00Z")),
            Some(t("2026-10-26T08:00:00Z"))
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cron = Schedule::new("0 9 * *", "UTC").unwrap_err();
        assert!(matches!(cron, ScheduleError::Cron(_)), "{cron}");
        assert!(cron.to_string().contains("'0 9 * *'"), "{cron}");
        let zone = Schedule::new("0 9 * * MON", "Europe/Berln").unwrap_err();
        assert!(matches!(zone, ScheduleError::Zone(_)), "{zone}");
        assert!(
            Schedule::new("0 0 9 * * MON", "UTC").is_err(),
            "no seconds field"
        );
    }
}
