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
pub mod stages;
pub mod tiers;

use polars::prelude::{Expr, PolarsError, lit};

use flowmeter_core::{Config, DEFINITIONS_VERSION, Dataset, Scope, Window};

pub use prepare::{
    ChangeRow, DeploymentRow, IncidentRow, Linkage, Prepared, PullRow, ReworkReason, prepare,
};
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

/// A scope checked against the snapshot; a team is the services and repositories it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedScope {
    repo: Option<String>,
    service: Option<String>,
    team: Option<(Vec<String>, Vec<String>)>,
}

impl ResolvedScope {
    /// Whether a row of this service and repository is in scope. A row without a service or
    /// repository is out of any scope that filters on it.
    pub fn matches(&self, service: Option<&str>, repo: Option<&str>) -> bool {
        let is = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        is(&self.repo, repo)
            && is(&self.service, service)
            && self.team.as_ref().is_none_or(|(services, repos)| {
                service.is_some_and(|s| services.iter().any(|t| t == s))
                    || repo.is_some_and(|r| repos.iter().any(|t| t == r))
            })
    }

    /// The same filter as a Polars expression over `service` and `repo` columns.
    pub fn expr(&self) -> Expr {
        use polars::prelude::col;
        let mut filter = lit(true);
        if let Some(repo) = &self.repo {
            filter = filter.and(col(REPO).eq(lit(repo.as_str())));
        }
        if let Some(service) = &self.service {
            filter = filter.and(col(SERVICE).eq(lit(service.as_str())));
        }
        if let Some((services, repos)) = &self.team {
            let mut owned = lit(false);
            for service in services {
                owned = owned.or(col(SERVICE).eq(lit(service.as_str())));
            }
            for repo in repos {
                owned = owned.or(col(REPO).eq(lit(repo.as_str())));
            }
            filter = filter.and(owned);
        }
        filter
    }
}

/// The rows behind one report (see [`Snapshot::receipts`]).
#[derive(Debug, Clone)]
pub struct Receipts<'a> {
    pub deployments: Vec<&'a DeploymentRow>,
    pub changes: Vec<&'a ChangeRow>,
    pub incidents: Vec<&'a IncidentRow>,
    pub open_incidents: Vec<&'a IncidentRow>,
    pub attempts: Vec<&'a flowmeter_core::Deployment>,
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
    /// The times of the first and the last counted deployment (D0), or `None` without any: the
    /// span of the data, from which default windows are drawn.
    pub fn deployment_span(
        &self,
    ) -> Option<(flowmeter_core::Timestamp, flowmeter_core::Timestamp)> {
        let times = self.prepared.deployments.iter().map(|d| d.time);
        Some((times.clone().min()?, times.max()?))
    }

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

    /// Checks a scope against what the snapshot knows; an unknown repository, service or team
    /// is an error that names the parameter.
    pub fn resolve(&self, scope: &Scope) -> Result<ResolvedScope, EngineError> {
        if let Some(repo) = &scope.repo
            && !self.prepared.repos.contains(repo)
        {
            return Err(EngineError::UnknownScope {
                param: "repo",
                value: repo.clone(),
            });
        }
        if let Some(service) = &scope.service
            && !self.prepared.services.contains(service)
        {
            return Err(EngineError::UnknownScope {
                param: "service",
                value: service.clone(),
            });
        }
        let team = match &scope.team {
            Some(name) => {
                let team = self
                    .config
                    .team(name)
                    .ok_or_else(|| EngineError::UnknownScope {
                        param: "team",
                        value: name.clone(),
                    })?;
                Some((team.services.clone(), team.repos.clone()))
            }
            None => None,
        };
        Ok(ResolvedScope {
            repo: scope.repo.clone(),
            service: scope.service.clone(),
            team,
        })
    }

    /// The row filter of a scope, as a Polars expression.
    pub fn scope_filter(&self, scope: &Scope) -> Result<Expr, EngineError> {
        Ok(self.resolve(scope)?.expr())
    }

    /// The rows behind a report's numbers, for drill-down: the counted deployments in the window,
    /// the changes they delivered, the incidents resolved in it, the scope's open incidents and
    /// the deployment records in the window that are not deployments (failed attempts, other
    /// environments).
    pub fn receipts(&self, window: Window, scope: &Scope) -> Result<Receipts<'_>, EngineError> {
        let scope = self.resolve(scope)?;
        let p = &self.prepared;
        let deployments = p
            .deployments
            .iter()
            .filter(|d| window.contains(d.time) && scope.matches(Some(&d.service), Some(&d.repo)))
            .collect();
        let changes = p
            .changes
            .iter()
            .filter(|c| {
                window.contains(c.deployed_at) && scope.matches(Some(&c.service), Some(&c.repo))
            })
            .collect();
        let in_scope = |i: &&IncidentRow| scope.matches(i.service.as_deref(), i.repo.as_deref());
        let incidents = p
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_some_and(|r| window.contains(r)))
            .filter(in_scope)
            .collect();
        let open_incidents = p
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_none() && i.created_at < window.end())
            .filter(in_scope)
            .collect();
        let attempts = p
            .attempts
            .iter()
            .filter(|d| {
                let counted = d.status == flowmeter_core::DeploymentStatus::Success
                    && self.config.is_production(&d.environment);
                let service =
                    self.config
                        .service_of_deployment(&d.repo, &d.id, d.service.as_deref());
                !counted
                    && window.contains(d.time())
                    && scope.matches(Some(&service), Some(&d.repo))
            })
            .collect();
        Ok(Receipts {
            deployments,
            changes,
            incidents,
            open_incidents,
            attempts,
        })
    }

    /// The configuration the snapshot was prepared under.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Per ISO week and service figures for the weeks the window touches (see
    /// [`metrics::weekly`]).
    pub fn weekly(
        &self,
        window: Window,
        scope: &Scope,
    ) -> Result<Vec<metrics::WeekRow>, EngineError> {
        let filter = self.scope_filter(scope)?;
        Ok(metrics::weekly(&self.frames, &window, filter)?)
    }

    /// Rule S, the value stream, for the pull requests of a scope (a pull request belongs to
    /// every service of its repository). Work in progress is looked at `now` or at the
    /// window's end, whichever is earlier.
    pub fn stages(
        &self,
        window: Window,
        scope: &Scope,
        now: flowmeter_core::Timestamp,
    ) -> Result<stages::StagesReport, EngineError> {
        let resolved = self.resolve(scope)?;
        let pulls: Vec<&PullRow> = self
            .prepared
            .pulls
            .iter()
            .filter(|p| {
                self.prepared
                    .services_of_repo(&p.repo, &self.config)
                    .iter()
                    .any(|s| resolved.matches(Some(s), Some(&p.repo)))
            })
            .collect();
        Ok(stages::stages(&pulls, window, scope.clone(), now)?)
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
