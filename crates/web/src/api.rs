//! The JSON API v1, the push API, the CSV export and the health endpoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Datelike as _;
use flowmeter_core::import::{RecordKind, parse_value};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::params::{Filters, encode_cursor};
use crate::state::AppState;

/// `GET /api/v1/dora`: the report document, byte for byte what `flowmeter report` prints.
pub async fn dora(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, true)?;
    // The view never changes, so neither does its report for a window and scope.
    let key = format!("/api/v1/dora?{}", filters.query_for(&window));
    let json = match view.cached(&key) {
        Some(json) => json,
        None => {
            let scope = filters.scope();
            let view = view.clone();
            state
                .heavy(move || -> Result<String, ApiError> {
                    let json = view.snapshot.dora(window, &scope)?.to_json();
                    view.remember(key, json.clone());
                    Ok(json)
                })
                .await?
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// `GET /api/v1/stages`: rule S, the value stream, as `flowmeter stages` prints it.
pub async fn stages(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, true)?;
    let scope = filters.scope();
    let now = chrono::Utc::now();
    let report = state
        .heavy(move || Ok(view.snapshot.stages(window, &scope, now)?))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        report.to_json(),
    )
        .into_response())
}

/// One page of a list: items after the cursor in a stable order, and the cursor of the next
/// page (`null` on the last page).
#[derive(Debug, Serialize)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Sorts items by key and cuts the page after `cursor`.
fn page<T: Serialize>(
    mut items: Vec<(String, T)>,
    filters: &Filters,
) -> Result<Json<Page<T>>, ApiError> {
    let limit = filters.limit()?;
    let cursor = filters.cursor()?;
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match &cursor {
        Some(after) => items.partition_point(|(key, _)| key <= after),
        None => 0,
    };
    let mut rest: Vec<(String, T)> = items.into_iter().skip(start).take(limit + 1).collect();
    let next_cursor = if rest.len() > limit {
        rest.truncate(limit);
        rest.last().map(|(key, _)| encode_cursor(key))
    } else {
        None
    };
    Ok(Json(Page {
        items: rest.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    }))
}

/// One page from rows kept in key order (each key starting with its row's time): the rows the
/// scope keeps, from the window's start (or after the cursor) up to the window's end. Finding
/// the start is a binary search, so paging through a window costs as much as reading it once.
#[allow(clippy::too_many_arguments)]
fn page_of<R, T: Serialize>(
    rows: &[R],
    time: impl Fn(&R) -> flowmeter_core::Timestamp,
    key_of: impl Fn(&R) -> String,
    window: flowmeter_core::Window,
    mut keep: impl FnMut(&R) -> bool,
    item: impl Fn(&R) -> T,
    filters: &Filters,
) -> Result<Json<Page<T>>, ApiError> {
    let limit = filters.limit()?;
    let from = rows.partition_point(|r| time(r) < window.start());
    let from = match filters.cursor()? {
        Some(after) => rows.partition_point(|r| key_of(r) <= after).max(from),
        None => from,
    };
    let mut taken: Vec<&R> = rows[from..]
        .iter()
        .take_while(|r| time(r) < window.end())
        .filter(|r| keep(r))
        .take(limit + 1)
        .collect();
    let next_cursor = if taken.len() > limit {
        taken.truncate(limit);
        taken.last().map(|r| encode_cursor(&key_of(r)))
    } else {
        None
    };
    Ok(Json(Page {
        items: taken.into_iter().map(item).collect(),
        next_cursor,
    }))
}

/// A sort key that orders by time, then by the given names.
fn key(t: &flowmeter_core::Timestamp, names: &[&str]) -> String {
    let mut key = format!("{:020}", t.timestamp_micros().max(0));
    for name in names {
        key.push('\u{1f}');
        key.push_str(name);
    }
    key
}

#[derive(Debug, Serialize)]
pub struct DeploymentItem {
    pub service: String,
    pub repo: String,
    pub id: String,
    pub sha: String,
    pub time: flowmeter_core::Timestamp,
    pub baseline: bool,
    pub failed: bool,
    pub rework: bool,
    /// Why it is rework (D5's clauses with their evidence); empty when it is not.
    pub rework_reasons: Vec<flowmeter_engine::ReworkReason>,
    pub changes: u32,
}

