//! D2: which deployment delivered which change, with its lead time; and D5's clauses that need
//! only a service's deployment order (revert, rollback, fix of an incident).
//!
//! Each service's deployments are walked in order. A deployment delivers the commits of its
//! history that no earlier deployment of its service contained: a walk from its commit along
//! the parent links that stops at contained commits. The first deployment is the baseline: it
//! contains its history but delivers nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::classify::Classifier;
use crate::model::{Commits, Micros, Model, Pull, Sym, timestamp};
use crate::prepare::deployments::Candidate;
use crate::prepare::{ChangeRow, DeploymentRow, Linkage, ReworkReason, hours};

/// When each merged pull request's merge commit was first contained by a deployment (a
/// baseline included) and first delivered by one, by (repository, node).
#[derive(Debug, Default)]
pub struct Merges {
    pub contained: HashMap<(Sym, u32), Micros>,
    pub delivered: HashMap<(Sym, u32), Micros>,
}

/// The rows of one partition's deployments and changes.
#[derive(Debug, Default)]
pub struct Walked {
    pub deployments: Vec<DeploymentRow>,
    /// By (deployment time, service, sha).
    pub changes: Vec<ChangeRow>,
    pub merges: Merges,
}

/// A repository's pull requests by the commits that identify them.
#[derive(Default)]
pub(crate) struct PullIndex<'a> {
    pub by_merge_commit: HashMap<u32, &'a Pull>,
    pub by_commit: HashMap<u32, &'a Pull>,
}

impl<'a> PullIndex<'a> {
    pub fn of(pulls: impl Iterator<Item = &'a Pull>) -> PullIndex<'a> {
        let mut index = PullIndex::default();
        for pr in pulls {
            if pr.merged.is_some()
                && let Some(node) = pr.merge_commit
            {
                index.by_merge_commit.insert(node, pr);
            }
            for &node in &pr.commits {
                index.by_commit.insert(node, pr);
            }
        }
        index
    }

    /// The change's pull request: the one it is the merge commit of, else one listing it.
    pub fn pull_of(&self, node: u32) -> Option<&'a Pull> {
        self.by_merge_commit
            .get(&node)
            .or_else(|| self.by_commit.get(&node))
            .copied()
    }
}

