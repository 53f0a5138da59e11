//! The `flowmeter` binary as a user runs it.

use std::process::Command;

use crate::support::*;

fn flowmeter() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmeter"));
    cmd.env_remove("FLOWMETER_DB")
        .env_remove("FLOWMETER_CONFIG");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run flowmeter");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_verb_has_help() {
    for verb in [
        "migrate", "import", "report", "stages", "generate", "serve", "demo",
    ] {
        let (ok, stdout, _) = run(flowmeter().args([verb, "--help"]));
        assert!(ok, "{verb} --help failed");
        assert!(stdout.contains("Usage: flowmeter"), "{verb}: {stdout}");
    }
}

#[test]
fn import_then_report_as_json_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut org = Org::default();
    org.commit("acme/api", "c1", &[], "2024-03-01T00:00:00Z", "init")
        .commit("acme/api", "c2", &["c1"], "2024-03-02T00:00:00Z", "work")
        .deploy("acme/api", "d1", "c1", "2024-03-01T01:00:00Z")
        .deploy("acme/api", "d2", "c2", "2024-03-02T06:00:00Z");
    org.write(&data);
    let db = format!("sqlite://{}", dir.path().join("fm.db").display());
    let (ok, _, stderr) = run(flowmeter().args(["import", "--db", &db]).arg(&data));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("commits        2 records, 2 new or changed"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = run(flowmeter().args([
        "report",
        "--db",
        &db,
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-08",
    ]));
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["definitions_version"], 2);
    assert_eq!(
        json["window"],
        serde_json::json!({"from": "2024-03-01", "to": "2024-03-08", "days": 7})
    );
    assert_eq!(
        json["scope"],
        serde_json::json!({"repo": null, "service": null, "team": null})
    );
    assert_eq!(json["lead_time"]["changes"], 1);
    assert_eq!(json["lead_time"]["median_hours"], 6.0);
    assert_eq!(json["deployment_frequency"]["tier"], "high");
    assert_eq!(json["change_failure_rate"]["rate"], 0.0);
    assert_eq!(
        json["recovery_time"]["median_hours"],
        serde_json::Value::Null
    );

    let (ok, stdout, _) = run(flowmeter().args([
        "report",
        "--db",
        &db,
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-08",
        "--format",
        "table",
        "--repo",
        "acme/api",
    ]));
    assert!(ok);
    assert!(stdout.contains("repo=acme/api"), "{stdout}");
    assert!(stdout.contains("median 6.0 h"), "{stdout}");

    let (ok, stdout, stderr) = run(flowmeter().args([
        "stages",
        "--db",
        &db,
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-08",
        "--format",
        "table",
    ]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("merged pull requests: 0"), "{stdout}");
    assert!(stdout.contains("bottleneck: no data"), "{stdout}");
}

#[test]
fn bad_arguments_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fm.db").display());
    let cases: [(&[&str], &str); 4] = [
        (
            &["--from", "2024-02-30", "--to", "2024-03-08"],
            "from: '2024-02-30' is not a date",
        ),
        (
            &["--from", "2024-03-08", "--to", "2024-03-01"],
            "is not before to",
        ),
        (
            &[
                "--from",
                "2024-03-01",
                "--to",
                "2024-03-08",
                "--repo",
                "acme/none",
            ],
            "unknown repo 'acme/none'",
        ),
        (
            &[
                "--from",
                "2024-03-01",
                "--to",
                "2024-03-08",
                "--team",
                "ghosts",
            ],
            "unknown team 'ghosts'",
        ),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = run(flowmeter().args(["report", "--db", &db]).args(args));
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let config = dir.path().join("flowmeter.toml");
    std::fs::write(&config, "[metrics]\nincident_window_days = 0\n").unwrap();
    let (ok, _, stderr) = run(flowmeter()
        .args([
            "report",
            "--db",
            &db,
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-08",
            "--config",
        ])
        .arg(&config));
    assert!(!ok);
    assert!(stderr.contains("metrics.incident_window_days"), "{stderr}");
    let (ok, _, stderr) = run(flowmeter().args(["migrate", "--db", "mysql://u:secret@host/db"]));
    assert!(!ok);
    assert!(
        stderr.contains("unsupported database URL") && !stderr.contains("secret"),
        "{stderr}"
    );
}

#[test]
fn demo_builds_a_store_and_prints_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let (ok, stdout, stderr) = run(flowmeter().args(["demo", "--report", "--dir"]).arg(&demo));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("DORA report, definitions v2"), "{stdout}");
    assert!(stdout.contains("deployment frequency"), "{stdout}");
    // A second run reuses the store.
    let (ok, again, stderr) = run(flowmeter().args(["demo", "--report", "--dir"]).arg(&demo));
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("importing"), "{stderr}");
    assert_eq!(stdout, again);
}

#[test]
fn serve_refuses_to_expose_an_unguarded_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fm.db").display());
    let (ok, _, stderr) = run(flowmeter().args(["serve", "--db", &db, "--listen", "0.0.0.0:0"]));
    assert!(!ok);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without API tokens"),
        "{stderr}"
    );
}

/// A database URL's password never shows in an error, whatever characters it holds.
#[test]
fn database_passwords_never_show_in_errors() {
    for (url, secrets) in [
        (
            "postgres://app:Sup3r/Secr3t@127.0.0.1:1/x",
            &["Sup3r", "Secr3t"][..],
        ),
        (
            "postgres://app:pa?ss@127.0.0.1:1/x",
            &["pa?ss", "app:pa", "ss@"][..],
        ),
        (
            "postgres://app:s%40cret#x@127.0.0.1:1/x",
            &["s%40cret", "cret"][..],
        ),
        (
            "postgresql://app:hunter2@127.0.0.1:1/x?sslmode=disable",
            &["hunter2"][..],
        ),
    ] {
        let (ok, stdout, stderr) = run(flowmeter().args(["migrate", "--db", url]));
        assert!(!ok, "{url}");
        for secret in secrets {
            assert!(
                !stderr.contains(secret) && !stdout.contains(secret),
                "{url}: {stderr}"
            );
        }
        assert!(!stderr.is_empty());
    }
}
