//! Flowmeter's event store: the records of the import format, raw API payloads and sync cursors,
//! on SQLite (embedded, the default) or PostgreSQL, behind one interface.
//!
//! Writes are upserts on natural keys, one transaction per call, and change nothing when the
//! same records arrive again. Bulk writes go through multi-row statements on SQLite and `COPY`
//! on PostgreSQL. The store knows nothing of metrics: it hands the engine a [`Dataset`].

/// One statement on either store with the same values bound: `execute` gives the rows changed,
/// `scalar` the optional first column.
macro_rules! run {
    (execute $store:expr, $sql:expr, $($value:expr),+) => {
        match $store {
            Store::Sqlite(pool) => sqlx::query($sql)$(.bind($value))+
                .execute(pool).await.map(|r| r.rows_affected()),
            Store::Postgres(pool) => sqlx::query(pg($sql))$(.bind($value))+
                .execute(pool).await.map(|r| r.rows_affected()),
        }
    };
    (scalar $store:expr, $sql:expr, $($value:expr),+) => {
        match $store {
            Store::Sqlite(pool) => sqlx::query_scalar($sql)$(.bind($value))+
                .fetch_optional(pool).await,
            Store::Postgres(pool) => sqlx::query_scalar(pg($sql))$(.bind($value))+
                .fetch_optional(pool).await,
        }
    };
}

mod activity;
mod deliveries;
mod digests;
mod pg;
mod rows;
mod sqlite;

pub use activity::IdentityActivity;
pub use deliveries::{Delivery, DeliveryStatus};
pub use digests::{DigestClaim, DigestSend, DigestState, DigestTicket};

use std::str::FromStr;

use flowmeter_core::import::RecordKind;
use flowmeter_core::{Dataset, Record, Timestamp};

/// A failure of the store. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot open {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate {url}: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("{what}: {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot lock the database for its migrations: {0}")]
    Lock(String),
    #[error("stored {table} row is unreadable: {message}")]
    Corrupt {
        table: &'static str,
        message: String,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The PostgreSQL channel every write that changed records notifies (with its generation) when
/// it commits, so every process serving the store applies it at once.
pub const CHANGES_CHANNEL: &str = "flowmeter_changes";

/// The record a row of `table` (read with its `select_sql` columns) holds, on either backend.
macro_rules! decode_record {
    ($kind:expr, $table:expr, $row:expr) => {{
        use sqlx::Row as _;
        let values = $table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, col))| {
                Ok(match col {
                    rows::Col::Text => rows::Val::Text(
                        $row.try_get::<Option<String>, _>(i)?
                            .map(std::borrow::Cow::Owned),
                    ),
                    rows::Col::Int => rows::Val::Int($row.try_get(i)?),
                    rows::Col::Real => rows::Val::Real($row.try_get(i)?),
                    rows::Col::Bool => rows::Val::Bool($row.try_get(i)?),
                    rows::Col::Ts => rows::Val::Ts($row.try_get(i)?),
                })
            })
            .collect::<std::result::Result<Vec<rows::Val>, sqlx::Error>>()
            .map_err(query_error("decode records"))?;
        rows::from_row($kind, values)?
    }};
}
pub(crate) use decode_record;

/// PostgreSQL's placeholders are `$n` where SQLite's are `?n`.
pub(crate) fn pg(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.replace('?', "$"))
}

/// Whole seconds, so that SQLite's text timestamps compare as times.
pub(crate) fn second(t: Timestamp) -> Timestamp {
    chrono::SubsecRound::trunc_subsecs(t, 0)
}

pub(crate) fn query_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open event store.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// What one write did: how many records it was given and how many rows it inserted or changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub received: u64,
    pub changed: u64,
}

enum WriterTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// One open transaction writing records of one kind (see [`Store::writer`]).
pub struct Writer {
    kind: RecordKind,
    tx: WriterTx,
    summary: WriteSummary,
    /// The store generation this write makes, recorded on every row it changes.
    generation: i64,
    /// Indexes dropped because the table was empty when the write began (SQLite), built again
    /// in one pass before it commits.
    deferred: &'static [(&'static str, &'static str)],
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("kind", &self.kind)
            .field("summary", &self.summary)
            .finish()
    }
}

