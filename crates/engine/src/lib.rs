//! Flowmeter's metric engine: every rule of the metric definitions (docs/metrics.md), computed
//! from a [`Dataset`] under a [`Config`].
//!
//! Work is split in two. [`prepare`] does what does not depend on the window or scope
//! (deployment dedupe, commit-graph attribution, incident attribution, fix classification) and
//! yields the rows every number is made of. [`metrics`] aggregates those rows with Polars for
//! one window and scope. A [`Snapshot`] holds both halves, so a report costs only the second.
//! Polars' `collect()` must not run on an async runtime thread: call this from blocking code.

pub mod capitalization;
mod classify;
pub mod metrics;
pub mod model;
pub mod persist;
pub mod prepare;
pub mod report;
pub mod stages;
pub mod tiers;

use polars::prelude::{Expr, PolarsError, lit};

use flowmeter_core::{Config, DEFINITIONS_VERSION, Dataset, Scope, Timestamp, Window};

pub use model::Model;
pub use prepare::{
    ChangeRow, DeploymentRow, IncidentRow, Linkage, Prepared, PullRow, ReworkReason,
};
pub use report::DoraReport;
pub use stages::Stage;
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

    /// The same filter over columns of interned names (the changes frame); a name the model
    /// never saw matches nothing.
    pub fn sym_expr(&self, names: &model::Names) -> Expr {
        use polars::prelude::col;
        let sym = |name: &str| lit(names.get(name).unwrap_or(u32::MAX));
        let mut filter = lit(true);
        if let Some(repo) = &self.repo {
            filter = filter.and(col(REPO).eq(sym(repo)));
        }
        if let Some(service) = &self.service {
            filter = filter.and(col(SERVICE).eq(sym(service)));
        }
        if let Some((services, repos)) = &self.team {
            let mut owned = lit(false);
            for service in services {
                owned = owned.or(col(SERVICE).eq(sym(service)));
            }
            for repo in repos {
                owned = owned.or(col(REPO).eq(sym(repo)));
            }
            filter = filter.and(owned);
        }
        filter
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
    pub attempts: Vec<flowmeter_core::Deployment>,
}

/// A change with its names, as listings show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeView<'a> {
    pub service: &'a str,
    pub repo: &'a str,
    pub sha: &'a str,
    pub deployment_id: &'a str,
    pub deployed_at: Timestamp,
    pub start: Timestamp,
    pub squash_of: Option<u64>,
    pub lead_hours: f64,
    pub fix: bool,
}

/// A pull request with its names, as listings show it.
#[derive(Debug, Clone)]
pub struct PullView<'a> {
    pub repo: &'a str,
    pub number: u64,
    pub title: Option<&'a str>,
    pub author: Option<&'a str>,
    pub draft: bool,
    pub created_at: Timestamp,
    pub ready_at: Option<Timestamp>,
    pub merged_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub reviews: usize,
    pull: &'a model::Pull,
    names: &'a model::Names,
}

impl PullView<'_> {
    /// Whether someone other than the author, and not a bot, reviewed it before `at`.
    pub fn reviewed_before(&self, at: Timestamp, config: &Config) -> bool {
        let at = at.timestamp_micros();
        self.pull.reviews.iter().any(|&(reviewer, submitted)| {
            submitted < at
                && Some(reviewer) != self.pull.author
                && !config.is_bot(self.names.name(reviewer))
        })
    }
}

/// A prepared model of the store, ready to answer reports for any window and scope.
#[derive(Debug, Clone)]
pub struct Snapshot {
    model: Model,
    pub prepared: Prepared,
    frames: Frames,
    tiers: TierTable,
    config: Config,
    /// Pull requests by (creation, repository, number), made the first time a listing asks.
    pulls_by_creation: std::sync::OnceLock<Vec<(model::Micros, model::Sym, u64)>>,
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

    /// A snapshot of a whole dataset.
    pub fn build(dataset: &Dataset, config: &Config) -> Result<Snapshot, EngineError> {
        Snapshot::of_model(Model::of(dataset), config)
    }

    /// A snapshot of a model, prepared whole.
    pub fn of_model(mut model: Model, config: &Config) -> Result<Snapshot, EngineError> {
        model.intern_services(config);
        let prepared = Prepared::new(&model, config);
        Snapshot::of_rows(model, prepared, config)
    }

