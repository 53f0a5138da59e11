//! The weekly Slack digest: its content against the report, Block Kit validity, Slack's
//! documented answers against a fake webhook, sending once, the schedule across a
//! daylight-saving change, two processes on one PostgreSQL, and the webhook URL kept secret.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use flowmeter_core::{Config, IsoWeek};
use flowmeter_store::{DigestClaim, DigestState, Store};
use serde_json::{Value, json};

use crate::support::*;

const SECRET: &str = "SECRETxyz";

/// One scripted answer: status, `Retry-After`, content type and body.
#[derive(Clone)]
struct Answer(u16, Option<&'static str>, &'static str, &'static str);

const OK: Answer = Answer(200, None, "text/plain;charset=utf-8", "ok");

#[derive(Default)]
struct FakeSlack {
    answers: Mutex<VecDeque<Answer>>,
    bodies: Mutex<Vec<Value>>,
    /// The next request is logged, then never answered.
    hang_next: Mutex<bool>,
}

async fn slack_answer(State(fake): State<Arc<FakeSlack>>, body: String) -> Response {
    fake.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
    if std::mem::take(&mut *fake.hang_next.lock().unwrap()) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let Answer(status, retry, content_type, text) =
        fake.answers.lock().unwrap().pop_front().unwrap_or(OK);
    let mut response = (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [("content-type", content_type)],
        text,
    )
        .into_response();
    if let Some(retry) = retry {
        response
            .headers_mut()
            .insert("retry-after", retry.parse().unwrap());
    }
    response
}

/// A fake Slack incoming webhook; its URL holds [`SECRET`].
async fn fake_slack() -> (Arc<FakeSlack>, String) {
    let fake = Arc::new(FakeSlack::default());
    let app = Router::new()
        .route(
            "/services/T000/B000/SECRETxyz",
            axum::routing::post(slack_answer),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/services/T000/B000/{SECRET}",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, url)
}

impl FakeSlack {
    fn script(&self, answers: &[Answer]) {
        self.answers.lock().unwrap().extend(answers.iter().cloned());
    }
    fn posts(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

const CONFIG: &str = r#"
[server]
public_url = "https://fm.example.com"

[[teams]]
name = "platform"
repos = ["acme/api"]

[[teams]]
name = "web"
repos = ["acme/web"]

[[digests]]
team = "platform"
webhook_url_env = "SLACK_PLATFORM"
schedule = "0 9 * * MON"
timezone = "Europe/Berlin"
"#;

fn config() -> Config {
    Config::from_toml(CONFIG, |_| None).unwrap()
}

/// Two teams around 2026-W47 (16 to 22 November 2026): deployments, one failed, incidents
/// opened, resolved and open, a merged pull request and one waiting for review whose title
/// needs escaping.
fn organisation() -> Org {
    let mut org = Org::default();
    org.commit("acme/api", "a1", &[], "2026-11-02T09:00:00Z", "init")
        .commit("acme/api", "a2", &["a1"], "2026-11-09T09:00:00Z", "feature")
        .commit("acme/api", "a3", &["a2"], "2026-11-16T09:00:00Z", "more")
        .commit("acme/api", "a4", &["a3"], "2026-11-17T09:00:00Z", "again")
        .deploy("acme/api", "d1", "a1", "2026-11-02T12:00:00Z")
        .deploy("acme/api", "d2", "a2", "2026-11-10T12:00:00Z")
        .deploy("acme/api", "d3", "a3", "2026-11-16T12:00:00Z")
        .deploy("acme/api", "d4", "a4", "2026-11-18T12:00:00Z")
        .incident(
            "acme/api",
            "i1",
            "2026-11-18T13:00:00Z",
            Some("2026-11-18T16:00:00Z"),
        )
        .incident("acme/api", "i2", "2026-11-20T08:00:00Z", None)
        .commit("acme/web", "w1", &[], "2026-11-03T09:00:00Z", "init")
        .deploy("acme/web", "wd1", "w1", "2026-11-03T12:00:00Z");
    org.pull_requests.push(json!({
        "repo": "acme/api", "number": 7, "created_at": "2026-11-15T10:00:00Z",
        "title": "More", "author": "ann", "merged_at": "2026-11-16T11:00:00Z",
        "base_branch": "main", "head_branch": "more", "merge_commit_sha": "a3", "commits": ["a3"],
        "reviews": [{"reviewer": "bob", "state": "APPROVED", "submitted_at": "2026-11-16T10:00:00Z"}],
    }));
    org.pull_requests.push(json!({
        "repo": "acme/api", "number": 9, "created_at": "2026-11-19T10:00:00Z",
        "title": "Escape <b> & friends", "author": "cat",
        "base_branch": "main", "head_branch": "escape", "commits": [],
    }));
    org
}

fn w47() -> IsoWeek {
    IsoWeek::parse("week", "2026-W47").unwrap()
}

fn now() -> flowmeter_core::Timestamp {
    "2026-11-23T08:00:00Z".parse().unwrap()
}

/// Block Kit's rules for what a message may hold (the kinds of blocks Slack documents, their
/// required fields and limits, and escaped user text); the errors of `message`.
fn block_errors(message: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(blocks) = message["blocks"].as_array() else {
        return vec!["no blocks".into()];
    };
    if blocks.len() > 50 {
        errors.push(format!("{} blocks", blocks.len()));
    }
    let mut ids = std::collections::HashSet::new();
    let text_object = |t: &Value, max: usize, errors: &mut Vec<String>| {
        let kind = t["type"].as_str().unwrap_or("");
        let text = t["text"].as_str().unwrap_or("");
        if !matches!(kind, "plain_text" | "mrkdwn") {
            errors.push(format!("text object of type '{kind}'"));
        }
        if text.is_empty() || text.chars().count() > max {
            errors.push(format!("text of {} characters", text.chars().count()));
        }
        if kind == "mrkdwn" {
            // Outside <link|label>, no raw < or >; every & starts an entity.
            let mut rest = text;
            while let Some(start) = rest.find('<') {
                let outside = &rest[..start];
                if outside.contains('>') {
                    errors.push(format!("raw '>' in {text:?}"));
                }
                match rest[start..].find('>') {
                    Some(end) => rest = &rest[start + end + 1..],
                    None => {
                        errors.push(format!("raw '<' in {text:?}"));
                        rest = "";
                    }
                }
            }
            if rest.contains('>') {
                errors.push(format!("raw '>' in {text:?}"));
            }
        }
    };
    for block in blocks {
        if let Some(id) = block["block_id"].as_str()
            && (!ids.insert(id.to_string()) || id.len() > 255)
        {
            errors.push(format!("block_id {id}"));
        }
        match block["type"].as_str().unwrap_or("") {
            "header" => {
                if block["text"]["type"] != "plain_text" {
                    errors.push("header text not plain_text".into());
                }
                text_object(&block["text"], 150, &mut errors);
            }
            "section" => {
                let text = &block["text"];
                let fields = block["fields"].as_array();
                if text.is_null() && fields.is_none() {
                    errors.push("section without text or fields".into());
                }
                if !text.is_null() {
                    text_object(text, 3000, &mut errors);
                }
                if let Some(fields) = fields {
                    if fields.is_empty() || fields.len() > 10 {
                        errors.push(format!("{} fields", fields.len()));
                    }
                    for field in fields {
                        text_object(field, 2000, &mut errors);
                    }
                }
            }
            "context" => {
                let elements = block["elements"].as_array().cloned().unwrap_or_default();
                if elements.is_empty() || elements.len() > 10 {
                    errors.push(format!("context of {} elements", elements.len()));
                }
                for e in &elements {
                    if e["type"] == "image" {
                        if e["image_url"].as_str().is_none() || e["alt_text"].as_str().is_none() {
                            errors.push("image element without url or alt text".into());
                        }
                    } else {
                        text_object(e, 3000, &mut errors);
                    }
                }
            }
            "divider" => {}
            "actions" => {
                let n = block["elements"].as_array().map_or(0, Vec::len);
                if n == 0 || n > 25 {
                    errors.push(format!("actions of {n} elements"));
                }
            }
            "image" => {
                if block["image_url"].as_str().is_none() || block["alt_text"].as_str().is_none() {
                    errors.push("image without url or alt text".into());
                }
            }
            other => errors.push(format!("unknown block type '{other}'")),
        }
    }
    errors
}

#[test]
fn the_block_kit_checker_takes_slacks_examples_and_refuses_each_broken_rule() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/slack");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let message: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if message.get("blocks").is_some() {
                assert_eq!(block_errors(&message), Vec::<String>::new(), "{path:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 5);
    let header = |text: &str| json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": text}}]});
    assert!(!block_errors(&header(&"x".repeat(151))).is_empty());
    assert!(!block_errors(&header("")).is_empty());
    let fields: Vec<Value> = (0..11)
        .map(|_| json!({"type": "mrkdwn", "text": "a"}))
        .collect();
    assert!(!block_errors(&json!({"blocks": [{"type": "section", "fields": fields}]})).is_empty());
    assert!(
        !block_errors(
            &json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "a > c"}}]})
        )
        .is_empty()
    );
    assert!(!block_errors(&json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}}]})).is_empty());
    assert!(!block_errors(&json!({"blocks": [{"type": "button"}]})).is_empty());
    let many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
    assert!(!block_errors(&json!({"blocks": many})).is_empty());
}