impl Writer {
    /// Upserts a batch. Within a batch the last record of a key wins; a later batch
    /// overwrites what an earlier one wrote.
    pub async fn write(&mut self, records: &[Record]) -> Result<()> {
        let table = rows::table(self.kind);
        let rows = rows::to_rows(self.kind, records, self.generation);
        let changed = match &mut self.tx {
            WriterTx::Sqlite(tx) => sqlite::upsert(tx, table, &rows).await?,
            WriterTx::Postgres(tx) => pg::upsert(tx, table, &rows).await?,
        };
        self.summary.received += records.len() as u64;
        self.summary.changed += changed;
        Ok(())
    }

    /// Makes everything written visible at once, with the store generation this write took.
    /// A write that changed nothing is rolled back, which leaves the generation where it was.
    pub async fn commit(mut self) -> Result<WriteSummary> {
        let changed = self.summary.changed > 0;
        if let (WriterTx::Sqlite(tx), true) = (&mut self.tx, changed) {
            let table = rows::table(self.kind).name;
            for (name, column) in self.deferred {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE INDEX {name} ON {table} ({column})"
                )))
                .execute(&mut **tx)
                .await
                .map_err(query_error("build an index"))?;
            }
        }
        match self.tx {
            WriterTx::Sqlite(tx) if changed => tx.commit().await,
            WriterTx::Sqlite(tx) => tx.rollback().await,
            WriterTx::Postgres(mut tx) if changed => {
                // Delivered when (and only if) the transaction commits.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANGES_CHANNEL)
                    .bind(self.generation.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("notify readers"))?;
                tx.commit().await
            }
            WriterTx::Postgres(tx) => tx.rollback().await,
        }
        .map_err(query_error("commit records"))?;
        Ok(self.summary)
    }
}

/// Notifications of the store's changes (PostgreSQL's `LISTEN`); see [`Store::listen`].
pub struct ChangeListener(sqlx::postgres::PgListener);

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeListener")
    }
}

impl ChangeListener {
    /// Waits for the next write that changed records (of any process).
    pub async fn next(&mut self) -> Result<()> {
        self.0
            .recv()
            .await
            .map(drop)
            .map_err(query_error("listen for changes"))
    }
}

/// A scheduled sync of one source claimed by this process (see [`Store::claim_sync`]): no other
/// process serving the store runs it until [`SyncClaim::finish`], or until this process dies
/// (PostgreSQL releases its lock with the connection; SQLite's claim lapses after its lease).
pub struct SyncClaim {
    source: String,
    hold: ClaimHold,
}

enum ClaimHold {
    Sqlite(sqlx::SqlitePool),
    /// The connection holding the advisory lock, taken out of the pool: dropped, it closes.
    Postgres(sqlx::PgConnection),
}

impl std::fmt::Debug for SyncClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClaim")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The advisory lock key of a source's scheduled sync.
fn sync_lock_key(source: &str) -> i64 {
    let hash = format!("flowmeter sync {source}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    hash as i64
}

impl SyncClaim {
    /// Records that the sync finished (whatever its outcome) and lets others claim it.
    pub async fn finish(self) -> Result<()> {
        let what = "finish a scheduled sync";
        let now = chrono::Utc::now();
        let tail = "ON CONFLICT (source) DO UPDATE SET finished_at = excluded.finished_at, \
                    claimed_until = NULL";
        match self.hold {
            ClaimHold::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO sync_runs (source, finished_at) VALUES (?1, ?2) {tail}"
            )))
            .bind(&self.source)
            .bind(now)
            .execute(&pool)
            .await
            .map(drop),
            ClaimHold::Postgres(mut conn) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO sync_runs (source, finished_at) VALUES ($1, $2) {tail}"
                )))
                .bind(&self.source)
                .bind(now)
                .execute(&mut conn)
                .await
                .map_err(query_error(what))?;
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(sync_lock_key(&self.source))
                    .execute(&mut conn)
                    .await
                    .map(drop)
            }
        }
        .map_err(query_error(what))
    }
}

