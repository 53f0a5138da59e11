//! The import format, version 1: folders of JSON Lines files, one record a line.
//!
//! Parsing is strict about what the format requires and names the field at fault, so an error
//! can point a user at file, line and field. Unknown fields are ignored.

use serde_json::{Map, Value};

use crate::Timestamp;
use crate::model::*;

/// The kinds of file an import folder may hold, in the order they are imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Commits,
    PullRequests,
    Deployments,
    Incidents,
    Issues,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Commits,
        RecordKind::PullRequests,
        RecordKind::Deployments,
        RecordKind::Incidents,
        RecordKind::Issues,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            RecordKind::Commits => "commits.jsonl",
            RecordKind::PullRequests => "pull_requests.jsonl",
            RecordKind::Deployments => "deployments.jsonl",
            RecordKind::Incidents => "incidents.jsonl",
            RecordKind::Issues => "issues.jsonl",
        }
    }

    /// A plural noun for summaries.
    pub fn noun(self) -> &'static str {
        match self {
            RecordKind::Commits => "commits",
            RecordKind::PullRequests => "pull requests",
            RecordKind::Deployments => "deployments",
            RecordKind::Incidents => "incidents",
            RecordKind::Issues => "issues",
        }
    }
}

/// What is wrong with one line: the field (when one is at fault) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("field '{f}': ")).unwrap_or_default())]
pub struct LineError {
    pub field: Option<String>,
    pub message: String,
}

