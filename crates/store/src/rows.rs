//! One description per table (columns, key, column types) and the conversions between records
//! and rows, shared by both backends so they cannot drift apart.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use flowmeter_core::Timestamp;
use flowmeter_core::import::RecordKind;
use flowmeter_core::model::*;

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Text,
    Int,
    Real,
    Bool,
    Ts,
}

/// A value of one column, as both backends bind and read it; text borrows from the record it
/// was made of when it can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Ts(Option<Timestamp>),
}

#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Col)],
    pub key: &'static [&'static str],
    /// Its secondary indexes as the migrations create them: (name, column).
    pub indexes: &'static [(&'static str, &'static str)],
}

impl Table {
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn key_positions(&self) -> Vec<usize> {
        self.key
            .iter()
            .map(|k| {
                self.columns
                    .iter()
                    .position(|(c, _)| c == k)
                    .expect("key is a column")
            })
            .collect()
    }

    /// `ON CONFLICT ... DO UPDATE` that leaves a row alone when nothing differs, so re-imports
    /// report no change (and keep the row's generation). `distinct` is the dialect's null-safe
    /// inequality.
    pub fn upsert_tail(&self, distinct: &str) -> String {
        let non_key: Vec<&str> = self
            .columns
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !self.key.contains(c))
            .collect();
        let set: Vec<String> = non_key
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let differs: Vec<String> = non_key
            .iter()
            .filter(|c| **c != GENERATION)
            .map(|c| format!("{}.{c} {distinct} excluded.{c}", self.name))
            .collect();
        format!(
            " ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
            self.key.join(", "),
            set.join(", "),
            differs.join(" OR ")
        )
    }

    pub fn select_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.column_list(),
            self.name,
            self.key.join(", ")
        )
    }

    /// The rows a write after generation `$1` changed, in no particular order (each key is
    /// one row, so the order does not matter, and asking for one would read the whole table
    /// by its key instead of the few rows by the generation index).
    pub fn changed_sql(&self, placeholder: &str) -> String {
        format!(
            "SELECT {} FROM {} WHERE {GENERATION} > {placeholder}",
            self.column_list(),
            self.name,
        )
    }

    pub fn count_sql(&self) -> String {
        format!("SELECT COUNT(*) FROM {}", self.name)
    }
}

/// The column naming the write that last changed a row (the store generation it made).
pub(crate) const GENERATION: &str = "generation";

const COMMITS: Table = Table {
    name: "commits",
    columns: &[
        ("repo", Col::Text),
        ("sha", Col::Text),
        ("parents", Col::Text),
        ("authored_at", Col::Ts),
        ("committed_at", Col::Ts),
        ("author", Col::Text),
        ("message", Col::Text),
        ("generation", Col::Int),
    ],
    key: &["repo", "sha"],
    indexes: &[
        ("commits_by_generation", "generation"),
        ("commits_by_authored_at", "authored_at"),
    ],
};

const PULL_REQUESTS: Table = Table {
    name: "pull_requests",
    columns: &[
        ("repo", Col::Text),
        ("number", Col::Int),
        ("created_at", Col::Ts),
        ("title", Col::Text),
        ("author", Col::Text),
        ("draft", Col::Bool),
        ("ready_at", Col::Ts),
        ("merged_at", Col::Ts),
        ("closed_at", Col::Ts),
        ("base_branch", Col::Text),
        ("head_branch", Col::Text),
        ("head_sha", Col::Text),
        ("merge_commit_sha", Col::Text),
        ("commits", Col::Text),
        ("additions", Col::Int),
        ("deletions", Col::Int),
        ("labels", Col::Text),
        ("reviews", Col::Text),
        ("generation", Col::Int),
    ],
    key: &["repo", "number"],
    indexes: &[
        ("pull_requests_by_generation", "generation"),
        ("pull_requests_by_closed_at", "closed_at"),
        ("pull_requests_by_merged_at", "merged_at"),
    ],
};

