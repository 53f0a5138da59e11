//! GitHub webhooks (`POST /hooks/github`): GitHub's published payloads (fixtures/github/webhooks),
//! signed here with a known secret, delivered to a served app over TCP, and compared with what
//! the sync gives for the same objects from the fake GitHub; refused signatures write nothing;
//! redeliveries change nothing; and the sync after webhooks costs only conditional requests.

use std::collections::BTreeMap;
use std::time::Duration;

use flowmeter_core::Config;
use flowmeter_core::config::{DeploymentSource, DeploymentSourceConfig, GithubConfig};
use flowmeter_ingest::github::webhook::sign;
use flowmeter_store::{DeliveryStatus, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::github::{Listing, Switches, TOKEN, github_config, organisation, start_fake_with, sync};
use crate::support::*;

const SECRET: &str = "It's a Secret to Everybody";

/// One of GitHub's published webhook payloads.
fn hook(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/github/webhooks")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// An app served in this process (with its webhook worker), over TCP.
async fn serve(store: &Store, config: Config) -> String {
    let state = flowmeter_web::AppState::new(store.clone(), config)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        flowmeter_web::serve(listener, state, std::future::pending())
            .await
            .unwrap()
    });
    address
}

/// A request over a plain connection: the status and body of the answer.
async fn request(address: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut bytes = format!(
        "{head}Host: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n").expect("an answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// Delivers `body` as GitHub would, with this signature header (if any).
async fn deliver_signed(
    address: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, String) {
    let mut head = format!(
        "POST /hooks/github HTTP/1.1\r\nContent-Type: application/json\r\nUser-Agent: GitHub-Hookshot/test\r\nX-GitHub-Event: {event}\r\nX-GitHub-Delivery: {delivery}\r\n"
    );
    if let Some(signature) = signature {
        head.push_str(&format!("X-Hub-Signature-256: {signature}\r\n"));
    }
    request(address, &head, body).await
}

/// Delivers a payload signed with [`SECRET`].
async fn deliver(address: &str, event: &str, delivery: &str, payload: &Value) -> u16 {
    deliver_with(address, event, delivery, payload, SECRET).await
}

/// Delivers a payload signed with `secret`.
async fn deliver_with(
    address: &str,
    event: &str,
    delivery: &str,
    payload: &Value,
    secret: &str,
) -> u16 {
    let body = payload.to_string();
    deliver_signed(
        address,
        event,
        delivery,
        body.as_bytes(),
        Some(&sign(secret, body.as_bytes())),
    )
    .await
    .0
}

async fn get(address: &str, path: &str) -> (u16, String) {
    request(address, &format!("GET {path} HTTP/1.1\r\n"), b"").await
}

/// Waits (at most 30 s) until every kept delivery was processed.
async fn processed(store: &Store) -> Vec<DeliveryStatus> {
    let started = std::time::Instant::now();
    loop {
        let last = store.last_deliveries().await.unwrap();
        if last.iter().all(|d| d.processed_at.is_some()) {
            return last;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "deliveries not processed: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `Codertocat/Hello-World` (GitHub deployments, incidents labelled `incident`) and
/// `octo-org/octo-repo` (a deploying workflow), as the published webhook payloads describe
/// them: the fake GitHub lists the same objects the deliveries carry.
fn hello_world() -> BTreeMap<String, Listing> {
    let status = hook("deployment_status");
    let mut issue = hook("issues.labeled")["issue"].clone();
    issue["labels"][0]["name"] = json!("incident");
    let run = hook("workflow_run.completed")["workflow_run"].clone();
    let mut data = BTreeMap::new();
    let repo = "/repos/Codertocat/Hello-World";
    data.insert(
        format!("{repo}/deployments"),
        Listing::Items(vec![status["deployment"].clone()]),
    );
    data.insert(
        format!("{repo}/deployments/145988746/statuses"),
        Listing::Items(vec![status["deployment_status"].clone()]),
    );
    data.insert(format!("{repo}/issues"), Listing::Items(vec![issue]));
    let octo = "/repos/octo-org/octo-repo";
    data.insert(
        format!("{octo}/actions/workflows/test.yml/runs"),
        Listing::Wrapped("workflow_runs", vec![run]),
    );
    for path in [
        format!("{repo}/commits"),
        format!("{repo}/pulls"),
        format!("{octo}/commits"),
        format!("{octo}/pulls"),
        format!("{octo}/issues"),
    ] {
        data.insert(path, Listing::Items(vec![]));
    }
    data
}

/// Following both repositories, with the secret the deliveries are signed with (and an older
/// one, as while rotating).
fn hello_world_config(address: std::net::SocketAddr) -> GithubConfig {
    GithubConfig {
        repos: vec!["Codertocat/Hello-World".into(), "octo-org/octo-repo".into()],
        orgs: vec![],
        deployment_sources: vec![DeploymentSourceConfig {
            repo: "octo-org/octo-repo".into(),
            source: DeploymentSource::WorkflowRuns,
            workflows: vec!["test.yml".into()],
            environment: None,
        }],
        webhook_secret: vec!["an-older-secret".into(), SECRET.into()],
        // octo-org's hooks are signed with their own secret.
        webhook_repo_secrets: vec![flowmeter_core::config::WebhookRepoSecret {
            repo: "octo-org/*".into(),
            secret: vec![OCTO_SECRET.into()],
        }],
        ..github_config(address)
    }
}

const OCTO_SECRET: &str = "octo-org's own secret";

#[tokio::test]
async fn each_event_gives_the_records_the_sync_gives_for_the_same_objects() {
    let (fake, address) = start_fake_with(Switches::default(), hello_world()).await;
    let config = hello_world_config(address);
    // The sync's store: the reference.
    let synced = TestDb::sqlite().await;
    let outcome = sync(&synced.store, &config).await;
    assert!(outcome.ok(), "{outcome:?}");
    let reference = synced.store.load().await.unwrap();
    assert_eq!(reference.deployments.len(), 2, "{reference:?}");
    assert_eq!(reference.incidents.len(), 1);
    fake.log.lock().unwrap().clear();

    for db in [Some(TestDb::sqlite().await), TestDb::postgres().await]
        .into_iter()
        .flatten()
    {
        let store = db.store.clone();
        let address = serve(
            &store,
            Config {
                github: config.clone(),
                ..Config::default()
            },
        )
        .await;
        let mut issue = hook("issues.labeled");
        issue["issue"]["labels"][0]["name"] = json!("incident");
        issue["label"]["name"] = json!("incident");
        let mut unfollowed = hook("deployment");
        unfollowed["repository"]["full_name"] = json!("someone/else");
        let deliveries = [
            (
                "ping",
                "d-0",
                json!({"zen": "Design for failure.", "hook_id": 1, "repository": {"full_name": "Codertocat/Hello-World"}}),
                202,
            ),
            ("deployment", "d-1", hook("deployment"), 202),
            ("deployment_status", "d-2", hook("deployment_status"), 202),
            // A late `deployment` event after its status: the status stays.
            ("deployment", "d-3", hook("deployment"), 202),
            ("issues", "d-4", issue, 202),
            ("workflow_run", "d-5", hook("workflow_run.completed"), 202),
            // A tag push, a pull request and a release (not how this repository deploys):
            // nothing of them is written.
            ("push", "d-6", hook("push"), 202),
            ("pull_request", "d-7", hook("pull_request.closed"), 202),
            ("release", "d-8", hook("release.published"), 202),
            // Answered and ignored.
            (
                "star",
                "d-9",
                json!({"action": "created", "repository": {"full_name": "Codertocat/Hello-World"}}),
                202,
            ),
            ("deployment", "d-10", unfollowed, 202),
        ];
        for (event, id, payload, status) in &deliveries {
            let secret = match payload["repository"]["full_name"].as_str() {
                Some("octo-org/octo-repo") => OCTO_SECRET,
                _ => SECRET,
            };
            assert_eq!(
                deliver_with(&address, event, id, payload, secret).await,
                *status,
                "{event} {id}"
            );
        }
        // A repository's own secret signs nothing about another repository.
        assert_eq!(
            deliver_with(
                &address,
                "deployment",
                "d-11",
                &hook("deployment"),
                OCTO_SECRET
            )
            .await,
            401
        );
        let last = processed(&store).await;
        let outcome_of = |event: &str| {
            last.iter()
                .find(|d| d.event == event)
                .and_then(|d| d.outcome.clone())
                .unwrap_or_default()
        };
        assert!(outcome_of("push").starts_with("ignored"), "{last:?}");
        assert!(
            outcome_of("pull_request").contains("the next sync reads Codertocat/Hello-World pulls"),
            "{last:?}"
        );
        assert!(outcome_of("release").starts_with("ignored"), "{last:?}");
        assert!(
            outcome_of("workflow_run").starts_with("1 record(s) written"),
            "{last:?}"
        );
        assert!(
            !last
                .iter()
                .any(|d| d.event == "star" || d.repo == "someone/else"),
            "ignored deliveries are not kept: {last:?}"
        );
        let webhooks = store.load().await.unwrap();
        assert_eq!(webhooks.deployments, reference.deployments, "{}", db.name);
        assert_eq!(webhooks.incidents, reference.incidents, "{}", db.name);
        assert!(webhooks.commits.is_empty() && webhooks.pull_requests.is_empty());

        // A redelivery changes nothing and answers 200.
        let generation = store.generation().await.unwrap();
        let body = hook("deployment_status").to_string();
        let signature = sign(SECRET, body.as_bytes());
        let (status, answer) = deliver_signed(
            &address,
            "deployment_status",
            "d-2",
            body.as_bytes(),
            Some(&signature),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("duplicate"), "{answer}");

        // Refused: nothing kept, archived or written.
        let kept = |last: &[DeliveryStatus]| last.iter().map(|d| d.count).sum::<i64>();
        let kept_before = kept(&store.last_deliveries().await.unwrap());
        let raw_before = store.raw_payloads("github").await.unwrap().len();
        let other = sign(SECRET, b"{\"action\": \"created\"}");
        let wrong_secret = sign("not the secret", body.as_bytes());
        let half = &body.as_bytes()[..body.len() / 2];
        let refused: [(&[u8], Option<&str>); 6] = [
            (
                body.as_bytes(),
                Some("sha256=0000000000000000000000000000000000000000000000000000000000000000"),
            ),
            (body.as_bytes(), None),
            (body.as_bytes(), Some(&other)),
            (body.as_bytes(), Some(&wrong_secret)),
            (half, Some(&signature)),
            (
                body.as_bytes(),
                Some(signature.trim_start_matches("sha256=")),
            ),
        ];
        for (i, (body, signature)) in refused.iter().enumerate() {
            let (status, answer) = deliver_signed(
                &address,
                "deployment_status",
                &format!("r-{i}"),
                body,
                *signature,
            )
            .await;
            assert_eq!(status, 401, "case {i}: {answer}");
            assert!(!answer.contains(SECRET), "{answer}");
        }
        assert_eq!(store.generation().await.unwrap(), generation);
        assert_eq!(kept(&store.last_deliveries().await.unwrap()), kept_before);
        assert_eq!(
            store.raw_payloads("github").await.unwrap().len(),
            raw_before
        );

        // What /metrics and /sources say.
        let (_, metrics) = get(&address, "/metrics").await;
        for line in [
            "flowmeter_webhook_deliveries_total{source=\"github\",event=\"deployment_status\",result=\"unauthorized\"} 6",
            "flowmeter_webhook_deliveries_total{source=\"github\",event=\"deployment_status\",result=\"duplicate\"} 1",
            "flowmeter_webhook_deliveries_total{source=\"github\",event=\"other\",result=\"unknown_event\"} 1",
            "flowmeter_webhook_deliveries_total{source=\"github\",event=\"deployment\",result=\"repository_not_followed\"} 1",
            "flowmeter_webhook_deliveries_total{source=\"github\",event=\"deployment\",result=\"written\"} 2",
        ] {
            assert!(metrics.contains(line), "{line} not in\n{metrics}");
        }
        let (status, sources) = get(&address, "/sources").await;
        assert_eq!(status, 200);
        assert!(
            sources.contains("deployment_status (created)")
                && sources.contains("1 record(s) written, 1 changed")
                && sources.contains("Codertocat/Hello-World"),
            "{sources}"
        );
        assert!(!sources.contains(SECRET) && !metrics.contains(SECRET));

        // The endpoint's own body limit: GitHub's 25 MB, beyond the API's 4 MB.
        let mut big = hook("deployment_status");
        big["padding"] = json!("x".repeat(5 * 1024 * 1024));
        assert_eq!(
            deliver(&address, "deployment_status", "big-1", &big).await,
            202
        );
        // Over it: refused on the declared length, before a byte of the body is read.
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /hooks/github HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nX-GitHub-Event: deployment_status\r\nX-GitHub-Delivery: huge-1\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            sign(SECRET, b""),
            25 * 1024 * 1024 + 1
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        processed(&store).await;

        // The archive holds what the sync's would: replaying it changes nothing.
        let replayed = flowmeter_ingest::github::replay(&store, &config)
            .await
            .unwrap();
        assert_eq!(replayed.resources[0].changed, 0, "{replayed:?}");
        assert_eq!(store.load().await.unwrap(), webhooks);
        db.finish().await;
    }
    assert!(
        fake.log.lock().unwrap().is_empty(),
        "webhooks call no GitHub API"
    );
    synced.finish().await;
}

/// The deployment 106 GitHub lists in the changed organisation, as a `deployment_status`
/// delivery of its success.
fn status_of_106(data: &BTreeMap<String, Listing>) -> Value {
    let Some(Listing::Items(deployments)) = data.get("/repos/acme/api/deployments") else {
        panic!("no deployments");
    };
    let deployment = deployments.iter().find(|d| d["id"] == 106).unwrap().clone();
    let Some(Listing::Items(statuses)) = data.get("/repos/acme/api/deployments/106/statuses")
    else {
        panic!("no statuses");
    };
    let mut payload = hook("deployment_status");
    payload["deployment"] = deployment;
    payload["deployment_status"] = statuses[0].clone();
    payload["repository"]["full_name"] = json!("acme/api");
    payload["repository"]["default_branch"] = json!("main");
    payload
}

/// After a sync, GitHub changes: a pushed commit, a merged pull request, a deployment, a release
/// and a review nobody delivered. The webhooks write the deployment at once and nothing
/// partial; the next sync reads what they could not carry (and the review that was never
/// delivered), asks nothing more about the deployment, and ends in the store a plain sync
/// gives.
#[tokio::test]
async fn the_sync_reads_what_webhooks_could_not_carry_and_no_more() {
    let (fake, address) = start_fake_with(Switches::default(), organisation(false)).await;
    let config = GithubConfig {
        webhook_secret: vec![SECRET.into()],
        ..github_config(address)
    };
    let db = TestDb::sqlite().await;
    assert!(sync(&db.store, &config).await.ok());
    let before = db.store.load().await.unwrap();
    let changed = organisation(true);
    *fake.data.lock().unwrap() = changed.clone();
    let server = serve(
        &db.store,
        Config {
            github: config.clone(),
            ..Config::default()
        },
    )
    .await;

    // The published example deletes a tag: here it pushes to the default branch.
    let mut push = hook("push");
    push["ref"] = json!("refs/heads/main");
    push["deleted"] = json!(false);
    push["repository"]["full_name"] = json!("acme/api");
    push["repository"]["default_branch"] = json!("main");
    let mut pull = hook("pull_request.closed");
    pull["repository"]["full_name"] = json!("acme/api");
    let Some(Listing::Items(pulls)) = changed.get("/repos/acme/api/pulls") else {
        panic!()
    };
    pull["pull_request"] = pulls.iter().find(|p| p["number"] == 7).unwrap().clone();
    let mut review = hook("pull_request_review.submitted");
    review["repository"]["full_name"] = json!("acme/api");
    let mut release = hook("release.published");
    release["repository"]["full_name"] = json!("acme/lib");
    release["release"]["tag_name"] = json!("v1.0.1");
    for (event, id, payload) in [
        ("push", "p-1", push),
        ("pull_request", "p-2", pull),
        ("pull_request_review", "p-5", review),
        ("deployment_status", "p-3", status_of_106(&changed)),
        ("release", "p-4", release),
    ] {
        assert_eq!(deliver(&server, event, id, &payload).await, 202, "{event}");
    }
    let outcomes = processed(&db.store).await;
    let delivered = db.store.load().await.unwrap();
    assert_eq!(
        delivered.commits, before.commits,
        "no commit without its parents"
    );
    assert_eq!(
        delivered.pull_requests, before.pull_requests,
        "no pull request without its commits"
    );
    let d106 = delivered
        .deployments
        .iter()
        .find(|d| d.repo == "acme/api" && d.id == "106")
        .expect("the delivered deployment");
    assert_eq!(d106.status, flowmeter_core::DeploymentStatus::Success);
    let host = address.to_string();
    for (scope, resource) in [
        ("acme/api", "commits"),
        ("acme/api", "pulls"),
        ("acme/lib", "releases"),
    ] {
        let cursor = db
            .store
            .cursor("github", &format!("{host}/{scope}"), resource)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            cursor.etag, None,
            "{scope} {resource} is read whole next time: {outcomes:?}"
        );
    }

    fake.log.lock().unwrap().clear();
    let outcome = sync(&db.store, &config).await;
    assert!(outcome.ok(), "{outcome:?}");
    let log = fake.log();
    assert!(
        !log.iter()
            .any(|l| l.url.contains("/deployments/106/statuses")),
        "the delivered deployment's statuses are not asked for again: {log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.url.contains("/issues/7/timeline") || l.url.contains("pr7")),
        "the pull request delivered without its commits is read: {log:?}"
    );
    let reference = TestDb::sqlite().await;
    assert!(sync(&reference.store, &config).await.ok());
    let after = db.store.load().await.unwrap();
    assert_eq!(after, reference.store.load().await.unwrap());
    assert!(after.commits.len() > before.commits.len());
    let reviews = |data: &flowmeter_core::Dataset| {
        data.pull_requests
            .iter()
            .find(|p| p.repo == "acme/api" && p.number == 5)
            .map(|p| p.reviews.len())
    };
    assert_eq!(
        reviews(&after),
        reviews(&before).map(|n| n + 1),
        "the review no webhook delivered came with the sync"
    );
    reference.finish().await;
    db.finish().await;
}

/// 1,000 random bodies, signatures, events and delivery ids: every one answered, none written
/// or kept without a valid signature.
#[test]
fn random_bodies_and_signatures_never_write_without_a_valid_signature() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, address) = runtime.block_on(async {
        let db = TestDb::sqlite().await;
        let config = Config {
            github: GithubConfig {
                repos: vec!["Codertocat/Hello-World".into()],
                webhook_secret: vec![SECRET.into()],
                ..GithubConfig::default()
            },
            ..Config::default()
        };
        let address = serve(&db.store, config).await;
        (db, address)
    });
    let generation = runtime.block_on(db.store.generation()).unwrap();
    let fixture = hook("deployment_status").to_string().into_bytes();
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        // A real payload with a few bytes changed.
        proptest::collection::vec((0..fixture.len(), any::<u8>()), 0..4).prop_map(move |edits| {
            let mut body = fixture.clone();
            for (at, byte) in edits {
                body[at] = byte;
            }
            body
        }),
    ];
    let event = prop_oneof![
        Just("deployment_status".to_string()),
        Just("push".to_string()),
        Just("star".to_string()),
        "[a-z_]{0,20}",
    ];
    // 0: none; 1: random hex; 2: random text; 3: wrong secret; 4: another body's; 5: valid.
    let strategy = (
        body,
        0..6u8,
        "[0-9a-f]{64}",
        "\\PC{0,80}",
        event,
        "[A-Za-z0-9-]{1,40}",
    );
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 1000,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let valid = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(body, kind, hex, text, event, delivery)| {
            let signature = match kind {
                0 => None,
                1 => Some(format!("sha256={hex}")),
                2 => Some(text),
                3 => Some(sign("another secret", &body)),
                4 => Some(sign(SECRET, &[&body[..], b" "].concat())),
                _ => Some(sign(SECRET, &body)),
            };
            let kept = || {
                runtime.block_on(async {
                    let last = db.store.last_deliveries().await.unwrap();
                    last.iter().map(|d| d.count).sum::<i64>()
                })
            };
            let kept_before = kept();
            let (status, answer) = runtime.block_on(deliver_signed(
                &address,
                &event,
                &delivery,
                &body,
                signature.as_deref(),
            ));
            if kind == 5 {
                valid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                prop_assert!(status != 401 && status < 500, "{status}: {answer}");
            } else {
                prop_assert_eq!(status, 401, "{}", answer);
                prop_assert_eq!(kept(), kept_before, "kept without a valid signature");
            }
            Ok(())
        })
        .unwrap();
    assert!(valid.into_inner() > 100, "validly signed cases were tried");
    runtime.block_on(async {
        // Validly signed bodies that are followed deliveries may be kept; nothing else is, and
        // no body changed the records unless it was one.
        let last = db.store.last_deliveries().await.unwrap();
        assert!(
            last.iter().all(|d| d.repo == "Codertocat/Hello-World"),
            "{last:?}"
        );
        let after = db.store.generation().await.unwrap();
        assert!(after == generation || !last.is_empty());
        let (status, _) = get(&address, "/healthz").await;
        assert_eq!(status, 200, "the server still answers");
        db.finish().await;
    });
}