impl LineError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        LineError {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// Parses one line of a file of the given kind.
pub fn parse_line(kind: RecordKind, line: &str) -> Result<Record, LineError> {
    let value: Value = serde_json::from_str(line).map_err(|e| LineError {
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    parse_value(kind, &value)
}

/// Parses one record given as a JSON value (the push API's body), with the same rules as a line.
pub fn parse_value(kind: RecordKind, value: &Value) -> Result<Record, LineError> {
    let Value::Object(map) = value else {
        return Err(LineError {
            field: None,
            message: "a line must be a JSON object".into(),
        });
    };
    let f = Fields { map };
    Ok(match kind {
        RecordKind::Commits => Record::Commit(commit(&f)?),
        RecordKind::PullRequests => Record::PullRequest(pull_request(&f)?),
        RecordKind::Deployments => Record::Deployment(deployment(&f)?),
        RecordKind::Incidents => Record::Incident(incident(&f)?),
        RecordKind::Issues => Record::Issue(issue(&f)?),
    })
}

/// Writes a record as one line of the import format (no trailing newline).
pub fn to_line(record: &Record) -> String {
    let result = match record {
        Record::Commit(r) => serde_json::to_string(r),
        Record::PullRequest(r) => serde_json::to_string(r),
        Record::Deployment(r) => serde_json::to_string(r),
        Record::Incident(r) => serde_json::to_string(r),
        Record::Issue(r) => serde_json::to_string(r),
    };
    result.expect("records always serialize")
}

/// Makes a record read from a connector storable under the same rules as an imported one:
/// control characters become U+FFFD, free text (messages, titles, summaries) longer than its
/// limit is cut at a character boundary, and what remains must pass the import rules (the
/// error names the field that does not: an identifier too long, a time outside the range).
pub fn fit(record: &Record) -> Result<Record, LineError> {
    let (kind, mut value) = match record {
        Record::Commit(r) => (RecordKind::Commits, serde_json::to_value(r)),
        Record::PullRequest(r) => (RecordKind::PullRequests, serde_json::to_value(r)),
        Record::Deployment(r) => (RecordKind::Deployments, serde_json::to_value(r)),
        Record::Incident(r) => (RecordKind::Incidents, serde_json::to_value(r)),
        Record::Issue(r) => (RecordKind::Issues, serde_json::to_value(r)),
    };
    let value = value.as_mut().expect("records always serialize");
    fit_value(value, "");
    parse_value(kind, value)
}

fn fit_value(value: &mut Value, field: &str) {
    match value {
        Value::String(text) => {
            let (limit, free) = text_limit(field);
            let control =
                |c: char| (c < ' ' || c == '\u{7f}') && !(free && matches!(c, '\t' | '\n' | '\r'));
            if text.contains(control) {
                *text = text
                    .chars()
                    .map(|c| if control(c) { '\u{FFFD}' } else { c })
                    .collect();
            }
            if free && text.len() > limit {
                let mut end = limit;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| fit_value(item, field)),
        Value::Object(map) => map.iter_mut().for_each(|(name, v)| fit_value(v, name)),
        _ => {}
    }
}

fn commit(f: &Fields) -> Result<Commit, LineError> {
    Ok(Commit {
        repo: f.repo("repo")?,
        sha: f.sha("sha")?,
        parents: f.sha_array("parents", true)?,
        authored_at: f.req_ts("authored_at")?,
        committed_at: f.req_ts("committed_at")?,
        author: f.opt_str("author")?,
        message: f.opt_str("message")?,
    })
}

fn pull_request(f: &Fields) -> Result<PullRequest, LineError> {
    let number = f.req_u64("number")?;
    if number == 0 {
        return Err(LineError::field("number", "must be a positive integer"));
    }
    let reviews = match f.get("reviews") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() > item_limit("reviews") => {
            return Err(check_items("reviews", items.len()).unwrap_err());
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| review(item, i))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(LineError::field("reviews", "must be an array")),
    };
    Ok(PullRequest {
        repo: f.repo("repo")?,
        number,
        created_at: f.req_ts("created_at")?,
        title: f.opt_str("title")?,
        author: f.opt_str("author")?,
        draft: f.opt_bool("draft")?.unwrap_or(false),
        ready_at: f.opt_ts("ready_at")?,
        merged_at: f.opt_ts("merged_at")?,
        closed_at: f.opt_ts("closed_at")?,
        base_branch: f.opt_str("base_branch")?,
        head_branch: f.opt_str("head_branch")?,
        head_sha: f.opt_sha("head_sha")?,
        merge_commit_sha: f.opt_sha("merge_commit_sha")?,
        commits: f.sha_array("commits", false)?,
        additions: f.opt_u64("additions")?,
        deletions: f.opt_u64("deletions")?,
        labels: f.str_array("labels")?,
        reviews,
    })
}

fn review(item: &Value, index: usize) -> Result<Review, LineError> {
    let Value::Object(map) = item else {
        return Err(LineError::field(
            format!("reviews[{index}]"),
            "must be an object",
        ));
    };
    let f = Fields { map };
    let nest = |e: LineError| LineError {
        field: e.field.map(|name| format!("reviews[{index}].{name}")),
        message: e.message,
    };
    Ok(Review {
        reviewer: f.req_str("reviewer").map_err(nest)?,
        state: f.req_str("state").map_err(nest)?,
        submitted_at: f.req_ts("submitted_at").map_err(nest)?,
    })
}

fn deployment(f: &Fields) -> Result<Deployment, LineError> {
    let status = f.req_str("status")?;
    let status = DeploymentStatus::parse(&status).ok_or_else(|| {
        let allowed: Vec<&str> = DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect();
        LineError::field(
            "status",
            format!("'{status}' is not one of {}", allowed.join(", ")),
        )
    })?;
    Ok(Deployment {
        repo: f.repo("repo")?,
        id: f.req_str("id")?,
        environment: f.req_str("environment")?,
        sha: f.sha("sha")?,
        status,
        created_at: f.req_ts("created_at")?,
        finished_at: f.opt_ts("finished_at")?,
        service: f.opt_str("service")?,
        url: f.opt_str("url")?,
    })
}

fn incident(f: &Fields) -> Result<Incident, LineError> {
    let repo = match f.get("repo") {
        None => None,
        Some(_) => Some(f.repo("repo")?),
    };
    let service = f.opt_str("service")?;
    if service.as_ref().is_some_and(|s| s.trim().is_empty()) {
        return Err(LineError::field("service", "must not be empty"));
    }
    if repo.is_none() && service.is_none() {
        return Err(LineError::field("repo", "missing (give repo or service)"));
    }
    let created_at = f.req_ts("created_at")?;
    let resolved_at = f.opt_ts("resolved_at")?;
    if let Some(resolved) = resolved_at
        && resolved < created_at
    {
        return Err(LineError::field("resolved_at", "is before created_at"));
    }
    Ok(Incident {
        repo,
        service,
        id: f.req_str("id")?,
        created_at,
        resolved_at,
        title: f.opt_str("title")?,
        severity: f.opt_str("severity")?,
        deployment_id: f.opt_str("deployment_id")?,
        url: f.opt_str("url")?,
    })
}

fn issue(f: &Fields) -> Result<Issue, LineError> {
    let transitions = match f.get("transitions") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() > item_limit("transitions") => {
            return Err(check_items("transitions", items.len()).unwrap_err());
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| transition(item, i))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(LineError::field("transitions", "must be an array")),
    };
    let story_points = match f.get("story_points") {
        None => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(p) if p.is_finite() && p.abs() <= MAX_POINTS => Some(p),
            _ => {
                return Err(LineError::field(
                    "story_points",
                    format!("must be a number from -{MAX_POINTS} to {MAX_POINTS}"),
                ));
            }
        },
        Some(_) => return Err(LineError::field("story_points", "must be a number")),
    };
    Ok(Issue {
        key: f.req_str("key")?,
        project: f.req_str("project")?,
        issue_type: f.req_str("type")?,
        created_at: f.req_ts("created_at")?,
        summary: f.opt_str("summary")?,
        status: f.opt_str("status")?,
        epic: f.opt_str("epic")?,
        parent: f.opt_str("parent")?,
        assignee: f.opt_str("assignee")?,
        labels: f.str_array("labels")?,
        story_points,
        resolved_at: f.opt_ts("resolved_at")?,
        transitions,
    })
}

fn transition(item: &Value, index: usize) -> Result<Transition, LineError> {
    let Value::Object(map) = item else {
        return Err(LineError::field(
            format!("transitions[{index}]"),
            "must be an object",
        ));
    };
    let f = Fields { map };
    let nest = |e: LineError| LineError {
        field: e.field.map(|name| format!("transitions[{index}].{name}")),
        message: e.message,
    };
    Ok(Transition {
        at: f.req_ts("at").map_err(nest)?,
        from: f.opt_str("from").map_err(nest)?,
        to: f.req_str("to").map_err(nest)?,
    })
}

/// Typed access to the fields of one JSON object; `null` reads as absent.
struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn req_str(&self, name: &str) -> Result<String, LineError> {
        match self.opt_str(name)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(LineError::field(name, "must not be empty")),
            None => Err(LineError::field(name, "missing")),
        }
    }

    fn opt_str(&self, name: &str) -> Result<Option<String>, LineError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                check_text(name, s)?;
                Ok(Some(s.clone()))
            }
            Some(other) => Err(LineError::field(
                name,
                format!("must be a string, found {}", kind_of(other)),
            )),
        }
    }

    fn repo(&self, name: &str) -> Result<String, LineError> {
        let repo = self.req_str(name)?;
        let valid = match repo.split_once('/') {
            Some((owner, rest)) => {
                !owner.is_empty() && !rest.is_empty() && !rest.contains('/') && !repo.contains(' ')
            }
            None => false,
        };
        if !valid {
            return Err(LineError::field(
                name,
                format!("'{repo}' is not of the form owner/name"),
            ));
        }
        Ok(repo)
    }

    fn sha(&self, name: &str) -> Result<String, LineError> {
        let sha = self.req_str(name)?;
        check_sha(name, &sha)?;
        Ok(sha)
    }

    fn opt_sha(&self, name: &str) -> Result<Option<String>, LineError> {
        let sha = self.opt_str(name)?;
        if let Some(sha) = &sha {
            check_sha(name, sha)?;
        }
        Ok(sha)
    }

    fn str_array(&self, name: &str) -> Result<Vec<String>, LineError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                check_items(name, items.len())?;
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => {
                            check_text(name, s)?;
                            Ok(s.clone())
                        }
                        other => Err(LineError::field(
                            name,
                            format!("must hold strings, found {}", kind_of(other)),
                        )),
                    })
                    .collect()
            }
            Some(other) => Err(LineError::field(
                name,
                format!("must be an array, found {}", kind_of(other)),
            )),
        }
    }

    fn sha_array(&self, name: &str, required: bool) -> Result<Vec<String>, LineError> {
        if required && self.get(name).is_none() {
            return Err(LineError::field(name, "missing"));
        }
        let shas = self.str_array(name)?;
        for sha in &shas {
            check_sha(name, sha)?;
        }
        Ok(shas)
    }

    fn req_ts(&self, name: &str) -> Result<Timestamp, LineError> {
        self.opt_ts(name)?
            .ok_or_else(|| LineError::field(name, "missing"))
    }

    fn opt_ts(&self, name: &str) -> Result<Option<Timestamp>, LineError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => parse_time(name, &s).map(Some),
        }
    }

    fn req_u64(&self, name: &str) -> Result<u64, LineError> {
        self.opt_u64(name)?
            .ok_or_else(|| LineError::field(name, "missing"))
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, LineError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v <= MAX_INTEGER => Ok(Some(v)),
                Some(_) => Err(LineError::field(
                    name,
                    format!("{n} is larger than {MAX_INTEGER}"),
                )),
                None => Err(LineError::field(
                    name,
                    format!("must be a non-negative integer, found {n}"),
                )),
            },
            Some(other) => Err(LineError::field(
                name,
                format!("must be a non-negative integer, found {}", kind_of(other)),
            )),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, LineError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(LineError::field(
                name,
                format!("must be true or false, found {}", kind_of(other)),
            )),
        }
    }
}