const DEPLOYMENTS: Table = Table {
    name: "deployments",
    columns: &[
        ("repo", Col::Text),
        ("id", Col::Text),
        ("environment", Col::Text),
        ("sha", Col::Text),
        ("status", Col::Text),
        ("created_at", Col::Ts),
        ("finished_at", Col::Ts),
        ("service", Col::Text),
        ("url", Col::Text),
        ("generation", Col::Int),
    ],
    key: &["repo", "id"],
    indexes: &[("deployments_by_generation", "generation")],
};

const INCIDENTS: Table = Table {
    name: "incidents",
    columns: &[
        ("key_scope", Col::Text),
        ("id", Col::Text),
        ("repo", Col::Text),
        ("service", Col::Text),
        ("created_at", Col::Ts),
        ("resolved_at", Col::Ts),
        ("title", Col::Text),
        ("severity", Col::Text),
        ("deployment_id", Col::Text),
        ("url", Col::Text),
        ("generation", Col::Int),
    ],
    key: &["key_scope", "id"],
    indexes: &[("incidents_by_generation", "generation")],
};

const ISSUES: Table = Table {
    name: "issues",
    columns: &[
        ("key", Col::Text),
        ("project", Col::Text),
        ("type", Col::Text),
        ("created_at", Col::Ts),
        ("summary", Col::Text),
        ("status", Col::Text),
        ("epic", Col::Text),
        ("parent", Col::Text),
        ("assignee", Col::Text),
        ("labels", Col::Text),
        ("story_points", Col::Real),
        ("resolved_at", Col::Ts),
        ("transitions", Col::Text),
        ("generation", Col::Int),
    ],
    key: &["key"],
    indexes: &[
        ("issues_by_generation", "generation"),
        ("issues_by_resolved_at", "resolved_at"),
    ],
};

pub(crate) fn table(kind: RecordKind) -> &'static Table {
    match kind {
        RecordKind::Commits => &COMMITS,
        RecordKind::PullRequests => &PULL_REQUESTS,
        RecordKind::Deployments => &DEPLOYMENTS,
        RecordKind::Incidents => &INCIDENTS,
        RecordKind::Issues => &ISSUES,
    }
}

fn text(s: &str) -> Val<'_> {
    Val::Text(Some(Cow::Borrowed(s)))
}

fn opt_text(s: &Option<String>) -> Val<'_> {
    Val::Text(s.as_deref().map(Cow::Borrowed))
}

fn owned(s: String) -> Val<'static> {
    Val::Text(Some(Cow::Owned(s)))
}

fn json<T: serde::Serialize>(value: &T) -> Val<'static> {
    owned(serde_json::to_string(value).expect("serializable"))
}

fn int(n: Option<u64>) -> Val<'static> {
    Val::Int(n.map(|n| n as i64))
}