    /// A snapshot of a model and its prepared rows: their frames and the tier table.
    fn of_rows(model: Model, prepared: Prepared, config: &Config) -> Result<Snapshot, EngineError> {
        let tiers = TierTable::for_year(config.metrics.tier_year)
            .ok_or(EngineError::NoTierTable(config.metrics.tier_year))?;
        let frames = Frames::new(&prepared)?;
        Ok(Snapshot {
            model,
            prepared,
            frames,
            tiers,
            config: config.clone(),
            pulls_by_creation: std::sync::OnceLock::new(),
        })
    }

    /// A snapshot of kept bytes ([`persist::decode`]) with `batch`, the records written since,
    /// applied: only what they touched is prepared again.
    pub fn of_kept(
        kept: persist::Kept,
        touched: &model::Touched,
        projects: &std::collections::BTreeSet<Box<str>>,
        config: &Config,
    ) -> Result<Snapshot, EngineError> {
        let mut model = kept.model;
        model.intern_services(config);
        let prepared = Prepared::of_partitions(kept.partitions, &model, config);
        let prepared = if touched.is_empty() {
            prepared
        } else {
            let dirty = prepare::Dirty::of(&model, touched, projects);
            prepared.update(&model, config, Some(&dirty))
        };
        Snapshot::of_rows(model, prepared, config)
    }

    /// The snapshot after a batch of records (upserts by natural key, as the store writes
    /// them): only what the batch touched is prepared again, and everything else is shared
    /// with this snapshot. The result equals [`Snapshot::build`] of everything at once.
    pub fn apply(&self, batch: &Dataset) -> Result<Snapshot, EngineError> {
        let projects: std::collections::BTreeSet<Box<str>> = if batch.issues.is_empty() {
            Default::default()
        } else {
            self.model.projects()
        };
        let mut model = self.model.clone();
        let touched = model.apply(batch);
        if touched.is_empty() {
            return Ok(Snapshot {
                model,
                ..self.clone()
            });
        }
        let dirty = prepare::Dirty::of(&model, &touched, &projects);
        let prepared = self.prepared.update(&model, &self.config, Some(&dirty));
        Snapshot::of_rows(model, prepared, &self.config)
    }

    /// What the snapshot knows of the store.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// A change with its names.
    pub fn change<'a>(&'a self, c: &'a ChangeRow) -> ChangeView<'a> {
        let names = &self.model.names;
        ChangeView {
            service: names.name(c.service),
            repo: names.name(c.repo),
            sha: self.model.repos[&c.repo].commits.sha(c.node),
            deployment_id: &c.deployment_id,
            deployed_at: model::timestamp(c.deployed_at),
            start: model::timestamp(c.start),
            squash_of: c.squash_of,
            lead_hours: c.lead_hours,
            fix: c.fix,
        }
    }

    /// Every pull request, by repository and number.
    pub fn pull_views(&self) -> impl Iterator<Item = PullView<'_>> + '_ {
        self.model.repos.iter().flat_map(move |(&repo, data)| {
            data.pulls
                .values()
                .map(move |pull| self.pull_view(repo, pull))
        })
    }

    fn pull_view<'a>(&'a self, repo: model::Sym, pull: &'a model::Pull) -> PullView<'a> {
        let names = &self.model.names;
        PullView {
            repo: names.name(repo),
            number: pull.number,
            title: pull.title.as_deref(),
            author: pull.author.map(|a| names.name(a)),
            draft: pull.draft,
            created_at: model::timestamp(pull.created),
            ready_at: pull.ready.map(model::timestamp),
            merged_at: pull.merged.map(model::timestamp),
            closed_at: pull.closed.map(model::timestamp),
            reviews: pull.reviews.len(),
            pull,
            names,
        }
    }