/// How many records of each kind the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub commits: u64,
    pub pull_requests: u64,
    pub deployments: u64,
    pub incidents: u64,
    pub issues: u64,
}

/// References between stored records that point at nothing (yet): history may arrive later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unlinked {
    pub deployments_with_unknown_commit: u64,
    pub pull_requests_with_unknown_merge_commit: u64,
    pub incidents_with_unknown_deployment: u64,
}

/// Where a connector's incremental sync stands for one scope and resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub cursor: Option<String>,
    pub etag: Option<String>,
}

/// When a connector's cursor for one scope and resource last moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorStatus {
    pub source: String,
    pub scope: String,
    pub resource: String,
    pub updated_at: Timestamp,
}

/// A raw API response body, kept so normalization can be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPayload {
    pub id: String,
    pub source: String,
    pub resource: String,
    pub fetched_at: Timestamp,
    pub etag: Option<String>,
    pub body: String,
}

/// How long a write waits for another process's write to SQLite before it gives up (and a push
/// answers 503 with `Retry-After`): shorter than a request's 30 s, so the answer is the store's.
pub const SQLITE_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The exclusive lock SQLite migrations run under, held until dropped; `None` for an in-memory
/// database, which no other process can see.
async fn sqlite_migration_lock(url: &str) -> Result<Option<std::fs::File>> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(|source| {
        StoreError::Connect {
            url: redact_url(url),
            source,
        }
    })?;
    let database = options.get_filename();
    let name = database.to_string_lossy();
    if name.is_empty() || name.starts_with(':') || url.contains("mode=memory") {
        return Ok(None);
    }
    let mut path = database.as_os_str().to_owned();
    path.push("-migrate.lock");
    let path = std::path::PathBuf::from(path);
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| StoreError::Lock(e.to_string()))?
    .map_err(|e| StoreError::Lock(e.to_string()))?;
    Ok(Some(file))
}

/// A database URL for messages and logs: parsed as a URL, with its user information (user and
/// password, whatever they hold), query and fragment removed. Text that does not parse as a
/// URL is not echoed at all.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if matches!(parsed.scheme(), "sqlite" | "postgres" | "postgresql") => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        _ => "(not a URL)".to_string(),
    }
}