/// Rows for the records of one kind, one per natural key (the last record wins), written by
/// the write that makes store generation `generation`.
pub(crate) fn to_rows(kind: RecordKind, records: &[Record], generation: i64) -> Vec<Vec<Val<'_>>> {
    let rows: Vec<Vec<Val>> = records
        .iter()
        .filter_map(|record| match (kind, record) {
            (RecordKind::Commits, Record::Commit(c)) => Some(vec![
                text(&c.repo),
                text(&c.sha),
                owned(c.parents.join(" ")),
                Val::Ts(Some(c.authored_at)),
                Val::Ts(Some(c.committed_at)),
                opt_text(&c.author),
                opt_text(&c.message),
            ]),
            (RecordKind::PullRequests, Record::PullRequest(p)) => Some(vec![
                text(&p.repo),
                int(Some(p.number)),
                Val::Ts(Some(p.created_at)),
                opt_text(&p.title),
                opt_text(&p.author),
                Val::Bool(Some(p.draft)),
                Val::Ts(p.ready_at),
                Val::Ts(p.merged_at),
                Val::Ts(p.closed_at),
                opt_text(&p.base_branch),
                opt_text(&p.head_branch),
                opt_text(&p.head_sha),
                opt_text(&p.merge_commit_sha),
                owned(p.commits.join(" ")),
                int(p.additions),
                int(p.deletions),
                json(&p.labels),
                json(&p.reviews),
            ]),
            (RecordKind::Deployments, Record::Deployment(d)) => Some(vec![
                text(&d.repo),
                text(&d.id),
                text(&d.environment),
                text(&d.sha),
                text(d.status.as_str()),
                Val::Ts(Some(d.created_at)),
                Val::Ts(d.finished_at),
                opt_text(&d.service),
                opt_text(&d.url),
            ]),
            (RecordKind::Incidents, Record::Incident(i)) => Some(vec![
                owned(i.key_scope()),
                text(&i.id),
                opt_text(&i.repo),
                opt_text(&i.service),
                Val::Ts(Some(i.created_at)),
                Val::Ts(i.resolved_at),
                opt_text(&i.title),
                opt_text(&i.severity),
                opt_text(&i.deployment_id),
                opt_text(&i.url),
            ]),
            (RecordKind::Issues, Record::Issue(i)) => Some(vec![
                text(&i.key),
                text(&i.project),
                text(&i.issue_type),
                Val::Ts(Some(i.created_at)),
                opt_text(&i.summary),
                opt_text(&i.status),
                opt_text(&i.epic),
                opt_text(&i.parent),
                opt_text(&i.assignee),
                json(&i.labels),
                Val::Real(i.story_points),
                Val::Ts(i.resolved_at),
                json(&i.transitions),
            ]),
            _ => None,
        })
        .map(|mut row| {
            row.push(Val::Int(Some(generation)));
            row
        })
        .collect();
    dedupe_by_key(rows, &table(kind).key_positions())
}

/// One field of a natural key.
#[derive(Debug, PartialEq, Eq, Hash)]
enum KeyPart<'v> {
    Text(&'v str),
    Int(i64),
    Null,
}

fn key_of<'v>(row: &'v [Val<'_>], key: &[usize]) -> Vec<KeyPart<'v>> {
    key.iter()
        .map(|&i| match &row[i] {
            Val::Text(Some(s)) => KeyPart::Text(s),
            Val::Int(Some(n)) => KeyPart::Int(*n),
            _ => KeyPart::Null,
        })
        .collect()
}

/// Keeps the last row of each key, in first-seen order. Keys are compared field by field (no
/// separator joins them, so no text can make two keys one); a batch without a repeated key,
/// the usual case, is returned as it is.
pub(crate) fn dedupe_by_key<'a>(rows: Vec<Vec<Val<'a>>>, key: &[usize]) -> Vec<Vec<Val<'a>>> {
    let mut seen: HashSet<Vec<KeyPart>> = HashSet::with_capacity(rows.len());
    let repeated = !rows.iter().all(|row| seen.insert(key_of(row, key)));
    drop(seen);
    if !repeated {
        return rows;
    }
    let mut last: HashMap<Vec<KeyPart>, usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key_of(row, key), i);
    }
    let mut first: HashMap<Vec<KeyPart>, usize> = HashMap::with_capacity(last.len());
    for (i, row) in rows.iter().enumerate() {
        first.entry(key_of(row, key)).or_insert(i);
    }
    // Each key at its first position, holding its last row.
    let mut keep: Vec<(usize, usize)> = first.iter().map(|(k, &at)| (at, last[k])).collect();
    keep.sort_unstable();
    drop((first, last));
    let mut slots: Vec<Option<Vec<Val<'a>>>> = rows.into_iter().map(Some).collect();
    keep.into_iter()
        .map(|(_, from)| slots[from].take().expect("each row taken once"))
        .collect()
}

