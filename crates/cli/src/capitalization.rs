//! `flowmeter export capitalization` and `flowmeter people`: the weekly file finance uses for
//! R&D capitalization (docs/capitalization.md), and the mapping of identities to people.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use flowmeter_core::Config;
use flowmeter_core::people::{People, split_signature};
use flowmeter_store::Store;
use flowmeter_web::capitalization::{MAX_WEEKS, export, team, weeks};

#[derive(Debug, clap::Subcommand)]
pub enum ExportKind {
    /// One CSV row per person, ISO week and work item: FTE share, capitalizable or not and the
    /// rule that decided, the evidence counts and the method version. No salary or cost data.
    ///
    /// The same weeks exported twice from an unchanged store are byte-identical.
    Capitalization(CapitalizationArgs),
}

#[derive(Debug, clap::Args)]
pub struct CapitalizationArgs {
    /// An ISO week that has ended, such as 2026-W47 (default: the last one, in UTC).
    #[arg(long)]
    pub week: Option<String>,
    /// A range of ended ISO weeks, such as 2026-W40..2026-W47 (at most 106).
    #[arg(long, conflicts_with = "week")]
    pub weeks: Option<String>,
    /// Only the people of this team (in each week).
    #[arg(long)]
    pub team: Option<String>,
    /// Write the CSV here (default: standard output). Written whole or not at all.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write a JSON manifest here: the store generation, the method version and a digest
    /// of the configuration that shaped the file, so a re-export can be told apart.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
}

pub async fn run_export(
    store: &Store,
    config: &Config,
    kind: &ExportKind,
) -> anyhow::Result<ExitCode> {
    let ExportKind::Capitalization(args) = kind;
    let now = chrono::Utc::now();
    let weeks = weeks(
        args.week.as_deref().map(|w| ("--week", w)),
        args.weeks.as_deref().map(|w| ("--weeks", w)),
        now,
        MAX_WEEKS,
    )?;
    let team = team(config, args.team.as_deref(), "--team")?;
    let export = export(store, config, &weeks, team.as_deref()).await?;
    let csv = export.csv();
    match &args.out {
        Some(path) => write_whole(path, &csv)?,
        None => std::io::stdout().write_all(&csv)?,
    }
    if let Some(path) = &args.manifest {
        let manifest = serde_json::to_vec_pretty(&export.manifest(config, &csv))?;
        write_whole(path, &manifest)?;
    }
    eprintln!(
        "{} rows for {} week(s), store generation {}",
        export.rows.len(),
        weeks.len(),
        export.generation
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place: a reader
/// never sees half a file, and a failure leaves what was there.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path.file_name().context("the output path names no file")?;
    let temporary = dir.join(format!(".{}.partial", name.to_string_lossy()));
    std::fs::write(&temporary, bytes).with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct PeopleArgs {
    /// List the identities the store names that are no person's (bots excepted), with their
    /// activity and a suggested person where a name or e-mail matches.
    #[arg(long)]
    pub unmapped: bool,
}

pub async fn run_people(
    store: &Store,
    config: &Config,
    args: &PeopleArgs,
) -> anyhow::Result<ExitCode> {
    let people = People::new(config);
    let identities = store.identities().await?;
    let mut out = String::new();
    if args.unmapped {
        out.push_str("identity\tcommits\tpull_requests\treviews\tissues\tsuggested_person\n");
        for (identity, done) in &identities {
            if people.person_of(identity).is_some() || people.is_bot(identity) {
                continue;
            }
            out.push_str(&format!(
                "{identity}\t{}\t{}\t{}\t{}\t{}\n",
                done.commits,
                done.pull_requests,
                done.reviews,
                done.issues,
                suggest(&people, identity).unwrap_or("")
            ));
        }
    } else {
        out.push_str("id\tname\tteam_today\tfte\tcommits\tpull_requests\treviews\tissues\n");
        let today = chrono::Utc::now().date_naive();
        for (p, person) in people.people.iter().enumerate() {
            let mut total = flowmeter_store::IdentityActivity::default();
            for (identity, done) in &identities {
                if people.person_of(identity) == Some(p) {
                    total.commits += done.commits;
                    total.pull_requests += done.pull_requests;
                    total.reviews += done.reviews;
                    total.issues += done.issues;
                }
            }
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                person.id,
                person.name,
                people.team_on(p, today),
                person.fte,
                total.commits,
                total.pull_requests,
                total.reviews,
                total.issues
            ));
        }
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The id of the person an unmapped identity probably is: one whose name is the identity's
/// name, or one of whose identities shares the identity's e-mail user or login.
fn suggest<'p>(people: &'p People, identity: &str) -> Option<&'p str> {
    let folded = identity.trim().to_lowercase();
    let (name, user) = match split_signature(&folded) {
        Some((name, email)) => (
            name.to_string(),
            email.split('@').next().unwrap_or("").to_string(),
        ),
        None => (
            folded.clone(),
            folded.split('@').next().unwrap_or("").to_string(),
        ),
    };
    people
        .people
        .iter()
        .find(|p| {
            p.name.to_lowercase() == name
                || p.identities.iter().any(|i| {
                    let i = i.to_lowercase();
                    !user.is_empty() && (i == user || i.split('@').next() == Some(user.as_str()))
                })
        })
        .map(|p| p.id.as_str())
}
