//! Test support: a fresh SQLite file or PostgreSQL database per test, and a small builder of
//! import-format folders.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use flowmeter_core::{Config, Scope, Window};
use flowmeter_engine::{DoraReport, Snapshot};
use flowmeter_store::Store;
use serde_json::{Value, json};

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

fn pg_admin_url() -> String {
    std::env::var("FLOWMETER_TEST_PG")
        .unwrap_or_else(|_| "postgres:///postgres?host=/var/run/postgresql&user=postgres".into())
}

fn pg_url(db: &str) -> String {
    let admin = pg_admin_url();
    admin.replacen("/postgres?", &format!("/{db}?"), 1)
}

/// Whether the environment variable `name` asks to skip a part of the suite (`1` or `true`).
pub fn skipping(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// A fresh database; PostgreSQL ones are dropped by [`TestDb::finish`].
pub struct TestDb {
    pub store: Store,
    pub name: String,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("flowmeter.db").display());
        let store = Store::open(&url).await.expect("open sqlite store");
        TestDb {
            store,
            name: "sqlite".into(),
            url,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database. An unreachable PostgreSQL fails the test, unless
    /// `FLOWMETER_TEST_SKIP_POSTGRES=1` says to skip it: then `None`, said out loud.
    pub async fn postgres() -> Option<TestDb> {
        let admin = match sqlx::PgPool::connect(&pg_admin_url()).await {
            Ok(pool) => pool,
            Err(e) => {
                if skipping("FLOWMETER_TEST_SKIP_POSTGRES") {
                    eprintln!(
                        "SKIPPED: the PostgreSQL half of this test (FLOWMETER_TEST_SKIP_POSTGRES=1): {e}"
                    );
                    return None;
                }
                panic!(
                    "PostgreSQL is unreachable ({e}); start it (see README), or set \
                     FLOWMETER_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
                );
            }
        };
        let name = format!(
            "fm_test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await
        .expect("drop old test database");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = pg_url(&name);
        let store = Store::open(&url).await.expect("open postgres store");
        Some(TestDb {
            store,
            name,
            url,
            _dir: None,
        })
    }

    pub async fn finish(self) {
        self.store.close().await;
        if self.name != "sqlite" {
            let admin = sqlx::PgPool::connect(&pg_admin_url())
                .await
                .expect("reconnect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&admin)
            .await
            .expect("drop test database");
            admin.close().await;
        }
    }
}

/// Runs `test` on a fresh SQLite store and a fresh PostgreSQL store.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = TestDb::sqlite().await;
    test(sqlite.store.clone()).await;
    sqlite.finish().await;
    if let Some(pg) = TestDb::postgres().await {
        test(pg.store.clone()).await;
        pg.finish().await;
    }
}

/// The report of a store, computed off the async threads as the CLI does.
pub async fn report(
    store: &Store,
    config: &Config,
    from: &str,
    to: &str,
    scope: Scope,
) -> DoraReport {
    try_report(store, config, from, to, scope)
        .await
        .expect("report")
}

pub async fn try_report(
    store: &Store,
    config: &Config,
    from: &str,
    to: &str,
    scope: Scope,
) -> Result<DoraReport, flowmeter_engine::EngineError> {
    let dataset = store.load().await.expect("load");
    let config = config.clone();
    let window = Window::parse(from, to).expect("window");
    tokio::task::spawn_blocking(move || {
        let snapshot = Snapshot::build(&dataset, &config)?;
        snapshot.dora(window, &scope)
    })
    .await
    .expect("engine task")
}

pub fn scope_repo(repo: &str) -> Scope {
    Scope {
        repo: Some(repo.into()),
        ..Scope::default()
    }
}

pub fn scope_service(service: &str) -> Scope {
    Scope {
        service: Some(service.into()),
        ..Scope::default()
    }
}

pub fn scope_team(team: &str) -> Scope {
    Scope {
        team: Some(team.into()),
        ..Scope::default()
    }
}

/// A folder of import-format files, built line by line.
#[derive(Default, Clone)]
pub struct Org {
    pub commits: Vec<Value>,
    pub pull_requests: Vec<Value>,
    pub deployments: Vec<Value>,
    pub incidents: Vec<Value>,
    pub issues: Vec<Value>,
}

impl Org {
    /// A commit whose `authored_at` and `committed_at` are `at`.
    pub fn commit(
        &mut self,
        repo: &str,
        sha: &str,
        parents: &[&str],
        at: &str,
        subject: &str,
    ) -> &mut Self {
        self.commits.push(json!({
            "repo": repo, "sha": sha, "parents": parents, "authored_at": at,
            "committed_at": at, "author": "dev", "message": subject,
        }));
        self
    }

    /// A successful production deployment finished at `at`.
    pub fn deploy(&mut self, repo: &str, id: &str, sha: &str, at: &str) -> &mut Self {
        self.deployment(repo, id, sha, "production", "success", at)
    }

    pub fn deployment(
        &mut self,
        repo: &str,
        id: &str,
        sha: &str,
        env: &str,
        status: &str,
        at: &str,
    ) -> &mut Self {
        self.deployments.push(json!({
            "repo": repo, "id": id, "environment": env, "sha": sha, "status": status,
            "created_at": at, "finished_at": at,
        }));
        self
    }

    pub fn incident(
        &mut self,
        repo: &str,
        id: &str,
        created: &str,
        resolved: Option<&str>,
    ) -> &mut Self {
        self.incidents.push(json!({
            "repo": repo, "id": id, "created_at": created, "resolved_at": resolved,
        }));
        self
    }

    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("create dir");
        let files = [
            ("commits.jsonl", &self.commits),
            ("pull_requests.jsonl", &self.pull_requests),
            ("deployments.jsonl", &self.deployments),
            ("incidents.jsonl", &self.incidents),
            ("issues.jsonl", &self.issues),
        ];
        for (name, lines) in files {
            if lines.is_empty() {
                continue;
            }
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(dir.join(name), text).expect("write file");
        }
    }

    /// Writes the folder and imports it; panics when anything is not imported.
    pub async fn import(&self, store: &Store) -> flowmeter::import::ImportSummary {
        let dir = tempfile::tempdir().expect("temp dir");
        self.write(dir.path());
        let summary = flowmeter::import::import_dir(store, dir.path(), false)
            .await
            .expect("import");
        assert!(summary.ok(), "import failed: {:?}", summary.files);
        summary
    }
}

/// Asserts two floats are equal to within rounding.
#[track_caller]
pub fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a value, not null");
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

/// A GET over a plain connection, as a client outside the process sees the server.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

/// Starts `flowmeter serve` on port 0 and returns it with its address.
pub fn start_server(db: &str, config: Option<&Path>) -> (std::process::Child, String) {
    start_server_env(db, config, &[])
}

/// Starts `flowmeter serve` with a configuration and environment variables.
pub fn start_server_with(
    db: &str,
    config: &Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    start_server_env(db, Some(config), env)
}

fn start_server_env(
    db: &str,
    config: Option<&Path>,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowmeter"));
    command
        .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command.env_remove("FLOWMETER_CONFIG");
    command.envs(env.iter().copied());
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command.spawn().expect("start flowmeter serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, address)
}

pub fn stop(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        child.wait().unwrap().success(),
        "the server shuts down cleanly on SIGTERM"
    );
}

/// A JSON POST over a plain connection; the answer's status.
pub fn post_json(address: &str, path: &str, body: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status")
}

/// A TCP front for the test PostgreSQL that a test can cut (every connection dropped, new ones
/// refused) and restore: the database going away and coming back, without stopping the
/// PostgreSQL other tests share.
pub struct PgProxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl PgProxy {
    /// Fronts the PostgreSQL of the admin URL, which must reach it by a Unix socket (`host=/dir`).
    pub async fn start() -> PgProxy {
        let admin = pg_admin_url();
        let socket_dir = admin
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("host="))
            .filter(|h| h.starts_with('/'))
            .unwrap_or_else(|| panic!("the proxy needs a Unix-socket PostgreSQL URL: {admin}"))
            .to_string();
        let socket = format!("{socket_dir}/.s.PGSQL.5432");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cuts, _) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn({
            let (up, cuts) = (up.clone(), cuts.clone());
            async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let _ = client.set_nodelay(true);
                    let socket = socket.clone();
                    let mut cut = cuts.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::UnixStream::connect(&socket).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        });
        PgProxy {
            port,
            up,
            cuts,
            task,
        }
    }

    /// The URL of database `db` through this proxy.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
