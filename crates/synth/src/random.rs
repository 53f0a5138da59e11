//! Small random histories for property tests: every shape the metric rules distinguish (merge
//! commits, squash merges, monorepo services, one service over two repositories, failed
//! attempts, duplicate ids, reverts, rollbacks, fixes, incidents by repository, by service and
//! by deployment id, tracker issues with status histories), in records that arrive in batches
//! in any order, some written twice with other values.

use chrono::{DateTime, Duration, Utc};
use flowmeter_core::{
    Commit, Deployment, DeploymentStatus, Incident, Issue, PullRequest, Record, Review, Transition,
};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

/// The configuration the random histories are meant for: a monorepo with two services and one
/// service over two repositories.
pub const CONFIG: &str = r#"
[[services]]
name = "mono-api"
repos = ["acme/mono"]
deployments = ["api-*"]
[[services]]
name = "mono-worker"
repos = ["acme/mono"]
deployments = ["worker-*"]
[[services]]
name = "checkout"
repos = ["acme/shop", "acme/shop-worker"]
[[teams]]
name = "shop"
services = ["checkout"]
repos = ["acme/api"]
"#;

/// The repositories of a random history.
pub const REPOS: [&str; 4] = ["acme/api", "acme/mono", "acme/shop", "acme/shop-worker"];

fn at(base: DateTime<Utc>, hours: i64) -> DateTime<Utc> {
    base + Duration::hours(hours)
}