/// Walks every service's deployments of a partition.
pub(crate) fn attribute(
    model: &Model,
    classifier: &Classifier,
    counted: &BTreeMap<String, Vec<Candidate>>,
    linkage: &mut Linkage,
) -> Walked {
    let mut walked = Walked::default();
    let mut indexes: HashMap<Sym, PullIndex> = HashMap::new();
    for (service, list) in counted {
        let service_sym = model.names.get(service).unwrap_or(Sym::MAX);
        // Per repository of the service: what earlier deployments already contained.
        let mut contained: HashMap<Sym, Vec<bool>> = HashMap::new();
        // The previous deployment (repo, node, id), and the latest deployment of each commit.
        let mut previous: Option<(Sym, u32, &str)> = None;
        let mut deployed: HashMap<(Sym, u32), &str> = HashMap::new();
        let mut changes: Vec<ChangeRow> = Vec::new();
        for (position, candidate) in list.iter().enumerate() {
            let d = candidate.record;
            let repo = candidate.repo;
            let commits = &model.repos[&repo].commits;
            let pulls = indexes
                .entry(repo)
                .or_insert_with(|| PullIndex::of(model.repos[&repo].pulls.values()));
            let head = Some(d.node).filter(|&n| commits.is_known(n));
            if head.is_none() {
                linkage.deployments_with_unknown_commit += 1;
            }
            let baseline = position == 0;
            let seen = contained
                .entry(repo)
                .or_insert_with(|| vec![false; commits.len()]);
            if seen.len() < commits.len() {
                seen.resize(commits.len(), false);
            }
            let mut delivered: Vec<u32> = Vec::new();
            if let Some(head) = head {
                let mut stack = vec![head];
                while let Some(node) = stack.pop() {
                    if std::mem::replace(&mut seen[node as usize], true) {
                        continue;
                    }
                    delivered.push(node);
                    stack.extend(
                        commits
                            .parents(node)
                            .iter()
                            .filter(|&&p| !seen[p as usize] && commits.is_known(p)),
                    );
                }
            }
            for &node in &delivered {
                if pulls.by_merge_commit.contains_key(&node) {
                    // Any deployment, the baseline too, puts it in production; only a later one
                    // delivers it (D2).
                    let earliest = |t: &mut Micros| *t = (*t).min(candidate.time);
                    let key = (repo, node);
                    let merges = &mut walked.merges;
                    merges
                        .contained
                        .entry(key)
                        .and_modify(earliest)
                        .or_insert(candidate.time);
                    if !baseline {
                        merges
                            .delivered
                            .entry(key)
                            .and_modify(earliest)
                            .or_insert(candidate.time);
                    }
                }
            }
            let mut first_fix: Option<u32> = None;
            let mut names_incident: Option<(u32, String)> = None;
            let mut delivered_changes = 0;
            let deployment_id: Arc<str> = Arc::from(&*d.id);
            if let (false, Some(head)) = (baseline, head) {
                let seen = &contained[&repo];
                delivered.sort_unstable();
                let walk = Walk {
                    head,
                    new: &delivered,
                    seen,
                };
                let mut mine: Vec<ChangeRow> = Vec::new();
                // In sha order: the first fix and the first change naming an incident are the
                // evidence, whatever order commits arrived in.
                let mut by_sha: Vec<u32> = delivered
                    .iter()
                    .copied()
                    .filter(|&n| commits.is_change(n))
                    .collect();
                by_sha.sort_by(|&a, &b| commits.sha(a).cmp(commits.sha(b)));
                for node in by_sha {
                    let (start, squash_of) = change_start(commits, node, pulls, &walk);
                    let pull = pulls.pull_of(node);
                    let subject = commits.subject(node);
                    let is_fix = classifier.is_fix(subject, pull, commits);
                    if is_fix && first_fix.is_none() {
                        first_fix = Some(node);
                    }
                    if names_incident.is_none() {
                        names_incident = classifier
                            .names_incident(subject, pull, commits)
                            .map(|evidence| (node, evidence));
                    }
                    delivered_changes += 1;
                    mine.push(ChangeRow {
                        service: service_sym,
                        repo,
                        node,
                        deployment_id: deployment_id.clone(),
                        deployed_at: candidate.time,
                        start,
                        squash_of,
                        lead_hours: hours((candidate.time - start).max(0)),
                        fix: is_fix,
                    });
                }
                changes.extend(mine);
            }
            let mut rework_reasons = Vec::new();
            if let Some((prev_repo, prev_node, prev_id)) = previous {
                let reverts_previous = match head {
                    Some(head) if prev_repo == repo => reverts(commits, head, prev_node),
                    _ => false,
                };
                if reverts_previous {
                    rework_reasons.push(ReworkReason::Revert {
                        reverted_deployment: prev_id.to_string(),
                    });
                }
                let redeploy = (prev_repo, prev_node) == (repo, d.node);
                if !redeploy && let Some(earlier) = deployed.get(&(repo, d.node)) {
                    rework_reasons.push(ReworkReason::Rollback {
                        to_deployment: earlier.to_string(),
                    });
                }
            }
            if let Some((change, evidence)) = names_incident {
                rework_reasons.push(ReworkReason::FixOfIncident {
                    change: commits.sha(change).to_string(),
                    evidence,
                });
            }
            previous = Some((repo, d.node, &d.id));
            deployed.insert((repo, d.node), &d.id);
            walked.deployments.push(DeploymentRow {
                service: service.clone(),
                repo: model.names.name(repo).to_string(),
                id: d.id.to_string(),
                sha: commits.sha(d.node).to_string(),
                time: timestamp(candidate.time),
                baseline,
                failed: false,
                rework: false,
                rework_reasons,
                changes: delivered_changes,
                service_sym,
                repo_sym: repo,
                first_fix: first_fix.map(|n| commits.sha(n).to_string()),
            });
        }
        walked.changes.extend(changes);
    }
    // By (deployment time, service, sha): services are walked in name order and each
    // deployment's changes are by sha, so a stable sort by time finishes the order.
    walked.changes.sort_by_key(|c| c.deployed_at);
    walked
}

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
    fn is_ancestor(&self, commits: &Commits, node: u32) -> bool {
        if self.new.binary_search(&node).is_ok() {
            return true;
        }
        if !self.seen.get(node as usize).copied().unwrap_or(false) {
            return false;
        }
        let mut visited = vec![false; commits.len()];
        let mut stack = vec![self.head];
        while let Some(n) = stack.pop() {
            if n == node {
                return true;
            }
            if !std::mem::replace(&mut visited[n as usize], true) {
                stack.extend(commits.parents(n).iter().filter(|&&p| !visited[p as usize]));
            }
        }
        false
    }
}

