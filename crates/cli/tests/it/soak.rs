//! Long runs of the real server: memory stays put under a stream of pushes, and every pushed
//! record is counted.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Resident memory of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn run(args: &[&str], config: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(args)
        .env("FLOWMETER_CONFIG", config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn counted(address: &str) -> u64 {
    let (status, body) = http_get(address, "/api/v1/dora?from=2026-10-01&to=2026-11-01");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    report["deployment_frequency"]["deployments"]
        .as_u64()
        .unwrap()
}

fn push(address: &str, n: usize) {
    let body = format!(
        r#"{{"repo": "acme/ledger", "id": "soak-{n}", "environment": "production", "sha": "{:040x}", "status": "success", "created_at": "2026-10-20T{:02}:{:02}:00Z"}}"#,
        n,
        n / 60 % 24,
        n % 60
    );
    assert_eq!(post_json(address, "/api/v1/deployments", &body), 201);
}

#[test]
fn a_thousand_pushes_leave_memory_where_it_was_and_are_all_counted() {
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org");
    let config = org.join("flowmeter.toml");
    let status = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(["generate", "--scale", "M", "--seed", "3"])
        .arg(&org)
        .output()
        .unwrap();
    assert!(status.status.success());
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    run(&["import", "--db", &db, org.to_str().unwrap()], &config);
    let (child, address) = start_server(&db, Some(&config));
    let wait_for = |n: u64| {
        let started = std::time::Instant::now();
        while counted(&address) != n {
            assert!(
                started.elapsed().as_secs() < 120,
                "the pushes were not all counted"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let before = counted(&address);
    for n in 0..100 {
        push(&address, n);
    }
    wait_for(before + 100);
    let after_100 = resident_kib(child.id());
    for n in 100..1000 {
        push(&address, n);
    }
    wait_for(before + 1000);
    let after_1000 = resident_kib(child.id());
    assert!(
        after_1000 <= after_100 + after_100 / 10 + 16 * 1024,
        "resident memory grew from {after_100} KiB after 100 pushes to {after_1000} KiB after 1,000"
    );
    stop(child);
}
