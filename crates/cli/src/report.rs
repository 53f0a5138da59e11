//! `flowmeter report`: the DORA report of one window and scope, as JSON or a table.

use std::process::ExitCode;

use anyhow::Context as _;
use flowmeter_core::{Config, Scope, Window};
use flowmeter_engine::{DoraReport, Snapshot, Tier};
use flowmeter_store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// First day of the window (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub from: String,
    /// Day after the window (YYYY-MM-DD, exclusive).
    #[arg(long)]
    pub to: String,
    /// Only this repository (owner/name).
    #[arg(long)]
    pub repo: Option<String>,
    /// Only this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Only what this team owns.
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
}

/// The engine's snapshot of the store: the kept model with what was written since, or every
/// record when none was kept (see `flowmeter_web::state::open_snapshot`).
pub async fn snapshot(store: &Store, config: Config) -> anyhow::Result<Snapshot> {
    let (_, snapshot) = flowmeter_web::state::open_snapshot(store, &config)
        .await
        .context("read the event store")?;
    Ok(snapshot)
}

/// `flowmeter stages`: rule S, the value stream, for one window and scope.
pub async fn run_stages(
    store: &Store,
    config: Config,
    args: &ReportArgs,
) -> anyhow::Result<ExitCode> {
    let window = Window::parse(&args.from, &args.to)?;
    let scope = Scope {
        repo: args.repo.clone(),
        service: args.service.clone(),
        team: args.team.clone(),
    };
    let snapshot = snapshot(store, config).await?;
    let now = chrono::Utc::now();
    let report =
        tokio::task::spawn_blocking(move || snapshot.stages(window, &scope, now)).await??;
    match args.format {
        Format::Json => println!("{}", report.to_json()),
        Format::Table => print!("{}", stages_table(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The value stream for people.
pub fn stages_table(r: &flowmeter_engine::stages::StagesReport) -> String {
    let mut out = format!(
        "Value stream, definitions v{}: {} to {} ({} days)\n  merged pull requests: {} ({} unreviewed, {} linked to no issue)\n",
        r.definitions_version,
        r.window.from,
        r.window.to,
        r.window.days,
        r.pull_requests.merged,
        r.pull_requests.unreviewed,
        r.pull_requests.unlinked
    );
    out.push_str(&format!(
        "  {:<20} {:>6} {:>12} {:>12} {:>7}\n",
        "stage", "count", "median", "p90", "share"
    ));
    for s in &r.stages {
        out.push_str(&format!(
            "  {:<20} {:>6} {:>12} {:>12} {:>7}\n",
            s.stage,
            s.count,
            hours(s.median_hours),
            hours(s.p90_hours),
            s.share
                .map(|x| format!("{:.1}%", x * 100.0))
                .unwrap_or_else(|| "-".into())
        ));
    }
    match &r.bottleneck {
        Some(b) => out.push_str(&format!(
            "  bottleneck: {} ({:.1}% of the time; previous window {})\n",
            b.stage,
            b.share * 100.0,
            b.previous_share
                .map(|p| format!("{:.1}%", p * 100.0))
                .unwrap_or_else(|| "no data".into())
        )),
        None => out.push_str("  bottleneck: no data\n"),
    }
    let w = &r.work_in_progress;
    out.push_str(&format!(
        "  work in progress at {}: {} waiting for review, {} in review, {} merged but not deployed\n",
        w.at.format("%Y-%m-%d %H:%M"),
        w.waiting_for_review.len(),
        w.in_review.len(),
        w.merged_not_deployed.len()
    ));
    out
}

pub async fn run(store: &Store, config: Config, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let window = Window::parse(&args.from, &args.to)?;
    let scope = Scope {
        repo: args.repo.clone(),
        service: args.service.clone(),
        team: args.team.clone(),
    };
    let snapshot = snapshot(store, config).await?;
    let report = tokio::task::spawn_blocking(move || snapshot.dora(window, &scope)).await??;
    match args.format {
        Format::Json => println!("{}", report.to_json()),
        Format::Table => print!("{}", table(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

fn tier(t: Option<Tier>) -> &'static str {
    match t {
        Some(Tier::Elite) => "elite",
        Some(Tier::High) => "high",
        Some(Tier::Medium) => "medium",
        Some(Tier::Low) => "low",
        None => "-",
    }
}

fn hours(h: Option<f64>) -> String {
    h.map(|h| format!("{h:.1} h"))
        .unwrap_or_else(|| "no data".into())
}

fn percent(r: Option<f64>) -> String {
    r.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "no data".into())
}

/// The report for people: one line per metric, its tier beside it.
pub fn table(r: &DoraReport) -> String {
    let scope: Vec<String> = [
        ("repo", &r.scope.repo),
        ("service", &r.scope.service),
        ("team", &r.scope.team),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
    .collect();
    let scope = if scope.is_empty() {
        "everything".to_string()
    } else {
        scope.join(" ")
    };
    let df = &r.deployment_frequency;
    let lt = &r.lead_time;
    let cfr = &r.change_failure_rate;
    let rt = &r.recovery_time;
    let rw = &r.rework_rate;
    let rows = [
        (
            "deployment frequency",
            format!(
                "{:.2}/week ({} deployments; deploy days/week median {})",
                df.per_week,
                df.deployments,
                df.deploy_days_per_week_median
                    .map(|d| format!("{d:.1}"))
                    .unwrap_or_else(|| "no data".into())
            ),
            tier(df.tier),
        ),
        (
            "lead time for changes",
            format!(
                "median {}, p90 {} ({} changes)",
                hours(lt.median_hours),
                hours(lt.p90_hours),
                lt.changes
            ),
            tier(lt.tier),
        ),
        (
            "change failure rate",
            format!(
                "{} ({} of {} deployments)",
                percent(cfr.rate),
                cfr.failed,
                cfr.deployments
            ),
            tier(cfr.tier),
        ),
        (
            "recovery time",
            format!(
                "median {} ({} resolved, {} open)",
                hours(rt.median_hours),
                rt.incidents,
                rt.open
            ),
            tier(rt.tier),
        ),
        (
            "rework rate",
            format!(
                "{} ({} of {} deployments)",
                percent(rw.rate),
                rw.rework,
                rw.deployments
            ),
            "",
        ),
    ];
    let mut out = format!(
        "DORA report, definitions v{}: {} to {} ({} days), {scope}\n",
        r.definitions_version, r.window.from, r.window.to, r.window.days
    );
    for (name, value, tier) in rows {
        out.push_str(&format!("  {name:<22} {value:<62} {tier}\n"));
    }
    out
}