/// D2's start of a change: its `authored_at`, except for a squash or rebase merge (the merge
/// commit of a merged pull request none of whose own commits the deployment contains), which
/// starts at the earliest `authored_at` of the pull request's commits, or at its `created_at`
/// when they are unknown.
fn change_start(
    commits: &Commits,
    node: u32,
    pulls: &PullIndex,
    walk: &Walk,
) -> (Micros, Option<u64>) {
    let own = commits.authored(node);
    let Some(pr) = pulls.by_merge_commit.get(&node) else {
        return (own, None);
    };
    let known: Vec<u32> = pr
        .commits
        .iter()
        .copied()
        .filter(|&c| commits.is_known(c))
        .collect();
    if known.iter().any(|&n| walk.is_ancestor(commits, n)) {
        return (own, None);
    }
    let start = known
        .iter()
        .map(|&n| commits.authored(n))
        .min()
        .unwrap_or(pr.created);
    (start, Some(pr.number))
}

/// Whether a commit reverts the previous deployment's commit: git's revert subject of that
/// commit's subject, or git's "This reverts commit <sha>" line naming it.
fn reverts(commits: &Commits, head: u32, previous: u32) -> bool {
    if commits.is_known(previous)
        && commits.subject(head) == format!("Revert \"{}\"", commits.subject(previous))
    {
        return true;
    }
    let previous_sha = commits.sha(previous);
    commits
        .reverted(head)
        .iter()
        .any(|named| previous_sha.starts_with(&**named))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::batch_of;
    use flowmeter_core::{Commit, Config, Record};

    fn commit(sha: &str, parents: &[&str], message: &str) -> Record {
        Record::Commit(Commit {
            repo: "r/r".into(),
            sha: sha.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            authored_at: "2024-03-01T00:00:00Z".parse().unwrap(),
            committed_at: "2024-03-01T00:00:00Z".parse().unwrap(),
            author: None,
            message: Some(message.into()),
        })
    }

    #[test]
    fn a_revert_names_the_previous_commit_by_subject_or_by_sha() {
        let model = Model::of(&batch_of([
            commit("aaaaaaa1", &[], "Add export"),
            commit("bbbbbbb2", &["aaaaaaa1"], "Revert \"Add export\""),
            commit(
                "ccccccc3",
                &["bbbbbbb2"],
                "Undo\n\nThis reverts commit bbbbbbb.",
            ),
            commit(
                "ddddddd4",
                &["ccccccc3"],
                "Undo\n\nThis reverts commit bbbbbb.",
            ),
        ]));
        let commits = &model.repo(model.names.get("r/r").unwrap()).unwrap().commits;
        let n = |s: &str| commits.node(s).unwrap();
        assert!(reverts(commits, n("bbbbbbb2"), n("aaaaaaa1")));
        assert!(reverts(commits, n("ccccccc3"), n("bbbbbbb2")));
        assert!(
            !reverts(commits, n("ddddddd4"), n("ccccccc3")),
            "6 hex digits are too few"
        );
        assert!(!reverts(commits, n("ccccccc3"), n("aaaaaaa1")));
        let _ = Config::default();
    }
}
