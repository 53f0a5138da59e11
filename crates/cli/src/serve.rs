//! `flowmeter serve`: the dashboard and the APIs over HTTP.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use flowmeter_core::Config;
use flowmeter_store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Listen on a non-loopback address without API tokens (anyone who can reach it can read
    /// and push data).
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// Refuses to expose an unauthenticated API beyond this machine unless told to.
pub fn check_exposure(
    listen: SocketAddr,
    config: &Config,
    insecure_no_auth: bool,
) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() && config.server.tokens.is_empty() && !insecure_no_auth {
        anyhow::bail!(
            "refusing to listen on {listen} without API tokens: configure [[server.tokens]] (or \
             FLOWMETER_SERVER_TOKENS), listen on a loopback address, or pass --insecure-no-auth"
        );
    }
    Ok(())
}

pub async fn run(store: Store, config: Config, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    check_exposure(args.listen, &config, args.insecure_no_auth)?;
    let unguarded = config.server.tokens.is_empty();
    let config_public_dashboard = config.server.public_dashboard;
    // Every digest's webhook is resolved before anything starts: a missing one fails now.
    let digests = crate::digest::targets(&config, |v| std::env::var(v).ok())?;
    let schedule = crate::sync::spawn_schedule(store.clone(), config.clone());
    let state = flowmeter_web::AppState::new(store, config)
        .await
        .context("prepare the first snapshot")?;
    let digests = crate::digest::spawn_schedule(state.clone(), digests)?;
    // On loopback: refuse requests addressed to other names (DNS rebinding).
    state.loopback_only(args.listen.ip().is_loopback());
    if !unguarded && config_public_dashboard {
        tracing::warn!(
            "server.public_dashboard is set: the dashboard's pages are open to anyone who can reach this address; the API still needs a token"
        );
        eprintln!(
            "note: server.public_dashboard is set: pages are open without a token; the API still needs one"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let metrics = match state.config().server.metrics_listen.as_str() {
        "" => None,
        listen => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listen on {listen} (server.metrics_listen)"))?;
            let state = state.clone();
            Some(tokio::spawn(async move {
                flowmeter_web::serve_metrics(listener, state, flowmeter_web::shutdown_signal())
                    .await
            }))
        }
    };
    println!("Flowmeter is serving http://{address}/ (Ctrl-C stops it)");
    flowmeter_web::serve(listener, state, flowmeter_web::shutdown_signal()).await?;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    if let Some(schedule) = schedule {
        schedule.abort();
    }
    if let Some(digests) = digests {
        digests.abort();
    }
    Ok(ExitCode::SUCCESS)
}