fn check_sha(field: &str, sha: &str) -> Result<(), LineError> {
    if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(LineError::field(
            field,
            format!("'{}' is not a commit sha", shown(sha)),
        ));
    }
    if sha.len() > MAX_SHA {
        return Err(LineError::field(
            field,
            format!("is longer than {MAX_SHA} characters"),
        ));
    }
    Ok(())
}

/// The limits every record is held to, the same on every store (docs/import-format.md).
pub const MAX_SHA: usize = 64;
/// Identifiers: names, ids, keys, statuses, labels (bytes of UTF-8).
pub const MAX_IDENTIFIER: usize = 256;
pub const MAX_URL: usize = 2048;
/// Titles and summaries.
pub const MAX_TITLE: usize = 4096;
/// Commit messages.
pub const MAX_MESSAGE: usize = 65536;
/// Integers (pull request numbers, line counts): what every JSON reader holds exactly.
pub const MAX_INTEGER: u64 = (1 << 53) - 1;
/// Story points, either way.
pub const MAX_POINTS: f64 = 1e9;
/// The earliest and latest times a record may hold (UTC).
pub fn time_range() -> (Timestamp, Timestamp) {
    let first = chrono::DateTime::from_timestamp(0, 0).expect("the epoch");
    let last = "9999-12-31T23:59:59.999999Z".parse().expect("a time");
    (first, last)
}

