//! Long runs of the real server: memory stays put under a stream of pushes, every pushed
//! record is counted, and readers, writers and a failing sync together lose nothing.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

/// One request over a fresh connection, as a client outside the process sends it; an error
/// when no answer came within `timeout`.
fn request(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn p99(mut millis: Vec<u128>) -> u128 {
    millis.sort_unstable();
    millis
        .get((millis.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or(0)
}

/// A deterministic stream of numbers for a thread of the run.
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

const READ_TOKEN: &str = "soak-read-token-0123456789";
const WRITE_TOKEN: &str = "soak-write-token-9876543210";

/// The server under mixed load for `FLOWMETER_SOAK_SECONDS` (30 by default; the documented long
/// run, `benches/soak.sh`, sets 600 and scale M): the real binary with tokens, 64 readers asking
/// the overview and the API for windows never asked before, 4 writers pushing deployments and
/// incidents, and a sync every 2 seconds against a GitHub answering 5% of requests with 5xx.
/// No push fails, every pushed record is in the store at the end, `/healthz` always answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_under_readers_writers_and_a_failing_sync_loses_nothing() {
    let seconds: u64 = std::env::var("FLOWMETER_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let scale = std::env::var("FLOWMETER_SOAK_SCALE").unwrap_or_else(|_| "S".into());
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org");
    let generated = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(["generate", "--scale", &scale, "--seed", "11"])
        .arg(&org)
        .output()
        .unwrap();
    assert!(generated.status.success());
    let config = org.join("flowmeter.toml");
    let db = format!("sqlite://{}", dir.path().join("soak.db").display());
    run(&["import", "--db", &db, org.to_str().unwrap()], &config);

    let mut switches = crate::github::Switches::default();
    switches.random_faults = Some((11, 50));
    let (fake, github) = crate::github::start_fake(switches, false).await;
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[server]\nsync_seconds = 2\n\
         tokens = [{{ name = \"bi\", token = \"{READ_TOKEN}\", scope = \"read\" }}, \
         {{ name = \"ci\", token = \"{WRITE_TOKEN}\", scope = \"write\" }}]\n\n\
         [github]\nurl = \"http://{github}\"\nrepos = [\"acme/api\"]\norgs = [\"acme\"]\n\
         page_size = 4\nretry_base_ms = 1\n"
    ));
    std::fs::write(&config, toml).unwrap();

    let (child, address) =
        start_server_with(&db, &config, &[("GITHUB_TOKEN", crate::github::TOKEN)]);
    let start_kib = resident_kib(child.id());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stop_all = Arc::new(AtomicBool::new(false));

    let health = std::thread::spawn({
        let (address, stop_all) = (address.clone(), stop_all.clone());
        move || {
            let mut millis = Vec::new();
            let mut missed = Vec::new();
            while !stop_all.load(Ordering::Relaxed) {
                let asked = Instant::now();
                match request(
                    &address,
                    "GET",
                    "/healthz",
                    "",
                    None,
                    Duration::from_secs(5),
                ) {
                    Ok((200, _)) => millis.push(asked.elapsed().as_millis()),
                    other => missed.push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (millis, missed)
        }
    });
    let readers: Vec<_> = (0..64u64)
        .map(|reader| {
            let address = address.clone();
            std::thread::spawn(move || {
                let mut draw = Draw(reader);
                let (mut served, mut shed, mut failed) = (0u64, 0u64, Vec::new());
                while Instant::now() < deadline {
                    // Windows nobody asked for before: a new start day every time.
                    let from = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
                        + chrono::Days::new(draw.next(600));
                    let to = from + chrono::Days::new(1 + draw.next(120));
                    let path = match draw.next(4) {
                        0 => format!("/api/v1/dora?from={from}&to={to}"),
                        1 => format!("/deployments?from={from}&to={to}"),
                        2 => format!("/api/v1/deployments?from={from}&to={to}&limit=50"),
                        _ => format!("/?from={from}&to={to}"),
                    };
                    match request(
                        &address,
                        "GET",
                        &path,
                        READ_TOKEN,
                        None,
                        Duration::from_secs(60),
                    ) {
                        Ok((200, _)) => served += 1,
                        Ok((503, _)) => {
                            shed += 1;
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        other => failed.push(format!("{path}: {other:?}")),
                    }
                }
                (served, shed, failed)
            })
        })
        .collect();
    let writers: Vec<_> = (0..4usize)
        .map(|writer| {
            let address = address.clone();
            std::thread::spawn(move || {
                let (mut pushed, mut millis, mut failed) = (Vec::new(), Vec::new(), Vec::new());
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let id = format!("soak-{writer}-{n}");
                    let at = format!("2026-10-{:02}T{:02}:{:02}:00Z", 1 + n / 1440 % 28, n / 60 % 24, n % 60);
                    let (kind, body) = if n % 3 == 2 {
                        ("incidents", format!(r#"{{"service": "soak-pager", "id": "{id}", "created_at": "{at}", "title": "soak {n}"}}"#))
                    } else {
                        ("deployments", format!(
                            r#"{{"repo": "acme/soak", "id": "{id}", "environment": "production", "sha": "{:040x}", "status": "success", "created_at": "{at}"}}"#,
                            writer * 1_000_000 + n
                        ))
                    };
                    let asked = Instant::now();
                    match request(&address, "POST", &format!("/api/v1/{kind}"), WRITE_TOKEN, Some(&body), Duration::from_secs(60)) {
                        Ok((200 | 201, _)) => {
                            millis.push(asked.elapsed().as_millis());
                            pushed.push((kind, id));
                        }
                        other => failed.push(format!("{kind} {id}: {other:?}")),
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                (pushed, millis, failed)
            })
        })
        .collect();

    let (mut served, mut shed, mut read_failures) = (0, 0, Vec::new());
    for reader in readers {
        let (s, d, f) = reader.join().unwrap();
        served += s;
        shed += d;
        read_failures.extend(f);
    }
    let (mut pushed, mut push_millis, mut push_failures) = (Vec::new(), Vec::new(), Vec::new());
    for writer in writers {
        let (p, m, f) = writer.join().unwrap();
        pushed.extend(p);
        push_millis.extend(m);
        push_failures.extend(f);
    }
    stop_all.store(true, Ordering::Relaxed);
    let (health_millis, health_missed) = health.join().unwrap();
    let end_kib = resident_kib(child.id());
    let syncs = fake
        .log()
        .iter()
        .filter(|l| l.url.starts_with("/orgs/acme/repos"))
        .count();
    let faults = fake.log().iter().filter(|l| l.status >= 500).count();
    stop(child);

    eprintln!(
        "soak {seconds} s, scale {scale}: {served} reads served, {shed} shed, {} failed; {} pushes \
         (p99 {} ms), {} failed; /healthz answered {} times (p99 {} ms), missed {}; {syncs} syncs \
         met {faults} 5xx; resident {} MiB at start, {} MiB at end",
        read_failures.len(),
        pushed.len(),
        p99(push_millis),
        push_failures.len(),
        health_millis.len(),
        p99(health_millis),
        health_missed.len(),
        start_kib / 1024,
        end_kib / 1024,
    );
    assert!(
        push_failures.is_empty(),
        "pushes failed: {:?}",
        &push_failures[..push_failures.len().min(5)]
    );
    assert!(
        health_missed.is_empty(),
        "/healthz went unanswered: {:?}",
        &health_missed[..health_missed.len().min(5)]
    );
    assert!(
        read_failures.is_empty(),
        "reads failed: {:?}",
        &read_failures[..read_failures.len().min(5)]
    );
    assert!(
        served > 0 && pushed.len() > 100,
        "{served} reads, {} pushes",
        pushed.len()
    );
    assert!(
        syncs >= 2 && faults > 0,
        "{syncs} syncs met {faults} faults"
    );

    let store = flowmeter_store::Store::open(&db).await.unwrap();
    let data = store.load().await.unwrap();
    let deployments: std::collections::HashSet<&str> =
        data.deployments.iter().map(|d| d.id.as_str()).collect();
    let incidents: std::collections::HashSet<&str> =
        data.incidents.iter().map(|i| i.id.as_str()).collect();
    for (kind, id) in &pushed {
        let present = match *kind {
            "incidents" => incidents.contains(id.as_str()),
            _ => deployments.contains(id.as_str()),
        };
        assert!(present, "pushed {kind} {id} is not in the store");
    }
    assert!(
        data.pull_requests.iter().any(|p| p.repo == "acme/api"),
        "the scheduled sync stored GitHub's pull requests despite the faults"
    );
    store.close().await;
}
