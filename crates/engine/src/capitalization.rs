//! The capitalization method (docs/capitalization.md, `METHOD_VERSION`): each person's
//! available FTE of a week, split across work items in proportion to the week's evidence, and
//! whether each share is capitalizable, with the rule that decided and the receipts.
//!
//! Input is the week's activity as the store reads it ([`Dataset`] holding the commits
//! authored in the week, the pull requests open at some time in it, the issues that could
//! have been in progress, and every issue those name with their epics). Shares are integers
//! in 1/10,000 FTE and hours in 1/100 hour, split by largest remainder so the written rows
//! of a person-week add up to its available FTE exactly.
//!
//! One file, over 600 lines, on purpose: evidence, decisions, shares and the CSV are the steps
//! of one published method, read top to bottom against docs/capitalization.md.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use flowmeter_core::config::StatusGroup;
use flowmeter_core::people::{CapitalizationConfig, People, issue_keys};
use flowmeter_core::{Config, Dataset, IsoWeek, Issue, Timestamp};

/// The version of the method; every row names it.
pub const METHOD_VERSION: u32 = 1;

/// FTE shares are counted in these units per FTE.
pub const UNITS_PER_FTE: i64 = 10_000;

/// The columns of the export, in order.
pub const COLUMNS: [&str; 19] = [
    "week_start",
    "week_end",
    "person_id",
    "person_name",
    "team",
    "cost_center",
    "work_item_key",
    "work_item_type",
    "epic_key",
    "project",
    "capitalizable",
    "cap_rule",
    "fte_share",
    "est_hours",
    "evidence_commits",
    "evidence_prs",
    "evidence_reviews",
    "evidence_issue_days",
    "method_version",
];

/// Points per unit of evidence weight: weights count to 1/1000, and a piece naming up to 10
/// work items splits exactly (2,520 is divisible by 1 to 10).
pub const POINTS: i64 = 2_520_000;

fn points(weight: f64) -> i64 {
    (weight * POINTS as f64).round() as i64
}

/// The work item of time no evidence names.
pub const UNATTRIBUTED: &str = "unattributed";

/// What a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    Commit,
    PullRequestOpened,
    PullRequestMerged,
    Review,
    IssueDay,
}

impl EvidenceKind {
    pub fn label(self) -> &'static str {
        match self {
            EvidenceKind::Commit => "commit",
            EvidenceKind::PullRequestOpened => "pull request opened",
            EvidenceKind::PullRequestMerged => "pull request merged",
            EvidenceKind::Review => "review",
            EvidenceKind::IssueDay => "issue in progress",
        }
    }
}

/// One piece of evidence behind a row: what, which (`repo@sha`, `repo#number`, an issue key),
/// the day, and the weight it gave the row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Receipt {
    pub kind: EvidenceKind,
    pub item: String,
    pub day: NaiveDate,
    pub weight: f64,
}

/// One row of the export.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CapRow {
    pub week_start: NaiveDate,
    pub week_end: NaiveDate,
    pub person_id: String,
    pub person_name: String,
    pub team: String,
    pub cost_center: String,
    pub work_item_key: String,
    pub work_item_type: String,
    pub epic_key: String,
    pub project: String,
    pub capitalizable: bool,
    pub cap_rule: String,
    /// The share in 1/10,000 FTE.
    pub fte_units: i64,
    /// The estimated hours in 1/100 hour.
    pub centi_hours: i64,
    pub evidence_commits: u32,
    pub evidence_prs: u32,
    pub evidence_reviews: u32,
    pub evidence_issue_days: u32,
    pub receipts: Vec<Receipt>,
}

impl CapRow {
    pub fn fte_share(&self) -> String {
        format!(
            "{}.{:04}",
            self.fte_units / UNITS_PER_FTE,
            self.fte_units % UNITS_PER_FTE
        )
    }

    pub fn est_hours(&self) -> String {
        format!("{}.{:02}", self.centi_hours / 100, self.centi_hours % 100)
    }