async fn snapshot_of(store: &Store, config: &Config) -> Arc<flowmeter_engine::Snapshot> {
    Arc::new(
        flowmeter::report::snapshot(store, config.clone())
            .await
            .unwrap(),
    )
}

async fn message(
    snapshot: &Arc<flowmeter_engine::Snapshot>,
    team: Option<&str>,
    week: IsoWeek,
) -> Value {
    let (snapshot, team) = (snapshot.clone(), team.map(String::from));
    tokio::task::spawn_blocking(move || {
        flowmeter::digest::build_message(&snapshot, team.as_deref(), week, now())
    })
    .await
    .unwrap()
    .unwrap()
}

/// The message of a hand-built week: the report's numbers in words, on both stores the same
/// bytes (kept in `digest-platform-2026-W47.json`), valid Block Kit, user text escaped; a
/// quiet week in one line; the dashboard's page shows the same.
#[tokio::test]
async fn a_weeks_digest_is_its_report_in_words() {
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots/digest-platform-2026-W47.json");
    on_both(|store| {
        let expected_path = expected_path.clone();
        async move {
            let config = config();
            organisation().import(&store).await;
            let snapshot = snapshot_of(&store, &config).await;
            let body = message(&snapshot, Some("platform"), w47()).await;
            assert_eq!(block_errors(&body), Vec::<String>::new(), "{body:#}");
            let report = report(&store, &config, "2026-11-16", "2026-11-23", scope_team("platform")).await;
            let four = report_of(&store, &config, "2026-10-26", "2026-11-23").await;
            let text = body.to_string();
            for expected in [
                format!("{:.2} / week", report.deployment_frequency.per_week),
                format!("{:.2} / week", four.deployment_frequency.per_week),
                format!("{} deployments", report.deployment_frequency.deployments),
                format!("{} failed", report.change_failure_rate.failed),
                format!("{} resolved", report.recovery_time.incidents),
                format!("{} still open", report.recovery_time.open),
                "2 opened".to_string(),
                "Escape &lt;b&gt; &amp; friends".to_string(),
                "https://github.com/acme/api/pull/9".to_string(),
                "https://fm.example.com/receipts/lead-time?from=2026-11-16&to=2026-11-23&team=platform".to_string(),
                "https://fm.example.com/digest?team=platform&week=2026-W47".to_string(),
            ] {
                assert!(text.contains(&expected), "{expected} not in {body:#}");
            }
            assert_eq!(report.deployment_frequency.deployments, 2);
            assert_eq!(report.change_failure_rate.failed, 1);
            assert!(!text.contains("<b>"));
            if std::env::var("UPDATE_SNAPSHOTS").is_ok() || !expected_path.exists() {
                std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
                std::fs::write(&expected_path, serde_json::to_string_pretty(&body).unwrap() + "\n").unwrap();
            }
            let kept: Value = serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
            assert_eq!(body, kept, "the digest differs from {expected_path:?}");

            // A week without deployments or pull requests: one line.
            let quiet = message(&snapshot, Some("web"), w47()).await;
            assert_eq!(block_errors(&quiet), Vec::<String>::new());
            assert!(quiet["blocks"].as_array().unwrap().len() <= 4, "{quiet:#}");
            assert!(quiet["text"].as_str().unwrap().contains("A quiet week for web"), "{quiet:#}");

            // The page the message links to says the same.
            let state = flowmeter_web::AppState::new(store.clone(), config.clone()).await.unwrap();
            let (status, html) = page(&state, "/digest?team=platform&week=2026-W47").await;
            assert_eq!(status, 200, "{html}");
            for block in body["blocks"].as_array().unwrap() {
                let texts: Vec<&Value> = match block["fields"].as_array() {
                    Some(fields) => fields.iter().collect(),
                    None => vec![&block["text"]],
                };
                for t in texts {
                    let Some(t) = t["text"].as_str() else { continue };
                    // Each link's label is on the page, escaped as HTML there.
                    for label in t.split('|').skip(1).filter_map(|rest| rest.split('>').next()) {
                        let label = label.replace("&lt;", "&#60;").replace("&gt;", "&#62;").replace("&amp;", "&#38;");
                        assert!(html.contains(&label) || html.contains(&label.replace("&#", "&#x")), "{label} not on the page");
                    }
                }
            }
            let (status, body) = page(&state, "/digest?team=platform&week=2026-W99").await;
            assert_eq!(status, 400);
            assert!(body.contains("week"), "{body}");
        }
    })
    .await;
}

