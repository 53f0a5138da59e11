//! Import throughput on both backends and engine time on a large organisation.
//!
//! Run: `cargo bench -p flowmeter --bench throughput` (see docs/benchmarks.md).
//! `FLOWMETER_BENCH_IMPORT_SCALE` (default M) and `FLOWMETER_BENCH_ENGINE_SCALE` (default L)
//! pick the generated organisations; PostgreSQL is reached through `FLOWMETER_BENCH_PG`
//! (default: the local Unix socket).

// The counting allocator below needs `unsafe impl GlobalAlloc`; it only forwards to the system
// allocator and counts, and it exists only in this benchmark binary.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowmeter_core::import::{RecordKind, parse_line};
use flowmeter_core::{Config, Dataset, Scope, Window};
use flowmeter_engine::Snapshot;
use flowmeter_store::Store;
use flowmeter_synth::Scale;

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// Counts live heap bytes and their peak, so memory figures do not depend on how the system
/// allocator returns pages.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn scale(var: &str, default: Scale) -> Scale {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn generated(scale: Scale) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let summary = flowmeter_synth::generate(scale, 1, dir.path()).expect("generate");
    eprintln!(
        "generated scale {scale} in {:.1?}: {summary:?}",
        started.elapsed()
    );
    dir
}

fn records_in(dir: &Path) -> u64 {
    RecordKind::ALL
        .iter()
        .filter_map(|k| std::fs::read_to_string(dir.join(k.file_name())).ok())
        .map(|text| text.lines().count() as u64)
        .sum()
}

fn load(dir: &Path) -> Dataset {
    let mut dataset = Dataset::default();
    for kind in RecordKind::ALL {
        let Ok(text) = std::fs::read_to_string(dir.join(kind.file_name())) else {
            continue;
        };
        for line in text.lines() {
            dataset.push(parse_line(kind, line).expect("generated lines parse"));
        }
    }
    dataset
}

fn pg_admin() -> String {
    std::env::var("FLOWMETER_BENCH_PG")
        .unwrap_or_else(|_| "postgres:///postgres?host=/var/run/postgresql&user=postgres".into())
}

async fn fresh_store(postgres: bool, scratch: &Path) -> Store {
    let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
    if postgres {
        let admin = sqlx::PgPool::connect(&pg_admin())
            .await
            .expect("PostgreSQL for the benchmark");
        let name = format!("fm_bench_{}_{n}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .expect("drop");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create");
        Store::open(&pg_admin().replacen("/postgres?", &format!("/{name}?"), 1))
            .await
            .expect("open")
    } else {
        Store::open(&format!(
            "sqlite://{}",
            scratch.join(format!("bench-{n}.db")).display()
        ))
        .await
        .expect("open")
    }
}

/// Drops this process's benchmark databases.
async fn drop_bench_databases() {
    let Ok(admin) = sqlx::PgPool::connect(&pg_admin()).await else {
        return;
    };
    let pattern = format!("fm_bench_{}_%", std::process::id());
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(pattern)
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
    for name in names {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await;
    }
}

