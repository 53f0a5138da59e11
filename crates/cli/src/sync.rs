//! `flowmeter sync` and `flowmeter replay`: the connectors, with progress on a terminal and log
//! lines elsewhere, and an exit code that says whether everything synced.

use futures_util::FutureExt as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use flowmeter_core::Config;
use flowmeter_ingest::{Progress, SyncOutcome};
use flowmeter_store::Store;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Source {
    /// Jira issues with their full status history (see `[jira]` in flowmeter.toml).
    Jira,
    /// GitHub commits, pull requests, deployments and incident issues (see `[github]`).
    Github,
}

/// A bar per repository and resource on a terminal; plain lines on anything else.
pub(crate) struct ConsoleProgress {
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl ConsoleProgress {
    pub(crate) fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Mutex::new(HashMap::new()),
            )
        });
        ConsoleProgress { bars }
    }

    fn show(&self, resource: &str, message: String) {
        match &self.bars {
            Some((multi, bars)) => {
                let mut bars = bars.lock().expect("not poisoned");
                let bar = bars.entry(resource.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix}: {msg} {elapsed}")
                            .expect("valid template"),
                    );
                    bar.set_prefix(resource.to_string());
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                });
                bar.set_message(message);
            }
            None => eprintln!("{resource}: {message}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.lock().expect("not poisoned").values() {
                bar.finish();
            }
        }
    }
}

impl Progress for ConsoleProgress {
    fn page(&self, resource: &str, pages: u64, records: u64) {
        self.show(resource, format!("{pages} pages, {records} records"));
    }

    fn waiting(&self, resource: &str, why: &str, seconds: f64) {
        self.show(resource, format!("{why}; retrying in {seconds:.1} s"));
    }
}

fn summarize(source: &str, outcome: &SyncOutcome) -> ExitCode {
    for r in &outcome.resources {
        let requests = if r.requests > 0 {
            format!(
                ", {} requests ({} not modified)",
                r.requests, r.not_modified
            )
        } else {
            String::new()
        };
        eprintln!(
            "{source} {}: {} pages, {} records, {} new or changed, {} warnings{requests}",
            r.resource,
            r.pages,
            r.records,
            r.changed,
            r.warnings.len()
        );
        for warning in r.warnings.iter().take(10) {
            eprintln!("  warning: {warning}");
        }
        if let Some(error) = &r.error {
            eprintln!("  failed: {error}");
        }
    }
    if outcome.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn jira_config(config: &Config) -> flowmeter_core::config::JiraConfig {
    let mut jira = config.jira.clone();
    if jira.token.is_empty()
        && let Ok(token) = std::env::var("JIRA_API_TOKEN")
    {
        jira.token = token;
    }
    jira
}

pub(crate) fn github_config(config: &Config) -> flowmeter_core::config::GithubConfig {
    let mut github = config.github.clone();
    if github.token.is_empty()
        && let Ok(token) = std::env::var("GITHUB_TOKEN")
    {
        github.token = token;
    }
    github
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Jira => "jira",
            Source::Github => "github",
        }
    }
}

/// One connector's sync, with this configuration's credentials.
async fn run(
    store: &Store,
    config: &Config,
    source: Source,
    progress: &dyn Progress,
) -> anyhow::Result<SyncOutcome> {
    Ok(match source {
        Source::Jira => flowmeter_ingest::jira::sync(store, &jira_config(config), progress).await?,
        Source::Github => {
            flowmeter_ingest::github::sync(store, &github_config(config), progress).await?
        }
    })
}

pub async fn sync(store: &Store, config: &Config, source: Source) -> anyhow::Result<ExitCode> {
    let progress = ConsoleProgress::new();
    let outcome = run(store, config, source, &progress).await?;
    progress.finish();
    Ok(summarize(source.name(), &outcome))
}

pub async fn replay(store: &Store, config: &Config, source: Source) -> anyhow::Result<ExitCode> {
    match source {
        Source::Jira => Ok(summarize(
            "jira",
            &flowmeter_ingest::jira::replay(store, &jira_config(config)).await?,
        )),
        Source::Github => Ok(summarize(
            "github",
            &flowmeter_ingest::github::replay(store, &github_config(config)).await?,
        )),
    }
}

/// The connectors this configuration sets up: GitHub when it names repositories or
/// organisations, Jira when it names a site.
pub fn configured(config: &Config) -> Vec<Source> {
    let mut sources = Vec::new();
    if !config.github.repos.is_empty() || !config.github.orgs.is_empty() {
        sources.push(Source::Github);
    }
    if !config.jira.url.is_empty() {
        sources.push(Source::Jira);
    }
    sources
}

/// Runs every configured connector now and then every `server.sync_minutes` (or
/// `sync_seconds`), each source on its own so one that hangs delays no other, logging each
/// outcome; the server's refresher picks up what they write. Processes serving one store share
/// the schedule: a source's sync runs in one of them at a time, once per period (the store
/// claims it, [`Store::claim_sync`]); when that process dies, another takes it over.
pub fn spawn_schedule(store: Store, config: Config) -> Option<tokio::task::JoinHandle<()>> {
    let period = config.server.sync_period()?;
    let sources = configured(&config);
    if sources.is_empty() {
        return None;
    }
    // Due syncs are looked for a few times a period (at least once a minute), so a source left
    // by a process that died is taken over within that.
    let check = (period / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    // A claim outlives a process that died mid-sync by at most this long (SQLite).
    let lease = (period * 4).max(std::time::Duration::from_secs(3600));
    let loops = sources.into_iter().map(move |source| {
        let (store, config) = (store.clone(), config.clone());
        async move {
            let mut ticks = tokio::time::interval(check);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let name = source.name();
                let claim = match store.claim_sync(name, period, lease).await {
                    Ok(Some(claim)) => claim,
                    Ok(None) => continue,
                    Err(error) => {
                        tracing::warn!(source = name, %error, "cannot claim the scheduled sync");
                        continue;
                    }
                };
                let outcome = run(&store, &config, source, &flowmeter_ingest::LogProgress).await;
                log_outcome(name, outcome);
                if let Err(error) = claim.finish().await {
                    tracing::warn!(source = name, %error, "cannot record the scheduled sync");
                }
            }
        }
    });
    Some(tokio::spawn(
        futures_util::future::join_all(loops).map(drop),
    ))
}

fn log_outcome(name: &str, outcome: anyhow::Result<flowmeter_ingest::SyncOutcome>) {
    match outcome {
        Ok(outcome) => {
            let records: u64 = outcome.resources.iter().map(|r| r.changed).sum();
            let failed: Vec<String> = outcome
                .resources
                .iter()
                .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.resource)))
                .collect();
            if failed.is_empty() {
                tracing::info!(source = name, changed = records, "scheduled sync done");
            } else {
                tracing::warn!(source = name, changed = records, failed = ?failed, "scheduled sync incomplete");
            }
        }
        Err(error) => tracing::error!(source = name, %error, "scheduled sync failed"),
    }
}
