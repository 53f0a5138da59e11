//! The window-independent half of the engine: who delivered what.
//!
//! Attribution walks the commit graph, which is a traversal and not a columnar operation, so it
//! is plain Rust over compact per-repository graphs (integer ids, parent lists in one flat
//! array). It runs over the whole dataset every time a snapshot is prepared, so history that
//! arrives out of order (a child before its parent, deployments before their commits) gives
//! exactly the answer in-order history gives. Its output is three frames, the rows every
//! number of a report is aggregated from, and the receipts a user can drill down into.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use flowmeter_core::{Config, Dataset, Deployment, Incident, PullRequest, Timestamp};

use crate::classify::Classifier;

pub(crate) const US_PER_HOUR: f64 = 3_600_000_000.0;

/// A counted deployment (D0): successful, to production, one per service and id.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    pub service: String,
    pub repo: String,
    pub id: String,
    pub sha: String,
    pub time: Timestamp,
    /// The first deployment of its service (per repository): it delivers nothing.
    pub baseline: bool,
    /// At least one incident is attributed to it (D3).
    pub failed: bool,
    /// Unplanned work caused by a failure in production (D5): at least one reason below.
    pub rework: bool,
    /// Why it is rework, with the evidence (empty when it is not).
    pub rework_reasons: Vec<ReworkReason>,
    /// How many changes it delivered (D2).
    pub changes: u32,
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
    fn clause(&self) -> u8 {
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

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// A change delivered by a deployment (D2), with its lead time.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    pub service: String,
    pub repo: String,
    pub sha: String,
    pub deployment_id: String,
    pub deployed_at: Timestamp,
    /// `authored_at`, or for a squash or rebase merge the first commit of its pull request.
    pub start: Timestamp,
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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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

/// Everything a report needs, independent of its window and scope.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub deployments: Vec<DeploymentRow>,
    pub changes: Vec<ChangeRow>,
    pub incidents: Vec<IncidentRow>,
    /// Every deployment record, counted or not, for listings of failed attempts.
    pub attempts: Vec<Deployment>,
    pub linkage: Linkage,
    pub repos: BTreeSet<String>,
    pub services: BTreeSet<String>,
    /// Every pull request with its value-stream boundaries (rule S).
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
}

/// A pull request with the boundaries of rule S. `b3` (merged) is `None` while it is open.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRow {
    pub repo: String,
    pub number: u64,
    pub title: Option<String>,
    pub author: Option<String>,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub draft: bool,
    /// First commit: the earliest `authored_at` of its known commits.
    pub b0: Option<Timestamp>,
    /// Ready for review: `ready_at` when it was opened as a draft, else `created_at`.
    pub b1: Timestamp,
    /// The first review by someone other than the author and not a bot, never before `b1`.
    pub first_review: Option<Timestamp>,
    /// Merged.
    pub b3: Option<Timestamp>,
    /// Deployed: the first deployment that delivered its merge commit (D2).
    pub b4: Option<Timestamp>,
    /// The first deployment, a baseline included, whose history contains its merge commit.
    pub in_production_at: Option<Timestamp>,
    /// Whether the store has its merge commit; without it, "not deployed yet" cannot be told
    /// from "history not imported".
    pub merge_commit_known: bool,
    /// Tracker issues it names in its title, head branch or commit subjects.
    pub issues: Vec<String>,
    /// Hours in the tracker stages before coding (backlog, in progress, review), from the
    /// first linked issue; `None` without a linked issue.
    pub tracker_hours: Option<[f64; 3]>,
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

    /// The stages in hours, in [`crate::stages::STAGES`] order: the three tracker stages (when
    /// an issue is linked), then coding, pickup, review and deploy, each clamped at 0 and
    /// `None` when a boundary it needs is.
    pub fn stage_hours(&self) -> [Option<f64>; 7] {
        let hours = |from: Option<Timestamp>, to: Option<Timestamp>| match (from, to) {
            (Some(from), Some(to)) => {
                Some((to - from).num_microseconds().unwrap_or(0).max(0) as f64 / US_PER_HOUR)
            }
            _ => None,
        };
        let tracker = |i: usize| self.tracker_hours.map(|t| t[i]);
        [
            tracker(0),
            tracker(1),
            tracker(2),
            hours(self.b0, Some(self.b1)),
            hours(Some(self.b1), self.b2()),
            hours(self.b2(), self.b3),
            hours(self.b3, self.b4),
        ]
    }
}

