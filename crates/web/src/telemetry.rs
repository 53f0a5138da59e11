//! Prometheus metrics: request counts and latencies per route, and the snapshot's age and size.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default)]
struct Route {
    count: u64,
    seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String, u16), Route>>,
    /// Requests answered 503 at once because too many waited for an engine worker.
    shed: std::sync::atomic::AtomicU64,
    /// Times the snapshot applied new writes.
    refreshes: std::sync::atomic::AtomicU64,
    /// Webhook deliveries by event and what came of them.
    hooks: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    pub fn shed(&self) {
        self.shed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a webhook delivery of `event` (a bounded label) by what came of it.
    pub fn hook(&self, event: &str, result: &str) {
        *self
            .hooks
            .lock()
            .expect("metrics lock")
            .entry((event.to_string(), result.to_string()))
            .or_default() += 1;
    }

    pub fn refreshed(&self) {
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A fixed set of labels: arbitrary methods must not grow the metrics without bound.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST") => m.to_string(),
        _ => "OTHER".to_string(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut routes = state.metrics().routes.lock().expect("metrics lock");
    let entry = routes
        .entry((method, route, response.status().as_u16()))
        .or_default();
    entry.count += 1;
    entry.seconds += seconds;
    for (i, bound) in BUCKETS.iter().enumerate() {
        if seconds <= *bound {
            entry.buckets[i] += 1;
        }
    }
    response
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let cursors = state.cursors().await;
    let mut out = String::new();
    out.push_str("# HELP flowmeter_http_requests_total HTTP requests answered.\n");
    out.push_str("# TYPE flowmeter_http_requests_total counter\n");
    let routes = state.metrics().routes.lock().expect("metrics lock");
    for ((method, route, status), r) in routes.iter() {
        let _ = writeln!(
            out,
            "flowmeter_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
            r.count
        );
    }
    out.push_str("# HELP flowmeter_http_request_duration_seconds Time to answer HTTP requests.\n");
    out.push_str("# TYPE flowmeter_http_request_duration_seconds histogram\n");
    for ((method, route, status), r) in routes.iter() {
        let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
        for (bound, n) in BUCKETS.iter().zip(r.buckets) {
            let _ = writeln!(
                out,
                "flowmeter_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "flowmeter_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            r.count
        );
        let _ = writeln!(
            out,
            "flowmeter_http_request_duration_seconds_sum{{{labels}}} {}",
            r.seconds
        );
        let _ = writeln!(
            out,
            "flowmeter_http_request_duration_seconds_count{{{labels}}} {}",
            r.count
        );
    }
    drop(routes);
    let _ = writeln!(
        out,
        "# HELP flowmeter_http_shed_total Requests answered 503 because too many waited for an engine worker.\n# TYPE flowmeter_http_shed_total counter\nflowmeter_http_shed_total {}",
        state
            .metrics()
            .shed
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP flowmeter_snapshot_refreshes_total Times the snapshot applied new writes (many writes close together are one).\n# TYPE flowmeter_snapshot_refreshes_total counter\nflowmeter_snapshot_refreshes_total {}",
        state
            .metrics()
            .refreshes
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    out.push_str("# HELP flowmeter_webhook_deliveries_total Webhook deliveries by event and what came of them (accepted, duplicate, ignored reasons, unauthorized, rate_limited, malformed; then written, refetch, ignored or failed once processed).\n");
    out.push_str("# TYPE flowmeter_webhook_deliveries_total counter\n");
    for ((event, result), n) in state.metrics().hooks.lock().expect("metrics lock").iter() {
        let _ = writeln!(
            out,
            "flowmeter_webhook_deliveries_total{{source=\"github\",event=\"{event}\",result=\"{result}\"}} {n}"
        );
    }
    let view = state.view();
    let gauges = [
        (
            "flowmeter_snapshot_age_seconds",
            "Seconds since the in-memory snapshot was built.",
            view.built_at.elapsed().as_secs_f64(),
        ),
        (
            "flowmeter_snapshot_build_seconds",
            "Seconds the last snapshot took to build.",
            view.build_seconds,
        ),
        (
            "flowmeter_snapshot_generation",
            "Store generation the snapshot reflects.",
            view.generation as f64,
        ),
        (
            "flowmeter_snapshot_deployments",
            "Deployments in the snapshot.",
            view.snapshot.prepared.deployments.len() as f64,
        ),
        (
            "flowmeter_snapshot_changes",
            "Delivered changes in the snapshot.",
            view.snapshot.prepared.changes.len() as f64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    // Sync status: how long ago each connector's cursor last moved.
    out.push_str(
        "# HELP flowmeter_sync_cursor_age_seconds Seconds since a connector's cursor last moved.\n",
    );
    out.push_str("# TYPE flowmeter_sync_cursor_age_seconds gauge\n");
    let now = chrono::Utc::now();
    let label = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    for c in cursors.iter() {
        let age = (now - c.updated_at).num_milliseconds() as f64 / 1000.0;
        let _ = writeln!(
            out,
            "flowmeter_sync_cursor_age_seconds{{source=\"{}\",scope=\"{}\",resource=\"{}\"}} {age}",
            label(&c.source),
            label(&c.scope),
            label(&c.resource)
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
