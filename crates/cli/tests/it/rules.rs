//! One test per rule of the metric definitions (docs/metrics.md), each with a hand-computed
//! expectation, each run on SQLite and PostgreSQL through the real import path.

use flowmeter_core::{Config, Scope};
use flowmeter_engine::Tier;
use serde_json::json;

use crate::support::*;

const R: &str = "acme/api";

/// c1 <- c2 <- c3; the first deployment (c1) is a baseline, the second delivers c2 and c3.
fn linear_history() -> Org {
    let mut org = Org::default();
    org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
        .commit(R, "c2", &["c1"], "2024-03-02T00:00:00Z", "add a")
        .commit(R, "c3", &["c2"], "2024-03-02T12:00:00Z", "add b")
        .deploy(R, "d1", "c1", "2024-03-01T12:00:00Z")
        .deploy(R, "d2", "c3", "2024-03-03T00:00:00Z");
    org
}

#[tokio::test]
async fn first_deployment_is_a_baseline() {
    on_both(|store| async move {
        linear_history().import(&store).await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        // d1 delivers nothing; d2 delivers c2 (24 h) and c3 (12 h), not c1.
        assert_eq!(r.lead_time.changes, 2);
        close(r.lead_time.median_hours, 18.0);
        // p90 at position (2 - 1) * 0.9 = 0.9: 12 + 0.9 * (24 - 12) = 22.8.
        close(r.lead_time.p90_hours, 22.8);
        assert_eq!(r.lead_time.tier, Some(Tier::Elite));
        // Both deployments count for frequency: 2 * 7 / 7 days.
        assert_eq!(r.deployment_frequency.deployments, 2);
        close(Some(r.deployment_frequency.per_week), 2.0);
        // One whole bucket (03-01..03-07) with deploys on 03-01 and 03-03.
        close(r.deployment_frequency.deploy_days_per_week_median, 2.0);
        assert_eq!(r.deployment_frequency.tier, Some(Tier::High));
    })
    .await;
}

#[tokio::test]
async fn deploy_days_per_week_counts_distinct_days_in_whole_buckets() {
    on_both(|store| async move {
        let mut org = Org::default();
        let times = [
            "2024-02-20T00:00:00Z",
            "2024-03-01T09:00:00Z",
            "2024-03-01T17:00:00Z",
            "2024-03-02T23:59:59Z",
            "2024-03-10T10:00:00Z",
            "2024-03-15T10:00:00Z",
        ];
        let mut parents: Vec<String> = Vec::new();
        for (i, at) in times.iter().enumerate() {
            let sha = format!("c{i}");
            let p: Vec<&str> = parents.iter().map(String::as_str).collect();
            org.commit(R, &sha, &p, at, "work")
                .deploy(R, &format!("d{i}"), &sha, at);
            parents = vec![sha];
        }
        org.import(&store).await;
        // 15 days: buckets 03-01..03-07 (days 03-01 and 03-02: 2) and 03-08..03-14 (03-10: 1);
        // the last partial bucket (03-15) is dropped. Median of [2, 1] = 1.5.
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-16",
            Scope::default(),
        )
        .await;
        assert_eq!(r.deployment_frequency.deployments, 5);
        close(Some(r.deployment_frequency.per_week), 5.0 * 7.0 / 15.0);
        close(r.deployment_frequency.deploy_days_per_week_median, 1.5);
    })
    .await;
}

#[tokio::test]
async fn merge_commits_are_not_changes() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(R, "f1", &["c1"], "2024-03-01T06:00:00Z", "feature")
            .commit(
                R,
                "m1",
                &["c1", "f1"],
                "2024-03-02T00:00:00Z",
                "Merge pull request #1",
            )
            .deploy(R, "d1", "c1", "2024-03-01T01:00:00Z")
            .deploy(R, "d2", "m1", "2024-03-02T06:00:00Z");
        org.import(&store).await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        // Only f1 is a change: 2024-03-02T06:00 - 2024-03-01T06:00 = 24 h.
        assert_eq!(r.lead_time.changes, 1);
        close(r.lead_time.median_hours, 24.0);
        close(r.lead_time.p90_hours, 24.0);
    })
    .await;
}

