//! `flowmeter sync` and `flowmeter replay`: the connectors, with progress on a terminal and log
//! lines elsewhere, and an exit code that says whether everything synced.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use flowmeter_core::Config;
use flowmeter_ingest::{Progress, SyncOutcome};
use flowmeter_store::Store;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Source {
    /// Jira issues with their full status history (see `[jira]` in flowmeter.toml).
    Jira,
}

/// A spinner per resource on a terminal; plain lines on anything else.
struct ConsoleProgress {
    bar: Option<ProgressBar>,
}

impl ConsoleProgress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        ConsoleProgress { bar }
    }
}

impl Progress for ConsoleProgress {
    fn page(&self, resource: &str, pages: u64, records: u64) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{resource}: {pages} pages, {records} records")),
            None => eprintln!("{resource}: {pages} pages, {records} records"),
        }
    }

    fn waiting(&self, resource: &str, why: &str, seconds: f64) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{resource}: {why}; retrying in {seconds:.1} s")),
            None => eprintln!("{resource}: {why}; retrying in {seconds:.1} s"),
        }
    }
}

fn summarize(source: &str, outcome: &SyncOutcome) -> ExitCode {
    for r in &outcome.resources {
        eprintln!(
            "{source} {}: {} pages, {} records, {} new or changed, {} warnings",
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

pub async fn sync(store: &Store, config: &Config, source: Source) -> anyhow::Result<ExitCode> {
    match source {
        Source::Jira => {
            let progress = ConsoleProgress::new();
            let outcome =
                flowmeter_ingest::jira::sync(store, &jira_config(config), &progress).await?;
            if let Some(bar) = &progress.bar {
                bar.finish_and_clear();
            }
            Ok(summarize("jira", &outcome))
        }
    }
}

pub async fn replay(store: &Store, config: &Config, source: Source) -> anyhow::Result<ExitCode> {
    match source {
        Source::Jira => Ok(summarize(
            "jira",
            &flowmeter_ingest::jira::replay(store, &jira_config(config)).await?,
        )),
    }
}