/// One repository's commit graph with integer ids.
struct Graph<'a> {
    index: HashMap<&'a str, u32>,
    shas: Vec<&'a str>,
    parent_start: Vec<u32>,
    parents: Vec<u32>,
    authored: Vec<Timestamp>,
    is_change: Vec<bool>,
    subjects: Vec<&'a str>,
    messages: Vec<&'a str>,
}

impl<'a> Graph<'a> {
    fn parents_of(&self, node: u32) -> &[u32] {
        let (a, b) = (
            self.parent_start[node as usize] as usize,
            self.parent_start[node as usize + 1] as usize,
        );
        &self.parents[a..b]
    }
}

fn build_graphs<'a>(dataset: &'a Dataset, linkage: &mut Linkage) -> HashMap<&'a str, Graph<'a>> {
    let mut by_repo: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in dataset.commits.iter().enumerate() {
        by_repo.entry(c.repo.as_str()).or_default().push(i);
    }
    let mut graphs = HashMap::with_capacity(by_repo.len());
    for (repo, members) in by_repo {
        let mut index = HashMap::with_capacity(members.len());
        let mut shas = Vec::with_capacity(members.len());
        for (n, &i) in members.iter().enumerate() {
            index.insert(dataset.commits[i].sha.as_str(), n as u32);
            shas.push(dataset.commits[i].sha.as_str());
        }
        let mut parent_start = Vec::with_capacity(members.len() + 1);
        let mut parents = Vec::with_capacity(members.len());
        let mut authored = Vec::with_capacity(members.len());
        let mut is_change = Vec::with_capacity(members.len());
        let mut subjects = Vec::with_capacity(members.len());
        let mut messages = Vec::with_capacity(members.len());
        for &i in &members {
            let c = &dataset.commits[i];
            parent_start.push(parents.len() as u32);
            let mut unknown = false;
            for p in &c.parents {
                match index.get(p.as_str()) {
                    Some(&n) => parents.push(n),
                    None => unknown = true,
                }
            }
            if unknown {
                linkage.commits_with_unknown_parent += 1;
            }
            authored.push(c.authored_at);
            is_change.push(c.is_change());
            subjects.push(c.subject());
            messages.push(c.message.as_deref().unwrap_or(""));
        }
        parent_start.push(parents.len() as u32);
        graphs.insert(
            repo,
            Graph {
                index,
                shas,
                parent_start,
                parents,
                authored,
                is_change,
                subjects,
                messages,
            },
        );
    }
    graphs
}

/// Pull requests of one repository by the shas that identify them.
#[derive(Default)]
struct PullIndex<'a> {
    by_merge_commit: HashMap<&'a str, &'a PullRequest>,
    by_commit: HashMap<&'a str, &'a PullRequest>,
}

fn index_pulls(dataset: &Dataset) -> HashMap<&str, PullIndex<'_>> {
    let mut index: HashMap<&str, PullIndex> = HashMap::new();
    for pr in &dataset.pull_requests {
        let entry = index.entry(pr.repo.as_str()).or_default();
        if pr.merged_at.is_some()
            && let Some(sha) = &pr.merge_commit_sha
        {
            entry.by_merge_commit.insert(sha.as_str(), pr);
        }
        for sha in &pr.commits {
            entry.by_commit.insert(sha.as_str(), pr);
        }
    }
    index
}