#[tokio::test]
async fn squash_merge_starts_at_first_pr_commit() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
            // PR 7's own commits, on a branch that main never contains.
            .commit(R, "p1", &["c1"], "2024-03-01T00:00:00Z", "wip")
            .commit(R, "p2", &["p1"], "2024-03-01T06:00:00Z", "wip 2")
            // The squash commit on main, authored when the PR was merged.
            .commit(R, "s1", &["c1"], "2024-03-02T00:00:00Z", "Add search (#7)")
            // PR 8 was squashed too, but its commits never reached the store.
            .commit(R, "s2", &["s1"], "2024-03-02T12:00:00Z", "Add filters (#8)")
            // PR 9 was rebased: its own commit is on main, so its own time counts.
            .commit(R, "r1", &["s2"], "2024-03-03T00:00:00Z", "Fix typo")
            .deploy(R, "d1", "c1", "2024-03-01T01:00:00Z")
            .deploy(R, "d2", "s1", "2024-03-03T00:00:00Z")
            .deploy(R, "d3", "r1", "2024-03-04T00:00:00Z");
        let pr = |number: u64, created: &str, merged: &str, merge_sha: &str, commits: &[&str]| {
            json!({"repo": R, "number": number, "created_at": created, "merged_at": merged,
                   "merge_commit_sha": merge_sha, "commits": commits})
        };
        org.pull_requests = vec![
            pr(
                7,
                "2024-03-01T07:00:00Z",
                "2024-03-02T00:00:00Z",
                "s1",
                &["p1", "p2"],
            ),
            pr(
                8,
                "2024-03-02T06:00:00Z",
                "2024-03-02T12:00:00Z",
                "s2",
                &["ffff01"],
            ),
            pr(
                9,
                "2024-03-03T01:00:00Z",
                "2024-03-03T02:00:00Z",
                "r1",
                &["r1"],
            ),
        ];
        org.import(&store).await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        // s1: from p1 (03-01 00:00) to d2 (03-03 00:00) = 48 h, not 24 h from its own time.
        // s2: commits unknown, from PR 8's created_at (03-02 06:00) to d3 (03-04 00:00) = 42 h.
        // r1: its own authored_at (03-03 00:00) to d3 = 24 h.
        assert_eq!(r.lead_time.changes, 3);
        close(r.lead_time.median_hours, 42.0);
        // Position (3 - 1) * 0.9 = 1.8 in [24, 42, 48]: 42 + 0.8 * 6 = 46.8.
        close(r.lead_time.p90_hours, 46.8);
    })
    .await;
}

#[tokio::test]
async fn squash_start_ignores_pr_commits_that_are_not_ancestors() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "a0", &[], "2024-02-28T00:00:00Z", "init")
            // PR 5's commit, deployed once straight from its branch.
            .commit(R, "c1", &["a0"], "2024-03-01T09:00:00Z", "try rate limits")
            // The squash of PR 5 on main: c1 is not its ancestor.
            .commit(R, "s5", &["a0"], "2024-03-03T10:00:00Z", "Rate limits (#5)")
            .deploy(R, "d1", "a0", "2024-02-29T00:00:00Z")
            .deploy(R, "d2", "c1", "2024-03-01T12:00:00Z")
            .deploy(R, "d3", "s5", "2024-03-03T11:00:00Z");
        org.pull_requests = vec![
            json!({"repo": R, "number": 5, "created_at": "2024-03-01T10:00:00Z",
            "merged_at": "2024-03-03T10:00:00Z", "merge_commit_sha": "s5", "commits": ["c1"]}),
        ];
        org.import(&store).await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        // c1 by d2: 3 h. s5 by d3 from PR 5's first commit (03-01 09:00): 50 h, although an
        // earlier deployment contained c1.
        assert_eq!(r.lead_time.changes, 2);
        close(r.lead_time.median_hours, 26.5);
        close(r.lead_time.p90_hours, 3.0 + 0.9 * 47.0);
    })
    .await;
}

#[tokio::test]
async fn repo_only_incidents_reach_every_service_of_the_repository() {
    on_both(|store| async move {
        let m = "tokio-rs/axum";
        let mut org = Org::default();
        org.commit(m, "a1", &[], "2024-02-28T00:00:00Z", "init")
            .deploy(m, "axum-core-v1", "a1", "2024-03-01T00:00:00Z")
            // No configured service matches: it is the repository's own service.
            .deploy(m, "axum-macros-v1", "a1", "2024-03-05T00:00:00Z")
            .incident(m, "i1", "2024-03-05T01:00:00Z", Some("2024-03-05T02:00:00Z"));
        org.incidents.push(json!({"repo": m, "id": "i2", "created_at": "2024-03-06T00:00:00Z",
            "resolved_at": "2024-03-06T01:00:00Z", "deployment_id": "axum-macros-v1"}));
        org.import(&store).await;
        let config = Config::from_toml(
            "[[services]]\nname = \"axum-core\"\nrepos = [\"tokio-rs/axum\"]\ndeployments = [\"axum-core-v*\"]\n",
            |_| None,
        )
        .unwrap();
        let (from, to) = ("2024-03-01", "2024-03-08");
        let macros = report(&store, &config, from, to, scope_service(m)).await;
        // i1 goes to the latest deployment of the repository's services at or before it
        // (axum-macros-v1), and i2 names it.
        assert_eq!((macros.change_failure_rate.deployments, macros.change_failure_rate.failed), (1, 1));
        assert_eq!(macros.recovery_time.incidents, 2);
        let core = report(&store, &config, from, to, scope_service("axum-core")).await;
        assert_eq!(core.change_failure_rate.failed, 0);
    })
    .await;
}

