//! `flowmeter sync jira`: the connectors' reqwest client against a local fake Jira that answers
//! in the shape of Atlassian's published examples (fixtures/jira), with both pagination styles
//! (`nextPageToken` for search, `startAt` for changelogs), rate limits, 5xx answers with a JSON
//! error body, an empty body or an HTML page, and a switch that stalls a page so the process can
//! be killed mid-sync.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use flowmeter_core::config::JiraConfig;
use flowmeter_ingest::LogProgress;
use flowmeter_store::Store;
use serde_json::{Value, json};

use crate::support::*;

const EMAIL: &str = "bot@acme.example";
const TOKEN: &str = "jira-secret-token-4f9a2c";

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn history(id: usize, at: &str, from: &str, to: &str) -> Value {
    // The shape of fixtures/jira/issue-changelog-list.json, with a status item.
    json!({"id": id.to_string(), "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof"},
        "created": at, "items": [{"field": "status", "fieldtype": "jira", "fieldId": "status",
        "from": "1", "fromString": from, "to": "3", "toString": to}]})
}

fn issue(key: &str, kind: &str, created: &str, updated: &str, histories: Vec<Value>) -> Value {
    let project = key.split('-').next().unwrap();
    json!({"expand": "", "id": key.len().to_string(), "key": key, "self": format!("https://your-domain.atlassian.net/rest/api/3/issue/{key}"),
        "fields": {
            "project": {"key": project, "name": project}, "issuetype": {"name": kind},
            "summary": format!("{key} summary"), "created": created, "updated": updated,
            "status": {"name": "Done"}, "labels": ["backend"], "customfield_10016": 3.0,
            "resolutiondate": updated, "priority": {"name": "High"}, "assignee": {"displayName": "Ann"}
        },
        "changelog": {"startAt": 0, "maxResults": histories.len(), "total": histories.len(), "histories": histories}})
}

/// The fake site's issues: every one with three status changes, so the search's two-entry
/// changelogs must be completed page by page.
fn issues() -> Vec<Value> {
    let mut all = Vec::new();
    for n in 1..=7 {
        let day = format!("2024-03-{:02}", n + 1);
        all.push(issue(
            &format!("PAY-{n}"),
            if n == 3 { "Bug" } else { "Story" },
            &format!("{day}T08:00:00.000+0000"),
            &format!("{day}T18:00:00.000+0000"),
            vec![
                history(
                    n * 10,
                    &format!("{day}T09:00:00.000+0000"),
                    "To Do",
                    "In Progress",
                ),
                history(
                    n * 10 + 1,
                    &format!("{day}T12:00:00.000+0000"),
                    "In Progress",
                    "In Review",
                ),
                history(
                    n * 10 + 2,
                    &format!("{day}T18:00:00.000+0000"),
                    "In Review",
                    "Done",
                ),
            ],
        ));
    }
    // PAY-2 was an outage: `labels = outage` selects it as an incident.
    all[1]["fields"]["labels"] = json!(["backend", "outage"]);
    all.push(issue(
        "OPS-1",
        "Incident",
        "2024-03-09T10:00:00.000+0200",
        "2024-03-09T12:30:00.000+0200",
        vec![],
    ));
    // Malformed: no issue type. A warning; its raw body is kept.
    let mut broken = issue(
        "PAY-99",
        "Story",
        "2024-03-10T08:00:00.000+0000",
        "2024-03-10T09:00:00.000+0000",
        vec![],
    );
    broken["fields"]
        .as_object_mut()
        .unwrap()
        .remove("issuetype");
    all.push(broken);
    all
}

/// What a failing answer carries: Jira's JSON error body, nothing, or a proxy's HTML page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ErrorBody {
    Json,
    Empty,
    #[default]
    Html,
}

