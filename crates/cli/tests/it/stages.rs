//! Rule S, the value stream, with hand-computed cases on both backends.

use flowmeter_core::{Config, Scope, Window};
use flowmeter_engine::Snapshot;
use flowmeter_engine::stages::StagesReport;
use serde_json::{Value, json};

use crate::support::*;

const R: &str = "acme/api";

fn review(reviewer: &str, at: &str) -> Value {
    json!({"reviewer": reviewer, "state": "APPROVED", "submitted_at": at})
}

fn pr(number: u64, created: &str, extra: Value) -> Value {
    let mut pr = json!({"repo": R, "number": number, "created_at": created, "author": "ann"});
    pr.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    pr
}

fn org() -> Org {
    let mut org = Org::default();
    org.commit(R, "c1", &[], "2024-02-20T00:00:00Z", "init")
        .commit(R, "p1", &["c1"], "2024-03-02T00:00:00Z", "work for #1")
        .commit(
            R,
            "m1",
            &["c1", "p1"],
            "2024-03-02T20:00:00Z",
            "Merge pull request #1",
        )
        .commit(R, "s2", &["m1"], "2024-03-04T12:00:00Z", "Squashed #2")
        .commit(R, "s3", &["s2"], "2024-03-05T16:00:00Z", "Squashed #3")
        .deploy(R, "d1", "c1", "2024-03-01T00:00:00Z")
        .deploy(R, "d2", "m1", "2024-03-03T02:00:00Z")
        .deploy(R, "d3", "s2", "2024-03-05T00:00:00Z");
    org.pull_requests = vec![
        // Opened as a draft; a bot's and the author's own reviews do not count.
        pr(
            1,
            "2024-03-02T06:00:00Z",
            json!({"ready_at": "2024-03-02T10:00:00Z", "merged_at": "2024-03-02T20:00:00Z",
            "merge_commit_sha": "m1", "commits": ["p1"], "reviews": [
                review("dependabot[bot]", "2024-03-02T11:00:00Z"), review("ann", "2024-03-02T11:30:00Z"),
                review("bob", "2024-03-02T14:00:00Z")]}),
        ),
        // No review at all, commits unknown.
        pr(
            2,
            "2024-03-04T00:00:00Z",
            json!({"merged_at": "2024-03-04T12:00:00Z", "merge_commit_sha": "s2", "commits": ["ffff02"]}),
        ),
        // Reviewed before it was ready: the review counts at ready. Not deployed yet.
        pr(
            3,
            "2024-03-05T00:00:00Z",
            json!({"ready_at": "2024-03-05T10:00:00Z", "merged_at": "2024-03-05T16:00:00Z",
            "merge_commit_sha": "s3", "reviews": [review("carol", "2024-03-05T08:00:00Z")]}),
        ),
        // Open, ready, not reviewed.
        pr(4, "2024-03-06T00:00:00Z", json!({})),
        // Open and in review.
        pr(
            5,
            "2024-03-06T12:00:00Z",
            json!({"reviews": [review("bob", "2024-03-07T00:00:00Z")]}),
        ),
        // Still a draft, and a closed one: neither is waiting.
        pr(6, "2024-03-06T12:00:00Z", json!({"draft": true})),
        pr(
            7,
            "2024-03-03T00:00:00Z",
            json!({"closed_at": "2024-03-04T00:00:00Z"}),
        ),
        // Merged before the first deployment, which is a baseline: in production, though no
        // deployment delivered it, so it is not waiting to be deployed.
        pr(
            9,
            "2024-02-19T00:00:00Z",
            json!({"merged_at": "2024-02-20T00:00:00Z", "merge_commit_sha": "c1"}),
        ),
        // Merged in the previous window: one hour of pickup, one of review.
        pr(
            8,
            "2024-02-26T00:00:00Z",
            json!({"merged_at": "2024-02-26T02:00:00Z", "merge_commit_sha": "ffff08",
            "reviews": [review("bob", "2024-02-26T01:00:00Z")]}),
        ),
    ];
    org
}

