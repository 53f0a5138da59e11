//! The window-independent half of the engine: who delivered what.
//!
//! Preparing is a few named steps over the [`Model`]:
//! 1. [`partitions`]: repositories that share a service are prepared together (a service's
//!    deployments and history are one chain), every other repository on its own;
//! 2. per partition, [`deployments::counted`] (D0: successful production records, one per
//!    service and id), [`attribution`] (D2: the commit-graph walk, the squash start, fixes, and
//!    D5's revert, rollback and fix-of-an-incident clauses) and [`pulls`] (rule S's
//!    boundaries and tracker stages);
//! 3. across partitions, [`incidents`] (D3, and D5's fix after an incident, which need every
//!    service's deployments).
//!
//! A partition's rows depend only on its own repositories (and the tracker issues they name),
//! so when a batch of records arrives only the partitions it touched are prepared again
//! ([`Prepared::update`]); the others are shared with the previous snapshot. Whatever order
//! records arrive in, the rows are the ones preparing everything at once gives.

pub mod attribution;
pub mod deployments;
pub mod incidents;
pub mod pulls;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use flowmeter_core::{Config, Timestamp};

use crate::classify::Classifier;
use crate::model::{Micros, Model, Sym, Touched};

pub(crate) const US_PER_HOUR: f64 = 3_600_000_000.0;

/// Times as microseconds in the kept bytes (serde's default is text, slow by the million).
mod micros_serde {
    use flowmeter_core::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.timestamp_micros())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let us = i64::deserialize(d)?;
        chrono::DateTime::from_timestamp_micros(us)
            .ok_or_else(|| serde::de::Error::custom("a time out of range"))
    }

    pub mod option {
        use flowmeter_core::Timestamp;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            t.map(|t| t.timestamp_micros()).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            Option::<i64>::deserialize(d)?
                .map(|us| {
                    chrono::DateTime::from_timestamp_micros(us)
                        .ok_or_else(|| serde::de::Error::custom("a time out of range"))
                })
                .transpose()
        }
    }
}

/// Hours between two times, as floating point.
pub(crate) fn hours(us: Micros) -> f64 {
    us as f64 / US_PER_HOUR
}

/// A counted deployment (D0): successful, to production, one per service and id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeploymentRow {
    pub service: String,
    pub repo: String,
    pub id: String,
    pub sha: String,
    #[serde(with = "micros_serde")]
    pub time: Timestamp,
    /// The first deployment of its service: it delivers nothing.
    pub baseline: bool,
    /// At least one incident is attributed to it (D3).
    pub failed: bool,
    /// Unplanned work caused by a failure in production (D5): at least one reason below.
    pub rework: bool,
    /// Why it is rework, with the evidence (empty when it is not).
    #[serde(with = "reasons_serde")]
    pub rework_reasons: Vec<ReworkReason>,
    /// How many changes it delivered (D2).
    pub changes: u32,
    pub(crate) service_sym: Sym,
    pub(crate) repo_sym: Sym,
    /// Its first fix change (D5's "fix after an incident" needs the incidents first).
    pub(crate) first_fix: Option<String>,
}