async fn report_of(
    store: &Store,
    config: &Config,
    from: &str,
    to: &str,
) -> flowmeter_engine::DoraReport {
    report(store, config, from, to, scope_team("platform")).await
}

async fn page(state: &flowmeter_web::AppState, uri: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = flowmeter_web::app(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

struct Cli {
    dir: tempfile::TempDir,
    db: String,
    url: String,
}

impl Cli {
    async fn new(url: String) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("digest.db").display());
        std::fs::write(dir.path().join("flowmeter.toml"), CONFIG).unwrap();
        let store = Store::open(&db).await.unwrap();
        organisation().import(&store).await;
        store.close().await;
        Cli { dir, db, url }
    }

    /// `flowmeter digest` for a week: success, and everything printed.
    fn digest(&self, week: &str, extra: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
            .args(["-vv", "digest", "--db", &self.db, "--week", week])
            .args(extra)
            .arg("--config")
            .arg(self.dir.path().join("flowmeter.toml"))
            .env("SLACK_PLATFORM", &self.url)
            .env("FLOWMETER_LOG", "trace")
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            !printed.contains(SECRET),
            "the webhook URL leaked: {printed}"
        );
        (output.status.success(), printed)
    }

    async fn record(&self, week: &str) -> flowmeter_store::DigestSend {
        let store = Store::open(&self.db).await.unwrap();
        let send = store.digest_send("platform", week).await.unwrap().unwrap();
        store.close().await;
        send
    }
}

