//! The store's contract, the same on SQLite and PostgreSQL.

use flowmeter_core::Record;
use flowmeter_core::import::{RecordKind, parse_line};
use flowmeter_store::{Cursor, RawPayload};

use crate::support::*;

fn records(kind: RecordKind, lines: &[&str]) -> Vec<Record> {
    lines
        .iter()
        .map(|l| parse_line(kind, l).expect("valid line"))
        .collect()
}

const COMMIT: &str = r#"{"repo":"acme/api","sha":"c2","parents":["c1"],"authored_at":"2024-03-01T10:00:00+02:00","committed_at":"2024-03-01T09:00:00Z","author":"Ann <ann@example.com>","message":"tab\there, back\\slash\nnewline"}"#;
const PULL: &str = r#"{"repo":"acme/api","number":12,"created_at":"2024-03-01T00:00:00Z","title":"PAY-1: add","author":"ann","draft":true,"ready_at":"2024-03-01T01:00:00Z","merged_at":"2024-03-02T00:00:00Z","base_branch":"main","head_branch":"feature/x","head_sha":"c2","merge_commit_sha":"c3","commits":["c2"],"additions":10,"deletions":2,"labels":["bug","ui"],"reviews":[{"reviewer":"bob","state":"APPROVED","submitted_at":"2024-03-01T05:00:00Z"}]}"#;
const DEPLOYMENT: &str = r#"{"repo":"acme/api","id":"7","environment":"production","sha":"c3","status":"success","created_at":"2024-03-02T00:00:00Z","finished_at":"2024-03-02T00:10:00Z","service":"api","url":"https://ci.example.com/7"}"#;
const INCIDENT: &str = r#"{"service":"api","id":"INC-1","created_at":"2024-03-02T01:00:00Z","resolved_at":"2024-03-02T02:30:00Z","title":"errors","severity":"sev2","deployment_id":"7"}"#;
const ISSUE: &str = r#"{"key":"PAY-1","project":"PAY","type":"Story","created_at":"2024-02-01T00:00:00Z","summary":"Add","status":"Done","epic":"PAY-0","assignee":"ann","labels":["x"],"story_points":3.5,"resolved_at":"2024-03-03T00:00:00Z","transitions":[{"at":"2024-02-02T00:00:00Z","from":"To Do","to":"In Progress"},{"at":"2024-03-03T00:00:00Z","from":"In Progress","to":"Done"}]}"#;

#[tokio::test]
async fn every_kind_reads_back_as_written() {
    on_both(|store| async move {
        let all = [
            (RecordKind::Commits, COMMIT),
            (RecordKind::PullRequests, PULL),
            (RecordKind::Deployments, DEPLOYMENT),
            (RecordKind::Incidents, INCIDENT),
            (RecordKind::Issues, ISSUE),
        ];
        let mut expected = flowmeter_core::Dataset::default();
        for (kind, line) in all {
            let written = records(kind, &[line]);
            let summary = store.write(kind, &written).await.unwrap();
            assert_eq!((summary.received, summary.changed), (1, 1), "{kind:?}");
            written.into_iter().for_each(|r| expected.push(r));
        }
        assert_eq!(store.load().await.unwrap(), expected);
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (
                counts.commits,
                counts.pull_requests,
                counts.deployments,
                counts.incidents,
                counts.issues
            ),
            (1, 1, 1, 1, 1)
        );
    })
    .await;
}

#[tokio::test]
async fn the_same_records_again_change_nothing() {
    on_both(|store| async move {
        let written = records(RecordKind::Commits, &[COMMIT]);
        store.write(RecordKind::Commits, &written).await.unwrap();
        let generation = store.generation().await.unwrap();
        let again = store.write(RecordKind::Commits, &written).await.unwrap();
        assert_eq!(again.changed, 0);
        assert_eq!(store.generation().await.unwrap(), generation);
        // A changed field is an update of the same key.
        let edited = COMMIT.replace(
            "\"author\":\"Ann <ann@example.com>\"",
            "\"author\":\"Ann B\"",
        );
        let update = store
            .write(
                RecordKind::Commits,
                &records(RecordKind::Commits, &[&edited]),
            )
            .await
            .unwrap();
        assert_eq!(update.changed, 1);
        assert!(store.generation().await.unwrap() > generation);
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.commits.len(), 1);
        assert_eq!(loaded.commits[0].author.as_deref(), Some("Ann B"));
    })
    .await;
}

#[tokio::test]
async fn the_last_record_of_a_key_in_one_write_wins() {
    on_both(|store| async move {
        let late = DEPLOYMENT.replace("00:10:00Z", "00:20:00Z");
        let written = records(RecordKind::Deployments, &[DEPLOYMENT, &late]);
        let summary = store
            .write(RecordKind::Deployments, &written)
            .await
            .unwrap();
        assert_eq!(summary.changed, 1);
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.deployments.len(), 1);
        assert_eq!(
            loaded.deployments[0].finished_at.unwrap().to_rfc3339(),
            "2024-03-02T00:20:00+00:00"
        );
    })
    .await;
}