/// Rework reasons in the kept bytes as (clause, two texts): the documents' form, tagged by a
/// field, cannot be read back by a format that does not describe itself.
mod reasons_serde {
    use super::ReworkReason;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(reasons: &[ReworkReason], s: S) -> Result<S::Ok, S::Error> {
        let plain: Vec<(u8, &str, &str)> = reasons
            .iter()
            .map(|r| match r {
                ReworkReason::Revert {
                    reverted_deployment,
                } => (0, reverted_deployment.as_str(), ""),
                ReworkReason::Rollback { to_deployment } => (1, to_deployment.as_str(), ""),
                ReworkReason::FixAfterIncident { change, incident } => {
                    (2, change.as_str(), incident.as_str())
                }
                ReworkReason::FixOfIncident { change, evidence } => {
                    (3, change.as_str(), evidence.as_str())
                }
            })
            .collect();
        plain.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ReworkReason>, D::Error> {
        Vec::<(u8, String, String)>::deserialize(d)?
            .into_iter()
            .map(|(clause, a, b)| match clause {
                0 => Ok(ReworkReason::Revert {
                    reverted_deployment: a,
                }),
                1 => Ok(ReworkReason::Rollback { to_deployment: a }),
                2 => Ok(ReworkReason::FixAfterIncident {
                    change: a,
                    incident: b,
                }),
                3 => Ok(ReworkReason::FixOfIncident {
                    change: a,
                    evidence: b,
                }),
                _ => Err(serde::de::Error::custom("an unknown rework clause")),
            })
            .collect()
    }
}

/// A clause of D5 that makes a deployment rework, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "clause", rename_all = "snake_case")]
pub enum ReworkReason {
    /// Its commit reverts the commit of the previous deployment of its service.
    Revert { reverted_deployment: String },
    /// Its commit is the commit of an earlier deployment (not the previous one's).
    Rollback { to_deployment: String },
    /// It delivers a fix, and an incident of its service was created at most the incident
    /// window before it.
    FixAfterIncident { change: String, incident: String },
    /// It delivers a change that names an incident (an incident label, a linked incident).
    FixOfIncident { change: String, evidence: String },
}

impl ReworkReason {
    /// The clause's place in D5's list, which orders a deployment's reasons.
    pub(crate) fn clause(&self) -> u8 {
        match self {
            ReworkReason::Revert { .. } => 0,
            ReworkReason::Rollback { .. } => 1,
            ReworkReason::FixAfterIncident { .. } => 2,
            ReworkReason::FixOfIncident { .. } => 3,
        }
    }

    /// The reason in words, for receipts.
    pub fn describe(&self) -> String {
        match self {
            ReworkReason::Revert {
                reverted_deployment,
            } => {
                format!(
                    "revert: reverts the commit of the previous deployment {reverted_deployment}"
                )
            }
            ReworkReason::Rollback { to_deployment } => {
                format!(
                    "rollback: goes back to the commit of the earlier deployment {to_deployment}"
                )
            }
            ReworkReason::FixAfterIncident { change, incident } => format!(
                "fix after an incident: delivers the fix {} after incident {incident}",
                short(change)
            ),
            ReworkReason::FixOfIncident { change, evidence } => {
                format!("fix of an incident: {} {evidence}", short(change))
            }
        }
    }
}

pub(crate) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// A change delivered by a deployment (D2), with its lead time. Names are interned: read it
/// through [`crate::Snapshot::change`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangeRow {
    pub service: Sym,
    pub repo: Sym,
    /// The commit's node in its repository.
    pub node: u32,
    pub deployment_id: Arc<str>,
    pub deployed_at: Micros,
    /// `authored_at`, or for a squash or rebase merge the first commit of its pull request.
    pub start: Micros,
    /// The pull request whose commits gave `start` (squash and rebase merges).
    pub squash_of: Option<u64>,
    pub lead_hours: f64,
    pub fix: bool,
}

/// An incident with the deployment it is attributed to (D3) and its recovery time (D4).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub service: Option<String>,
    pub repo: Option<String>,
    pub id: String,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub recovery_hours: Option<f64>,
    pub deployment_id: Option<String>,
}

/// Counts of references that point at records the store does not have (yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Linkage {
    /// Production deployments whose commit is unknown: they deliver nothing until it arrives.
    pub deployments_with_unknown_commit: u64,
    /// Commits whose parent is unknown (history that has not arrived, or a shallow import).
    pub commits_with_unknown_parent: u64,
    /// Merged pull requests whose merge commit is unknown.
    pub pull_requests_with_unknown_merge_commit: u64,
    /// Incidents naming a deployment id that is not a counted deployment.
    pub incidents_with_unknown_deployment: u64,
    /// Incidents attributed to no deployment (they still count for recovery time).
    pub incidents_unattributed: u64,
    /// Merged pull requests that link to no tracker issue.
    pub pull_requests_without_issue: u64,
}