/// Slack's documented answers, through the real binary: 429 waits and sends once; 400 is
/// reported and not retried; 410 marks the digest failing and the next run tries again; 5xx
/// with an HTML page is retried; a second run of a sent week sends nothing; the URL never
/// shows, at trace level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_answers_as_documented_and_a_week_is_sent_once() {
    let (fake, url) = fake_slack().await;
    let cli = Cli::new(url).await;
    let run = |week: &'static str, extra: &'static [&'static str]| {
        let cli = &cli;
        tokio::task::block_in_place(move || cli.digest(week, extra))
    };

    fake.script(&[Answer(429, Some("1"), "text/plain", ""), OK]);
    let (ok, printed) = run("2026-W47", &[]);
    assert!(
        ok && printed.contains("digest platform, 2026-W47: sent (2 requests)"),
        "{printed}"
    );
    assert_eq!(fake.posts(), 2);
    {
        let bodies = fake.bodies.lock().unwrap();
        assert_eq!(
            bodies[0], bodies[1],
            "the same message, sent again after the wait"
        );
    }
    assert_eq!(cli.record("2026-W47").await.state, DigestState::Sent);

    let (ok, printed) = run("2026-W47", &[]);
    assert!(ok && printed.contains("already sent at"), "{printed}");
    assert_eq!(fake.posts(), 2, "a sent week is not sent again");

    fake.script(&[Answer(400, None, "text/plain", "invalid_payload")]);
    let (ok, printed) = run("2026-W46", &[]);
    assert!(
        !ok && printed.contains("Slack refused the message: 400 invalid_payload"),
        "{printed}"
    );
    assert_eq!(fake.posts(), 3, "400 is not retried");

    fake.script(&[Answer(410, None, "text/plain", "channel_is_archived")]);
    let (ok, _) = run("2026-W45", &[]);
    assert!(!ok);
    let failing = cli.record("2026-W45").await;
    assert_eq!(failing.state, DigestState::Failed);
    assert!(failing.error.unwrap().contains("410 channel_is_archived"));
    let (ok, printed) = run("2026-W45", &[]);
    assert!(
        ok && printed.contains("sent (1 requests)"),
        "a failed week is tried at the next run: {printed}"
    );

    fake.script(&[
        Answer(
            500,
            None,
            "text/html",
            "<html><body>Server Error | Slack</body></html>",
        ),
        OK,
    ]);
    let (ok, printed) = run("2026-W44", &[]);
    assert!(ok && printed.contains("sent (2 requests)"), "{printed}");

    let (ok, printed) = run("2026-W43", &["--dry-run"]);
    assert!(ok);
    let body: Value = serde_json::Deserializer::from_str(&printed[printed.find('{').unwrap()..])
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(block_errors(&body), Vec::<String>::new());
    assert_eq!(fake.posts(), 2 + 1 + 2 + 2, "a dry run sends nothing");

    let (ok, printed) = run("2026-W99", &[]);
    assert!(!ok && printed.contains("--week"), "{printed}");
}

