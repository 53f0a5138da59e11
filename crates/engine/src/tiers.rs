//! D6 Performance tiers. The thresholds are data (`tiers/<year>.json`), one table per DORA
//! report year; a tier sits next to its number and never replaces it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Elite,
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Better {
    Higher,
    Lower,
}

/// The thresholds of one metric. `inclusive` says whether reaching a threshold earns its tier
/// (`>=` / `<=`) or only passing it does (`>` / `<`).
#[derive(Debug, Clone, Deserialize)]
pub struct Thresholds {
    better: Better,
    elite: f64,
    high: f64,
    medium: f64,
    inclusive: bool,
}

impl Thresholds {
    /// Each tier's range of values `[from, to)`, best first (the bounds of charts' bands; a
    /// threshold itself belongs to the tier `tier` says).
    pub fn ranges(&self) -> [(Tier, f64, f64); 4] {
        match self.better {
            Better::Higher => [
                (Tier::Elite, self.elite, f64::INFINITY),
                (Tier::High, self.high, self.elite),
                (Tier::Medium, self.medium, self.high),
                (Tier::Low, 0.0, self.medium),
            ],
            Better::Lower => [
                (Tier::Elite, 0.0, self.elite),
                (Tier::High, self.elite, self.high),
                (Tier::Medium, self.high, self.medium),
                (Tier::Low, self.medium, f64::INFINITY),
            ],
        }
    }

    /// The tier of a value; `None` (no data) has no tier.
    pub fn tier(&self, value: Option<f64>) -> Option<Tier> {
        let value = value?;
        let reaches = |threshold: f64| match (self.better, self.inclusive) {
            (Better::Higher, true) => value >= threshold,
            (Better::Higher, false) => value > threshold,
            (Better::Lower, true) => value <= threshold,
            (Better::Lower, false) => value < threshold,
        };
        Some(if reaches(self.elite) {
            Tier::Elite
        } else if reaches(self.high) {
            Tier::High
        } else if reaches(self.medium) {
            Tier::Medium
        } else {
            Tier::Low
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TierTable {
    pub year: u32,
    pub deployment_frequency: Thresholds,
    pub lead_time: Thresholds,
    pub change_failure_rate: Thresholds,
    pub recovery_time: Thresholds,
}

const TABLES: [(u32, &str); 1] = [(2023, include_str!("tiers/2023.json"))];

impl TierTable {
    /// The table of a DORA report year, if this build has it.
    pub fn for_year(year: u32) -> Option<TierTable> {
        TABLES
            .iter()
            .find(|(y, _)| *y == year)
            .map(|(_, text)| serde_json::from_str(text).expect("tier tables are valid JSON"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_at_their_thresholds() {
        let t = TierTable::for_year(2023).unwrap();
        let df = |v| t.deployment_frequency.tier(Some(v)).unwrap();
        assert_eq!(df(7.0), Tier::Elite);
        assert_eq!(df(6.99), Tier::High);
        assert_eq!(df(1.0), Tier::High);
        assert_eq!(df(0.99), Tier::Medium);
        assert_eq!(df(12.0 / 52.0), Tier::Medium);
        assert_eq!(df(12.0 / 52.0 - 1e-9), Tier::Low);
        let lt = |v| t.lead_time.tier(Some(v)).unwrap();
        assert_eq!(lt(23.99), Tier::Elite);
        assert_eq!(lt(24.0), Tier::High);
        assert_eq!(lt(168.0), Tier::Medium);
        assert_eq!(lt(720.0), Tier::Low);
        let cfr = |v| t.change_failure_rate.tier(Some(v)).unwrap();
        assert_eq!(cfr(0.05), Tier::Elite);
        assert_eq!(cfr(0.0501), Tier::High);
        assert_eq!(cfr(0.10), Tier::High);
        assert_eq!(cfr(0.15), Tier::Medium);
        assert_eq!(cfr(0.1501), Tier::Low);
        let rt = |v| t.recovery_time.tier(Some(v)).unwrap();
        assert_eq!(rt(0.99), Tier::Elite);
        assert_eq!(rt(1.0), Tier::High);
        assert_eq!(rt(24.0), Tier::Medium);
        assert_eq!(rt(168.0), Tier::Low);
        assert_eq!(t.recovery_time.tier(None), None);
    }
}
