//! Flowmeter over HTTP: the server-rendered dashboard, the JSON API for BI tools, the push API
//! for CI pipelines and pagers, the weekly CSV export, and health and metrics endpoints.
//!
//! Every page and API answer is computed from an in-memory [`state::View`] (a prepared
//! snapshot of the store); a background task rebuilds it only when the store's generation
//! changes, so a request never waits for a reload. The crate knows nothing of how metrics are
//! computed: it asks the engine's `Snapshot` and shapes the answers.

mod api;
mod auth;
mod error;
mod openapi;
mod pages;
mod params;
pub mod state;
mod svg;
mod telemetry;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use state::AppState;

/// Largest request body accepted (push API batches).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Every route the server answers, with its method: the OpenAPI document and the router are
/// checked against this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/deployments"),
    ("GET", "/lead-time"),
    ("GET", "/incidents"),
    ("GET", "/pull-requests"),
    ("GET", "/value-stream"),
    ("GET", "/sources"),
    ("GET", "/receipts/{metric}"),
    ("GET", "/static/style.css"),
    ("GET", "/api/v1/dora"),
    ("GET", "/api/v1/stages"),
    ("GET", "/api/v1/deployments"),
    ("POST", "/api/v1/deployments"),
    ("GET", "/api/v1/changes"),
    ("GET", "/api/v1/incidents"),
    ("POST", "/api/v1/incidents"),
    ("GET", "/api/v1/pull-requests"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/export/dora.csv"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// The application: every route with its middleware.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/deployments", get(pages::deployments))
        .route("/lead-time", get(pages::lead_time))
        .route("/incidents", get(pages::incidents))
        .route("/pull-requests", get(pages::pull_requests))
        .route("/value-stream", get(pages::value_stream))
        .route("/sources", get(pages::sources))
        .route("/receipts/{metric}", get(pages::receipts))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/api/v1/dora", get(api::dora))
        .route("/api/v1/stages", get(api::stages))
        .route(
            "/api/v1/deployments",
            get(api::deployments).post(api::push_deployments),
        )
        .route("/api/v1/changes", get(api::changes))
        .route(
            "/api/v1/incidents",
            get(api::incidents).post(api::push_incidents),
        )
        .route("/api/v1/pull-requests", get(api::pull_requests))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/export/dora.csv", get(api::export_csv))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(telemetry::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_local_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::record,
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the application until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = state.spawn_refresher();
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    result
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