/// Reads a stored row back into a record.
pub(crate) fn from_row(kind: RecordKind, row: Vec<Val<'_>>) -> Result<Record, StoreError> {
    let table = table(kind);
    let mut values = row.into_iter();
    let mut next = || values.next().expect("one value per column");
    let corrupt = |message: String| StoreError::Corrupt {
        table: table.name,
        message,
    };
    let t = |v: Val| match v {
        Val::Text(s) => s.map(Cow::into_owned),
        _ => None,
    };
    let req_t = |v: Val| t(v).unwrap_or_default();
    let ts = |v: Val| match v {
        Val::Ts(t) => t,
        _ => None,
    };
    let req_ts = |v: Val| ts(v).unwrap_or_default();
    let i = |v: Val| match v {
        Val::Int(n) => n.map(|n| n as u64),
        _ => None,
    };
    let shas = |s: String| -> Vec<String> { s.split_whitespace().map(String::from).collect() };
    Ok(match kind {
        RecordKind::Commits => Record::Commit(Commit {
            repo: req_t(next()),
            sha: req_t(next()),
            parents: shas(req_t(next())),
            authored_at: req_ts(next()),
            committed_at: req_ts(next()),
            author: t(next()),
            message: t(next()),
        }),
        RecordKind::PullRequests => Record::PullRequest(PullRequest {
            repo: req_t(next()),
            number: i(next()).unwrap_or_default(),
            created_at: req_ts(next()),
            title: t(next()),
            author: t(next()),
            draft: matches!(next(), Val::Bool(Some(true))),
            ready_at: ts(next()),
            merged_at: ts(next()),
            closed_at: ts(next()),
            base_branch: t(next()),
            head_branch: t(next()),
            head_sha: t(next()),
            merge_commit_sha: t(next()),
            commits: shas(req_t(next())),
            additions: i(next()),
            deletions: i(next()),
            labels: serde_json::from_str(&req_t(next())).map_err(|e| corrupt(e.to_string()))?,
            reviews: serde_json::from_str(&req_t(next())).map_err(|e| corrupt(e.to_string()))?,
        }),
        RecordKind::Deployments => {
            let repo = req_t(next());
            let id = req_t(next());
            let environment = req_t(next());
            let sha = req_t(next());
            let status = req_t(next());
            Record::Deployment(Deployment {
                status: DeploymentStatus::parse(&status)
                    .ok_or_else(|| corrupt(format!("unknown status '{status}'")))?,
                repo,
                id,
                environment,
                sha,
                created_at: req_ts(next()),
                finished_at: ts(next()),
                service: t(next()),
                url: t(next()),
            })
        }
        RecordKind::Incidents => {
            let _key_scope = next();
            Record::Incident(Incident {
                id: req_t(next()),
                repo: t(next()),
                service: t(next()),
                created_at: req_ts(next()),
                resolved_at: ts(next()),
                title: t(next()),
                severity: t(next()),
                deployment_id: t(next()),
                url: t(next()),
            })
        }
        RecordKind::Issues => Record::Issue(Issue {
            key: req_t(next()),
            project: req_t(next()),
            issue_type: req_t(next()),
            created_at: req_ts(next()),
            summary: t(next()),
            status: t(next()),
            epic: t(next()),
            parent: t(next()),
            assignee: t(next()),
            labels: serde_json::from_str(&req_t(next())).map_err(|e| corrupt(e.to_string()))?,
            story_points: match next() {
                Val::Real(r) => r,
                _ => None,
            },
            resolved_at: ts(next()),
            transitions: serde_json::from_str(&req_t(next()))
                .map_err(|e| corrupt(e.to_string()))?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(a: &str, b: &str, v: i64) -> Vec<Val<'static>> {
        vec![
            Val::Text(Some(Cow::Owned(a.into()))),
            Val::Text(Some(Cow::Owned(b.into()))),
            Val::Int(Some(v)),
        ]
    }

    #[test]
    fn the_last_row_of_a_key_wins_at_its_first_place_and_keys_never_run_together() {
        // Joined with a separator, ("a\u{1f}b", "c") and ("a", "b\u{1f}c") would be one key.
        let rows = vec![
            row("a\u{1f}b", "c", 1),
            row("a", "b\u{1f}c", 2),
            row("x", "y", 3),
            row("a\u{1f}b", "c", 4),
        ];
        let kept = dedupe_by_key(rows, &[0, 1]);
        let values: Vec<&Val> = kept.iter().map(|r| &r[2]).collect();
        assert_eq!(
            values,
            [&Val::Int(Some(4)), &Val::Int(Some(2)), &Val::Int(Some(3))]
        );
    }
}