#[tokio::test]
async fn out_of_order_history_gives_the_in_order_answer() {
    on_both(|store| async move {
        let org = linear_history();
        // Deployments arrive first, then commits child-first, in two imports.
        let deployments_only = Org {
            deployments: org.deployments.clone(),
            ..Org::default()
        };
        deployments_only.import(&store).await;
        let before = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        assert_eq!(before.lead_time.changes, 0);
        assert_eq!(before.lead_time.median_hours, None);
        let mut reversed = org.commits.clone();
        reversed.reverse();
        Org {
            commits: reversed,
            ..Org::default()
        }
        .import(&store)
        .await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        assert_eq!(r.lead_time.changes, 2);
        close(r.lead_time.median_hours, 18.0);
        close(r.lead_time.p90_hours, 22.8);
    })
    .await;
}

#[tokio::test]
async fn duplicate_deployment_records_are_one_deployment() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(R, "c2", &["c1"], "2024-03-02T00:00:00Z", "change")
            .commit("acme/web", "w1", &[], "2024-03-01T00:00:00Z", "init")
            .deploy(R, "d1", "c1", "2024-03-01T01:00:00Z")
            // The same record twice: the later line wins (12:00).
            .deploy(R, "d2", "c2", "2024-03-02T10:00:00Z")
            .deploy(R, "d2", "c2", "2024-03-02T12:00:00Z")
            // Failed attempts, staging and other statuses are kept but not deployments.
            .deployment(
                R,
                "d3",
                "c2",
                "production",
                "failure",
                "2024-03-02T13:00:00Z",
            )
            .deployment(R, "d4", "c2", "staging", "success", "2024-03-02T14:00:00Z")
            .deployment(
                R,
                "d5",
                "c2",
                "production",
                "in_progress",
                "2024-03-02T15:00:00Z",
            )
            // Production is matched ignoring case.
            .deployment(
                "acme/web",
                "w-1",
                "w1",
                "PROD",
                "success",
                "2024-03-01T02:00:00Z",
            )
            // One service over two repositories: the same id in both is one deployment,
            // at the later time.
            .deployment(
                "acme/web",
                "shared-1",
                "w1",
                "live",
                "success",
                "2024-03-03T00:00:00Z",
            );
        org.deployments.push(
            json!({"repo": R, "id": "shared-1", "environment": "live", "sha": "c2",
            "status": "success", "created_at": "2024-03-03T05:00:00Z", "service": "web"}),
        );
        org.import(&store).await;
        let config = Config::from_toml(
            "[[services]]\nname = \"web\"\nrepos = [\"acme/web\"]\n",
            |_| None,
        )
        .unwrap();
        let r = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        // acme/api: d1, d2. web: w-1, shared-1 (once).
        assert_eq!(r.deployment_frequency.deployments, 4);
        // d2 delivers c2 at its later finish: 12 h. shared-1 is web's second deployment, not a
        // baseline, and its record in acme/api (the later one, 03-03 05:00) delivers what web
        // never contained there: c1 (53 h) and c2 (29 h).
        assert_eq!(r.lead_time.changes, 3);
        close(r.lead_time.median_hours, 29.0);
        let web = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-08",
            scope_service("web"),
        )
        .await;
        assert_eq!(web.deployment_frequency.deployments, 2);
    })
    .await;
}

