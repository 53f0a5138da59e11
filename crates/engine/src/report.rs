//! The DORA report document, version 1 (report-json.md). Field names and order are the API
//! contract: fields may be added, none renamed or removed.

use serde::Serialize;

use flowmeter_core::{Scope, Window};

use crate::tiers::Tier;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoraReport {
    pub definitions_version: u32,
    pub window: WindowDoc,
    pub scope: Scope,
    pub deployment_frequency: DeploymentFrequency,
    pub lead_time: LeadTime,
    pub change_failure_rate: ChangeFailureRate,
    pub recovery_time: RecoveryTime,
    pub rework_rate: ReworkRate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowDoc {
    pub from: String,
    pub to: String,
    pub days: i64,
}

impl From<Window> for WindowDoc {
    fn from(w: Window) -> Self {
        WindowDoc {
            from: w.from.format("%Y-%m-%d").to_string(),
            to: w.to.format("%Y-%m-%d").to_string(),
            days: w.days(),
        }
    }
}

/// D1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentFrequency {
    pub deployments: u64,
    pub per_week: f64,
    pub deploy_days_per_week_median: Option<f64>,
    pub tier: Option<Tier>,
}

/// D2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadTime {
    pub changes: u64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
    pub tier: Option<Tier>,
}

/// D3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeFailureRate {
    pub deployments: u64,
    pub failed: u64,
    pub rate: Option<f64>,
    pub tier: Option<Tier>,
}

/// D4. `open` counts the scope's incidents created before the window's end that are still
/// open: they are listed, never averaged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryTime {
    pub incidents: u64,
    pub median_hours: Option<f64>,
    pub tier: Option<Tier>,
    pub open: u64,
}

/// D5.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReworkRate {
    pub deployments: u64,
    pub rework: u64,
    pub rate: Option<f64>,
}

impl DoraReport {
    /// The document as the CLI prints it and the API returns it, byte for byte.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports always serialize")
    }
}
