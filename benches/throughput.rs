//! Import throughput on both backends and engine time on a large organisation.
//!
//! Run: `cargo bench -p flowmeter --bench throughput` (see docs/benchmarks.md).
//! `FLOWMETER_BENCH_IMPORT_SCALE` (default M) and `FLOWMETER_BENCH_ENGINE_SCALE` (default L)
//! pick the generated organisations; PostgreSQL is reached through `FLOWMETER_BENCH_PG`
//! (default: the local Unix socket).

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
}

fn engine(c: &mut Criterion) {
    let data = generated(scale("FLOWMETER_BENCH_ENGINE_SCALE", Scale::L));
    let config_text =
        std::fs::read_to_string(data.path().join("flowmeter.toml")).unwrap_or_default();
    let config = Config::from_toml(&config_text, |_| None).expect("generated configuration");
    let started = Instant::now();
    let dataset = load(data.path());
    eprintln!(
        "parsed {} commits etc. in {:.1?}",
        dataset.commits.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let snapshot = Snapshot::build(&dataset, &config).expect("snapshot");
    eprintln!(
        "prepared the snapshot (attribution) in {:.1?}: {} deployments, {} changes",
        started.elapsed(),
        snapshot.prepared.deployments.len(),
        snapshot.prepared.changes.len()
    );
    drop(dataset);
    let first = snapshot
        .prepared
        .deployments
        .iter()
        .map(|d| d.time)
        .min()
        .expect("deployments");
    let last = snapshot
        .prepared
        .deployments
        .iter()
        .map(|d| d.time)
        .max()
        .expect("deployments");
    let window = Window::new(
        first.date_naive(),
        last.date_naive() + chrono::Duration::days(1),
    )
    .expect("window");
    let mut group = c.benchmark_group("engine");
    group.sample_size(20);
    group.bench_function("dora_full_range", |b| {
        b.iter(|| black_box(snapshot.dora(window, &Scope::default()).expect("report")))
    });
    group.finish();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            eprintln!("{line}");
        }
    }
}

criterion_group!(benches, import, engine);
criterion_main!(benches);
