//! Property tests, 100,000 cases each, of everything that reads outside input: import lines,
//! push bodies, query parameters, and GitHub's and Jira's payloads. Nothing panics; whatever
//! is accepted is a record both stores take and reads back the same; everything else is an
//! error naming its fault.

use flowmeter_core::Record;
use flowmeter_core::import::{RecordKind, fit, parse_line, to_line};
use flowmeter_core::model::{Commit, Incident, Issue, Transition};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// 100,000 cases per property, nothing written to disk.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 100_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const FIELDS: &[&str] = &[
    "repo",
    "sha",
    "parents",
    "authored_at",
    "committed_at",
    "author",
    "message",
    "number",
    "created_at",
    "title",
    "draft",
    "ready_at",
    "merged_at",
    "closed_at",
    "base_branch",
    "head_branch",
    "head_sha",
    "merge_commit_sha",
    "commits",
    "additions",
    "deletions",
    "labels",
    "reviews",
    "reviewer",
    "state",
    "submitted_at",
    "id",
    "environment",
    "status",
    "finished_at",
    "service",
    "url",
    "resolved_at",
    "severity",
    "deployment_id",
    "key",
    "project",
    "type",
    "summary",
    "epic",
    "parent",
    "assignee",
    "story_points",
    "transitions",
    "at",
    "from",
    "to",
];

fn kind() -> impl Strategy<Value = RecordKind> {
    prop::sample::select(RecordKind::ALL.to_vec())
}