/// A deployment after D0's dedupe, before attribution.
struct Candidate<'a> {
    service: String,
    record: &'a Deployment,
    time: Timestamp,
}

/// Prepares a dataset under a configuration.
pub fn prepare(dataset: &Dataset, config: &Config) -> Prepared {
    let mut linkage = Linkage::default();
    let graphs = build_graphs(dataset, &mut linkage);
    let pulls = index_pulls(dataset);
    let classifier = Classifier::new(dataset, config);

    for pr in &dataset.pull_requests {
        if pr.merged_at.is_none() {
            continue;
        }
        let known = pr.merge_commit_sha.as_deref().is_some_and(|sha| {
            graphs
                .get(pr.repo.as_str())
                .is_some_and(|g| g.index.contains_key(sha))
        });
        if !known {
            linkage.pull_requests_with_unknown_merge_commit += 1;
        }
        if !classifier.links_issue(pr) {
            linkage.pull_requests_without_issue += 1;
        }
    }

    // D0: successful production records, one per (service, id); the latest finish wins.
    let mut candidates: HashMap<(String, &str), Candidate> = HashMap::new();
    for d in &dataset.deployments {
        if d.status != flowmeter_core::DeploymentStatus::Success
            || !config.is_production(&d.environment)
        {
            continue;
        }
        let service = config.service_of_deployment(&d.repo, &d.id, d.service.as_deref());
        let time = d.time();
        let key = (service.clone(), d.id.as_str());
        match candidates.get(&key) {
            Some(existing) if (existing.time, &existing.record.repo) >= (time, &d.repo) => {}
            _ => {
                candidates.insert(
                    key,
                    Candidate {
                        service,
                        record: d,
                        time,
                    },
                );
            }
        }
    }
    let mut by_service: HashMap<String, Vec<Candidate>> = HashMap::new();
    for (_, c) in candidates {
        by_service.entry(c.service.clone()).or_default().push(c);
    }
    let mut service_names: Vec<String> = by_service.keys().cloned().collect();
    service_names.sort();

    let mut deployments = Vec::new();
    let mut changes = Vec::new();
    // Deployments that delivered a fix (their index, the first fix change), for D5's "fix after
    // an incident" once incidents are attributed.
    let mut pending_fixes: Vec<(usize, String)> = Vec::new();
    let mut merge_delivered: HashMap<(&str, &str), Timestamp> = HashMap::new();
    let mut merge_contained: HashMap<(&str, &str), Timestamp> = HashMap::new();
    for service in &service_names {
        let mut list = by_service.remove(service).unwrap_or_default();
        list.sort_by(|a, b| (a.time, &a.record.id).cmp(&(b.time, &b.record.id)));
        // Per repository of the service: what earlier deployments already contained.
        let mut contained: HashMap<&str, Vec<bool>> = HashMap::new();
        // The previous deployment's (repo, sha, id), and the latest deployment of each commit.
        let mut previous: Option<(&str, &str, &str)> = None;
        let mut deployed: HashMap<(&str, &str), &str> = HashMap::new();
        for (position, candidate) in list.iter().enumerate() {
            let d = candidate.record;
            let graph = graphs.get(d.repo.as_str());
            let head = graph.and_then(|g| g.index.get(d.sha.as_str()).copied());
            if head.is_none() {
                linkage.deployments_with_unknown_commit += 1;
            }
            // D2: the first deployment of each service is its baseline.
            let baseline = position == 0;
            let mut delivered: Vec<u32> = Vec::new();
            let seen = contained
                .entry(d.repo.as_str())
                .or_insert_with(|| vec![false; graph.map_or(0, |g| g.authored.len())]);
            if let (Some(g), Some(head)) = (graph, head) {
                let mut stack = vec![head];
                while let Some(node) = stack.pop() {
                    if std::mem::replace(&mut seen[node as usize], true) {
                        continue;
                    }
                    delivered.push(node);
                    stack.extend(g.parents_of(node).iter().filter(|&&p| !seen[p as usize]));
                }
            }
            if let Some(g) = graph {
                for &node in &delivered {
                    let sha = sha_of(g, node);
                    if pulls
                        .get(d.repo.as_str())
                        .is_some_and(|p| p.by_merge_commit.contains_key(sha))
                    {
                        // Any deployment, the baseline too, puts it in production; only a
                        // later one delivers it (D2).
                        let key = (d.repo.as_str(), sha);
                        let earliest = |t: &mut Timestamp| *t = (*t).min(candidate.time);
                        merge_contained
                            .entry(key)
                            .and_modify(earliest)
                            .or_insert(candidate.time);
                        if !baseline {
                            merge_delivered
                                .entry(key)
                                .and_modify(earliest)
                                .or_insert(candidate.time);
                        }
                    }
                }
            }
            let mut first_fix: Option<&str> = None;
            let mut names_incident: Option<(&str, String)> = None;
            let mut delivered_changes = 0;
            if !baseline && let Some(g) = graph {
                let seen = &contained[d.repo.as_str()];
                delivered.sort_unstable();
                for &node in &delivered {
                    if !g.is_change[node as usize] {
                        continue;
                    }
                    let sha = sha_of(g, node);
                    let walk = Walk {
                        head: head.expect("a walk has a head"),
                        new: &delivered,
                        seen,
                    };
                    let (start, squash_of) =
                        change_start(g, node, sha, pulls.get(d.repo.as_str()), &walk);
                    let pull = pulls.get(d.repo.as_str()).and_then(|p| pull_of(p, sha));
                    let is_fix = classifier.is_fix(g.subjects[node as usize], pull);
                    if is_fix && first_fix.is_none() {
                        first_fix = Some(sha);
                    }
                    if names_incident.is_none() {
                        names_incident = classifier
                            .names_incident(g.subjects[node as usize], pull)
                            .map(|evidence| (sha, evidence));
                    }
                    delivered_changes += 1;
                    let lead_us = (candidate.time - start)
                        .num_microseconds()
                        .unwrap_or(i64::MAX)
                        .max(0);
                    changes.push(ChangeRow {
                        service: service.clone(),
                        repo: d.repo.clone(),
                        sha: sha.to_string(),
                        deployment_id: d.id.clone(),
                        deployed_at: candidate.time,
                        start,
                        squash_of,
                        lead_hours: lead_us as f64 / US_PER_HOUR,
                        fix: is_fix,
                    });
                }
            }
            // D5's clauses that need only the service's order; "fix after an incident" waits
            // for the incidents (below).
            let mut rework_reasons = Vec::new();
            if let Some((prev_repo, prev_sha, prev_id)) = previous {
                let reverts_previous = match (graph, head) {
                    (Some(g), Some(head)) if prev_repo == d.repo => {
                        let prev_subject = g.index.get(prev_sha).map(|&n| g.subjects[n as usize]);
                        reverts(
                            g.subjects[head as usize],
                            g.messages[head as usize],
                            prev_sha,
                            prev_subject,
                        )
                    }
                    _ => false,
                };
                if reverts_previous {
                    rework_reasons.push(ReworkReason::Revert {
                        reverted_deployment: prev_id.to_string(),
                    });
                }
                let redeploy = (prev_repo, prev_sha) == (d.repo.as_str(), d.sha.as_str());
                if !redeploy && let Some(earlier) = deployed.get(&(d.repo.as_str(), d.sha.as_str()))
                {
                    rework_reasons.push(ReworkReason::Rollback {
                        to_deployment: earlier.to_string(),
                    });
                }
            }
            if let Some((change, evidence)) = names_incident {
                rework_reasons.push(ReworkReason::FixOfIncident {
                    change: change.to_string(),
                    evidence,
                });
            }
            if let Some(change) = first_fix {
                pending_fixes.push((deployments.len(), change.to_string()));
            }
            previous = Some((d.repo.as_str(), d.sha.as_str(), d.id.as_str()));
            deployed.insert((d.repo.as_str(), d.sha.as_str()), d.id.as_str());
            deployments.push(DeploymentRow {
                service: service.clone(),
                repo: d.repo.clone(),
                id: d.id.clone(),
                sha: d.sha.clone(),
                time: candidate.time,
                baseline,
                failed: false,
                rework: false,
                rework_reasons,
                changes: delivered_changes,
            });
        }
    }

    // The services of a repository: those its counted deployments went to, and the configured
    // ones (or the repository itself when none is).
    let mut repo_services: HashMap<String, BTreeSet<String>> = HashMap::new();
    for d in &deployments {
        repo_services
            .entry(d.repo.clone())
            .or_default()
            .insert(d.service.clone());
    }
    for repo in dataset
        .pull_requests
        .iter()
        .map(|p| &p.repo)
        .chain(dataset.incidents.iter().filter_map(|i| i.repo.as_ref()))
    {
        if !repo_services.contains_key(repo) {
            repo_services.insert(repo.clone(), BTreeSet::new());
        }
    }
    for (repo, services) in repo_services.iter_mut() {
        services.extend(config.services_of_repo(repo));
    }
    let incidents = attribute_incidents(
        &dataset.incidents,
        &mut deployments,
        &repo_services,
        config,
        &mut linkage,
    );

    fixes_after_incidents(
        &mut deployments,
        &pending_fixes,
        &incidents,
        &repo_services,
        config,
    );
    for d in &mut deployments {
        d.rework_reasons.sort_by_key(ReworkReason::clause);
        d.rework = !d.baseline && !d.rework_reasons.is_empty();
    }

    let mut repos: BTreeSet<String> = BTreeSet::new();
    repos.extend(dataset.commits.iter().map(|c| c.repo.clone()));
    repos.extend(dataset.pull_requests.iter().map(|p| p.repo.clone()));
    repos.extend(dataset.deployments.iter().map(|d| d.repo.clone()));
    repos.extend(dataset.incidents.iter().filter_map(|i| i.repo.clone()));
    repos.extend(config.services.iter().flat_map(|s| s.repos.iter().cloned()));
    repos.extend(config.teams.iter().flat_map(|t| t.repos.iter().cloned()));
    let mut services: BTreeSet<String> = service_names.into_iter().collect();
    services.extend(
        dataset
            .deployments
            .iter()
            .map(|d| config.service_of_deployment(&d.repo, &d.id, d.service.as_deref())),
    );
    services.extend(incidents.iter().filter_map(|i| i.service.clone()));
    services.extend(config.services.iter().map(|s| s.name.clone()));
    services.extend(config.teams.iter().flat_map(|t| t.services.iter().cloned()));

    let tracker = Tracker {
        issues: dataset.issues.iter().map(|i| (i.key.as_str(), i)).collect(),
        categories: &dataset.status_categories,
    };
    let pulls = dataset
        .pull_requests
        .iter()
        .map(|pr| {
            pull_row(
                pr,
                graphs.get(pr.repo.as_str()),
                &merge_delivered,
                &merge_contained,
                config,
                &classifier,
                &tracker,
            )
        })
        .collect();

    Prepared {
        deployments,
        changes,
        incidents,
        attempts: dataset.deployments.clone(),
        linkage,
        repos,
        services,
        pulls,
        repo_services,
    }
}

