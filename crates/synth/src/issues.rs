//! A team's tracker project: Jira-like issues with their status history.
//!
//! Issues are planned up front for the whole span (so keys rise with creation time, as in a
//! real tracker), then pull requests of the team's repositories claim them: a claimed issue's
//! history follows its pull request (in progress at the first commit, in review when the pull
//! request is ready, back in progress after a change request, done after the merge). Unclaimed
//! issues get a history of their own, and some stay in the backlog.

use std::io;

use flowmeter_core::{Issue, Record, Transition};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::org::Org;
use crate::text::{
    EPIC_SUFFIXES, ISSUE_LABELS, OUTAGES, STORY_VERBS, SYMPTOMS, TASK_VERBS, capitalize,
};
use crate::{
    DAY, END, HOUR, MINUTE, Plan, Secs, Sink, chance, exp, next_arrival, pick, rng_for, ts,
    weighted,
};

const TO_DO: &str = "To Do";
const IN_PROGRESS: &str = "In Progress";
const IN_REVIEW: &str = "In Review";
const DONE: &str = "Done";

/// The type of an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Epic,
    Story,
    Task,
    Bug,
    Incident,
}

impl Kind {
    /// The type's name in the tracker.
    fn name(self) -> &'static str {
        match self {
            Kind::Epic => "Epic",
            Kind::Story => "Story",
            Kind::Task => "Task",
            Kind::Bug => "Bug",
            Kind::Incident => "Incident",
        }
    }
}

/// What kind of issue a pull request looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A story or a task.
    Work,
    Bug,
}

/// The pull request that worked on an issue, as its times.
pub(crate) struct Work {
    /// The pull request's first commit.
    pub start: Secs,
    /// When the pull request became ready for review.
    pub review: Secs,
    /// A change request and the review after it, which send the issue back and forth.
    pub rework: Option<(Secs, Secs)>,
    pub end: WorkEnd,
    pub assignee: Option<String>,
}

/// How the pull request ended.
pub(crate) enum WorkEnd {
    Merged(Secs),
    Closed(Secs),
}

enum State {
    Free,
    Claimed,
    Worked(Work),
}

struct Planned {
    created: Secs,
    kind: Kind,
    summary: String,
    /// The index of its epic.
    epic: Option<usize>,
    labels: Vec<String>,
    points: Option<f64>,
    state: State,
}

/// The issues of one team's project.
pub(crate) struct Backlog {
    key: &'static str,
    members: Vec<usize>,
    issues: Vec<Planned>,
    rng: ChaCha8Rng,
}

impl Backlog {
    /// Plans the issues a team files over the span, in creation order.
    pub(crate) fn plan(org: &Org, team: usize, plan: &Plan, seed: u64) -> Backlog {
        let mut rng = rng_for(seed, 0x1_0000 + team as u64);
        let spec = &org.teams[team];
        let gap = (END - plan.start) as f64 / spec.expected_issues.max(1.0);
        let mut issues: Vec<Planned> = Vec::with_capacity(spec.expected_issues as usize + 16);
        let mut epics: Vec<usize> = Vec::new();
        let mut t = plan.start;
        loop {
            t = next_arrival(&mut rng, t, gap / plan.growth(t));
            if t >= END {
                break;
            }
            let kind = [
                Kind::Story,
                Kind::Task,
                Kind::Bug,
                Kind::Incident,
                Kind::Epic,
            ][weighted(&mut rng, &[44, 28, 22, 4, 2])];
            let thing = *pick(&mut rng, spec.things);
            let summary = match kind {
                Kind::Story => format!("{} {thing}", pick(&mut rng, STORY_VERBS)),
                Kind::Task => format!("{} {thing}", pick(&mut rng, TASK_VERBS)),
                Kind::Bug => format!("{} {}", capitalize(thing), pick(&mut rng, SYMPTOMS)),
                Kind::Incident => format!("Postmortem: {thing} {}", pick(&mut rng, OUTAGES)),
                Kind::Epic => format!("{} {}", capitalize(thing), pick(&mut rng, EPIC_SUFFIXES)),
            };
            let recent_epics = &epics[epics.len().saturating_sub(4)..];
            let epic = match kind {
                Kind::Story | Kind::Task | Kind::Bug
                    if !recent_epics.is_empty() && chance(&mut rng, 0.45) =>
                {
                    Some(*pick(&mut rng, recent_epics))
                }
                _ => None,
            };
            let mut labels = Vec::new();
            match kind {
                Kind::Story | Kind::Task => {
                    for _ in 0..rng.random_range(0..3) {
                        let label = pick(&mut rng, ISSUE_LABELS).to_string();
                        if !labels.contains(&label) {
                            labels.push(label);
                        }
                    }
                }
                Kind::Bug => {
                    if chance(&mut rng, 0.3) {
                        labels.push("customer-reported".into());
                    }
                    if chance(&mut rng, 0.2) {
                        labels.push("regression".into());
                    }
                }
                Kind::Incident => labels.push("incident".into()),
                Kind::Epic => {}
            }
            let points = match kind {
                Kind::Story if chance(&mut rng, 0.85) => Some(
                    [1.0, 2.0, 3.0, 5.0, 8.0, 13.0][weighted(&mut rng, &[10, 20, 30, 25, 10, 5])],
                ),
                Kind::Task | Kind::Bug if chance(&mut rng, 0.35) => {
                    Some([1.0, 2.0, 3.0][rng.random_range(0..3)])
                }
                _ => None,
            };
            if kind == Kind::Epic {
                epics.push(issues.len());
            }
            issues.push(Planned {
                created: t,
                kind,
                summary,
                epic,
                labels,
                points,
                state: State::Free,
            });
        }
        Backlog {
            key: spec.key,
            members: spec.members.clone(),
            issues,
            rng,
        }
    }

