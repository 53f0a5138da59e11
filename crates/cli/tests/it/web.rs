//! The HTTP server: handlers through `app().oneshot(...)`, the real binary on port 0 against
//! PostgreSQL, and a real browser on the dashboard.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flowmeter_core::Config;
use flowmeter_store::Store;
use flowmeter_web::{AppState, ROUTES, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::*;

fn worked_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/import/worked-example")
}

const WINDOW: &str = "from=2024-03-01&to=2024-03-15";

async fn state_with(store: &Store, config: Config) -> AppState {
    let summary = flowmeter::import::import_dir(store, &worked_example(), false)
        .await
        .unwrap();
    assert!(summary.ok());
    AppState::new(store.clone(), config).await.unwrap()
}

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, String) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The answer itself, for its headers.
async fn send_full(
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, axum::response::Response) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    (response.status(), response)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(
    state: &AppState,
    uri: &str,
    body: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    send(state, request.body(Body::from(body.to_string())).unwrap()).await
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn dora_api_is_the_cli_report_byte_for_byte() {
    let db = TestDb::sqlite().await;
    let state = state_with(&db.store, Config::default()).await;
    let (status, body) = get(&state, &format!("/api/v1/dora?{WINDOW}")).await;
    assert_eq!(status, StatusCode::OK);
    let expected = std::fs::read_to_string(worked_example().join("report.json")).unwrap();
    assert_eq!(body.trim_end(), expected.trim_end());
    db.finish().await;
}

#[tokio::test]
async fn bad_parameters_name_the_parameter() {
    let db = TestDb::sqlite().await;
    let state = state_with(&db.store, Config::default()).await;
    let cases = [
        ("/api/v1/dora?from=2024-02-30&to=2024-03-15", 400, "from"),
        ("/api/v1/dora?from=2024-03-15&to=2024-03-01", 400, "from"),
        ("/api/v1/dora?from=2024-03-01", 400, "to"),
        ("/api/v1/dora", 400, "from"),
        (
            "/api/v1/dora?from=2024-03-01&to=2024-03-15&repo=acme/nope",
            404,
            "repo",
        ),
        (
            "/api/v1/dora?from=2024-03-01&to=2024-03-15&team=nope",
            404,
            "team",
        ),
        (
            "/api/v1/changes?from=2024-03-01&to=2024-03-15&limit=0",
            400,
            "limit",
        ),
        (
            "/api/v1/changes?from=2024-03-01&to=2024-03-15&cursor=zz",
            400,
            "cursor",
        ),
        ("/?days=abc", 400, "days"),
        ("/receipts/happiness", 404, "metric"),
    ];
    for (uri, status, param) in cases {
        let (got, body) = get(&state, uri).await;
        assert_eq!(got.as_u16(), status, "{uri}: {body}");
        assert_eq!(json_of(&body)["error"]["param"], param, "{uri}: {body}");
    }
    db.finish().await;
}

#[tokio::test]
async fn lists_page_with_a_stable_cursor() {
    let db = TestDb::sqlite().await;
    let state = state_with(&db.store, Config::default()).await;
    let (status, body) = get(&state, &format!("/api/v1/changes?{WINDOW}&limit=4")).await;
    assert_eq!(status, StatusCode::OK);
    let first = json_of(&body);
    let shas: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    // Ordered by deployment time, then service and sha.
    assert_eq!(shas, ["b2c3d4e", "8a9b0c1", "9c8b7a6", "e5f6a7b"]);
    assert_eq!(first["items"][3]["lead_hours"], 47.0);
    assert_eq!(first["items"][3]["squash_of"], 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, body) = get(
        &state,
        &format!("/api/v1/changes?{WINDOW}&limit=4&cursor={cursor}"),
    )
    .await;
    let second = json_of(&body);
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["items"][0]["sha"], "0b1c2d3");
    assert_eq!(second["items"][1]["sha"], "1c2d3e4");
    assert_eq!(second["next_cursor"], Value::Null);

    let (_, body) = get(&state, &format!("/api/v1/deployments?{WINDOW}")).await;
    let deployments = json_of(&body);
    let ids: Vec<&str> = deployments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1002", "1003", "1005", "1006", "1007", "1008"]);
    assert_eq!(deployments["items"][2]["failed"], true);
    let rework: Vec<bool> = deployments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rework"].as_bool().unwrap())
        .collect();
    assert_eq!(rework, [false, true, false, true, false, true]);
    assert_eq!(
        deployments["items"][5]["rework_reasons"],
        json!([{"clause": "rollback", "to_deployment": "1006"}])
    );
    assert_eq!(
        deployments["items"][3]["rework_reasons"],
        json!([{"clause": "revert", "reverted_deployment": "1005"},
               {"clause": "fix_after_incident", "change": "0b1c2d3", "incident": "INC-2"}])
    );
    let (_, body) = get(&state, &format!("/api/v1/incidents?{WINDOW}")).await;
    let incidents = json_of(&body);
    assert_eq!(incidents["items"][0]["id"], "INC-1");
    assert_eq!(incidents["items"][0]["deployment_id"], Value::Null);
    assert_eq!(incidents["items"][1]["deployment_id"], "1005");
    let (_, body) = get(&state, &format!("/api/v1/pull-requests?{WINDOW}")).await;
    assert_eq!(json_of(&body)["items"].as_array().unwrap().len(), 5);
    db.finish().await;
}