#[tokio::test]
async fn cursors_and_raw_payloads() {
    on_both(|store| async move {
        assert_eq!(
            store.cursor("github", "acme/api", "pulls").await.unwrap(),
            None
        );
        let cursor = Cursor {
            cursor: Some("2024-03-01T00:00:00Z".into()),
            etag: Some("W/\"abc\"".into()),
        };
        store
            .set_cursor("github", "acme/api", "pulls", &cursor)
            .await
            .unwrap();
        let moved = Cursor {
            cursor: Some("2024-03-02T00:00:00Z".into()),
            etag: None,
        };
        store
            .set_cursor("github", "acme/api", "pulls", &moved)
            .await
            .unwrap();
        assert_eq!(
            store.cursor("github", "acme/api", "pulls").await.unwrap(),
            Some(moved)
        );
        let raw = RawPayload {
            id: "github:pulls:acme/api:page:1".into(),
            source: "github".into(),
            resource: "pulls".into(),
            fetched_at: "2024-03-01T00:00:00Z".parse().unwrap(),
            etag: Some("\"e1\"".into()),
            body: "[{\"number\":1}]".into(),
        };
        store.put_raw(&raw).await.unwrap();
        store.put_raw(&raw).await.unwrap();
        assert_eq!(store.raw_payloads("github").await.unwrap(), vec![raw]);
        assert!(store.raw_payloads("jira").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn unlinked_references_are_counted() {
    on_both(|store| async move {
        store
            .write(
                RecordKind::Deployments,
                &records(RecordKind::Deployments, &[DEPLOYMENT]),
            )
            .await
            .unwrap();
        store
            .write(
                RecordKind::PullRequests,
                &records(RecordKind::PullRequests, &[PULL]),
            )
            .await
            .unwrap();
        let orphan = INCIDENT.replace("\"deployment_id\":\"7\"", "\"deployment_id\":\"99\"");
        store
            .write(
                RecordKind::Incidents,
                &records(
                    RecordKind::Incidents,
                    &[INCIDENT, &orphan.replace("INC-1", "INC-2")],
                ),
            )
            .await
            .unwrap();
        let u = store.unlinked().await.unwrap();
        assert_eq!(u.deployments_with_unknown_commit, 1);
        assert_eq!(u.pull_requests_with_unknown_merge_commit, 1);
        assert_eq!(u.incidents_with_unknown_deployment, 1);
        let c3 = COMMIT.replace("\"sha\":\"c2\"", "\"sha\":\"c3\"");
        store
            .write(RecordKind::Commits, &records(RecordKind::Commits, &[&c3]))
            .await
            .unwrap();
        let u = store.unlinked().await.unwrap();
        assert_eq!(
            (
                u.deployments_with_unknown_commit,
                u.pull_requests_with_unknown_merge_commit
            ),
            (0, 0)
        );
    })
    .await;
}

/// The indexes of an SQLite store, as `(name, table, sql)`.
async fn sqlite_indexes(store: &flowmeter_store::Store) -> Vec<(String, String, String)> {
    let flowmeter_store::Store::Sqlite(pool) = store else {
        panic!("an SQLite store");
    };
    sqlx::query_as(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A first import into empty SQLite tables defers their indexes to the end of the file's
/// transaction: afterwards every index the migrations made is there, as they made it, and a
/// write that is rolled back leaves them too.
#[tokio::test]
async fn a_load_into_empty_tables_leaves_every_index_the_migrations_made() {
    let db = TestDb::sqlite().await;
    let migrated = sqlite_indexes(&db.store).await;
    // Nine on the record tables, two on webhook deliveries.
    assert_eq!(migrated.len(), 11, "{migrated:?}");
    // Nothing changed: rolled back, the dropped indexes come back.
    let writer = db.store.writer(RecordKind::Commits).await.unwrap();
    assert_eq!(writer.commit().await.unwrap().changed, 0);
    assert_eq!(sqlite_indexes(&db.store).await, migrated);
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/capitalization");
    let summary = flowmeter::import::import_dir(&db.store, &dir, false)
        .await
        .unwrap();
    assert!(summary.ok());
    assert_eq!(sqlite_indexes(&db.store).await, migrated);
    // A second load into the now non-empty tables keeps them throughout.
    let summary = flowmeter::import::import_dir(&db.store, &dir, false)
        .await
        .unwrap();
    assert!(summary.ok());
    assert_eq!(sqlite_indexes(&db.store).await, migrated);
    db.finish().await;
}