    /// Claims an unclaimed issue of the wanted kind for a pull request whose first commit is at
    /// `at`: one filed at least an hour before, the most recent found among the last few dozen.
    pub(crate) fn claim(&mut self, at: Secs, want: Want, rng: &mut ChaCha8Rng) -> Option<usize> {
        let before = at - HOUR - exp(rng, 4.0 * DAY as f64);
        let end = self.issues.partition_point(|i| i.created <= before);
        let found = (end.saturating_sub(60)..end).rev().find(|&i| {
            let issue = &self.issues[i];
            matches!(issue.state, State::Free)
                && match want {
                    Want::Work => matches!(issue.kind, Kind::Story | Kind::Task),
                    Want::Bug => issue.kind == Kind::Bug,
                }
        })?;
        self.issues[found].state = State::Claimed;
        Some(found)
    }

    /// The key of an issue, such as `PAY-123`.
    pub(crate) fn key(&self, issue: usize) -> String {
        format!("{}-{}", self.key, issue + 1)
    }

    pub(crate) fn summary(&self, issue: usize) -> &str {
        &self.issues[issue].summary
    }

    /// Records the pull request that worked on a claimed issue.
    pub(crate) fn work(&mut self, issue: usize, work: Work) {
        self.issues[issue].state = State::Worked(work);
    }

    /// Writes every issue with its history up to the end of the span.
    pub(crate) fn write(mut self, org: &Org, sink: &mut Sink) -> io::Result<()> {
        let issues = std::mem::take(&mut self.issues);
        for (i, issue) in issues.iter().enumerate() {
            let steps = self.history(issue);
            let mut transitions = Vec::with_capacity(steps.len());
            let mut previous = issue.created;
            let mut status = TO_DO;
            for (at, from, to) in steps {
                let at = at.max(previous + MINUTE);
                if at >= END {
                    break;
                }
                transitions.push(Transition {
                    at: ts(at),
                    from: Some(from.to_string()),
                    to: to.to_string(),
                });
                previous = at;
                status = to;
            }
            let assignee = match &issue.state {
                State::Worked(work) if work.assignee.is_some() => work.assignee.clone(),
                _ if status == TO_DO && chance(&mut self.rng, 0.5) => None,
                _ if self.members.is_empty() => None,
                _ => {
                    let member = *pick(&mut self.rng, &self.members);
                    Some(org.people[member].login.clone())
                }
            };
            sink.write(Record::Issue(Issue {
                key: self.key(i),
                project: self.key.to_string(),
                issue_type: issue.kind.name().to_string(),
                created_at: ts(issue.created),
                summary: Some(issue.summary.clone()),
                status: Some(status.to_string()),
                epic: issue.epic.map(|e| self.key(e)),
                parent: None,
                assignee,
                labels: issue.labels.clone(),
                story_points: issue.points,
                resolved_at: (status == DONE).then(|| ts(previous)),
                transitions,
            }))?;
        }
        Ok(())
    }

    /// The planned status changes of an issue as (at, from, to), in order; times may still
    /// need nudging apart and cutting at the end of the span.
    fn history(&mut self, issue: &Planned) -> Vec<(Secs, &'static str, &'static str)> {
        let rng = &mut self.rng;
        let mut steps = Vec::new();
        match &issue.state {
            State::Worked(work) => {
                let start = (work.start - exp(rng, 2.0 * HOUR as f64)).max(issue.created);
                steps.push((start, TO_DO, IN_PROGRESS));
                steps.push((work.review, IN_PROGRESS, IN_REVIEW));
                if let Some((back, again)) = work.rework {
                    steps.push((back, IN_REVIEW, IN_PROGRESS));
                    steps.push((again, IN_PROGRESS, IN_REVIEW));
                }
                match work.end {
                    WorkEnd::Merged(at) => {
                        steps.push((at + exp(rng, HOUR as f64), IN_REVIEW, DONE));
                    }
                    WorkEnd::Closed(at) => steps.push((at, IN_REVIEW, TO_DO)),
                }
            }
            State::Free | State::Claimed => {
                let mut t = issue.created;
                let mut after = |mean: f64, rng: &mut ChaCha8Rng| {
                    t += MINUTE + exp(rng, mean);
                    t
                };
                match issue.kind {
                    Kind::Epic => {
                        steps.push((after(7.0 * DAY as f64, rng), TO_DO, IN_PROGRESS));
                        if chance(rng, 0.8) {
                            steps.push((after(90.0 * DAY as f64, rng), IN_PROGRESS, DONE));
                        }
                    }
                    Kind::Incident => {
                        steps.push((after(20.0 * MINUTE as f64, rng), TO_DO, IN_PROGRESS));
                        steps.push((after(6.0 * HOUR as f64, rng), IN_PROGRESS, DONE));
                    }
                    _ if chance(rng, 0.3) => {}
                    _ => {
                        steps.push((after(14.0 * DAY as f64, rng), TO_DO, IN_PROGRESS));
                        if chance(rng, 0.6) {
                            steps.push((after(3.0 * DAY as f64, rng), IN_PROGRESS, IN_REVIEW));
                            if chance(rng, 0.1) {
                                steps.push((after(DAY as f64, rng), IN_REVIEW, IN_PROGRESS));
                                steps.push((after(DAY as f64, rng), IN_PROGRESS, IN_REVIEW));
                            }
                            steps.push((after(DAY as f64, rng), IN_REVIEW, DONE));
                        } else {
                            steps.push((after(4.0 * DAY as f64, rng), IN_PROGRESS, DONE));
                        }
                    }
                }
            }
        }
        steps
    }
}
