//! The capitalization export: the worked example of docs/capitalization.md byte for byte on
//! both stores, the command line (determinism, manifest, bad input), the HTTP export and page,
//! and the method's properties on a generated organisation.

use std::path::{Path, PathBuf};
use std::process::Command;

use flowmeter_core::{Config, IsoWeek};
use flowmeter_engine::capitalization::{CapRow, UNITS_PER_FTE};
use flowmeter_store::Store;
use flowmeter_web::capitalization::export;

use crate::support::*;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/capitalization")
}

fn example_config() -> Config {
    let text = std::fs::read_to_string(example_dir().join("flowmeter.toml")).unwrap();
    Config::from_toml(&text, |_| None).unwrap()
}

fn w47() -> IsoWeek {
    IsoWeek::parse("week", "2026-W47").unwrap()
}

async fn import_example(store: &Store) {
    let summary = flowmeter::import::import_dir(store, &example_dir(), false)
        .await
        .expect("import the example");
    assert!(summary.ok(), "{:?}", summary.files);
}

fn expected() -> String {
    std::fs::read_to_string(example_dir().join("expected.csv")).unwrap()
}

#[tokio::test]
async fn the_worked_example_is_exported_byte_for_byte_on_both_stores() {
    // The file in the method's documentation is the file the test expects.
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/capitalization.md"),
    )
    .unwrap();
    let block = format!("```csv\n{}```", expected().replace("\r\n", "\n"));
    assert!(
        docs.contains(&block),
        "docs/capitalization.md shows expected.csv"
    );
    on_both(|store| async move {
        import_example(&store).await;
        let config = example_config();
        let all = export(&store, &config, &[w47()], None).await.unwrap();
        assert_eq!(String::from_utf8(all.csv()).unwrap(), expected());
        // Every person-week adds up to its available FTE: Ana 1.0, Ben 0.48, Cleo 0.6.
        for (person, units) in [("p1", 10_000), ("p2", 4_800), ("p3", 6_000)] {
            let sum: i64 = all
                .rows
                .iter()
                .filter(|r| r.person_id == person)
                .map(|r| r.fte_units)
                .sum();
            assert_eq!(sum, units, "{person}");
        }
        // A team's rows are that team's people in the week: Cleo had moved to web.
        let web = export(&store, &config, &[w47()], Some("web"))
            .await
            .unwrap();
        assert!(!web.rows.is_empty() && web.rows.iter().all(|r| r.person_id == "p3"));
        // Receipts name the evidence.
        let ana_a = &all.rows[0];
        let items: Vec<&str> = ana_a.receipts.iter().map(|r| r.item.as_str()).collect();
        assert!(
            items.contains(&"acme/pay#10") && items.contains(&"PAY-2"),
            "{items:?}"
        );
    })
    .await;
}

fn flowmeter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(args)
        .env_remove("FLOWMETER_CONFIG")
        .output()
        .expect("run flowmeter")
}

