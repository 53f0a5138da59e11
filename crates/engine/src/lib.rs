//! Flowmeter's metric engine: every rule of the metric definitions (docs/metrics.md), computed
//! from a [`Dataset`] under a [`Config`].
//!
//! Work is split in two. [`prepare`] does what does not depend on the window or scope
//! (deployment dedupe, commit-graph attribution, incident attribution, fix classification) and
//! yields the rows every number is made of. [`metrics`] aggregates those rows with Polars for
//! one window and scope. A [`Snapshot`] holds both halves, so a report costs only the second.
//! Polars' `collect()` must not run on an async runtime thread: call this from blocking code.

mod classify;
pub mod metrics;
pub mod prepare;
pub mod report;
pub mod tiers;

use polars::prelude::{Expr, PolarsError, lit};

use flowmeter_core::{Config, DEFINITIONS_VERSION, Dataset, Scope, Window};

pub use prepare::{ChangeRow, DeploymentRow, IncidentRow, Linkage, Prepared, prepare};
pub use report::DoraReport;
pub use tiers::{Tier, TierTable};

use metrics::Frames;
use metrics::columns::{REPO, SERVICE};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A scope names a repository, service or team Flowmeter does not know.
    #[error("unknown {param} '{value}'")]
    UnknownScope { param: &'static str, value: String },
    #[error("no tier table for year {0}")]
    NoTierTable(u32),
    #[error("dataframe computation failed: {0}")]
    Polars(#[from] PolarsError),
}

/// A prepared dataset, ready to answer reports for any window and scope.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub prepared: Prepared,
    frames: Frames,
    tiers: TierTable,
    config: Config,
}

impl Snapshot {
    pub fn build(dataset: &Dataset, config: &Config) -> Result<Snapshot, EngineError> {
        let tiers = TierTable::for_year(config.metrics.tier_year)
            .ok_or(EngineError::NoTierTable(config.metrics.tier_year))?;
        let prepared = prepare(dataset, config);
        let frames = Frames::new(&prepared)?;
        Ok(Snapshot {
            prepared,
            frames,
            tiers,
            config: config.clone(),
        })
    }

    /// The row filter of a scope; an unknown repository, service or team is an error.
    pub fn scope_filter(&self, scope: &Scope) -> Result<Expr, EngineError> {
        let mut filter = lit(true);
        if let Some(repo) = &scope.repo {
            if !self.prepared.repos.contains(repo) {
                return Err(EngineError::UnknownScope {
                    param: "repo",
                    value: repo.clone(),
                });
            }
            filter = filter.and(polars::prelude::col(REPO).eq(lit(repo.as_str())));
        }
        if let Some(service) = &scope.service {
            if !self.prepared.services.contains(service) {
                return Err(EngineError::UnknownScope {
                    param: "service",
                    value: service.clone(),
                });
            }
            filter = filter.and(polars::prelude::col(SERVICE).eq(lit(service.as_str())));
        }
        if let Some(team) = &scope.team {
            let team = self
                .config
                .team(team)
                .ok_or_else(|| EngineError::UnknownScope {
                    param: "team",
                    value: team.clone(),
                })?;
            let mut owned = lit(false);
            for service in &team.services {
                owned = owned.or(polars::prelude::col(SERVICE).eq(lit(service.as_str())));
            }
            for repo in &team.repos {
                owned = owned.or(polars::prelude::col(REPO).eq(lit(repo.as_str())));
            }
            filter = filter.and(owned);
        }
        Ok(filter)
    }

    /// The DORA report (D1-D6) for one window and scope.
    pub fn dora(&self, window: Window, scope: &Scope) -> Result<DoraReport, EngineError> {
        use report::*;
        let filter = self.scope_filter(scope)?;
        let f = &self.frames;
        let (deployments, per_week, deploy_days) =
            metrics::deployment_frequency(&f.deployments, &window, filter.clone())?;
        let (changes, median, p90) = metrics::lead_time(&f.changes, &window, filter.clone())?;
        let (cfr_n, failed, cfr) = metrics::flagged_share(
            &f.deployments,
            &window,
            filter.clone(),
            metrics::columns::FAILED,
        )?;
        let (rework_n, rework, rework_rate) = metrics::flagged_share(
            &f.deployments,
            &window,
            filter.clone(),
            metrics::columns::REWORK,
        )?;
        let (incidents, recovery, open) = metrics::recovery_time(&f.incidents, &window, filter)?;
        let t = &self.tiers;
        Ok(DoraReport {
            definitions_version: DEFINITIONS_VERSION,
            window: window.into(),
            scope: scope.clone(),
            deployment_frequency: DeploymentFrequency {
                deployments,
                per_week,
                deploy_days_per_week_median: deploy_days,
                tier: t.deployment_frequency.tier(Some(per_week)),
            },
            lead_time: LeadTime {
                changes,
                median_hours: median,
                p90_hours: p90,
                tier: t.lead_time.tier(median),
            },
            change_failure_rate: ChangeFailureRate {
                deployments: cfr_n,
                failed,
                rate: cfr,
                tier: t.change_failure_rate.tier(cfr),
            },
            recovery_time: RecoveryTime {
                incidents,
                median_hours: recovery,
                tier: t.recovery_time.tier(recovery),
                open,
            },
            rework_rate: ReworkRate {
                deployments: rework_n,
                rework,
                rate: rework_rate,
            },
        })
    }
}
