//! `flowmeter import DIR`: reads the import format's files and upserts them, one transaction
//! per file, so a file with a bad line writes nothing (unless `--keep-going` skips bad lines).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use flowmeter_core::Record;
use flowmeter_core::import::{RecordKind, parse_line};
use flowmeter_store::{Store, Unlinked};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Skip bad lines (and report how many) instead of rejecting their file.
    #[arg(long)]
    pub keep_going: bool,
    /// The folder holding commits.jsonl, pull_requests.jsonl, deployments.jsonl,
    /// incidents.jsonl and/or issues.jsonl.
    pub dir: PathBuf,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    pub kind: RecordKind,
    pub path: PathBuf,
    /// Records read from good lines.
    pub records: u64,
    /// Rows inserted or changed in the store (0 when the same records were imported before).
    pub changed: u64,
    /// Bad lines skipped with `--keep-going`.
    pub skipped: u64,
    /// Why the file was not imported (nothing of it was written).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub files: Vec<FileOutcome>,
    pub unlinked: Unlinked,
}

impl ImportSummary {
    pub fn ok(&self) -> bool {
        self.files.iter().all(|f| f.error.is_none())
    }
}

/// A bad line: where it is and what is wrong with it.
fn line_error(path: &Path, line: usize, e: impl std::fmt::Display) -> String {
    format!("{}:{line}: {e}", path.display())
}

/// A parsed file: its records and the bad lines skipped, or why the whole file is rejected.
type Parsed = Result<(Vec<Record>, Vec<String>), String>;

/// Parses one file. Without `keep_going` the first bad line rejects the file.
fn read_file(
    kind: RecordKind,
    path: &Path,
    keep_going: bool,
    progress: &ProgressBar,
) -> anyhow::Result<Parsed> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let line = line.with_context(|| format!("read {}:{number}", path.display()))?;
        progress.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(kind, &line) {
            Ok(record) => records.push(record),
            Err(e) if keep_going => skipped.push(line_error(path, number, e)),
            Err(e) => return Ok(Err(line_error(path, number, e))),
        }
    }
    Ok(Ok((records, skipped)))
}

/// Imports every file of the format found in `dir`.
pub async fn import_dir(
    store: &Store,
    dir: &Path,
    keep_going: bool,
) -> anyhow::Result<ImportSummary> {
    let present: Vec<(RecordKind, PathBuf)> = RecordKind::ALL
        .iter()
        .map(|&kind| (kind, dir.join(kind.file_name())))
        .filter(|(_, path)| path.is_file())
        .collect();
    if !dir.is_dir() {
        anyhow::bail!("{} is not a folder", dir.display());
    }
    if present.is_empty() {
        let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.file_name()).collect();
        anyhow::bail!("{} holds none of {}", dir.display(), names.join(", "));
    }
    let mut files = Vec::new();
    for (kind, path) in present {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let progress = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        progress.set_style(
            ProgressStyle::with_template("{msg:24} [{bar:30}] {bytes}/{total_bytes} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        progress.set_message(kind.file_name());
        let parsed = {
            let (path, progress) = (path.clone(), progress.clone());
            tokio::task::spawn_blocking(move || read_file(kind, &path, keep_going, &progress))
                .await??
        };
        let outcome = match parsed {
            Err(error) => FileOutcome {
                kind,
                path,
                records: 0,
                changed: 0,
                skipped: 0,
                error: Some(error),
            },
            Ok((records, skipped)) => {
                for warning in skipped.iter().take(20) {
                    tracing::warn!("skipped {warning}");
                }
                progress.set_message(format!("{} (writing)", kind.file_name()));
                match store.write(kind, &records).await {
                    Ok(summary) => FileOutcome {
                        kind,
                        path,
                        records: summary.received,
                        changed: summary.changed,
                        skipped: skipped.len() as u64,
                        error: None,
                    },
                    Err(e) => FileOutcome {
                        kind,
                        error: Some(format!("{}: {e}", path.display())),
                        path,
                        records: 0,
                        changed: 0,
                        skipped: 0,
                    },
                }
            }
        };
        progress.finish_and_clear();
        files.push(outcome);
    }
    let unlinked = store.unlinked().await?;
    Ok(ImportSummary { files, unlinked })
}

/// Writes the summary for people.
pub fn print_summary(summary: &ImportSummary) {
    for f in &summary.files {
        match &f.error {
            Some(error) => eprintln!("{:<14} not imported: {error}", f.kind.noun()),
            None => {
                let skipped = if f.skipped > 0 {
                    format!(", {} bad lines skipped", f.skipped)
                } else {
                    String::new()
                };
                eprintln!(
                    "{:<14} {} records, {} new or changed{skipped}",
                    f.kind.noun(),
                    f.records,
                    f.changed
                );
            }
        }
    }
    let u = &summary.unlinked;
    let notes = [
        (
            u.deployments_with_unknown_commit,
            "deployments name a commit the store does not have",
        ),
        (
            u.pull_requests_with_unknown_merge_commit,
            "merged pull requests name a merge commit the store does not have",
        ),
        (
            u.incidents_with_unknown_deployment,
            "incidents name a deployment the store does not have",
        ),
    ];
    for (n, what) in notes {
        if n > 0 {
            eprintln!("not linked: {n} {what}");
        }
    }
}

pub async fn run(store: &Store, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let summary = import_dir(store, &args.dir, args.keep_going).await?;
    print_summary(&summary);
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