    pub fn is_unattributed(&self) -> bool {
        self.work_item_key == UNATTRIBUTED
    }
}

/// Evidence of one person, before it is grouped into rows.
struct Piece {
    kind: EvidenceKind,
    item: String,
    day: NaiveDate,
    /// The weight in points ([`POINTS`] per unit of weight).
    points: i64,
    /// The issues it names (known to the store); none: unattributed.
    keys: Vec<String>,
}

/// What a row is keyed by within a person-week.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    /// Unattributed sorts last.
    unattributed: bool,
    work_item: String,
    project: String,
    capitalizable: bool,
    cap_rule: String,
}

/// The rows of `week` for every person of `config` (of `team` when given), ordered by person
/// id, then work item, unattributed last.
pub fn compute(week: IsoWeek, data: &Dataset, config: &Config, team: Option<&str>) -> Vec<CapRow> {
    let people = People::new(config);
    let window = week.window();
    let (start, end) = (window.start(), window.end());
    let within = |t: &Timestamp| start <= *t && *t < end;
    let issues: HashMap<&str, &Issue> = data.issues.iter().map(|i| (i.key.as_str(), i)).collect();
    // An issue is an epic when its type says so or another issue names it as its epic.
    let epics: std::collections::HashSet<&str> = data
        .issues
        .iter()
        .filter_map(|i| i.epic.as_deref())
        .chain(
            data.issues
                .iter()
                .filter(|i| i.issue_type.eq_ignore_ascii_case("epic"))
                .map(|i| i.key.as_str()),
        )
        .collect();
    let known = |texts: &[Option<&str>]| -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for text in texts.iter().flatten() {
            for key in issue_keys(text) {
                if issues.contains_key(key) && !keys.iter().any(|k| k == key) {
                    keys.push(key.to_string());
                }
            }
        }
        keys
    };
    let weights = config.capitalization.weights;
    let mut pieces: Vec<Vec<Piece>> = (0..people.people.len()).map(|_| Vec::new()).collect();

    // Pull requests: their keys, and which pull request a commit came through.
    let mut pull_keys = Vec::with_capacity(data.pull_requests.len());
    let mut by_sha: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, pr) in data.pull_requests.iter().enumerate() {
        pull_keys.push(known(&[pr.title.as_deref(), pr.head_branch.as_deref()]));
        for sha in pr.commits.iter().chain(&pr.merge_commit_sha) {
            by_sha.entry((pr.repo.as_str(), sha.as_str())).or_insert(i);
        }
    }
    for commit in &data.commits {
        if !within(&commit.authored_at) || !commit.is_change() {
            continue;
        }
        let Some(person) = commit.author.as_deref().and_then(|a| people.person_of(a)) else {
            continue;
        };
        let mut keys = known(&[commit.message.as_deref()]);
        if keys.is_empty()
            && let Some(&pr) = by_sha.get(&(commit.repo.as_str(), commit.sha.as_str()))
        {
            keys = pull_keys[pr].clone();
        }
        pieces[person].push(Piece {
            kind: EvidenceKind::Commit,
            item: format!("{}@{}", commit.repo, short(&commit.sha)),
            day: commit.authored_at.date_naive(),
            points: points(weights.commit),
            keys,
        });
    }
    for (i, pr) in data.pull_requests.iter().enumerate() {
        let item = format!("{}#{}", pr.repo, pr.number);
        if let Some(author) = pr.author.as_deref().and_then(|a| people.person_of(a)) {
            let events = [
                (EvidenceKind::PullRequestOpened, Some(pr.created_at)),
                (EvidenceKind::PullRequestMerged, pr.merged_at),
            ];
            for (kind, at) in events {
                if let Some(at) = at.filter(within) {
                    pieces[author].push(Piece {
                        kind,
                        item: item.clone(),
                        day: at.date_naive(),
                        points: points(weights.pull_request),
                        keys: pull_keys[i].clone(),
                    });
                }
            }
        }
        for review in &pr.reviews {
            if !within(&review.submitted_at) || review.state.eq_ignore_ascii_case("pending") {
                continue;
            }
            if let Some(reviewer) = people.person_of(&review.reviewer) {
                pieces[reviewer].push(Piece {
                    kind: EvidenceKind::Review,
                    item: item.clone(),
                    day: review.submitted_at.date_naive(),
                    points: points(weights.review),
                    keys: pull_keys[i].clone(),
                });
            }
        }
    }
    let days: Vec<NaiveDate> = (0..7)
        .map(|d| week.monday() + chrono::Days::new(d))
        .collect();
    for issue in &data.issues {
        let Some(person) = issue.assignee.as_deref().and_then(|a| people.person_of(a)) else {
            continue;
        };
        let spans = working_spans(issue, config, &data.status_categories);
        for &day in &days {
            if !people.present(person, day) {
                continue;
            }
            let (from, to) = day_bounds(day);
            if spans
                .iter()
                .any(|(s, e)| *s < to && e.is_none_or(|e| e > from))
            {
                pieces[person].push(Piece {
                    kind: EvidenceKind::IssueDay,
                    item: issue.key.clone(),
                    day,
                    points: points(weights.issue_day),
                    keys: vec![issue.key.clone()],
                });
            }
        }
    }

    let mut rows = Vec::new();
    let mut order: Vec<usize> = (0..people.people.len()).collect();
    order.sort_by(|a, b| people.people[*a].id.cmp(&people.people[*b].id));
    for p in order {
        let person = &people.people[p];
        let present: Vec<NaiveDate> = days
            .iter()
            .copied()
            .filter(|d| people.present(p, *d))
            .collect();
        let units = (person.fte * present.len() as f64 * (UNITS_PER_FTE / 5) as f64).round() as i64;
        if units == 0 {
            continue;
        }
        let team_day = present.first().copied().unwrap_or(week.monday());
        let person_team = people.team_on(p, team_day);
        if team.is_some_and(|t| t != person_team) {
            continue;
        }
        let mut groups: BTreeMap<RowKey, Group> = BTreeMap::new();
        for piece in &pieces[p] {
            if piece.points == 0 {
                continue;
            }
            if piece.keys.is_empty() {
                groups
                    .entry(unattributed_key())
                    .or_default()
                    .add(piece, piece.points);
                continue;
            }
            let share = piece.points / piece.keys.len() as i64;
            for key in &piece.keys {
                let issue = issues[key.as_str()];
                let (project, capitalizable, cap_rule) =
                    decide(issue, piece.day, &config.capitalization);
                let row = RowKey {
                    unattributed: false,
                    work_item: issue.epic.clone().unwrap_or_else(|| issue.key.clone()),
                    project,
                    capitalizable,
                    cap_rule,
                };
                groups.entry(row).or_default().add(piece, share);
            }
        }
        if groups.values().all(|g| g.points == 0) {
            groups.clear();
            groups.insert(
                unattributed_key(),
                Group {
                    points: 1,
                    receipts: Vec::new(),
                },
            );
        }
        let weights: Vec<i64> = groups.values().map(|g| g.points).collect();
        let hours = (units as f64 * config.capitalization.hours_per_week * 100.0
            / UNITS_PER_FTE as f64)
            .round() as i64;
        let shares = largest_remainder(units, &weights);
        let centi = largest_remainder(hours, &weights);
        for (((key, group), fte_units), centi_hours) in groups.into_iter().zip(shares).zip(centi) {
            if key.unattributed && fte_units == 0 {
                continue;
            }
            let (work_item_type, epic_key) = if key.unattributed {
                (String::new(), String::new())
            } else {
                match issues.get(key.work_item.as_str()) {
                    Some(item) => (
                        item.issue_type.clone(),
                        if item.epic.is_none() && epics.contains(item.key.as_str()) {
                            item.key.clone()
                        } else {
                            item.epic.clone().unwrap_or_default()
                        },
                    ),
                    None => (String::new(), key.work_item.clone()),
                }
            };
            let count = |kinds: &[EvidenceKind]| {
                group
                    .receipts
                    .iter()
                    .filter(|r| kinds.contains(&r.kind))
                    .count() as u32
            };
            rows.push(CapRow {
                week_start: week.monday(),
                week_end: week.monday() + chrono::Days::new(6),
                person_id: person.id.clone(),
                person_name: person.name.clone(),
                team: person_team.to_string(),
                cost_center: person.cost_center.clone(),
                work_item_key: key.work_item.clone(),
                work_item_type,
                epic_key,
                project: key.project.clone(),
                capitalizable: key.capitalizable,
                cap_rule: key.cap_rule.clone(),
                fte_units,
                centi_hours,
                evidence_commits: count(&[EvidenceKind::Commit]),
                evidence_prs: count(&[
                    EvidenceKind::PullRequestOpened,
                    EvidenceKind::PullRequestMerged,
                ]),
                evidence_reviews: count(&[EvidenceKind::Review]),
                evidence_issue_days: count(&[EvidenceKind::IssueDay]),
                receipts: group.receipts,
            });
        }
    }
    rows
}

