//! One repository's history as a discrete-event simulation.
//!
//! Events (a pull request's first commit, its opening, its merge or close, a direct push, a
//! deployment, the repair after an incident) sit in a queue ordered by time and are handled one
//! by one, so each pull request branches off the `main` of its first commit, lands on the
//! `main` of its merge, and each deployment ships the `main` of its time. Only pull requests in
//! flight are held in memory; everything else is written as soon as it happens.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::io;

use flowmeter_core::{Commit, Deployment, DeploymentStatus, Incident, PullRequest, Record, Review};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::issues::{Backlog, Want, Work, WorkEnd};
use crate::org::{Author, OWNER, Org, Repo, Team};
use crate::text::{
    DEPENDENCIES, DIRECT_PUSHES, FOLLOW_UPS, HOTFIX_ACTIONS, INCIDENT_TITLES, PR_LABELS,
    REVIEW_BOTS, STORY_VERBS, TASK_VERBS, decapitalize, fill, slug,
};
use crate::{
    DAY, END, HOUR, MINUTE, Plan, Secs, Sha, ShaGen, Sink, Tier, WEEK, after, chance, exp,
    lognormal, minutes, next_arrival, pick, rng_for, ts, weighted,
};

/// Simulates one repository from its first commit to the end of the span.
pub(crate) fn simulate(
    org: &Org,
    repo: usize,
    plan: &Plan,
    seed: u64,
    backlog: &mut Backlog,
    sink: &mut Sink,
) -> io::Result<()> {
    let repo = &org.repos[repo];
    let mut sim = Sim {
        org,
        repo,
        team: &org.teams[repo.team],
        plan,
        rng: rng_for(seed, repo.index as u64),
        shas: ShaGen::new(seed, repo.index),
        queue: BinaryHeap::new(),
        seq: 0,
        tip: Sha(0),
        next_number: 1,
        next_deploy: 1,
        releases: 0,
        services: vec![ServiceState::default(); repo.services.len()],
        recent: VecDeque::new(),
    };
    sim.run(backlog, sink)
}

/// Like [`after`], except that urgent work does not wait for office hours.
fn later(rng: &mut ChaCha8Rng, t: Secs, mean: f64, urgent: bool) -> Secs {
    if urgent {
        t + exp(rng, mean)
    } else {
        after(rng, t, mean)
    }
}

/// Something that happens at a time.
enum Event {
    /// The first commit of the next ordinary pull request.
    NextPr,
    Open(Box<Pr>),
    Finish(Box<Pr>),
    Push,
    Deploy {
        service: usize,
        why: Why,
    },
    /// The fix after an incident: a hotfix, or a revert of the latest merge.
    Repair {
        service: usize,
        revert: bool,
    },
    /// After an incident: the service goes back to the commit it ran before.
    Rollback {
        service: usize,
    },
}

/// Why a deployment is attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// The service's usual rhythm.
    Cadence,
    /// Soon after the next change lands, when the last cadence found nothing new to ship.
    Waiting,
    /// A fix for an incident, shipped as soon as it is merged.
    Rush,
}

/// An event at its time; ties go to the earlier scheduled, so runs repeat exactly.
struct Scheduled {
    at: Secs,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What a pull request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Feature,
    Bug,
    Hotfix,
    Revert,
    Dependency,
}

/// How a pull request lands on `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// One new commit with the pull request's changes.
    Squash,
    /// A merge commit whose second parent is the pull request's head.
    Merge,
    /// The pull request's commits replayed on `main` with new ids.
    Rebase,
}

/// How and when a pull request ends.
enum End {
    Merged(Secs, Style),
    Closed(Secs),
}

/// A commit of a pull request's branch.
struct OwnCommit {
    sha: Sha,
    authored: Secs,
    committed: Secs,
    subject: String,
}