/// Killed after Slack took the message but before the record: the claim lapses and the next
/// run sends again, so a week is sent at least once and at most twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_slacks_answer_and_the_record_sends_at_most_twice() {
    let (fake, url) = fake_slack().await;
    let cli = Cli::new(url.clone()).await;
    *fake.hang_next.lock().unwrap() = true;
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args([
            "digest",
            "--db",
            &cli.db,
            "--week",
            "2026-W47",
            "--lease-seconds",
            "2",
        ])
        .arg("--config")
        .arg(cli.dir.path().join("flowmeter.toml"))
        .env("SLACK_PLATFORM", &url)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waiting = std::time::Instant::now();
    while fake.posts() == 0 {
        assert!(
            waiting.elapsed().as_secs() < 60,
            "the digest was never posted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let claim = cli.record("2026-W47").await;
    assert_eq!(claim.state, DigestState::Sending);
    // Until the claim has lapsed (its end is kept to the second).
    let lapsed = claim.claimed_until.unwrap() + chrono::Duration::milliseconds(1500);
    while chrono::Utc::now() < lapsed {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, printed) = tokio::task::block_in_place(|| cli.digest("2026-W47", &[]));
    assert!(ok && printed.contains("sent (1 requests)"), "{printed}");
    let (ok, printed) = tokio::task::block_in_place(|| cli.digest("2026-W47", &[]));
    assert!(ok && printed.contains("already sent"), "{printed}");
    assert_eq!(fake.posts(), 2, "at most twice");
}

fn target(url: &str) -> flowmeter::digest::Target {
    let config = config();
    flowmeter::digest::targets(&config, |v| {
        (v == "SLACK_PLATFORM").then(|| url.to_string())
    })
    .unwrap()
    .remove(0)
}

fn t(text: &str) -> flowmeter_core::Timestamp {
    text.parse().unwrap()
}

/// Monday 09:00 Europe/Berlin, a clock stepped hour by hour across the change to summer time
/// (29 March 2026): the week before the start is caught up once, then each Monday sends its
/// week once, at 08:00 UTC in winter and 07:00 UTC in summer; after a long stop only the latest
/// week is sent.
#[tokio::test]
async fn the_schedule_sends_each_week_once_across_daylight_saving() {
    let (fake, url) = fake_slack().await;
    let db = TestDb::sqlite().await;
    organisation().import(&db.store).await;
    let state = flowmeter_web::AppState::new(db.store.clone(), config())
        .await
        .unwrap();
    let targets = vec![target(&url)];
    let slack = flowmeter_ingest::slack::Slack::new(Default::default()).unwrap();
    let mut sent = Vec::new();
    let mut now = t("2026-03-21T00:00:00Z");
    while now < t("2026-04-02T00:00:00Z") {
        for (_, week, outcome) in flowmeter::digest::run_due(&state, &slack, &targets, now).await {
            assert!(
                matches!(outcome, flowmeter::digest::Outcome::Sent { .. }),
                "{outcome}"
            );
            sent.push((week.to_string(), now));
        }
        now += chrono::Duration::minutes(30);
    }
    assert_eq!(
        sent,
        [
            ("2026-W11".to_string(), t("2026-03-21T00:00:00Z")),
            ("2026-W12".to_string(), t("2026-03-23T08:00:00Z")),
            ("2026-W13".to_string(), t("2026-03-30T07:00:00Z")),
        ]
    );
    // Down from Tuesday 31 March to Wednesday 22 April: the latest week only, once.
    let after =
        flowmeter::digest::run_due(&state, &slack, &targets, t("2026-04-22T10:00:00Z")).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].1.to_string(), "2026-W16");
    assert!(
        flowmeter::digest::run_due(&state, &slack, &targets, t("2026-04-23T10:00:00Z"))
            .await
            .is_empty()
    );
    assert_eq!(fake.posts(), 4);
    db.finish().await;
}

