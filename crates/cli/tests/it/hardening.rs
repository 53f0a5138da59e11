//! The server under abuse and faults: colliding keys, a store that goes away, floods of page
//! views, pushes and half-sent requests, and two processes on one SQLite file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flowmeter_core::Config;
use flowmeter_store::Store;
use flowmeter_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::*;

fn worked_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/import/worked-example")
}

async fn with_worked_example(store: &Store) -> AppState {
    let summary = flowmeter::import::import_dir(store, &worked_example(), false)
        .await
        .unwrap();
    assert!(summary.ok());
    AppState::new(store.clone(), Config::default())
        .await
        .unwrap()
}

/// Status, `Retry-After` and body of one request.
async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, Option<String>, String) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, retry, String::from_utf8_lossy(&body).into_owned())
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Option<String>, String) {
    call(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn push(state: &AppState, kind: &str, body: &Value) -> (StatusCode, Option<String>, String) {
    let request = Request::post(format!("/api/v1/{kind}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    call(state, request).await
}

fn deployment(i: usize) -> Value {
    json!({
        "repo": "acme/api", "id": format!("pg-{i:03}"), "environment": "production",
        "sha": format!("{i:040x}"), "status": "success",
        "created_at": format!("2024-03-0{}T{:02}:{:02}:00Z", 2 + i / 600, (i / 60) % 10, i % 60),
    })
}

/// A metric of `/metrics` by name.
async fn metric(state: &AppState, name: &str) -> f64 {
    let (_, _, text) = get(state, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

/// A repository's incident and a pager's (service) incident with the same id are two incidents.
#[tokio::test]
async fn repository_and_service_incidents_with_one_id_are_two() {
    on_both(|store| async move {
        let state = AppState::new(store.clone(), Config::default())
            .await
            .unwrap();
        let both = json!([
            {"repo": "acme/api", "id": "7", "created_at": "2024-03-10T12:00:00Z"},
            {"service": "acme/api", "id": "7", "created_at": "2024-03-11T12:00:00Z"},
        ]);
        let (status, _, body) = push(&state, "incidents", &both).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"received": 2, "changed": 2})
        );
        let stored = store.load().await.unwrap().incidents;
        assert_eq!(stored.len(), 2, "{stored:?}");
        // Pushed again: both known, nothing changes.
        let (_, _, body) = push(&state, "incidents", &both).await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"received": 2, "changed": 0})
        );
    })
    .await;
}