/// Rule S's tracker stages of an issue up to `end` (the pull request's first commit, or ready):
/// backlog from creation to the first move into an in-progress status, then the time in each
/// status group, added up per group however often the issue moves back and forth. Time in a
/// done status counts in no stage.
pub(crate) fn tracker_hours(
    issue: &flowmeter_core::Issue,
    end: Timestamp,
    config: &Config,
    categories: &BTreeMap<String, String>,
) -> [f64; 3] {
    use flowmeter_core::config::StatusGroup;
    let mut transitions: Vec<&flowmeter_core::Transition> = issue.transitions.iter().collect();
    transitions.sort_by_key(|t| t.at);
    let hours = |from: Timestamp, to: Timestamp| {
        (to.min(end) - from.min(end))
            .num_microseconds()
            .unwrap_or(0)
            .max(0) as f64
            / US_PER_HOUR
    };
    let mut totals = [0.0; 3];
    let mut started = false;
    let mut since = issue.created_at;
    let mut group = StatusGroup::Backlog;
    for t in transitions {
        let slot = match (started, group) {
            (false, _) | (true, StatusGroup::Backlog) => Some(0),
            (true, StatusGroup::InProgress) => Some(1),
            (true, StatusGroup::Review) => Some(2),
            (true, StatusGroup::Done) => None,
        };
        if let Some(slot) = slot {
            totals[slot] += hours(since, t.at);
        }
        group = config
            .stages
            .group_with_category(&t.to, categories.get(&t.to).map(String::as_str));
        started |= group == StatusGroup::InProgress;
        since = t.at;
    }
    let slot = match (started, group) {
        (false, _) | (true, StatusGroup::Backlog) => Some(0),
        (true, StatusGroup::InProgress) => Some(1),
        (true, StatusGroup::Review) => Some(2),
        (true, StatusGroup::Done) => None,
    };
    if let Some(slot) = slot {
        totals[slot] += hours(since, end);
    }
    totals
}

