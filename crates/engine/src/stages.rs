//! Rule S, the value stream: where a merged pull request's time went, stage by stage, which
//! stage is the bottleneck, and what is waiting in each stage now.

use polars::prelude::*;
use serde::Serialize;

use flowmeter_core::{DEFINITIONS_VERSION, Scope, Timestamp, Window};

use crate::prepare::{PullRow, US_PER_HOUR};
use crate::report::WindowDoc;

/// The stages in the order a change passes them: three from the tracker issue a pull request
/// links to, then four from the pull request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Backlog,
    TrackerInProgress,
    TrackerReview,
    Coding,
    Pickup,
    Review,
    Deploy,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Backlog,
        Stage::TrackerInProgress,
        Stage::TrackerReview,
        Stage::Coding,
        Stage::Pickup,
        Stage::Review,
        Stage::Deploy,
    ];

    /// The stage's name in documents (`docs/api.md`).
    pub fn id(self) -> &'static str {
        match self {
            Stage::Backlog => "backlog",
            Stage::TrackerInProgress => "tracker_in_progress",
            Stage::TrackerReview => "tracker_review",
            Stage::Coding => "coding",
            Stage::Pickup => "pickup",
            Stage::Review => "review",
            Stage::Deploy => "deploy",
        }
    }

    /// The stage as people say it.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Backlog => "Backlog",
            Stage::TrackerInProgress => "In progress",
            Stage::TrackerReview => "In review on the tracker",
            Stage::Coding => "Coding",
            Stage::Pickup => "Waiting for review",
            Stage::Review => "In review",
            Stage::Deploy => "Waiting for deploy",
        }
    }

    /// The stage of a document name.
    pub fn of_id(id: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.id() == id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagesReport {
    pub definitions_version: u32,
    pub window: WindowDoc,
    pub scope: Scope,
    pub pull_requests: PullCounts,
    pub stages: Vec<StageStat>,
    pub bottleneck: Option<Bottleneck>,
    pub work_in_progress: WorkInProgress,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullCounts {
    /// Pull requests merged in the window.
    pub merged: u64,
    /// Of those, merged without a review by someone other than the author and not a bot.
    pub unreviewed: u64,
    /// Of those, linked to no tracker issue (no known issue key in title, branch or commits).
    pub unlinked: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageStat {
    pub stage: &'static str,
    /// Pull requests for which the stage is known.
    pub count: u64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
    /// The stage's summed hours over the summed hours of all stages.
    pub share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bottleneck {
    pub stage: &'static str,
    pub share: f64,
    /// The same stage's share in the previous window of the same length.
    pub previous_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkInProgress {
    /// The moment the work is looked at: the window's end, or now when that is earlier.
    pub at: Timestamp,
    pub waiting_for_review: Vec<WipItem>,
    pub in_review: Vec<WipItem>,
    pub merged_not_deployed: Vec<WipItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WipItem {
    pub repo: String,
    pub number: u64,
    pub title: Option<String>,
    pub author: Option<String>,
    /// When it entered its current stage.
    pub since: Timestamp,
    pub age_hours: f64,
}

/// One stage over some pull requests: count, median, p90 and summed hours.
type Stat = (u64, Option<f64>, Option<f64>, f64);

/// Per stage: count, median, p90 and summed hours over the given pull requests.
fn stage_stats(pulls: &[&PullRow]) -> PolarsResult<Vec<Stat>> {
    let columns: Vec<Column> = Stage::ALL
        .iter()
        .map(|&stage| {
            let values: Vec<Option<f64>> = pulls.iter().map(|p| p.stage_hours(stage)).collect();
            Column::new(stage.id().into(), values)
        })
        .collect();
    let frame = DataFrame::new_infer_height(columns)?;
    let mut exprs = Vec::new();
    for name in Stage::ALL.map(Stage::id) {
        exprs.push(
            col(name)
                .count()
                .cast(DataType::UInt64)
                .alias(format!("{name}_count")),
        );
        exprs.push(col(name).median().alias(format!("{name}_median")));
        exprs.push(
            col(name)
                .quantile(lit(0.9), QuantileMethod::Linear)
                .alias(format!("{name}_p90")),
        );
        exprs.push(col(name).sum().alias(format!("{name}_sum")));
    }
    let out = frame.lazy().select(exprs).collect()?;
    let f = |name: String| -> PolarsResult<Option<f64>> {
        Ok(out
            .column(&name)?
            .as_materialized_series()
            .cast(&DataType::Float64)?
            .f64()?
            .get(0))
    };
    Stage::ALL
        .iter()
        .map(|stage| {
            let name = stage.id();
            Ok((
                f(format!("{name}_count"))?.unwrap_or(0.0) as u64,
                f(format!("{name}_median"))?,
                f(format!("{name}_p90"))?,
                f(format!("{name}_sum"))?.unwrap_or(0.0),
            ))
        })
        .collect()
}

fn shares(stats: &[Stat]) -> Vec<Option<f64>> {
    let total: f64 = stats.iter().map(|s| s.3).sum();
    stats
        .iter()
        .map(|s| (total > 0.0).then(|| s.3 / total))
        .collect()
}

/// A pull request's repository, title and author, for listings.
pub type Describe<'a> = dyn Fn(&PullRow) -> (String, Option<String>, Option<String>) + 'a;

/// Rule S for one window over the pull requests already filtered to a scope.
pub fn stages(
    pulls: &[&PullRow],
    window: Window,
    scope: Scope,
    now: Timestamp,
    describe: &Describe,
) -> PolarsResult<StagesReport> {
    let merged_in = |w: &Window| -> Vec<&PullRow> {
        pulls
            .iter()
            .copied()
            .filter(|p| p.b3.is_some_and(|t| w.contains(t)))
            .collect()
    };
    let current = merged_in(&window);
    let stats = stage_stats(&current)?;
    let current_shares = shares(&stats);
    let previous_shares = shares(&stage_stats(&merged_in(&window.previous()))?);
    let stages: Vec<StageStat> = Stage::ALL
        .iter()
        .zip(&stats)
        .zip(&current_shares)
        .map(|((stage, s), share)| StageStat {
            stage: stage.id(),
            count: s.0,
            median_hours: s.1,
            p90_hours: s.2,
            share: *share,
        })
        .collect();
    let bottleneck = current_shares
        .iter()
        .enumerate()
        .filter_map(|(i, share)| share.map(|s| (i, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, share)| Bottleneck {
            stage: Stage::ALL[i].id(),
            share,
            previous_share: previous_shares[i],
        });

    let at = window.end().min(now);
    let age =
        |since: Timestamp| (at - since).num_microseconds().unwrap_or(0).max(0) as f64 / US_PER_HOUR;
    let item = |p: &PullRow, since: Timestamp| {
        let (repo, title, author) = describe(p);
        WipItem {
            repo,
            number: p.number,
            title,
            author,
            since,
            age_hours: age(since),
        }
    };
    let mut wip = WorkInProgress {
        at,
        waiting_for_review: Vec::new(),
        in_review: Vec::new(),
        merged_not_deployed: Vec::new(),
    };
    for p in pulls {
        let closed_unmerged = p.closed_at.is_some_and(|c| c <= at) && p.b3.is_none_or(|m| m > at);
        if p.created_at >= at || closed_unmerged {
            continue;
        }
        match p.b3 {
            Some(merged) if merged <= at => {
                if p.merge_commit_known && p.in_production_at.is_none_or(|deployed| deployed > at) {
                    wip.merged_not_deployed.push(item(p, merged));
                }
            }
            // Still a draft, or not yet ready at `at`: nobody is asked to review it.
            _ if p.draft || p.b1 > at => {}
            _ => match p.first_review.filter(|r| *r <= at) {
                Some(review) => wip.in_review.push(item(p, review)),
                None => wip.waiting_for_review.push(item(p, p.b1)),
            },
        }
    }
    for list in [
        &mut wip.waiting_for_review,
        &mut wip.in_review,
        &mut wip.merged_not_deployed,
    ] {
        list.sort_by(|a, b| (a.since, &a.repo, a.number).cmp(&(b.since, &b.repo, b.number)));
    }
    Ok(StagesReport {
        definitions_version: DEFINITIONS_VERSION,
        window: window.into(),
        scope,
        pull_requests: PullCounts {
            merged: current.len() as u64,
            unreviewed: current.iter().filter(|p| p.unreviewed()).count() as u64,
            unlinked: current.iter().filter(|p| !p.linked).count() as u64,
        },
        stages,
        bottleneck,
        work_in_progress: wip,
    })
}

impl StagesReport {
    /// The document as the CLI prints it and the API returns it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports always serialize")
    }
}