/// `GET /api/v1/deployments`: the counted deployments in the window.
pub async fn deployments(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Json<Page<DeploymentItem>>, ApiError> {
    let view = state.view();
    let window = filters.window(&view, true)?;
    let scope = view.snapshot.resolve(&filters.scope())?;
    page_of(
        &view.snapshot.prepared.deployments,
        |d| d.time,
        |d| key(&d.time, &[&d.service, &d.id]),
        window,
        |d| scope.matches(Some(&d.service), Some(&d.repo)),
        |d| DeploymentItem {
            service: d.service.clone(),
            repo: d.repo.clone(),
            id: d.id.clone(),
            sha: d.sha.clone(),
            time: d.time,
            baseline: d.baseline,
            failed: d.failed,
            rework: d.rework,
            rework_reasons: d.rework_reasons.clone(),
            changes: d.changes,
        },
        &filters,
    )
}

#[derive(Debug, Serialize)]
pub struct ChangeItem {
    pub service: String,
    pub repo: String,
    pub sha: String,
    pub deployment_id: String,
    pub deployed_at: flowmeter_core::Timestamp,
    pub start: flowmeter_core::Timestamp,
    pub lead_hours: f64,
    pub squash_of: Option<u64>,
    pub fix: bool,
}

/// `GET /api/v1/changes`: the changes delivered by the window's deployments, with lead times.
pub async fn changes(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Json<Page<ChangeItem>>, ApiError> {
    let view = state.view();
    let window = filters.window(&view, true)?;
    let scope = view.snapshot.resolve(&filters.scope())?;
    let s = &view.snapshot;
    page_of(
        &s.prepared.changes,
        |c| s.change(c).deployed_at,
        |c| {
            let c = s.change(c);
            key(&c.deployed_at, &[c.service, c.sha])
        },
        window,
        |c| {
            let c = s.change(c);
            scope.matches(Some(c.service), Some(c.repo))
        },
        |c| {
            let c = s.change(c);
            ChangeItem {
                service: c.service.to_string(),
                repo: c.repo.to_string(),
                sha: c.sha.to_string(),
                deployment_id: c.deployment_id.to_string(),
                deployed_at: c.deployed_at,
                start: c.start,
                lead_hours: c.lead_hours,
                squash_of: c.squash_of,
                fix: c.fix,
            }
        },
        &filters,
    )
}

#[derive(Debug, Serialize)]
pub struct IncidentItem {
    pub service: Option<String>,
    pub repo: Option<String>,
    pub id: String,
    pub created_at: flowmeter_core::Timestamp,
    pub resolved_at: Option<flowmeter_core::Timestamp>,
    pub recovery_hours: Option<f64>,
    pub deployment_id: Option<String>,
}

/// `GET /api/v1/incidents`: incidents resolved in the window, then those still open.
pub async fn incidents(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Json<Page<IncidentItem>>, ApiError> {
    let view = state.view();
    let window = filters.window(&view, true)?;
    let receipts = view.snapshot.receipts(window, &filters.scope())?;
    let items = receipts
        .incidents
        .iter()
        .chain(receipts.open_incidents.iter())
        .map(|i| {
            let scope = i
                .service
                .as_deref()
                .or(i.repo.as_deref())
                .unwrap_or_default();
            (
                key(&i.created_at, &[scope, &i.id]),
                IncidentItem {
                    service: i.service.clone(),
                    repo: i.repo.clone(),
                    id: i.id.clone(),
                    created_at: i.created_at,
                    resolved_at: i.resolved_at,
                    recovery_hours: i.recovery_hours,
                    deployment_id: i.deployment_id.clone(),
                },
            )
        })
        .collect();
    page(items, &filters)
}

#[derive(Debug, Serialize)]
pub struct PullRequestItem {
    pub repo: String,
    pub number: u64,
    pub title: Option<String>,
    pub author: Option<String>,
    pub state: &'static str,
    pub draft: bool,
    pub created_at: flowmeter_core::Timestamp,
    pub merged_at: Option<flowmeter_core::Timestamp>,
    pub closed_at: Option<flowmeter_core::Timestamp>,
    pub reviews: usize,
}

/// `GET /api/v1/pull-requests`: pull requests created before the window's end and not closed
/// before its start, for the scope's repositories.
pub async fn pull_requests(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Json<Page<PullRequestItem>>, ApiError> {
    let view = state.view();
    let window = filters.window(&view, true)?;
    let scope = view.snapshot.resolve(&filters.scope())?;
    let config = view.snapshot.config();
    let pulls = view.snapshot.pulls_by_creation();
    let mut in_scope: std::collections::HashMap<&str, bool> = Default::default();
    // Open at some point in the window: created before its end, not closed before its start.
    page_of(
        &pulls,
        |p| p.created_at.max(window.start()),
        |p| key(&p.created_at, &[p.repo, &format!("{:010}", p.number)]),
        window,
        |p| {
            let open_in_window = p
                .closed_at
                .or(p.merged_at)
                .is_none_or(|c| c >= window.start());
            // A pull request belongs to every service of its repository.
            let scoped = *in_scope.entry(p.repo).or_insert_with(|| {
                view.snapshot
                    .prepared
                    .services_of_repo(p.repo, config)
                    .iter()
                    .any(|s| scope.matches(Some(s), Some(p.repo)))
            });
            open_in_window && scoped
        },
        |p| PullRequestItem {
            repo: p.repo.to_string(),
            number: p.number,
            title: p.title.map(String::from),
            author: p.author.map(String::from),
            state: match (p.merged_at, p.closed_at) {
                (Some(_), _) => "merged",
                (None, Some(_)) => "closed",
                (None, None) => "open",
            },
            draft: p.draft,
            created_at: p.created_at,
            merged_at: p.merged_at,
            closed_at: p.closed_at,
            reviews: p.reviews,
        },
        &filters,
    )
}

/// Parses a push body (one record or an array) with the import format's rules; the first bad
/// record is a 422 naming its index and field, and nothing is written.
/// Reads a push API body: one record or an array of them, every one valid, else the error the
/// API answers (422 naming the field, prefixed with the record's index).
pub fn parse_push(kind: RecordKind, body: &[u8]) -> Result<Vec<flowmeter_core::Record>, ApiError> {
    let unprocessable = |message: String, field: Option<String>| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        param: field,
        message,
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| unprocessable(format!("body is not valid JSON: {e}"), None))?;
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    if items.is_empty() {
        return Err(unprocessable("body holds no records".into(), None));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            parse_value(kind, item).map_err(|e| {
                let field = e.field.clone().map(|f| format!("[{i}].{f}"));
                unprocessable(format!("record {i}: {e}"), field)
            })
        })
        .collect()
}

async fn push(
    state: AppState,
    kind: RecordKind,
    headers: &axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Only JSON: a browser cannot send it cross-site without a preflight, so a page the
    // operator visits cannot push records into an unguarded local server.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            param: Some("content-type".into()),
            message: "send the records as application/json".into(),
        });
    }
    let records = parse_push(kind, &body)?;
    // Validated already: whatever the store answers now is about the store (unreachable, busy
    // with another writer past its wait), and the sender should retry.
    let summary = state
        .store()
        .write(kind, &records)
        .await
        .map_err(ApiError::store_unavailable)?;
    // The view catches up in the background; the answer does not wait for it.
    if summary.changed > 0 {
        state.wake();
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"received": summary.received, "changed": summary.changed})),
    )
        .into_response())
}

