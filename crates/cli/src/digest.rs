//! `flowmeter digest`, and the digests `flowmeter serve` sends on their schedules.
//!
//! Each digest's week is sent once: it is claimed in the store before the send (of processes
//! claiming together one wins) and recorded as sent when Slack answered 200. A process killed
//! between Slack's answer and the record leaves a claim that lapses after its lease; the next
//! run then sends again: at least once, and at most twice per such kill.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flowmeter_core::config::DigestConfig;
use flowmeter_core::schedule::Schedule;
use flowmeter_core::{Config, IsoWeek, Timestamp};
use flowmeter_engine::Snapshot;
use flowmeter_ingest::slack::{SendPolicy, Slack, WebhookUrl};
use flowmeter_store::{DigestClaim, DigestState, Store};
use flowmeter_web::digest::{Digest, Links};

#[derive(Debug, Clone, clap::Args)]
pub struct DigestArgs {
    /// Only the digests of this team ("all": the organisation's).
    #[arg(long)]
    pub team: Option<String>,
    /// The ISO week, such as 2026-W47 (default: the last complete week, in UTC).
    #[arg(long)]
    pub week: Option<String>,
    /// Print the JSON body of each digest instead of sending it; nothing is recorded.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds after which the claim of a process that died while sending lapses.
    #[arg(long, default_value_t = 900, hide = true)]
    pub lease_seconds: u64,
}

/// A configured digest, ready to send.
#[derive(Debug, Clone)]
pub struct Target {
    pub config: DigestConfig,
    pub webhook: WebhookUrl,
    pub schedule: Schedule,
}

/// Every configured digest with its webhook URL and schedule; the error names the key (a
/// variable that is not set, say), never a URL.
pub fn targets(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<Target>> {
    config
        .digests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let url = d.webhook(i, &env)?;
            let schedule = d
                .schedule()
                .map_err(|e| anyhow::anyhow!("digests[{i}].schedule: {e}"))?;
            Ok(Target {
                config: d.clone(),
                webhook: WebhookUrl::new(url),
                schedule,
            })
        })
        .collect()
}

/// What became of one digest's week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        requests: u32,
    },
    AlreadySent(Option<Timestamp>),
    /// Another process claimed it at this time and may still be sending.
    Busy(Timestamp),
    /// It failed before and is not due again until then.
    NotDue(Option<Timestamp>),
    Failed(String),
    /// Slack took it but the record could not be written: the next run may send it again.
    SentUnrecorded(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |t: &Option<Timestamp>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "an unknown time".into())
        };
        match self {
            Outcome::Sent { requests } => write!(f, "sent ({requests} requests)"),
            Outcome::AlreadySent(t) => write!(f, "already sent at {}; skipped", at(t)),
            Outcome::Busy(t) => write!(
                f,
                "another process has been sending it since {}; skipped",
                at(&Some(*t))
            ),
            Outcome::NotDue(t) => write!(f, "failed before; due again at {}", at(t)),
            Outcome::Failed(e) => write!(f, "failed: {e}"),
            Outcome::SentUnrecorded(e) => write!(
                f,
                "sent, but not recorded ({e}); the next run may send it again"
            ),
        }
    }
}

/// How long after a failed send `serve` tries again: 15 minutes, doubling, at most 6 hours.
fn retry_delay(attempt: i64) -> chrono::Duration {
    let minutes = 15i64.saturating_mul(1 << (attempt - 1).clamp(0, 5));
    chrono::Duration::minutes(minutes.min(6 * 60))
}

/// Claims `week` of `target`, sends `message` and records the outcome.
#[allow(clippy::too_many_arguments)]
pub async fn deliver(
    store: &Store,
    slack: &Slack,
    target: &Target,
    week: IsoWeek,
    message: &serde_json::Value,
    now: Timestamp,
    lease: Duration,
    retry_failed_now: bool,
) -> anyhow::Result<Outcome> {
    let name = target.config.name();
    let week_name = week.to_string();
    let ticket = match store
        .claim_digest(name, &week_name, now, lease, retry_failed_now)
        .await?
    {
        DigestClaim::Claimed(ticket) => ticket,
        DigestClaim::Taken(send) => {
            return Ok(match send.state {
                DigestState::Sent => Outcome::AlreadySent(send.sent_at),
                DigestState::Sending => Outcome::Busy(send.claimed_at),
                DigestState::Failed => Outcome::NotDue(send.retry_at),
            });
        }
    };
    match slack.post(&target.webhook, message, name).await {
        Ok(delivery) => match store.digest_sent(&ticket, chrono::Utc::now()).await {
            Ok(true) => Ok(Outcome::Sent {
                requests: delivery.requests,
            }),
            Ok(false) => Ok(Outcome::SentUnrecorded(
                "another process claimed it meanwhile".into(),
            )),
            Err(e) => Ok(Outcome::SentUnrecorded(e.to_string())),
        },
        Err(e) => {
            let error = e.to_string();
            store
                .digest_failed(&ticket, &error, now + retry_delay(ticket.attempt))
                .await?;
            Ok(Outcome::Failed(error))
        }
    }
}

/// The Slack message of a team's week (engine work: call it off the async threads).
pub fn build_message(
    snapshot: &Snapshot,
    team: Option<&str>,
    week: IsoWeek,
    now: Timestamp,
) -> anyhow::Result<serde_json::Value> {
    let config = snapshot.config();
    let digest = Digest::build(snapshot, team, week, now)?;
    let links = Links::of(config, &config.server.public_url);
    Ok(digest.lines(&links).slack_message())
}

