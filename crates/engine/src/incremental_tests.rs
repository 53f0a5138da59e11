//! The property that lets a server apply changes instead of rebuilding: whatever batches and
//! order records arrive in (history before or after what it completes, records written twice),
//! the snapshot after each batch answers exactly as one prepared from everything at once.

use std::collections::BTreeMap;

use flowmeter_core::{Config, Dataset, Record, Scope, Window};
use flowmeter_synth::random;

use crate::Snapshot;

/// The store's view of the records so far: one per natural key, the last write winning, in
/// key order.
#[derive(Default)]
struct Store {
    records: BTreeMap<(u8, String, String), Record>,
}

impl Store {
    fn write(&mut self, record: &Record) {
        let key = match record {
            Record::Commit(c) => (0, c.repo.clone(), c.sha.clone()),
            Record::PullRequest(p) => (1, p.repo.clone(), format!("{:010}", p.number)),
            Record::Deployment(d) => (2, d.repo.clone(), d.id.clone()),
            Record::Incident(i) => (3, i.key_scope(), i.id.clone()),
            Record::Issue(i) => (4, i.key.clone(), String::new()),
        };
        self.records.insert(key, record.clone());
    }

    fn dataset(&self) -> Dataset {
        let mut d = Dataset::default();
        for r in self.records.values() {
            d.push(r.clone());
        }
        d
    }
}

/// Everything a snapshot answers, by name (never by interned number, which depends on the
/// order records arrived in).
fn answers(s: &Snapshot) -> String {
    let mut out = String::new();
    let windows = [
        Window::parse("2023-12-01", "2024-06-01").unwrap(),
        Window::parse("2024-01-01", "2024-01-15").unwrap(),
        Window::parse("2024-01-10", "2024-02-10").unwrap(),
    ];
    let mut scopes = vec![Scope::default()];
    for repo in random::REPOS {
        scopes.push(Scope {
            repo: Some(repo.into()),
            ..Scope::default()
        });
    }
    for service in ["mono-api", "mono-worker", "checkout"] {
        scopes.push(Scope {
            service: Some(service.into()),
            ..Scope::default()
        });
    }
    scopes.push(Scope {
        team: Some("shop".into()),
        ..Scope::default()
    });
    let now = "2024-06-01T00:00:00Z".parse().unwrap();
    for window in windows {
        for scope in &scopes {
            match s.dora(window, scope) {
                Ok(r) => out.push_str(&r.to_json()),
                Err(e) => out.push_str(&e.to_string()),
            }
            if scope.team.is_some() || *scope == Scope::default() {
                match s.stages(window, scope, now) {
                    Ok(r) => out.push_str(&r.to_json()),
                    Err(e) => out.push_str(&e.to_string()),
                }
            }
        }
        for row in s.weekly(window, &Scope::default()).unwrap() {
            out.push_str(&format!("{row:?}\n"));
        }
    }
    let p = &s.prepared;
    for d in &p.deployments {
        out.push_str(&format!(
            "{} {} {} {} {} {} {} {:?} {}\n",
            d.service,
            d.repo,
            d.id,
            d.sha,
            d.time,
            d.baseline,
            d.failed,
            d.rework_reasons,
            d.changes
        ));
    }
    for c in &p.changes {
        out.push_str(&format!("{:?}\n", s.change(c)));
    }
    for i in &p.incidents {
        out.push_str(&format!("{i:?}\n"));
    }
    let mut pulls: Vec<String> = p
        .pulls
        .iter()
        .map(|pr| {
            let mut row = pr.clone();
            row.repo = 0;
            format!("{:?} {row:?}", s.describe_pull(pr))
        })
        .collect();
    pulls.sort();
    out.push_str(&pulls.join("\n"));
    out.push_str(&format!("{:?} {:?} {:?}", p.linkage, p.repos, p.services));
    out
}