/// The record on both stores: one claim at a time, a lapsed claim taken over with a new
/// ticket that fences the old one out, a failed week due again only when asked.
#[tokio::test]
async fn claims_of_a_digest_week_on_both_stores() {
    on_both(|store| async move {
        let lease = Duration::from_secs(60);
        let now = t("2026-11-23T08:00:00Z");
        let DigestClaim::Claimed(first) = store
            .claim_digest("d", "2026-W47", now, lease, false)
            .await
            .unwrap()
        else {
            panic!("claimed")
        };
        assert_eq!(first.attempt, 1);
        let DigestClaim::Taken(held) = store
            .claim_digest("d", "2026-W47", now, lease, true)
            .await
            .unwrap()
        else {
            panic!("held")
        };
        assert_eq!(held.state, DigestState::Sending);
        let later = now + chrono::Duration::seconds(61);
        let DigestClaim::Claimed(second) = store
            .claim_digest("d", "2026-W47", later, lease, false)
            .await
            .unwrap()
        else {
            panic!("lapsed")
        };
        assert_eq!(second.attempt, 2);
        assert!(
            !store.digest_sent(&first, later).await.unwrap(),
            "the old ticket is fenced out"
        );
        assert!(
            store
                .digest_failed(
                    &second,
                    "410 channel_is_archived",
                    later + chrono::Duration::minutes(15)
                )
                .await
                .unwrap()
        );
        assert!(matches!(
            store
                .claim_digest("d", "2026-W47", later, lease, false)
                .await
                .unwrap(),
            DigestClaim::Taken(_)
        ));
        let DigestClaim::Claimed(third) = store
            .claim_digest("d", "2026-W47", later, lease, true)
            .await
            .unwrap()
        else {
            panic!("retried")
        };
        assert!(store.digest_sent(&third, later).await.unwrap());
        let sent = store.digest_send("d", "2026-W47").await.unwrap().unwrap();
        assert_eq!(
            (sent.state, sent.attempts, sent.error),
            (DigestState::Sent, 3, None)
        );
        assert!(matches!(
            store
                .claim_digest(
                    "d",
                    "2026-W47",
                    later + chrono::Duration::days(9),
                    lease,
                    true
                )
                .await
                .unwrap(),
            DigestClaim::Taken(_)
        ));
    })
    .await;
}

