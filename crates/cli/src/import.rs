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
    /// Files of the folder that were not read, and why.
    pub skipped: Vec<(PathBuf, String)>,
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
const BATCH: usize = 50_000;

/// A record's natural key, for ordering a batch as the store's primary keys are ordered.
fn key_of(record: &Record) -> (std::borrow::Cow<'_, str>, &str, u64) {
    use std::borrow::Cow::Borrowed;
    match record {
        Record::Commit(c) => (Borrowed(c.repo.as_str()), &c.sha, 0),
        Record::PullRequest(p) => (Borrowed(p.repo.as_str()), "", p.number),
        Record::Deployment(d) => (Borrowed(d.repo.as_str()), &d.id, 0),
        Record::Incident(i) => (i.key_scope().into(), &i.id, 0),
        Record::Issue(i) => (Borrowed(i.key.as_str()), "", 0),
    }
}

/// Sorts a batch by key, keeping the order of records with the same key (the last one wins
/// when written): the store's B-trees then take a batch in one sweep instead of jumping
/// between pages, which is what bounds an import once a table outgrows the cache.
fn sorted(mut batch: Vec<Record>) -> Vec<Record> {
    batch.sort_by(|a, b| key_of(a).cmp(&key_of(b)));
    batch
}

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
    let reader: Box<dyn BufRead> = if is_gzip(path) {
        let counted = CountingReader {
            inner: file,
            progress: progress.clone(),
        };
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let gzip = is_gzip(path);
    let mut batch = Vec::with_capacity(BATCH);
    let mut skipped = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let line = line.map_err(|e| line_error(path, number, format!("cannot read: {e}")))?;
        if !gzip {
            progress.inc(line.len() as u64 + 1);
        }
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(kind, &line) {
            Ok(record) => batch.push(record),
            Err(e) if keep_going => skipped.push(line_error(path, number, e)),
            Err(e) => return Err(line_error(path, number, e)),
        }
        if batch.len() == BATCH
            && batches
                .blocking_send(sorted(std::mem::take(&mut batch)))
                .is_err()
        {
            // The writer stopped (a store error it reports itself).
            return Ok(skipped);
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(sorted(batch));
    }
    Ok(skipped)
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Counts the compressed bytes read, for the progress bar of a gzip file.
struct CountingReader {
    inner: std::fs::File,
    progress: ProgressBar,
}

impl std::io::Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// The files of a folder to import (each kind's `.jsonl`, or `.jsonl.gz`), and the files left
/// out with the reason.
type Found = (Vec<(RecordKind, PathBuf)>, Vec<(PathBuf, String)>);

fn files_of(dir: &Path) -> anyhow::Result<Found> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let expected: Vec<&str> = RecordKind::ALL.iter().map(|k| k.file_name()).collect();
    let mut present: Vec<(RecordKind, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    for path in names {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = RecordKind::ALL
            .iter()
            .copied()
            .find(|k| name == k.file_name() || name == format!("{}.gz", k.file_name()));
        match kind {
            _ if !path.is_file() => skipped.push((path, "not a file".to_string())),
            None => skipped.push((
                path,
                format!(
                    "not a file of the import format (its files are {}, each may be gzipped as .gz)",
                    expected.join(", ")
                ),
            )),
            Some(kind) => match present.iter().find(|(k, _)| *k == kind) {
                Some((_, first)) => skipped.push((
                    path.clone(),
                    format!(
                        "{} holds {} already: import one of them",
                        dir.display(),
                        first.file_name().unwrap_or_default().to_string_lossy()
                    ),
                )),
                None => present.push((kind, path)),
            },
        }
    }
    present.sort_by_key(|(kind, _)| RecordKind::ALL.iter().position(|k| k == kind));
    Ok((present, skipped))
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
    if !dir.is_dir() {
        anyhow::bail!("{} is not a folder", dir.display());
    }
    let (present, skipped) = files_of(dir)?;
    if present.is_empty() {
        let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.file_name()).collect();
        anyhow::bail!(
            "{} holds none of {} (or their .gz)",
            dir.display(),
            names.join(", ")
        );
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
    Ok(ImportSummary {
        files,
        skipped,
        unlinked,
    })
}

/// Writes the summary for people.
pub fn print_summary(summary: &ImportSummary) {
    for (path, why) in &summary.skipped {
        eprintln!("skipped {}: {why}", path.display());
    }
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