#[tokio::test]
async fn pushed_records_are_validated_then_written_and_shown() {
    on_both(|store| async move {
        let state = state_with(&store, Config::default()).await;
        let bad = json!([
            {"repo": "acme/api", "id": "2001", "environment": "production", "sha": "0b1c2d3", "status": "success", "created_at": "2024-03-10T10:00:00Z"},
            {"repo": "acme/api", "id": "2002", "environment": "production", "sha": "0b1c2d3", "status": "shipped", "created_at": "2024-03-10T11:00:00Z"}
        ]);
        let (status, body) = post(&state, "/api/v1/deployments", &bad.to_string(), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(json_of(&body)["error"]["param"], "[1].status");
        assert_eq!(store.counts().await.unwrap().deployments, 8, "nothing of the batch is written");

        let good = json!({"repo": "acme/api", "id": "2001", "environment": "production", "sha": "0b1c2d3",
            "status": "success", "created_at": "2024-03-10T10:00:00Z"});
        let (status, body) = post(&state, "/api/v1/deployments", &good.to_string(), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(json_of(&body), json!({"received": 1, "changed": 1}));
        let incident = json!({"service": "acme/api", "id": "PD-7", "created_at": "2024-03-10T12:00:00Z"});
        let (status, _) = post(&state, "/api/v1/incidents", &incident.to_string(), None).await;
        assert_eq!(status, StatusCode::CREATED);
        state.refresh().await.unwrap();
        let (_, body) = get(&state, &format!("/api/v1/dora?{WINDOW}")).await;
        let report = json_of(&body);
        assert_eq!(report["deployment_frequency"]["deployments"], 7);
        // PD-7 (12:00) is attributed to 2001 (10:00), which failed; 1005 and 1007 failed
        // already.
        assert_eq!(report["change_failure_rate"]["failed"], 3);
        assert_eq!(report["recovery_time"]["open"], 1);

        let plain = Request::post("/api/v1/incidents")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(incident.to_string()))
            .unwrap();
        let (status, body) = send(&state, plain).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "a cross-site form cannot push: {body}");
        let oversized = format!("[{}]", vec![good.to_string(); 40_000].join(","));
        let (status, _) = post(&state, "/api/v1/deployments", &oversized, None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    })
    .await;
}

#[tokio::test]
async fn tokens_guard_the_pages_the_api_and_metrics() {
    let db = TestDb::sqlite().await;
    let config = Config::from_toml(
        r#"
[[server.tokens]]
name = "bi"
token = "read-token-0123456789"
scope = "read"
[[server.tokens]]
name = "ci"
token = "write-token-0123456789"
scope = "write"
"#,
        |_| None,
    )
    .unwrap();
    let state = state_with(&db.store, config).await;
    let uri = format!("/api/v1/dora?{WINDOW}");
    let with = |token: &str| {
        Request::get(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, body) = get(&state, &uri).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(&body)["error"]["message"], "missing bearer token");
    let (status, body) = send(&state, with("read-token-0123456780")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("read-token"), "{body}");
    let (status, _) = send(&state, with("read-token-0123456789")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&state, "/export/dora.csv").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let incident =
        json!({"repo": "acme/api", "id": "PD-1", "created_at": "2024-03-10T12:00:00Z"}).to_string();
    let (status, body) = post(
        &state,
        "/api/v1/incidents",
        &incident,
        Some("read-token-0123456789"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("'bi' may only read"), "{body}");
    let (status, _) = post(
        &state,
        "/api/v1/incidents",
        &incident,
        Some("write-token-0123456789"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // Pages and /metrics are guarded too: a browser is sent to sign in.
    for page in [
        "/",
        "/deployments",
        "/receipts/lead-time",
        "/pull-requests",
        "/incidents",
        "/value-stream",
        "/sources",
    ] {
        let (status, response) =
            send_full(&state, Request::get(page).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
        let location = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            location == format!("/signin?next={page}"),
            "{page}: {location}"
        );
    }
    let (status, _) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        &state,
        Request::get("/metrics")
            .header(header::AUTHORIZATION, "Bearer read-token-0123456789")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for open in ["/healthz", "/readyz", "/static/style.css", "/signin"] {
        let (status, _) = get(&state, open).await;
        assert_eq!(status, StatusCode::OK, "{open}");
    }
    // Signing in: a wrong token is refused, a right one gives a session cookie that opens pages
    // and holds no secret.
    let signin = |token: &str| {
        Request::post("/signin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}&next=%2Fdeployments")))
            .unwrap()
    };
    let (status, body) = send(&state, signin("not-a-token-at-all")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("not-a-token"), "{body}");
    let (status, response) = send_full(&state, signin("read-token-0123456789")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/deployments");
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(!cookie.contains("read-token"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let (status, html) = send(
        &state,
        Request::get("/deployments")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // A session reads; it does not push.
    let (status, _) = send(
        &state,
        Request::post("/api/v1/incidents")
            .header(header::COOKIE, &session)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(incident.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let tampered = session.replacen('.', "0.", 1);
    let (status, _) = send_full(
        &state,
        Request::get("/")
            .header(header::COOKIE, &tampered)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a forged session is no session"
    );
    // Every answer says what it may not be used for.
    let (_, response) = send_full(
        &state,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // The Host check holds with tokens too, on loopback.
    state.loopback_only(true);
    let (status, _) = send(
        &state,
        Request::get("/healthz")
            .header(header::HOST, "attacker.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    db.finish().await;

    // server.public_dashboard keeps pages open; the API stays guarded.
    let db = TestDb::sqlite().await;
    let config = Config::from_toml(
        "[server]\npublic_dashboard = true\n[[server.tokens]]\nname = \"bi\"\ntoken = \"read-token-0123456789\"\nscope = \"read\"\n",
        |_| None,
    )
    .unwrap();
    let state = state_with(&db.store, config).await;
    let (status, _) = get(&state, "/deployments").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&state, &format!("/api/v1/dora?{WINDOW}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    db.finish().await;
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_answers() {
    let db = TestDb::sqlite().await;
    let state = state_with(&db.store, Config::default()).await;
    let (status, body) = get(&state, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let doc = json_of(&body);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes);
    for (method, path) in &routes {
        let uri = format!("{}?{WINDOW}", path.replace("{metric}", "lead-time"));
        let (status, body) = if method == "GET" {
            get(&state, &uri).await
        } else {
            post(&state, path, "{}", None).await
        };
        let expected = match (method.as_str(), path.as_str()) {
            (_, "/signout") => StatusCode::SEE_OTHER,
            ("POST", "/signin") => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // Webhooks are off without github.webhook_secret.
            ("POST", "/hooks/github") => StatusCode::NOT_FOUND,
            ("GET", _) => StatusCode::OK,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        assert_eq!(status, expected, "{method} {uri}: {body}");
    }
    db.finish().await;
}

/// List pages sort by their columns through links that keep the window and the order across
/// pages; an unknown column or order names the parameter.
#[tokio::test]
async fn list_pages_sort_by_links() {
    let db = TestDb::sqlite().await;
    let state = state_with(&db.store, Config::default()).await;
    let ids = |html: &str| {
        let mut found = Vec::new();
        for id in ["1002", "1003", "1005"] {
            if let Some(at) = html.find(&format!("<td>{id}</td>")) {
                found.push((at, id));
            }
        }
        found.sort();
        found.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    };
    let (status, newest) = get(&state, &format!("/deployments?{WINDOW}")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, oldest) = get(
        &state,
        &format!("/deployments?{WINDOW}&sort=time&order=asc"),
    )
    .await;
    let mut reversed = ids(&newest);
    reversed.reverse();
    assert!(ids(&newest).len() >= 2, "{newest}");
    assert_eq!(ids(&oldest), reversed);
    // The current column's link sorts the other way round, keeping the window.
    assert!(
        oldest
            .replace("&#38;", "&")
            .contains(&format!("/deployments?{WINDOW}&sort=time&order=desc")),
        "{oldest}"
    );
    let (status, teams) = get(
        &state,
        &format!("/teams?{WINDOW}&sort=lead-time&order=desc"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(teams.contains("aria-sort=\"descending\""), "{teams}");
    for path in ["/deployments", "/incidents", "/pull-requests", "/teams"] {
        let (status, _) = get(&state, &format!("{path}?{WINDOW}&sort=colour")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let (status, _) = get(&state, &format!("{path}?{WINDOW}&order=sideways")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    let (status, _) = get(
        &state,
        &format!("/incidents?{WINDOW}&sort=recovery&order=desc"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&state, &format!("/pull-requests?{WINDOW}&sort=author")).await;
    assert_eq!(status, StatusCode::OK);
    db.finish().await;
}

#[tokio::test]
async fn pages_show_the_numbers_and_their_receipts() {
    let db = TestDb::sqlite().await;
    let state = state_with(&db.store, Config::default()).await;
    let (status, html) = get(&state, &format!("/?{WINDOW}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("3.00 / week"), "{html}");
    assert!(html.contains("20.0 h") && html.contains("33.3%"), "{html}");
    // Attribute values are HTML-escaped: `&` is written `&#38;`.
    assert!(
        html.replace("&#38;", "&")
            .contains(&format!("/receipts/lead-time?{WINDOW}")),
        "{html}"
    );
    assert!(html.contains("<svg class=\"spark\""));
    let (_, html) = get(&state, &format!("/receipts/lead-time?{WINDOW}")).await;
    assert!(
        html.contains("e5f6a7b") && html.contains("squash or rebase of #2"),
        "{html}"
    );
    let (_, html) = get(&state, &format!("/deployments?{WINDOW}")).await;
    assert!(
        html.contains("failure") && html.contains("1004"),
        "the failed attempt is shown apart"
    );
    assert!(html.contains("INC-2"), "{html}");
    let (_, html) = get(&state, &format!("/incidents?{WINDOW}")).await;
    assert!(html.contains("INC-1") && html.contains("none"));
    let (status, csv) = get(&state, &format!("/export/dora.csv?{WINDOW}")).await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].ends_with(",definitions_version"), "{csv}");
    assert_eq!(
        lines[1],
        "2024-W09,2024-02-26,acme/api,0,0,,0,0,,1,4.0000,2"
    );
    assert_eq!(
        lines[2],
        "2024-W10,2024-03-04,acme/api,4,1,0.2500,2,5,22.0000,1,2.5000,2"
    );
    assert_eq!(
        lines[3],
        "2024-W11,2024-03-11,acme/api,2,1,0.5000,1,1,18.0000,1,1.2500,2"
    );
    let (_, metrics) = get(&state, "/metrics").await;
    assert!(metrics.contains("flowmeter_http_requests_total{method=\"GET\",route=\"/export/dora.csv\",status=\"200\"} 1"), "{metrics}");
    assert!(metrics.contains("flowmeter_snapshot_age_seconds"));
    db.store
        .set_cursor(
            "jira",
            "https://acme.atlassian.net",
            "issues",
            &flowmeter_store::Cursor {
                cursor: None,
                etag: None,
            },
        )
        .await
        .unwrap();
    // Cursors are read through a cache of a few seconds.
    let waiting = std::time::Instant::now();
    loop {
        let (_, metrics) = get(&state, "/metrics").await;
        if metrics.contains("flowmeter_sync_cursor_age_seconds{source=\"jira\",scope=\"https://acme.atlassian.net\",resource=\"issues\"}") {
            break;
        }
        assert!(waiting.elapsed().as_secs() < 20, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    db.finish().await;
}

/// A minimal HTTP/1.1 GET, so the end-to-end test needs no HTTP client library.
#[tokio::test]
async fn the_real_server_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let summary = flowmeter::import::import_dir(&db.store, &worked_example(), false)
        .await
        .unwrap();
    assert!(summary.ok());
    let url = db.url.clone();
    let (child, address) = tokio::task::spawn_blocking(move || start_server(&url, None))
        .await
        .unwrap();
    let (status, body) = tokio::task::spawn_blocking({
        let address = address.clone();
        move || http_get(&address, &format!("/api/v1/dora?{WINDOW}"))
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let expected = std::fs::read_to_string(worked_example().join("report.json")).unwrap();
    assert_eq!(body.trim_end(), expected.trim_end());
    let (status, _) = http_get(&address, "/readyz");
    assert_eq!(status, 200);
    // Unguarded on loopback: a page that rebinds a foreign name to 127.0.0.1 is refused.
    let answer = {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "GET /api/v1/dora?{WINDOW} HTTP/1.1\r\nHost: rebind.example:80\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    };
    assert_eq!(answer, "HTTP/1.1 421", "a foreign Host is refused");
    stop(child);
    db.finish().await;
}

/// Finds headless Chromium: a missing browser fails the test, unless
/// `FLOWMETER_TEST_SKIP_BROWSER=1` says to skip it (said out loud).
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            skipping("FLOWMETER_TEST_SKIP_BROWSER"),
            "Chromium is missing: install Debian's chromium package (.ci/run does), or set \
             FLOWMETER_TEST_SKIP_BROWSER=1 to skip the browser test"
        );
        eprintln!("SKIPPED: the browser test (FLOWMETER_TEST_SKIP_BROWSER=1): no Chromium");
    }
    found
}

/// Headless Chromium without anything that reaches beyond the test's own server.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn browse(chromium: &Path, url: &str, screenshot: &Path) -> String {
    browse_at(chromium, url, screenshot, "1280,1600")
}

fn browse_at(chromium: &Path, url: &str, screenshot: &Path, size: &str) -> String {
    browse_shot(chromium, url, screenshot, size);
    let profile = tempfile::tempdir().unwrap();
    let window = format!("--window-size={size}");
    let dom = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(&window)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// The text of the link `data-value="{metric}"` on the rendered page.
fn shown(dom: &str, metric: &str) -> String {
    let marker = format!("data-value=\"{metric}\">");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no {metric} on the page"))
        + marker.len();
    dom[start..].split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn a_browser_sees_the_numbers_the_api_gives() {
    let Some(chromium) = chromium() else { return };
    let db = TestDb::sqlite().await;
    let summary = flowmeter::import::import_dir(&db.store, &worked_example(), false)
        .await
        .unwrap();
    assert!(summary.ok());
    let url = db.url.clone();
    let (child, address) = tokio::task::spawn_blocking(move || start_server(&url, None))
        .await
        .unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&artifacts).unwrap();
    let base = format!("http://{address}");
    let (_, api) = http_get(&address, &format!("/api/v1/dora?{WINDOW}"));
    let api = json_of(&api);
    let (_, stages_api) = http_get(&address, &format!("/api/v1/stages?{WINDOW}"));
    let stages_api = json_of(&stages_api);
    let pages = tokio::task::spawn_blocking({
        let (chromium, artifacts, base) = (chromium.clone(), artifacts.clone(), base.clone());
        move || {
            [
                ("overview", format!("{base}/?{WINDOW}")),
                ("receipt", format!("{base}/receipts/lead-time?{WINDOW}")),
                ("deployments", format!("{base}/deployments?{WINDOW}")),
                ("value-stream", format!("{base}/value-stream?{WINDOW}")),
            ]
            .map(|(name, url)| browse(&chromium, &url, &artifacts.join(format!("{name}.png"))))
            .into_iter()
            .chain([browse_at(
                &chromium,
                &format!("{base}/?{WINDOW}"),
                &artifacts.join("overview-phone.png"),
                "390,844",
            )])
            .collect::<Vec<_>>()
        }
    })
    .await
    .unwrap();
    let [overview, receipt, deployments, value_stream, phone] = &pages[..] else {
        panic!("five pages")
    };
    assert_eq!(
        shown(phone, "lead-time"),
        shown(overview, "lead-time"),
        "the phone layout shows the same numbers"
    );
    let bottleneck = stages_api["bottleneck"]["stage"].as_str().unwrap();
    // Said as people say it, not by its document name.
    let bottleneck = flowmeter_engine::stages::Stage::of_id(bottleneck)
        .unwrap()
        .label();
    assert!(
        value_stream.contains(&format!("The bottleneck is {bottleneck}")),
        "{value_stream}"
    );
    assert_eq!(
        shown(overview, "deployment-frequency"),
        format!(
            "{:.2} / week",
            api["deployment_frequency"]["per_week"].as_f64().unwrap()
        )
    );
    assert_eq!(
        shown(overview, "lead-time"),
        format!(
            "{:.1} h",
            api["lead_time"]["median_hours"].as_f64().unwrap()
        )
    );
    assert_eq!(
        shown(overview, "change-failure-rate"),
        format!(
            "{:.1}%",
            api["change_failure_rate"]["rate"].as_f64().unwrap() * 100.0
        )
    );
    assert_eq!(
        shown(overview, "recovery-time"),
        format!(
            "{:.1} h",
            api["recovery_time"]["median_hours"].as_f64().unwrap()
        )
    );
    assert_eq!(
        shown(overview, "rework-rate"),
        format!(
            "{:.1}%",
            api["rework_rate"]["rate"].as_f64().unwrap() * 100.0
        )
    );
    assert!(
        receipt.contains(&format!("over {} changes", api["lead_time"]["changes"])),
        "{receipt}"
    );
    assert!(deployments.contains("1004"));
    for name in [
        "overview",
        "receipt",
        "deployments",
        "value-stream",
        "overview-phone",
    ] {
        let png = std::fs::read(artifacts.join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}.png is a PNG");
    }
    stop(child);
    db.finish().await;
}

/// axe-core, from the npm registry: `FLOWMETER_TEST_AXE` names a copy of `axe.min.js`, else
/// `npm pack` fetches it once into the test binary's temporary folder.
fn axe_source() -> Option<String> {
    if let Ok(path) = std::env::var("FLOWMETER_TEST_AXE") {
        return Some(std::fs::read_to_string(path).expect("FLOWMETER_TEST_AXE names axe.min.js"));
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("axe-core-4.10.2");
    let script = dir.join("package/axe.min.js");
    if !script.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let packed = Command::new("npm")
            .args(["pack", "axe-core@4.10.2", "--silent", "--pack-destination"])
            .arg(&dir)
            .output();
        let unpacked = packed.is_ok_and(|o| o.status.success())
            && Command::new("tar")
                .arg("xzf")
                .arg(dir.join("axe-core-4.10.2.tgz"))
                .arg("-C")
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
        if !unpacked {
            assert!(
                skipping("FLOWMETER_TEST_SKIP_BROWSER"),
                "axe-core could not be fetched from the npm registry (npm pack axe-core@4.10.2): \
                 set FLOWMETER_TEST_AXE to a copy of axe.min.js, or FLOWMETER_TEST_SKIP_BROWSER=1"
            );
            eprintln!(
                "SKIPPED: the accessibility check (FLOWMETER_TEST_SKIP_BROWSER=1): no axe-core"
            );
            return None;
        }
    }
    Some(std::fs::read_to_string(script).unwrap())
}

/// The page at `path` as the browser renders it, with axe-core run over it: the rendered DOM,
/// and axe's violations as (rule, impact, help). The page is loaded from a file holding the
/// server's HTML with axe injected (its stylesheet still from the server), so nothing in the
/// product has to allow scripts.
fn audited(
    chromium: &Path,
    address: &str,
    path: &str,
    axe: &str,
    dir: &Path,
) -> (String, Vec<(String, String, String)>) {
    let (status, html) = http_get(address, path);
    assert_eq!(status, 200, "{path}: {html}");
    let html = html
        .replacen("<head>", &format!("<head><base href=\"http://{address}/\">"), 1)
        .replacen(
            "</body>",
            &format!(
                "<script>{axe}</script><script>axe.run(document, {{resultTypes: ['violations']}}).then(r => {{ const pre = document.createElement('pre'); pre.id = 'axe-results'; pre.textContent = JSON.stringify(r.violations.map(v => [v.id, v.impact || '', v.help])); document.body.appendChild(pre); }});</script></body>"
            ),
            1,
        );
    let file = dir.join(format!("{}.html", path.replace(['/', '?', '&', '='], "_")));
    std::fs::write(&file, html).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--window-size=1400,1200",
            "--virtual-time-budget=15000",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let results = dom
        .split("<pre id=\"axe-results\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("axe did not finish on {path}"))
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let violations: Vec<(String, String, String)> = serde_json::from_str(&results).unwrap();
    (dom, violations)
}

/// Every page of the dashboard at a phone's and a desktop's width (screenshots kept), axe-core
/// over each with no serious or critical finding, the new pages' numbers equal to the API's,
/// and charts with their axes and units.
#[tokio::test]
async fn every_page_at_phone_and_desktop_width_is_accessible_and_agrees_with_the_api() {
    let Some(chromium) = chromium() else { return };
    let Some(axe) = axe_source() else { return };
    let db = TestDb::sqlite().await;
    let summary = flowmeter::import::import_dir(&db.store, &worked_example(), false)
        .await
        .unwrap();
    assert!(summary.ok());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flowmeter.toml");
    std::fs::write(
        &config,
        "[github]\nrepos = [\"acme/api\"]\n[[teams]]\nname = \"payments\"\nrepos = [\"acme/api\"]\n",
    )
    .unwrap();
    let (url, config_path) = (db.url.clone(), config.clone());
    let (child, address) =
        tokio::task::spawn_blocking(move || start_server(&url, Some(&config_path)))
            .await
            .unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&artifacts).unwrap();
    let pages = [
        ("overview", format!("/?{WINDOW}")),
        ("deployments", format!("/deployments?{WINDOW}")),
        ("lead-time", format!("/lead-time?{WINDOW}")),
        ("incidents", format!("/incidents?{WINDOW}")),
        ("pull-requests", format!("/pull-requests?{WINDOW}")),
        ("value-stream", format!("/value-stream?{WINDOW}")),
        ("teams", format!("/teams?{WINDOW}")),
        ("trend", format!("/trends/lead-time?{WINDOW}&months=6")),
        ("receipt", format!("/receipts/change-failure-rate?{WINDOW}")),
        ("digest", format!("/digest?{WINDOW}")),
        ("capitalization", format!("/capitalization?{WINDOW}")),
        ("sources", format!("/sources?{WINDOW}")),
    ];
    let doms = tokio::task::spawn_blocking({
        let (chromium, artifacts, address) = (chromium.clone(), artifacts.clone(), address.clone());
        let work = dir.path().to_path_buf();
        move || {
            let mut doms = std::collections::HashMap::new();
            for (name, path) in &pages {
                let url = format!("http://{address}{path}");
                for (width, size) in [("desktop", "1400,1600"), ("phone", "390,844")] {
                    let shot = artifacts.join(format!("all-{name}-{width}.png"));
                    browse_shot(&chromium, &url, &shot, size);
                    let png = std::fs::read(&shot).unwrap();
                    assert!(png.starts_with(b"\x89PNG"), "{name} at {width}");
                }
                let (dom, violations) = audited(&chromium, &address, path, &axe, &work);
                let serious: Vec<&(String, String, String)> = violations
                    .iter()
                    .filter(|(_, impact, _)| impact == "serious" || impact == "critical")
                    .collect();
                assert!(serious.is_empty(), "{name}: {serious:?}");
                doms.insert(*name, dom);
            }
            doms
        }
    })
    .await
    .unwrap();

    // The teams page: the team's numbers are the API's for that team.
    let (_, team_api) = http_get(&address, &format!("/api/v1/dora?{WINDOW}&team=payments"));
    let team_api = json_of(&team_api);
    let teams = &doms["teams"];
    assert!(
        teams.contains(&format!(
            "{:.2} / week",
            team_api["deployment_frequency"]["per_week"]
                .as_f64()
                .unwrap()
        )),
        "{teams}"
    );
    assert!(teams.contains(&format!(
        "{:.1}%",
        team_api["change_failure_rate"]["rate"].as_f64().unwrap() * 100.0
    )));
    // The trend page: labelled axes with units, and each week's number is the API's for that
    // week (the table under the chart).
    let trend = &doms["trend"];
    assert!(
        trend.contains("week starting (UTC)") && trend.contains("class=\"axis-label\""),
        "{trend}"
    );
    assert!(
        trend.contains(">hours<") || trend.contains(">days<"),
        "{trend}"
    );
    // Weeks end where the window ends (2024-03-15).
    let week = "2024-03-08";
    let (_, week_api) = http_get(&address, "/api/v1/dora?from=2024-03-08&to=2024-03-15");
    let week_api = json_of(&week_api);
    let marker = format!("data-week=\"{week}\">");
    let shown = trend
        .split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no week {week}: {trend}"));
    let expected = match week_api["lead_time"]["median_hours"].as_f64() {
        Some(h) if h < 48.0 => format!("{h:.1} h"),
        Some(h) => format!("{:.1} days", h / 24.0),
        None => "no data".into(),
    };
    assert_eq!(shown, expected);
    assert_ne!(expected, "no data", "a week with changes");
    // Links out to GitHub for the followed repository.
    assert!(
        doms["deployments"].contains("https://github.com/acme/api/commit/"),
        "{}",
        doms["deployments"]
    );
    // Stages in words on the value stream.
    assert!(doms["value-stream"].contains("Waiting for review"));
    stop(child);
    db.finish().await;
}

fn browse_shot(chromium: &Path, url: &str, screenshot: &Path, size: &str) {
    let profile = tempfile::tempdir().unwrap();
    let shot = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
}

#[tokio::test]
async fn the_sources_page_shows_records_and_connector_cursors() {
    on_both(|store| async move {
        let state = state_with(&store, Config::default()).await;
        let (status, body) = get(&state, &format!("/sources?{WINDOW}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("No connector has synced into this store"),
            "{body}"
        );
        let counts = store.counts().await.unwrap();
        assert!(
            body.contains(&format!("<td>commits</td><td>{}</td>", counts.commits)),
            "{body}"
        );
        store
            .set_cursor(
                "github",
                "api.github.com/acme/api",
                "pulls",
                &flowmeter_store::Cursor {
                    cursor: Some("{}".into()),
                    etag: Some("\"abc\"".into()),
                },
            )
            .await
            .unwrap();
        // Cursors are read through a cache of a few seconds.
        let waiting = std::time::Instant::now();
        let body = loop {
            let (_, body) = get(&state, &format!("/sources?{WINDOW}")).await;
            if body.contains("<td>github</td><td>api.github.com/acme/api</td><td>pulls</td>") {
                break body;
            }
            assert!(waiting.elapsed().as_secs() < 20, "{body}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert!(!body.contains("No connector has synced"));
        assert!(body.contains(r#"aria-current="page">Sources</a>"#));
    })
    .await;
}

/// The capitalization page in a real browser, at desktop and phone widths: every share of the
/// export is on it, with its chart.
#[tokio::test]
async fn a_browser_sees_the_capitalization_shares_the_export_gives() {
    let Some(chromium) = chromium() else { return };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/capitalization");
    let db = TestDb::sqlite().await;
    let summary = flowmeter::import::import_dir(&db.store, &example, false)
        .await
        .unwrap();
    assert!(summary.ok());
    let (url, config) = (db.url.clone(), example.join("flowmeter.toml"));
    let (child, address) = tokio::task::spawn_blocking(move || start_server(&url, Some(&config)))
        .await
        .unwrap();
    let (_, csv) = http_get(&address, "/export/capitalization.csv?week=2026-W47");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&artifacts).unwrap();
    let page = format!("http://{address}/capitalization?week=2026-W47");
    let doms = tokio::task::spawn_blocking(move || {
        [
            ("1400,1800", "capitalization.png"),
            ("390,844", "capitalization-phone.png"),
        ]
        .map(|(size, name)| browse_at(&chromium, &page, &artifacts.join(name), size))
    })
    .await
    .unwrap();
    for dom in &doms {
        assert!(
            dom.contains("<svg") && dom.contains("ISO week"),
            "the chart with its axis"
        );
        for row in csv.lines().skip(1) {
            let cells: Vec<&str> = row.split(',').collect();
            let (share, hours) = (cells[12], cells[13]);
            assert!(dom.contains(&format!("<td>{share}</td>")), "{share} shown");
            assert!(dom.contains(&format!("{hours} h")), "{hours} h shown");
        }
    }
    stop(child);
    db.finish().await;
}
