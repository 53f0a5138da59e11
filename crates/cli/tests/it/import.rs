//! `flowmeter import`: idempotent, atomic per file, errors that name file, line and field.

use flowmeter_core::import::RecordKind;

use crate::support::*;

fn sample() -> Org {
    let mut org = Org::default();
    org.commit("acme/api", "c1", &[], "2024-03-01T00:00:00Z", "init")
        .commit("acme/api", "c2", &["c1"], "2024-03-02T00:00:00Z", "work")
        .deploy("acme/api", "d1", "c1", "2024-03-01T01:00:00Z")
        .deploy("acme/api", "d2", "c2", "2024-03-02T01:00:00Z")
        .incident(
            "acme/api",
            "i1",
            "2024-03-02T02:00:00Z",
            Some("2024-03-02T03:00:00Z"),
        );
    org
}

#[tokio::test]
async fn importing_twice_leaves_the_store_unchanged() {
    on_both(|store| async move {
        let org = sample();
        let first = org.import(&store).await;
        assert_eq!(first.files.iter().map(|f| f.changed).sum::<u64>(), 5);
        let before = store.load().await.unwrap();
        let generation = store.generation().await.unwrap();
        let second = org.import(&store).await;
        assert!(
            second.files.iter().all(|f| f.changed == 0),
            "{:?}",
            second.files
        );
        assert_eq!(second.files.iter().map(|f| f.records).sum::<u64>(), 5);
        assert_eq!(store.load().await.unwrap(), before);
        assert_eq!(store.generation().await.unwrap(), generation);
    })
    .await;
}

