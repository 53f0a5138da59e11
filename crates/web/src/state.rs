//! The shared state: the store, the configuration, and the current view of the data.

use std::sync::{Arc, RwLock};

use futures_util::FutureExt as _;
use std::time::{Duration, Instant};

use flowmeter_core::Config;
use flowmeter_engine::Snapshot;
use flowmeter_store::{CursorStatus, Store};

use crate::telemetry::Metrics;

/// A prepared snapshot of the store at one generation.
#[derive(Debug)]
pub struct View {
    pub generation: i64,
    pub snapshot: Snapshot,
    pub built_at: Instant,
    pub build_seconds: f64,
    /// The day after the latest deployment: where default windows end.
    pub data_end: chrono::NaiveDate,
    /// Rendered pages and report documents of this view by URL: the view never changes, so
    /// neither do they.
    page_cache: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// How many rendered pages a view keeps.
const PAGE_CACHE_ENTRIES: usize = 512;

impl View {
    pub fn cached(&self, key: &str) -> Option<String> {
        self.page_cache
            .lock()
            .expect("page cache")
            .get(key)
            .cloned()
    }

    pub fn remember(&self, key: String, html: String) {
        let mut cache = self.page_cache.lock().expect("page cache");
        if cache.len() >= PAGE_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, html);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] flowmeter_store::StoreError),
    #[error(transparent)]
    Engine(#[from] flowmeter_engine::EngineError),
    #[error("the snapshot task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: Config,
    current: RwLock<Arc<View>>,
    rebuild: tokio::sync::Mutex<()>,
    /// Wakes the refresher: something was written (a push here, a notification from the
    /// store). Many wakes before it runs are one refresh.
    wake: tokio::sync::Notify,
    metrics: Metrics,
    /// Answer only requests addressed to this machine by name (see [`AppState::loopback_only`]).
    loopback_only: std::sync::atomic::AtomicBool,
    /// The workers for engine work (see [`AppState::heavy`]).
    heavy: Arc<tokio::sync::Semaphore>,
    /// Requests waiting for a worker.
    waiting: std::sync::atomic::AtomicUsize,
    /// The key of session cookies (see `auth.rs`).
    pub(crate) session_key: [u8; 32],
    /// The connectors' cursors as last read, and when (see [`AppState::cursors`]).
    cursors: tokio::sync::Mutex<Option<(Instant, Arc<Vec<CursorStatus>>)>>,
    /// Webhook deliveries' rate limit and worker (see `hooks.rs`).
    hooks: crate::hooks::Hooks,
}

/// How long cursors read from the store serve every page and scrape that asks.
const CURSORS_FOR: Duration = Duration::from_secs(5);

/// Requests that may wait for an engine worker per worker; more are answered 503 at once.
const WAITING_PER_WORKER: usize = 16;

/// The engine workers: one per core.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Records applied to a kept model beyond which the model is kept again: re-reading a few
/// changes costs less than writing the whole model.
const KEEP_AFTER_RECORDS: usize = 20_000;

/// How many records a batch holds.
fn records_in(batch: &flowmeter_core::Dataset) -> usize {
    batch.commits.len()
        + batch.pull_requests.len()
        + batch.deployments.len()
        + batch.incidents.len()
        + batch.issues.len()
}

/// How many records are read from the store at a time while opening a snapshot: a full read
/// never holds more than this many records besides the model.
const READ_PART: usize = 50_000;