/// A review: who, the state (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) and when.
type PlannedReview = (Author, &'static str, Secs);

/// A planned pull request: everything about it is decided when its first commit is made.
struct Pr {
    number: u64,
    kind: Kind,
    author: Author,
    title: String,
    branch: String,
    labels: Vec<String>,
    base: Sha,
    commits: Vec<OwnCommit>,
    created: Secs,
    /// When a pull request opened as a draft became ready.
    ready: Option<Secs>,
    reviews: Vec<PlannedReview>,
    end: End,
    additions: u64,
    deletions: u64,
    /// The service a hotfix is rushed out to.
    service: Option<usize>,
}

/// A merged pull request that a later revert may undo.
struct Merged {
    number: u64,
    title: String,
    branch: String,
}

/// What the simulation remembers about a service between deployments.
#[derive(Debug, Clone, Default)]
struct ServiceState {
    /// The commit of its last production deployment.
    deployed: Option<Sha>,
    /// The commit of the production deployment before that one (where a rollback goes).
    previous: Option<Sha>,
    /// The next version number of a monorepo service's deployment ids.
    version: u64,
    /// Whether it ships the next change to `main` as soon as it lands.
    waiting: bool,
}

/// The title, branch, labels and first commit subject of a pull request.
struct Description {
    title: String,
    branch: String,
    labels: Vec<String>,
    subject: String,
}

/// The state of one repository's simulation.
struct Sim<'a> {
    org: &'a Org,
    repo: &'a Repo,
    team: &'a Team,
    plan: &'a Plan,
    rng: ChaCha8Rng,
    shas: ShaGen,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    /// The head of `main`.
    tip: Sha,
    /// The number of the next pull request opened.
    next_number: u64,
    /// The counter behind numeric deployment ids.
    next_deploy: u64,
    /// How many release commits the bot has pushed.
    releases: u64,
    services: Vec<ServiceState>,
    /// The latest merged pull requests, newest last.
    recent: VecDeque<Merged>,
}

