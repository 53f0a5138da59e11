//! `flowmeter demo`: a demo organisation in its own embedded store, with no set-up.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Duration;
use flowmeter_core::{Scope, Window};
use flowmeter_store::Store;

use crate::{config, import, report};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder of the demo: its generated files, configuration and SQLite store.
    #[arg(long, default_value = "flowmeter-demo")]
    pub dir: PathBuf,
    /// Days in the printed report's window, ending with the demo data's last day.
    #[arg(long, default_value_t = 90)]
    pub days: i64,
    /// Print the DORA report (whole organisation and per team) and exit instead of serving.
    #[arg(long)]
    pub report: bool,
    /// Address the dashboard listens on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: std::net::SocketAddr,
}

pub async fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.clone();
    if !dir.join("commits.jsonl").is_file() {
        eprintln!("generating the demo organisation into {}", dir.display());
        let out = dir.clone();
        tokio::task::spawn_blocking(move || {
            flowmeter_synth::generate(flowmeter_synth::Scale::S, 1, &out)
        })
        .await?
        .with_context(|| format!("generate the demo into {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("flowmeter.db").display());
    let store = Store::open(&url).await?;
    if store.counts().await?.commits == 0 {
        eprintln!("importing the demo organisation into {url}");
        let summary = import::import_dir(&store, &dir, false).await?;
        import::print_summary(&summary);
        anyhow::ensure!(summary.ok(), "the demo data did not import");
    }
    let config = config::load(Some(&dir.join("flowmeter.toml")))?;
    if !args.report {
        let serve = crate::serve::ServeArgs {
            listen: args.listen,
            insecure_no_auth: false,
        };
        return crate::serve::run(store, config, &serve).await;
    }
    let teams: Vec<String> = config.teams.iter().map(|t| t.name.clone()).collect();
    let snapshot = report::snapshot(&store, config).await?;
    let (_, last) = snapshot
        .deployment_span()
        .context("the demo has no deployments")?;
    let to = last.date_naive() + Duration::days(1);
    let window = Window::new(to - Duration::days(args.days), to)?;
    let output = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let mut out = report::table(&snapshot.dora(window, &Scope::default())?);
        for team in teams {
            let scope = Scope {
                team: Some(team),
                ..Scope::default()
            };
            out.push('\n');
            out.push_str(&report::table(&snapshot.dora(window, &scope)?));
        }
        Ok(out)
    })
    .await??;
    print!("{output}");
    println!(
        "\nThe demo store is {url}; try: flowmeter report --db {url} --config {} --from {} --to {} --format table",
        dir.join("flowmeter.toml").display(),
        window.from,
        window.to
    );
    Ok(ExitCode::SUCCESS)
}