/// `POST /api/v1/deployments`: deployment records in the import format.
pub async fn push_deployments(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    push(state, RecordKind::Deployments, &headers, body).await
}

/// `POST /api/v1/incidents`: incident records in the import format.
pub async fn push_incidents(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    push(state, RecordKind::Incidents, &headers, body).await
}

fn number(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// `GET /export/dora.csv`: one row per ISO week and service with the week's figures.
pub async fn export_csv(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    let scope = filters.scope();
    let rows = state
        .heavy(move || Ok(view.snapshot.weekly(window, &scope)?))
        .await?;
    let mut out = String::from(
        "iso_week,week_start,service,deployments,failed_deployments,change_failure_rate,rework_deployments,changes,lead_time_median_hours,incidents_resolved,recovery_median_hours,definitions_version\r\n",
    );
    for r in rows {
        let iso = r.week_start.iso_week();
        let rate = (r.deployments > 0).then(|| r.failed as f64 / r.deployments as f64);
        let fields = [
            format!("{}-W{:02}", iso.year(), iso.week()),
            r.week_start.to_string(),
            flowmeter_core::csv::cell(&r.service),
            r.deployments.to_string(),
            r.failed.to_string(),
            number(rate),
            r.rework.to_string(),
            r.changes.to_string(),
            number(r.lead_time_median_hours),
            r.incidents_resolved.to_string(),
            number(r.recovery_median_hours),
            flowmeter_core::DEFINITIONS_VERSION.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"dora.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