#[tokio::test]
async fn incident_window_edge_is_seven_days_inclusive() {
    on_both(|store| async move {
        let mut org = Org::default();
        for repo in ["acme/x", "acme/y", "acme/z"] {
            org.commit(repo, "a1", &[], "2024-02-28T00:00:00Z", "init");
            org.deploy(repo, "d1", "a1", "2024-03-01T00:00:00Z");
        }
        org.commit("acme/z", "a2", &["a1"], "2024-03-01T12:00:00Z", "next")
            .deploy("acme/z", "d2", "a2", "2024-03-02T00:00:00Z");
        // Exactly 7 days after x's deployment: attributed.
        org.incident(
            "acme/x",
            "i1",
            "2024-03-08T00:00:00Z",
            Some("2024-03-08T02:00:00Z"),
        );
        // One second more after y's deployment: attributed to none.
        org.incident(
            "acme/y",
            "i2",
            "2024-03-08T00:00:01Z",
            Some("2024-03-08T05:00:00Z"),
        );
        // Naming a deployment attributes to it, however old and however many came after.
        org.incidents.push(
            json!({"repo": "acme/z", "id": "i3", "created_at": "2024-03-20T00:00:00Z",
            "resolved_at": "2024-03-20T09:00:00Z", "deployment_id": "d1"}),
        );
        org.import(&store).await;
        let config = Config::default();
        let r = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-15",
            Scope::default(),
        )
        .await;
        assert_eq!(r.change_failure_rate.deployments, 4);
        assert_eq!(r.change_failure_rate.failed, 2);
        close(r.change_failure_rate.rate, 0.5);
        assert_eq!(r.change_failure_rate.tier, Some(Tier::Low));
        let x = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-15",
            scope_repo("acme/x"),
        )
        .await;
        assert_eq!(x.change_failure_rate.failed, 1);
        let y = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-15",
            scope_repo("acme/y"),
        )
        .await;
        assert_eq!(y.change_failure_rate.failed, 0);
        close(y.change_failure_rate.rate, 0.0);
        // The unattributed incident still counts for recovery time (5 h - 1 s).
        close(y.recovery_time.median_hours, 5.0 - 1.0 / 3600.0);
        let z = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-15",
            scope_repo("acme/z"),
        )
        .await;
        assert_eq!(
            (
                z.change_failure_rate.deployments,
                z.change_failure_rate.failed
            ),
            (2, 1)
        );
        // The window is configurable: with 6 days even x's incident is too late.
        let six = Config::from_toml("[metrics]\nincident_window_days = 6", |_| None).unwrap();
        let r = report(&store, &six, "2024-03-01", "2024-03-15", Scope::default()).await;
        assert_eq!(r.change_failure_rate.failed, 1);
    })
    .await;
}

#[tokio::test]
async fn no_data_is_null_never_zero() {
    on_both(|store| async move {
        linear_history().import(&store).await;
        let config = Config::default();
        let r = report(
            &store,
            &config,
            "2025-01-01",
            "2025-01-15",
            Scope::default(),
        )
        .await;
        assert_eq!(r.deployment_frequency.deployments, 0);
        assert_eq!(r.deployment_frequency.per_week, 0.0);
        // Two whole buckets, no deploy days in either.
        assert_eq!(
            r.deployment_frequency.deploy_days_per_week_median,
            Some(0.0)
        );
        assert_eq!(r.lead_time.changes, 0);
        assert_eq!(
            (
                r.lead_time.median_hours,
                r.lead_time.p90_hours,
                r.lead_time.tier
            ),
            (None, None, None)
        );
        assert_eq!(
            (r.change_failure_rate.rate, r.change_failure_rate.tier),
            (None, None)
        );
        assert_eq!(
            (r.recovery_time.median_hours, r.recovery_time.tier),
            (None, None)
        );
        assert_eq!(r.rework_rate.rate, None);
        // A window shorter than a week has no whole bucket.
        let short = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-06",
            Scope::default(),
        )
        .await;
        assert_eq!(short.deployment_frequency.deploy_days_per_week_median, None);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["lead_time"]["median_hours"], serde_json::Value::Null);
        assert_eq!(json["change_failure_rate"]["rate"], serde_json::Value::Null);
    })
    .await;
}

#[tokio::test]
async fn tiers_at_their_thresholds_in_reports() {
    on_both(|store| async move {
        // Seven deployments in seven days: exactly 7 per week is elite.
        let mut org = Org::default();
        let mut parent: Vec<String> = Vec::new();
        for day in 1..=7 {
            let sha = format!("c{day}");
            let parents: Vec<&str> = parent.iter().map(String::as_str).collect();
            org.commit(
                R,
                &sha,
                &parents,
                &format!("2024-03-0{day}T00:00:00Z"),
                "work",
            );
            org.deploy(
                R,
                &format!("d{day}"),
                &sha,
                &format!("2024-03-0{day}T01:00:00Z"),
            );
            parent = vec![sha];
        }
        // Recovery of exactly 1 h is high, not elite; 24 h would be medium.
        org.incident(
            R,
            "i1",
            "2024-03-02T10:00:00Z",
            Some("2024-03-02T11:00:00Z"),
        );
        org.import(&store).await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        close(Some(r.deployment_frequency.per_week), 7.0);
        assert_eq!(r.deployment_frequency.tier, Some(Tier::Elite));
        close(r.deployment_frequency.deploy_days_per_week_median, 7.0);
        // Every change took exactly 1 h: elite lead time.
        close(r.lead_time.median_hours, 1.0);
        assert_eq!(r.lead_time.tier, Some(Tier::Elite));
        close(r.recovery_time.median_hours, 1.0);
        assert_eq!(r.recovery_time.tier, Some(Tier::High));
        // i1 makes d2 fail: 1 of 7 = 0.1429, which is medium (<= 0.15).
        close(r.change_failure_rate.rate, 1.0 / 7.0);
        assert_eq!(r.change_failure_rate.tier, Some(Tier::Medium));
    })
    .await;
}