impl Linkage {
    fn add(&mut self, other: &Linkage) {
        self.deployments_with_unknown_commit += other.deployments_with_unknown_commit;
        self.commits_with_unknown_parent += other.commits_with_unknown_parent;
        self.pull_requests_with_unknown_merge_commit +=
            other.pull_requests_with_unknown_merge_commit;
        self.incidents_with_unknown_deployment += other.incidents_with_unknown_deployment;
        self.incidents_unattributed += other.incidents_unattributed;
        self.pull_requests_without_issue += other.pull_requests_without_issue;
    }
}

/// A pull request with the boundaries of rule S. `b3` (merged) is `None` while it is open.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PullRow {
    pub repo: Sym,
    pub number: u64,
    #[serde(with = "micros_serde")]
    pub created_at: Timestamp,
    #[serde(with = "micros_serde::option")]
    pub closed_at: Option<Timestamp>,
    pub draft: bool,
    /// First commit: the earliest `authored_at` of its known commits.
    #[serde(with = "micros_serde::option")]
    pub b0: Option<Timestamp>,
    /// Ready for review: `ready_at` when it was opened as a draft, else `created_at`.
    #[serde(with = "micros_serde")]
    pub b1: Timestamp,
    /// The first review by someone other than the author and not a bot, never before `b1`.
    #[serde(with = "micros_serde::option")]
    pub first_review: Option<Timestamp>,
    /// Merged.
    #[serde(with = "micros_serde::option")]
    pub b3: Option<Timestamp>,
    /// Deployed: the first deployment that delivered its merge commit (D2).
    #[serde(with = "micros_serde::option")]
    pub b4: Option<Timestamp>,
    /// The first deployment, a baseline included, whose history contains its merge commit.
    #[serde(with = "micros_serde::option")]
    pub in_production_at: Option<Timestamp>,
    /// Whether the store has its merge commit; without it, "not deployed yet" cannot be told
    /// from "history not imported".
    pub merge_commit_known: bool,
    /// Whether it links to a tracker issue the store has.
    pub linked: bool,
    /// Hours in the tracker stages before coding, from the first linked issue; `None` without
    /// a linked issue.
    pub tracker: Option<pulls::TrackerHours>,
}

impl PullRow {
    /// `b2`: the first qualifying review, or `b3` when there is none (an unreviewed merge).
    pub fn b2(&self) -> Option<Timestamp> {
        self.first_review.or(self.b3)
    }

    /// Merged without a qualifying review.
    pub fn unreviewed(&self) -> bool {
        self.b3.is_some() && self.first_review.is_none()
    }

    /// The hours of one stage, clamped at 0; `None` when a boundary it needs is.
    pub fn stage_hours(&self, stage: crate::stages::Stage) -> Option<f64> {
        use crate::stages::Stage;
        let between = |from: Option<Timestamp>, to: Option<Timestamp>| match (from, to) {
            (Some(from), Some(to)) => {
                Some(hours((to - from).num_microseconds().unwrap_or(0).max(0)))
            }
            _ => None,
        };
        match stage {
            Stage::Backlog => self.tracker.map(|t| t.backlog),
            Stage::TrackerInProgress => self.tracker.map(|t| t.in_progress),
            Stage::TrackerReview => self.tracker.map(|t| t.review),
            Stage::Coding => between(self.b0, Some(self.b1)),
            Stage::Pickup => between(Some(self.b1), self.b2()),
            Stage::Review => between(self.b2(), self.b3),
            Stage::Deploy => between(self.b3, self.b4),
        }
    }
}

/// What one partition's repositories give.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Partition {
    pub repos: BTreeSet<Sym>,
    /// Counted deployments, without D3's `failed` and D5's "fix after an incident" yet.
    pub deployments: Vec<DeploymentRow>,
    /// Delivered changes, by (deployment time, service, sha).
    pub changes: Vec<ChangeRow>,
    pub pulls: Vec<PullRow>,
    pub linkage: Linkage,
}