#[tokio::test]
async fn the_command_line_writes_the_same_bytes_twice_with_a_manifest_and_refuses_bad_input() {
    let db = TestDb::sqlite().await;
    import_example(&db.store).await;
    let dir = tempfile::tempdir().unwrap();
    let config = example_dir().join("flowmeter.toml");
    let config = config.to_str().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for name in ["a.csv", "b.csv"] {
        let out = flowmeter(&[
            "export",
            "capitalization",
            "--db",
            &db.url,
            "--config",
            config,
            "--week",
            "2026-W47",
            "--out",
            &path(name),
            "--manifest",
            &path(&format!("{name}.json")),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let a = std::fs::read(path("a.csv")).unwrap();
    assert_eq!(a, std::fs::read(path("b.csv")).unwrap());
    assert_eq!(String::from_utf8(a.clone()).unwrap(), expected());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path("a.csv.json")).unwrap()).unwrap();
    assert_eq!(manifest["method_version"], 1);
    assert_eq!(
        manifest["store_generation"],
        db.store.generation().await.unwrap()
    );
    assert_eq!(manifest["weeks"], serde_json::json!(["2026-W47"]));
    assert_eq!(manifest["config_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        std::fs::read(path("a.csv.json")).unwrap(),
        std::fs::read(path("b.csv.json")).unwrap()
    );

    // Bad input: an error naming what was wrong, and no file.
    let refused = |args: &[&str], names: &str| {
        let out_file = path("refused.csv");
        let mut all = vec![
            "export",
            "capitalization",
            "--db",
            &db.url,
            "--config",
            config,
            "--out",
            &out_file,
        ];
        all.extend_from_slice(args);
        let out = flowmeter(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
        assert!(!Path::new(&out_file).exists(), "{args:?} wrote a file");
    };
    refused(&["--week", "2026-W99"], "--week");
    refused(&["--week", "2999-W01"], "has not ended");
    refused(&["--weeks", "2026-W47..2026-W40"], "ends before it starts");
    refused(&["--weeks", "2020-W01..2026-W40"], "at most 106");
    refused(&["--week", "2026-W47", "--team", "nobody"], "--team");
    let bad = dir.path().join("bad.toml");
    let twice = std::fs::read_to_string(config)
        .unwrap()
        .replace("identities = [\"ben\"", "identities = [\"ana\"");
    std::fs::write(&bad, twice).unwrap();
    let out = flowmeter(&[
        "export",
        "capitalization",
        "--db",
        &db.url,
        "--config",
        bad.to_str().unwrap(),
        "--week",
        "2026-W47",
        "--out",
        &path("refused.csv"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("people[1].identities")
            && stderr.contains("mapped twice"),
        "{stderr}"
    );
    assert!(!dir.path().join("refused.csv").exists());

    // Identities nobody claims are listed, with a suggestion where one matches.
    let out = flowmeter(&["people", "--unmapped", "--db", &db.url, "--config", config]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        listed.contains("Dana Reyes <dana@acme.dev>\t1\t0\t0\t0\t\n"),
        "{listed}"
    );
    assert!(
        listed.contains("Cleo Park <cleo.park@example.com>\t1\t0\t0\t0\tp3\n"),
        "{listed}"
    );
    assert!(
        !listed.contains("Ana Silva <") && !listed.contains("\nben\t"),
        "{listed}"
    );
    db.finish().await;
}

#[tokio::test]
async fn the_server_exports_the_same_file_and_shows_the_receipts() {
    let db = TestDb::sqlite().await;
    import_example(&db.store).await;
    let generation = db.store.generation().await.unwrap();
    let (server, address) = start_server(&db.url, Some(&example_dir().join("flowmeter.toml")));
    let (status, body) = http_get(&address, "/export/capitalization.csv?week=2026-W47");
    assert_eq!(status, 200);
    assert_eq!(body, expected());
    let head = raw_head(&address, "/export/capitalization.csv?week=2026-W47");
    assert!(
        head.to_lowercase()
            .contains(&format!("x-flowmeter-generation: {generation}")),
        "{head}"
    );
    let (status, page) = http_get(&address, "/capitalization?week=2026-W47");
    assert_eq!(status, 200);
    for shown in [
        "Ana Silva (p1)",
        "before authorized_from 2026-11-18",
        "0.4667",
        "pull request merged acme/pay#10",
        "People-weeks with unattributed time",
        "<svg",
    ] {
        assert!(page.contains(shown), "the page shows {shown}");
    }
    let (status, body) = http_get(&address, "/export/capitalization.csv?week=2026-W60");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("week"));
    // A request exports at most a quarter; the command line, two years.
    let (status, _) = http_get(
        &address,
        "/export/capitalization.csv?weeks=2026-W35..2026-W47",
    );
    assert_eq!(status, 200);
    let (status, body) = http_get(
        &address,
        "/export/capitalization.csv?weeks=2026-W34..2026-W47",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("\"weeks\"") && body.contains("at most 13"),
        "{body}"
    );
    stop(server);
    db.finish().await;
}

/// The response head of a GET.
fn raw_head(address: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_once("\r\n\r\n").unwrap().0.to_string()
}

#[tokio::test]
async fn on_a_generated_organisation_every_person_week_sums_to_its_available_fte() {
    let dir = tempfile::tempdir().unwrap();
    flowmeter_synth::generate(flowmeter_synth::Scale::S, 3, dir.path()).unwrap();
    let config = Config::from_toml(
        &std::fs::read_to_string(dir.path().join("flowmeter.toml")).unwrap(),
        |_| None,
    )
    .unwrap();
    let db = TestDb::sqlite().await;
    let summary = flowmeter::import::import_dir(&db.store, dir.path(), false)
        .await
        .unwrap();
    assert!(summary.ok());
    let people = flowmeter_core::people::People::new(&config);
    let weeks: Vec<IsoWeek> = (40..=43)
        .map(|w| IsoWeek::parse("week", &format!("2026-W{w}")).unwrap())
        .collect();
    let first = export(&db.store, &config, &weeks, None).await.unwrap();
    let again = export(&db.store, &config, &weeks, None).await.unwrap();
    assert_eq!(first.csv(), again.csv(), "deterministic");
    let mut attributed = 0;
    for week in &weeks {
        for (p, person) in people.people.iter().enumerate() {
            let present = (0..7)
                .filter(|d| people.present(p, week.monday() + chrono::Days::new(*d)))
                .count();
            let available =
                (person.fte * present as f64 * (UNITS_PER_FTE / 5) as f64).round() as i64;
            let rows: Vec<&CapRow> = first
                .rows
                .iter()
                .filter(|r| r.person_id == person.id && r.week_start == week.monday())
                .collect();
            assert_eq!(
                rows.iter().map(|r| r.fte_units).sum::<i64>(),
                available,
                "{} {week}",
                person.id
            );
            attributed += rows.iter().filter(|r| !r.is_unattributed()).count();
        }
    }
    assert!(
        attributed > 20,
        "most time is backed by evidence: {attributed} rows"
    );
    assert!(
        first
            .rows
            .iter()
            .all(|r| r.is_unattributed() || !r.receipts.is_empty())
    );
    assert!(
        first.rows.iter().any(|r| r.capitalizable)
            && first
                .rows
                .iter()
                .any(|r| !r.capitalizable && !r.is_unattributed())
    );
    db.finish().await;
}