async fn stages(store: &flowmeter_store::Store, from: &str, to: &str) -> StagesReport {
    let dataset = store.load().await.unwrap();
    let window = Window::parse(from, to).unwrap();
    tokio::task::spawn_blocking(move || {
        let snapshot = Snapshot::build(&dataset, &Config::default()).unwrap();
        snapshot
            .stages(window, &Scope::default(), chrono::Utc::now())
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn stages_per_pull_request_with_drafts_bots_and_self_reviews() {
    on_both(|store| async move {
        org().import(&store).await;
        let r = stages(&store, "2024-03-01", "2024-03-08").await;
        // #1: coding 10 h (00:00 -> ready 10:00), pickup 4 h (bob at 14:00), review 6 h,
        //     deploy 6 h (d2 at 03-03 02:00). #2: coding unknown, pickup 12 h, review 0,
        //     deploy 12 h. #3: coding unknown, pickup 0 (review before ready), review 6 h,
        //     deploy unknown (not deployed).
        assert_eq!((r.pull_requests.merged, r.pull_requests.unreviewed), (3, 1));
        let stat = |name: &str| r.stages.iter().find(|s| s.stage == name).unwrap().clone();
        let coding = stat("coding");
        assert_eq!(coding.count, 1);
        close(coding.median_hours, 10.0);
        let pickup = stat("pickup");
        assert_eq!(pickup.count, 3);
        close(pickup.median_hours, 4.0);
        // [0, 4, 12] at position 1.8: 4 + 0.8 * 8.
        close(pickup.p90_hours, 10.4);
        let review = stat("review");
        close(review.median_hours, 6.0);
        let deploy = stat("deploy");
        assert_eq!(
            deploy.count, 2,
            "a merge no deployment delivered has no deploy stage"
        );
        close(deploy.median_hours, 9.0);
        close(deploy.p90_hours, 11.4);
        // Sums 10 + 16 + 12 + 18 = 56 hours.
        close(coding.share, 10.0 / 56.0);
        close(deploy.share, 18.0 / 56.0);
        let bottleneck = r.bottleneck.clone().unwrap();
        assert_eq!(bottleneck.stage, "deploy");
        close(Some(bottleneck.share), 18.0 / 56.0);
        // The previous window's only merge (#8) spent no known time in deploy.
        close(bottleneck.previous_share, 0.0);
        let wip = &r.work_in_progress;
        assert_eq!(wip.at.to_rfc3339(), "2024-03-08T00:00:00+00:00");
        let numbers = |items: &[flowmeter_engine::stages::WipItem]| {
            items.iter().map(|i| i.number).collect::<Vec<_>>()
        };
        assert_eq!(numbers(&wip.waiting_for_review), [4]);
        close(Some(wip.waiting_for_review[0].age_hours), 48.0);
        assert_eq!(numbers(&wip.in_review), [5]);
        close(Some(wip.in_review[0].age_hours), 24.0);
        assert_eq!(numbers(&wip.merged_not_deployed), [3]);
        close(Some(wip.merged_not_deployed[0].age_hours), 56.0);
    })
    .await;
}

#[tokio::test]
async fn stages_with_no_merges_are_null() {
    on_both(|store| async move {
        org().import(&store).await;
        let r = stages(&store, "2025-01-01", "2025-01-08").await;
        assert_eq!(r.pull_requests.merged, 0);
        assert!(
            r.stages
                .iter()
                .all(|s| s.count == 0 && s.median_hours.is_none() && s.share.is_none())
        );
        assert_eq!(r.bottleneck, None);
        let json: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["bottleneck"], Value::Null);
        assert_eq!(json["stages"][0]["median_hours"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn tracker_stages_come_before_coding_and_add_up_per_status_group() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-02-20T00:00:00Z", "init")
            .commit(R, "q1", &["c1"], "2024-03-02T00:00:00Z", "Add export")
            .commit(R, "q2", &["q1"], "2024-03-03T00:00:00Z", "Tidy");
        let at = |day: &str| format!("2024-{day}T00:00:00Z");
        let move_ =
            |day: &str, from: &str, to: &str| json!({"at": at(day), "from": from, "to": to});
        org.issues = vec![
            json!({"key": "PAY-1", "project": "PAY", "type": "Story", "created_at": at("02-25"),
            "transitions": [
                move_("02-27", "To Do", "In Progress"),
                // Back to the backlog for a day, then on again: the time adds up per stage.
                move_("02-28", "In Progress", "To Do"),
                move_("02-29", "To Do", "In Progress"),
                move_("03-01", "In Progress", "In Review"),
                move_("03-05", "In Review", "Done"),
            ]}),
        ];
        org.pull_requests = vec![
            pr(
                10,
                "2024-03-02T06:00:00Z",
                json!({"title": "PAY-1: add export", "merged_at": "2024-03-02T12:00:00Z",
                "merge_commit_sha": "q1", "commits": ["q1"]}),
            ),
            pr(
                11,
                "2024-03-03T01:00:00Z",
                json!({"title": "Tidy", "merged_at": "2024-03-03T02:00:00Z",
                "merge_commit_sha": "q2", "commits": ["q2"]}),
            ),
        ];
        org.import(&store).await;
        let r = stages(&store, "2024-03-01", "2024-03-08").await;
        assert_eq!((r.pull_requests.merged, r.pull_requests.unlinked), (2, 1));
        let stat = |name: &str| r.stages.iter().find(|s| s.stage == name).unwrap().clone();
        // Up to the first commit (03-02): backlog 02-25..02-27 and 02-28..02-29 (72 h), in
        // progress 02-27..02-28 and 02-29..03-01 (48 h), review 03-01..03-02 (24 h).
        assert_eq!(
            stat("backlog").count,
            1,
            "only the linked pull request has tracker stages"
        );
        close(stat("backlog").median_hours, 72.0);
        close(stat("tracker_in_progress").median_hours, 48.0);
        close(stat("tracker_review").median_hours, 24.0);
        // Coding is the pull requests own stage: 6 h for #10 and 1 h for #11.
        close(stat("coding").median_hours, 3.5);
        assert_eq!(r.bottleneck.unwrap().stage, "backlog");
    })
    .await;
}

#[tokio::test]
async fn tracker_statuses_group_by_their_category_when_the_tracker_gave_one() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-02-20T00:00:00Z", "init")
            .commit(R, "q1", &["c1"], "2024-03-02T00:00:00Z", "Add export");
        let at = |day: &str| format!("2024-{day}T00:00:00Z");
        let move_ =
            |day: &str, from: &str, to: &str| json!({"at": at(day), "from": from, "to": to});
        org.issues = vec![
            json!({"key": "PAY-7", "project": "PAY", "type": "Story", "created_at": at("02-25"),
            "transitions": [
                move_("02-26", "Open", "Triage"),
                move_("02-27", "Triage", "Building"),
                move_("02-29", "Building", "Code review"),
                move_("03-05", "Code review", "Won't do"),
            ]}),
        ];
        org.pull_requests = vec![pr(
            10,
            "2024-03-02T06:00:00Z",
            json!({"title": "PAY-7: add export", "merged_at": "2024-03-02T12:00:00Z",
                "merge_commit_sha": "q1", "commits": ["q1"]}),
        )];
        org.import(&store).await;
        let hours = |r: &StagesReport, name: &str| {
            r.stages
                .iter()
                .find(|s| s.stage == name)
                .unwrap()
                .median_hours
        };
        // By name alone "Triage" is some work in progress: backlog 02-25..02-26 (24 h), in
        // progress 02-26..02-29 (72 h), review 02-29..03-02 (48 h).
        let r = stages(&store, "2024-03-01", "2024-03-08").await;
        close(hours(&r, "backlog"), 24.0);
        close(hours(&r, "tracker_in_progress"), 72.0);
        close(hours(&r, "tracker_review"), 48.0);
        // Jira says Triage is a to-do status: backlog until Building (48 h), in progress
        // 02-27..02-29 (48 h, a leap year), review 02-29..03-02 (48 h).
        let categories = [
            ("Triage", "new"),
            ("Building", "indeterminate"),
            ("Code review", "indeterminate"),
            ("Won't do", "done"),
        ]
        .map(|(name, category)| (name.to_string(), category.to_string()));
        let before = store.generation().await.unwrap();
        assert_eq!(store.put_status_categories(&categories).await.unwrap(), 4);
        assert!(store.generation().await.unwrap() > before, "readers reload");
        assert_eq!(store.put_status_categories(&categories).await.unwrap(), 0);
        let r = stages(&store, "2024-03-01", "2024-03-08").await;
        close(hours(&r, "backlog"), 48.0);
        close(hours(&r, "tracker_in_progress"), 48.0);
        close(hours(&r, "tracker_review"), 48.0);
    })
    .await;
}

#[tokio::test]
async fn a_review_given_after_the_merge_is_the_first_review() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.commit(R, "c1", &[], "2024-02-20T00:00:00Z", "init")
            .commit(R, "a1", &["c1"], "2024-03-02T08:00:00Z", "Change");
        org.pull_requests = vec![pr(
            20,
            "2024-03-02T10:00:00Z",
            json!({"merged_at": "2024-03-02T12:00:00Z", "merge_commit_sha": "a1",
                "commits": ["a1"], "reviews": [review("bob", "2024-03-02T15:00:00Z")]}),
        )];
        org.import(&store).await;
        let r = stages(&store, "2024-03-01", "2024-03-08").await;
        // b1 10:00, b3 12:00, b2 15:00 (after the merge, still its first review): pickup
        // b2 - b1 = 5 h, review b3 - b2 clamped at 0. Reviewed, so not counted as unreviewed.
        assert_eq!((r.pull_requests.merged, r.pull_requests.unreviewed), (1, 0));
        let stat = |name: &str| r.stages.iter().find(|s| s.stage == name).unwrap().clone();
        close(stat("coding").median_hours, 2.0);
        close(stat("pickup").median_hours, 5.0);
        close(stat("review").median_hours, 0.0);
    })
    .await;
}