/// Everything a report needs, independent of its window and scope.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub(crate) partitions: BTreeMap<Sym, Arc<Partition>>,
    /// The services each repository's deployment records go to (any status), kept for the
    /// repositories a batch did not touch.
    deploy_services: BTreeMap<Sym, Arc<BTreeSet<String>>>,
    /// Counted deployments by (time, service, id).
    pub deployments: Vec<DeploymentRow>,
    /// Delivered changes by (deployment time, service, sha).
    pub changes: Vec<ChangeRow>,
    pub incidents: Vec<IncidentRow>,
    pub linkage: Linkage,
    pub repos: BTreeSet<String>,
    pub services: BTreeSet<String>,
    /// Every pull request with its value-stream boundaries (rule S), by (repository, number).
    pub pulls: Vec<PullRow>,
    /// The services of each repository: where its deployments went, and the configured ones.
    pub repo_services: HashMap<String, BTreeSet<String>>,
}

impl Prepared {
    /// The services a repository's pull requests and incidents belong to.
    pub fn services_of_repo(&self, repo: &str, config: &Config) -> Vec<String> {
        match self.repo_services.get(repo) {
            Some(services) if !services.is_empty() => services.iter().cloned().collect(),
            _ => config.services_of_repo(repo),
        }
    }

    /// Prepares the whole model.
    pub fn new(model: &Model, config: &Config) -> Prepared {
        Prepared::default().update(model, config, None)
    }

    /// The rows after a batch was applied to the model: the partitions the batch touched are
    /// prepared again (`None`: all of them), the others kept, then the steps across
    /// partitions run.
    pub fn update(&self, model: &Model, config: &Config, touched: Option<&Dirty>) -> Prepared {
        let classifier = Classifier::new(model, config);
        let deploy_services: BTreeMap<Sym, Arc<BTreeSet<String>>> = model
            .repos
            .iter()
            .map(|(&repo, data)| {
                let kept = self
                    .deploy_services
                    .get(&repo)
                    .filter(|_| touched.is_some_and(|t| !t.repos.contains(&repo)));
                let services = match kept {
                    Some(services) => services.clone(),
                    None => {
                        let name = model.names.name(repo);
                        Arc::new(
                            data.deployments
                                .values()
                                .map(|d| {
                                    config.service_of_deployment(name, &d.id, d.service.as_deref())
                                })
                                .collect(),
                        )
                    }
                };
                (repo, services)
            })
            .collect();
        let mut next: BTreeMap<Sym, Arc<Partition>> = BTreeMap::new();
        let mut todo: Vec<BTreeSet<Sym>> = Vec::new();
        for repos in partitions(model, config, &deploy_services) {
            let key = *repos.first().expect("a partition has a repository");
            let kept = self.partitions.get(&key).filter(|old| {
                old.repos == repos && touched.is_some_and(|t| repos.is_disjoint(&t.repos))
            });
            match kept {
                Some(old) => {
                    next.insert(key, old.clone());
                }
                None => todo.push(repos),
            }
        }
        for partition in prepare_all(model, config, &classifier, todo) {
            let key = *partition
                .repos
                .first()
                .expect("a partition has a repository");
            next.insert(key, Arc::new(partition));
        }
        finish(next, deploy_services, model, config)
    }

    /// The rows of kept partitions (see [`crate::persist`]).
    pub(crate) fn of_partitions(
        partitions: BTreeMap<Sym, Arc<Partition>>,
        model: &Model,
        config: &Config,
    ) -> Prepared {
        // Nothing touched: every partition is kept.
        let kept = Prepared {
            partitions,
            ..Prepared::default()
        };
        kept.update(model, config, Some(&Dirty::default()))
    }
}

/// Prepares partitions on every core: the largest first, each taken by the next free thread.
fn prepare_all(
    model: &Model,
    config: &Config,
    classifier: &Classifier,
    mut todo: Vec<BTreeSet<Sym>>,
) -> Vec<Partition> {
    let size = |repos: &BTreeSet<Sym>| -> usize {
        repos
            .iter()
            .map(|r| model.repos[r].commits.len() + model.repos[r].pulls.len())
            .sum()
    };
    todo.sort_by_key(|repos| std::cmp::Reverse(size(repos)));
    crate::on_every_core(&todo, |repos| {
        prepare_partition(model, config, classifier, repos.clone())
    })
}

