//! Jira issues (with their changelog) to import-format records. Pure: no IO.

use serde_json::Value;

use flowmeter_core::config::JiraConfig;
use flowmeter_core::{Incident, Issue, Timestamp, Transition};

/// Jira writes offsets without a colon (`2023-06-24T19:24:50.000+0000`); RFC 3339 is accepted too.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.to_utc())
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

/// One issue's records: the tracker issue, and an incident when its type marks incidents or
/// `jira.incident_jql` selected it.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub issue: Issue,
    pub incident: Option<Incident>,
    /// When the issue was last updated (the sync cursor).
    pub updated: Option<Timestamp>,
    pub warnings: Vec<String>,
}

/// Normalizes one issue of a search answer (`expand=changelog`). An issue without key, type
/// or creation time cannot be a record: that is an `Err` naming what is missing. Parts that
/// cannot be read (a history entry without a time) are skipped with a warning.
pub fn normalize(raw: &Value, config: &JiraConfig) -> Result<Normalized, String> {
    let key = text(raw, &["key"])
        .ok_or("an issue without a key")?
        .to_string();
    let fields = raw
        .get("fields")
        .filter(|f| f.is_object())
        .ok_or_else(|| format!("{key}: no fields"))?;
    let issue_type = text(fields, &["issuetype", "name"])
        .ok_or_else(|| format!("{key}: no issue type"))?
        .to_string();
    let created_at = text(fields, &["created"])
        .and_then(parse_time)
        .ok_or_else(|| format!("{key}: no readable created time"))?;
    let project = text(fields, &["project", "key"])
        .map(String::from)
        .or_else(|| key.split_once('-').map(|(p, _)| p.to_string()))
        .ok_or_else(|| format!("{key}: no project"))?;
    let mut warnings = Vec::new();
    let mut transitions = Vec::new();
    for history in raw
        .pointer("/changelog/histories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let status_items = history
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|item| {
                text(item, &["field"]) == Some("status")
                    || text(item, &["fieldId"]) == Some("status")
            });
        for item in status_items {
            let Some(at) = text(history, &["created"]).and_then(parse_time) else {
                warnings.push(format!(
                    "{key}: a status change without a readable time was skipped"
                ));
                continue;
            };
            let Some(to) = text(item, &["toString"]).filter(|s| !s.is_empty()) else {
                warnings.push(format!(
                    "{key}: a status change without a target status was skipped"
                ));
                continue;
            };
            transitions.push(Transition {
                at,
                from: text(item, &["fromString"])
                    .filter(|s| !s.is_empty())
                    .map(String::from),
                to: to.to_string(),
            });
        }
    }
    transitions.sort_by_key(|t| t.at);
    let parent_key = text(fields, &["parent", "key"]).map(String::from);
    let parent_is_epic = text(fields, &["parent", "fields", "issuetype", "name"]) == Some("Epic");
    let story_points = (!config.story_points_field.is_empty())
        .then(|| {
            fields
                .get(&config.story_points_field)
                .and_then(Value::as_f64)
        })
        .flatten();
    let summary = text(fields, &["summary"]).map(String::from);
    let resolved_at = text(fields, &["resolutiondate"]).and_then(parse_time);
    let issue = Issue {
        key: key.clone(),
        project: project.clone(),
        issue_type: issue_type.clone(),
        created_at,
        summary: summary.clone(),
        status: text(fields, &["status", "name"]).map(String::from),
        epic: parent_key.clone().filter(|_| parent_is_epic),
        parent: parent_key.filter(|_| !parent_is_epic),
        assignee: text(fields, &["assignee", "displayName"])
            .or_else(|| text(fields, &["assignee", "accountId"]))
            .map(String::from),
        labels: fields
            .get("labels")
            .and_then(Value::as_array)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        story_points,
        resolved_at,
        transitions,
    };
    let marked = raw.get(super::INCIDENT_MARK).and_then(Value::as_bool) == Some(true);
    let incident = (marked
        || config
            .incident_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&issue_type)))
    .then(|| Incident {
        repo: None,
        service: Some(
            config
                .project_services
                .get(&project)
                .cloned()
                .unwrap_or(project),
        ),
        id: key.clone(),
        created_at,
        resolved_at: resolved_at.filter(|r| *r >= created_at),
        title: summary,
        severity: text(fields, &["priority", "name"]).map(String::from),
        deployment_id: None,
        url: (!config.url.is_empty())
            .then(|| format!("{}/browse/{key}", config.url.trim_end_matches('/'))),
    });
    let updated = text(fields, &["updated"]).and_then(parse_time);
    if updated.is_none() && fields.get("updated").is_some_and(|u| !u.is_null()) {
        warnings.push(format!("{key}: unreadable updated time"));
    }
    Ok(Normalized {
        issue,
        incident,
        updated,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atlassians_example_issue_is_read_for_what_it_has() {
        let page: Value =
            serde_json::from_str(include_str!("../../../../fixtures/jira/search-jql.json"))
                .unwrap();
        let mut raw = page["issues"][0].clone();
        // Atlassian's example asks for a few fields only: without a type it is no record.
        assert_eq!(
            normalize(&raw, &JiraConfig::default()).unwrap_err(),
            "ED-1: no issue type"
        );
        raw["fields"]["issuetype"] = serde_json::json!({"name": "Story"});
        raw["fields"]["created"] = serde_json::json!("2023-06-24T19:24:50.000+0000");
        let n = normalize(&raw, &JiraConfig::default()).expect("normalizes");
        assert_eq!(
            (n.issue.key.as_str(), n.issue.project.as_str()),
            ("ED-1", "EX")
        );
        // The example's `updated` is a placeholder number: said, not silently dropped.
        assert_eq!(n.updated, None);
        assert_eq!(n.warnings, ["ED-1: unreadable updated time"]);
        assert_eq!(
            parse_time("2023-06-24T19:24:50.000+0000")
                .unwrap()
                .to_rfc3339(),
            "2023-06-24T19:24:50+00:00"
        );
        assert_eq!(
            parse_time("2023-06-24T21:24:50.000+0200")
                .unwrap()
                .to_rfc3339(),
            "2023-06-24T19:24:50+00:00"
        );
    }

    #[test]
    fn status_changes_become_transitions_and_incidents_are_found() {
        let raw = serde_json::json!({
            "key": "OPS-7",
            "fields": {
                "project": {"key": "OPS"}, "issuetype": {"name": "Incident"}, "summary": "Checkout down",
                "created": "2024-03-01T10:00:00.000+0000", "resolutiondate": "2024-03-01T12:30:00.000+0000",
                "priority": {"name": "Highest"}, "status": {"name": "Done"}, "labels": ["sev1"],
                "parent": {"key": "OPS-1", "fields": {"issuetype": {"name": "Epic"}}}
            },
            "changelog": {"histories": [
                {"created": "2024-03-01T11:00:00.000+0000", "items": [{"field": "status", "fromString": "To Do", "toString": "In Progress"}]},
                {"created": "2024-03-01T10:30:00.000+0000", "items": [{"field": "assignee", "toString": "ann"}]},
                {"created": "2024-03-01T12:30:00.000+0000", "items": [{"field": "status", "fromString": "In Progress", "toString": "Done"}]},
                {"items": [{"field": "status", "toString": "Done"}]}
            ]}
        });
        let mut config = JiraConfig {
            url: "https://acme.atlassian.net/".into(),
            ..JiraConfig::default()
        };
        config
            .project_services
            .insert("OPS".into(), "checkout".into());
        let n = normalize(&raw, &config).unwrap();
        assert_eq!(
            n.issue
                .transitions
                .iter()
                .map(|t| t.to.as_str())
                .collect::<Vec<_>>(),
            ["In Progress", "Done"]
        );
        assert_eq!(n.issue.epic.as_deref(), Some("OPS-1"));
        assert_eq!(n.warnings.len(), 1);
        let incident = n.incident.unwrap();
        assert_eq!(incident.service.as_deref(), Some("checkout"));
        assert_eq!(
            incident.url.as_deref(),
            Some("https://acme.atlassian.net/browse/OPS-7")
        );
        assert_eq!(
            normalize(&serde_json::json!({"key": "X-1", "fields": {}}), &config).unwrap_err(),
            "X-1: no issue type"
        );
    }
}