async fn message(
    snapshot: Arc<Snapshot>,
    team: Option<String>,
    week: IsoWeek,
    now: Timestamp,
) -> anyhow::Result<serde_json::Value> {
    tokio::task::spawn_blocking(move || build_message(&snapshot, team.as_deref(), week, now))
        .await?
}

fn week_of(args: &DigestArgs) -> anyhow::Result<IsoWeek> {
    match &args.week {
        Some(w) => Ok(IsoWeek::parse("--week", w)?),
        None => Ok(IsoWeek::completed_before(chrono::Utc::now())),
    }
}

/// `flowmeter digest`.
pub async fn run(store: &Store, config: Config, args: &DigestArgs) -> anyhow::Result<ExitCode> {
    let week = week_of(args)?;
    let now = chrono::Utc::now();
    if let Some(team) = &args.team
        && team != "all"
        && config.team(team).is_none()
    {
        anyhow::bail!("--team: '{team}' is not a [[teams]] name (or \"all\")");
    }
    let wanted = |team: &str| args.team.as_deref().is_none_or(|t| t == team);
    if args.dry_run {
        let mut teams: Vec<String> = config
            .digests
            .iter()
            .map(|d| d.team.clone())
            .filter(|t| wanted(t))
            .collect();
        if let Some(team) = &args.team
            && teams.is_empty()
        {
            teams.push(team.clone());
        }
        teams.dedup();
        anyhow::ensure!(
            !teams.is_empty(),
            "no [[digests]] are configured; name a team with --team"
        );
        let snapshot = Arc::new(crate::report::snapshot(store, config).await?);
        for team in teams {
            let team = (team != "all").then_some(team);
            let body = message(snapshot.clone(), team, week, now).await?;
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let targets: Vec<Target> = targets(&config, |v| std::env::var(v).ok())?
        .into_iter()
        .filter(|t| wanted(&t.config.team))
        .collect();
    if targets.is_empty() {
        match &args.team {
            Some(team) => anyhow::bail!("no [[digests]] entry for team '{team}'"),
            None => anyhow::bail!("no [[digests]] are configured"),
        }
    }
    let slack = Slack::new(SendPolicy::default()).map_err(|e| anyhow::anyhow!(e))?;
    let snapshot = Arc::new(crate::report::snapshot(store, config).await?);
    let lease = Duration::from_secs(args.lease_seconds);
    let mut failed = false;
    for target in &targets {
        let body = message(
            snapshot.clone(),
            target.config.team().map(String::from),
            week,
            now,
        )
        .await?;
        let outcome = deliver(store, &slack, target, week, &body, now, lease, true)
            .await
            .with_context(|| format!("digest {}, {week}", target.config.name()))?;
        failed |= matches!(outcome, Outcome::Failed(_));
        eprintln!("digest {}, {week}: {outcome}", target.config.name());
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// How long a claim outlives a process that died while sending (`serve`).
pub const LEASE: Duration = Duration::from_secs(15 * 60);

/// Sends every digest that is due at `now`: the latest scheduled moment at or before `now`
/// (in the digest's time zone) names the week that had ended by then; that week is sent unless
/// it was. After downtime only the latest due week is sent, once (`flowmeter digest --week`
/// sends an older one).
pub async fn run_due(
    state: &flowmeter_web::AppState,
    slack: &Slack,
    targets: &[Target],
    now: Timestamp,
) -> Vec<(String, IsoWeek, Outcome)> {
    let mut outcomes = Vec::new();
    for target in targets {
        let Some(due) = target.schedule.latest_due(now) else {
            continue;
        };
        let week = IsoWeek::completed_before(due);
        let name = target.config.name();
        // A cheap look first; the claim below is the guard.
        match state.store().digest_send(name, &week.to_string()).await {
            Ok(Some(send))
                if send.state == DigestState::Sent
                    || (send.state == DigestState::Sending
                        && send.claimed_until.is_some_and(|u| u > now))
                    || (send.state == DigestState::Failed
                        && send.retry_at.is_some_and(|r| r > now)) =>
            {
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(digest = name, "cannot read the digest's record: {e}");
                continue;
            }
        }
        let view = state.view();
        let team = target.config.team().map(String::from);
        let built = tokio::task::spawn_blocking(move || {
            build_message(&view.snapshot, team.as_deref(), week, now)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|b| b);
        let outcome = match built {
            Ok(body) => deliver(state.store(), slack, target, week, &body, now, LEASE, false)
                .await
                .unwrap_or_else(|e| Outcome::Failed(format!("{e:#}"))),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        };
        match &outcome {
            Outcome::Failed(_) | Outcome::SentUnrecorded(_) => {
                tracing::warn!(digest = name, week = %week, "{outcome}")
            }
            _ => tracing::info!(digest = name, week = %week, "{outcome}"),
        }
        outcomes.push((name.to_string(), week, outcome));
    }
    outcomes
}

/// Checks every 30 seconds for due digests while serving; `None` when none are configured.
pub fn spawn_schedule(
    state: flowmeter_web::AppState,
    targets: Vec<Target>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if targets.is_empty() {
        return Ok(None);
    }
    let slack = Slack::new(SendPolicy::default()).map_err(|e| anyhow::anyhow!(e))?;
    for t in &targets {
        if let Some(next) = t.schedule.next_after(chrono::Utc::now()) {
            tracing::info!(digest = t.config.name(), "next digest due at {next}");
        }
    }
    Ok(Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_due(&state, &slack, &targets, chrono::Utc::now()).await;
        }
    })))
}
