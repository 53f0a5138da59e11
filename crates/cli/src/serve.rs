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
    let schedule = crate::sync::spawn_schedule(store.clone(), config.clone());
    let state = flowmeter_web::AppState::new(store, config)
        .await
        .context("prepare the first snapshot")?;
    // Unguarded on loopback: refuse requests addressed to other names (DNS rebinding).
    state.loopback_only(unguarded && args.listen.ip().is_loopback());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("Flowmeter is serving http://{address}/ (Ctrl-C stops it)");
    flowmeter_web::serve(listener, state, flowmeter_web::shutdown_signal()).await?;
    if let Some(schedule) = schedule {
        schedule.abort();
    }
    Ok(ExitCode::SUCCESS)
}