/// The tracker issues by key, and the tracker's category of each status.
struct Tracker<'a> {
    issues: HashMap<&'a str, &'a flowmeter_core::Issue>,
    categories: &'a BTreeMap<String, String>,
}

/// Rule S's boundaries of one pull request.
fn pull_row(
    pr: &PullRequest,
    graph: Option<&Graph>,
    merge_delivered: &HashMap<(&str, &str), Timestamp>,
    merge_contained: &HashMap<(&str, &str), Timestamp>,
    config: &Config,
    classifier: &Classifier,
    tracker: &Tracker,
) -> PullRow {
    let b0 = graph.and_then(|g| {
        pr.commits
            .iter()
            .filter_map(|sha| g.index.get(sha.as_str()).map(|&n| g.authored[n as usize]))
            .min()
    });
    let b1 = pr.ready_at.unwrap_or(pr.created_at);
    let first_review = pr
        .reviews
        .iter()
        .filter(|r| Some(&r.reviewer) != pr.author.as_ref() && !config.is_bot(&r.reviewer))
        .map(|r| r.submitted_at.max(b1))
        .min();
    let merge_commit_known = pr
        .merge_commit_sha
        .as_deref()
        .is_some_and(|sha| graph.is_some_and(|g| g.index.contains_key(sha)));
    let b4 = match (pr.merged_at, &pr.merge_commit_sha) {
        (Some(_), Some(sha)) => merge_delivered
            .get(&(pr.repo.as_str(), sha.as_str()))
            .copied(),
        _ => None,
    };
    let linked = classifier.linked_issues(pr);
    let end = b0.unwrap_or(b1);
    let tracker = linked
        .iter()
        .filter_map(|key| tracker.issues.get(key.as_str()))
        .min_by_key(|issue| issue.created_at)
        .map(|issue| tracker_hours(issue, end, config, tracker.categories));
    PullRow {
        issues: linked,
        tracker_hours: tracker,
        repo: pr.repo.clone(),
        number: pr.number,
        title: pr.title.clone(),
        author: pr.author.clone(),
        created_at: pr.created_at,
        closed_at: pr.closed_at,
        draft: pr.draft,
        b0,
        b1,
        first_review,
        b3: pr.merged_at,
        b4,
        in_production_at: match (pr.merged_at, &pr.merge_commit_sha) {
            (Some(_), Some(sha)) => merge_contained
                .get(&(pr.repo.as_str(), sha.as_str()))
                .copied(),
            _ => None,
        },
        merge_commit_known,
    }
}