fn unattributed_key() -> RowKey {
    RowKey {
        unattributed: true,
        work_item: UNATTRIBUTED.into(),
        project: String::new(),
        capitalizable: false,
        cap_rule: UNATTRIBUTED.into(),
    }
}

#[derive(Default)]
struct Group {
    points: i64,
    receipts: Vec<Receipt>,
}

impl Group {
    fn add(&mut self, piece: &Piece, points: i64) {
        self.points += points;
        self.receipts.push(Receipt {
            kind: piece.kind,
            item: piece.item.clone(),
            day: piece.day,
            weight: points as f64 / POINTS as f64,
        });
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn day_bounds(day: NaiveDate) -> (Timestamp, Timestamp) {
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    (start, start + chrono::Duration::days(1))
}

/// When an issue sat in an in-progress status (in progress or in review): `[from, to)`, `to`
/// `None` while it still does. Before its first transition an issue had that transition's
/// `from` status; an issue without history has had its current status since it was created.
fn working_spans(
    issue: &Issue,
    config: &Config,
    categories: &BTreeMap<String, String>,
) -> Vec<(Timestamp, Option<Timestamp>)> {
    let working = |status: &str| {
        matches!(
            config
                .stages
                .group_with_category(status, categories.get(status).map(String::as_str)),
            StatusGroup::InProgress | StatusGroup::Review
        )
    };
    let mut transitions: Vec<_> = issue.transitions.iter().collect();
    transitions.sort_by_key(|t| t.at);
    let mut spans = Vec::new();
    let first = match transitions.first() {
        Some(t) => t.from.clone(),
        None => issue.status.clone(),
    };
    let mut current = (issue.created_at, first);
    for t in transitions {
        if let (since, Some(status)) = &current
            && working(status)
        {
            spans.push((*since, Some(t.at)));
        }
        current = (t.at, Some(t.to.clone()));
    }
    if let (since, Some(status)) = &current
        && working(status)
    {
        spans.push((*since, None));
    }
    spans
}

/// The project an issue belongs to (a configured one, else its tracker project), whether its
/// work on `day` is capitalizable, and what decided.
pub fn decide(issue: &Issue, day: NaiveDate, cap: &CapitalizationConfig) -> (String, bool, String) {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let epic_or_self = issue.epic.as_deref().unwrap_or(&issue.key);
    let labelled = |labels: &[String]| labels.iter().any(|l| issue.labels.iter().any(|m| eq(l, m)));
    let project = cap.projects.iter().find(|p| {
        p.jira_projects.iter().any(|j| eq(j, &issue.project))
            || p.epics.iter().any(|e| e == epic_or_self || *e == issue.key)
            || labelled(&p.labels)
    });
    let project_name = project.map_or_else(|| issue.project.clone(), |p| p.name.clone());
    let ruled = cap.rules.iter().enumerate().find(|(_, r)| {
        (r.project.is_empty()
            || r.project
                .iter()
                .any(|x| eq(x, &issue.project) || project.is_some_and(|p| p.name == *x)))
            && (r.epic.is_empty() || r.epic.iter().any(|e| e == epic_or_self || *e == issue.key))
            && (r.issue_type.is_empty() || r.issue_type.iter().any(|t| eq(t, &issue.issue_type)))
            && (r.label.is_empty() || labelled(&r.label))
    });
    let (capitalizable, rule) = match ruled {
        Some((i, r)) => (r.capitalizable, r.label_of(i)),
        None if ["bug", "defect", "incident", "problem"]
            .iter()
            .any(|t| eq(t, &issue.issue_type)) =>
        {
            (false, "default: bugs are maintenance".to_string())
        }
        None if eq(&issue.issue_type, "maintenance")
            || issue
                .labels
                .iter()
                .any(|l| eq(l, "maintenance") || eq(l, "chore")) =>
        {
            (false, "default: maintenance".to_string())
        }
        None => (true, "default: development".to_string()),
    };
    if !capitalizable {
        return (project_name, false, rule);
    }
    let Some(project) = project else {
        return (project_name, false, "no capitalizable project".to_string());
    };
    if day < project.authorized_from {
        return (
            project_name,
            false,
            format!("before authorized_from {}", project.authorized_from),
        );
    }
    if let Some(live) = project.ready_for_use
        && day >= live
    {
        return (
            project_name,
            false,
            format!("from ready_for_use {live}: maintenance"),
        );
    }
    (project_name, true, rule)
}

/// Splits the integer `total` in proportion to the integer `weights` (not negative, not all
/// 0) so the parts sum to `total` exactly: each part gets the floor of its quota, and what is
/// left goes one each to the largest remainders (ties to the earlier part). Exact: integers.
pub fn largest_remainder(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    assert!(sum > 0, "weights must not all be 0");
    let quota = |w: i64| (i128::from(total) * i128::from(w)).div_euclid(sum);
    let remainder = |w: i64| (i128::from(total) * i128::from(w)).rem_euclid(sum);
    let mut parts: Vec<i64> = weights.iter().map(|w| quota(*w) as i64).collect();
    let left = total - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| {
        remainder(weights[*b])
            .cmp(&remainder(weights[*a]))
            .then(a.cmp(b))
    });
    for &i in order.iter().take(left.max(0) as usize) {
        parts[i] += 1;
    }
    parts
}

/// Text a spreadsheet would run as a formula, defused with a leading `'`.
fn defuse(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// The rows as RFC 4180 CSV (UTF-8, CRLF, every text cell quoted, formulas defused); the same
/// rows give the same bytes.
pub fn to_csv(rows: &[CapRow]) -> Vec<u8> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::NonNumeric)
        .from_writer(Vec::new());
    let written: csv::Result<()> = (|| {
        out.write_record(COLUMNS)?;
        for row in rows {
            let text = [
                row.person_id.as_str(),
                &row.person_name,
                &row.team,
                &row.cost_center,
                &row.work_item_key,
                &row.work_item_type,
                &row.epic_key,
                &row.project,
            ]
            .map(defuse);
            out.write_record([
                row.week_start.to_string(),
                row.week_end.to_string(),
                text[0].clone(),
                text[1].clone(),
                text[2].clone(),
                text[3].clone(),
                text[4].clone(),
                text[5].clone(),
                text[6].clone(),
                text[7].clone(),
                row.capitalizable.to_string(),
                defuse(&row.cap_rule),
                row.fte_share(),
                row.est_hours(),
                row.evidence_commits.to_string(),
                row.evidence_prs.to_string(),
                row.evidence_reviews.to_string(),
                row.evidence_issue_days.to_string(),
                METHOD_VERSION.to_string(),
            ])?;
        }
        Ok(())
    })();
    written.expect("writing to memory does not fail");
    out.into_inner().expect("writing to memory does not fail")
}

#[cfg(test)]
#[path = "capitalization_tests.rs"]
mod tests;