/// Times around every edge: years 0 to 10000, days and months out of range, leap seconds,
/// long fractions, odd offsets.
fn time() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(1970i32),
            Just(9999),
            Just(1969),
            Just(10000),
            0i32..10001
        ],
        0u32..14,
        0u32..33,
        0u32..25,
        0u32..61,
        0u32..62,
        prop::collection::vec(0u8..10, 0..12),
        prop::sample::select(vec![
            "Z", "z", "+00:00", "+02:00", "-23:59", "+24:00", "", " Z",
        ]),
    )
        .prop_map(|(y, mo, d, h, mi, s, digits, off)| {
            let frac: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let frac = if frac.is_empty() {
                frac
            } else {
                format!(".{frac}")
            };
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

/// Text of any characters (controls and every plane), drawn as code points: far cheaper to
/// generate than regular expressions of characters.
fn chars(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![3 => 0x20u32..0x7f, 1 => 0u32..0x20, 1 => 0u32..0x11_0000],
        0..max,
    )
    .prop_map(|points| points.into_iter().filter_map(char::from_u32).collect())
}

/// Text of about `bytes` bytes of one character repeated (so limits are hit whatever the
/// character's width).
fn sized(bytes: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    (
        bytes,
        prop::sample::select(vec!['a', 'é', '€', '😀', '\u{7f}']),
    )
        .prop_map(|(n, c)| c.to_string().repeat(n / c.len_utf8()) + &"a".repeat(n % c.len_utf8()))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        chars(24),
        Just("acme/api".to_string()),
        prop::collection::vec(0usize..16, 1..70)
            .prop_map(|d| d.iter().map(|d| format!("{d:x}")).collect()),
        time(),
        time().prop_map(|t| t.replace('Z', ".000+0000")),
        sized(250..=260),
        prop::sample::select(vec![
            "success", "failure", "queued", "APPROVED", "Bug", " ", "a b/c"
        ])
        .prop_map(String::from),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    json_of(FIELDS)
}

/// Any JSON, its object keys mostly from `fields` (so a reader's deep paths are reached).
fn json_of(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 12, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => prop::sample::select(fields).prop_map(String::from),
                        1 => text()
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object with many of the known fields, so deep rules are reached.
fn record_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), json()), 0..12).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    })
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        record_object().prop_map(|v| v.to_string()),
        json().prop_map(|v| v.to_string()),
        chars(60),
        (record_object(), any::<usize>(), any::<char>()).prop_map(|(v, at, c)| {
            // One character put somewhere into a good-looking line.
            let mut line = v.to_string();
            let mut at = at % (line.len() + 1);
            while !line.is_char_boundary(at) {
                at -= 1;
            }
            line.insert(at, c);
            line
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_line_is_a_record_that_reads_back_or_an_error(kind in kind(), line in line()) {
        match parse_line(kind, &line) {
            Ok(record) => {
                prop_assert_eq!(parse_line(kind, &to_line(&record)), Ok(record.clone()));
                prop_assert_eq!(fit(&record), Ok(record));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// Any time a store holds (1970 to 9999, no leap second).
fn timestamp() -> impl Strategy<Value = flowmeter_core::Timestamp> {
    (0i64..253_402_300_800, 0u32..1_000_000_000)
        .prop_map(|(s, n)| chrono::DateTime::from_timestamp(s, n).expect("in range"))
}

/// Short optional identifiers of any characters (control characters included).
fn name() -> impl Strategy<Value = Option<String>> {
    prop::option::of(chars(20))
}

fn free_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        16 => chars(40),
        1 => sized(4090..=4100),
        1 => sized(65_530..=65_540),
    ])
}

/// Records as a connector might make them: keys and times in range, any other text.
fn connector_record() -> impl Strategy<Value = Record> {
    let commit = (timestamp(), name(), free_text()).prop_map(|(at, author, message)| {
        Record::Commit(Commit {
            repo: "acme/api".into(),
            sha: "a1b2c3".into(),
            parents: vec!["f0".into()],
            authored_at: at,
            committed_at: at,
            author,
            message,
        })
    });
    let incident =
        (timestamp(), free_text(), name(), name()).prop_map(|(at, title, severity, service)| {
            Record::Incident(Incident {
                repo: Some("acme/api".into()),
                service: service.filter(|s| !s.trim().is_empty()),
                id: "INC-1".into(),
                created_at: at,
                resolved_at: None,
                title,
                severity,
                deployment_id: None,
                url: None,
            })
        });
    let issue = (
        timestamp(),
        free_text(),
        name(),
        prop::collection::vec(name(), 0..4),
    )
        .prop_map(|(at, summary, status, labels)| {
            Record::Issue(Issue {
                key: "PAY-1".into(),
                project: "PAY".into(),
                issue_type: "Story".into(),
                created_at: at,
                summary,
                status: status.clone(),
                epic: None,
                parent: None,
                assignee: status,
                labels: labels.into_iter().flatten().collect(),
                story_points: Some(3.0),
                resolved_at: None,
                transitions: vec![Transition {
                    at,
                    from: None,
                    to: "Done".into(),
                }],
            })
        });
    prop_oneof![commit, incident, issue]
}

proptest! {
    #![proptest_config(config())]

    /// Control characters and overlong free text are fitted, never refused: the record is
    /// stored, and storing it again changes nothing.
    #[test]
    fn connector_text_is_fitted_and_reads_back(record in connector_record()) {
        let fitted = fit(&record);
        prop_assert!(fitted.is_ok(), "{:?}", fitted);
        let fitted = fitted.unwrap();
        let kind = match &fitted {
            Record::Commit(_) => RecordKind::Commits,
            Record::Incident(_) => RecordKind::Incidents,
            _ => RecordKind::Issues,
        };
        prop_assert_eq!(parse_line(kind, &to_line(&fitted)), Ok(fitted.clone()));
        prop_assert_eq!(fit(&fitted), Ok(fitted));
    }
}

const PUSH_KINDS: [RecordKind; 2] = [RecordKind::Deployments, RecordKind::Incidents];

fn push_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        record_object().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(record_object(), 0..4)
            .prop_map(|items| Value::Array(items).to_string().into_bytes()),
        json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// The names the dashboard and the API read, and others.
const PARAMS: &[&str] = &[
    "from", "to", "days", "repo", "service", "team", "limit", "cursor", "page", "x",
];

fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        (0i32..10001, 0u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        any::<i64>().prop_map(|n| n.to_string()),
        prop::collection::vec(0usize..16, 0..40)
            .prop_map(|d| d.iter().map(|d| format!("{d:x}")).collect()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(PARAMS), param_value()), 0..6).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", flowmeter_web::params::encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn date() -> impl Strategy<Value = chrono::NaiveDate> {
    prop_oneof![
        Just(chrono::NaiveDate::MIN),
        Just(chrono::NaiveDate::MAX),
        (0i32..4_000_000)
            .prop_map(|d| chrono::NaiveDate::from_num_days_from_ce_opt(d)
                .unwrap_or(chrono::NaiveDate::MIN)),
    ]
}

/// A record read from outside must be one both stores take: fitted, it reads back the same.
fn storable(record: &Record) -> Result<(), TestCaseError> {
    if let Ok(fitted) = fit(record) {
        let kind = match &fitted {
            Record::Commit(_) => RecordKind::Commits,
            Record::PullRequest(_) => RecordKind::PullRequests,
            Record::Deployment(_) => RecordKind::Deployments,
            Record::Incident(_) => RecordKind::Incidents,
            Record::Issue(_) => RecordKind::Issues,
        };
        prop_assert_eq!(parse_line(kind, &to_line(&fitted)), Ok(fitted));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_push_body_is_records_or_an_error_naming_the_field(
        kind in prop::sample::select(PUSH_KINDS.to_vec()),
        body in push_body(),
    ) {
        match flowmeter_web::parse_push(kind, &body) {
            Ok(records) => {
                prop_assert!(!records.is_empty());
                for record in &records {
                    prop_assert_eq!(fit(record), Ok(record.clone()));
                }
            }
            Err(e) => {
                prop_assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
                if let Some(param) = &e.param {
                    prop_assert!(param.starts_with('['), "{}", param);
                }
            }
        }
    }

    #[test]
    fn any_query_is_a_window_or_an_error_naming_the_parameter(
        query in query(),
        data_end in date(),
        required in any::<bool>(),
    ) {
        let uri: axum::http::Uri = format!("/?{query}").parse().unwrap();
        let Ok(axum::extract::Query(filters)) =
            axum::extract::Query::<flowmeter_web::params::Filters>::try_from_uri(&uri)
        else {
            return Ok(());
        };
        let _ = filters.scope();
        let _ = (filters.limit(), filters.page(), filters.cursor());
        match filters.window_ending(data_end, required) {
            Ok(window) => {
                prop_assert!(window.from < window.to);
                let _ = filters.query_for(&window);
            }
            Err(e) => prop_assert!(e.param.is_some(), "{}", e.message),
        }
    }
}

const GITHUB_FIELDS: &[&str] = &[
    "sha",
    "commit",
    "author",
    "committer",
    "date",
    "message",
    "parents",
    "login",
    "user",
    "number",
    "created_at",
    "updated_at",
    "merged_at",
    "closed_at",
    "merge_commit_sha",
    "draft",
    "title",
    "labels",
    "name",
    "head",
    "base",
    "ref",
    "additions",
    "deletions",
    "pull",
    "timeline",
    "event",
    "state",
    "submitted_at",
    "commits",
    "nodes",
    "oid",
    "reviews",
    "id",
    "environment",
    "statuses",
    "status",
    "conclusion",
    "tag_name",
    "published_at",
    "prerelease",
    "target_commitish",
    "head_sha",
    "run_started_at",
    "html_url",
    "deployment",
    "__typename",
];

const JIRA_FIELDS: &[&str] = &[
    "key",
    "fields",
    "issuetype",
    "name",
    "project",
    "created",
    "updated",
    "status",
    "statusCategory",
    "changelog",
    "histories",
    "items",
    "field",
    "fieldId",
    "fromString",
    "toString",
    "resolutiondate",
    "summary",
    "labels",
    "customfield_10016",
    "parent",
    "assignee",
    "displayName",
    "accountId",
    "priority",
    "total",
    "startAt",
    "maxResults",
];

fn jira_config() -> flowmeter_core::config::JiraConfig {
    flowmeter_core::config::JiraConfig {
        projects: vec!["PAY".into()],
        story_points_field: "customfield_10016".into(),
        incident_types: vec!["Incident".into()],
        ..Default::default()
    }
}

fn fixture(path: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// GitHub's published examples, in the bundles the normalizers read.
fn github_payloads() -> Vec<Value> {
    let first = |path: &str| fixture(path)[0].clone();
    vec![
        first("github/repos-list-commits.json"),
        serde_json::json!({
            "pull": first("github/pulls-list.json"),
            "timeline": fixture("github/issues-list-timeline-events.json"),
        }),
        serde_json::json!({
            "deployment": first("github/repos-list-deployments.json"),
            "statuses": fixture("github/repos-list-deployment-statuses.json"),
        }),
        serde_json::json!({
            "release": first("github/repos-list-releases.json"),
            "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        }),
        fixture("github/actions-list-workflow-runs-for-repo.json")["workflow_runs"][0].clone(),
        first("github/issues-list-for-repo.json"),
    ]
}

/// Atlassian's published search example, with the fields a search asks for (the published
/// issue carries others only) and a changelog.
fn jira_payloads() -> Vec<Value> {
    let mut issue = fixture("jira/search-jql.json")["issues"][0].clone();
    let fields = issue["fields"].as_object_mut().unwrap();
    for (field, value) in [
        (
            "project",
            serde_json::json!({"key": "ED", "name": "Edison"}),
        ),
        ("issuetype", serde_json::json!({"name": "Story"})),
        ("summary", serde_json::json!("Checkout fails on retry")),
        ("created", serde_json::json!("2023-06-20T10:00:00.000+0000")),
        ("updated", serde_json::json!("2023-06-24T19:24:50.000+0000")),
        ("status", serde_json::json!({"name": "Done"})),
        ("labels", serde_json::json!(["backend"])),
        ("customfield_10016", serde_json::json!(3.0)),
    ] {
        fields.entry(field).or_insert(value);
    }
    issue["changelog"] =
        serde_json::json!({"histories": fixture("jira/issue-changelog-list.json")["histories"]});
    vec![issue]
}

fn nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(nodes).sum(),
        Value::Object(map) => map.values().map(nodes).sum(),
        _ => 0,
    }
}

/// Replaces the `n`-th node (depth first) of `value`; returns how many nodes were left to skip.
fn replace_nth(value: &mut Value, n: usize, with: &Value) -> usize {
    if n == 0 {
        *value = with.clone();
        return usize::MAX;
    }
    let mut left = n - 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(map) => map.values_mut().collect(),
        _ => Vec::new(),
    };
    for child in children {
        let size = nodes(child);
        if left < size {
            replace_nth(child, left, with);
            return usize::MAX;
        }
        left -= size;
    }
    left
}

/// A vendor's real payload with a few of its parts (a field, an object, a whole list) replaced
/// by anything: the deep paths of a reader are reached, with every kind of wrong value.
fn mutated(bases: Vec<Value>, fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(bases),
        prop::collection::vec((any::<prop::sample::Index>(), json_of(fields)), 0..4),
    )
        .prop_map(|(mut base, edits)| {
            for (at, with) in edits {
                let n = at.index(nodes(&base));
                replace_nth(&mut base, n, &with);
            }
            base
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_github_payload_is_records_or_a_warning(raw in mutated(github_payloads(), GITHUB_FIELDS)) {
        use flowmeter_ingest::github::normalize;
        let repo = "acme/api";
        if let Ok(c) = normalize::commit(&raw, repo) {
            storable(&Record::Commit(c))?;
        }
        if let Ok((pull, commits, _)) = normalize::pull_request(&raw, repo) {
            storable(&Record::PullRequest(pull))?;
            for c in commits {
                storable(&Record::Commit(c))?;
            }
        }
        for deployment in [
            normalize::deployment(&raw, repo),
            normalize::release(&raw, repo, "production"),
            normalize::workflow_run(&raw, repo, "production"),
        ]
        .into_iter()
        .flatten()
        {
            storable(&Record::Deployment(deployment))?;
        }
        if let Ok(i) = normalize::incident(&raw, repo) {
            storable(&Record::Incident(i))?;
        }
    }

    #[test]
    fn any_jira_payload_is_records_or_a_warning(raw in mutated(jira_payloads(), JIRA_FIELDS)) {
        if let Ok(n) = flowmeter_ingest::jira::normalize::normalize(&raw, &jira_config()) {
            storable(&Record::Issue(n.issue))?;
            if let Some(i) = n.incident {
                storable(&Record::Incident(i))?;
            }
        }
    }
}

/// The unmutated payloads are records: the mutations start from readable payloads.
#[test]
fn the_published_payloads_are_records() {
    use flowmeter_ingest::github::normalize;
    let github = github_payloads();
    assert!(normalize::commit(&github[0], "acme/api").is_ok());
    assert!(normalize::pull_request(&github[1], "acme/api").is_ok());
    assert!(normalize::deployment(&github[2], "acme/api").is_ok());
    assert!(normalize::release(&github[3], "acme/api", "production").is_ok());
    assert!(normalize::workflow_run(&github[4], "acme/api", "production").is_ok());
    assert!(normalize::incident(&github[5], "acme/api").is_ok());
    let jira = flowmeter_ingest::jira::normalize::normalize(&jira_payloads()[0], &jira_config());
    assert!(jira.is_ok(), "{jira:?}");
}
