//! Rule S's boundaries of each pull request, and the tracker stages before coding.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flowmeter_core::Config;
use flowmeter_core::config::StatusGroup;

use crate::classify::Classifier;
use crate::model::{IssueModel, Micros, Model, Sym, timestamp};
use crate::prepare::attribution::Merges;
use crate::prepare::{Linkage, PullRow, hours};

/// Hours an issue spent in the tracker stages before its pull request's coding began.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackerHours {
    pub backlog: f64,
    pub in_progress: f64,
    pub review: f64,
}

/// Rule S's tracker stages of an issue up to `end` (the pull request's first commit, or ready):
/// backlog from creation to the first move into an in-progress status, then the time in each
/// status group, added up per group however often the issue moves back and forth. Time in a
/// done status counts in no stage.
pub fn tracker_hours(
    issue: &IssueModel,
    end: Micros,
    config: &Config,
    categories: &BTreeMap<String, String>,
) -> TrackerHours {
    let span = |from: Micros, to: Micros| hours((to.min(end) - from.min(end)).max(0));
    let mut totals = [0.0; 3];
    let mut started = false;
    let mut since = issue.created;
    let mut group = StatusGroup::Backlog;
    let slot = |started: bool, group: StatusGroup| match (started, group) {
        (false, _) | (true, StatusGroup::Backlog) => Some(0),
        (true, StatusGroup::InProgress) => Some(1),
        (true, StatusGroup::Review) => Some(2),
        (true, StatusGroup::Done) => None,
    };
    for (at, to) in &issue.transitions {
        if let Some(slot) = slot(started, group) {
            totals[slot] += span(since, *at);
        }
        group = config
            .stages
            .group_with_category(to, categories.get(&**to).map(String::as_str));
        started |= group == StatusGroup::InProgress;
        since = *at;
    }
    if let Some(slot) = slot(started, group) {
        totals[slot] += span(since, end);
    }
    TrackerHours {
        backlog: totals[0],
        in_progress: totals[1],
        review: totals[2],
    }
}

/// The rows of the pull requests of some repositories, in (repository, number) order.
pub(crate) fn rows(
    model: &Model,
    config: &Config,
    classifier: &Classifier,
    repos: &BTreeSet<Sym>,
    merges: &Merges,
    linkage: &mut Linkage,
) -> Vec<PullRow> {
    let mut bots: HashMap<Sym, bool> = HashMap::new();
    let mut is_bot = |login: Sym| {
        *bots
            .entry(login)
            .or_insert_with(|| config.is_bot(model.names.name(login)))
    };
    let mut rows = Vec::new();
    for &repo in repos {
        let data = &model.repos[&repo];
        let commits = &data.commits;
        for pr in data.pulls.values() {
            let merge_commit_known = pr.merge_commit.is_some_and(|n| commits.is_known(n));
            if pr.merged.is_some() {
                if !merge_commit_known {
                    linkage.pull_requests_with_unknown_merge_commit += 1;
                }
                if !classifier.links_issue(pr, commits) {
                    linkage.pull_requests_without_issue += 1;
                }
            }
            let b0 = pr
                .commits
                .iter()
                .filter(|&&n| commits.is_known(n))
                .map(|&n| commits.authored(n))
                .min();
            let b1 = pr.ready.unwrap_or(pr.created);
            let first_review = pr
                .reviews
                .iter()
                .filter(|(reviewer, _)| Some(*reviewer) != pr.author && !is_bot(*reviewer))
                .map(|(_, at)| (*at).max(b1))
                .min();
            let merged_node = match (pr.merged, pr.merge_commit) {
                (Some(_), Some(node)) => Some((repo, node)),
                _ => None,
            };
            let end = b0.unwrap_or(b1);
            let linked = classifier.linked_issues(pr, commits);
            let tracker = linked
                .iter()
                .min_by_key(|issue| issue.created)
                .map(|issue| tracker_hours(issue, end, config, &model.status_categories));
            rows.push(PullRow {
                repo,
                number: pr.number,
                created_at: timestamp(pr.created),
                closed_at: pr.closed.map(timestamp),
                draft: pr.draft,
                b0: b0.map(timestamp),
                b1: timestamp(b1),
                first_review: first_review.map(timestamp),
                b3: pr.merged.map(timestamp),
                b4: merged_node
                    .and_then(|k| merges.delivered.get(&k))
                    .map(|&t| timestamp(t)),
                in_production_at: merged_node
                    .and_then(|k| merges.contained.get(&k))
                    .map(|&t| timestamp(t)),
                merge_commit_known,
                linked: !linked.is_empty(),
                tracker,
            });
        }
    }
    rows
}
