//! The server applies what changed instead of reading the store again: after every batch of
//! records written to a real store (in random order, history older than what the server holds
//! included), the refreshed view answers exactly as a snapshot built from the whole store, on
//! SQLite and PostgreSQL; and a cold process that loads the kept model and the records written
//! since answers the same.

use flowmeter_core::{Config, Dataset, Record, Scope, Window};
use flowmeter_engine::Snapshot;
use flowmeter_store::Store;
use flowmeter_synth::random;
use flowmeter_web::AppState;
use flowmeter_web::state::open_snapshot;

use crate::support::*;

fn answers(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut scopes = vec![
        Scope::default(),
        scope_team("shop"),
        scope_service("mono-api"),
    ];
    scopes.extend(random::REPOS.iter().map(|r| scope_repo(r)));
    for (from, to) in [("2023-12-01", "2024-06-01"), ("2024-01-05", "2024-01-20")] {
        let window = Window::parse(from, to).unwrap();
        for scope in &scopes {
            match s.dora(window, scope) {
                Ok(r) => out.push_str(&r.to_json()),
                Err(e) => out.push_str(&e.to_string()),
            }
        }
        let now = "2024-06-01T00:00:00Z".parse().unwrap();
        out.push_str(&s.stages(window, &Scope::default(), now).unwrap().to_json());
    }
    for c in &s.prepared.changes {
        out.push_str(&format!("{:?}\n", s.change(c)));
    }
    out
}

async fn write(store: &Store, batch: &[Record]) {
    use flowmeter_core::import::RecordKind;
    for kind in RecordKind::ALL {
        let records: Vec<Record> = batch
            .iter()
            .filter(|r| {
                matches!(
                    (kind, r),
                    (RecordKind::Commits, Record::Commit(_))
                        | (RecordKind::PullRequests, Record::PullRequest(_))
                        | (RecordKind::Deployments, Record::Deployment(_))
                        | (RecordKind::Incidents, Record::Incident(_))
                        | (RecordKind::Issues, Record::Issue(_))
                )
            })
            .cloned()
            .collect();
        if !records.is_empty() {
            store.write(kind, &records).await.unwrap();
        }
    }
}

async fn whole(store: &Store, config: &Config) -> String {
    let dataset: Dataset = store.load().await.unwrap();
    let config = config.clone();
    tokio::task::spawn_blocking(move || answers(&Snapshot::build(&dataset, &config).unwrap()))
        .await
        .unwrap()
}

async fn answered(snapshot: Snapshot) -> String {
    tokio::task::spawn_blocking(move || answers(&snapshot))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshed_views_answer_as_the_whole_store_on_both_backends() {
    let config = Config::from_toml(random::CONFIG, |_| None).unwrap();
    let config = &config;
    for seed in [3u64, 11] {
        on_both(|store| async move {
            let state = AppState::new(store.clone(), config.clone()).await.unwrap();
            let batches = random::batches(&random::records(seed), seed);
            let last = batches.len() - 1;
            for (n, batch) in batches.into_iter().enumerate() {
                write(&store, &batch).await;
                if n % 3 != 0 && n != last {
                    continue;
                }
                state.refresh().await.unwrap();
                let view = state.view();
                assert_eq!(view.generation, store.generation().await.unwrap());
                let got = answered(view.snapshot.clone()).await;
                assert!(got == whole(&store, config).await, "seed {seed}, batch {n}");
            }
            // A cold process: the kept model, then what was written since.
            let (_, cold) = open_snapshot(&store, config).await.unwrap();
            assert!(
                answered(cold).await == whole(&store, config).await,
                "cold, seed {seed}"
            );
        })
        .await;
    }
}
