//! GitHub's REST answers to import-format records. Pure: no IO.
//!
//! Each function takes one archived item (a list entry, or a bundle such as a pull request with
//! its timeline) and returns its records, or an `Err` naming the item and what it lacks. Parts
//! that cannot be read (a review without a time) are skipped with a warning.

use serde_json::Value;

use flowmeter_core::config::DeploymentSource;
use flowmeter_core::{
    Commit, Deployment, DeploymentStatus, Incident, PullRequest, Review, Timestamp,
};

pub fn parse_time(text: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.to_utc())
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

fn time(value: &Value, path: &[&str]) -> Option<Timestamp> {
    text(value, path).and_then(parse_time)
}

/// A time that must be there: `Err` names the item and the field when it is missing or unreadable.
fn required_time(value: &Value, path: &[&str], item: &str) -> Result<Timestamp, String> {
    match path.iter().try_fold(value, |v, key| v.get(key)) {
        None | Some(Value::Null) => Err(format!("{item}: no {}", path.join("."))),
        Some(Value::String(s)) => {
            parse_time(s).ok_or_else(|| format!("{item}: {} '{s}' is not a time", path.join(".")))
        }
        Some(other) => Err(format!("{item}: {} {other} is not a time", path.join("."))),
    }
}

/// The object under `key`, or `Err` saying what is missing (`missing`) in `repo`.
fn part<'a>(raw: &'a Value, key: &str, repo: &str, missing: &str) -> Result<&'a Value, String> {
    raw.get(key)
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("{repo}: {missing}"))
}

/// The whole number under `key`, or `Err` saying what is missing (`missing`) in `repo`.
fn whole(raw: &Value, key: &str, repo: &str, missing: &str) -> Result<u64, String> {
    raw.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{repo}: {missing}"))
}

/// "Name <email>" of a git identity, or its name alone.
fn identity(person: Option<&Value>) -> Option<String> {
    let person = person?;
    let name = text(person, &["name"]).filter(|n| !n.is_empty());
    let email = text(person, &["email"]).filter(|e| !e.is_empty());
    match (name, email) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (Some(n), None) => Some(n.to_string()),
        (None, Some(e)) => Some(format!("<{e}>")),
        (None, None) => None,
    }
}

fn subject(message: Option<&str>) -> Option<String> {
    message
        .and_then(|m| m.lines().next())
        .map(|s| s.trim_end().to_string())
}