#[tokio::test]
async fn monorepo_services_are_computed_apart_then_pooled() {
    on_both(|store| async move {
        let m = "acme/mono";
        let mut org = Org::default();
        org.commit(m, "m1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(m, "m2", &["m1"], "2024-03-02T00:00:00Z", "api work")
            .commit(m, "m3", &["m2"], "2024-03-03T00:00:00Z", "shared work")
            .deploy(m, "api-v1", "m1", "2024-03-01T01:00:00Z")
            .deploy(m, "api-v2", "m3", "2024-03-04T00:00:00Z")
            .deploy(m, "worker-v1", "m2", "2024-03-02T01:00:00Z")
            .deploy(m, "worker-v2", "m3", "2024-03-05T00:00:00Z");
        org.import(&store).await;
        let config = Config::from_toml(
            r#"
[[services]]
name = "api"
repos = ["acme/mono"]
deployments = ["api-v*"]
[[services]]
name = "worker"
repos = ["acme/mono"]
deployments = ["worker-v*"]
[[teams]]
name = "jobs"
services = ["worker"]
"#,
            |_| None,
        )
        .unwrap();
        let (from, to) = ("2024-03-01", "2024-03-08");
        // api: baseline at m1, then m2 (48 h) and m3 (24 h). worker: baseline at m2, then m3
        // (48 h). Pooled, m3 counts twice: [24, 48, 48].
        let all = report(&store, &config, from, to, Scope::default()).await;
        assert_eq!(all.deployment_frequency.deployments, 4);
        assert_eq!(all.lead_time.changes, 3);
        close(all.lead_time.median_hours, 48.0);
        let repo = report(&store, &config, from, to, scope_repo(m)).await;
        assert_eq!(repo.lead_time.changes, 3);
        let api = report(&store, &config, from, to, scope_service("api")).await;
        assert_eq!(api.lead_time.changes, 2);
        close(api.lead_time.median_hours, 36.0);
        let worker = report(&store, &config, from, to, scope_team("jobs")).await;
        assert_eq!(
            (
                worker.deployment_frequency.deployments,
                worker.lead_time.changes
            ),
            (2, 1)
        );
        close(worker.lead_time.median_hours, 48.0);
    })
    .await;
}

#[tokio::test]
async fn window_edges_from_inclusive_to_exclusive() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-02-20T00:00:00Z", "init")
            .commit(R, "c2", &["c1"], "2024-02-28T00:00:00Z", "a")
            .commit(R, "c3", &["c2"], "2024-03-05T00:00:00Z", "b")
            .deploy(R, "d1", "c1", "2024-02-21T00:00:00Z")
            // Exactly at `from`: inside.
            .deploy(R, "d2", "c2", "2024-03-01T00:00:00Z")
            // Exactly at `to`: outside.
            .deploy(R, "d3", "c3", "2024-03-08T00:00:00Z")
            .incident(
                R,
                "i1",
                "2024-03-01T00:00:00Z",
                Some("2024-03-01T03:00:00Z"),
            )
            .incident(
                R,
                "i2",
                "2024-03-07T00:00:00Z",
                Some("2024-03-08T00:00:00Z"),
            );
        org.import(&store).await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        assert_eq!(r.deployment_frequency.deployments, 1);
        assert_eq!(r.lead_time.changes, 1);
        close(r.lead_time.median_hours, 48.0);
        // i2 resolves exactly at `to`: not in this window.
        assert_eq!(r.recovery_time.incidents, 1);
        close(r.recovery_time.median_hours, 3.0);
        // i1 is attributed to d2 (at or before it), i2 to d2 as well: one failed deployment.
        assert_eq!(r.change_failure_rate.failed, 1);
        let next = report(
            &store,
            &Config::default(),
            "2024-03-08",
            "2024-03-15",
            Scope::default(),
        )
        .await;
        assert_eq!(next.deployment_frequency.deployments, 1);
        assert_eq!(next.recovery_time.incidents, 1);
        close(next.recovery_time.median_hours, 24.0);
    })
    .await;
}