fn sha_of<'a>(g: &Graph<'a>, node: u32) -> &'a str {
    g.shas[node as usize]
}

fn pull_of<'p>(pulls: &PullIndex<'p>, sha: &str) -> Option<&'p PullRequest> {
    pulls
        .by_merge_commit
        .get(sha)
        .or_else(|| pulls.by_commit.get(sha))
        .copied()
}

/// D2's start of a change: its `authored_at`, except for a squash or rebase merge (the merge
/// commit of a merged pull request none of whose own commits the deployment contains), which
/// starts at the earliest `authored_at` of the pull request's commits, or at its `created_at`
/// when they are unknown.
/// What one deployment's walk saw: its head, the commits it newly contained (sorted), and
/// everything its service's deployments contained so far.
struct Walk<'w> {
    head: u32,
    new: &'w [u32],
    seen: &'w [bool],
}

impl Walk<'_> {
    /// Whether `node` is an ancestor of (or is) the head. The walk's new commits are; a commit
    /// no deployment contained is not; a commit an earlier deployment contained may have been
    /// deployed from a branch, so only a search from the head can tell.
    fn is_ancestor(&self, g: &Graph, node: u32) -> bool {
        if self.new.binary_search(&node).is_ok() {
            return true;
        }
        if !self.seen[node as usize] {
            return false;
        }
        let mut visited = vec![false; g.authored.len()];
        let mut stack = vec![self.head];
        while let Some(n) = stack.pop() {
            if n == node {
                return true;
            }
            if !std::mem::replace(&mut visited[n as usize], true) {
                stack.extend(g.parents_of(n).iter().filter(|&&p| !visited[p as usize]));
            }
        }
        false
    }
}

