//! The shared state: the store, the configuration, and the current view of the data.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use flowmeter_core::{Config, PullRequest};
use flowmeter_engine::Snapshot;
use flowmeter_store::Store;

use crate::telemetry::Metrics;

/// A prepared snapshot of the store at one generation.
#[derive(Debug)]
pub struct View {
    pub generation: i64,
    pub snapshot: Snapshot,
    pub pull_requests: Vec<PullRequest>,
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

async fn build_view(store: &Store, config: &Config) -> Result<View, StateError> {
    let started = Instant::now();
    // The generation is read first: a write that lands during the load bumps it again, so the
    // next refresh rebuilds.
    let generation = store.generation().await?;
    let dataset = store.load().await?;
    let config = config.clone();
    let (snapshot, pull_requests) = tokio::task::spawn_blocking(move || {
        Snapshot::build(&dataset, &config).map(|s| (s, dataset.pull_requests))
    })
    .await??;
    let today = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    let data_end = snapshot
        .deployment_span()
        .map(|(_, last)| last.date_naive() + chrono::Duration::days(1))
        .map_or(today, |end| end.min(today));
    Ok(View {
        generation,
        snapshot,
        pull_requests,
        built_at: Instant::now(),
        build_seconds: started.elapsed().as_secs_f64(),
        data_end,
        page_cache: Default::default(),
    })
}

impl AppState {
    /// Loads the store and prepares the first view.
    pub async fn new(store: Store, config: Config) -> Result<AppState, StateError> {
        let view = build_view(&store, &config).await?;
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

    /// Rebuilds the view when the store changed since it was built; returns whether it did.
    pub async fn refresh(&self) -> Result<bool, StateError> {
        let _one_at_a_time = self.inner.rebuild.lock().await;
        let generation = self.inner.store.generation().await?;
        if generation == self.view().generation {
            return Ok(false);
        }
        let view = build_view(&self.inner.store, &self.inner.config).await?;
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