fn import(c: &mut Criterion) {
    let data = generated(scale("FLOWMETER_BENCH_IMPORT_SCALE", Scale::M));
    let records = records_in(data.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records));
    for (name, postgres) in [("sqlite", false), ("postgres", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || runtime.block_on(fresh_store(postgres, scratch.path())),
                |store| {
                    runtime.block_on(async {
                        let summary = flowmeter::import::import_dir(&store, data.path(), false)
                            .await
                            .expect("import");
                        assert!(summary.ok());
                        store.close().await;
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    runtime.block_on(drop_bench_databases());
}

/// The two halves of an import: parsing lines, and writing parsed records to each backend.
fn import_parts(c: &mut Criterion) {
    let data = generated(scale("FLOWMETER_BENCH_IMPORT_SCALE", Scale::M));
    let files: Vec<(RecordKind, String)> = RecordKind::ALL
        .iter()
        .filter_map(|&k| {
            Some((
                k,
                std::fs::read_to_string(data.path().join(k.file_name())).ok()?,
            ))
        })
        .collect();
    let records: u64 = files
        .iter()
        .map(|(_, text)| text.lines().count() as u64)
        .sum();
    let parsed: Vec<(RecordKind, Vec<flowmeter_core::Record>)> = files
        .iter()
        .map(|(k, text)| {
            (
                *k,
                text.lines()
                    .map(|l| parse_line(*k, l).expect("parses"))
                    .collect(),
            )
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("import_parts");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for (kind, text) in &files {
                for line in text.lines() {
                    black_box(parse_line(*kind, line).expect("parses"));
                }
            }
        })
    });
    for (name, postgres) in [("write_sqlite", false), ("write_postgres", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || runtime.block_on(fresh_store(postgres, scratch.path())),
                |store| {
                    runtime.block_on(async {
                        for (kind, records) in &parsed {
                            store.write(*kind, records).await.expect("write");
                        }
                        store.close().await;
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    runtime.block_on(drop_bench_databases());
}

fn engine(c: &mut Criterion) {
    let data = generated(scale("FLOWMETER_BENCH_ENGINE_SCALE", Scale::L));
    let config_text =
        std::fs::read_to_string(data.path().join("flowmeter.toml")).unwrap_or_default();
    let config = Config::from_toml(&config_text, |_| None).expect("generated configuration");
    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let dataset = load(data.path());
    let with_dataset = LIVE.load(Ordering::Relaxed);
    eprintln!(
        "parsed {} commits etc. in {:.1?}; the dataset holds {}",
        dataset.commits.len(),
        started.elapsed(),
        mib(with_dataset - before)
    );
    PEAK.store(with_dataset, Ordering::Relaxed);
    let started = Instant::now();
    let snapshot = Snapshot::build(&dataset, &config).expect("snapshot");
    let elapsed = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed);
    drop(dataset);
    let snapshot_bytes = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "prepared the snapshot (attribution) in {elapsed:.1?}: {} deployments, {} changes; \
         heap peak {} while preparing (dataset included); the snapshot alone holds {}",
        snapshot.prepared.deployments.len(),
        snapshot.prepared.changes.len(),
        mib(peak - before),
        mib(snapshot_bytes)
    );
    let (first, last) = snapshot.deployment_span().expect("deployments");
    let window = Window::new(
        first.date_naive(),
        last.date_naive() + chrono::Duration::days(1),
    )
    .expect("window");
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let mut group = c.benchmark_group("engine");
    group.sample_size(20);
    group.bench_function("dora_full_range", |b| {
        b.iter(|| black_box(snapshot.dora(window, &Scope::default()).expect("report")))
    });
    let now = chrono::Utc::now();
    group.bench_function("stages_full_range", |b| {
        b.iter(|| {
            black_box(
                snapshot
                    .stages(window, &Scope::default(), now)
                    .expect("stages"),
            )
        })
    });
    group.bench_function("dora_and_stages_full_range", |b| {
        b.iter(|| {
            black_box(snapshot.dora(window, &Scope::default()).expect("report"));
            black_box(
                snapshot
                    .stages(window, &Scope::default(), now)
                    .expect("stages"),
            )
        })
    });
    group.finish();
    eprintln!(
        "heap peak while reporting (snapshot included): {}",
        mib(PEAK.load(Ordering::Relaxed) - before)
    );

    // Keeping up with changes: one pushed deployment applied to the snapshot, against
    // preparing everything again (what a server did for every change before), and the kept
    // bytes a cold process reads instead of every record.
    let repo = snapshot.prepared.deployments[0].repo.clone();
    let mut pushed = Dataset::default();
    pushed.deployments.push(flowmeter_core::Deployment {
        repo,
        id: "bench-push".into(),
        environment: "production".into(),
        sha: "0000000000000000000000000000000000000000".into(),
        status: flowmeter_core::DeploymentStatus::Success,
        created_at: last,
        finished_at: None,
        service: None,
        url: None,
    });
    let mut group = c.benchmark_group("keeping_up");
    group.sample_size(10);
    group.bench_function("apply_one_deployment", |b| {
        b.iter(|| black_box(snapshot.apply(&pushed).expect("apply")))
    });
    group.bench_function("prepare_everything_again", |b| {
        b.iter(|| {
            black_box(Snapshot::of_model(snapshot.model().clone(), &config).expect("prepare"))
        })
    });
    let bytes = flowmeter_engine::persist::encode(&snapshot, 1, &config);
    eprintln!("the kept snapshot takes {}", mib(bytes.len()));
    group.bench_function("encode_kept_snapshot", |b| {
        b.iter(|| black_box(flowmeter_engine::persist::encode(&snapshot, 1, &config)))
    });
    group.bench_function("decode_kept_snapshot", |b| {
        b.iter(|| {
            let kept = flowmeter_engine::persist::decode(&bytes, &config).expect("decodes");
            black_box(
                Snapshot::of_kept(kept, &Default::default(), &Default::default(), &config)
                    .expect("snapshot"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, import, import_parts, engine);
criterion_main!(benches);