impl Sim<'_> {
    /// Plants the first commit and the first events, then handles events until the end.
    fn run(&mut self, backlog: &mut Backlog, sink: &mut Sink) -> io::Result<()> {
        let start = self.plan.start;
        let root = self.shas.next();
        let founder = Author::Person(self.team.members[0]);
        self.commit(
            sink,
            root,
            vec![],
            (start, start),
            founder,
            "Initial commit".into(),
        )?;
        self.tip = root;

        let span = (END - start) as f64;
        let (pr_gap, push_gap) = (self.pr_gap(), self.push_gap());
        let first = next_arrival(&mut self.rng, start, pr_gap);
        self.schedule(first, Event::NextPr);
        let first = next_arrival(&mut self.rng, start, push_gap);
        self.schedule(first, Event::Push);
        for service in 0..self.repo.services.len() {
            let gap = self.deploy_gap(service);
            let first = next_arrival(&mut self.rng, start + DAY, gap);
            let first = first.min(start + (span * 0.05) as Secs);
            self.schedule(
                first,
                Event::Deploy {
                    service,
                    why: Why::Cadence,
                },
            );
        }

        while let Some(Reverse(Scheduled { at, event, .. })) = self.queue.pop() {
            if at >= END {
                // Still open at the end of the span; nothing else past the end happens.
                if let Event::Finish(pr) = event {
                    self.write_pr(&pr, None, false, sink)?;
                }
                continue;
            }
            match event {
                Event::NextPr => {
                    let gap = self.pr_gap() / self.plan.growth(at);
                    let next = next_arrival(&mut self.rng, at, gap);
                    self.schedule(next, Event::NextPr);
                    let kind = [Kind::Feature, Kind::Bug, Kind::Dependency]
                        [weighted(&mut self.rng, &[80, 15, 5])];
                    let pr = self.plan_pr(at, kind, None, backlog);
                    self.schedule(pr.created, Event::Open(Box::new(pr)));
                }
                Event::Repair { service, revert } => {
                    let kind = if revert && !self.recent.is_empty() {
                        Kind::Revert
                    } else {
                        Kind::Hotfix
                    };
                    let pr = self.plan_pr(at, kind, Some(service), backlog);
                    self.schedule(pr.created, Event::Open(Box::new(pr)));
                }
                Event::Rollback { service } => self.rollback(at, service, sink)?,
                Event::Open(mut pr) => {
                    pr.number = self.next_number;
                    self.next_number += 1;
                    let mut parent = pr.base;
                    for c in &pr.commits {
                        let subject = c.subject.clone();
                        self.commit(
                            sink,
                            c.sha,
                            vec![parent],
                            (c.authored, c.committed),
                            pr.author,
                            subject,
                        )?;
                        parent = c.sha;
                    }
                    let finish = match pr.end {
                        End::Merged(t, _) | End::Closed(t) => t,
                    };
                    self.schedule(finish, Event::Finish(pr));
                }
                Event::Finish(pr) => self.finish(at, &pr, sink)?,
                Event::Push => {
                    let gap = self.push_gap() / self.plan.growth(at);
                    let next = next_arrival(&mut self.rng, at, gap);
                    self.schedule(next, Event::Push);
                    self.push(at, sink)?;
                }
                Event::Deploy { service, why } => {
                    let gap = self.deploy_gap(service);
                    if why == Why::Cadence {
                        let next = next_arrival(&mut self.rng, at, gap);
                        self.schedule(next, Event::Deploy { service, why });
                    }
                    let shipped = self.deploy(at, service, why, sink)?;
                    if !shipped && why == Why::Cadence {
                        self.services[service].waiting = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues an event at a time.
    fn schedule(&mut self, at: Secs, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// The mean time between the first commits of ordinary pull requests.
    fn pr_gap(&self) -> f64 {
        (END - self.plan.start) as f64 / self.repo.expected_prs.max(1.0)
    }

    /// The mean time between direct pushes to `main`.
    fn push_gap(&self) -> f64 {
        self.pr_gap() / self.plan.pushes_per_pr
    }

    /// The mean time between a service's deployments on its usual rhythm.
    fn deploy_gap(&self, service: usize) -> f64 {
        WEEK as f64 / self.repo.services[service].per_week
    }

    /// Writes a commit authored and committed at the given times.
    fn commit(
        &self,
        sink: &mut Sink,
        sha: Sha,
        parents: Vec<Sha>,
        (authored, committed): (Secs, Secs),
        author: Author,
        message: String,
    ) -> io::Result<()> {
        sink.write(Record::Commit(Commit {
            repo: self.repo.name.clone(),
            sha: sha.hex(),
            parents: parents.into_iter().map(Sha::hex).collect(),
            authored_at: ts(authored),
            committed_at: ts(committed),
            author: Some(self.org.signature(author)),
            message: Some(message),
        }))
    }

    /// Who opens a pull request: mostly the team, a few visitors from other teams, and bots.
    fn pick_author(&mut self, kind: Kind) -> Author {
        if kind == Kind::Dependency {
            return Author::Bot("dependabot[bot]");
        }
        if chance(&mut self.rng, 0.06) {
            return Author::Person(self.rng.random_range(0..self.org.people.len()));
        }
        // Skewed towards the first members: some people open many more pull requests.
        let members = &self.team.members;
        let u: f64 = self.rng.random();
        let at = ((members.len() as f64) * u * u.sqrt()) as usize;
        Author::Person(members[at.min(members.len() - 1)])
    }

    /// Decides everything about a pull request whose first commit is at `t0`.
    fn plan_pr(
        &mut self,
        t0: Secs,
        kind: Kind,
        service: Option<usize>,
        backlog: &mut Backlog,
    ) -> Pr {
        let urgent = matches!(kind, Kind::Hotfix | Kind::Revert);
        let slow = if urgent { Tier::Elite } else { self.repo.tier }.slowness();
        let author = self.pick_author(kind);
        let issue = match kind {
            Kind::Feature if chance(&mut self.rng, 0.6) => {
                backlog.claim(t0, Want::Work, &mut self.rng)
            }
            Kind::Bug if chance(&mut self.rng, 0.85) => backlog.claim(t0, Want::Bug, &mut self.rng),
            _ => None,
        };
        let text = self.describe(kind, issue.map(|i| (backlog.key(i), backlog.summary(i))));

        let count = match kind {
            Kind::Feature | Kind::Bug => 1 + weighted(&mut self.rng, &[16, 18, 18, 17, 16, 15]),
            Kind::Hotfix => 1 + usize::from(chance(&mut self.rng, 0.3)),
            Kind::Revert | Kind::Dependency => 1,
        };
        let mut commits = Vec::with_capacity(count);
        let mut t = t0;
        let mut last_committed = t0;
        for i in 0..count {
            if i > 0 {
                t = later(&mut self.rng, t + MINUTE, 1.5 * HOUR as f64 * slow, urgent);
            }
            let committed = if chance(&mut self.rng, 0.25) {
                t + exp(&mut self.rng, 20.0 * MINUTE as f64)
            } else {
                t
            };
            last_committed = last_committed.max(committed);
            let subject = if i == 0 {
                text.subject.clone()
            } else {
                let thing = *pick(&mut self.rng, self.team.things);
                let template = *pick(&mut self.rng, FOLLOW_UPS);
                fill(template, thing)
            };
            commits.push(OwnCommit {
                sha: self.shas.next(),
                authored: t,
                committed,
                subject,
            });
        }

        let created = later(
            &mut self.rng,
            last_committed + MINUTE,
            30.0 * MINUTE as f64 * slow,
            urgent,
        );
        let draft = matches!(kind, Kind::Feature | Kind::Bug) && chance(&mut self.rng, 0.15);
        let ready = draft.then(|| later(&mut self.rng, created + HOUR, DAY as f64 * slow, urgent));
        let ready_at = ready.unwrap_or(created);

        let (reviews, rework) = self.reviews(kind, author, ready_at, slow);
        let last_review = reviews.iter().map(|r| r.2).max().unwrap_or(ready_at);
        let close_chance = match kind {
            Kind::Feature => 0.09,
            Kind::Bug => 0.06,
            Kind::Dependency => 0.2,
            Kind::Hotfix | Kind::Revert => 0.02,
        };
        let end = if chance(&mut self.rng, close_chance) {
            End::Closed(later(
                &mut self.rng,
                ready_at + HOUR,
                3.0 * DAY as f64 * slow,
                urgent,
            ))
        } else {
            let wait = if reviews.is_empty() { 2.0 } else { 1.0 } * HOUR as f64;
            let at = later(&mut self.rng, last_review + 2 * MINUTE, wait * slow, urgent);
            let style = match weighted(&mut self.rng, &[50, 30, 20]) {
                0 => Style::Squash,
                1 => Style::Merge,
                _ => Style::Rebase,
            };
            End::Merged(at, style)
        };
        // A pull request closed unmerged keeps only the reviews it got before it was closed.
        let (reviews, rework) = match end {
            End::Closed(at) => (
                reviews.into_iter().filter(|r| r.2 < at).collect(),
                rework.filter(|r| r.1 < at),
            ),
            End::Merged(..) => (reviews, rework),
        };

        if let Some(issue) = issue {
            backlog.work(
                issue,
                Work {
                    start: t0,
                    review: ready_at,
                    rework,
                    end: match end {
                        End::Merged(at, _) => WorkEnd::Merged(at),
                        End::Closed(at) => WorkEnd::Closed(at),
                    },
                    assignee: match author {
                        Author::Person(p) => Some(self.org.people[p].login.clone()),
                        Author::Bot(_) => None,
                    },
                },
            );
        }

        let additions = match kind {
            Kind::Dependency => self.rng.random_range(2..400),
            Kind::Hotfix | Kind::Revert => self.rng.random_range(1..40),
            _ => lognormal(&mut self.rng, 40.0 * (count as f64).sqrt(), 1.1).max(1.0) as u64,
        };
        let deletions = (additions as f64 * self.rng.random_range(0.05..0.8)) as u64;
        Pr {
            number: 0,
            kind,
            author,
            title: text.title,
            branch: text.branch,
            labels: text.labels,
            base: self.tip,
            commits,
            created,
            ready,
            reviews,
            end,
            additions,
            deletions,
            service,
        }
    }

    /// The reviews of a pull request ready at `ready`, sorted by time, and the first change
    /// request with the review that answered it.
    fn reviews(
        &mut self,
        kind: Kind,
        author: Author,
        ready: Secs,
        slow: f64,
    ) -> (Vec<PlannedReview>, Option<(Secs, Secs)>) {
        let urgent = matches!(kind, Kind::Hotfix | Kind::Revert);
        let rng = &mut self.rng;
        let mut reviews = Vec::new();
        let mut rework = None;
        if chance(rng, 0.15) {
            let bot = *pick(rng, REVIEW_BOTS);
            reviews.push((Author::Bot(bot), "COMMENTED", ready + minutes(rng, 2, 15)));
        }
        let others: Vec<usize> = self
            .team
            .members
            .iter()
            .copied()
            .filter(|&m| Author::Person(m) != author)
            .collect();
        let unreviewed = match kind {
            Kind::Dependency => 0.35,
            Kind::Hotfix => 0.25,
            _ => 0.09,
        };
        if others.is_empty() || chance(rng, unreviewed) {
            return (reviews, None);
        }
        let pickup = if kind == Kind::Hotfix { 0.3 } else { 4.0 } * HOUR as f64 * slow;
        let reviewer = Author::Person(*pick(rng, &others));
        let mut at = later(rng, ready + MINUTE, pickup, urgent);
        for round in 0..3 {
            let roll: f64 = rng.random();
            let state = match (round, roll) {
                (2, _) => "APPROVED",
                (0, r) if r < if urgent { 0.05 } else { 0.2 } => "CHANGES_REQUESTED",
                (0, r) if r < if urgent { 0.1 } else { 0.35 } => "COMMENTED",
                (_, r) if r < 0.15 => "CHANGES_REQUESTED",
                _ => "APPROVED",
            };
            reviews.push((reviewer, state, at));
            if state == "APPROVED" {
                break;
            }
            let next = later(rng, at + 10 * MINUTE, 5.0 * HOUR as f64 * slow, urgent);
            if state == "CHANGES_REQUESTED" && rework.is_none() {
                rework = Some((at, next));
            }
            at = next;
        }
        if others.len() > 1 && chance(rng, 0.2) {
            let second = loop {
                let candidate = Author::Person(*pick(rng, &others));
                if candidate != reviewer {
                    break candidate;
                }
            };
            let at = later(rng, ready + MINUTE, pickup * 1.5, urgent);
            reviews.push((second, "APPROVED", at));
        }
        reviews.sort_by_key(|r| r.2);
        (reviews, rework)
    }

    /// Names a pull request of a kind, from its linked issue (key, summary) when it has one.
    fn describe(&mut self, kind: Kind, issue: Option<(String, &str)>) -> Description {
        let rng = &mut self.rng;
        let thing = *pick(rng, self.team.things);
        let keyed = |base: &str, key: &Option<String>, rng: &mut ChaCha8Rng| match key {
            Some(key) => match rng.random_range(0..3) {
                0 => format!("{key}: {base}"),
                1 => format!("{base} ({key})"),
                _ => base.to_string(),
            },
            None => base.to_string(),
        };
        let (key, summary) = match issue {
            Some((key, summary)) => (Some(key), Some(summary.to_string())),
            None => (None, None),
        };
        let key_part = key.as_ref().map(|k| format!("{k}-")).unwrap_or_default();
        match kind {
            Kind::Feature => {
                let base = summary.unwrap_or_else(|| {
                    let verbs = if chance(rng, 0.6) {
                        STORY_VERBS
                    } else {
                        TASK_VERBS
                    };
                    format!("{} {thing}", pick(rng, verbs))
                });
                let prefix = *pick(rng, &["feature/", "feature/", "feat/", "chore/"]);
                let subject = match &key {
                    Some(k) if chance(rng, 0.4) => format!("{k} {base}"),
                    _ => base.clone(),
                };
                let mut labels = Vec::new();
                for _ in 0..rng.random_range(0..3) {
                    let label = pick(rng, PR_LABELS).to_string();
                    if !labels.contains(&label) {
                        labels.push(label);
                    }
                }
                Description {
                    title: keyed(&base, &key, rng),
                    branch: format!("{prefix}{key_part}{}", slug(&base)),
                    labels,
                    subject,
                }
            }
            Kind::Bug => {
                let problem = summary
                    .unwrap_or_else(|| format!("{thing} {}", pick(rng, crate::text::SYMPTOMS)));
                let base = format!("Fix {}", decapitalize(&problem));
                let prefix = if chance(rng, 0.5) { "fix/" } else { "bugfix/" };
                let labels = if chance(rng, 0.9) {
                    vec!["bug".into()]
                } else {
                    vec![]
                };
                Description {
                    title: keyed(&base, &key, rng),
                    branch: format!("{prefix}{key_part}{}", slug(&problem)),
                    labels,
                    subject: base,
                }
            }
            Kind::Hotfix => {
                let template = *pick(rng, HOTFIX_ACTIONS);
                let action = fill(template, thing);
                let mut labels = vec!["hotfix".to_string()];
                if chance(rng, 0.4) {
                    labels.push("incident".into());
                }
                Description {
                    title: format!("Hotfix: {action}"),
                    branch: format!("hotfix/{}", slug(&action)),
                    labels,
                    subject: format!("hotfix: {action}"),
                }
            }
            Kind::Revert => {
                let (number, title, branch) = match self.recent.back() {
                    Some(m) => (m.number, m.title.clone(), m.branch.clone()),
                    None => (0, thing.to_string(), slug(thing)),
                };
                let labels = if chance(rng, 0.5) {
                    vec!["revert".into()]
                } else {
                    vec![]
                };
                Description {
                    title: format!("Revert \"{title}\""),
                    branch: format!("revert-{number}-{branch}"),
                    labels,
                    subject: format!("Revert \"{title} (#{number})\""),
                }
            }
            Kind::Dependency => {
                let (name, ecosystem) = *pick(rng, DEPENDENCIES);
                let (major, minor, patch) = (
                    rng.random_range(1..6),
                    rng.random_range(0..30),
                    rng.random_range(0..12),
                );
                let to = if chance(rng, 0.7) {
                    format!("{major}.{minor}.{}", patch + 1)
                } else {
                    format!("{major}.{}.0", minor + 1)
                };
                let title = format!("Bump {name} from {major}.{minor}.{patch} to {to}");
                Description {
                    branch: format!("dependabot/{ecosystem}/{name}-{to}"),
                    labels: vec!["dependencies".into()],
                    subject: title.clone(),
                    title,
                }
            }
        }
    }

    /// Merges or closes a pull request and writes it.
    fn finish(&mut self, at: Secs, pr: &Pr, sink: &mut Sink) -> io::Result<()> {
        let End::Merged(_, style) = pr.end else {
            return self.write_pr(pr, None, true, sink);
        };
        let head = pr.commits.last().map_or(pr.base, |c| c.sha);
        let merge_sha = match style {
            Style::Squash => {
                let sha = self.shas.next();
                let message = format!("{} (#{})", pr.title, pr.number);
                self.commit(sink, sha, vec![self.tip], (at, at), pr.author, message)?;
                sha
            }
            Style::Merge => {
                let sha = self.shas.next();
                let message = format!(
                    "Merge pull request #{} from {OWNER}/{}",
                    pr.number, pr.branch
                );
                self.commit(
                    sink,
                    sha,
                    vec![self.tip, head],
                    (at, at),
                    pr.author,
                    message,
                )?;
                sha
            }
            Style::Rebase => {
                let mut parent = self.tip;
                for c in &pr.commits {
                    let sha = self.shas.next();
                    self.commit(
                        sink,
                        sha,
                        vec![parent],
                        (c.authored, at),
                        pr.author,
                        c.subject.clone(),
                    )?;
                    parent = sha;
                }
                parent
            }
        };
        self.advance(at, merge_sha);
        if pr.kind != Kind::Revert {
            if self.recent.len() == 16 {
                self.recent.pop_front();
            }
            self.recent.push_back(Merged {
                number: pr.number,
                title: pr.title.clone(),
                branch: pr.branch.clone(),
            });
        }
        if let Some(service) = pr.service {
            // A fix for an incident goes out right away.
            let soon = at + minutes(&mut self.rng, 10, 40);
            self.schedule(
                soon,
                Event::Deploy {
                    service,
                    why: Why::Rush,
                },
            );
        }
        self.write_pr(pr, Some(merge_sha), true, sink)
    }

    /// Writes a pull request as it stands: finished, or still open at the end of the span.
    fn write_pr(
        &self,
        pr: &Pr,
        merge: Option<Sha>,
        finished: bool,
        sink: &mut Sink,
    ) -> io::Result<()> {
        let (merged_at, closed_at) = match (finished, &pr.end) {
            (false, _) => (None, None),
            (true, End::Merged(at, _)) => (Some(ts(*at)), Some(ts(*at))),
            (true, End::Closed(at)) => (None, Some(ts(*at))),
        };
        let reviews = pr
            .reviews
            .iter()
            .filter(|r| r.2 < END)
            .map(|&(reviewer, state, at)| Review {
                reviewer: self.org.login(reviewer).to_string(),
                state: state.to_string(),
                submitted_at: ts(at),
            })
            .collect();
        sink.write(Record::PullRequest(PullRequest {
            repo: self.repo.name.clone(),
            number: pr.number,
            created_at: ts(pr.created),
            title: Some(pr.title.clone()),
            author: Some(self.org.login(pr.author).to_string()),
            draft: pr.ready.is_some(),
            ready_at: pr.ready.filter(|&t| t < END).map(ts),
            merged_at,
            closed_at,
            base_branch: Some("main".into()),
            head_branch: Some(pr.branch.clone()),
            head_sha: pr.commits.last().map(|c| c.sha.hex()),
            merge_commit_sha: merge.map(Sha::hex),
            commits: pr.commits.iter().map(|c| c.sha.hex()).collect(),
            additions: Some(pr.additions),
            deletions: Some(pr.deletions),
            labels: pr.labels.clone(),
            reviews,
        }))
    }

    /// Moves `main` to a new commit at `at`; services waiting for a change deploy it soon.
    fn advance(&mut self, at: Secs, tip: Sha) {
        self.tip = tip;
        for service in 0..self.services.len() {
            if std::mem::take(&mut self.services[service].waiting) {
                let soon = at + minutes(&mut self.rng, 15, 90);
                let why = Why::Waiting;
                self.schedule(soon, Event::Deploy { service, why });
            }
        }
    }

    /// A commit straight to `main`: release bumps by a bot, small fixes by people.
    fn push(&mut self, at: Secs, sink: &mut Sink) -> io::Result<()> {
        let sha = self.shas.next();
        let (author, message) = if chance(&mut self.rng, 0.4) {
            self.releases += 1;
            let version = format!("1.{}.{}", self.releases / 20, self.releases % 20);
            (
                Author::Bot("github-actions[bot]"),
                format!("chore(release): v{version}"),
            )
        } else {
            let member = *pick(&mut self.rng, &self.team.members);
            (
                Author::Person(member),
                pick(&mut self.rng, DIRECT_PUSHES).to_string(),
            )
        };
        let authored = at - exp(&mut self.rng, 30.0 * MINUTE as f64);
        self.commit(sink, sha, vec![self.tip], (authored, at), author, message)?;
        self.advance(at, sha);
        Ok(())
    }

    /// The id of a deployment record; monorepo services prefix theirs with the service name.
    fn deploy_id(&mut self, service: usize, staging: bool) -> String {
        let state = &mut self.services[service];
        match &self.repo.services[service].prefix {
            Some(prefix) if staging => format!("{prefix}{}-staging", state.version + 1),
            Some(prefix) => {
                state.version += 1;
                format!("{prefix}{}", state.version)
            }
            None => {
                self.next_deploy += 1;
                format!(
                    "{}",
                    1_400_000_000 + (self.repo.index as u64) * 1_000_000 + self.next_deploy
                )
            }
        }
    }

    /// Writes one deployment record created and finished at the given times; an attempt still
    /// running at the end is `in_progress`. Returns false when it would start after the end.
    fn deployment(
        &self,
        sink: &mut Sink,
        id: &str,
        environment: &str,
        sha: Sha,
        status: DeploymentStatus,
        (created, finished): (Secs, Secs),
    ) -> io::Result<bool> {
        if created >= END {
            return Ok(false);
        }
        let (status, finished_at) = if finished < END {
            (status, Some(ts(finished)))
        } else {
            (DeploymentStatus::InProgress, None)
        };
        sink.write(Record::Deployment(Deployment {
            repo: self.repo.name.clone(),
            id: id.to_string(),
            environment: environment.to_string(),
            sha: sha.hex(),
            status,
            created_at: ts(created),
            finished_at,
            service: None,
            url: None,
        }))?;
        Ok(finished < END)
    }

    /// Ships the head of `main` to a service: maybe through staging, maybe after a failed
    /// attempt, and maybe into an incident. Returns false when there was nothing new to ship.
    fn deploy(&mut self, at: Secs, service: usize, why: Why, sink: &mut Sink) -> io::Result<bool> {
        if self.services[service].deployed == Some(self.tip) {
            return Ok(false);
        }
        let sha = self.tip;
        let tier = self.repo.services[service].tier;
        let mut t = at;
        let staging = match (why, tier) {
            (Why::Rush, _) => 0.2,
            (_, Tier::Elite) => 0.1,
            _ => 0.5,
        };
        if chance(&mut self.rng, staging) {
            let id = self.deploy_id(service, true);
            let done = t + minutes(&mut self.rng, 2, 12);
            self.deployment(
                sink,
                &id,
                "staging",
                sha,
                DeploymentStatus::Success,
                (t, done),
            )?;
            t = done + 5 * MINUTE + exp(&mut self.rng, 45.0 * MINUTE as f64);
        }
        let failure = match tier {
            Tier::Elite => 0.04,
            Tier::High => 0.06,
            Tier::Medium => 0.08,
            Tier::Low => 0.1,
        };
        if chance(&mut self.rng, failure) {
            let id = self.deploy_id(service, false);
            let done = t + minutes(&mut self.rng, 1, 10);
            let status = if chance(&mut self.rng, 0.75) {
                DeploymentStatus::Failure
            } else {
                DeploymentStatus::Error
            };
            self.deployment(sink, &id, "production", sha, status, (t, done))?;
            t = done + minutes(&mut self.rng, 5, 40);
        }
        let id = self.deploy_id(service, false);
        let done = t + minutes(&mut self.rng, 2, 15);
        if !self.deployment(
            sink,
            &id,
            "production",
            sha,
            DeploymentStatus::Success,
            (t, done),
        )? {
            return Ok(true);
        }
        if chance(&mut self.rng, 0.01) {
            // The same deployment reported twice, the second time with a later finish.
            let later = done + minutes(&mut self.rng, 1, 10);
            self.deployment(
                sink,
                &id,
                "production",
                sha,
                DeploymentStatus::Success,
                (t, later),
            )?;
        }
        let state = &mut self.services[service];
        state.previous = state.deployed.replace(sha);
        if chance(&mut self.rng, self.team.failure.incident_chance()) {
            self.incident(done, service, &id, sink)?;
        }
        Ok(true)
    }

    /// Deploys the commit the service ran before its last deployment again, when there is one
    /// and it is not running already.
    fn rollback(&mut self, at: Secs, service: usize, sink: &mut Sink) -> io::Result<()> {
        let state = &self.services[service];
        let Some(back) = state.previous.filter(|p| state.deployed != Some(*p)) else {
            return Ok(());
        };
        let id = self.deploy_id(service, false);
        let done = at + minutes(&mut self.rng, 2, 10);
        let status = DeploymentStatus::Success;
        if self.deployment(sink, &id, "production", back, status, (at, done))? {
            let state = &mut self.services[service];
            state.previous = state.deployed.replace(back);
        }
        Ok(())
    }

    /// An incident caused by the deployment `deployment_id` finished at `deployed`, and the
    /// hotfix or revert that may follow it.
    fn incident(
        &mut self,
        deployed: Secs,
        service: usize,
        deployment_id: &str,
        sink: &mut Sink,
    ) -> io::Result<()> {
        let rng = &mut self.rng;
        let delay = if chance(rng, 0.6) {
            5 * MINUTE + exp(rng, 2.0 * HOUR as f64)
        } else if chance(rng, 0.75) {
            6 * HOUR + exp(rng, 18.0 * HOUR as f64)
        } else {
            2 * DAY + rng.random_range(0..2 * DAY)
        };
        let created = deployed + delay;
        if created >= END {
            return Ok(());
        }
        let recovery = lognormal(rng, self.team.recovery.recovery_median(), 1.0) as Secs;
        let resolved = created + recovery.clamp(10 * MINUTE, 3 * DAY);
        let resolved_at = (resolved < END && !chance(rng, 0.03)).then(|| ts(resolved));
        let severity = ["sev1", "sev2", "sev3"][weighted(rng, &[10, 30, 60])];
        let spec = &self.repo.services[service];
        let (repo, named) = match &spec.prefix {
            Some(_) if chance(rng, 0.6) => (None, Some(spec.name.clone())),
            Some(_) => (Some(self.repo.name.clone()), Some(spec.name.clone())),
            None => (Some(self.repo.name.clone()), None),
        };
        let short = spec.name.rsplit('/').next().unwrap_or(&spec.name);
        let template = *pick(rng, INCIDENT_TITLES);
        let title = fill(template, short);
        let deployment_id = chance(rng, 0.25).then(|| deployment_id.to_string());
        sink.write(Record::Incident(Incident {
            repo,
            service: named,
            id: format!("INC-{}", 1001 + sink.summary.incidents),
            created_at: ts(created),
            resolved_at,
            title: Some(title),
            severity: Some(severity.to_string()),
            deployment_id,
            url: None,
        }))?;
        let roll: f64 = self.rng.random();
        let fix_at = created + minutes(&mut self.rng, 10, 90);
        if (0.6..0.72).contains(&roll) {
            // Back to the version that ran before; the fix follows later, at its own pace.
            let back = created + minutes(&mut self.rng, 5, 30);
            self.schedule(back, Event::Rollback { service });
            let fix_at = back + HOUR + exp(&mut self.rng, 20.0 * HOUR as f64);
            self.schedule(
                fix_at,
                Event::Repair {
                    service,
                    revert: false,
                },
            );
        } else if roll < 0.45 {
            self.schedule(
                fix_at,
                Event::Repair {
                    service,
                    revert: false,
                },
            );
        } else if roll < 0.6 {
            self.schedule(
                fix_at,
                Event::Repair {
                    service,
                    revert: true,
                },
            );
        }
        Ok(())
    }
}