/// Which repositories a batch changed, with the ones whose links it changed (the issues their
/// texts name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    pub repos: BTreeSet<Sym>,
}

impl Dirty {
    /// The repositories to prepare again after `touched` was applied to `model`; `projects`
    /// are the tracker projects the model knew before.
    pub fn of(model: &Model, touched: &Touched, projects: &BTreeSet<Box<str>>) -> Dirty {
        let mut repos = touched.repos.clone();
        if touched.statuses {
            repos.extend(model.repos.keys().copied());
        }
        if !touched.issues.is_empty() {
            repos.extend(model.repos_mentioning(&touched.issues));
            // A project seen for the first time makes every key of it a link.
            let new_projects: BTreeSet<&str> = touched
                .issues
                .iter()
                .filter_map(|k| model.issues.get(k.as_str()))
                .map(|i| &*i.project)
                .filter(|p| !projects.contains(*p))
                .collect();
            if !new_projects.is_empty() {
                for (key, mentioning) in model.mentions.iter() {
                    let project = key.split('-').next().unwrap_or_default();
                    if new_projects.contains(project) {
                        repos.extend(mentioning);
                    }
                }
            }
        }
        Dirty { repos }
    }
}

/// Groups repositories into partitions: repositories connected by a service (its deployments
/// come from several repositories, or the configuration lists several) are one partition.
/// Each partition is its repositories in order; partitions by their first repository.
fn partitions(
    model: &Model,
    config: &Config,
    deploy_services: &BTreeMap<Sym, Arc<BTreeSet<String>>>,
) -> Vec<BTreeSet<Sym>> {
    let mut parent: BTreeMap<Sym, Sym> = model.repos.keys().map(|&r| (r, r)).collect();
    fn root(parent: &mut BTreeMap<Sym, Sym>, mut x: Sym) -> Sym {
        while parent[&x] != x {
            let up = parent[&parent[&x]];
            parent.insert(x, up);
            x = up;
        }
        x
    }
    let join = |parent: &mut BTreeMap<Sym, Sym>, a: Sym, b: Sym| {
        let (ra, rb) = (root(parent, a), root(parent, b));
        if ra != rb {
            parent.insert(ra.max(rb), ra.min(rb));
        }
    };
    let mut first_repo_of: HashMap<&str, Sym> = HashMap::new();
    for (&repo, services) in deploy_services {
        for service in services.iter() {
            match first_repo_of.get(service.as_str()) {
                Some(&other) => join(&mut parent, repo, other),
                None => {
                    first_repo_of.insert(service, repo);
                }
            }
        }
    }
    for service in &config.services {
        let repos: Vec<Sym> = service
            .repos
            .iter()
            .filter_map(|r| model.names.get(r))
            .filter(|r| model.repos.contains_key(r))
            .collect();
        for pair in repos.windows(2) {
            join(&mut parent, pair[0], pair[1]);
        }
    }
    let mut groups: BTreeMap<Sym, BTreeSet<Sym>> = BTreeMap::new();
    for repo in model.repos.keys().copied().collect::<Vec<_>>() {
        let r = root(&mut parent, repo);
        groups.entry(r).or_default().insert(repo);
    }
    groups.into_values().collect()
}

/// Steps 2 for one partition.
fn prepare_partition(
    model: &Model,
    config: &Config,
    classifier: &Classifier,
    repos: BTreeSet<Sym>,
) -> Partition {
    let mut linkage = Linkage::default();
    let counted = deployments::counted(model, config, &repos);
    let walked = attribution::attribute(model, classifier, &counted, &mut linkage);
    for &repo in &repos {
        linkage.commits_with_unknown_parent += model.repos[&repo].commits.with_unknown_parent();
    }
    let pulls = pulls::rows(
        model,
        config,
        classifier,
        &repos,
        &walked.merges,
        &mut linkage,
    );
    Partition {
        repos,
        deployments: walked.deployments,
        changes: walked.changes,
        pulls,
        linkage,
    }
}