/// A random history of a few repositories (a few hundred records).
pub fn records(seed: u64) -> Vec<Record> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().expect("a time");
    let mut out = Vec::new();
    let mut incident_n = 0;
    let keys: Vec<String> = (1..=6).map(|n| format!("PAY-{n}")).collect();
    for (r, repo) in REPOS.iter().enumerate() {
        // Commits: a main line with side branches merged back, some subjects that matter.
        let mut main: Vec<(String, i64)> = Vec::new();
        let mut all: Vec<(String, i64)> = Vec::new();
        let n = rng.random_range(6..18);
        let mut hour = 0i64;
        for i in 0..n {
            hour += rng.random_range(1..20);
            let sha = format!("{r}{i:03}{:08x}", rng.random::<u32>());
            let subject = match rng.random_range(0..10) {
                0 => "hotfix: retry".to_string(),
                1 => match main.last() {
                    Some((prev, _)) => format!("Revert \"change {prev}\""),
                    None => "change".into(),
                },
                2 => format!("{} work", keys[rng.random_range(0..keys.len())]),
                _ => format!("change {sha}"),
            };
            let mut parents: Vec<String> =
                main.last().map(|(s, _)| s.clone()).into_iter().collect();
            if main.len() > 2 && rng.random_bool(0.15) {
                // A merge of an earlier commit (a side branch).
                let side = &all[rng.random_range(0..all.len())].0;
                if !parents.contains(side) {
                    parents.push(side.clone());
                }
            }
            let message = if subject.starts_with("Revert") && rng.random_bool(0.5) {
                format!(
                    "{subject}\n\nThis reverts commit {}.",
                    parents.first().cloned().unwrap_or_default()
                )
            } else {
                subject
            };
            out.push(Record::Commit(Commit {
                repo: repo.to_string(),
                sha: sha.clone(),
                parents,
                authored_at: at(base, hour - rng.random_range(0..5)),
                committed_at: at(base, hour),
                author: Some(format!("dev{}", rng.random_range(0..4))),
                message: Some(message),
            }));
            all.push((sha.clone(), hour));
            if rng.random_bool(0.85) {
                main.push((sha, hour));
            }
        }
        // Pull requests over main commits (squash-like when their own commits are elsewhere).
        for (number, (sha, hour)) in main.iter().enumerate() {
            if rng.random_bool(0.5) {
                continue;
            }
            let own: Vec<String> = if rng.random_bool(0.3) {
                vec![format!("{sha}-branch")]
            } else {
                vec![sha.clone()]
            };
            let labels: Vec<String> = match rng.random_range(0..6) {
                0 => vec!["bug".into()],
                1 => vec!["incident".into()],
                _ => vec![],
            };
            let created = at(base, hour - rng.random_range(1..30));
            let reviews = (0..rng.random_range(0..3))
                .map(|k| Review {
                    reviewer: ["ann", "bob", "dependabot[bot]"][k % 3].into(),
                    state: "APPROVED".into(),
                    submitted_at: created + Duration::minutes(rng.random_range(0..2000)),
                })
                .collect();
            out.push(Record::PullRequest(PullRequest {
                repo: repo.to_string(),
                number: number as u64 + 1,
                created_at: created,
                title: Some(format!(
                    "{} pull {number}",
                    keys[rng.random_range(0..keys.len())]
                )),
                author: Some(["ann", "bob", "cy"][rng.random_range(0..3)].into()),
                draft: rng.random_bool(0.2),
                ready_at: rng.random_bool(0.2).then(|| created + Duration::hours(1)),
                merged_at: Some(at(base, *hour)),
                closed_at: Some(at(base, *hour)),
                base_branch: Some("main".into()),
                head_branch: Some(if rng.random_bool(0.2) {
                    "hotfix/x".into()
                } else {
                    format!("feature-{number}")
                }),
                head_sha: None,
                merge_commit_sha: Some(sha.clone()),
                commits: own,
                additions: None,
                deletions: None,
                labels,
                reviews,
            }));
        }
        // Deployments of main commits in order, with failed attempts, rollbacks and retries.
        let mut deployed = 0;
        let mut d_hour = 0i64;
        for d in 0..rng.random_range(3..10) {
            d_hour += rng.random_range(2..40);
            let pick = if d > 1 && rng.random_bool(0.15) {
                rng.random_range(0..=deployed)
            } else {
                deployed = (deployed + rng.random_range(0..4)).min(main.len().saturating_sub(1));
                deployed
            };
            let Some((sha, hour)) = main.get(pick) else {
                break;
            };
            let time = at(base, (*hour).max(d_hour) + 1);
            let id = match *repo {
                "acme/mono" if rng.random_bool(0.5) => format!("api-{d}"),
                "acme/mono" => format!("worker-{d}"),
                _ => format!("{}", 1000 + d),
            };
            let status = match rng.random_range(0..8) {
                0 => DeploymentStatus::Failure,
                1 => DeploymentStatus::InProgress,
                _ => DeploymentStatus::Success,
            };
            out.push(Record::Deployment(Deployment {
                repo: repo.to_string(),
                id,
                environment: if rng.random_bool(0.9) {
                    "production"
                } else {
                    "staging"
                }
                .into(),
                sha: if rng.random_bool(0.05) {
                    "0000000unknown".into()
                } else {
                    sha.clone()
                },
                status,
                created_at: time - Duration::minutes(10),
                finished_at: rng.random_bool(0.9).then_some(time),
                service: None,
                url: None,
            }));
        }
        // Incidents of the repository, some of a service, some naming a deployment.
        for _ in 0..rng.random_range(0..4) {
            incident_n += 1;
            let created = at(base, rng.random_range(0..d_hour.max(2)));
            let (repo_field, service) = match rng.random_range(0..4) {
                0 => (None, Some("checkout".to_string())),
                1 if *repo == "acme/mono" => (Some(repo.to_string()), Some("mono-api".into())),
                _ => (Some(repo.to_string()), None),
            };
            out.push(Record::Incident(Incident {
                repo: repo_field,
                service,
                id: format!("INC-{incident_n}"),
                created_at: created,
                resolved_at: rng
                    .random_bool(0.8)
                    .then(|| created + Duration::minutes(rng.random_range(5..3000))),
                title: Some("down".into()),
                severity: None,
                deployment_id: rng.random_bool(0.2).then(|| "1001".into()),
                url: None,
            }));
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let created = at(base, rng.random_range(0..100));
        let mut t = created;
        let transitions = (0..rng.random_range(0..5))
            .map(|_| {
                t += Duration::hours(rng.random_range(1..30));
                Transition {
                    at: t,
                    from: None,
                    to: ["In Progress", "In Review", "To Do", "Done"][rng.random_range(0..4)]
                        .into(),
                }
            })
            .collect();
        out.push(Record::Issue(Issue {
            key: key.clone(),
            project: "PAY".into(),
            issue_type: ["Story", "Bug", "Incident"][i % 3].into(),
            created_at: created,
            summary: None,
            status: None,
            epic: None,
            parent: None,
            assignee: None,
            labels: vec![],
            story_points: None,
            resolved_at: None,
            transitions,
        }));
    }
    out
}

/// The records in random batches and order; some are written twice, first with other values
/// (a later write of the same key wins, as in the store).
pub fn batches(records: &[Record], seed: u64) -> Vec<Vec<Record>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut all: Vec<Record> = records.to_vec();
    all.shuffle(&mut rng);
    let mut stream: Vec<Record> = Vec::new();
    for record in all {
        if rng.random_bool(0.1) {
            stream.push(altered(&record));
        }
        stream.push(record);
    }
    let mut out = Vec::new();
    while !stream.is_empty() {
        let take = rng.random_range(1..=stream.len().min(40));
        out.push(stream.drain(..take).collect());
    }
    out
}

/// The same record (same key) with other values.
fn altered(record: &Record) -> Record {
    let mut r = record.clone();
    match &mut r {
        Record::Commit(c) => {
            c.message = Some("hotfix: an earlier message".into());
            c.parents.clear();
        }
        Record::PullRequest(p) => {
            p.labels = vec!["incident".into()];
            p.merged_at = None;
        }
        Record::Deployment(d) => d.status = DeploymentStatus::Failure,
        Record::Incident(i) => i.resolved_at = None,
        Record::Issue(i) => i.issue_type = "Incident".into(),
    }
    r
}
