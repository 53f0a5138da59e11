//! `kill -9` at random moments during `flowmeter import` and `flowmeter sync`, then the same
//! command again: the store ends identical to an uninterrupted run's, every time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowmeter_store::Store;

use crate::support::*;

const TRIALS: u64 = 20;

/// The moment of trial `n` of [`TRIALS`], in `0..span`: one draw in each twentieth of the
/// span, so the kills cover the whole run, from start-up to the last commit.
fn moment(n: u64, span: Duration) -> Duration {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let jitter = (x >> 11) as f64 / (1u64 << 53) as f64;
    span.mul_f64((n as f64 + jitter) / TRIALS as f64)
}

/// One repository of a generated organisation (with its service's incidents) and 500 of its
/// issues: every kind of record, and an import short enough to kill 40 times.
fn generated_org(dir: &Path) -> PathBuf {
    let org = dir.join("org");
    let output = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(["generate", "--scale", "S", "--seed", "5"])
        .arg(&org)
        .output()
        .unwrap();
    assert!(output.status.success());
    for file in [
        "commits",
        "pull_requests",
        "deployments",
        "incidents",
        "issues",
    ] {
        let path = org.join(format!("{file}.jsonl"));
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = match file {
            "issues" => text.lines().take(500).collect(),
            "incidents" => text
                .lines()
                .filter(|l| l.contains(r#""service":"billing"#))
                .collect(),
            _ => text
                .lines()
                .filter(|l| l.contains(r#""repo":"acme/billing""#))
                .collect(),
        };
        assert!(!kept.is_empty(), "{file}");
        std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    }
    org
}

fn import(db: &str, org: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowmeter"));
    command
        .args(["import", "--db", db])
        .arg(org)
        .arg("--config")
        .arg(org.join("flowmeter.toml"))
        .env_remove("FLOWMETER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn finished(mut command: Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts `command`, kills it with SIGKILL after `after` unless it finished first; whether it
/// was killed.
fn kill_after(mut command: Command, after: Duration) -> bool {
    let mut child = command.stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while started.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

async fn loaded(url: &str) -> flowmeter_core::Dataset {
    let store = Store::open(url).await.unwrap();
    let data = store.load().await.unwrap();
    store.close().await;
    data
}

/// Import killed at 20 moments, on SQLite (from a file that does not exist yet, so some kills
/// land in the migrations) and on PostgreSQL, then imported again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_anywhere_and_run_again_ends_in_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let org = generated_org(dir.path());
    let reference = format!("sqlite://{}", dir.path().join("reference.db").display());
    let started = Instant::now();
    finished(import(&reference, &org));
    let span = started.elapsed();
    let expected = loaded(&reference).await;
    assert!(expected.commits.len() > 1_000 && !expected.issues.is_empty());

    let mut killed = 0;
    for n in 0..TRIALS {
        let db = format!(
            "sqlite://{}",
            dir.path().join(format!("trial-{n}.db")).display()
        );
        let at = moment(n, span);
        killed += u32::from(tokio::task::block_in_place(|| {
            kill_after(import(&db, &org), at)
        }));
        finished(import(&db, &org));
        assert!(
            loaded(&db).await == expected,
            "SQLite: the store after a kill at {at:?} and a second import differs"
        );
        std::fs::remove_file(dir.path().join(format!("trial-{n}.db"))).ok();
    }
    eprintln!("import on SQLite: {killed} of {TRIALS} runs killed mid-way over {span:?}");
    assert!(
        killed >= TRIALS as u32 / 2,
        "only {killed} runs were killed mid-way"
    );

    let Some(probe) = TestDb::postgres().await else {
        return;
    };
    probe.finish().await;
    let mut killed = 0;
    for n in 0..TRIALS {
        let db = TestDb::postgres().await.unwrap();
        let at = moment(n, span);
        killed += u32::from(tokio::task::block_in_place(|| {
            kill_after(import(&db.url, &org), at)
        }));
        finished(import(&db.url, &org));
        assert!(
            db.store.load().await.unwrap() == expected,
            "PostgreSQL: the store after a kill at {at:?} and a second import differs"
        );
        db.finish().await;
    }
    eprintln!("import on PostgreSQL: {killed} of {TRIALS} runs killed mid-way");
    assert!(
        killed >= TRIALS as u32 / 2,
        "only {killed} runs were killed mid-way"
    );
}

/// Sync killed after a random number of GitHub's answers, 20 times, then synced again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_anywhere_and_run_again_ends_in_the_same_store() {
    use crate::github::{Switches, TOKEN, flowmeter_sync, start_fake, write_config};
    let dir = tempfile::tempdir().unwrap();
    let (fake, address) = start_fake(Switches::default(), false).await;
    let config = write_config(dir.path(), address);
    let reference = format!("sqlite://{}", dir.path().join("reference.db").display());
    fake.log.lock().unwrap().clear();
    let output = flowmeter_sync(&reference, &config, TOKEN).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = fake.log().len() as u64;
    let expected = loaded(&reference).await;

    let mut killed = 0;
    for n in 0..TRIALS {
        let db = format!(
            "sqlite://{}",
            dir.path().join(format!("sync-{n}.db")).display()
        );
        // After a random number of answers, at a random moment after it.
        let answers = 1 + moment(n, Duration::from_secs(requests)).as_secs();
        fake.log.lock().unwrap().clear();
        let mut child = flowmeter_sync(&db, &config, TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let waiting = Instant::now();
        while (fake.log().len() as u64) < answers && child.try_wait().unwrap().is_none() {
            assert!(waiting.elapsed().as_secs() < 120, "the sync stopped asking");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_micros(n * 250)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let output = flowmeter_sync(&db, &config, TOKEN).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            loaded(&db).await == expected,
            "the store after a kill after {answers} answers and a second sync differs"
        );
    }
    eprintln!("sync: {killed} of {TRIALS} runs killed mid-way ({requests} requests in a full run)");
    assert!(
        killed >= TRIALS as u32 / 2,
        "only {killed} runs were killed mid-way"
    );
}