/// Step 3, and the rows of all partitions together.
fn finish(
    partitions: BTreeMap<Sym, Arc<Partition>>,
    deploy_services: BTreeMap<Sym, Arc<BTreeSet<String>>>,
    model: &Model,
    config: &Config,
) -> Prepared {
    let mut linkage = Linkage::default();
    let mut deployments: Vec<DeploymentRow> = Vec::new();
    let mut changes: Vec<ChangeRow> = Vec::new();
    let mut pulls: Vec<PullRow> = Vec::new();
    for p in partitions.values() {
        linkage.add(&p.linkage);
        deployments.extend(p.deployments.iter().cloned());
        changes.extend(p.changes.iter().cloned());
        pulls.extend(p.pulls.iter().cloned());
    }
    deployments.sort_by(|a, b| (a.time, &a.service, &a.id).cmp(&(b.time, &b.service, &b.id)));
    // Names by rank (their order as text), so the sorts below compare numbers. A service's
    // changes and a repository's pull requests come from one partition, already in order: a
    // stable sort by (time, service) and by repository keeps that order.
    let rank = |syms: &mut Vec<Sym>| -> Vec<u32> {
        syms.sort_unstable();
        syms.dedup();
        syms.sort_by(|a, b| model.names.name(*a).cmp(model.names.name(*b)));
        let mut rank = vec![0u32; syms.iter().max().map_or(0, |&m| m as usize + 1)];
        for (i, &s) in syms.iter().enumerate() {
            rank[s as usize] = i as u32;
        }
        rank
    };
    let service_rank = rank(&mut deployments.iter().map(|d| d.service_sym).collect());
    changes.sort_by_key(|c| (c.deployed_at, service_rank[c.service as usize]));
    let repo_rank = rank(&mut model.repos.keys().copied().collect());
    pulls.sort_by_key(|p| repo_rank[p.repo as usize]);

    // The services of a repository: those its counted deployments went to, and the configured
    // ones (or the repository itself when none is).
    let mut repo_services: HashMap<String, BTreeSet<String>> = HashMap::new();
    for d in &deployments {
        repo_services
            .entry(d.repo.clone())
            .or_default()
            .insert(d.service.clone());
    }
    for (&repo, data) in &model.repos {
        if !data.pulls.is_empty() {
            repo_services
                .entry(model.names.name(repo).to_string())
                .or_default();
        }
    }
    for i in model.incidents.values() {
        if let Some(repo) = &i.repo {
            repo_services.entry(repo.to_string()).or_default();
        }
    }
    for (repo, services) in repo_services.iter_mut() {
        services.extend(config.services_of_repo(repo));
    }

    let incidents = incidents::attribute(
        model,
        &mut deployments,
        &repo_services,
        config,
        &mut linkage,
    );
    incidents::fixes_after_incidents(&mut deployments, &incidents, &repo_services, config);
    for d in &mut deployments {
        d.rework_reasons.sort_by_key(ReworkReason::clause);
        d.rework = !d.baseline && !d.rework_reasons.is_empty();
    }

    let mut repos: BTreeSet<String> = model
        .repos
        .keys()
        .map(|&r| model.names.name(r).to_string())
        .collect();
    repos.extend(
        model
            .incidents
            .values()
            .filter_map(|i| i.repo.as_deref().map(String::from)),
    );
    repos.extend(config.services.iter().flat_map(|s| s.repos.iter().cloned()));
    repos.extend(config.teams.iter().flat_map(|t| t.repos.iter().cloned()));
    let mut services: BTreeSet<String> = BTreeSet::new();
    for list in deploy_services.values() {
        services.extend(list.iter().cloned());
    }
    services.extend(incidents.iter().filter_map(|i| i.service.clone()));
    services.extend(config.services.iter().map(|s| s.name.clone()));
    services.extend(config.teams.iter().flat_map(|t| t.services.iter().cloned()));

    Prepared {
        partitions,
        deploy_services,
        deployments,
        changes,
        incidents,
        linkage,
        repos,
        services,
        pulls,
        repo_services,
    }
}
