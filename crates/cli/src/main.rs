//! `flowmeter`: the command line. It parses arguments, loads configuration, sets up logging and
//! wires the store, the engine and the connectors together; business rules live in the crates.

use flowmeter::{capitalization, config, demo, digest, import, report, serve, sync};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Self-hosted DORA metrics and value-stream analytics.
#[derive(Debug, Parser)]
#[command(name = "flowmeter", version, about, long_about = None)]
struct Cli {
    /// The event store: sqlite://PATH (created on first use) or postgres://...
    #[arg(
        long,
        global = true,
        env = "FLOWMETER_DB",
        default_value = "sqlite://flowmeter.db",
        hide_env_values = true
    )]
    db: String,
    /// The configuration file (default: ./flowmeter.toml when it exists).
    #[arg(long, global = true, env = "FLOWMETER_CONFIG")]
    config: Option<PathBuf>,
    /// Log more (-v: info, -vv: debug). FLOWMETER_LOG takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or upgrade the event store's tables.
    Migrate,
    /// Load a folder of import-format JSON Lines files into the store.
    Import(import::ImportArgs),
    /// Print the DORA report of one window.
    Report(report::ReportArgs),
    /// Print the value stream of one window: stages, bottleneck, work in progress.
    Stages(report::ReportArgs),
    /// Fetch records from a connected system (incremental).
    Sync {
        #[command(subcommand)]
        source: sync::Source,
    },
    /// Normalize a connector's archived raw payloads again, without calling it.
    Replay {
        #[command(subcommand)]
        source: sync::Source,
    },
    /// Write a synthetic organisation in the import format.
    Generate(GenerateArgs),
    /// Send each team's weekly digest to Slack (once per week), or print it (--dry-run).
    ///
    /// A week is recorded as sent when Slack answered 200; a second run skips it. A process
    /// killed between Slack's answer and the record sends again after the claim lapses: at
    /// least once, at most twice.
    Digest(digest::DigestArgs),
    /// Write a file for finance.
    Export {
        #[command(subcommand)]
        what: capitalization::ExportKind,
    },
    /// List the people of the configuration with their activity, or (--unmapped) the
    /// identities no person claims yet.
    People(capitalization::PeopleArgs),
    /// Serve the dashboard, the JSON API, the push API and the CSV export.
    Serve(serve::ServeArgs),
    /// Load a demo organisation into its own embedded store and serve its dashboard.
    Demo(demo::DemoArgs),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// Size of the organisation: S (~15k commits), M (~150k) or L (~1.5M).
    #[arg(long, default_value = "S")]
    scale: flowmeter_synth::Scale,
    /// Seed of the generator: the same seed writes the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder to write into (created when missing).
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    // sqlx reports every statement over a second as a warning; a full read of a large store
    // takes longer by design, so those reports show from `-vv` on.
    let default = match verbose {
        0 => "warn,sqlx::query=error",
        1 => "info,sqlx::query=error",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOWMETER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    match cli.command {
        Command::Migrate => {
            flowmeter_store::Store::open(&cli.db).await?;
            eprintln!("migrated {}", flowmeter_store::redact_url(&cli.db));
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => {
            let store = flowmeter_store::Store::open(&cli.db).await?;
            import::run(&store, &args).await
        }
        Command::Report(args) => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            report::run(&store, config, &args).await
        }
        Command::Stages(args) => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            report::run_stages(&store, config, &args).await
        }
        Command::Sync { source } => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            sync::sync(&store, &config, source).await
        }
        Command::Replay { source } => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            sync::replay(&store, &config, source).await
        }
        Command::Generate(args) => {
            let out = args.out_dir.clone();
            let summary = tokio::task::spawn_blocking(move || {
                flowmeter_synth::generate(args.scale, args.seed, &args.out_dir)
            })
            .await?
            .with_context(|| format!("write the organisation into {}", out.display()))?;
            eprintln!(
                "wrote {} commits, {} pull requests, {} deployments, {} incidents, {} issues and flowmeter.toml to {}",
                summary.commits,
                summary.pull_requests,
                summary.deployments,
                summary.incidents,
                summary.issues,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Digest(args) => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            digest::run(&store, config, &args).await
        }
        Command::Export { what } => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            capitalization::run_export(&store, &config, &what).await
        }
        Command::People(args) => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            capitalization::run_people(&store, &config, &args).await
        }
        Command::Serve(args) => {
            let config = config::load(cli.config.as_deref())?;
            let store = flowmeter_store::Store::open(&cli.db).await?;
            serve::run(store, config, &args).await
        }
        Command::Demo(args) => demo::run(&args).await,
    }
}