/// Opens the engine's snapshot of the store as of its current generation: the model the store
/// keeps (when one was kept under this configuration) with the records written since applied
/// to it, else a model of every record. Records stream from the store into the model in parts,
/// reading and applying overlapping, so the records are never all held at once. The kept model
/// is brought up to date when it was missing or more than [`KEEP_AFTER_RECORDS`] records were
/// applied. Polars and the model's work run off the async threads.
pub async fn open_snapshot(store: &Store, config: &Config) -> Result<(i64, Snapshot), StateError> {
    let started = Instant::now();
    let key = flowmeter_engine::persist::key(config);
    let kept = store.engine_snapshot(&key).await?;
    let kept = match kept {
        Some((_, bytes)) => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || flowmeter_engine::persist::decode(&bytes, &config))
                .await?
        }
        None => None,
    };
    tracing::debug!(elapsed = ?started.elapsed(), kept = kept.is_some(), "read the kept snapshot");
    let since = kept.as_ref().map(|k| k.generation);
    let (parts, mut received) = tokio::sync::mpsc::channel::<flowmeter_core::Dataset>(2);
    let applier = tokio::task::spawn_blocking(move || {
        let mut kept = kept;
        let mut model = kept
            .as_mut()
            .map(|k| std::mem::take(&mut k.model))
            .unwrap_or_default();
        let projects = model.projects();
        let mut touched = flowmeter_engine::model::Touched::default();
        let mut applied = 0;
        while let Some(part) = received.blocking_recv() {
            applied += records_in(&part);
            touched.merge(model.apply(&part));
        }
        (kept, model, touched, projects, applied)
    });
    let generation = store.read_each(since, READ_PART, parts).await;
    let (kept, model, touched, projects, applied) = applier.await?;
    let generation = generation?;
    tracing::debug!(elapsed = ?started.elapsed(), applied, "applied the records written since");
    let keep = kept.is_none() || applied > KEEP_AFTER_RECORDS;
    let config = config.clone();
    let (snapshot, bytes) = tokio::task::spawn_blocking(move || {
        let snapshot = match kept {
            Some(mut kept) => {
                kept.model = model;
                Snapshot::of_kept(kept, &touched, &projects, &config)?
            }
            None => Snapshot::of_model(model, &config)?,
        };
        let bytes = keep.then(|| flowmeter_engine::persist::encode(&snapshot, generation, &config));
        Ok::<_, StateError>((snapshot, bytes))
    })
    .await??;
    tracing::debug!(elapsed = ?started.elapsed(), "prepared the snapshot");
    if let Some(bytes) = bytes {
        store.put_engine_snapshot(&key, generation, &bytes).await?;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "opened the snapshot");
    Ok((generation, snapshot))
}

fn view_of(generation: i64, snapshot: Snapshot, started: Instant) -> View {
    let today = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let data_end = snapshot
        .deployment_span()
        .map(|(_, last)| last.date_naive() + chrono::Duration::days(1))
        .map_or(today, |end| end.min(today));
    View {
        generation,
        snapshot,
        built_at: Instant::now(),
        build_seconds: started.elapsed().as_secs_f64(),
        data_end,
        page_cache: Default::default(),
    }
}