#[tokio::test]
async fn recovery_time_median_and_open_incidents() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
            .deploy(R, "d1", "c1", "2024-03-01T00:00:00Z")
            .incident(
                R,
                "i1",
                "2024-03-02T00:00:00Z",
                Some("2024-03-02T02:00:00Z"),
            )
            .incident(
                R,
                "i2",
                "2024-03-03T00:00:00Z",
                Some("2024-03-03T05:00:00Z"),
            )
            .incident(
                R,
                "i3",
                "2024-03-04T00:00:00Z",
                Some("2024-03-04T09:00:00Z"),
            )
            .incident(
                R,
                "i4",
                "2024-03-04T00:00:00Z",
                Some("2024-03-04T10:00:00Z"),
            )
            .incident(R, "i5", "2024-03-05T00:00:00Z", None);
        org.import(&store).await;
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        // [2, 5, 9, 10]: an even count's median is the mean of 5 and 9.
        assert_eq!(r.recovery_time.incidents, 4);
        close(r.recovery_time.median_hours, 7.0);
        assert_eq!(r.recovery_time.open, 1);
    })
    .await;
}

/// The rework reasons of each counted deployment, by id, as the receipts show them.
async fn rework_of(store: &flowmeter_store::Store, config: &Config) -> Vec<(String, Vec<String>)> {
    let dataset = store.load().await.expect("load");
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let snapshot = flowmeter_engine::Snapshot::build(&dataset, &config).expect("snapshot");
        snapshot
            .prepared
            .deployments
            .iter()
            .map(|d| {
                let reasons: Vec<String> = d.rework_reasons.iter().map(|r| r.describe()).collect();
                assert_eq!(d.rework, !reasons.is_empty(), "{}", d.id);
                (d.id.clone(), reasons)
            })
            .collect()
    })
    .await
    .unwrap()
}

fn reasons(list: &[(String, Vec<String>)], id: &str) -> Vec<String> {
    list.iter().find(|(d, _)| d == id).unwrap().1.clone()
}

#[tokio::test]
async fn rework_by_revert_and_by_rollback_but_not_a_redeploy() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(R, "c2", &["c1"], "2024-03-01T02:00:00Z", "Add export")
            .commit(
                R,
                "c3",
                &["c2"],
                "2024-03-01T04:00:00Z",
                "Revert \"Add export\"",
            )
            .commit(R, "c4", &["c3"], "2024-03-01T06:00:00Z", "Add import")
            .commit(R, "c5", &["c4"], "2024-03-01T08:00:00Z", "Tidy logging")
            .deploy(R, "d1", "c1", "2024-03-02T00:00:00Z")
            .deploy(R, "d2", "c2", "2024-03-02T01:00:00Z")
            // Reverts the commit of the deployment before it.
            .deploy(R, "d3", "c3", "2024-03-02T02:00:00Z")
            .deploy(R, "d4", "c4", "2024-03-02T03:00:00Z")
            // The previous deployment's commit again: a retry, not a rollback.
            .deploy(R, "d5", "c4", "2024-03-02T04:00:00Z")
            // Back to d2's commit: a rollback.
            .deploy(R, "d6", "c2", "2024-03-02T05:00:00Z")
            .deploy(R, "d7", "c5", "2024-03-02T06:00:00Z");
        org.import(&store).await;
        let config = Config::default();
        let r = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-08",
            Scope::default(),
        )
        .await;
        // Rework: d3 (revert) and d6 (rollback), of 7 deployments.
        assert_eq!((r.rework_rate.deployments, r.rework_rate.rework), (7, 2));
        close(r.rework_rate.rate, 2.0 / 7.0);
        let all = rework_of(&store, &config).await;
        assert_eq!(
            reasons(&all, "d3"),
            ["revert: reverts the commit of the previous deployment d2"]
        );
        assert_eq!(
            reasons(&all, "d6"),
            ["rollback: goes back to the commit of the earlier deployment d2"]
        );
        for id in ["d1", "d2", "d4", "d5", "d7"] {
            assert!(reasons(&all, id).is_empty(), "{id}");
        }
    })
    .await;
}