fn change_start(
    g: &Graph,
    node: u32,
    sha: &str,
    pulls: Option<&PullIndex>,
    walk: &Walk,
) -> (Timestamp, Option<u64>) {
    let own = g.authored[node as usize];
    let Some(pr) = pulls.and_then(|p| p.by_merge_commit.get(sha)) else {
        return (own, None);
    };
    let known: Vec<u32> = pr
        .commits
        .iter()
        .filter_map(|c| g.index.get(c.as_str()).copied())
        .collect();
    if known.iter().any(|&n| walk.is_ancestor(g, n)) {
        return (own, None);
    }
    let start = known
        .iter()
        .map(|&n| g.authored[n as usize])
        .min()
        .unwrap_or(pr.created_at);
    (start, Some(pr.number))
}

/// Whether a commit reverts the previous deployment's commit: git's revert subject of that
/// commit's subject, or git's "This reverts commit <sha>" line naming it.
fn reverts(subject: &str, message: &str, prev_sha: &str, prev_subject: Option<&str>) -> bool {
    if let Some(prev_subject) = prev_subject
        && subject == format!("Revert \"{prev_subject}\"")
    {
        return true;
    }
    message.split("This reverts commit ").skip(1).any(|rest| {
        let named: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        named.len() >= 7 && prev_sha.starts_with(&named)
    })
}

