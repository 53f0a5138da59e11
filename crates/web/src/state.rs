//! The shared state: the store, the configuration, and the current view of the data.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use flowmeter_core::Config;
use flowmeter_engine::Snapshot;
use flowmeter_store::Store;

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
    metrics: Metrics,
    /// Answer only requests addressed to this machine by name (see [`AppState::loopback_only`]).
    loopback_only: std::sync::atomic::AtomicBool,
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

/// Opens the engine's snapshot of the store as of its current generation: the model the store
/// keeps (when one was kept under this configuration) with the records written since applied
/// to it, else every record. The kept model is brought up to date when it was missing or more
/// than [`KEEP_AFTER_RECORDS`] records were applied. Polars runs off the async threads.
pub async fn open_snapshot(store: &Store, config: &Config) -> Result<(i64, Snapshot), StateError> {
    let key = flowmeter_engine::persist::key(config);
    let kept = store.engine_snapshot(&key).await?;
    let decoded = match kept {
        Some((_, bytes)) => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || flowmeter_engine::persist::decode(&bytes, &config))
                .await?
        }
        None => None,
    };
    let (generation, batch, model) = match decoded {
        Some((model, since)) => {
            let (generation, batch) = store.read(Some(since)).await?;
            (generation, batch, Some(model))
        }
        None => {
            let (generation, batch) = store.read(None).await?;
            (generation, batch, None)
        }
    };
    let keep = model.is_none() || records_in(&batch) > KEEP_AFTER_RECORDS;
    let config = config.clone();
    let (snapshot, bytes) = tokio::task::spawn_blocking(move || {
        let snapshot = match model {
            Some(model) => Snapshot::of_model(model, &config)?.apply(&batch)?,
            None => Snapshot::build(&batch, &config)?,
        };
        let bytes =
            keep.then(|| flowmeter_engine::persist::encode(snapshot.model(), generation, &config));
        Ok::<_, StateError>((snapshot, bytes))
    })
    .await??;
    if let Some(bytes) = bytes {
        store.put_engine_snapshot(&key, generation, &bytes).await?;
    }
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
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                config,
                current: RwLock::new(Arc::new(view)),
                rebuild: tokio::sync::Mutex::new(()),
                metrics: Metrics::default(),
                loopback_only: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Serving an unguarded API on a loopback address: requests whose `Host` is not this machine
    /// (a DNS-rebinding page in the operator's browser) are refused.
    pub fn loopback_only(&self, on: bool) {
        self.inner
            .loopback_only
            .store(on, std::sync::atomic::Ordering::Relaxed);
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
        Ok(true)
    }

    /// Checks the store every `server.refresh_seconds` and rebuilds the view when it changed.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        let every = Duration::from_secs(u64::from(self.inner.config.server.refresh_seconds));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = state.refresh().await {
                    tracing::error!(error = %e, "refreshing the snapshot failed");
                }
            }
        })
    }
}
