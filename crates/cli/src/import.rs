//! `flowmeter import DIR`: reads the import format's files and upserts them, one transaction
//! per file, so a file with a bad line writes nothing (unless `--keep-going` skips bad lines).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flowmeter_core::Record;
use flowmeter_core::import::{RecordKind, parse_line};
use flowmeter_store::{Backend, Store, Unlinked};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// How many records go to the store at a time; parsing the next batch overlaps writing this one.
const BATCH: usize = 10_000;

/// Why a file was rejected: its first bad line, or a failure to read it.
type Rejected = String;

/// Parses one file into batches sent to the writer, and returns the bad lines it skipped.
/// Without `keep_going` the first bad line rejects the file.
fn parse_file(
    kind: RecordKind,
    path: &Path,
    keep_going: bool,
    progress: &ProgressBar,
    batches: tokio::sync::mpsc::Sender<Vec<Record>>,
) -> Result<Vec<String>, Rejected> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut batch = Vec::with_capacity(BATCH);
    let mut skipped = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let line = line.map_err(|e| line_error(path, number, format!("cannot read: {e}")))?;
        progress.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(kind, &line) {
            Ok(record) => batch.push(record),
            Err(e) if keep_going => skipped.push(line_error(path, number, e)),
            Err(e) => return Err(line_error(path, number, e)),
        }
        if batch.len() == BATCH && batches.blocking_send(std::mem::take(&mut batch)).is_err() {
            // The writer stopped (a store error it reports itself).
            return Ok(skipped);
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(batch);
    }
    Ok(skipped)
}

/// Imports one file in one transaction: parsing and writing overlap, and nothing is committed
/// unless every line parsed (or was skipped with `keep_going`) and every batch was written.
async fn import_file(
    store: &Store,
    kind: RecordKind,
    path: &Path,
    keep_going: bool,
    progress: &ProgressBar,
) -> anyhow::Result<FileOutcome> {
    let outcome = |records, changed, skipped, error| FileOutcome {
        kind,
        path: path.to_path_buf(),
        records,
        changed,
        skipped,
        error,
    };
    let (sender, mut batches) = tokio::sync::mpsc::channel(2);
    let parser = {
        let (path, progress) = (path.to_path_buf(), progress.clone());
        tokio::task::spawn_blocking(move || parse_file(kind, &path, keep_going, &progress, sender))
    };
    let mut writer = store.writer(kind).await?;
    let mut write_error = None;
    while let Some(batch) = batches.recv().await {
        if let Err(e) = writer.write(&batch).await {
            write_error = Some(format!("{}: {e}", path.display()));
            break;
        }
    }
    drop(batches);
    let parsed = parser.await?;
    if let Some(error) = write_error {
        return Ok(outcome(0, 0, 0, Some(error)));
    }
    let skipped = match parsed {
        Ok(skipped) => skipped,
        Err(rejected) => return Ok(outcome(0, 0, 0, Some(rejected))),
    };
    for warning in skipped.iter().take(20) {
        tracing::warn!("skipped {warning}");
    }
    match writer.commit().await {
        Ok(summary) => Ok(outcome(
            summary.received,
            summary.changed,
            skipped.len() as u64,
            None,
        )),
        Err(e) => Ok(outcome(0, 0, 0, Some(format!("{}: {e}", path.display())))),
    }
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
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg:24} [{bar:30}] {bytes}/{total_bytes} {elapsed}")
        .expect("valid template")
        .progress_chars("=> ");
    let imports = present.iter().map(|(kind, path)| {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let progress = bars.add(ProgressBar::new(size).with_style(style.clone()));
        progress.set_message(kind.file_name());
        async move {
            let outcome = import_file(store, *kind, path, keep_going, &progress).await;
            progress.finish_and_clear();
            outcome
        }
    });
    // Files are independent transactions. PostgreSQL takes them concurrently, each on its own
    // connection; SQLite has one writer at a time, so its files go one after another.
    let files: Vec<FileOutcome> = match store.backend() {
        Backend::Postgres => futures_util::future::join_all(imports)
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?,
        Backend::Sqlite => {
            let mut files = Vec::new();
            for import in imports {
                files.push(import.await?);
            }
            files
        }
    };
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