/// The byte limit of a text field, and whether it is free text (where tab, line feed and
/// carriage return may appear).
fn text_limit(field: &str) -> (usize, bool) {
    match field {
        "message" => (MAX_MESSAGE, true),
        "title" | "summary" => (MAX_TITLE, true),
        "url" => (MAX_URL, false),
        _ => (MAX_IDENTIFIER, false),
    }
}

/// How many items an array field may hold.
fn item_limit(field: &str) -> usize {
    match field {
        "parents" => 64,
        "commits" | "transitions" => 10_000,
        "labels" => 100,
        "reviews" => 1_000,
        _ => 1_000,
    }
}

/// A text is within its field's length and holds no control character (NUL included), but tab,
/// line feed and carriage return in free text.
fn check_text(field: &str, text: &str) -> Result<(), LineError> {
    let (limit, free) = text_limit(field);
    if text.len() > limit {
        return Err(LineError::field(
            field,
            format!("is longer than {limit} bytes ({} bytes)", text.len()),
        ));
    }
    let allowed = |c: char| free && matches!(c, '\t' | '\n' | '\r');
    if let Some(c) = text
        .chars()
        .find(|&c| (c < ' ' || c == '\u{7f}') && !allowed(c))
    {
        return Err(LineError::field(
            field,
            format!("holds a control character (U+{:04X})", u32::from(c)),
        ));
    }
    Ok(())
}

fn check_items(field: &str, count: usize) -> Result<(), LineError> {
    let limit = item_limit(field);
    if count > limit {
        return Err(LineError::field(
            field,
            format!("holds {count} items, more than {limit}"),
        ));
    }
    Ok(())
}