#[tokio::test]
async fn rework_by_a_fix_after_an_incident_of_its_service_within_the_window() {
    on_both(|store| async move {
        const W: &str = "acme/web";
        let mut org = Org::default();
        org.commit(R, "a1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(
                R,
                "a2",
                &["a1"],
                "2024-03-05T11:00:00Z",
                "Hotfix: empty carts",
            )
            .commit(R, "a3", &["a2"], "2024-03-06T09:00:00Z", "Add coupons")
            .commit(
                R,
                "a4",
                &["a3"],
                "2024-03-12T09:00:00Z",
                "Hotfix: retry payments",
            )
            .commit(
                R,
                "a5",
                &["a4"],
                "2024-03-13T09:00:00Z",
                "Hotfix: log retries",
            )
            .deploy(R, "d1", "a1", "2024-03-01T00:00:00Z")
            // A fix 2 h after the incident.
            .deploy(R, "d2", "a2", "2024-03-05T12:00:00Z")
            // Not a fix, 1 day after the incident: not rework.
            .deploy(R, "d3", "a3", "2024-03-06T10:00:00Z")
            // A fix exactly 7 days after it: still within the window.
            .deploy(R, "d4", "a4", "2024-03-12T10:00:00Z")
            // A fix 8 days after it: not.
            .deploy(R, "d5", "a5", "2024-03-13T10:00:00Z");
        // acme/web's fix falls in acme/api's incident window, but its service had none.
        org.commit(W, "w1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(W, "w2", &["w1"], "2024-03-05T11:00:00Z", "hotfix: css")
            .deploy(W, "e1", "w1", "2024-03-01T00:00:00Z")
            .deploy(W, "e2", "w2", "2024-03-05T12:00:00Z");
        org.incident(
            R,
            "INC-7",
            "2024-03-05T10:00:00Z",
            Some("2024-03-05T13:00:00Z"),
        );
        org.import(&store).await;
        let config = Config::default();
        let r = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-15",
            Scope::default(),
        )
        .await;
        // d2 and d4 of 7 deployments (d1 to d5, e1, e2).
        assert_eq!((r.rework_rate.deployments, r.rework_rate.rework), (7, 2));
        let r = report(&store, &config, "2024-03-01", "2024-03-15", scope_repo(W)).await;
        assert_eq!((r.rework_rate.deployments, r.rework_rate.rework), (2, 0));
        let all = rework_of(&store, &config).await;
        for id in ["d2", "d4"] {
            assert_eq!(reasons(&all, id).len(), 1, "{id}: {:?}", reasons(&all, id));
            assert!(
                reasons(&all, id)[0].starts_with("fix after an incident: delivers the fix a")
                    && reasons(&all, id)[0].ends_with("after incident INC-7"),
                "{:?}",
                reasons(&all, id)
            );
        }
        for id in ["d1", "d3", "d5", "e1", "e2"] {
            assert!(
                reasons(&all, id).is_empty(),
                "{id}: {:?}",
                reasons(&all, id)
            );
        }
        // The incident window is D3's: with 8 days, d5 is rework too.
        let config = Config::from_toml("[metrics]\nincident_window_days = 8", |_| None).unwrap();
        let r = report(
            &store,
            &config,
            "2024-03-01",
            "2024-03-15",
            Scope::default(),
        )
        .await;
        assert_eq!(r.rework_rate.rework, 3);
    })
    .await;
}

#[tokio::test]
async fn rework_by_a_change_that_names_an_incident() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(R, "c2", &["c1"], "2024-03-02T00:00:00Z", "Retry payment calls (#5)")
            .commit(R, "c3", &["c2"], "2024-03-03T00:00:00Z", "OPS-4 restore the cache")
            .commit(R, "c4", &["c3"], "2024-03-04T00:00:00Z", "Add coupons")
            .commit(R, "c5", &["c4"], "2024-03-05T00:00:00Z", "Add vouchers")
            .commit(R, "c6", &["c5"], "2024-03-06T00:00:00Z", "Retry refunds (#6)")
            .deploy(R, "d1", "c1", "2024-03-01T12:00:00Z")
            // Its pull request is labelled incident.
            .deploy(R, "d2", "c2", "2024-03-02T12:00:00Z")
            // It links to OPS-4, an Incident.
            .deploy(R, "d3", "c3", "2024-03-03T12:00:00Z")
            .deploy(R, "d4", "c4", "2024-03-04T12:00:00Z")
            // Pull request #6 is labelled incident, but d5 does not deliver it.
            .deploy(R, "d5", "c5", "2024-03-05T12:00:00Z");
        org.pull_requests = vec![
            json!({"repo": R, "number": 5, "created_at": "2024-03-01T20:00:00Z", "merged_at": "2024-03-02T00:00:00Z",
                "merge_commit_sha": "c2", "commits": ["c2"], "labels": ["incident"]}),
            json!({"repo": R, "number": 6, "created_at": "2024-03-05T20:00:00Z", "merged_at": "2024-03-06T00:00:00Z",
                "merge_commit_sha": "c6", "commits": ["c6"], "labels": ["Incident"]}),
        ];
        org.issues = vec![
            json!({"key": "OPS-4", "project": "OPS", "type": "Incident", "created_at": "2024-03-02T20:00:00Z"}),
        ];
        org.import(&store).await;
        let config = Config::default();
        let r = report(&store, &config, "2024-03-01", "2024-03-08", Scope::default()).await;
        assert_eq!((r.rework_rate.deployments, r.rework_rate.rework), (5, 2));
        close(r.rework_rate.rate, 0.4);
        let all = rework_of(&store, &config).await;
        assert_eq!(
            reasons(&all, "d2"),
            ["fix of an incident: c2 pull request #5 is labelled 'incident'"]
        );
        assert_eq!(
            reasons(&all, "d3"),
            ["fix of an incident: c3 links to OPS-4 (Incident)"]
        );
        for id in ["d1", "d4", "d5"] {
            assert!(reasons(&all, id).is_empty(), "{id}");
        }
        // The clause reads the incident labels and types the connectors use.
        let config = Config::from_toml(
            "[github]\nincident_labels = [\"sev1\"]\n[jira]\nincident_types = [\"Outage\"]",
            |_| None,
        )
        .unwrap();
        let r = report(&store, &config, "2024-03-01", "2024-03-08", Scope::default()).await;
        assert_eq!(r.rework_rate.rework, 0);
    })
    .await;
}