#[tokio::test]
async fn a_file_with_one_bad_line_writes_nothing_and_names_the_line() {
    on_both(|store| async move {
        let dir = tempfile::tempdir().unwrap();
        let mut org = sample();
        org.deployments[1]["status"] = "shipped".into();
        org.write(dir.path());
        let summary = flowmeter::import::import_dir(&store, dir.path(), false).await.unwrap();
        assert!(!summary.ok());
        let deployments = summary.files.iter().find(|f| f.kind == RecordKind::Deployments).unwrap();
        let error = deployments.error.as_deref().unwrap();
        assert!(error.ends_with("deployments.jsonl:2: field 'status': 'shipped' is not one of success, failure, error, in_progress, queued, inactive"), "{error}");
        let loaded = store.load().await.unwrap();
        assert!(loaded.deployments.is_empty());
        // The other files are whole transactions of their own and were imported.
        assert_eq!(loaded.commits.len(), 2);

        // --keep-going skips the bad line and says how many were skipped.
        let summary = flowmeter::import::import_dir(&store, dir.path(), true).await.unwrap();
        assert!(summary.ok());
        let deployments = summary.files.iter().find(|f| f.kind == RecordKind::Deployments).unwrap();
        assert_eq!((deployments.records, deployments.skipped), (1, 1));
        assert_eq!(store.load().await.unwrap().deployments.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_bad_json_line_is_reported_by_number() {
    on_both(|store| async move {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("commits.jsonl"),
            "{\"repo\":\"a/b\",\"sha\":\"c1\",\"parents\":[],\"authored_at\":\"2024-01-01T00:00:00Z\",\"committed_at\":\"2024-01-01T00:00:00Z\"}\n\n{not json\n",
        )
        .unwrap();
        let summary = flowmeter::import::import_dir(&store, dir.path(), false).await.unwrap();
        let error = summary.files[0].error.as_deref().unwrap();
        assert!(error.contains("commits.jsonl:3: not valid JSON"), "{error}");
        assert!(store.load().await.unwrap().commits.is_empty());
    })
    .await;
}

#[tokio::test]
async fn what_cannot_be_linked_is_summarized() {
    on_both(|store| async move {
        let mut org = Org::default();
        org.deploy("acme/api", "d1", "c404", "2024-03-01T00:00:00Z");
        let summary = org.import(&store).await;
        assert_eq!(summary.unlinked.deployments_with_unknown_commit, 1);
    })
    .await;
}

#[tokio::test]
async fn an_empty_or_missing_folder_is_an_error() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let err = flowmeter::import::import_dir(&db.store, dir.path(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("holds none of commits.jsonl"),
        "{err}"
    );
    let err = flowmeter::import::import_dir(&db.store, &dir.path().join("nope"), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not a folder"), "{err}");
    db.finish().await;
}

#[tokio::test]
async fn a_bad_line_after_many_written_batches_still_writes_nothing() {
    on_both(|store| async move {
        let dir = tempfile::tempdir().unwrap();
        let mut org = Org::default();
        let mut parent: Vec<String> = Vec::new();
        for i in 0..25_003 {
            let sha = format!("{i:x}");
            let parents: Vec<&str> = parent.iter().map(String::as_str).collect();
            org.commit("acme/big", &sha, &parents, "2024-03-01T00:00:00Z", "work");
            parent = vec![sha];
        }
        org.commits[25_001]["parents"] = serde_json::json!("not a list");
        org.write(dir.path());
        let summary = flowmeter::import::import_dir(&store, dir.path(), false)
            .await
            .unwrap();
        let error = summary.files[0].error.as_deref().unwrap();
        assert!(
            error.ends_with(
                "commits.jsonl:25002: field 'parents': must be an array, found a string"
            ),
            "{error}"
        );
        assert_eq!(store.counts().await.unwrap().commits, 0);
    })
    .await;
}

#[tokio::test]
async fn new_and_known_records_together_are_upserted() {
    on_both(|store| async move {
        let org = sample();
        org.import(&store).await;
        let mut more = sample();
        more.commit("acme/api", "c3", &["c2"], "2024-03-03T00:00:00Z", "more");
        more.commits[0]["message"] = "init, reworded".into();
        let summary = more.import(&store).await;
        let commits = summary
            .files
            .iter()
            .find(|f| f.kind == RecordKind::Commits)
            .unwrap();
        assert_eq!((commits.records, commits.changed), (3, 2));
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.commits.len(), 3);
        assert_eq!(loaded.commits[0].message.as_deref(), Some("init, reworded"));
    })
    .await;
}

#[tokio::test]
async fn gzipped_files_are_read_and_every_file_left_out_is_named() {
    use std::io::Write as _;
    on_both(|store| async move {
        let dir = tempfile::tempdir().unwrap();
        sample().write(dir.path());
        // commits.jsonl as commits.jsonl.gz, written in two gzip members.
        let plain = std::fs::read(dir.path().join("commits.jsonl")).unwrap();
        std::fs::remove_file(dir.path().join("commits.jsonl")).unwrap();
        let mut gz = Vec::new();
        let (head, tail) = plain.split_at(plain.len() / 2);
        for part in [head, tail] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        std::fs::write(dir.path().join("commits.jsonl.gz"), gz).unwrap();
        std::fs::write(dir.path().join("flowmeter.toml"), "").unwrap();
        std::fs::write(dir.path().join("deployments.jsonl.gz"), b"").unwrap();
        let summary = flowmeter::import::import_dir(&store, dir.path(), false)
            .await
            .unwrap();
        assert!(summary.ok(), "{:?}", summary.files);
        let commits = summary
            .files
            .iter()
            .find(|f| f.kind == RecordKind::Commits)
            .unwrap();
        assert_eq!(commits.records, 2);
        let skipped: Vec<String> = summary
            .skipped
            .iter()
            .map(|(p, why)| format!("{} {why}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped[0].starts_with("deployments.jsonl.gz ")
                && skipped[0].contains("holds deployments.jsonl already"),
            "{skipped:?}"
        );
        assert!(
            skipped[1].starts_with("flowmeter.toml not a file of the import format"),
            "{skipped:?}"
        );
        // Every deployment names a commit the store now has.
        assert_eq!(summary.unlinked.deployments_with_unknown_commit, 0);
    })
    .await;
}