/// PostgreSQL going away under a running server: pushes answer 503 with `Retry-After` (so
/// senders retry), pages and `/sources` keep serving from memory, `/readyz` says 503; when it
/// comes back, pushes succeed again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_answers_503_and_pushes_resume_when_it_is_back() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let proxy = PgProxy::start().await;
    let store = Store::open(&proxy.url(&db.name)).await.unwrap();
    let state = with_worked_example(&store).await;
    let incident =
        |id: &str| json!({"repo": "acme/api", "id": id, "created_at": "2024-03-12T08:00:00Z"});
    let (status, _, body) = push(&state, "incidents", &incident("before")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    proxy.cut();
    let (status, retry, body) = push(&state, "incidents", &incident("during")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(retry.as_deref(), Some("2"));
    assert!(!body.contains("postgres://"), "{body}");
    for page in ["/", "/deployments", "/sources", "/healthz"] {
        let (status, _, body) = get(&state, page).await;
        assert_eq!(status, StatusCode::OK, "{page}: {body}");
    }
    let (status, _, _) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    let mut answers = Vec::new();
    loop {
        let (status, _, body) = push(&state, "incidents", &incident("during")).await;
        answers.push(status);
        match status {
            StatusCode::CREATED => break,
            StatusCode::SERVICE_UNAVAILABLE if answers.len() < 30 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => panic!("after the store came back: {answers:?} {body}"),
        }
    }
    let ids: Vec<String> = db
        .store
        .load()
        .await
        .unwrap()
        .incidents
        .into_iter()
        .map(|i| i.id)
        .filter(|id| id == "before" || id == "during")
        .collect();
    assert_eq!(ids, ["before", "during"]);
    store.close().await;
    drop(proxy);
    db.finish().await;
}

/// A flood of overview requests for windows never asked before: what the engine workers cannot
/// take is answered 503 with `Retry-After` at once, while health checks and pushes (which need
/// no engine worker) all answer, and an unknown receipt is refused before any work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_page_views_is_shed_while_health_and_pushes_answer() {
    let db = TestDb::sqlite().await;
    let state = with_worked_example(&db.store).await;
    let mut tasks = Vec::new();
    for i in 0..400 {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            let uri = match i % 20 {
                0 => "/healthz".to_string(),
                1 => "/receipts/not-a-metric".to_string(),
                2 => {
                    let (status, retry, body) = push(&state, "deployments", &deployment(i)).await;
                    return ("push", status, retry, body);
                }
                _ => format!(
                    "/?from=2024-01-{:02}&to=2024-05-{:02}",
                    1 + i % 28,
                    1 + (i / 28) % 28
                ),
            };
            let (status, retry, body) = get(&state, &uri).await;
            let what = if uri.starts_with("/?") {
                "page"
            } else if uri.starts_with("/healthz") {
                "health"
            } else {
                "receipt"
            };
            (what, status, retry, body)
        }));
    }
    let mut shed = 0;
    for task in tasks {
        let (what, status, retry, body) = task.await.unwrap();
        match (what, status) {
            ("health", StatusCode::OK)
            | ("push", StatusCode::CREATED)
            | ("page", StatusCode::OK) => {}
            ("receipt", StatusCode::NOT_FOUND) => {}
            ("page", StatusCode::SERVICE_UNAVAILABLE) => {
                assert_eq!(retry.as_deref(), Some("2"), "{body}");
                shed += 1;
            }
            _ => panic!("{what} answered {status}: {body}"),
        }
    }
    assert!(
        shed > 0,
        "380 page views at once on {} workers were all queued",
        2
    );
    assert_eq!(
        metric(&state, "flowmeter_http_shed_total").await,
        shed as f64
    );
    db.finish().await;
}

/// HTML lists show a page of rows at a time, with links to the others.
#[tokio::test]
async fn html_lists_are_paged() {
    let db = TestDb::sqlite().await;
    let state = AppState::new(db.store.clone(), Config::default())
        .await
        .unwrap();
    let all: Vec<Value> = (0..150).map(deployment).collect();
    let (status, _, body) = push(&state, "deployments", &Value::Array(all)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(state.refresh().await.unwrap());
    let window = "from=2024-03-01&to=2024-03-15";
    let rows = |html: &str| -> Vec<String> {
        html.match_indices("<td>pg-")
            .map(|(at, _)| html[at + 4..at + 10].to_string())
            .collect()
    };
    let (status, _, first) = get(&state, &format!("/deployments?{window}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first.contains("Page 1 of 2 (150 rows)"), "{first}");
    assert!(
        first.contains("href=\"/deployments?from=2024-03-01&#38;to=2024-03-15&#38;page=2\""),
        "{first}"
    );
    let (_, _, second) = get(&state, &format!("/deployments?{window}&page=2")).await;
    assert!(second.contains("Page 2 of 2"), "{second}");
    let (mut first, second) = (rows(&first), rows(&second));
    assert_eq!((first.len(), second.len()), (100, 50));
    assert_eq!(first[0], "pg-149", "newest first");
    first.extend(second);
    first.sort();
    first.dedup();
    assert_eq!(first.len(), 150, "every row on exactly one page");
    // A page past the last is the last.
    let (status, _, last) = get(&state, &format!("/deployments?{window}&page=99")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&last).len(), 50);
    db.finish().await;
}

/// Many pushes close together are a few refreshes of the snapshot, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pushes_close_together_are_few_refreshes() {
    let db = TestDb::sqlite().await;
    let state = with_worked_example(&db.store).await;
    let refresher = state.spawn_refresher();
    let pushes: Vec<_> = (0..100)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move { push(&state, "deployments", &deployment(i)).await.0 })
        })
        .collect();
    for p in pushes {
        assert_eq!(p.await.unwrap(), StatusCode::CREATED);
    }
    let generation = db.store.generation().await.unwrap();
    for _ in 0..600 {
        if state.view().generation == generation {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        state.view().generation,
        generation,
        "the snapshot caught up"
    );
    let refreshes = metric(&state, "flowmeter_snapshot_refreshes_total").await;
    assert!(
        (1.0..100.0).contains(&refreshes),
        "100 pushes, {refreshes} refreshes"
    );
    refresher.abort();
    db.finish().await;
}