#[test]
fn applying_batches_in_any_order_answers_as_preparing_everything_at_once() {
    let config = Config::from_toml(random::CONFIG, |_| None).unwrap();
    for seed in 0..24 {
        let records = random::records(seed);
        let mut store = Store::default();
        let mut snapshot = Snapshot::build(&Dataset::default(), &config).unwrap();
        for (n, batch) in random::batches(&records, seed).into_iter().enumerate() {
            for r in &batch {
                store.write(r);
            }
            let mut dataset = Dataset::default();
            for r in batch {
                dataset.push(r);
            }
            snapshot = snapshot.apply(&dataset).unwrap();
            let whole = Snapshot::build(&store.dataset(), &config).unwrap();
            let (got, want) = (answers(&snapshot), answers(&whole));
            if got != want {
                let (g, w): (Vec<&str>, Vec<&str>) =
                    (got.lines().collect(), want.lines().collect());
                let at = g
                    .iter()
                    .zip(&w)
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(w.len()));
                let around = |lines: &[&str]| {
                    lines[at.saturating_sub(12)..(at + 3).min(lines.len())].join("\n")
                };
                panic!(
                    "seed {seed}, batch {n}: the applied snapshot differs from the whole one at line {at}:\n{}\n--- whole:\n{}",
                    around(&g),
                    around(&w)
                );
            }
        }
    }
}

#[test]
fn a_batch_prepares_again_only_the_repositories_it_touched() {
    let config = Config::from_toml(random::CONFIG, |_| None).unwrap();
    let all = Snapshot::build(
        &{
            let mut d = Dataset::default();
            for r in random::records(7) {
                d.push(r);
            }
            d
        },
        &config,
    )
    .unwrap();
    let commit = flowmeter_core::Commit {
        repo: "acme/api".into(),
        sha: "fffffffffff".into(),
        parents: vec![],
        authored_at: "2024-02-01T00:00:00Z".parse().unwrap(),
        committed_at: "2024-02-01T00:00:00Z".parse().unwrap(),
        author: None,
        message: Some("late history".into()),
    };
    let next = all
        .apply(&crate::model::batch_of([Record::Commit(commit)]))
        .unwrap();
    let api = all.model().names.get("acme/api").unwrap();
    let mut kept = 0;
    for (key, partition) in &next.prepared.partitions {
        let same = std::sync::Arc::ptr_eq(partition, &all.prepared.partitions[key]);
        assert_eq!(same, !partition.repos.contains(&api), "partition {key}");
        kept += usize::from(same);
    }
    assert!(kept >= 2, "the monorepo and the shop were kept");
}

/// The overview's weekly series comes from one aggregation; each of its points is what a report
/// of that week gives.
#[test]
fn a_series_point_is_its_bucket_s_report() {
    let config = Config::from_toml(random::CONFIG, |_| None).unwrap();
    for seed in [1, 5, 9] {
        let mut d = Dataset::default();
        for r in random::records(seed) {
            d.push(r);
        }
        let s = Snapshot::build(&d, &config).unwrap();
        let start = chrono::NaiveDate::from_ymd_opt(2023, 12, 28).unwrap();
        for scope in [
            Scope::default(),
            Scope {
                team: Some("shop".into()),
                ..Scope::default()
            },
        ] {
            let points = s.series(start, 10, 7, &scope).unwrap();
            for p in points {
                let window = Window {
                    from: p.from,
                    to: p.from + chrono::Duration::days(7),
                };
                let r = s.dora(window, &scope).unwrap();
                assert_eq!(p.deployments, r.deployment_frequency.deployments);
                assert_eq!(p.changes, r.lead_time.changes);
                assert_eq!(p.lead_time_median_hours, r.lead_time.median_hours);
                assert_eq!(p.change_failure_rate(), r.change_failure_rate.rate);
                assert_eq!(p.rework_rate(), r.rework_rate.rate);
                assert_eq!(p.incidents_resolved, r.recovery_time.incidents);
                assert_eq!(p.recovery_median_hours, r.recovery_time.median_hours);
            }
        }
    }
}

/// A snapshot kept as bytes answers, once read back, exactly as the snapshot it was.
#[test]
fn a_kept_snapshot_reads_back_with_every_answer() {
    let config = Config::from_toml(random::CONFIG, |_| None).unwrap();
    for seed in [2, 4] {
        let mut d = Dataset::default();
        for r in random::records(seed) {
            d.push(r);
        }
        let s = Snapshot::build(&d, &config).unwrap();
        let bytes = crate::persist::encode(&s, 9, &config);
        let kept = crate::persist::decode(&bytes, &config).expect("reads back");
        assert_eq!(kept.generation, 9);
        let back = Snapshot::of_kept(
            kept,
            &crate::model::Touched::default(),
            &Default::default(),
            &config,
        )
        .unwrap();
        assert!(answers(&back) == answers(&s), "seed {seed}");
    }
}