impl Store {
    /// Opens the store at `url` (creating an SQLite file on first use) and runs migrations.
    #[tracing::instrument(skip_all, fields(url = %redact_url(url)))]
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate(url).await?;
        Ok(store)
    }

    /// Opens the store at `url` without running migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        let connect_error = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        if url.starts_with("sqlite:") {
            // The first connection creates the file and turns on WAL, which another process
            // doing the same at once would see as a locked database: one at a time.
            let _lock = sqlite_migration_lock(url).await?;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .map_err(connect_error)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_WRITE_WAIT)
                .foreign_keys(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(connect_error)?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(connect_error)?;
            Ok(Store::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    /// Runs the migrations of this backend that have not run yet.
    ///
    /// PostgreSQL migrations hold an advisory lock; SQLite ones (and the first connection, which
    /// creates the file and turns on WAL) hold an exclusive lock on the file
    /// `<database>-migrate.lock` beside the database, so processes starting together on a fresh
    /// file open and migrate it one after another instead of racing.
    pub async fn migrate(&self, url: &str) -> Result<()> {
        let migrate_error = |source| StoreError::Migrate {
            url: redact_url(url),
            source,
        };
        match self {
            Store::Sqlite(pool) => {
                let _lock = sqlite_migration_lock(url).await?;
                sqlx::migrate!("../../migrations/sqlite")
                    .run(pool)
                    .await
                    .map_err(migrate_error)
            }
            Store::Postgres(pool) => sqlx::migrate!("../../migrations/postgres")
                .run(pool)
                .await
                .map_err(migrate_error),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Listens for writes of any process (PostgreSQL); `None` on SQLite, which has no such
    /// notifications (its readers check the generation instead).
    pub async fn listen(&self) -> Result<Option<ChangeListener>> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(pool) => {
                let what = "listen for changes";
                let mut listener = sqlx::postgres::PgListener::connect_with(pool)
                    .await
                    .map_err(query_error(what))?;
                listener
                    .listen(CHANGES_CHANNEL)
                    .await
                    .map_err(query_error(what))?;
                Ok(Some(ChangeListener(listener)))
            }
        }
    }

    /// Claims the scheduled sync of `source` when it is due: no process serving this store
    /// runs it now, and none finished it within the last `period`. `None` when it is not due.
    /// `lease` bounds how long a claim lasts if its process dies (SQLite).
    pub async fn claim_sync(
        &self,
        source: &str,
        period: std::time::Duration,
        lease: std::time::Duration,
    ) -> Result<Option<SyncClaim>> {
        let what = "claim a scheduled sync";
        let now = chrono::Utc::now();
        let due_before = now - chrono::Duration::from_std(period).unwrap_or(chrono::TimeDelta::MAX);
        match self {
            Store::Sqlite(pool) => {
                let until =
                    now + chrono::Duration::from_std(lease).unwrap_or(chrono::TimeDelta::MAX);
                sqlx::query(
                    "INSERT INTO sync_runs (source) VALUES (?1) ON CONFLICT (source) DO NOTHING",
                )
                .bind(source)
                .execute(pool)
                .await
                .map_err(query_error(what))?;
                let claimed = sqlx::query(
                    "UPDATE sync_runs SET claimed_until = ?2 WHERE source = ?1 \
                     AND (claimed_until IS NULL OR claimed_until < ?3) \
                     AND (finished_at IS NULL OR finished_at <= ?4)",
                )
                .bind(source)
                .bind(until)
                .bind(now)
                .bind(due_before)
                .execute(pool)
                .await
                .map_err(query_error(what))?
                .rows_affected();
                Ok((claimed == 1).then(|| SyncClaim {
                    source: source.to_string(),
                    hold: ClaimHold::Sqlite(pool.clone()),
                }))
            }
            Store::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(query_error(what))?.detach();
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(sync_lock_key(source))
                    .fetch_one(&mut conn)
                    .await
                    .map_err(query_error(what))?;
                if !locked {
                    return Ok(None);
                }
                let finished: Option<Option<Timestamp>> =
                    sqlx::query_scalar("SELECT finished_at FROM sync_runs WHERE source = $1")
                        .bind(source)
                        .fetch_optional(&mut conn)
                        .await
                        .map_err(query_error(what))?;
                if finished.flatten().is_some_and(|f| f > due_before) {
                    // Not due: the connection closes, and the lock with it.
                    return Ok(None);
                }
                Ok(Some(SyncClaim {
                    source: source.to_string(),
                    hold: ClaimHold::Postgres(conn),
                }))
            }
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        let what = "ping the store";
        match self {
            Store::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Store::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
        .map_err(query_error(what))
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(pool) => pool.close().await,
            Store::Postgres(pool) => pool.close().await,
        }
    }

    /// Upserts records of one kind in one transaction: all of them are written, or none.
    /// Records with the same natural key in one call: the last one wins.
    #[tracing::instrument(skip_all, fields(kind = kind.noun(), records = records.len()))]
    pub async fn write(&self, kind: RecordKind, records: &[Record]) -> Result<WriteSummary> {
        let mut writer = self.writer(kind).await?;
        writer.write(records).await?;
        writer.commit().await
    }

    /// Starts one transaction that writes records of one kind, in as many batches as the
    /// caller likes; nothing is visible until [`Writer::commit`], and dropping the writer
    /// writes nothing.
    ///
    /// The transaction takes the next store generation first, which holds other writers until
    /// it ends: generations are then made in the order they become visible, so a reader that
    /// has everything up to generation `g` gets the rest from the rows whose generation is
    /// greater.
    pub async fn writer(&self, kind: RecordKind) -> Result<Writer> {
        let take = "UPDATE store_generation SET value = value + 1 WHERE id = 1 RETURNING value";
        let mut deferred: &'static [(&'static str, &'static str)] = &[];
        let (tx, generation) = match self {
            Store::Sqlite(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(query_error("begin a transaction"))?;
                let generation: i64 = sqlx::query_scalar(take)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query_error("take the next store generation"))?;
                // Into an empty table, building the indexes once at the end is several times
                // faster than keeping them up row by row (scale L: an index on commit times
                // more than doubled the import). Dropped inside this transaction, they are back
                // as they were if it rolls back or the process dies; readers keep seeing them
                // (WAL). Not on PostgreSQL, where dropping an index would block the table's
                // readers until the write commits.
                let table = rows::table(kind);
                let empty: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT NOT EXISTS (SELECT 1 FROM {})",
                    table.name
                )))
                .fetch_one(&mut *tx)
                .await
                .map_err(query_error("look at the table"))?;
                if empty {
                    for (name, _) in table.indexes {
                        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
                            .execute(&mut *tx)
                            .await
                            .map_err(query_error("defer an index"))?;
                    }
                    deferred = table.indexes;
                }
                (WriterTx::Sqlite(tx), generation)
            }
            Store::Postgres(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(query_error("begin a transaction"))?;
                let generation: i64 = sqlx::query_scalar(take)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query_error("take the next store generation"))?;
                (WriterTx::Postgres(tx), generation)
            }
        };
        Ok(Writer {
            kind,
            tx,
            summary: WriteSummary::default(),
            generation,
            deferred,
        })
    }

    /// Reads every record, in natural-key order.
    pub async fn load(&self) -> Result<Dataset> {
        Ok(self.read(None).await?.1)
    }

    /// The store generation and the records written after generation `since` (every record
    /// when `None`), with every tracker status, read in one consistent snapshot of the
    /// database.
    pub async fn read(&self, since: Option<i64>) -> Result<(i64, Dataset)> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
        let (generation, dataset) =
            tokio::join!(self.read_each(since, usize::MAX, sender), async {
                let mut all = Dataset::default();
                while let Some(part) = receiver.recv().await {
                    all.commits.extend(part.commits);
                    all.pull_requests.extend(part.pull_requests);
                    all.deployments.extend(part.deployments);
                    all.incidents.extend(part.incidents);
                    all.issues.extend(part.issues);
                    all.status_categories.extend(part.status_categories);
                }
                all
            });
        Ok((generation?, dataset))
    }

    /// Like [`Store::read`], but sends the records in parts of at most `size` records as it
    /// reads them (the tracker statuses with the last part), so a reader never holds them all;
    /// returns the generation they reflect.
    #[tracing::instrument(skip_all, fields(since))]
    pub async fn read_each(
        &self,
        since: Option<i64>,
        size: usize,
        parts: tokio::sync::mpsc::Sender<Dataset>,
    ) -> Result<i64> {
        let closed = || StoreError::Query {
            what: "hand over records",
            source: sqlx::Error::PoolClosed,
        };
        // The same decoding on either backend; only the row type and placeholders differ.
        macro_rules! read_records {
            ($tx:expr, $placeholder:literal) => {{
                use futures_util::TryStreamExt as _;
                let generation: i64 =
                    sqlx::query_scalar("SELECT value FROM store_generation WHERE id = 1")
                        .fetch_one(&mut *$tx)
                        .await
                        .map_err(query_error("read the store generation"))?;
                let mut dataset = Dataset::default();
                let mut held = 0usize;
                for kind in RecordKind::ALL {
                    let table = rows::table(kind);
                    let sql = match since {
                        Some(_) => table.changed_sql($placeholder),
                        None => table.select_sql(),
                    };
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    if let Some(since) = since {
                        query = query.bind(since);
                    }
                    let mut stream = query.fetch(&mut *$tx);
                    while let Some(row) = stream
                        .try_next()
                        .await
                        .map_err(query_error("read records"))?
                    {
                        dataset.push(decode_record!(kind, table, row));
                        held += 1;
                        if held >= size {
                            parts
                                .send(std::mem::take(&mut dataset))
                                .await
                                .map_err(|_| closed())?;
                            held = 0;
                        }
                    }
                }
                let statuses: Vec<(String, String)> =
                    sqlx::query_as("SELECT name, category FROM tracker_statuses")
                        .fetch_all(&mut *$tx)
                        .await
                        .map_err(query_error("read tracker statuses"))?;
                dataset.status_categories = statuses.into_iter().collect();
                parts.send(dataset).await.map_err(|_| closed())?;
                generation
            }};
        }
        let generation = match self {
            Store::Sqlite(pool) => {
                // A read transaction sees one state of the file (WAL).
                let mut tx = pool.begin().await.map_err(query_error("begin a read"))?;
                let read = read_records!(tx, "?1");
                tx.commit().await.map_err(query_error("end a read"))?;
                read
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(query_error("begin a read"))?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("begin a read"))?;
                let read = read_records!(tx, "$1");
                tx.commit().await.map_err(query_error("end a read"))?;
                read
            }
        };
        Ok(generation)
    }

    /// The engine's kept model under `key`: the generation it reflects and its bytes.
    pub async fn engine_snapshot(&self, key: &str) -> Result<Option<(i64, Vec<u8>)>> {
        let what = "read the engine's snapshot";
        match self {
            Store::Sqlite(pool) => {
                sqlx::query_as("SELECT generation, body FROM engine_snapshots WHERE key = ?1")
                    .bind(key)
                    .fetch_optional(pool)
                    .await
            }
            Store::Postgres(pool) => {
                sqlx::query_as("SELECT generation, body FROM engine_snapshots WHERE key = $1")
                    .bind(key)
                    .fetch_optional(pool)
                    .await
            }
        }
        .map_err(query_error(what))
    }

    /// Keeps the engine's model under `key`, unless a newer one is kept already.
    pub async fn put_engine_snapshot(&self, key: &str, generation: i64, body: &[u8]) -> Result<()> {
        let what = "keep the engine's snapshot";
        let now = chrono::Utc::now();
        let tail = "ON CONFLICT (key) DO UPDATE SET generation = excluded.generation, \
                    written_at = excluded.written_at, body = excluded.body \
                    WHERE engine_snapshots.generation <= excluded.generation";
        // One snapshot a store: one kept under another key (an older format, another
        // configuration) is dropped.
        macro_rules! put {
            ($pool:expr, $insert:literal, $drop:literal) => {{
                let mut tx = $pool.begin().await.map_err(query_error(what))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("{} {tail}", $insert)))
                    .bind(key)
                    .bind(generation)
                    .bind(now)
                    .bind(body)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(what))?;
                sqlx::query($drop)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(what))?;
                tx.commit().await.map_err(query_error(what))
            }};
        }
        match self {
            Store::Sqlite(pool) => put!(
                pool,
                "INSERT INTO engine_snapshots (key, generation, written_at, body) VALUES (?1, ?2, ?3, ?4)",
                "DELETE FROM engine_snapshots WHERE key <> ?1"
            ),
            Store::Postgres(pool) => put!(
                pool,
                "INSERT INTO engine_snapshots (key, generation, written_at, body) VALUES ($1, $2, $3, $4)",
                "DELETE FROM engine_snapshots WHERE key <> $1"
            ),
        }
    }

    /// The tracker's category of each status, by status name.
    pub async fn status_categories(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let sql = "SELECT name, category FROM tracker_statuses";
        let rows: Vec<(String, String)> = match self {
            Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .map_err(query_error("read tracker statuses"))?;
        Ok(rows.into_iter().collect())
    }

    /// Records the category of tracker statuses (upserts by name) in one transaction; bumps the
    /// store generation when any changed. Returns how many changed.
    pub async fn put_status_categories(&self, statuses: &[(String, String)]) -> Result<u64> {
        let what = "write tracker statuses";
        let bump = "UPDATE store_generation SET value = value + 1 WHERE id = 1";
        let upsert_tail = "ON CONFLICT (name) DO UPDATE SET category = excluded.category \
                           WHERE tracker_statuses.category <> excluded.category";
        // The same statements on either backend; only the placeholders differ.
        macro_rules! upsert_all {
            ($pool:expr, $values:literal) => {{
                let mut tx = $pool.begin().await.map_err(query_error(what))?;
                let mut changed = 0;
                for (name, category) in statuses {
                    changed += sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO tracker_statuses (name, category) VALUES {} {upsert_tail}",
                        $values
                    )))
                    .bind(name)
                    .bind(category)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(what))?
                    .rows_affected();
                }
                if changed > 0 {
                    sqlx::query(bump)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error(what))?;
                }
                tx.commit().await.map_err(query_error(what))?;
                changed
            }};
        }
        let changed = match self {
            Store::Sqlite(pool) => upsert_all!(pool, "(?1, ?2)"),
            Store::Postgres(pool) => upsert_all!(pool, "($1, $2)"),
        };
        Ok(changed)
    }

    pub async fn counts(&self) -> Result<Counts> {
        let mut counts = Counts::default();
        for kind in RecordKind::ALL {
            let sql = rows::table(kind).count_sql();
            let n: i64 = match self {
                Store::Sqlite(pool) => {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(pool)
                        .await
                }
                Store::Postgres(pool) => {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(pool)
                        .await
                }
            }
            .map_err(query_error("count records"))?;
            let n = n as u64;
            match kind {
                RecordKind::Commits => counts.commits = n,
                RecordKind::PullRequests => counts.pull_requests = n,
                RecordKind::Deployments => counts.deployments = n,
                RecordKind::Incidents => counts.incidents = n,
                RecordKind::Issues => counts.issues = n,
            }
        }
        Ok(counts)
    }

    /// Counts references that point at records the store does not hold.
    pub async fn unlinked(&self) -> Result<Unlinked> {
        let scalar = |sql: &'static str| async move {
            let n: i64 = match self {
                Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
                Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            }
            .map_err(query_error("count unlinked records"))?;
            Ok::<u64, StoreError>(n as u64)
        };
        Ok(Unlinked {
            deployments_with_unknown_commit: scalar(
                "SELECT COUNT(*) FROM deployments d WHERE NOT EXISTS \
                 (SELECT 1 FROM commits c WHERE c.repo = d.repo AND c.sha = d.sha)",
            )
            .await?,
            pull_requests_with_unknown_merge_commit: scalar(
                "SELECT COUNT(*) FROM pull_requests p WHERE p.merged_at IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM commits c WHERE c.repo = p.repo AND c.sha = p.merge_commit_sha)",
            )
            .await?,
            incidents_with_unknown_deployment: scalar(
                "SELECT COUNT(*) FROM incidents i WHERE i.deployment_id IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM deployments d WHERE d.id = i.deployment_id \
                  AND (i.repo IS NULL OR d.repo = i.repo))",
            )
            .await?,
        })
    }

    /// A number that grows with every write that changed records.
    pub async fn generation(&self) -> Result<i64> {
        let sql = "SELECT value FROM store_generation WHERE id = 1";
        match self {
            Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .map_err(query_error("read the store generation"))
    }

    /// Every sync cursor with when it last moved, for sync status.
    pub async fn cursors(&self) -> Result<Vec<CursorStatus>> {
        type Row = (String, String, String, Timestamp);
        let sql = "SELECT source, scope, resource, updated_at FROM sync_cursors ORDER BY source, scope, resource";
        let rows: Vec<Row> = match self {
            Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .map_err(query_error("read sync cursors"))?;
        Ok(rows
            .into_iter()
            .map(|(source, scope, resource, updated_at)| CursorStatus {
                source,
                scope,
                resource,
                updated_at,
            })
            .collect())
    }

    pub async fn cursor(
        &self,
        source: &str,
        scope: &str,
        resource: &str,
    ) -> Result<Option<Cursor>> {
        let what = "read a sync cursor";
        let row: Option<(Option<String>, Option<String>)> = match self {
            Store::Sqlite(pool) => {
                sqlx::query_as("SELECT cursor, etag FROM sync_cursors WHERE source = ?1 AND scope = ?2 AND resource = ?3")
                    .bind(source).bind(scope).bind(resource).fetch_optional(pool).await
            }
            Store::Postgres(pool) => {
                sqlx::query_as("SELECT cursor, etag FROM sync_cursors WHERE source = $1 AND scope = $2 AND resource = $3")
                    .bind(source).bind(scope).bind(resource).fetch_optional(pool).await
            }
        }
        .map_err(query_error(what))?;
        Ok(row.map(|(cursor, etag)| Cursor { cursor, etag }))
    }

    pub async fn set_cursor(
        &self,
        source: &str,
        scope: &str,
        resource: &str,
        cursor: &Cursor,
    ) -> Result<()> {
        let now = chrono::Utc::now();
        let what = "write a sync cursor";
        let sql_tail = "ON CONFLICT (source, scope, resource) DO UPDATE SET cursor = excluded.cursor, etag = excluded.etag, updated_at = excluded.updated_at";
        match self {
            Store::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO sync_cursors (source, scope, resource, cursor, etag, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) {sql_tail}")))
                .bind(source).bind(scope).bind(resource).bind(&cursor.cursor).bind(&cursor.etag).bind(now)
                .execute(pool).await.map(drop),
            Store::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO sync_cursors (source, scope, resource, cursor, etag, updated_at) VALUES ($1, $2, $3, $4, $5, $6) {sql_tail}")))
                .bind(source).bind(scope).bind(resource).bind(&cursor.cursor).bind(&cursor.etag).bind(now)
                .execute(pool).await.map(drop),
        }
        .map_err(query_error(what))
    }

    /// Keeps a raw payload; the same id again replaces the body.
    pub async fn put_raw(&self, raw: &RawPayload) -> Result<()> {
        let what = "archive a raw payload";
        let sql_tail = "ON CONFLICT (id) DO UPDATE SET source = excluded.source, resource = excluded.resource, fetched_at = excluded.fetched_at, etag = excluded.etag, body = excluded.body";
        match self {
            Store::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO raw_payloads (id, source, resource, fetched_at, etag, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6) {sql_tail}")))
                .bind(&raw.id).bind(&raw.source).bind(&raw.resource).bind(raw.fetched_at).bind(&raw.etag).bind(&raw.body)
                .execute(pool).await.map(drop),
            Store::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO raw_payloads (id, source, resource, fetched_at, etag, body) VALUES ($1, $2, $3, $4, $5, $6) {sql_tail}")))
                .bind(&raw.id).bind(&raw.source).bind(&raw.resource).bind(raw.fetched_at).bind(&raw.etag).bind(&raw.body)
                .execute(pool).await.map(drop),
        }
        .map_err(query_error(what))
    }

    /// The raw payloads of one source, in id order.
    pub async fn raw_payloads(&self, source: &str) -> Result<Vec<RawPayload>> {
        let sql = "SELECT id, source, resource, fetched_at, etag, body FROM raw_payloads WHERE source = ?1 ORDER BY id";
        let rows: Vec<RawRow> = match self {
            Store::Sqlite(pool) => sqlx::query_as(sql).bind(source).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_as(pg(sql)).bind(source).fetch_all(pool).await,
        }
        .map_err(query_error("read raw payloads"))?;
        Ok(rows.into_iter().map(RawPayload::from).collect())
    }
}

/// A row of `raw_payloads`, in column order.
pub(crate) type RawRow = (String, String, String, Timestamp, Option<String>, String);

impl From<RawRow> for RawPayload {
    fn from((id, source, resource, fetched_at, etag, body): RawRow) -> Self {
        RawPayload {
            id,
            source,
            resource,
            fetched_at,
            etag,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_survive_redaction() {
        let cases = [
            ("postgres://app:secret@db/x", "postgres://db/x"),
            ("postgres://app:p@ss@db/x", "postgres://db/x"),
            (
                "postgres://app@db/x?password=secret&sslmode=require",
                "postgres://db/x",
            ),
            (
                "postgres:///flowmeter?host=/var/run/postgresql",
                "postgres:///flowmeter",
            ),
            ("sqlite://flowmeter.db", "sqlite://flowmeter.db"),
            ("app:secret@db/x", "(not a URL)"),
            // A '/' or '?' in a password ends the authority early for any URL parser: what
            // follows must not be echoed either.
            ("postgres://app:Sup3r/Secr3t@db.invalid/x", "(not a URL)"),
            ("postgres://app:Sup?3r@db.invalid/x", "(not a URL)"),
            (
                "postgres://app:S%2Fcr3t@db.invalid:5432/x",
                "postgres://db.invalid:5432/x",
            ),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
            for secret in ["secret", "Secr3t", "Sup3r", "Sup?3r", "S%2Fcr3t", "p@ss"] {
                assert!(!redact_url(url).contains(secret), "{url}");
            }
        }
    }
}