/// A deployment that batches planned work with an unrelated bug fix, with no incident of its
/// service in the window before it, is not rework (version 1 of D5 counted it).
#[tokio::test]
async fn a_batched_deployment_with_a_planned_bug_fix_is_not_rework() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-03-01T00:00:00Z", "init")
            .commit(R, "c2", &["c1"], "2024-03-02T00:00:00Z", "Add coupons")
            .commit(R, "c3", &["c2"], "2024-03-02T02:00:00Z", "Fix typo in 404 page (#8)")
            .commit(R, "c4", &["c3"], "2024-03-02T04:00:00Z", "Add vouchers")
            .deploy(R, "d1", "c1", "2024-03-01T12:00:00Z")
            .deploy(R, "d2", "c4", "2024-03-02T12:00:00Z");
        org.pull_requests = vec![
            json!({"repo": R, "number": 8, "created_at": "2024-03-02T01:00:00Z", "merged_at": "2024-03-02T02:00:00Z",
                "merge_commit_sha": "c3", "commits": ["c3"], "labels": ["bug"]}),
        ];
        // An incident of the service 8 days before, and one just after.
        org.incident(R, "INC-1", "2024-02-23T11:00:00Z", Some("2024-02-23T12:00:00Z"))
            .incident(R, "INC-2", "2024-03-02T12:00:01Z", Some("2024-03-02T13:00:00Z"));
        org.import(&store).await;
        let config = Config::default();
        let r = report(&store, &config, "2024-03-01", "2024-03-08", Scope::default()).await;
        assert_eq!((r.rework_rate.deployments, r.rework_rate.rework), (2, 0));
        close(r.rework_rate.rate, 0.0);
        // It still failed: INC-2 came after it (D3).
        assert_eq!(r.change_failure_rate.failed, 1);
    })
    .await;
}

#[tokio::test]
async fn unknown_scopes_are_errors_that_name_the_parameter() {
    on_both(|store| async move {
        linear_history().import(&store).await;
        let config = Config::default();
        for (scope, param) in [
            (scope_repo("acme/nope"), "repo"),
            (scope_service("nope"), "service"),
            (scope_team("nope"), "team"),
        ] {
            let err = try_report(&store, &config, "2024-03-01", "2024-03-08", scope)
                .await
                .unwrap_err();
            match err {
                flowmeter_engine::EngineError::UnknownScope { param: p, .. } => {
                    assert_eq!(p, param)
                }
                other => panic!("expected an unknown {param}, got {other}"),
            }
        }
    })
    .await;
}

/// The worked example of docs/metrics.md, byte for byte.
#[tokio::test]
async fn the_documented_worked_example() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/import/worked-example");
    let expected = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let dir = &dir;
    let expected = &expected;
    on_both(|store| async move {
        let summary = flowmeter::import::import_dir(&store, dir, false)
            .await
            .unwrap();
        assert!(summary.ok(), "{:?}", summary.files);
        let r = report(
            &store,
            &Config::default(),
            "2024-03-01",
            "2024-03-15",
            Scope::default(),
        )
        .await;
        assert_eq!(r.to_json().trim_end(), expected.trim_end());
    })
    .await;
}