impl AppState {
    /// Loads the store and prepares the first view.
    pub async fn new(store: Store, config: Config) -> Result<AppState, StateError> {
        let started = Instant::now();
        let (generation, snapshot) = open_snapshot(&store, &config).await?;
        let view = view_of(generation, snapshot, started);
        let session_key = crate::auth::session_key(&config);
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                config,
                current: RwLock::new(Arc::new(view)),
                rebuild: tokio::sync::Mutex::new(()),
                wake: tokio::sync::Notify::new(),
                metrics: Metrics::default(),
                loopback_only: std::sync::atomic::AtomicBool::new(false),
                heavy: Arc::new(tokio::sync::Semaphore::new(workers())),
                waiting: std::sync::atomic::AtomicUsize::new(0),
                session_key,
                cursors: tokio::sync::Mutex::new(None),
                hooks: crate::hooks::Hooks::default(),
            }),
        })
    }

    /// Serving on a loopback address: requests whose `Host` is not this machine (a DNS-rebinding
    /// page in the operator's browser) or an allowed name are refused.
    pub fn loopback_only(&self, on: bool) {
        self.inner
            .loopback_only
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn inner_session_key(&self) -> [u8; 32] {
        self.inner.session_key
    }

    pub(crate) fn is_loopback_only(&self) -> bool {
        self.inner
            .loopback_only
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The current view; never waits for a rebuild.
    pub fn view(&self) -> Arc<View> {
        self.inner.current.read().expect("view lock").clone()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn hooks(&self) -> &crate::hooks::Hooks {
        &self.inner.hooks
    }

    /// Applies what changed in the store since the view's generation, when anything did;
    /// returns whether it did. Only the records written since are read, and only what they
    /// touched is prepared again.
    pub async fn refresh(&self) -> Result<bool, StateError> {
        let _one_at_a_time = self.inner.rebuild.lock().await;
        let current = self.view();
        if self.inner.store.generation().await? == current.generation {
            return Ok(false);
        }
        let started = Instant::now();
        let (generation, batch) = self.inner.store.read(Some(current.generation)).await?;
        let previous = current.clone();
        let snapshot =
            tokio::task::spawn_blocking(move || previous.snapshot.apply(&batch)).await??;
        let view = view_of(generation, snapshot, started);
        *self.inner.current.write().expect("view lock") = Arc::new(view);
        self.metrics().refreshed();
        Ok(true)
    }

    /// Runs engine work off the async threads on one of a few workers (as many as cores). When
    /// too many requests wait for one, this answers 503 with `Retry-After` at once instead, so
    /// cheap requests (health, pushes) stay fast under a flood of page views. The worker stays
    /// taken until the work is done, even when the request timed out meanwhile.
    pub(crate) async fn heavy<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, crate::error::ApiError> + Send + 'static,
    ) -> Result<T, crate::error::ApiError> {
        use std::sync::atomic::Ordering;
        let limit = workers() * WAITING_PER_WORKER;
        if self.inner.waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            self.inner.waiting.fetch_sub(1, Ordering::SeqCst);
            self.metrics().shed();
            return Err(crate::error::ApiError::busy());
        }
        let permit = self.inner.heavy.clone().acquire_owned().await;
        self.inner.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.map_err(crate::error::ApiError::internal)?;
        tokio::task::spawn_blocking(move || {
            let _worker = permit;
            work()
        })
        .await
        .map_err(crate::error::ApiError::internal)?
    }

    /// The connectors' cursors, read from the store at most once every few seconds however
    /// many pages and scrapes ask (askers meanwhile share the one read); when the store does not
    /// answer, the ones read last (none if never), so pages keep serving.
    pub(crate) async fn cursors(&self) -> Arc<Vec<CursorStatus>> {
        let mut cached = self.inner.cursors.lock().await;
        if let Some((at, cursors)) = cached.as_ref()
            && at.elapsed() < CURSORS_FOR
        {
            return cursors.clone();
        }
        let cursors = match self.inner.store.cursors().await {
            Ok(cursors) => Arc::new(cursors),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the sync cursors; showing the last ones read");
                cached.as_ref().map(|(_, c)| c.clone()).unwrap_or_default()
            }
        };
        *cached = Some((Instant::now(), cursors.clone()));
        cursors
    }

    /// Asks the refresher to apply what was written, soon; wakes that come while it works are
    /// one more refresh, not one each.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Applies what changed whenever woken ([`AppState::wake`]), and checks the store every
    /// `server.refresh_seconds` for writes of other processes. On PostgreSQL it also listens
    /// for the store's change notifications, so other replicas' writes show at once.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        let every = Duration::from_secs(u64::from(self.inner.config.server.refresh_seconds));
        let refresh = async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = state.inner.wake.notified() => {}
                }
                if let Err(e) = state.refresh().await {
                    tracing::error!(error = %e, "refreshing the snapshot failed");
                }
            }
        };
        // One task: aborting it stops listening too.
        tokio::spawn(futures_util::future::join(listen(self.clone()), refresh).map(drop))
    }
}

/// Wakes the refresher on every change notification of the store (PostgreSQL), listening
/// again after a growing pause (at most a minute) when the connection drops.
async fn listen(state: AppState) {
    let mut pause = Duration::from_secs(1);
    loop {
        match state.store().listen().await {
            Ok(Some(mut listener)) => {
                pause = Duration::from_secs(1);
                // A write may have come while not listening.
                state.wake();
                while listener.next().await.is_ok() {
                    state.wake();
                }
                tracing::warn!("the store's change notifications stopped; listening again");
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "cannot listen for store changes; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}