#[derive(Default)]
pub(crate) struct Switches {
    /// Request numbers (1-based) answered 429.
    rate_limited: HashSet<usize>,
    /// Every n-th request answers 503.
    fail_every: Option<usize>,
    /// Requests fail at this rate (per mille), drawn from the seed and the request number.
    random_faults: Option<(u64, u64)>,
    /// The body of a failing answer.
    error_body: ErrorBody,
    /// The search page starting at this offset never answers (the test kills the client).
    pub(crate) stall_at: Option<usize>,
    /// Requests whose log line starts with this answer 200 with an error object.
    not_a_page: Option<String>,
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Default)]
pub(crate) struct Fake {
    issues: Vec<Value>,
    switches: Mutex<Switches>,
    pub(crate) log: Mutex<Vec<String>>,
    /// The log lines of the requests a fault switch failed.
    faulted: Mutex<Vec<String>>,
}

pub(crate) type Shared = Arc<Fake>;

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!("Basic {}", base64(format!("{EMAIL}:{TOKEN}").as_bytes()));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// Counts the request and applies the fault switches; `Some` is the answer to give instead.
fn faults(fake: &Fake, line: String, headers: &HeaderMap) -> Option<Response> {
    let number = {
        let mut log = fake.log.lock().unwrap();
        log.push(line.clone());
        log.len()
    };
    if !authorized(headers) {
        return Some((StatusCode::UNAUTHORIZED, "").into_response());
    }
    let switches = fake.switches.lock().unwrap();
    if switches.rate_limited.contains(&number) {
        let body = json!({"errorMessages": ["Rate limit exceeded."], "errors": {}}).to_string();
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1"), ("content-type", "application/json")],
                body,
            )
                .into_response(),
        );
    }
    let random = switches
        .random_faults
        .is_some_and(|(seed, per_mille)| mix(seed ^ ((number as u64) << 20)) % 1000 < per_mille);
    if switches
        .not_a_page
        .as_ref()
        .is_some_and(|prefix| line.starts_with(prefix.as_str()))
    {
        let body = json!({"errorMessages": ["Internal server error"], "errors": {}});
        return Some(axum::Json(body).into_response());
    }
    if random || switches.fail_every.is_some_and(|n| number % n == 0) {
        fake.faulted.lock().unwrap().push(line);
        // Jira's own 5xx carry its JSON error shape; proxies send HTML or nothing.
        let status = [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
        ][number % 3];
        return Some(match switches.error_body {
            ErrorBody::Json => (
                status,
                [("content-type", "application/json")],
                json!({"errorMessages": ["Service temporarily unavailable"], "errors": {}})
                    .to_string(),
            )
                .into_response(),
            ErrorBody::Empty => status.into_response(),
            ErrorBody::Html => (status, "<html>upstream unavailable</html>").into_response(),
        });
    }
    None
}

fn jira_time(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .unwrap()
        .to_utc()
}

async fn search(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let jql = q.get("jql").cloned().unwrap_or_default();
    if let Some(answer) = faults(
        &fake,
        format!("search {jql} token={:?}", q.get("nextPageToken")),
        &headers,
    ) {
        return answer;
    }
    let matching = matching(&fake, &jql);
    let size: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(50);
    let start: usize = q
        .get("nextPageToken")
        .and_then(|t| t.strip_prefix("offset-"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if fake.switches.lock().unwrap().stall_at == Some(start) {
        std::future::pending::<()>().await;
    }
    cloud_page(&matching, start, size)
}

/// The issues a JQL of this fake selects, in update order.
fn matching(fake: &Fake, jql: &str) -> Vec<Value> {
    // `updated >= "yyyy/MM/dd HH:mm"`, read as UTC (the fake's users live in UTC).
    let since = jql
        .split("updated >= \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|s| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y/%m/%d %H:%M")
                .unwrap()
                .and_utc()
        });
    let outage = jql.contains("labels = outage");
    let mut matching: Vec<Value> = fake
        .issues
        .iter()
        .filter(|i| since.is_none_or(|s| jira_time(i["fields"]["updated"].as_str().unwrap()) >= s))
        .filter(|i| {
            !outage
                || i["fields"]["labels"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("outage"))
        })
        .cloned()
        .collect();
    matching.sort_by_key(|i| {
        (
            jira_time(i["fields"]["updated"].as_str().unwrap()),
            i["key"].as_str().unwrap().to_string(),
        )
    });
    matching
}