/// D5's "fix after an incident": a deployment that delivers a fix is rework when an incident of
/// its service was created at or before it and at most the incident window (D3) before it. An
/// incident's services: the one it names or was attributed to, else every service of its
/// repository.
fn fixes_after_incidents(
    deployments: &mut [DeploymentRow],
    pending_fixes: &[(usize, String)],
    incidents: &[IncidentRow],
    repo_services: &HashMap<String, BTreeSet<String>>,
    config: &Config,
) {
    let window = chrono::Duration::days(i64::from(config.metrics.incident_window_days));
    let mut by_service: HashMap<&str, Vec<(Timestamp, &str)>> = HashMap::new();
    for incident in incidents {
        let services: Vec<&str> = match (&incident.service, &incident.repo) {
            (Some(service), _) => vec![service.as_str()],
            (None, Some(repo)) => repo_services
                .get(repo)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        for service in services {
            by_service
                .entry(service)
                .or_default()
                .push((incident.created_at, incident.id.as_str()));
        }
    }
    for list in by_service.values_mut() {
        list.sort();
    }
    for (index, change) in pending_fixes {
        let d = &deployments[*index];
        let Some(list) = by_service.get(d.service.as_str()) else {
            continue;
        };
        // The latest incident created at or before the deployment, if within the window.
        let at_or_before = list.partition_point(|(created, _)| *created <= d.time);
        let latest = at_or_before.checked_sub(1).map(|i| list[i]);
        if let Some((created, id)) = latest
            && d.time - created <= window
        {
            let reason = ReworkReason::FixAfterIncident {
                change: change.clone(),
                incident: id.to_string(),
            };
            deployments[*index].rework_reasons.push(reason);
        }
    }
}

/// D3: an incident goes to the deployment it names, else to the latest deployment of its
/// service at or before it, at most `incident_window_days` older; else to none.
fn attribute_incidents(
    incidents: &[Incident],
    deployments: &mut [DeploymentRow],
    repo_services: &HashMap<String, BTreeSet<String>>,
    config: &Config,
    linkage: &mut Linkage,
) -> Vec<IncidentRow> {
    let window_us = i64::from(config.metrics.incident_window_days) * 24 * 3_600_000_000;
    let mut by_service: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in deployments.iter().enumerate() {
        by_service.entry(d.service.as_str()).or_default().push(i);
        by_id.entry(d.id.as_str()).or_default().push(i);
    }
    let mut attributed: HashSet<usize> = HashSet::new();
    let mut rows = Vec::with_capacity(incidents.len());
    for incident in incidents {
        let services: Vec<String> = match (&incident.service, &incident.repo) {
            (Some(s), _) => vec![s.clone()],
            (None, Some(repo)) => repo_services
                .get(repo)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_else(|| config.services_of_repo(repo)),
            (None, None) => Vec::new(),
        };
        let in_scope = |d: &DeploymentRow| services.contains(&d.service);
        let target = match &incident.deployment_id {
            Some(id) => {
                let found = by_id
                    .get(id.as_str())
                    .and_then(|list| list.iter().copied().find(|&i| in_scope(&deployments[i])));
                if found.is_none() {
                    linkage.incidents_with_unknown_deployment += 1;
                }
                found
            }
            None => services
                .iter()
                .filter_map(|s| by_service.get(s.as_str()))
                .flatten()
                .copied()
                .filter(|&i| deployments[i].time <= incident.created_at)
                .max_by(|&a, &b| {
                    (deployments[a].time, &deployments[a].id)
                        .cmp(&(deployments[b].time, &deployments[b].id))
                })
                .filter(|&i| {
                    (incident.created_at - deployments[i].time)
                        .num_microseconds()
                        .is_some_and(|age| age <= window_us)
                }),
        };
        if target.is_none() {
            linkage.incidents_unattributed += 1;
        }
        if let Some(i) = target {
            attributed.insert(i);
        }
        let service = match (&incident.service, target) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(i)) => Some(deployments[i].service.clone()),
            (None, None) if services.len() == 1 => Some(services[0].clone()),
            (None, None) => None,
        };
        let repo = incident
            .repo
            .clone()
            .or_else(|| target.map(|i| deployments[i].repo.clone()));
        let recovery_hours = incident.resolved_at.map(|r| {
            (r - incident.created_at).num_microseconds().unwrap_or(0) as f64 / US_PER_HOUR
        });
        rows.push(IncidentRow {
            service,
            repo,
            id: incident.id.clone(),
            created_at: incident.created_at,
            resolved_at: incident.resolved_at,
            recovery_hours,
            deployment_id: target.map(|i| deployments[i].id.clone()),
        });
    }
    for i in attributed {
        deployments[i].failed = true;
    }
    rows
}