/// Two servers on one PostgreSQL, each sending the digest of 20 weeks at once: every week is
/// posted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgresql_never_both_send() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (fake, url) = fake_slack().await;
    let other = Store::open(&db.url).await.unwrap();
    let slack = flowmeter_ingest::slack::Slack::new(Default::default()).unwrap();
    let target = target(&url);
    let body = json!({"text": "a week", "blocks": []});
    for n in 1..=20 {
        let week = IsoWeek::parse("week", &format!("2026-W{n:02}")).unwrap();
        let send = |store: Store| {
            let (slack, target, body) = (slack.clone(), target.clone(), body.clone());
            tokio::spawn(async move {
                flowmeter::digest::deliver(
                    &store,
                    &slack,
                    &target,
                    week,
                    &body,
                    now(),
                    Duration::from_secs(60),
                    false,
                )
                .await
                .unwrap()
            })
        };
        let (a, b) = (send(db.store.clone()), send(other.clone()));
        let outcomes = [a.await.unwrap(), b.await.unwrap()];
        let sent = outcomes
            .iter()
            .filter(|o| matches!(o, flowmeter::digest::Outcome::Sent { .. }))
            .count();
        assert_eq!(sent, 1, "{outcomes:?}");
    }
    assert_eq!(fake.posts(), 20);
    other.close().await;
    db.finish().await;
}

/// Every team's digest of a generated organisation, and the organisation's, for a busy week, a
/// week at the data's end and a week before any data: valid Block Kit.
#[tokio::test]
async fn every_teams_digest_of_a_generated_organisation_is_valid_block_kit() {
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org");
    let output = Command::new(env!("CARGO_BIN_EXE_flowmeter"))
        .args(["generate", "--scale", "M", "--seed", "13"])
        .arg(&org)
        .output()
        .unwrap();
    assert!(output.status.success());
    let mut config = flowmeter::config::load(Some(&org.join("flowmeter.toml"))).unwrap();
    config.server.public_url = "https://fm.example.com".into();
    let db = TestDb::sqlite().await;
    let summary = flowmeter::import::import_dir(&db.store, &org, false)
        .await
        .unwrap();
    assert!(summary.ok());
    let snapshot = snapshot_of(&db.store, &config).await;
    let teams: Vec<Option<String>> = config
        .teams
        .iter()
        .map(|t| Some(t.name.clone()))
        .chain([None])
        .collect();
    assert!(teams.len() > 3);
    for week in ["2025-W40", "2026-W01", "2020-W10"] {
        let week = IsoWeek::parse("week", week).unwrap();
        for team in &teams {
            let body = message(&snapshot, team.as_deref(), week).await;
            assert_eq!(
                block_errors(&body),
                Vec::<String>::new(),
                "{team:?} {week}: {body:#}"
            );
            assert!(body["text"].as_str().unwrap().chars().count() <= 3000);
        }
    }
    db.finish().await;
}