    /// Every pull request by (creation, repository, number): the order listings page in.
    pub fn pulls_by_creation(&self) -> Vec<PullView<'_>> {
        let order = self.pulls_by_creation.get_or_init(|| {
            let names = &self.model.names;
            let mut order: Vec<(model::Micros, model::Sym, u64)> = self
                .model
                .repos
                .iter()
                .flat_map(|(&repo, data)| {
                    data.pulls
                        .values()
                        .map(move |p| (p.created, repo, p.number))
                })
                .collect();
            order.sort_by(|a, b| (a.0, names.name(a.1), a.2).cmp(&(b.0, names.name(b.1), b.2)));
            order
        });
        order
            .iter()
            .map(|&(_, repo, number)| self.pull_view(repo, &self.model.repos[&repo].pulls[&number]))
            .collect()
    }

    /// A pull request's repository, title and author.
    pub fn describe_pull(&self, p: &PullRow) -> (String, Option<String>, Option<String>) {
        let names = &self.model.names;
        let pull = self.model.repos[&p.repo].pulls.get(&p.number);
        (
            names.name(p.repo).to_string(),
            pull.and_then(|p| p.title.as_deref().map(String::from)),
            pull.and_then(|p| p.author.map(|a| names.name(a).to_string())),
        )
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
        let (start, end) = (
            window.start().timestamp_micros(),
            window.end().timestamp_micros(),
        );
        let from = p.changes.partition_point(|c| c.deployed_at < start);
        let to = p.changes.partition_point(|c| c.deployed_at < end);
        let names = &self.model.names;
        let changes = p.changes[from..to]
            .iter()
            .filter(|c| scope.matches(Some(names.name(c.service)), Some(names.name(c.repo))))
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
        let mut attempts = Vec::new();
        for (&repo, data) in &self.model.repos {
            let name = self.model.names.name(repo);
            for d in data.deployments.values() {
                let counted = d.status() == flowmeter_core::DeploymentStatus::Success
                    && self.config.is_production(&d.environment);
                if counted || !window.contains(model::timestamp(d.time())) {
                    continue;
                }
                let service = self
                    .config
                    .service_of_deployment(name, &d.id, d.service.as_deref());
                if scope.matches(Some(&service), Some(name)) {
                    attempts.push(self.model.deployment_record(repo, d));
                }
            }
        }
        attempts.sort_by(|a, b| (a.time(), &a.repo, &a.id).cmp(&(b.time(), &b.repo, &b.id)));
        Ok(Receipts {
            deployments,
            changes,
            incidents,
            open_incidents,
            attempts,
        })
    }

    /// The tier table the snapshot's tiers come from.
    pub fn tiers(&self) -> &TierTable {
        &self.tiers
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
        let resolved = self.resolve(scope)?;
        Ok(metrics::weekly(
            &self.frames,
            &window,
            resolved.expr(),
            resolved.sym_expr(&self.model.names),
            &self.model.names,
        )?)
    }

    /// The figures of `buckets` consecutive buckets of `bucket_days` days from `start` (see
    /// [`metrics::series`]): each what a report of its own window gives.
    pub fn series(
        &self,
        start: chrono::NaiveDate,
        buckets: i64,
        bucket_days: i64,
        scope: &Scope,
    ) -> Result<Vec<metrics::Point>, EngineError> {
        let resolved = self.resolve(scope)?;
        Ok(metrics::series(
            &self.frames,
            start,
            buckets,
            bucket_days,
            resolved.expr(),
            resolved.sym_expr(&self.model.names),
        )?)
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
        let mut in_scope: std::collections::HashMap<model::Sym, bool> = Default::default();
        let pulls: Vec<&PullRow> = self
            .prepared
            .pulls
            .iter()
            .filter(|p| {
                *in_scope.entry(p.repo).or_insert_with(|| {
                    let repo = self.model.names.name(p.repo);
                    self.prepared
                        .services_of_repo(repo, &self.config)
                        .iter()
                        .any(|s| resolved.matches(Some(s), Some(repo)))
                })
            })
            .collect();
        let describe = |p: &PullRow| self.describe_pull(p);
        Ok(stages::stages(
            &pulls,
            window,
            scope.clone(),
            now,
            &describe,
        )?)
    }

    /// The DORA report (D1-D6) for one window and scope.
    pub fn dora(&self, window: Window, scope: &Scope) -> Result<DoraReport, EngineError> {
        use report::*;
        let resolved = self.resolve(scope)?;
        let filter = resolved.expr();
        let change_filter = resolved.sym_expr(&self.model.names);
        let f = &self.frames;
        let (deployments, per_week, deploy_days) =
            metrics::deployment_frequency(&f.deployments, &window, filter.clone())?;
        let (changes, median, p90) = metrics::lead_time(&f.changes, &window, change_filter)?;
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

/// Runs `f` over `items` on every core, each item taken by the next free thread, and returns
/// the results in the items' order.
pub(crate) fn on_every_core<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker does not panic"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod incremental_tests;