/// An RFC 3339 time within [`time_range`], kept to the microsecond (what every store holds).
fn parse_time(field: &str, text: &str) -> Result<Timestamp, LineError> {
    use chrono::{SubsecRound as _, Timelike as _};
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| {
            LineError::field(
                field,
                format!("'{}' is not an RFC 3339 timestamp", shown(text)),
            )
        })?;
    if time.nanosecond() >= 1_000_000_000 {
        return Err(LineError::field(
            field,
            "is a leap second, which no store holds",
        ));
    }
    let (first, last) = time_range();
    if time < first || time > last {
        return Err(LineError::field(
            field,
            format!(
                "'{}' is outside 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z",
                shown(text)
            ),
        ));
    }
    Ok(time.trunc_subsecs(6))
}

/// A value as an error message quotes it: at most 80 characters, control characters escaped.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: RecordKind, line: &str) -> String {
        parse_line(kind, line).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                RecordKind::Commits,
                r#"{"repo":"a/b","parents":[],"authored_at":"2024-01-01T00:00:00Z","committed_at":"2024-01-01T00:00:00Z"}"#,
                "field 'sha': missing",
            ),
            (
                RecordKind::Commits,
                r#"{"repo":"ab","sha":"a1","parents":[],"authored_at":"2024-01-01T00:00:00Z","committed_at":"2024-01-01T00:00:00Z"}"#,
                "field 'repo': 'ab' is not of the form owner/name",
            ),
            (
                RecordKind::Commits,
                r#"{"repo":"a/b","sha":"a1","parents":[],"authored_at":"yesterday","committed_at":"2024-01-01T00:00:00Z"}"#,
                "field 'authored_at': 'yesterday' is not an RFC 3339 timestamp",
            ),
            (
                RecordKind::Deployments,
                r#"{"repo":"a/b","id":"1","environment":"prod","sha":"a1","status":"done","created_at":"2024-01-01T00:00:00Z"}"#,
                "field 'status': 'done' is not one of success, failure, error, in_progress, queued, inactive",
            ),
            (
                RecordKind::PullRequests,
                r#"{"repo":"a/b","number":"7","created_at":"2024-01-01T00:00:00Z"}"#,
                "field 'number': must be a non-negative integer, found a string",
            ),
            (
                RecordKind::PullRequests,
                r#"{"repo":"a/b","number":7,"created_at":"2024-01-01T00:00:00Z","reviews":[{"reviewer":"x","state":"APPROVED"}]}"#,
                "field 'reviews[0].submitted_at': missing",
            ),
            (
                RecordKind::Incidents,
                r#"{"id":"1","created_at":"2024-01-01T00:00:00Z"}"#,
                "field 'repo': missing (give repo or service)",
            ),
            (
                RecordKind::Incidents,
                r#"{"repo":"a/b","id":"1","created_at":"2024-01-02T00:00:00Z","resolved_at":"2024-01-01T00:00:00Z"}"#,
                "field 'resolved_at': is before created_at",
            ),
            (
                RecordKind::Issues,
                r#"{"key":"A-1","project":"A","type":"Bug","created_at":"2024-01-01T00:00:00Z","transitions":[{"at":"2024-01-01T00:00:00Z"}]}"#,
                "field 'transitions[0].to': missing",
            ),
            (RecordKind::Issues, r#"[1]"#, "a line must be a JSON object"),
        ];
        for (kind, line, expected) in cases {
            assert_eq!(err(kind, line), expected, "{line}");
        }
    }

    #[test]
    fn offsets_are_stored_as_utc_and_unknown_fields_ignored() {
        let line = r#"{"repo":"a/b","sha":"a1","parents":["b2"],"authored_at":"2024-01-01T02:00:00+02:00","committed_at":"2024-01-01T00:00:00Z","extra":1}"#;
        let Record::Commit(c) = parse_line(RecordKind::Commits, line).unwrap() else {
            panic!("not a commit")
        };
        assert_eq!(c.authored_at.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(c.parents, vec!["b2"]);
    }

    #[test]
    fn a_written_record_reads_back_the_same() {
        let line = r#"{"repo":"a/b","number":7,"created_at":"2024-01-01T00:00:00Z","draft":true,"ready_at":"2024-01-02T00:00:00Z","labels":["bug"],"commits":["c1"],"reviews":[{"reviewer":"x","state":"APPROVED","submitted_at":"2024-01-03T00:00:00Z"}]}"#;
        let record = parse_line(RecordKind::PullRequests, line).unwrap();
        let again = parse_line(RecordKind::PullRequests, &to_line(&record)).unwrap();
        assert_eq!(record, again);
    }
}
