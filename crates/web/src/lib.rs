//! Flowmeter over HTTP: the server-rendered dashboard, the JSON API for BI tools, the push API
//! for CI pipelines and pagers, GitHub's webhooks, the weekly CSV export, and health and metrics
//! endpoints.
//!
//! Every page and API answer is computed from an in-memory [`state::View`] (a prepared
//! snapshot of the store); a background task rebuilds it only when the store's generation
//! changes, so a request never waits for a reload. The crate knows nothing of how metrics are
//! computed: it asks the engine's `Snapshot` and shapes the answers.

mod api;
mod auth;
pub mod capitalization;
pub mod digest;
pub mod error;
mod hooks;
mod openapi;
mod pages;
pub mod params;
pub mod state;
mod svg;
mod teams;
mod telemetry;
mod trends;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use api::parse_push;
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
    ("GET", "/trends/{metric}"),
    ("GET", "/teams"),
    ("GET", "/sources"),
    ("GET", "/digest"),
    ("GET", "/capitalization"),
    ("GET", "/export/capitalization.csv"),
    ("GET", "/receipts/{metric}"),
    ("GET", "/static/style.css"),
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("GET", "/signout"),
    ("POST", "/signout"),
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
    ("POST", "/hooks/github"),
];

/// The application: every route with its middleware. Webhooks are outside the token guard
/// (GitHub signs its deliveries instead) and have their own body limit.
pub fn app(state: AppState) -> Router {
    let webhooks = Router::new()
        .route("/hooks/github", post(hooks::github))
        .layer(RequestBodyLimitLayer::new(hooks::BODY_LIMIT));
    Router::new()
        .route("/", get(pages::overview))
        .route("/deployments", get(pages::deployments))
        .route("/lead-time", get(pages::lead_time))
        .route("/incidents", get(pages::incidents))
        .route("/pull-requests", get(pages::pull_requests))
        .route("/value-stream", get(pages::value_stream))
        .route("/trends/{metric}", get(trends::page))
        .route("/teams", get(teams::page))
        .route("/sources", get(pages::sources))
        .route("/digest", get(pages::digest))
        .route("/capitalization", get(capitalization::page))
        .route(
            "/export/capitalization.csv",
            get(capitalization::export_csv),
        )
        .route("/receipts/{metric}", get(pages::receipts))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/signin", get(auth::signin_form).post(auth::signin))
        .route("/signout", get(auth::signout).post(auth::signout))
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
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .merge(webhooks)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_local_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::record,
        ))
        .layer(axum::middleware::from_fn(auth::security_headers))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How long a connection may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take to finish after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves the application until `shutdown` completes, then lets requests in flight finish (for
/// at most 30 seconds). At most `server.max_connections` connections are served at once (more
/// wait in the listen queue), and a connection must send each request's headers within
/// [`HEADER_READ_TIMEOUT`]: half-sent requests cannot hold the server's sockets.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = state.spawn_refresher();
    let deliveries = hooks::spawn_worker(state.clone());
    let limit = state.config().server.max_connections as usize;
    let app = app(state);
    let connections = std::sync::Arc::new(tokio::sync::Semaphore::new(limit));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        // No upgrades (WebSockets) are served, so a plain HTTP/1 connection will do.
        let connection =
            graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _slot = permit;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("requests still running after the drain period were cut"),
    }
    refresher.abort();
    deliveries.abort();
    Ok(())
}

/// Serves `/metrics` alone, unguarded, on another address (`server.metrics_listen`), until
/// `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(telemetry::metrics))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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