fn cloud_page(matching: &[Value], start: usize, size: usize) -> Response {
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|i| {
            // The search returns at most two changelog entries, with the true total.
            let mut i = i.clone();
            let all = i["changelog"]["histories"].as_array().unwrap().clone();
            i["changelog"] = json!({"startAt": 0, "maxResults": 2, "total": all.len(), "histories": all.iter().take(2).collect::<Vec<_>>()});
            i
        })
        .collect();
    let end = start + page.len();
    let mut body = json!({"issues": page, "isLast": end >= matching.len()});
    if end < matching.len() {
        body["nextPageToken"] = json!(format!("offset-{end}"));
    }
    axum::Json(body).into_response()
}

/// Data Center's search (`/rest/api/2/search`): paged by `startAt`, whole changelogs.
async fn legacy_search(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let jql = q.get("jql").cloned().unwrap_or_default();
    if let Some(answer) = faults(
        &fake,
        format!("legacy search {jql} startAt={:?}", q.get("startAt")),
        &headers,
    ) {
        return answer;
    }
    let matching = matching(&fake, &jql);
    let size: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(50);
    let start: usize = q.get("startAt").and_then(|s| s.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|i| {
            // Data Center too may return part of a long changelog: PAY-5's has one entry of 3.
            let mut i = i.clone();
            if i["key"] == "PAY-5" {
                let all = i["changelog"]["histories"].as_array().unwrap().clone();
                i["changelog"] = json!({"startAt": 0, "maxResults": 1, "total": all.len(), "histories": [all[0]]});
            }
            i
        })
        .collect();
    axum::Json(
        json!({"expand": "schema,names", "startAt": start, "maxResults": size,
        "total": matching.len(), "issues": page}),
    )
    .into_response()
}

async fn changelog(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(answer) = faults(
        &fake,
        format!("changelog {key} startAt={:?}", q.get("startAt")),
        &headers,
    ) {
        return answer;
    }
    let Some(issue) = fake.issues.iter().find(|i| i["key"] == key) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errorMessages": ["Issue does not exist"], "errors": {}})),
        )
            .into_response();
    };
    let all = issue["changelog"]["histories"].as_array().unwrap();
    let start: usize = q.get("startAt").and_then(|s| s.parse().ok()).unwrap_or(0);
    // Two entries a page, whatever is asked, so every changelog takes two pages.
    let values: Vec<&Value> = all.iter().skip(start).take(2).collect();
    let body = json!({"self": "", "maxResults": 2, "startAt": start, "total": all.len(),
        "isLast": start + values.len() >= all.len(), "values": values});
    axum::Json(body).into_response()
}

