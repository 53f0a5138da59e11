//! The corpus of malformed and edge records (`fixtures/edge-records`): every line gets the
//! verdict the corpus gives it, naming the same field, through `flowmeter import` and through the
//! push API, on SQLite and on PostgreSQL alike.

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flowmeter_core::Config;
use flowmeter_core::import::RecordKind;
use flowmeter_store::Store;
use flowmeter_web::{AppState, app};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::support::*;

#[derive(Debug, serde::Deserialize)]
struct Case {
    kind: String,
    line: String,
    expect: String,
    field: Option<String>,
    why: String,
}

fn corpus() -> Vec<Case> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/edge-records/corpus.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kind_of(name: &str) -> RecordKind {
    *RecordKind::ALL
        .iter()
        .find(|k| k.file_name() == format!("{name}.jsonl"))
        .unwrap_or_else(|| panic!("unknown kind {name}"))
}

/// Accepted, or refused naming a field (`None`: the line as a whole).
type Verdict = Result<(), Option<String>>;

fn expected(case: &Case) -> Verdict {
    match case.expect.as_str() {
        "accept" => Ok(()),
        _ => Err(case.field.clone()),
    }
}

/// The field an error message names (`field 'x': ...`).
fn named_field(message: &str) -> Option<String> {
    let start = message.find("field '")? + "field '".len();
    let end = message[start..].find("': ")?;
    Some(message[start..start + end].to_string())
}

async fn imported(store: &Store, dir: &Path, case: &Case) -> Verdict {
    for kind in RecordKind::ALL {
        let _ = std::fs::remove_file(dir.join(kind.file_name()));
    }
    let kind = kind_of(&case.kind);
    std::fs::write(dir.join(kind.file_name()), format!("{}\n", case.line)).unwrap();
    let summary = flowmeter::import::import_dir(store, dir, false)
        .await
        .unwrap();
    match &summary.files[0].error {
        None => Ok(()),
        Some(message) => {
            assert!(
                message.contains(":1: "),
                "a refusal of the store, not of the line ({}): {message}",
                case.why
            );
            Err(named_field(message))
        }
    }
}

/// The push API's verdict, for lines a push could carry: one JSON object (or not JSON at all)
/// of a kind the API takes.
async fn pushed(state: &AppState, case: &Case) -> Option<Verdict> {
    let path = match case.kind.as_str() {
        "deployments" => "/api/v1/deployments",
        "incidents" => "/api/v1/incidents",
        _ => return None,
    };
    if let Ok(value) = serde_json::from_str::<Value>(&case.line)
        && !value.is_object()
    {
        return None;
    }
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(case.line.clone()))
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    match status {
        StatusCode::CREATED => Some(Ok(())),
        StatusCode::UNPROCESSABLE_ENTITY => {
            let error: Value = serde_json::from_str(&body).unwrap();
            let field = error["error"]["param"].as_str().map(|p| {
                p.strip_prefix("[0].")
                    .unwrap_or_else(|| panic!("{p} is not the first record's"))
                    .to_string()
            });
            Some(Err(field))
        }
        other => panic!("{}: push answered {other}: {body}", case.why),
    }
}

/// Every case's verdicts on one store: (import, push).
async fn verdicts(store: &Store, cases: &[Case]) -> Vec<(Verdict, Option<Verdict>)> {
    let state = AppState::new(store.clone(), Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for case in cases {
        out.push((
            imported(store, dir.path(), case).await,
            pushed(&state, case).await,
        ));
    }
    out
}

#[tokio::test]
async fn every_edge_record_gets_its_verdict_on_both_stores() {
    let cases = corpus();
    assert!(cases.len() >= 200, "{}", cases.len());
    let sqlite = TestDb::sqlite().await;
    let on_sqlite = verdicts(&sqlite.store, &cases).await;
    let mut wrong = Vec::new();
    for (case, (import, push)) in cases.iter().zip(&on_sqlite) {
        let want = expected(case);
        if *import != want {
            wrong.push(format!(
                "import {} ({}): {import:?}, want {want:?}",
                case.kind, case.why
            ));
        }
        if let Some(push) = push
            && *push != want
        {
            wrong.push(format!(
                "push {} ({}): {push:?}, want {want:?}",
                case.kind, case.why
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    if let Some(pg) = TestDb::postgres().await {
        let on_pg = verdicts(&pg.store, &cases).await;
        for ((case, a), b) in cases.iter().zip(&on_sqlite).zip(&on_pg) {
            assert_eq!(
                a, b,
                "SQLite and PostgreSQL differ on {} ({})",
                case.kind, case.why
            );
        }
        assert_eq!(
            sqlite.store.load().await.unwrap(),
            pg.store.load().await.unwrap(),
            "the accepted records read back the same"
        );
        pg.finish().await;
    }
    sqlite.finish().await;
}