/// The real binary serving, the fake GitHub: a deployment status delivered by webhook is counted
/// by `/api/v1/dora` at the next snapshot refresh, and the `flowmeter sync github` that follows
/// costs only conditional requests and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_deployment_is_counted_and_the_next_sync_costs_only_conditional_requests() {
    let (fake, address) = start_fake_with(Switches::default(), organisation(false)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("flowmeter.db").display());
    let config_path = dir.path().join("flowmeter.toml");
    let config_text = format!(
        "[github]\nurl = \"http://{address}\"\nrepos = [\"acme/api\"]\norgs = [\"acme\"]\npage_size = 4\n\
         retry_base_ms = 1\ndeployment_details = \"rest\"\n\
         [[github.deployment_sources]]\nrepo = \"acme/web\"\nsource = \"workflow_runs\"\nworkflows = [\"deploy.yml\"]\n\
         [[github.deployment_sources]]\nrepo = \"acme/lib\"\nsource = \"releases\"\nenvironment = \"production\"\n"
    );
    std::fs::write(&config_path, &config_text).unwrap();
    let env = [
        ("FLOWMETER_GITHUB_TOKEN", TOKEN),
        ("FLOWMETER_GITHUB_WEBHOOK_SECRET", SECRET),
    ];
    let sync_cli = {
        let db = db.clone();
        let config_path = config_path.clone();
        move || {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_flowmeter"))
                .args(["sync", "github", "--db", &db, "--config"])
                .arg(&config_path)
                .envs(env)
                .env_remove("FLOWMETER_CONFIG")
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr)
        }
    };
    let first = sync_cli.clone();
    tokio::task::spawn_blocking(first).await.unwrap();
    let (child, server) = start_server_with(&db, &config_path, &env);
    let deployments = |server: String| async move {
        let (status, body) = get(&server, "/api/v1/dora?from=2024-03-01&to=2024-03-15").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["deployment_frequency"]["deployments"]
            .as_u64()
            .unwrap()
    };
    let counted = deployments(server.clone()).await;

    // GitHub gets deployment 106 and tells Flowmeter.
    let changed = organisation(true);
    for path in [
        "/repos/acme/api/deployments",
        "/repos/acme/api/deployments/106/statuses",
    ] {
        fake.data
            .lock()
            .unwrap()
            .insert(path.into(), changed[path].clone());
    }
    assert_eq!(
        deliver(
            &server,
            "deployment_status",
            "e2e-1",
            &status_of_106(&changed)
        )
        .await,
        202
    );
    let started = std::time::Instant::now();
    while deployments(server.clone()).await != counted + 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the delivered deployment was not counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let store = Store::open(&db).await.unwrap();
    let generation = store.generation().await.unwrap();
    fake.log.lock().unwrap().clear();
    let printed = tokio::task::spawn_blocking(sync_cli).await.unwrap();
    let log = fake.log();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|l| l.conditional),
        "every request of the sync after the webhook is conditional: {log:?}"
    );
    assert!(log.iter().any(|l| l.status == 304));
    assert!(!log.iter().any(|l| l.url.contains("/statuses")), "{log:?}");
    assert_eq!(store.generation().await.unwrap(), generation, "{printed}");
    assert!(!printed.contains(SECRET) && !printed.contains(TOKEN));
    store.close().await;
    stop(child);
}