/// A connection that never finishes its request's headers is closed, and no more than
/// `server.max_connections` connections are served at once; the one waiting is served when a
/// slot frees.
#[test]
fn half_sent_requests_are_cut_and_connections_capped() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fm.db").display());
    let config = dir.path().join("flowmeter.toml");
    std::fs::write(&config, "[server]\nmax_connections = 4\n").unwrap();
    let (server, address) = start_server(&db, Some(&config));
    let idle: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: ")
                .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A fifth connection waits for a slot, and is served once the half-sent ones are cut.
    let waiting = std::thread::spawn({
        let address = address.clone();
        move || http_get(&address, "/healthz")
    });
    for mut stream in idle {
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "the server closed the half-sent request: {read:?}"
        );
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    assert_eq!(waiting.join().unwrap().0, 200);
    stop(server);
}

/// `flowmeter import` and `flowmeter serve` on one SQLite file: a push during the import waits
/// its turn (or answers 503 to be retried), never 500, and nothing pushed is lost.
#[test]
fn import_and_serve_share_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org");
    let generated = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(["generate", "--scale", "S"])
        .arg(&org)
        .output()
        .unwrap();
    assert!(generated.status.success());
    let db = format!("sqlite://{}", dir.path().join("fm.db").display());
    let (server, address) = start_server(&db, None);
    let mut import = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(["import", "--db", &db])
        .arg(&org)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut statuses = Vec::new();
    let mut i = 0;
    while import.try_wait().unwrap().is_none() || i < 10 {
        let body = json!([{
            "repo": "pushed/during-import", "id": format!("p{i}"), "environment": "production",
            "sha": format!("{i:040x}"), "status": "success", "created_at": "2024-03-02T10:00:00Z",
        }]);
        let status = post_json(&address, "/api/v1/deployments", &body.to_string());
        assert!(status == 201 || status == 503, "push {i} answered {status}");
        statuses.push(status);
        if status == 201 {
            i += 1;
        }
    }
    assert!(import.wait().unwrap().success());
    stop(server);
    let count = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args([
            "report",
            "--db",
            &db,
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-10",
        ])
        .args(["--repo", "pushed/during-import"])
        .output()
        .unwrap();
    assert!(
        count.status.success(),
        "{}",
        String::from_utf8_lossy(&count.stderr)
    );
    let report: Value = serde_json::from_slice(&count.stdout).unwrap();
    assert_eq!(
        report["deployment_frequency"]["deployments"],
        json!(i),
        "{report}"
    );
}

/// Processes starting together on a fresh SQLite file migrate one after another.
#[test]
fn processes_starting_together_on_a_fresh_file_both_migrate() {
    let dir = tempfile::tempdir().unwrap();
    for trial in 0..10 {
        let db = format!(
            "sqlite://{}",
            dir.path().join(format!("fresh-{trial}.db")).display()
        );
        let children: Vec<_> = (0..3)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_flowmeter"))
                    .args(["migrate", "--db", &db])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