/// Data Center's issue with its whole changelog (`/rest/api/2/issue/{key}?expand=changelog`).
async fn legacy_issue(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    if let Some(answer) = faults(&fake, format!("legacy issue {key}"), &headers) {
        return answer;
    }
    match fake.issues.iter().find(|i| i["key"] == key) {
        Some(issue) => axum::Json(issue.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Atlassian's example statuses (fixtures/jira/status-list.json, whose category keys are
/// placeholders, so only their names say what they are), and this site's own.
async fn statuses(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(answer) = faults(&fake, "status".into(), &headers) {
        return answer;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/jira/status-list.json");
    let mut all: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (name, key) in [
        ("To Do", "new"),
        ("In Review", "indeterminate"),
        ("Done", "done"),
    ] {
        let mut status = all[0].clone();
        status["name"] = json!(name);
        status["statusCategory"]["key"] = json!(key);
        all.push(status);
    }
    axum::Json(all).into_response()
}

pub(crate) async fn start_fake(switches: Switches) -> (Shared, SocketAddr) {
    let fake = Arc::new(Fake {
        issues: issues(),
        switches: Mutex::new(switches),
        log: Mutex::default(),
        faulted: Mutex::default(),
    });
    let app = Router::new()
        .route("/rest/api/3/search/jql", get(search))
        .route("/rest/api/3/issue/{key}/changelog", get(changelog))
        .route("/rest/api/3/status", get(statuses))
        .route("/rest/api/2/search", get(legacy_search))
        .route("/rest/api/2/issue/{key}", get(legacy_issue))
        .route("/rest/api/2/status", get(statuses))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, address)
}

pub(crate) fn jira_config(address: SocketAddr) -> JiraConfig {
    JiraConfig {
        url: format!("http://{address}"),
        email: EMAIL.into(),
        token: TOKEN.into(),
        projects: vec!["PAY".into(), "OPS".into()],
        story_points_field: "customfield_10016".into(),
        page_size: 3,
        retry_base_ms: 1,
        ..JiraConfig::default()
    }
}

async fn sync(store: &Store, config: &JiraConfig) -> flowmeter_ingest::SyncOutcome {
    flowmeter_ingest::jira::sync(store, config, &LogProgress)
        .await
        .expect("sync")
}

#[tokio::test]
async fn a_full_sync_then_an_unchanged_one() {
    on_both(|store| async move {
        let (fake, address) = start_fake(Switches::default()).await;
        let config = jira_config(address);
        let outcome = sync(&store, &config).await;
        assert!(outcome.ok(), "{outcome:?}");
        let r = &outcome.resources[0];
        // 9 issues in pages of 3; 8 normalize (plus OPS-1's incident), PAY-99 is a warning.
        assert_eq!((r.pages, r.records), (3, 9));
        assert_eq!(r.warnings, ["PAY-99: no issue type"]);
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.issues.len(), 8);
        let pay1 = loaded.issues.iter().find(|i| i.key == "PAY-1").unwrap();
        let moves: Vec<&str> = pay1.transitions.iter().map(|t| t.to.as_str()).collect();
        assert_eq!(
            moves,
            ["In Progress", "In Review", "Done"],
            "every changelog page was read"
        );
        assert_eq!(pay1.story_points, Some(3.0));
        assert_eq!(loaded.incidents.len(), 1);
        assert_eq!(loaded.incidents[0].service.as_deref(), Some("OPS"));
        assert_eq!(
            loaded.incidents[0].created_at.to_rfc3339(),
            "2024-03-09T08:00:00+00:00"
        );
        // Every status's category, by name: "In Progress" from the example's category name,
        // "Closed" left to its name (the example's category has no key Flowmeter knows).
        let categories: Vec<(&str, &str)> = loaded
            .status_categories
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            categories,
            [
                ("Done", "done"),
                ("In Progress", "indeterminate"),
                ("In Review", "indeterminate"),
                ("To Do", "new")
            ]
        );
        assert_eq!(
            outcome.resources[1].warnings,
            ["status 'Closed' has no category Flowmeter knows; it is grouped by its name"]
        );
        let raw = store.raw_payloads("jira").await.unwrap();
        assert_eq!(
            raw.len(),
            9,
            "every issue's raw body is kept, the unreadable one too"
        );
        assert!(
            fake.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("changelog PAY-1 startAt=Some(\"2\")"))
        );

        // Unchanged: asks only for what changed since the cursor (with overlap), writes nothing.
        fake.log.lock().unwrap().clear();
        let again = sync(&store, &config).await;
        assert_eq!(again.resources[0].changed, 0);
        let log = fake.log.lock().unwrap().clone();
        // The latest update (OPS-1, 10:30 UTC on the 9th) less a day of overlap.
        assert!(
            log[0].contains("updated >= \"2024/03/08 10:30\""),
            "{log:?}"
        );
        assert_eq!(store.load().await.unwrap(), loaded);
        // Replay normalizes the archive again without calling Jira.
        fake.log.lock().unwrap().clear();
        let replayed = flowmeter_ingest::jira::replay(&store, &config)
            .await
            .unwrap();
        assert_eq!(
            (replayed.resources[0].records, replayed.resources[0].changed),
            (9, 0)
        );
        assert!(fake.log.lock().unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_to_the_same_store() {
    let clean = TestDb::sqlite().await;
    let (fake, address) = start_fake(Switches::default()).await;
    assert!(sync(&clean.store, &jira_config(address)).await.ok());
    let expected = clean.store.load().await.unwrap();

    let faulty = TestDb::sqlite().await;
    fake.log.lock().unwrap().clear();
    // Requests 2 and 3 (the same page asked again) meet a 429 with `Retry-After: 1`: the sync
    // waits the second it says, each time. Request 9's 429 is followed by an answer that got
    // through (10), which is used as it is. Every 4th request answers 503 with an HTML page.
    *fake.switches.lock().unwrap() = Switches {
        rate_limited: [2, 3, 9].into(),
        fail_every: Some(4),
        ..Switches::default()
    };
    let started = std::time::Instant::now();
    let outcome = sync(&faulty.store, &jira_config(address)).await;
    assert!(outcome.ok(), "{outcome:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After was honoured"
    );
    assert_eq!(faulty.store.load().await.unwrap(), expected);
    let log = fake.log.lock().unwrap().clone();
    assert_eq!(
        log[1], log[2],
        "the rate-limited page is asked again: {log:?}"
    );
    assert_eq!(log[8], log[9], "{log:?}");
    assert_ne!(
        log[9], log[10],
        "the answer that got through was used, not asked for again: {log:?}"
    );
    assert!(log.len() > 20, "faults cost retries");

    // A site that keeps failing: the resource fails and says why.
    let switches = Switches {
        fail_every: Some(1),
        ..Switches::default()
    };
    let (_, address) = start_fake(switches).await;
    let config = JiraConfig {
        max_attempts: 3,
        ..jira_config(address)
    };
    let outcome = sync(&faulty.store, &config).await;
    assert!(!outcome.ok());
    let error = outcome.resources[0].error.clone().unwrap();
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    clean.finish().await;
    faulty.finish().await;
}

#[tokio::test]
async fn error_answers_never_pass_for_pages_and_a_failed_sync_is_repaired_by_the_next() {
    let clean = TestDb::sqlite().await;
    let (fake, address) = start_fake(Switches::default()).await;
    assert!(sync(&clean.store, &jira_config(address)).await.ok());
    let expected = clean.store.load().await.unwrap();
    let mut failed_runs = 0;
    let mut faulted = HashSet::new();
    for error_body in [ErrorBody::Json, ErrorBody::Empty, ErrorBody::Html] {
        for per_mille in [150, 400] {
            for seed in 1..=3u64 {
                let run = format!("{error_body:?} at {per_mille}\u{2030}, seed {seed}");
                let db = TestDb::sqlite().await;
                fake.log.lock().unwrap().clear();
                *fake.switches.lock().unwrap() = Switches {
                    random_faults: Some((seed, per_mille)),
                    error_body,
                    ..Switches::default()
                };
                let config = JiraConfig {
                    max_attempts: 2,
                    ..jira_config(address)
                };
                let outcome = sync(&db.store, &config).await;
                faulted.extend(
                    fake.faulted
                        .lock()
                        .unwrap()
                        .iter()
                        .filter_map(|l| l.split(' ').next())
                        .map(String::from),
                );
                if outcome.ok() {
                    assert_eq!(db.store.load().await.unwrap(), expected, "{run}");
                } else {
                    failed_runs += 1;
                    let error = outcome
                        .resources
                        .iter()
                        .find_map(|r| r.error.clone())
                        .unwrap();
                    assert!(error.contains("gave up after 2 attempts"), "{run}: {error}");
                    // What was written is whole: no issue with part of its status history.
                    for issue in db.store.load().await.unwrap().issues {
                        let want = expected.issues.iter().find(|i| i.key == issue.key).unwrap();
                        assert_eq!(&issue, want, "{run}: a partial issue was written");
                    }
                    *fake.switches.lock().unwrap() = Switches::default();
                    let repaired = sync(&db.store, &config).await;
                    assert!(repaired.ok(), "{run}: {repaired:?}");
                    assert_eq!(db.store.load().await.unwrap(), expected, "{run}: repaired");
                }
                db.finish().await;
            }
        }
    }
    assert!(failed_runs > 0, "some runs ran out of attempts");
    for route in ["search", "changelog", "status"] {
        assert!(
            faulted.contains(route),
            "{route} was never faulted: {faulted:?}"
        );
    }
    clean.finish().await;
}

/// A search page or changelog page that answers 200 but is not the page (an error object that
/// got through a proxy) is a fault too.
#[tokio::test]
async fn a_success_that_is_not_a_page_is_a_fault() {
    let db = TestDb::sqlite().await;
    let (fake, address) = start_fake(Switches::default()).await;
    fake.switches.lock().unwrap().not_a_page = Some("changelog PAY-4".into());
    let config = JiraConfig {
        max_attempts: 2,
        ..jira_config(address)
    };
    let outcome = sync(&db.store, &config).await;
    assert!(!outcome.ok());
    let error = outcome.resources[0].error.clone().unwrap();
    assert!(error.contains("not the page it should be"), "{error}");
    let stored = db.store.load().await.unwrap();
    assert!(
        stored.issues.iter().all(|i| i.key != "PAY-4"),
        "PAY-4 is not written without its changelog"
    );
    fake.switches.lock().unwrap().not_a_page = None;
    assert!(sync(&db.store, &config).await.ok());
    let pay4 = db.store.load().await.unwrap();
    let pay4 = pay4.issues.iter().find(|i| i.key == "PAY-4").unwrap();
    assert_eq!(pay4.transitions.len(), 3);
    db.finish().await;
}

fn write_config(dir: &std::path::Path, address: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("flowmeter.toml");
    std::fs::write(
        &path,
        format!(
            "[jira]\nurl = \"http://{address}\"\nemail = \"{EMAIL}\"\nprojects = [\"PAY\", \"OPS\"]\n\
             story_points_field = \"customfield_10016\"\npage_size = 3\nretry_base_ms = 1\n"
        ),
    )
    .unwrap();
    path
}

fn flowmeter_sync(db: &str, config: &std::path::Path, token: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowmeter"));
    command
        .args(["-vv", "sync", "jira", "--db", db, "--config"])
        .arg(config)
        .env("FLOWMETER_JIRA_TOKEN", token)
        .env("FLOWMETER_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn a_killed_sync_resumes_to_the_same_store_and_the_token_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let clean = TestDb::sqlite().await;
    let (fake, address) = start_fake(Switches::default()).await;
    assert!(sync(&clean.store, &jira_config(address)).await.ok());
    let expected = clean.store.load().await.unwrap();

    // The third page stalls; once it is asked for, the process is killed.
    fake.log.lock().unwrap().clear();
    fake.switches.lock().unwrap().stall_at = Some(6);
    let config = write_config(dir.path(), address);
    let db = format!("sqlite://{}", dir.path().join("killed.db").display());
    let mut child = flowmeter_sync(&db, &config, TOKEN).spawn().unwrap();
    loop {
        if fake
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("offset-6"))
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before the stalled page"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    let partial = Store::open(&db).await.unwrap();
    let before = partial.load().await.unwrap();
    assert!(
        !before.issues.is_empty() && before.issues.len() < expected.issues.len(),
        "killed mid-way"
    );

    fake.switches.lock().unwrap().stall_at = None;
    let resumed = tokio::task::spawn_blocking({
        let (db, config) = (db.clone(), config.clone());
        move || flowmeter_sync(&db, &config, TOKEN).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(partial.load().await.unwrap(), expected);

    // A wrong token: the sync fails, and neither token appears anywhere in what it printed.
    let wrong = "wrong-token-77c1e0d9";
    let refused = tokio::task::spawn_blocking({
        let (db, config) = (db.clone(), config.clone());
        move || flowmeter_sync(&db, &config, wrong).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!refused.status.success());
    let refused_err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(refused_err.contains("401"), "{refused_err}");
    for output in [&killed, &resumed, &refused] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !all.contains(TOKEN) && !all.contains(wrong),
            "a token leaked: {all}"
        );
        assert!(
            !all.contains(&base64(format!("{EMAIL}:{TOKEN}").as_bytes())),
            "the basic credentials leaked"
        );
    }
    partial.close().await;
    clean.finish().await;
}

#[tokio::test]
async fn issues_selected_by_jql_are_incidents() {
    on_both(|store| async move {
        let (fake, address) = start_fake(Switches::default()).await;
        let config = JiraConfig {
            incident_jql: "labels = outage".into(),
            ..jira_config(address)
        };
        let outcome = sync(&store, &config).await;
        assert!(outcome.ok(), "{outcome:?}");
        let names: Vec<&str> = outcome
            .resources
            .iter()
            .map(|r| r.resource.as_str())
            .collect();
        assert_eq!(names, ["issues", "incidents", "statuses"]);
        let loaded = store.load().await.unwrap();
        let mut ids: Vec<&str> = loaded.incidents.iter().map(|i| i.id.as_str()).collect();
        ids.sort();
        assert_eq!(
            ids,
            ["OPS-1", "PAY-2"],
            "OPS-1 by its type, PAY-2 by the JQL"
        );
        let pay2 = loaded.incidents.iter().find(|i| i.id == "PAY-2").unwrap();
        assert_eq!(pay2.service.as_deref(), Some("PAY"));
        assert!(
            fake.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("search (labels = outage) ORDER BY updated ASC"))
        );
        // Replay knows which archived issues the JQL selected.
        let replayed = flowmeter_ingest::jira::replay(&store, &config)
            .await
            .unwrap();
        assert_eq!(replayed.resources[0].changed, 0);
        assert_eq!(store.load().await.unwrap(), loaded);
        // The incident search has its own cursor.
        fake.log.lock().unwrap().clear();
        assert!(sync(&store, &config).await.ok());
        let log = fake.log.lock().unwrap().clone();
        assert!(
            log.iter()
                .any(|l| l.starts_with("search (labels = outage) AND updated >= ")),
            "{log:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_data_center_site_is_read_through_its_own_search() {
    let cloud = TestDb::sqlite().await;
    let (fake, address) = start_fake(Switches::default()).await;
    assert!(sync(&cloud.store, &jira_config(address)).await.ok());
    fake.log.lock().unwrap().clear();
    let dc = TestDb::sqlite().await;
    let config = JiraConfig {
        edition: flowmeter_core::config::JiraEdition::DataCenter,
        ..jira_config(address)
    };
    let outcome = sync(&dc.store, &config).await;
    assert!(outcome.ok(), "{outcome:?}");
    let log = fake.log.lock().unwrap().clone();
    let searches: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("legacy search"))
        .collect();
    assert_eq!(searches.len(), 3, "{log:?}");
    assert!(outcome.resources[0].error.is_none());
    assert!(searches[1].ends_with("startAt=Some(\"3\")"), "{log:?}");
    assert!(
        !log.iter()
            .any(|l| l.starts_with("changelog") || l.starts_with("search")),
        "Data Center's search is read through its own paths: {log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("legacy issue"))
            .collect::<Vec<_>>(),
        ["legacy issue PAY-5"],
        "only the changelog the search cut short is read from its issue"
    );
    // The same records as from Jira Cloud.
    assert_eq!(
        dc.store.load().await.unwrap(),
        cloud.store.load().await.unwrap()
    );
    cloud.finish().await;
    dc.finish().await;
}