/// A commit in the shape of `GET /repos/{o}/{r}/commits` (the git data under `commit`) or of a
/// timeline `committed` event (the git data at the top level).
pub fn commit(raw: &Value, repo: &str) -> Result<Commit, String> {
    let sha = text(raw, &["sha"]).ok_or_else(|| format!("{repo}: a commit without a sha"))?;
    let item = format!("{repo} commit {sha}");
    let git = raw.get("commit").filter(|c| c.is_object()).unwrap_or(raw);
    let authored_at = required_time(git, &["author", "date"], &item)?;
    let committed_at = required_time(git, &["committer", "date"], &item)?;
    let parents = match raw.get("parents") {
        Some(Value::Array(parents)) => parents
            .iter()
            .map(|p| {
                text(p, &["sha"])
                    .map(String::from)
                    .ok_or_else(|| format!("{item}: a parent without a sha"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(format!("{item}: no parents")),
    };
    // The git identity: the commits list and a pull request's timeline both carry it, so the
    // same commit reads the same from either.
    let author = identity(git.get("author"));
    Ok(Commit {
        repo: repo.to_string(),
        sha: sha.to_string(),
        parents,
        authored_at,
        committed_at,
        author,
        message: subject(text(git, &["message"])),
    })
}

/// A pull request with its timeline: `{"pull": <list entry>, "timeline": [<events>]}`. Returns
/// the pull request and the commits its timeline names (which may not be on the default branch
/// under the same sha, as with squash merges).
pub fn pull_request(
    raw: &Value,
    repo: &str,
) -> Result<(PullRequest, Vec<Commit>, Vec<String>), String> {
    let pull = part(
        raw,
        "pull",
        repo,
        "a pull request bundle without its pull request",
    )?;
    let number = whole(pull, "number", repo, "a pull request without a number")?;
    let item = format!("{repo}#{number}");
    let created_at = required_time(pull, &["created_at"], &item)?;
    let merged_at = time(pull, &["merged_at"]);
    let mut warnings = Vec::new();
    let mut commits = Vec::new();
    let mut reviews = Vec::new();
    let mut ready_at = None;
    let mut draft_event_seen = false;
    let events: Vec<Value> = match raw.get("graphql") {
        Some(node) => graphql_events(node),
        None => raw
            .get("timeline")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    for event in &events {
        match text(event, &["event"]) {
            Some("committed") => match commit(event, repo) {
                Ok(c) => commits.push(c),
                Err(w) => warnings.push(format!("{item}: {w}")),
            },
            Some("reviewed") => {
                let state = text(event, &["state"]).unwrap_or_default().to_uppercase();
                if state == "PENDING" {
                    continue;
                }
                match (
                    text(event, &["user", "login"]),
                    time(event, &["submitted_at"]),
                ) {
                    (Some(reviewer), Some(submitted_at)) => reviews.push(Review {
                        reviewer: reviewer.to_string(),
                        state,
                        submitted_at,
                    }),
                    _ => warnings.push(format!(
                        "{item}: a review without a reviewer or a submitted_at time was skipped"
                    )),
                }
            }
            // Opened as a draft (its first draft event marks it ready, where one opened ready
            // would first be converted to a draft): ready when first marked ready for review.
            Some("ready_for_review") if !draft_event_seen => {
                draft_event_seen = true;
                ready_at = time(event, &["created_at"]);
            }
            Some("convert_to_draft") => draft_event_seen = true,
            _ => {}
        }
    }
    let pr = PullRequest {
        repo: repo.to_string(),
        number,
        created_at,
        title: text(pull, &["title"]).map(String::from),
        author: text(pull, &["user", "login"]).map(String::from),
        draft: pull.get("draft").and_then(Value::as_bool).unwrap_or(false),
        ready_at,
        merged_at,
        closed_at: time(pull, &["closed_at"]),
        base_branch: text(pull, &["base", "ref"]).map(String::from),
        head_branch: text(pull, &["head", "ref"]).map(String::from),
        head_sha: text(pull, &["head", "sha"]).map(String::from),
        // GitHub fills merge_commit_sha with a test merge while a pull request is open: only a
        // merged pull request's is a commit of the base branch.
        merge_commit_sha: merged_at
            .and(text(pull, &["merge_commit_sha"]))
            .map(String::from),
        commits: commits.iter().map(|c| c.sha.clone()).collect(),
        additions: pull.get("additions").and_then(Value::as_u64),
        deletions: pull.get("deletions").and_then(Value::as_u64),
        labels: pull
            .get("labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|l| text(l, &["name"]).map(String::from))
            .collect(),
        reviews,
    };
    Ok((pr, commits, warnings))
}

/// A pull request's GraphQL details (commits, reviews, first ready-for-review) as the timeline
/// events the REST API lists for the same things, so both read alike.
fn graphql_events(node: &Value) -> Vec<Value> {
    let nodes = |path: &str| {
        node.pointer(path)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut events = Vec::new();
    for c in nodes("/commits/nodes") {
        let c = c.get("commit").cloned().unwrap_or(Value::Null);
        let person = |who: &str, date: &str| {
            let mut p = c.get(who).cloned().unwrap_or_else(|| serde_json::json!({}));
            if let Some(map) = p.as_object_mut() {
                map.insert("date".into(), c.get(date).cloned().unwrap_or(Value::Null));
            }
            p
        };
        let parents: Vec<Value> = c
            .pointer("/parents/nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| serde_json::json!({"sha": p.get("oid")}))
            .collect();
        events.push(serde_json::json!({
            "event": "committed",
            "sha": c.get("oid"),
            "parents": parents,
            "author": person("author", "authoredDate"),
            "committer": person("committer", "committedDate"),
            "message": c.get("message"),
        }));
    }
    for r in nodes("/reviews/nodes") {
        events.push(serde_json::json!({
            "event": "reviewed",
            "state": r.get("state"),
            "user": r.get("author"),
            "submitted_at": r.get("submittedAt"),
        }));
    }
    for item in nodes("/timelineItems/nodes") {
        let event = match item.get("__typename").and_then(Value::as_str) {
            Some("ConvertToDraftEvent") => "convert_to_draft",
            _ => "ready_for_review",
        };
        events.push(serde_json::json!({"event": event, "created_at": item.get("createdAt")}));
    }
    events
}

/// The outcome of a GitHub deployment from its statuses (newest first, as GitHub lists them):
/// the first terminal state it reached (`success`, `failure` or `error`) with its time, else its
/// latest state. A successful deployment later superseded (`inactive`) stays a success.
fn deployment_outcome(statuses: &[Value]) -> (DeploymentStatus, Option<Timestamp>) {
    let mut dated: Vec<(Timestamp, DeploymentStatus)> = statuses
        .iter()
        .filter_map(|s| {
            let state = match text(s, &["state"])? {
                "success" => DeploymentStatus::Success,
                "failure" => DeploymentStatus::Failure,
                "error" => DeploymentStatus::Error,
                "in_progress" => DeploymentStatus::InProgress,
                "queued" | "pending" => DeploymentStatus::Queued,
                "inactive" => DeploymentStatus::Inactive,
                _ => return None,
            };
            Some((time(s, &["created_at"])?, state))
        })
        .collect();
    dated.sort_by_key(|(at, _)| *at);
    let terminal = dated.iter().find(|(_, s)| {
        matches!(
            s,
            DeploymentStatus::Success | DeploymentStatus::Failure | DeploymentStatus::Error
        )
    });
    match (terminal, dated.last()) {
        (Some((at, status)), _) => (*status, Some(*at)),
        (None, Some((at, DeploymentStatus::Inactive))) => (DeploymentStatus::Inactive, Some(*at)),
        (None, Some((_, status))) => (*status, None),
        (None, None) => (DeploymentStatus::Queued, None),
    }
}

/// Whether a deployment record can still change (its outcome is not known yet).
pub fn is_final(status: DeploymentStatus) -> bool {
    !matches!(
        status,
        DeploymentStatus::InProgress | DeploymentStatus::Queued
    )
}

/// A GitHub deployment with its statuses: `{"deployment": {...}, "statuses": [...]}`.
pub fn deployment(raw: &Value, repo: &str) -> Result<Deployment, String> {
    let d = part(
        raw,
        "deployment",
        repo,
        "a deployment bundle without its deployment",
    )?;
    let id = whole(d, "id", repo, "a deployment without an id")?;
    let item = format!("{repo} deployment {id}");
    let sha = text(d, &["sha"]).ok_or_else(|| format!("{item}: no sha"))?;
    let environment = text(d, &["environment"]).ok_or_else(|| format!("{item}: no environment"))?;
    let created_at = required_time(d, &["created_at"], &item)?;
    let statuses = raw
        .get("statuses")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (status, finished_at) = deployment_outcome(statuses);
    let url = statuses
        .iter()
        .find_map(|s| {
            text(s, &["environment_url"])
                .or(text(s, &["target_url"]))
                .or(text(s, &["log_url"]))
        })
        .filter(|u| !u.is_empty())
        .map(String::from);
    Ok(Deployment {
        repo: repo.to_string(),
        id: id.to_string(),
        environment: environment.to_string(),
        sha: sha.to_string(),
        status,
        created_at,
        finished_at,
        service: None,
        url,
    })
}

/// A published release with the commit its tag points at: `{"release": {...}, "sha": "..."}`.
/// Its id is the tag, so `[[services]] deployments` globs can select services by tag.
pub fn release(raw: &Value, repo: &str, environment: &str) -> Result<Deployment, String> {
    let r = part(raw, "release", repo, "a release bundle without its release")?;
    let tag = text(r, &["tag_name"]).ok_or_else(|| format!("{repo}: a release without a tag"))?;
    let item = format!("{repo} release {tag}");
    let sha = text(raw, &["sha"])
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{item}: the commit of its tag is unknown"))?;
    let published_at = required_time(r, &["published_at"], &item)?;
    Ok(Deployment {
        repo: repo.to_string(),
        id: tag.to_string(),
        environment: environment.to_string(),
        sha: sha.to_string(),
        status: DeploymentStatus::Success,
        created_at: time(r, &["created_at"])
            .unwrap_or(published_at)
            .min(published_at),
        finished_at: Some(published_at),
        service: None,
        url: text(r, &["html_url"]).map(String::from),
    })
}

/// A workflow run of a deploying workflow. Completed runs are `success` or `failure`; cancelled
/// or skipped runs deployed nothing and are `inactive`; the rest are still running.
pub fn workflow_run(raw: &Value, repo: &str, environment: &str) -> Result<Deployment, String> {
    let id = whole(raw, "id", repo, "a workflow run without an id")?;
    let item = format!("{repo} workflow run {id}");
    let sha = text(raw, &["head_sha"]).ok_or_else(|| format!("{item}: no head_sha"))?;
    let created_at = match time(raw, &["run_started_at"]) {
        Some(t) => t,
        None => required_time(raw, &["created_at"], &item)?,
    };
    let status = match (text(raw, &["status"]), text(raw, &["conclusion"])) {
        (Some("completed"), Some("success")) => DeploymentStatus::Success,
        (Some("completed"), Some("failure" | "timed_out" | "startup_failure")) => {
            DeploymentStatus::Failure
        }
        (Some("completed"), _) => DeploymentStatus::Inactive,
        (Some("queued" | "waiting" | "pending" | "requested"), _) => DeploymentStatus::Queued,
        _ => DeploymentStatus::InProgress,
    };
    let finished_at = is_final(status)
        .then(|| time(raw, &["updated_at"]))
        .flatten();
    Ok(Deployment {
        repo: repo.to_string(),
        id: format!("run-{id}"),
        environment: environment.to_string(),
        sha: sha.to_string(),
        status,
        created_at,
        finished_at,
        service: None,
        url: text(raw, &["html_url"]).map(String::from),
    })
}

/// An issue carrying an incident label. Its severity is the first label of the form `sev1`,
/// `sev-1`, `severity:high` or `severity/high`.
pub fn incident(raw: &Value, repo: &str) -> Result<Incident, String> {
    let number = whole(raw, "number", repo, "an issue without a number")?;
    let item = format!("{repo} issue #{number}");
    let created_at = required_time(raw, &["created_at"], &item)?;
    let severity = raw
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| text(l, &["name"]))
        .find_map(|name| {
            let lower = name.to_lowercase();
            if let Some(rest) = lower
                .strip_prefix("severity:")
                .or_else(|| lower.strip_prefix("severity/"))
            {
                return Some(rest.trim().to_string());
            }
            let rest = lower.strip_prefix("sev")?;
            let rest = rest.trim_start_matches(['-', ':', ' ']);
            (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
                .then(|| format!("sev{rest}"))
        });
    let resolved_at = match text(raw, &["state"]) {
        Some("closed") => time(raw, &["closed_at"]),
        _ => None,
    };
    Ok(Incident {
        repo: Some(repo.to_string()),
        service: None,
        id: format!("#{number}"),
        created_at,
        resolved_at,
        title: text(raw, &["title"]).map(String::from),
        severity,
        deployment_id: None,
        url: text(raw, &["html_url"]).map(String::from),
    })
}

/// The deployment records of a repository's configured source: which normalizer applies.
pub fn deployment_of(
    source: DeploymentSource,
    raw: &Value,
    repo: &str,
    environment: &str,
) -> Result<Deployment, String> {
    match source {
        DeploymentSource::Deployments => deployment(raw, repo),
        DeploymentSource::Releases => release(raw, repo, environment),
        DeploymentSource::WorkflowRuns => workflow_run(raw, repo, environment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        parse_time(text).unwrap()
    }

    #[test]
    fn a_deployment_is_its_first_terminal_status() {
        let raw = json!({"deployment": {"id": 42, "sha": "abc", "environment": "production",
            "created_at": "2024-03-01T10:00:00Z"},
            "statuses": [
                {"state": "inactive", "created_at": "2024-03-02T10:00:00Z"},
                {"state": "success", "created_at": "2024-03-01T10:05:00Z", "environment_url": "https://app"},
                {"state": "in_progress", "created_at": "2024-03-01T10:01:00Z"}]});
        let d = deployment(&raw, "a/b").unwrap();
        assert_eq!(
            (d.id.as_str(), d.status, d.finished_at),
            (
                "42",
                DeploymentStatus::Success,
                Some(at("2024-03-01T10:05:00Z"))
            )
        );
        assert_eq!(d.url.as_deref(), Some("https://app"));
        let running = json!({"deployment": raw["deployment"], "statuses": [
            {"state": "in_progress", "created_at": "2024-03-01T10:01:00Z"}]});
        let d = deployment(&running, "a/b").unwrap();
        assert_eq!(
            (d.status, d.finished_at),
            (DeploymentStatus::InProgress, None)
        );
        let bare = json!({"deployment": raw["deployment"], "statuses": []});
        assert_eq!(
            deployment(&bare, "a/b").unwrap().status,
            DeploymentStatus::Queued
        );
        let broken = json!({"deployment": {"id": 7, "sha": "abc", "environment": "production",
            "created_at": "yesterday"}, "statuses": []});
        assert_eq!(
            deployment(&broken, "a/b").unwrap_err(),
            "a/b deployment 7: created_at 'yesterday' is not a time"
        );
    }

    #[test]
    fn a_pull_request_takes_commits_reviews_and_ready_time_from_its_timeline() {
        let raw = json!({"pull": {"number": 5, "created_at": "2024-03-01T09:00:00Z",
            "merged_at": "2024-03-02T09:00:00Z", "closed_at": "2024-03-02T09:00:00Z",
            "merge_commit_sha": "m1", "draft": false, "user": {"login": "ann"},
            "head": {"ref": "feat/x", "sha": "c2"}, "base": {"ref": "main"},
            "labels": [{"name": "bug"}], "title": "PAY-1 fix"},
            "timeline": [
                {"event": "committed", "sha": "c1", "parents": [{"sha": "p0"}],
                 "author": {"name": "Ann", "email": "ann@x", "date": "2024-03-01T08:00:00Z"},
                 "committer": {"name": "Ann", "email": "ann@x", "date": "2024-03-01T08:00:00Z"},
                 "message": "start\n\nbody"},
                {"event": "ready_for_review", "created_at": "2024-03-01T12:00:00Z"},
                {"event": "reviewed", "state": "approved", "user": {"login": "bob"},
                 "submitted_at": "2024-03-01T13:00:00Z"},
                {"event": "reviewed", "state": "pending", "user": {"login": "cy"}},
                {"event": "reviewed", "state": "commented", "user": {"login": "dee"}},
                {"event": "commented", "created_at": "2024-03-01T14:00:00Z"}]});
        let (pr, commits, warnings) = pull_request(&raw, "a/b").unwrap();
        assert_eq!(pr.ready_at, Some(at("2024-03-01T12:00:00Z")));
        assert_eq!(pr.commits, ["c1"]);
        assert_eq!(pr.merge_commit_sha.as_deref(), Some("m1"));
        assert_eq!(pr.labels, ["bug"]);
        assert_eq!(pr.reviews.len(), 1);
        assert_eq!(pr.reviews[0].state, "APPROVED");
        assert_eq!(commits[0].message.as_deref(), Some("start"));
        assert_eq!(commits[0].author.as_deref(), Some("Ann <ann@x>"));
        assert_eq!(
            warnings,
            ["a/b#5: a review without a reviewer or a submitted_at time was skipped"]
        );
        // Opened ready, converted to a draft, then ready again: it was not opened as a draft, so
        // it has no ready time of its own (b1 is its creation).
        let mut reconverted = raw.clone();
        reconverted["timeline"].as_array_mut().unwrap().insert(
            1,
            json!({"event": "convert_to_draft", "created_at": "2024-03-01T10:00:00Z"}),
        );
        assert_eq!(pull_request(&reconverted, "a/b").unwrap().0.ready_at, None);
        // An open pull request's merge_commit_sha is a test merge, not a commit.
        let mut open = raw.clone();
        open["pull"]["merged_at"] = Value::Null;
        let (pr, _, _) = pull_request(&open, "a/b").unwrap();
        assert_eq!(pr.merge_commit_sha, None);
        let mut broken = raw.clone();
        broken["pull"].as_object_mut().unwrap().remove("created_at");
        assert_eq!(
            pull_request(&broken, "a/b").unwrap_err(),
            "a/b#5: no created_at"
        );
    }

    #[test]
    fn graphql_details_read_as_the_timeline_does() {
        let pull = json!({"number": 5, "created_at": "2024-03-01T09:00:00Z", "merged_at": null});
        let rest = json!({"pull": pull, "timeline": [
            {"event": "committed", "sha": "c1", "parents": [{"sha": "p0"}],
             "author": {"name": "Ann", "email": "ann@x", "date": "2024-03-01T08:00:00Z"},
             "committer": {"name": "Ann", "email": "ann@x", "date": "2024-03-01T08:05:00Z"},
             "message": "start"},
            {"event": "ready_for_review", "created_at": "2024-03-01T12:00:00Z"},
            {"event": "reviewed", "state": "APPROVED", "user": {"login": "bob"},
             "submitted_at": "2024-03-01T13:00:00Z"}]});
        let graphql = json!({"pull": pull, "graphql": {
            "commits": {"pageInfo": {"hasNextPage": false}, "nodes": [{"commit": {"oid": "c1",
                "authoredDate": "2024-03-01T08:00:00Z", "committedDate": "2024-03-01T08:05:00Z",
                "message": "start", "author": {"name": "Ann", "email": "ann@x"},
                "committer": {"name": "Ann", "email": "ann@x"}, "parents": {"nodes": [{"oid": "p0"}]}}}]},
            "reviews": {"pageInfo": {"hasNextPage": false}, "nodes": [
                {"author": {"login": "bob"}, "state": "APPROVED", "submittedAt": "2024-03-01T13:00:00Z"},
                {"author": {"login": "cy"}, "state": "PENDING", "submittedAt": null}]},
            "timelineItems": {"nodes": [{"__typename": "ReadyForReviewEvent", "createdAt": "2024-03-01T12:00:00Z"}]}}});
        let from_rest = pull_request(&rest, "a/b").unwrap();
        let from_graphql = pull_request(&graphql, "a/b").unwrap();
        assert_eq!(from_graphql, from_rest);
        assert_eq!(from_graphql.0.ready_at, Some(at("2024-03-01T12:00:00Z")));
        assert_eq!(from_graphql.1[0].parents, ["p0"]);
    }

    #[test]
    fn runs_releases_and_incidents() {
        let run = json!({"id": 9, "head_sha": "s", "status": "completed", "conclusion": "timed_out",
            "created_at": "2024-03-01T10:00:00Z", "run_started_at": "2024-03-01T10:01:00Z",
            "updated_at": "2024-03-01T10:09:00Z"});
        let d = workflow_run(&run, "a/b", "production").unwrap();
        assert_eq!(
            (d.id.as_str(), d.status, d.created_at, d.finished_at),
            (
                "run-9",
                DeploymentStatus::Failure,
                at("2024-03-01T10:01:00Z"),
                Some(at("2024-03-01T10:09:00Z"))
            )
        );
        let mut cancelled = run.clone();
        cancelled["conclusion"] = json!("cancelled");
        assert_eq!(
            workflow_run(&cancelled, "a/b", "p").unwrap().status,
            DeploymentStatus::Inactive
        );
        let mut running = run.clone();
        running["status"] = json!("in_progress");
        let d = workflow_run(&running, "a/b", "p").unwrap();
        assert_eq!(
            (d.status, d.finished_at),
            (DeploymentStatus::InProgress, None)
        );
        let rel = json!({"release": {"tag_name": "v1.0.0", "created_at": "2024-03-01T09:00:00Z",
            "published_at": "2024-03-01T10:00:00Z"}, "sha": "abc"});
        let d = release(&rel, "a/b", "production").unwrap();
        assert_eq!(
            (d.id.as_str(), d.sha.as_str(), d.status),
            ("v1.0.0", "abc", DeploymentStatus::Success)
        );
        let issue = json!({"number": 3, "created_at": "2024-03-01T10:00:00Z", "state": "closed",
            "closed_at": "2024-03-01T12:00:00Z", "labels": [{"name": "incident"}, {"name": "Sev-2"}]});
        let i = incident(&issue, "a/b").unwrap();
        assert_eq!(
            (i.id.as_str(), i.severity.as_deref(), i.resolved_at),
            ("#3", Some("sev2"), Some(at("2024-03-01T12:00:00Z")))
        );
        let mut open = issue.clone();
        open["state"] = json!("open");
        assert_eq!(incident(&open, "a/b").unwrap().resolved_at, None);
    }
}
