//! Several `flowmeter serve` replicas on one PostgreSQL database: each follows the store's
//! changes on its own (a write in one is counted by the other at once, through the store's
//! change notifications), and a scheduled sync runs in one replica at a time, once per period;
//! when the replica holding it is killed, another takes it over.

use std::time::{Duration, Instant};

use crate::github::{Switches, github_config, start_fake};
use crate::support::*;

fn deployments_counted(address: &str) -> u64 {
    let (status, body) = http_get(address, "/api/v1/dora?from=2024-03-01&to=2024-03-15");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    report["deployment_frequency"]["deployments"]
        .as_u64()
        .unwrap()
}

/// Starts `flowmeter serve` on `db` under an application name (the token reaches it through its
/// environment only), and returns it with its address.
fn replica(
    db: &str,
    config: &std::path::Path,
    token: &str,
    name: &str,
) -> (std::process::Child, String) {
    let url = format!("{db}&application_name={name}");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_flowmeter"));
    command
        .args(["serve", "--db", &url, "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("FLOWMETER_GITHUB_TOKEN", token)
        .env_remove("FLOWMETER_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    (child, address)
}

/// The application name of the connection holding a source's sync lock, if any.
async fn sync_holder(admin: &sqlx::PgPool, db: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.datname = $1 LIMIT 1",
    )
    .bind(db)
    .fetch_optional(admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_follow_one_store_and_share_its_sync_schedule() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let mut org = Org::default();
    org.commit("acme/api", "c1", &[], "2024-03-01T00:00:00Z", "init")
        .deploy("acme/api", "d1", "c1", "2024-03-02T00:00:00Z");
    org.import(&db.store).await;
    let (fake, address) = start_fake(Switches::default(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flowmeter.toml");
    let github = github_config(address);
    std::fs::write(
        &config,
        format!(
            "[server]\nsync_seconds = 4\nrefresh_seconds = 600\n[github]\nurl = \"{}\"\nrepos = [\"acme/api\"]\npage_size = 4\nretry_base_ms = 1\n",
            github.url
        ),
    )
    .unwrap();
    let start = |name: &'static str| {
        let (url, config, token) = (db.url.clone(), config.clone(), github.token.clone());
        tokio::task::spawn_blocking(move || replica(&url, &config, &token, name))
    };
    let (a, a_address) = start("replica-a").await.unwrap();
    let (b, b_address) = start("replica-b").await.unwrap();

    // A write in one replica is counted by the other without waiting for its periodic check
    // (every 600 s here): the store notifies it.
    let before = deployments_counted(&b_address);
    let push = r#"{"repo": "acme/api", "id": "d9", "environment": "production", "sha": "c1", "status": "success", "created_at": "2024-03-05T00:00:00Z"}"#;
    assert_eq!(post_json(&a_address, "/api/v1/deployments", push), 201);
    let pushed = Instant::now();
    while deployments_counted(&b_address) == before {
        assert!(
            pushed.elapsed() < Duration::from_secs(2),
            "replica b did not count the deployment pushed to replica a within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The sync every 4 s runs in one replica at a time: over 14 s the fake sees the commits'
    // first page asked at most once per period (both replicas each period would be twice).
    let first_page = |log: &[crate::github::Logged]| {
        log.iter()
            .filter(|l| {
                l.url.starts_with("/repos/acme/api/commits?")
                    && !l.url.split(['?', '&']).any(|p| p.starts_with("page="))
            })
            .count()
    };
    tokio::time::sleep(Duration::from_secs(14)).await;
    let synced = first_page(&fake.log());
    assert!(
        (2..=5).contains(&synced),
        "{synced} syncs in 14 s, one every 4 s expected"
    );

    // The replica holding the sync dies mid-sync; the other takes it over.
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    fake.switches.lock().unwrap().stall = Some("/repos/acme/api/commits".into());
    let holder = loop {
        if let Some(holder) = sync_holder(&admin, &db.name).await {
            break holder;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut dead, mut survivor) = if holder == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    dead.kill().unwrap();
    dead.wait().unwrap();
    fake.switches.lock().unwrap().stall = None;
    let asked = first_page(&fake.log());
    let killed = Instant::now();
    loop {
        let now_held = sync_holder(&admin, &db.name).await;
        if first_page(&fake.log()) > asked || now_held.as_deref().is_some_and(|h| h != holder) {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "no replica took the sync over from the one that died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        survivor.try_wait().unwrap().is_none(),
        "the survivor still serves"
    );
    survivor.kill().unwrap();
    survivor.wait().unwrap();
    admin.close().await;
    db.finish().await;
}
