//! `flowmeter sync github`: the real octocrab client against a local fake GitHub whose answers
//! are GitHub's own published examples (fixtures/github) with this organisation's values filled
//! in, paged by `Link` headers, with ETags, `x-ratelimit-*` headers, and switches for a spent
//! rate limit (403), a secondary limit (429 with `retry-after`), a share of 5xx answers, garbled
//! pages and a page that never answers (so the process can be killed mid-sync).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use flowmeter_core::config::{DeploymentSource, DeploymentSourceConfig, GithubConfig, PullDetails};
use flowmeter_core::{Dataset, DeploymentStatus};
use flowmeter_ingest::{LogProgress, SyncOutcome};
use flowmeter_store::Store;
use serde_json::{Value, json};

use crate::support::*;

pub(crate) const TOKEN: &str = "ghp_fakeToken0123456789abcdefSECRET";

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/github")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The first example of a published list, as the template of this fake's items.
fn template(name: &str) -> Value {
    let list = fixture(name);
    match list.get("workflow_runs") {
        Some(runs) => runs[0].clone(),
        None => list[0].clone(),
    }
}

/// `minutes` after midnight of 2024-03-`day` (UTC), as GitHub writes times.
pub(crate) fn at(day: u32, minutes: u32) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let time = start
        + chrono::Duration::days(i64::from(day) - 1)
        + chrono::Duration::minutes(i64::from(minutes));
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn sha(repo: &str, n: usize) -> String {
    let seed = repo
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    format!("{:016x}{:024x}", seed, n)
}

struct Templates {
    commit: Value,
    pull: Value,
    review: Value,
    timeline: Vec<Value>,
    deployment: Value,
    status: Value,
    release: Value,
    run: Value,
    issue: Value,
}

impl Templates {
    fn load() -> Templates {
        Templates {
            commit: template("repos-list-commits.json"),
            pull: template("pulls-list.json"),
            review: template("pulls-list-reviews.json"),
            timeline: fixture("issues-list-timeline-events.json")
                .as_array()
                .unwrap()
                .clone(),
            deployment: template("repos-list-deployments.json"),
            status: template("repos-list-deployment-statuses.json"),
            release: template("repos-list-releases.json"),
            run: template("actions-list-workflow-runs-for-repo.json"),
            issue: template("issues-list-for-repo.json"),
        }
    }

    fn event(&self, kind: &str) -> Value {
        self.timeline
            .iter()
            .find(|e| e["event"] == kind)
            .unwrap()
            .clone()
    }

    /// A commit of the commits list (git data under `commit`).
    fn commit(&self, c: &C) -> Value {
        let mut v = self.commit.clone();
        v["sha"] = json!(c.sha);
        v["commit"]["author"] = json!({"name": c.author, "email": format!("{}@acme.example", c.author), "date": c.authored});
        v["commit"]["committer"] = json!({"name": c.author, "email": format!("{}@acme.example", c.author), "date": c.committed});
        v["commit"]["message"] = json!(format!("{}\n\nDetails.", c.subject));
        v["parents"] = json!(
            c.parents
                .iter()
                .map(|p| json!({"sha": p, "url": "", "html_url": ""}))
                .collect::<Vec<_>>()
        );
        v
    }

    /// The same commit as a timeline `committed` event (git data at the top level).
    fn committed(&self, c: &C) -> Value {
        let mut v = self.event("committed");
        v["sha"] = json!(c.sha);
        v["author"] = json!({"name": c.author, "email": format!("{}@acme.example", c.author), "date": c.authored});
        v["committer"] = json!({"name": c.author, "email": format!("{}@acme.example", c.author), "date": c.committed});
        v["message"] = json!(format!("{}\n\nDetails.", c.subject));
        v["parents"] = json!(
            c.parents
                .iter()
                .map(|p| json!({"sha": p, "url": "", "html_url": ""}))
                .collect::<Vec<_>>()
        );
        v
    }

    fn reviewed(&self, login: &str, state: &str, submitted: &str) -> Value {
        let mut v = self.review.clone();
        v["event"] = json!("reviewed");
        v["user"]["login"] = json!(login);
        v["state"] = json!(state);
        v["submitted_at"] = json!(submitted);
        v
    }

    fn plain_event(&self, kind: &str, time: &str) -> Value {
        let mut v = self.event("closed");
        v["event"] = json!(kind);
        v["created_at"] = json!(time);
        v
    }
}

#[derive(Clone)]
struct C {
    sha: String,
    parents: Vec<String>,
    authored: String,
    committed: String,
    author: String,
    subject: String,
}

/// What one path answers: a list (paged), a list inside an object, or plain text.
#[derive(Clone)]
pub(crate) enum Listing {
    Items(Vec<Value>),
    Wrapped(&'static str, Vec<Value>),
    Text(String),
    /// An error answer GitHub gives for this path (an empty repository's commits, say).
    Status(u16, &'static str),
}

/// One fake repository's data, built up and then turned into listings.
struct Repo {
    name: String,
    commits: Vec<C>,
    listings: BTreeMap<String, Listing>,
}

impl Repo {
    fn new(name: &str) -> Repo {
        Repo {
            name: name.into(),
            commits: Vec::new(),
            listings: BTreeMap::new(),
        }
    }

    /// `n` commits on the default branch, three hours apart from `start_day`.
    fn history(&mut self, n: usize) {
        for i in 1..=n {
            let minutes = (i as u32) * 180;
            let parents = if i == 1 {
                vec![]
            } else {
                vec![sha(&self.name, i - 1)]
            };
            self.commits.push(C {
                sha: sha(&self.name, i),
                parents,
                authored: at(1, minutes),
                committed: at(1, minutes + 10),
                author: if i % 2 == 0 {
                    "ann".into()
                } else {
                    "bob".into()
                },
                subject: format!("Change {i} of {}", self.name),
            });
        }
    }

    fn main_commit(&self, n: usize) -> C {
        self.commits[n - 1].clone()
    }

    fn side_commit(&self, n: usize, day: u32, minutes: u32) -> C {
        C {
            sha: sha(&format!("{}-side", self.name), n),
            parents: vec![sha(&self.name, 1)],
            authored: at(day, minutes),
            committed: at(day, minutes + 5),
            author: "carol".into(),
            subject: format!("Side work {n}"),
        }
    }

    fn finish(mut self, t: &Templates) -> BTreeMap<String, Listing> {
        let mut newest_first = self.commits.clone();
        newest_first.reverse();
        self.listings.insert(
            format!("/repos/{}/commits", self.name),
            Listing::Items(newest_first.iter().map(|c| t.commit(c)).collect()),
        );
        for path in ["pulls", "issues", "deployments"] {
            self.listings
                .entry(format!("/repos/{}/{path}", self.name))
                .or_insert(Listing::Items(vec![]));
        }
        self.listings
    }
}

struct Pr {
    number: u64,
    created: String,
    updated: String,
    merged: Option<String>,
    closed: Option<String>,
    draft: bool,
    merge_sha: Option<String>,
    commits: Vec<C>,
    /// (login, state, submitted_at)
    reviews: Vec<(&'static str, &'static str, String)>,
    ready: Option<String>,
    labels: Vec<&'static str>,
    head: &'static str,
}

fn pull(t: &Templates, repo: &str, pr: &Pr) -> (Value, Vec<Value>) {
    let mut v = t.pull.clone();
    v["number"] = json!(pr.number);
    v["title"] = json!(format!("Pull request {}", pr.number));
    v["user"]["login"] = json!("ann");
    v["created_at"] = json!(pr.created);
    v["updated_at"] = json!(pr.updated);
    v["merged_at"] = json!(pr.merged);
    v["closed_at"] = json!(pr.closed);
    v["state"] = json!(if pr.closed.is_some() {
        "closed"
    } else {
        "open"
    });
    v["draft"] = json!(pr.draft);
    // Open pull requests carry a test merge commit: it must not be taken as merged.
    v["merge_commit_sha"] = json!(
        pr.merge_sha
            .clone()
            .unwrap_or_else(|| sha("test-merge", pr.number as usize))
    );
    v["head"]["ref"] = json!(pr.head);
    v["head"]["sha"] = json!(pr.commits.last().map(|c| c.sha.clone()));
    v["base"]["ref"] = json!("main");
    v["base"]["repo"]["full_name"] = json!(repo);
    v["labels"] = json!(pr.labels.iter().map(|l| json!({"id": 1, "name": l, "color": "f29513", "default": false, "description": "", "node_id": "x", "url": ""})).collect::<Vec<_>>());
    let mut timeline: Vec<Value> = pr.commits.iter().map(|c| t.committed(c)).collect();
    if let Some(ready) = &pr.ready {
        timeline.push(t.plain_event("ready_for_review", ready));
    }
    for (login, state, submitted) in &pr.reviews {
        timeline.push(t.reviewed(login, state, submitted));
    }
    let mut comment = t.event("commented");
    comment["created_at"] = json!(pr.created);
    timeline.push(comment);
    if let Some(merged) = &pr.merged {
        timeline.push(t.plain_event("merged", merged));
    }
    (v, timeline)
}

fn deployment(
    t: &Templates,
    id: u64,
    sha: &str,
    env: &str,
    created: &str,
    states: &[(&str, String)],
) -> (Value, Vec<Value>) {
    let mut d = t.deployment.clone();
    d["id"] = json!(id);
    d["node_id"] = json!(format!("DE_{id}"));
    d["sha"] = json!(sha);
    d["environment"] = json!(env);
    d["original_environment"] = json!(env);
    d["created_at"] = json!(created);
    d["updated_at"] = json!(
        states
            .last()
            .map(|(_, at)| at.clone())
            .unwrap_or(created.to_string())
    );
    let mut statuses: Vec<Value> = states
        .iter()
        .enumerate()
        .map(|(i, (state, at))| {
            let mut s = t.status.clone();
            s["id"] = json!(id * 10 + i as u64);
            s["state"] = json!(state);
            s["environment"] = json!(env);
            s["created_at"] = json!(at);
            s["updated_at"] = json!(at);
            s
        })
        .collect();
    // GitHub lists statuses newest first.
    statuses.reverse();
    (d, statuses)
}

/// The fake organisation `acme`: `api` (GitHub deployments), `web` (a deploying workflow),
/// `lib` (releases), and an archived repository and a fork that are not followed. `changed`
/// adds what arrives between two syncs: a commit, a pull request, a review on an old one and a
/// deployment.
pub(crate) fn organisation(changed: bool) -> BTreeMap<String, Listing> {
    let t = Templates::load();
    let mut all = BTreeMap::new();

    let mut api = Repo::new("acme/api");
    api.history(if changed { 26 } else { 25 });
    let mut prs = vec![
        // Rebase-merged: its commits are on the default branch.
        Pr {
            number: 1,
            created: at(1, 600),
            updated: at(2, 100),
            merged: Some(at(2, 100)),
            closed: Some(at(2, 100)),
            draft: false,
            merge_sha: Some(api.main_commit(4).sha),
            commits: vec![api.main_commit(3), api.main_commit(4)],
            reviews: vec![("bob", "APPROVED", at(1, 700))],
            ready: None,
            labels: vec!["feature"],
            head: "feat/one",
        },
        // Squash-merged: its commits exist only on the branch.
        Pr {
            number: 2,
            created: at(2, 120),
            updated: at(3, 90),
            merged: Some(at(3, 60)),
            closed: Some(at(3, 60)),
            draft: false,
            merge_sha: Some(api.main_commit(10).sha),
            commits: vec![api.side_commit(1, 1, 60), api.side_commit(2, 1, 120)],
            reviews: vec![
                ("dependabot[bot]", "COMMENTED", at(2, 130)),
                ("carol", "CHANGES_REQUESTED", at(2, 200)),
                ("carol", "APPROVED", at(2, 900)),
            ],
            ready: None,
            labels: vec!["bug"],
            head: "hotfix/pay",
        },
        // Still a draft.
        Pr {
            number: 3,
            created: at(3, 200),
            updated: at(3, 300),
            merged: None,
            closed: None,
            draft: true,
            merge_sha: None,
            commits: vec![api.side_commit(3, 3, 100)],
            reviews: vec![],
            ready: None,
            labels: vec![],
            head: "wip/three",
        },
        // Opened as a draft, then ready for review, reviewed and merged.
        Pr {
            number: 4,
            created: at(3, 400),
            updated: at(4, 300),
            merged: Some(at(4, 200)),
            closed: Some(at(4, 200)),
            draft: false,
            merge_sha: Some(api.main_commit(15).sha),
            commits: vec![api.main_commit(14), api.main_commit(15)],
            reviews: vec![("bob", "APPROVED", at(3, 1000))],
            ready: Some(at(3, 900)),
            labels: vec![],
            head: "feat/four",
        },
        // Closed without merging.
        Pr {
            number: 5,
            created: at(4, 400),
            updated: at(4, 500),
            merged: None,
            closed: Some(at(4, 500)),
            draft: false,
            merge_sha: None,
            commits: vec![api.side_commit(5, 4, 380)],
            reviews: vec![],
            ready: None,
            labels: vec![],
            head: "spike/five",
        },
        // Malformed: an unreadable creation time. A warning; its raw body is kept.
        Pr {
            number: 6,
            created: "not-a-date".into(),
            updated: at(4, 600),
            merged: None,
            closed: None,
            draft: false,
            merge_sha: None,
            commits: vec![],
            reviews: vec![],
            ready: None,
            labels: vec![],
            head: "broken/six",
        },
    ];
    if changed {
        // A new pull request, and a late review that updates #5.
        prs.push(Pr {
            number: 7,
            created: at(5, 100),
            updated: at(5, 200),
            merged: Some(at(5, 200)),
            closed: Some(at(5, 200)),
            draft: false,
            merge_sha: Some(api.main_commit(26).sha),
            commits: vec![api.main_commit(26)],
            reviews: vec![("carol", "APPROVED", at(5, 150))],
            ready: None,
            labels: vec![],
            head: "feat/seven",
        });
        prs[4].updated = at(5, 300);
        prs[4].reviews.push(("carol", "COMMENTED", at(5, 300)));
    }
    prs.sort_by(|a, b| b.updated.cmp(&a.updated));
    let mut pulls = Vec::new();
    for pr in &prs {
        let (v, timeline) = pull(&t, "acme/api", pr);
        pulls.push(v);
        api.listings.insert(
            format!("/repos/acme/api/issues/{}/timeline", pr.number),
            Listing::Items(timeline),
        );
    }
    api.listings
        .insert("/repos/acme/api/pulls".into(), Listing::Items(pulls));
    // #5 was opened ready, turned into a draft and back: it has no ready time of its own.
    if let Some(Listing::Items(events)) = api.listings.get_mut("/repos/acme/api/issues/5/timeline")
    {
        events.insert(1, t.plain_event("convert_to_draft", &at(4, 420)));
        events.insert(2, t.plain_event("ready_for_review", &at(4, 450)));
    }
    let mut deployments = vec![
        deployment(
            &t,
            101,
            &api.main_commit(4).sha,
            "production",
            &at(2, 200),
            &[("in_progress", at(2, 201)), ("success", at(2, 210))],
        ),
        deployment(
            &t,
            102,
            &api.main_commit(10).sha,
            "staging",
            &at(3, 100),
            &[("success", at(3, 105))],
        ),
        deployment(
            &t,
            103,
            &api.main_commit(15).sha,
            "production",
            &at(4, 250),
            &[("failure", at(4, 260))],
        ),
        // Succeeded, then superseded: still a success, finished when it succeeded.
        deployment(
            &t,
            104,
            &api.main_commit(20).sha,
            "production",
            &at(4, 600),
            &[
                ("in_progress", at(4, 601)),
                ("success", at(4, 620)),
                ("inactive", at(5, 10)),
            ],
        ),
    ];
    // Malformed: no sha.
    let (mut broken, statuses) = deployment(
        &t,
        105,
        "x",
        "production",
        &at(4, 700),
        &[("success", at(4, 710))],
    );
    broken["sha"] = Value::Null;
    deployments.push((broken, statuses));
    if changed {
        deployments.push(deployment(
            &t,
            106,
            &api.main_commit(26).sha,
            "production",
            &at(5, 400),
            &[("success", at(5, 420))],
        ));
    }
    deployments.sort_by(|a, b| b.0["created_at"].as_str().cmp(&a.0["created_at"].as_str()));
    for (d, statuses) in &deployments {
        api.listings.insert(
            format!("/repos/acme/api/deployments/{}/statuses", d["id"]),
            Listing::Items(statuses.clone()),
        );
    }
    api.listings.insert(
        "/repos/acme/api/deployments".into(),
        Listing::Items(deployments.into_iter().map(|(d, _)| d).collect()),
    );
    let issue = |number: u64,
                 created: String,
                 updated: String,
                 closed: Option<String>,
                 labels: &[&str],
                 is_pr: bool| {
        let mut v = t.issue.clone();
        v["number"] = json!(number);
        v["title"] = json!(format!("Incident {number}"));
        v["created_at"] = json!(created);
        v["updated_at"] = json!(updated);
        v["state"] = json!(if closed.is_some() { "closed" } else { "open" });
        v["closed_at"] = json!(closed);
        v["labels"] = json!(labels.iter().map(|l| json!({"id": 1, "name": l, "color": "f29513", "default": false, "description": "", "node_id": "x", "url": ""})).collect::<Vec<_>>());
        if is_pr {
            v["pull_request"] = json!({"url": "", "html_url": "", "diff_url": "", "patch_url": ""});
        } else if let Some(map) = v.as_object_mut() {
            map.remove("pull_request");
        }
        v
    };
    api.listings.insert(
        "/repos/acme/api/issues".into(),
        Listing::Items(vec![
            issue(12, at(4, 900), at(4, 1000), None, &["incident"], false),
            // A pull request labelled incident: the issues API lists it, it is no incident.
            issue(11, at(4, 800), at(4, 900), None, &["incident"], true),
            issue(
                10,
                at(4, 265),
                at(4, 400),
                Some(at(4, 390)),
                &["incident", "sev-1"],
                false,
            ),
        ]),
    );
    all.extend(api.finish(&t));

    let mut web = Repo::new("acme/web");
    web.history(5);
    let run = |id: u64,
               n: usize,
               status: &str,
               conclusion: Option<&str>,
               created: String,
               updated: String| {
        let mut v = t.run.clone();
        v["id"] = json!(id);
        v["head_sha"] = json!(sha("acme/web", n));
        v["status"] = json!(status);
        v["conclusion"] = json!(conclusion);
        v["created_at"] = json!(created);
        v["run_started_at"] = json!(created);
        v["updated_at"] = json!(updated);
        v
    };
    web.listings.insert(
        "/repos/acme/web/actions/workflows/deploy.yml/runs".into(),
        Listing::Wrapped(
            "workflow_runs",
            vec![
                run(
                    203,
                    5,
                    "completed",
                    Some("cancelled"),
                    at(2, 100),
                    at(2, 110),
                ),
                run(202, 4, "completed", Some("failure"), at(1, 900), at(1, 920)),
                run(201, 2, "completed", Some("success"), at(1, 500), at(1, 530)),
            ],
        ),
    );
    all.extend(web.finish(&t));

    let mut lib = Repo::new("acme/lib");
    lib.history(3);
    let release = |id: u64, tag: &str, created: String, published: Option<String>, draft: bool| {
        let mut v = t.release.clone();
        v["id"] = json!(id);
        v["tag_name"] = json!(tag);
        v["target_commitish"] = json!("main");
        v["created_at"] = json!(created);
        v["published_at"] = json!(published);
        v["draft"] = json!(draft);
        v["prerelease"] = json!(false);
        v
    };
    let mut releases = vec![
        release(303, "v2.0.0", at(2, 0), None, true),
        release(302, "v1.1.0", at(1, 700), Some(at(1, 710)), false),
        release(301, "v1.0.0", at(1, 300), Some(at(1, 320)), false),
    ];
    if changed {
        // A hotfix released later from an older commit: GitHub dates a release by its commit,
        // so it is listed below releases it came after.
        releases.insert(2, release(304, "v1.0.1", at(1, 400), Some(at(5, 0)), false));
        lib.listings.insert(
            "/repos/acme/lib/commits/v1.0.1".into(),
            Listing::Text(sha("acme/lib", 2)),
        );
    }
    lib.listings
        .insert("/repos/acme/lib/releases".into(), Listing::Items(releases));
    lib.listings.insert(
        "/repos/acme/lib/commits/v1.1.0".into(),
        Listing::Text(sha("acme/lib", 3)),
    );
    lib.listings.insert(
        "/repos/acme/lib/commits/v1.0.0".into(),
        Listing::Text(sha("acme/lib", 1)),
    );
    all.extend(lib.finish(&t));

    let repo = |name: &str, archived: bool, fork: bool| {
        let mut v = t.pull["base"]["repo"].clone();
        v["full_name"] = json!(name);
        v["name"] = json!(name.split('/').nth(1));
        v["archived"] = json!(archived);
        v["fork"] = json!(fork);
        v
    };
    all.insert(
        "/orgs/acme/repos".into(),
        Listing::Items(vec![
            repo("acme/lib", false, false),
            repo("acme/old", true, false),
            repo("acme/web", false, false),
            repo("acme/forked", false, true),
            repo("acme/api", false, false),
        ]),
    );
    all
}

#[derive(Default)]
pub(crate) struct Switches {
    /// Every n-th request answers 502.
    fail_every: Option<usize>,
    /// At this request the rate limit is spent until the next whole second after next.
    spend_at: Option<usize>,
    /// Requests answered 429 with `retry-after: 1`.
    secondary: HashSet<usize>,
    /// Answers for this path are cut in half.
    garbled: Option<String>,
    /// Requests whose URL contains this never answer.
    pub(crate) stall: Option<String>,
    /// Pull requests whose GraphQL details say there are more commits than one query returns.
    truncated: HashSet<u64>,
    /// GraphQL answers every query with an error and no data.
    graphql_refused: bool,
    /// GraphQL leaves every other deployment or release out of its answer (`null`, with an
    /// error beside the data, as GitHub does for a node it cannot resolve).
    graphql_partial: bool,
    /// Requests fail with a 5xx at this rate (per mille), drawn from the seed and the request
    /// number.
    pub(crate) random_faults: Option<(u64, u64)>,
    /// The body of those failing answers.
    error_body: ErrorBody,
}

/// What a failing answer carries: GitHub's JSON error body, nothing, or a proxy's HTML page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ErrorBody {
    #[default]
    Json,
    Empty,
    Html,
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub(crate) url: String,
    pub(crate) conditional: bool,
    pub(crate) status: u16,
}

pub(crate) struct Fake {
    address: Mutex<Option<SocketAddr>>,
    pub(crate) data: Mutex<BTreeMap<String, Listing>>,
    pub(crate) switches: Mutex<Switches>,
    pub(crate) log: Mutex<Vec<Logged>>,
    /// Rate limit points used (304 answers use none).
    used: Mutex<u64>,
    spent_until: Mutex<Option<i64>>,
}

impl Fake {
    pub(crate) fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

pub(crate) type Shared = Arc<Fake>;

fn error(status: StatusCode, message: &str, extra: &[(&str, String)]) -> Response {
    let mut response = (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"})
            .to_string(),
    )
        .into_response();
    for (k, v) in extra {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    response
}

async fn answer(
    State(fake): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    // A GraphQL query is logged as `/graphql` with what it asks for.
    // GitHub Enterprise Server answers GraphQL at /api/graphql.
    let graphql = ["/graphql", "/api/graphql"]
        .contains(&uri.path())
        .then(|| Ask::of(&body));
    let response = respond(&fake, &uri, &headers, graphql.as_ref()).await;
    fake.log.lock().unwrap().push(Logged {
        url: match &graphql {
            Some(ask) => format!("/graphql {}", ask.label()),
            None => uri.to_string(),
        },
        conditional: headers.contains_key("if-none-match"),
        status: response.status().as_u16(),
    });
    response
}

/// What a GraphQL query asks for: pull request details of a repository, deployments' statuses
/// by node id, or the commits of a repository's release tags.
enum Ask {
    Pulls(String, Vec<u64>),
    Deployments(Vec<String>),
    Releases(String, Vec<String>),
}

impl Ask {
    fn of(body: &str) -> Ask {
        let query: Value = serde_json::from_str(body).unwrap();
        let query = query["query"].as_str().unwrap();
        if let Some(rest) = query.split_once("nodes(ids: ").map(|(_, r)| r) {
            let list = &rest[..rest.find(')').unwrap()];
            return Ask::Deployments(serde_json::from_str(list).unwrap());
        }
        let field = |name: &str| {
            let start = query.find(&format!("{name}: \"")).unwrap() + name.len() + 3;
            query[start..].split('"').next().unwrap().to_string()
        };
        let repo = format!("{}/{}", field("owner"), field("name"));
        if query.contains("release(tagName: ") {
            let tags = query
                .split("release(tagName: ")
                .skip(1)
                .map(|rest| {
                    let end = rest.find(") {").unwrap();
                    serde_json::from_str::<String>(&rest[..end]).unwrap()
                })
                .collect();
            return Ask::Releases(repo, tags);
        }
        let numbers = query
            .split("pullRequest(number: ")
            .skip(1)
            .map(|rest| rest.split(')').next().unwrap().parse().unwrap())
            .collect();
        Ask::Pulls(repo, numbers)
    }

    fn label(&self) -> String {
        match self {
            Ask::Pulls(_, numbers) => numbers
                .iter()
                .map(|n| format!("pr{n}"))
                .collect::<Vec<_>>()
                .join(","),
            Ask::Deployments(ids) => format!("deployments {}", ids.join(",")),
            Ask::Releases(_, tags) => format!("releases {}", tags.join(",")),
        }
    }
}

/// The GraphQL answer for some deployments' statuses, from their REST statuses: GraphQL's
/// names and upper-case states, oldest first.
fn graphql_deployments(fake: &Fake, ids: &[String]) -> Value {
    let data = fake.data.lock().unwrap();
    let switches = fake.switches.lock().unwrap();
    let nodes: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, node_id)| {
            let id: u64 = node_id.trim_start_matches("DE_").parse().unwrap();
            let suffix = format!("/deployments/{id}/statuses");
            let statuses = data
                .iter()
                .find(|(path, _)| path.ends_with(&suffix))
                .and_then(|(_, listing)| match listing {
                    Listing::Items(statuses) => Some(statuses.clone()),
                    _ => None,
                });
            match statuses {
                Some(_) if switches.graphql_partial && i % 2 == 1 => Value::Null,
                Some(mut statuses) => {
                    statuses.reverse();
                    let url = |s: &Value, key: &str| match s[key].as_str() {
                        Some(u) if !u.is_empty() => json!(u),
                        _ => Value::Null,
                    };
                    let nodes: Vec<Value> = statuses
                        .iter()
                        .map(|s| json!({"state": s["state"].as_str().unwrap().to_uppercase(),
                            "createdAt": s["created_at"], "environmentUrl": url(s, "environment_url"),
                            "logUrl": url(s, "log_url"), "description": s["description"]}))
                        .collect();
                    json!({"__typename": "Deployment", "databaseId": id,
                        "statuses": {"pageInfo": {"hasNextPage": switches.truncated.contains(&id)}, "nodes": nodes}})
                }
                None => Value::Null,
            }
        })
        .collect();
    let mut answer = json!({"data": {"nodes": nodes}});
    if switches.graphql_partial {
        answer["errors"] = json!([{"type": "NOT_FOUND", "message": "Could not resolve to a node"}]);
    }
    answer
}

/// The GraphQL answer for the commits of some release tags, from the REST commits by tag.
fn graphql_releases(fake: &Fake, repo: &str, tags: &[String]) -> Value {
    let data = fake.data.lock().unwrap();
    let partial = fake.switches.lock().unwrap().graphql_partial;
    let mut releases = serde_json::Map::new();
    for (i, tag) in tags.iter().enumerate() {
        let node = match data.get(&format!("/repos/{repo}/commits/{tag}")) {
            Some(Listing::Text(sha)) if !(partial && i % 2 == 1) => {
                json!({"tagName": tag, "tagCommit": {"oid": sha}})
            }
            _ => Value::Null,
        };
        releases.insert(format!("r{i}"), node);
    }
    json!({"data": {"repository": releases}})
}

/// The GraphQL answer for some pull requests, from the same data as their REST timelines.
fn graphql_answer(fake: &Fake, repo: &str, numbers: &[u64]) -> Value {
    let data = fake.data.lock().unwrap();
    let mut nodes = serde_json::Map::new();
    for n in numbers {
        let Some(Listing::Items(events)) = data.get(&format!("/repos/{repo}/issues/{n}/timeline"))
        else {
            nodes.insert(format!("pr{n}"), Value::Null);
            continue;
        };
        let of = |kind: &'static str| events.iter().filter(move |e| e["event"] == kind);
        let commits: Vec<Value> = of("committed")
            .map(|e| json!({"commit": {"oid": e["sha"], "authoredDate": e["author"]["date"], "committedDate": e["committer"]["date"],
                "message": e["message"], "author": {"name": e["author"]["name"], "email": e["author"]["email"]},
                "committer": {"name": e["committer"]["name"], "email": e["committer"]["email"]},
                "parents": {"nodes": e["parents"].as_array().unwrap().iter().map(|p| json!({"oid": p["sha"]})).collect::<Vec<_>>()}}}))
            .collect();
        let reviews: Vec<Value> = of("reviewed")
            .map(|e| json!({"author": {"login": e["user"]["login"]}, "state": e["state"], "submittedAt": e["submitted_at"]}))
            .collect();
        // The first of the draft events, as `timelineItems(first: 1, itemTypes: [...])` gives.
        let ready: Vec<Value> = events
            .iter()
            .filter(|e| e["event"] == "ready_for_review" || e["event"] == "convert_to_draft")
            .take(1)
            .map(|e| {
                let kind = if e["event"] == "ready_for_review" {
                    "ReadyForReviewEvent"
                } else {
                    "ConvertToDraftEvent"
                };
                json!({"__typename": kind, "createdAt": e["created_at"]})
            })
            .collect();
        let more = fake.switches.lock().unwrap().truncated.contains(n);
        nodes.insert(
            format!("pr{n}"),
            json!({"commits": {"pageInfo": {"hasNextPage": more}, "nodes": commits},
                   "reviews": {"pageInfo": {"hasNextPage": false}, "nodes": reviews},
                   "timelineItems": {"nodes": ready}}),
        );
    }
    json!({"data": {"repository": nodes}})
}

async fn respond(fake: &Fake, uri: &Uri, headers: &HeaderMap, graphql: Option<&Ask>) -> Response {
    let number = fake.log.lock().unwrap().len() + 1;
    let now = chrono::Utc::now().timestamp();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", &[]);
    }
    let stall = fake.switches.lock().unwrap().stall.clone();
    if stall.is_some_and(|s| uri.to_string().contains(&s)) {
        std::future::pending::<()>().await;
    }
    {
        let switches = fake.switches.lock().unwrap();
        let mut spent = fake.spent_until.lock().unwrap();
        if switches.spend_at == Some(number) {
            *spent = Some(now + 2);
        }
        if let Some(reset) = *spent {
            if now < reset {
                return error(
                    StatusCode::FORBIDDEN,
                    "API rate limit exceeded for user ID 1.",
                    &[
                        ("x-ratelimit-limit", "5000".into()),
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", reset.to_string()),
                    ],
                );
            }
            *spent = None;
        }
        if switches.secondary.contains(&number) {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit.",
                &[("retry-after", "1".into())],
            );
        }
        if switches
            .fail_every
            .is_some_and(|n| number.is_multiple_of(n))
        {
            return error(StatusCode::BAD_GATEWAY, "Server Error", &[]);
        }
        if let Some((seed, per_mille)) = switches.random_faults
            && mix(seed ^ ((number as u64) << 20)) % 1000 < per_mille
        {
            let status = [
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::INTERNAL_SERVER_ERROR,
            ][number % 3];
            return match switches.error_body {
                ErrorBody::Json => error(status, "Server Error", &[]),
                ErrorBody::Empty => status.into_response(),
                ErrorBody::Html => (status, "<html><body>unicorn</body></html>").into_response(),
            };
        }
    }
    if let Some(ask) = graphql {
        *fake.used.lock().unwrap() += 1;
        if fake.switches.lock().unwrap().graphql_refused {
            return axum::Json(json!({"data": null, "errors": [{"type": "FORBIDDEN",
                "message": "Resource not accessible by personal access token"}]}))
            .into_response();
        }
        return axum::Json(match ask {
            Ask::Pulls(repo, numbers) => graphql_answer(fake, repo, numbers),
            Ask::Deployments(ids) => graphql_deployments(fake, ids),
            Ask::Releases(repo, tags) => graphql_releases(fake, repo, tags),
        })
        .into_response();
    }
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    // GitHub Enterprise Server serves the REST API under /api/v3.
    let (prefix, path) = match uri.path().strip_prefix("/api/v3") {
        Some(rest) => ("/api/v3", rest.to_string()),
        None => ("", uri.path().to_string()),
    };
    // A renamed repository: GitHub answers its old name with a permanent redirect.
    if let Some(rest) = path.strip_prefix("/repos/acme/old-api/") {
        let address = fake.address.lock().unwrap().unwrap();
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let location = format!("http://{address}/repos/acme/api/{rest}{query}");
        return error(
            StatusCode::MOVED_PERMANENTLY,
            "Moved Permanently",
            &[("location", location)],
        );
    }
    let Some(listing) = fake.data.lock().unwrap().get(&path).cloned() else {
        return error(StatusCode::NOT_FOUND, "Not Found", &[]);
    };
    if let Listing::Status(code, message) = listing {
        return error(StatusCode::from_u16(code).unwrap(), message, &[]);
    }
    if path.ends_with("/issues") && query.get("labels").map(String::as_str) != Some("incident") {
        return (StatusCode::OK, "[]").into_response();
    }
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let (mut body, total) = match &listing {
        Listing::Text(text) => (text.clone(), 0),
        Listing::Status(..) => unreachable!("answered above"),
        Listing::Items(items) | Listing::Wrapped(_, items) => {
            let slice: Vec<&Value> = items
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            let body = match &listing {
                Listing::Wrapped(key, _) => json!({"total_count": items.len(), *key: slice}),
                _ => json!(slice),
            };
            (body.to_string(), items.len())
        }
    };
    let etag = format!(
        "\"{:016x}\"",
        body.bytes()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64)
                .wrapping_mul(0x100000001b3))
    );
    let used = *fake.used.lock().unwrap();
    let rate = [
        ("x-ratelimit-limit", "5000".to_string()),
        ("x-ratelimit-remaining", (5000 - used).to_string()),
        ("x-ratelimit-reset", (now + 3600).to_string()),
        ("x-ratelimit-used", used.to_string()),
        ("x-ratelimit-resource", "core".to_string()),
    ];
    let mut response =
        if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            *fake.used.lock().unwrap() += 1;
            if fake.switches.lock().unwrap().garbled.as_deref() == Some(path.as_str()) {
                body.truncate(body.len() / 2);
            }
            let content_type = match listing {
                Listing::Text(_) => "text/plain",
                _ => "application/json; charset=utf-8",
            };
            ([("content-type", content_type)], body).into_response()
        };
    let h = response.headers_mut();
    h.insert("etag", etag.parse().unwrap());
    for (k, v) in rate {
        h.insert(k, v.parse().unwrap());
    }
    if page * per_page < total {
        let address = fake.address.lock().unwrap().unwrap();
        let link_to = |p: usize| {
            let mut q: Vec<String> = query
                .iter()
                .filter(|(k, _)| *k != "page")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            q.sort();
            q.push(format!("page={p}"));
            format!("<http://{address}{prefix}{path}?{}>", q.join("&"))
        };
        let last = total.div_ceil(per_page);
        h.insert(
            "link",
            format!(
                "{}; rel=\"next\", {}; rel=\"last\"",
                link_to(page + 1),
                link_to(last)
            )
            .parse()
            .unwrap(),
        );
    }
    response
}

pub(crate) async fn start_fake(switches: Switches, changed: bool) -> (Shared, SocketAddr) {
    start_fake_with(switches, organisation(changed)).await
}

pub(crate) async fn start_fake_with(
    switches: Switches,
    data: BTreeMap<String, Listing>,
) -> (Shared, SocketAddr) {
    let fake = Arc::new(Fake {
        address: Mutex::new(None),
        data: Mutex::new(data),
        switches: Mutex::new(switches),
        log: Mutex::default(),
        used: Mutex::new(0),
        spent_until: Mutex::new(None),
    });
    let app = Router::new().fallback(answer).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    *fake.address.lock().unwrap() = Some(address);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, address)
}

pub(crate) fn github_config(address: SocketAddr) -> GithubConfig {
    GithubConfig {
        url: format!("http://{address}"),
        token: TOKEN.into(),
        repos: vec!["acme/api".into()],
        orgs: vec!["acme".into()],
        page_size: 4,
        retry_base_ms: 1,
        deployment_sources: vec![
            DeploymentSourceConfig {
                repo: "acme/web".into(),
                source: DeploymentSource::WorkflowRuns,
                workflows: vec!["deploy.yml".into()],
                environment: None,
            },
            DeploymentSourceConfig {
                repo: "acme/lib".into(),
                source: DeploymentSource::Releases,
                workflows: vec![],
                environment: Some("production".into()),
            },
        ],
        // The REST path one request per item, so request logs name each; the GraphQL path of
        // deployment details has its own tests (`deployment_details_*`).
        deployment_details: PullDetails::Rest,
        ..GithubConfig::default()
    }
}

pub(crate) async fn sync(store: &Store, config: &GithubConfig) -> SyncOutcome {
    flowmeter_ingest::github::sync(store, config, &LogProgress)
        .await
        .expect("sync")
}

fn warnings(outcome: &SyncOutcome) -> Vec<String> {
    outcome
        .resources
        .iter()
        .flat_map(|r| r.warnings.clone())
        .collect()
}

fn t(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

/// The records the fake organisation must produce, checked field by field where they matter.
fn assert_organisation(data: &Dataset) {
    let api = |n| sha("acme/api", n);
    let side = |n| sha("acme/api-side", n);
    let commits: HashSet<(String, String)> = data
        .commits
        .iter()
        .map(|c| (c.repo.clone(), c.sha.clone()))
        .collect();
    // 25 + 5 + 3 default-branch commits, and the branch commits of #2, #3 and #5.
    assert_eq!(data.commits.len(), 37, "{commits:?}");
    for s in [side(1), side(2), side(3), side(5), api(1), api(25)] {
        assert!(
            commits.contains(&("acme/api".to_string(), s.clone())),
            "{s}"
        );
    }
    let c2 = data.commits.iter().find(|c| c.sha == api(2)).unwrap();
    assert_eq!(c2.parents, [api(1)]);
    assert_eq!(c2.author.as_deref(), Some("ann <ann@acme.example>"));
    assert_eq!(c2.message.as_deref(), Some("Change 2 of acme/api"));
    assert_eq!(
        (c2.authored_at, c2.committed_at),
        (t(&at(1, 360)), t(&at(1, 370)))
    );

    let numbers: Vec<u64> = data.pull_requests.iter().map(|p| p.number).collect();
    assert_eq!(numbers.len(), 5, "#6 is unreadable: {numbers:?}");
    let pr = |n: u64| data.pull_requests.iter().find(|p| p.number == n).unwrap();
    assert_eq!(pr(1).merge_commit_sha, Some(api(4)));
    assert_eq!(pr(1).commits, [api(3), api(4)]);
    assert_eq!(pr(2).commits, [side(1), side(2)]);
    assert_eq!(pr(2).labels, ["bug"]);
    assert_eq!(pr(2).head_branch.as_deref(), Some("hotfix/pay"));
    let reviewers: Vec<&str> = pr(2).reviews.iter().map(|r| r.reviewer.as_str()).collect();
    assert_eq!(reviewers, ["dependabot[bot]", "carol", "carol"]);
    assert_eq!(pr(2).reviews[1].state, "CHANGES_REQUESTED");
    assert!(pr(3).draft && pr(3).merge_commit_sha.is_none() && pr(3).merged_at.is_none());
    assert_eq!((pr(4).ready_at, pr(4).draft), (Some(t(&at(3, 900))), false));
    assert_eq!(pr(5).closed_at, Some(t(&at(4, 500))));
    assert_eq!(
        pr(5).ready_at,
        None,
        "opened ready, so ready at its creation"
    );
    assert_eq!(
        pr(5).merge_commit_sha,
        None,
        "a closed pull request was not merged"
    );

    let deployment = |repo: &str, id: &str| {
        data.deployments
            .iter()
            .find(|d| d.repo == repo && d.id == id)
            .unwrap_or_else(|| panic!("{repo} {id}"))
    };
    assert_eq!(
        data.deployments.len(),
        4 + 3 + 2,
        "105 has no sha; the draft release is not deployed"
    );
    let d101 = deployment("acme/api", "101");
    assert_eq!(
        (d101.status, d101.finished_at, d101.sha.clone()),
        (DeploymentStatus::Success, Some(t(&at(2, 210))), api(4))
    );
    assert_eq!(deployment("acme/api", "102").environment, "staging");
    assert_eq!(
        deployment("acme/api", "103").status,
        DeploymentStatus::Failure
    );
    let d104 = deployment("acme/api", "104");
    assert_eq!(
        (d104.status, d104.finished_at),
        (DeploymentStatus::Success, Some(t(&at(4, 620))))
    );
    let run = deployment("acme/web", "run-202");
    assert_eq!(
        (run.status, run.environment.as_str(), run.sha.clone()),
        (DeploymentStatus::Failure, "production", sha("acme/web", 4))
    );
    assert_eq!(
        deployment("acme/web", "run-203").status,
        DeploymentStatus::Inactive
    );
    assert_eq!(
        deployment("acme/web", "run-201").finished_at,
        Some(t(&at(1, 530)))
    );
    let v110 = deployment("acme/lib", "v1.1.0");
    assert_eq!(
        (v110.sha.clone(), v110.status, v110.time()),
        (
            sha("acme/lib", 3),
            DeploymentStatus::Success,
            t(&at(1, 710))
        )
    );

    let ids: Vec<&str> = data.incidents.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(data.incidents.len(), 2, "{ids:?}");
    let i10 = data.incidents.iter().find(|i| i.id == "#10").unwrap();
    assert_eq!(
        (
            i10.resolved_at,
            i10.severity.as_deref(),
            i10.repo.as_deref()
        ),
        (Some(t(&at(4, 390))), Some("sev1"), Some("acme/api"))
    );
    assert!(
        data.incidents
            .iter()
            .any(|i| i.id == "#12" && i.resolved_at.is_none())
    );
}

#[tokio::test]
async fn a_full_sync_of_an_organisation_then_an_unchanged_one() {
    on_both(|store| async move {
        let (fake, address) = start_fake(Switches::default(), false).await;
        let config = github_config(address);
        let outcome = sync(&store, &config).await;
        assert!(outcome.ok(), "{outcome:?}");
        assert_eq!(
            warnings(&outcome),
            [
                "acme/api#6: created_at 'not-a-date' is not a time",
                "acme/api deployment 105: no sha"
            ]
        );
        let loaded = store.load().await.unwrap();
        assert_organisation(&loaded);
        assert!(
            fake.log()
                .iter()
                .any(|l| l.url == "/graphql pr6,pr5,pr4,pr3"),
            "pull request details are batched"
        );
        let log = fake.log();
        // One repository at a time gives the same store, and its outcome in the same order.
        let serial = TestDb::sqlite().await;
        let config_one = GithubConfig {
            concurrency: 1,
            ..config.clone()
        };
        let outcome_one = sync(&serial.store, &config_one).await;
        assert_eq!(serial.store.load().await.unwrap(), loaded);
        let names = |o: &SyncOutcome| {
            o.resources
                .iter()
                .map(|r| r.resource.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&outcome_one), names(&outcome));
        serial.finish().await;
        fake.log.lock().unwrap().clear();
        assert!(
            log.iter().all(|l| !l.conditional && l.status == 200),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|l| l.url.contains("/repos/acme/api/commits?per_page=4&page=7")),
            "pages follow the Link header"
        );
        assert!(
            !log.iter()
                .any(|l| l.url.contains("acme/old") || l.url.contains("acme/forked")),
            "archived repositories and forks are not followed"
        );
        assert!(
            !log.iter().any(|l| l.url.contains("commits/v2.0.0")),
            "a draft release is not deployed"
        );
        // Every item's raw body is kept, the unreadable ones too.
        let raw = store.raw_payloads("github").await.unwrap();
        assert!(raw.iter().any(|r| r.id.ends_with("acme/api:pull:6")));
        assert!(
            raw.iter()
                .any(|r| r.id.ends_with("acme/api:deployment:105"))
        );

        // Unchanged: one conditional request per resource, each answered 304.
        fake.log.lock().unwrap().clear();
        let used = *fake.used.lock().unwrap();
        let again = sync(&store, &config).await;
        assert!(again.ok(), "{again:?}");
        let log = fake.log();
        assert!(
            log.iter().all(|l| l.conditional && l.status == 304),
            "{log:?}"
        );
        // The organisation's two pages (each with its own ETag: a change on page 2 would not
        // show on page 1), and per repository commits, pulls, deployments and incidents.
        assert_eq!(log.len(), 2 + 3 * 4, "{log:?}");
        assert_eq!(*fake.used.lock().unwrap(), used, "no rate limit spent");
        assert_eq!(again.resources.iter().map(|r| r.changed).sum::<u64>(), 0);
        assert_eq!(store.load().await.unwrap(), loaded);

        // Replay normalizes the archive again without calling GitHub.
        fake.log.lock().unwrap().clear();
        let replayed = flowmeter_ingest::github::replay(&store, &config)
            .await
            .unwrap();
        assert_eq!(replayed.resources[0].changed, 0);
        assert_eq!(replayed.resources[0].warnings.len(), 2);
        assert!(fake.log().is_empty());
        assert_eq!(store.load().await.unwrap(), loaded);
    })
    .await;
}

#[tokio::test]
async fn an_incremental_sync_reads_only_what_changed() {
    for details in [PullDetails::Graphql, PullDetails::Rest] {
        let db = TestDb::sqlite().await;
        let (fake, address) = start_fake(Switches::default(), false).await;
        let config = GithubConfig {
            pull_details: details,
            ..github_config(address)
        };
        assert!(sync(&db.store, &config).await.ok());
        let full_requests = fake.log().len();

        *fake.data.lock().unwrap() = organisation(true);
        fake.log.lock().unwrap().clear();
        let outcome = sync(&db.store, &config).await;
        assert!(outcome.ok(), "{outcome:?}");
        let log = fake.log();
        let urls: Vec<&str> = log.iter().map(|l| l.url.as_str()).collect();
        // The new pull request (#7), the one with a new review (#5) and the one updated exactly
        // at the cursor (#6) have their details read again; the others do not.
        let timelines: Vec<&&str> = urls
            .iter()
            .filter(|u| u.contains("/timeline") || u.starts_with("/graphql"))
            .collect();
        match details {
            PullDetails::Graphql => assert_eq!(timelines, [&"/graphql pr5,pr7,pr6"]),
            PullDetails::Rest => assert_eq!(
                timelines,
                [
                    &"/repos/acme/api/issues/5/timeline?per_page=100",
                    &"/repos/acme/api/issues/7/timeline?per_page=100",
                    &"/repos/acme/api/issues/6/timeline?per_page=100"
                ]
            ),
        }
        // The statuses of the new deployment only: 105, created exactly at the cursor, was
        // seen by the last pass (the cursor names it), and the older ones were final.
        let statuses: Vec<&&str> = urls.iter().filter(|u| u.contains("/statuses")).collect();
        assert_eq!(
            statuses,
            [&"/repos/acme/api/deployments/106/statuses?per_page=100"]
        );
        // Commits down to the cursor less a day (4 pages), the changed pull requests page and
        // their details, the deployments page and one statuses list; every other resource
        // answered 304.
        let read = log.iter().filter(|l| l.status == 200).count();
        // acme/lib's releases changed (a hotfix): the listing and the new release's commit.
        assert_eq!(read, 4 + 1 + timelines.len() + 1 + 1 + 2, "{urls:?}");
        assert!(
            urls.contains(&"/repos/acme/lib/commits/v1.0.1"),
            "only the new release's commit is asked for: {urls:?}"
        );
        assert!(
            !urls.contains(&"/repos/acme/lib/commits/v1.1.0"),
            "{urls:?}"
        );
        assert_eq!(log.len() - read, 10, "{urls:?}");
        assert!(read < full_requests / 2, "{read} of {full_requests}");

        // The same store as a full sync of the changed organisation.
        let fresh = TestDb::sqlite().await;
        assert!(sync(&fresh.store, &config).await.ok());
        let expected = fresh.store.load().await.unwrap();
        let got = db.store.load().await.unwrap();
        assert_eq!(got, expected);
        let pr5 = got.pull_requests.iter().find(|p| p.number == 5).unwrap();
        assert_eq!(pr5.reviews.len(), 1);
        assert!(
            got.deployments
                .iter()
                .any(|d| d.repo == "acme/lib" && d.id == "v1.0.1")
        );
        db.finish().await;
        fresh.finish().await;
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_end_in_the_same_store() {
    let clean = TestDb::sqlite().await;
    let (fake, address) = start_fake(Switches::default(), false).await;
    assert!(sync(&clean.store, &github_config(address)).await.ok());
    let expected = clean.store.load().await.unwrap();
    let clean_requests = fake.log().len();

    // One answer in ten is a 502, the rate limit runs out at the fifth request, and the
    // twelfth meets a secondary limit.
    let (fake, address) = start_fake(
        Switches {
            fail_every: Some(10),
            spend_at: Some(5),
            secondary: [12].into(),
            ..Switches::default()
        },
        false,
    )
    .await;
    let faulty = TestDb::sqlite().await;
    let started = std::time::Instant::now();
    let outcome = sync(&faulty.store, &github_config(address)).await;
    assert!(outcome.ok(), "{outcome:?}");
    assert_eq!(faulty.store.load().await.unwrap(), expected);
    let log = fake.log();
    let count = |status| log.iter().filter(|l| l.status == status).count();
    assert!(count(502) >= clean_requests / 10, "{}", count(502));
    assert_eq!(count(429), 1, "one secondary limit");
    // The requests in flight when the limit ran out (one per repository synced at once) meet
    // it; every later one waits for the reset before it is sent.
    assert!((1..=4).contains(&count(403)), "{}", count(403));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "the reset was waited for"
    );

    // A repository that keeps failing is reported; the others go on.
    let config = GithubConfig {
        repos: vec!["acme/missing".into(), "acme/api".into()],
        orgs: vec![],
        max_attempts: 3,
        ..github_config(address)
    };
    let outcome = sync(&faulty.store, &config).await;
    assert!(!outcome.ok());
    let failed: Vec<&str> = outcome
        .resources
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.resource.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "acme/missing commits",
            "acme/missing pulls",
            "acme/missing deployments",
            "acme/missing issues labelled incident"
        ]
    );
    let error = outcome.resources[0].error.clone().unwrap();
    assert!(error.contains("404"), "{error}");
    assert!(
        outcome
            .resources
            .iter()
            .filter(|r| r.resource.starts_with("acme/api"))
            .all(|r| r.error.is_none())
    );
    clean.finish().await;
    faulty.finish().await;
}

#[tokio::test]
async fn a_garbled_page_is_retried_then_fails_its_resource_and_the_sync_goes_on() {
    on_both(|store| async move {
        let (fake, address) = start_fake(
            Switches {
                garbled: Some("/repos/acme/api/issues".into()),
                ..Switches::default()
            },
            false,
        )
        .await;
        let config = GithubConfig {
            max_attempts: 2,
            ..github_config(address)
        };
        let outcome = sync(&store, &config).await;
        assert!(
            !outcome.ok(),
            "a page that was not read makes the sync fail: {outcome:?}"
        );
        let failed: Vec<&str> = outcome
            .resources
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| r.resource.as_str())
            .collect();
        assert_eq!(failed, ["acme/api issues labelled incident"]);
        let garbled: Vec<String> = warnings(&outcome)
            .into_iter()
            .filter(|w| w.contains("is not the page it should be"))
            .collect();
        assert_eq!(garbled.len(), 1, "{garbled:?}");
        assert!(
            garbled[0].contains("gave up after 2 attempts"),
            "{garbled:?}"
        );
        let asked = fake
            .log()
            .iter()
            .filter(|l| l.url.starts_with("/repos/acme/api/issues?"))
            .count();
        assert_eq!(asked, 2, "the garbled page was asked for again");
        let data = store.load().await.unwrap();
        assert!(data.incidents.is_empty());
        assert_eq!(data.pull_requests.len(), 5, "the other resources went on");
        let raw = store.raw_payloads("github").await.unwrap();
        assert!(
            raw.iter()
                .any(|r| r.resource == "unreadable" && r.id.contains("/repos/acme/api/issues"))
        );

        // The cursor did not move past the garbled page: the next sync reads it again.
        fake.switches.lock().unwrap().garbled = None;
        fake.log.lock().unwrap().clear();
        assert!(sync(&store, &config).await.ok());
        assert_eq!(store.load().await.unwrap().incidents.len(), 2);
        let issues: Vec<Logged> = fake
            .log()
            .into_iter()
            .filter(|l| l.url.starts_with("/repos/acme/api/issues?"))
            .collect();
        assert!(
            issues.iter().all(|l| !l.conditional && l.status == 200),
            "{issues:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn error_answers_never_pass_for_pages_and_a_failed_sync_is_repaired_by_the_next() {
    let clean = TestDb::sqlite().await;
    let (_, address) = start_fake(Switches::default(), false).await;
    assert!(sync(&clean.store, &github_config(address)).await.ok());
    let expected = clean.store.load().await.unwrap();
    let mut failed_runs = 0;
    let mut faulted_graphql = false;
    for error_body in [ErrorBody::Json, ErrorBody::Empty, ErrorBody::Html] {
        for per_mille in [100, 300] {
            for seed in 1..=3u64 {
                let run = format!("{error_body:?} at {per_mille}\u{2030}, seed {seed}");
                let (fake, address) = start_fake(
                    Switches {
                        random_faults: Some((seed, per_mille)),
                        error_body,
                        ..Switches::default()
                    },
                    false,
                )
                .await;
                let config = GithubConfig {
                    max_attempts: 2,
                    ..github_config(address)
                };
                let db = TestDb::sqlite().await;
                let outcome = sync(&db.store, &config).await;
                faulted_graphql |= fake
                    .log()
                    .iter()
                    .any(|l| l.url.starts_with("/graphql") && l.status >= 500);
                if outcome.ok() {
                    assert_eq!(db.store.load().await.unwrap(), expected, "{run}");
                } else {
                    failed_runs += 1;
                    fake.switches.lock().unwrap().random_faults = None;
                    let repaired = sync(&db.store, &config).await;
                    assert!(repaired.ok(), "{run}: {repaired:?}");
                    assert_eq!(db.store.load().await.unwrap(), expected, "{run}: repaired");
                }
                db.finish().await;
            }
        }
    }
    assert!(failed_runs > 0, "some runs ran out of attempts");
    assert!(faulted_graphql, "GraphQL answers were faulted too");
    clean.finish().await;
}

pub(crate) fn write_config(dir: &std::path::Path, address: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("flowmeter.toml");
    std::fs::write(
        &path,
        format!(
            "[github]\nurl = \"http://{address}\"\nrepos = [\"acme/api\"]\norgs = [\"acme\"]\npage_size = 4\nretry_base_ms = 1\n\n\
             [[github.deployment_sources]]\nrepo = \"acme/web\"\nsource = \"workflow_runs\"\nworkflows = [\"deploy.yml\"]\n\n\
             [[github.deployment_sources]]\nrepo = \"acme/lib\"\nsource = \"releases\"\nenvironment = \"production\"\n"
        ),
    )
    .unwrap();
    path
}

pub(crate) fn flowmeter_sync(db: &str, config: &std::path::Path, token: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowmeter"));
    command
        .args(["-vv", "sync", "github", "--db", db, "--config"])
        .arg(config)
        .env("GITHUB_TOKEN", token)
        .env("FLOWMETER_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn a_killed_sync_resumes_to_the_same_store_and_the_token_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let clean = TestDb::sqlite().await;
    let (fake, address) = start_fake(Switches::default(), false).await;
    assert!(sync(&clean.store, &github_config(address)).await.ok());
    let expected = clean.store.load().await.unwrap();

    // The second page of acme/api's pull requests stalls; once asked for, the process is killed.
    fake.log.lock().unwrap().clear();
    let stall = "/repos/acme/api/pulls?direction=desc&per_page=4&sort=updated&state=all&page=2";
    fake.switches.lock().unwrap().stall = Some(stall.into());
    let config = write_config(dir.path(), address);
    let db = format!("sqlite://{}", dir.path().join("killed.db").display());
    // Its trace-level log goes to a file: a pipe nobody reads would fill and stall it.
    let log_path = dir.path().join("killed.log");
    let mut child = flowmeter_sync(&db, &config, TOKEN)
        .stdout(std::fs::File::create(dir.path().join("killed.out")).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let waiting = std::time::Instant::now();
    // The stalled request is logged only when it answers (never): watch for the last request
    // before it, the details query of the first page's pull requests.
    loop {
        if fake
            .log()
            .iter()
            .any(|l| l.url.starts_with("/graphql") && l.url.contains("pr3"))
        {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before the stalled page"
        );
        assert!(
            waiting.elapsed().as_secs() < 120,
            "the sync never reached the stalled page"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_log = std::fs::read_to_string(&log_path).unwrap()
        + &std::fs::read_to_string(dir.path().join("killed.out")).unwrap();
    assert!(
        killed_log.contains("acme/api"),
        "the trace log was written: {killed_log}"
    );
    let partial = Store::open(&db).await.unwrap();
    let before = partial.load().await.unwrap();
    assert!(
        !before.pull_requests.is_empty()
            && before.pull_requests.len() < expected.pull_requests.len(),
        "killed mid-way: {} pull requests",
        before.pull_requests.len()
    );

    fake.switches.lock().unwrap().stall = None;
    let resumed = tokio::task::spawn_blocking({
        let (db, config) = (db.clone(), config.clone());
        move || flowmeter_sync(&db, &config, TOKEN).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(partial.load().await.unwrap(), expected);
    let summary = String::from_utf8_lossy(&resumed.stderr).into_owned();
    assert!(summary.contains("github acme/api pulls:"), "{summary}");

    // A wrong token: the sync fails with a clear error, and no token appears in anything printed.
    let wrong = "ghp_wrongToken99887766554433SECRET";
    let refused = tokio::task::spawn_blocking({
        let (db, config) = (db.clone(), config.clone());
        move || flowmeter_sync(&db, &config, wrong).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!refused.status.success());
    let refused_err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        refused_err.contains("GitHub rejected the token (401)"),
        "{refused_err}"
    );
    let printed = [&resumed, &refused].map(|output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    for all in printed.iter().chain([&killed_log]) {
        assert!(
            !all.contains(TOKEN) && !all.contains(wrong),
            "a token leaked: {all}"
        );
        assert!(!all.contains("SECRET"), "part of a token leaked: {all}");
    }
    partial.close().await;
    clean.finish().await;
}

/// Requests per synced pull request and per 100 commits (docs/benchmarks.md): a repository
/// with 1,000 commits and 40 pull requests at GitHub's largest page size.
#[tokio::test]
async fn requests_per_pull_request_and_per_100_commits() {
    let (fake, address) = start_fake(Switches::default(), false).await;
    {
        let t = Templates::load();
        let mut repo = Repo::new("acme/big");
        repo.history(1000);
        let mut pulls = Vec::new();
        for n in 1..=40u64 {
            let c = repo.main_commit(n as usize * 20);
            let pr = Pr {
                number: n,
                created: c.authored.clone(),
                updated: c.committed.clone(),
                merged: Some(c.committed.clone()),
                closed: Some(c.committed.clone()),
                draft: false,
                merge_sha: Some(c.sha.clone()),
                commits: vec![c],
                reviews: vec![("bob", "APPROVED", at(1, 1))],
                ready: None,
                labels: vec![],
                head: "feat",
            };
            let (v, timeline) = pull(&t, "acme/big", &pr);
            pulls.push(v);
            repo.listings.insert(
                format!("/repos/acme/big/issues/{n}/timeline"),
                Listing::Items(timeline),
            );
        }
        pulls.reverse();
        repo.listings
            .insert("/repos/acme/big/pulls".into(), Listing::Items(pulls));
        let mut data = fake.data.lock().unwrap();
        data.extend(repo.finish(&t));
    }
    let mut stores = Vec::new();
    for details in [PullDetails::Rest, PullDetails::Graphql] {
        let config = GithubConfig {
            repos: vec!["acme/big".into()],
            orgs: vec![],
            page_size: 100,
            pull_details: details,
            ..github_config(address)
        };
        let db = TestDb::sqlite().await;
        let outcome = sync(&db.store, &config).await;
        assert!(outcome.ok(), "{outcome:?}");
        assert!(warnings(&outcome).is_empty(), "{:?}", warnings(&outcome));
        let resource = |name: &str| {
            outcome
                .resources
                .iter()
                .find(|r| r.resource == name)
                .unwrap()
                .clone()
        };
        assert_eq!(resource("acme/big commits").records, 1000);
        // 40 pull requests and their 40 commits.
        assert_eq!(resource("acme/big pulls").records, 80);
        let commits = resource("acme/big commits").requests;
        let pulls = resource("acme/big pulls").requests;
        let per_100_commits = commits as f64 / 10.0;
        let per_pull = pulls as f64 / 40.0;
        eprintln!(
            "full sync ({details:?}): {per_100_commits:.2} requests per 100 commits, {per_pull:.3} per pull request"
        );
        assert!(per_100_commits <= 1.1, "{per_100_commits}");
        match details {
            // The list page, plus one timeline per pull request.
            PullDetails::Rest => assert_eq!(pulls, 1 + 40),
            // The list page, plus one query per 25 pull requests.
            PullDetails::Graphql => assert_eq!(pulls, 1 + 2),
        }

        fake.log.lock().unwrap().clear();
        let used = *fake.used.lock().unwrap();
        let again = sync(&db.store, &config).await;
        assert!(again.ok());
        let log = fake.log();
        assert!(log.iter().all(|l| l.status == 304));
        eprintln!(
            "unchanged re-sync ({details:?}): {} requests, all 304, {} rate-limit points",
            log.len(),
            *fake.used.lock().unwrap() - used
        );
        assert_eq!(*fake.used.lock().unwrap(), used);
        stores.push(db);
    }
    // Both ways read the same records.
    assert_eq!(
        stores[0].store.load().await.unwrap(),
        stores[1].store.load().await.unwrap()
    );
    for db in stores {
        db.finish().await;
    }
}

/// A deployment still running is read again on the next sync even though the deployments list
/// may not have changed, until its outcome is known; then the resource is back to one 304.
#[tokio::test]
async fn a_running_deployment_is_read_again_until_it_finishes() {
    let (fake, address) = start_fake(Switches::default(), false).await;
    let templates = Templates::load();
    let now = chrono::Utc::now();
    let started = (now - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let finished = (now - chrono::Duration::minutes(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let head = sha("acme/api", 25);
    let (running, statuses) = deployment(
        &templates,
        107,
        &head,
        "production",
        &started,
        &[("in_progress", started.clone())],
    );
    {
        let mut data = fake.data.lock().unwrap();
        if let Some(Listing::Items(list)) = data.get_mut("/repos/acme/api/deployments") {
            list.insert(0, running);
        }
        data.insert(
            "/repos/acme/api/deployments/107/statuses".into(),
            Listing::Items(statuses),
        );
    }
    let db = TestDb::sqlite().await;
    let config = github_config(address);
    assert!(sync(&db.store, &config).await.ok());
    let status = |data: &Dataset| {
        data.deployments
            .iter()
            .find(|d| d.id == "107")
            .map(|d| d.status)
    };
    assert_eq!(
        status(&db.store.load().await.unwrap()),
        Some(DeploymentStatus::InProgress)
    );

    // It finishes; GitHub's list of deployments is the same bytes as before.
    let (_, statuses) = deployment(
        &templates,
        107,
        &head,
        "production",
        &started,
        &[
            ("in_progress", started.clone()),
            ("success", finished.clone()),
        ],
    );
    fake.data.lock().unwrap().insert(
        "/repos/acme/api/deployments/107/statuses".into(),
        Listing::Items(statuses),
    );
    fake.log.lock().unwrap().clear();
    assert!(sync(&db.store, &config).await.ok());
    let urls: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.url.starts_with("/repos/acme/api/deployments"))
        .map(|l| format!("{} {}", l.status, l.url))
        .collect();
    assert_eq!(
        urls,
        [
            "200 /repos/acme/api/deployments?per_page=4",
            "200 /repos/acme/api/deployments/107/statuses?per_page=100"
        ],
        "the list is read without If-None-Match, and only the pending deployment's statuses"
    );
    let d = db
        .store
        .load()
        .await
        .unwrap()
        .deployments
        .into_iter()
        .find(|d| d.id == "107")
        .unwrap();
    assert_eq!(
        (d.status, d.finished_at),
        (DeploymentStatus::Success, Some(t(&finished)))
    );

    // Nothing pending any more: one conditional request, answered 304.
    fake.log.lock().unwrap().clear();
    assert!(sync(&db.store, &config).await.ok());
    let deployments: Vec<Logged> = fake
        .log()
        .into_iter()
        .filter(|l| l.url.starts_with("/repos/acme/api/deployments"))
        .collect();
    assert_eq!(deployments.len(), 1);
    assert!(deployments[0].conditional && deployments[0].status == 304);
    db.finish().await;
}

/// Waits (up to a minute) until the store holds the fake organisation, then checks it.
async fn synced_organisation(store: &Store, late: &str) {
    let started = std::time::Instant::now();
    loop {
        let data = store.load().await.unwrap();
        if data.incidents.len() == 2 && data.deployments.len() == 9 {
            assert_organisation(&data);
            return;
        }
        assert!(started.elapsed().as_secs() < 60, "{late}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `flowmeter serve` with `server.sync_minutes` runs the configured connectors at once and then
/// on that schedule.
#[tokio::test]
async fn serve_syncs_the_configured_connectors_on_a_schedule() {
    let (_fake, address) = start_fake(Switches::default(), false).await;
    let db = TestDb::sqlite().await;
    let mut config = flowmeter_core::Config::default();
    assert!(flowmeter::sync::spawn_schedule(db.store.clone(), config.clone()).is_none());
    config.github = github_config(address);
    config.server.sync_minutes = 60;
    assert_eq!(
        flowmeter::sync::configured(&config),
        [flowmeter::sync::Source::Github]
    );
    let schedule = flowmeter::sync::spawn_schedule(db.store.clone(), config).expect("scheduled");
    synced_organisation(&db.store, "the first scheduled sync did not finish").await;
    schedule.abort();
    db.finish().await;
}

/// Each scheduled source runs on its own: a Jira that never answers delays no GitHub sync.
#[tokio::test]
async fn a_hung_source_delays_no_other() {
    let (_fake, address) = start_fake(Switches::default(), false).await;
    let mut stalled = crate::jira::Switches::default();
    stalled.stall_at = Some(0);
    let (jira, jira_address) = crate::jira::start_fake(stalled).await;
    let db = TestDb::sqlite().await;
    let mut config = flowmeter_core::Config {
        github: github_config(address),
        jira: crate::jira::jira_config(jira_address),
        ..Default::default()
    };
    config.server.sync_minutes = 60;
    let schedule = flowmeter::sync::spawn_schedule(db.store.clone(), config).expect("scheduled");
    synced_organisation(&db.store, "GitHub's scheduled sync waited behind Jira's").await;
    assert!(
        jira.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("search")),
        "Jira's sync ran meanwhile and is still waiting for its first page"
    );
    assert!(db.store.load().await.unwrap().issues.is_empty());
    schedule.abort();
    db.finish().await;
}

/// A pull request with more commits or reviews than one GraphQL query returns has its timeline
/// read instead, page by page.
#[tokio::test]
async fn a_pull_request_too_long_for_one_query_reads_its_timeline() {
    let (fake, address) = start_fake(Switches::default(), false).await;
    let clean = TestDb::sqlite().await;
    assert!(sync(&clean.store, &github_config(address)).await.ok());
    fake.switches.lock().unwrap().truncated = [2].into();
    fake.log.lock().unwrap().clear();
    let db = TestDb::sqlite().await;
    assert!(sync(&db.store, &github_config(address)).await.ok());
    let timelines: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.url.contains("/timeline"))
        .map(|l| l.url)
        .collect();
    assert_eq!(
        timelines,
        ["/repos/acme/api/issues/2/timeline?per_page=100"]
    );
    assert_eq!(
        db.store.load().await.unwrap(),
        clean.store.load().await.unwrap()
    );

    // GraphQL refused altogether: a warning, and every timeline is read instead.
    *fake.switches.lock().unwrap() = Switches {
        graphql_refused: true,
        ..Switches::default()
    };
    fake.log.lock().unwrap().clear();
    let refused = TestDb::sqlite().await;
    let outcome = sync(&refused.store, &github_config(address)).await;
    assert!(outcome.ok(), "{outcome:?}");
    let warned: Vec<String> = warnings(&outcome)
        .into_iter()
        .filter(|w| w.contains("GraphQL"))
        .collect();
    assert_eq!(
        warned,
        [
            "acme/api: pull request details through GraphQL failed (GitHub's GraphQL API: Resource not accessible by personal access token); this sync reads timelines instead"
        ]
    );
    let timelines = fake
        .log()
        .iter()
        .filter(|l| l.url.contains("/timeline"))
        .count();
    assert_eq!(timelines, 6);
    assert_eq!(
        refused.store.load().await.unwrap(),
        clean.store.load().await.unwrap()
    );
    clean.finish().await;
    db.finish().await;
    refused.finish().await;
}

/// What GitHub sync wrote makes the DORA report the definitions give, computed by hand for the
/// fake organisation over 2024-03-01..2024-03-08.
#[tokio::test]
async fn a_synced_organisation_reports_the_hand_computed_numbers() {
    on_both(|store| async move {
        let (_fake, address) = start_fake(Switches::default(), false).await;
        assert!(sync(&store, &github_config(address)).await.ok());
        let config = flowmeter_core::Config::default();
        let (from, to) = ("2024-03-01", "2024-03-08");
        // acme/api: 101 (c4, 03-02 03:30) is the baseline; 102 went to staging, 103 failed,
        // 105 was unreadable; 104 (c20, succeeded 03-04 10:20) delivers c5..c20.
        let api = report(
            &store,
            &config,
            from,
            to,
            flowmeter_core::Scope {
                repo: Some("acme/api".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(api.deployment_frequency.deployments, 2);
        // c_i was authored 3i hours after 03-01 00:00, 104 is 82h20m after it: lead time
        // 82.33 - 3i for i = 5..20, except c10, the squash merge of #2, whose start is #2's
        // first commit (03-01 01:00): 81.33. The middle two of the sixteen: 43.33 and 46.33.
        assert_eq!(api.lead_time.changes, 16);
        close(
            api.lead_time.median_hours,
            (43.0 + 1.0 / 3.0 + 46.0 + 1.0 / 3.0) / 2.0,
        );
        // #10 (03-04 04:25) hit 101, #12 (03-04 15:00) hit 104.
        assert_eq!(
            (api.change_failure_rate.failed, api.change_failure_rate.rate),
            (2, Some(1.0))
        );
        // #10 was resolved at 06:30: 2h05m. #12 is open.
        assert_eq!(
            (api.recovery_time.incidents, api.recovery_time.open),
            (1, 1)
        );
        close(api.recovery_time.median_hours, 2.0 + 5.0 / 60.0);
        // 104 delivers #2, labelled bug from hotfix/pay: rework.
        assert_eq!(api.rework_rate.rework, 1);

        // The organisation adds acme/web's one successful run (a baseline) and acme/lib's two
        // releases, v1.1.0 delivering l2 and l3 (authored 06:00 and 09:00, released 11:50).
        let all = report(&store, &config, from, to, flowmeter_core::Scope::default()).await;
        assert_eq!(all.deployment_frequency.deployments, 5);
        close(Some(all.deployment_frequency.per_week), 5.0);
        assert_eq!(all.lead_time.changes, 18);
        assert_eq!(
            (all.change_failure_rate.failed, all.change_failure_rate.rate),
            (2, Some(0.4))
        );
    })
    .await;
}

/// An empty repository (its commits answer 409), one whose issues are switched off (410) and one
/// that was renamed (301 to its new name) sync without failing.
#[tokio::test]
async fn empty_renamed_and_issue_less_repositories_sync() {
    let (fake, address) = start_fake(Switches::default(), false).await;
    {
        let mut data = fake.data.lock().unwrap();
        data.insert(
            "/repos/acme/empty/commits".into(),
            Listing::Status(409, "Git Repository is empty."),
        );
        data.insert(
            "/repos/acme/empty/issues".into(),
            Listing::Status(410, "Issues are disabled for this repo"),
        );
        for path in ["pulls", "deployments"] {
            data.insert(format!("/repos/acme/empty/{path}"), Listing::Items(vec![]));
        }
    }
    let config = GithubConfig {
        repos: vec!["acme/empty".into(), "acme/old-api".into()],
        orgs: vec![],
        ..github_config(address)
    };
    let db = TestDb::sqlite().await;
    let outcome = sync(&db.store, &config).await;
    assert!(outcome.ok(), "{outcome:?}");
    let empty: Vec<u64> = outcome
        .resources
        .iter()
        .filter(|r| r.resource.starts_with("acme/empty"))
        .map(|r| r.records)
        .collect();
    assert_eq!(empty, [0, 0, 0, 0]);
    let log = fake.log();
    assert!(log.iter().any(|l| l.status == 409) && log.iter().any(|l| l.status == 410));
    assert!(
        log.iter()
            .any(|l| l.status == 301 && l.url.starts_with("/repos/acme/old-api/commits"))
    );
    let data = db.store.load().await.unwrap();
    // The renamed repository's records are those of its new name, under the configured name.
    assert_eq!(
        data.commits
            .iter()
            .filter(|c| c.repo == "acme/old-api")
            .count(),
        25 + 4
    );
    assert_eq!(data.pull_requests.len(), 5);
    db.finish().await;
}

/// GitHub Enterprise Server: the REST API under `/api/v3`, GraphQL at `/api/graphql`.
#[tokio::test]
async fn an_enterprise_server_is_read_under_its_api_paths() {
    let (fake, address) = start_fake(Switches::default(), false).await;
    let clean = TestDb::sqlite().await;
    assert!(sync(&clean.store, &github_config(address)).await.ok());
    fake.log.lock().unwrap().clear();
    let ghes = TestDb::sqlite().await;
    let config = GithubConfig {
        url: format!("http://{address}/api/v3"),
        ..github_config(address)
    };
    let outcome = sync(&ghes.store, &config).await;
    assert!(outcome.ok(), "{outcome:?}");
    assert!(warnings(&outcome).iter().all(|w| !w.contains("GraphQL")));
    let log = fake.log();
    assert!(
        log.iter().any(|l| l.url == "/graphql pr6,pr5,pr4,pr3"),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.url.contains("/timeline")), "{log:?}");
    assert!(
        log.iter()
            .filter(|l| !l.url.starts_with("/graphql"))
            .all(|l| l.url.starts_with("/api/v3/")),
        "{log:?}"
    );
    // Its records are those of the same organisation on github.com (the archive ids differ
    // by host only).
    assert_eq!(
        ghes.store.load().await.unwrap(),
        clean.store.load().await.unwrap()
    );
    clean.finish().await;
    ghes.finish().await;
}

/// GitHub and Jira synced into one store: a pull request whose title names a Jira issue gets
/// the tracker stages of that issue's status history before its coding stage (rule S).
#[tokio::test]
async fn github_and_jira_together_give_the_tracker_stages() {
    on_both(|store| async move {
        let (github, address) = start_fake(Switches::default(), false).await;
        // #4's first commit (c14) was authored 03-02 18:00; PAY-1 was created that day at
        // 08:00, in progress at 09:00, in review at 12:00 and done at 18:00.
        if let Some(Listing::Items(pulls)) =
            github.data.lock().unwrap().get_mut("/repos/acme/api/pulls")
        {
            for pull in pulls.iter_mut().filter(|p| p["number"] == 4) {
                pull["title"] = json!("PAY-1: export");
            }
        }
        assert!(sync(&store, &github_config(address)).await.ok());
        let (_jira, jira_address) = crate::jira::start_fake(Default::default()).await;
        let jira = flowmeter_ingest::jira::sync(
            &store,
            &crate::jira::jira_config(jira_address),
            &LogProgress,
        )
        .await
        .unwrap();
        assert!(jira.ok(), "{jira:?}");
        let dataset = store.load().await.unwrap();
        let report = tokio::task::spawn_blocking(move || {
            let snapshot =
                flowmeter_engine::Snapshot::build(&dataset, &flowmeter_core::Config::default())
                    .unwrap();
            snapshot
                .stages(
                    flowmeter_core::Window::parse("2024-03-01", "2024-03-08").unwrap(),
                    &flowmeter_core::Scope::default(),
                    chrono::Utc::now(),
                )
                .unwrap()
        })
        .await
        .unwrap();
        let stat = |name: &str| {
            report
                .stages
                .iter()
                .find(|s| s.stage == name)
                .unwrap()
                .clone()
        };
        // Only #4 is linked: backlog 08:00-09:00, in progress 09:00-12:00, review 12:00-18:00.
        assert_eq!(stat("backlog").count, 1);
        close(stat("backlog").median_hours, 1.0);
        close(stat("tracker_in_progress").median_hours, 3.0);
        close(stat("tracker_review").median_hours, 6.0);
        // The window's merged pull requests are #1, #2 and #4; two are not linked to an issue.
        assert_eq!(
            (report.pull_requests.merged, report.pull_requests.unlinked),
            (3, 2)
        );
    })
    .await;
}

/// A workflow run re-run while the sync ran: it started later than it was created, and it is
/// read again by its creation time, the time the runs listing is ordered and paged by.
#[tokio::test]
async fn a_re_run_workflow_run_is_read_again_until_it_finishes() {
    let (fake, address) = start_fake(Switches::default(), false).await;
    let templates = Templates::load();
    let now = chrono::Utc::now();
    let stamp = |hours: i64| {
        (now - chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let rerun = |status: &str, conclusion: Option<&str>| {
        let mut run = templates.run.clone();
        run["id"] = json!(205);
        run["head_sha"] = json!(sha("acme/web", 5));
        run["status"] = json!(status);
        run["conclusion"] = json!(conclusion);
        run["created_at"] = json!(stamp(3));
        run["run_started_at"] = json!(stamp(1));
        run["updated_at"] = json!(stamp(0));
        run
    };
    let put = |run: Value| {
        let mut data = fake.data.lock().unwrap();
        if let Some(Listing::Wrapped(_, runs)) =
            data.get_mut("/repos/acme/web/actions/workflows/deploy.yml/runs")
        {
            runs.retain(|r| r["id"] != 205);
            runs.insert(0, run);
        }
    };
    put(rerun("in_progress", None));
    let db = TestDb::sqlite().await;
    let config = github_config(address);
    assert!(sync(&db.store, &config).await.ok());
    let status = |data: &Dataset| {
        data.deployments
            .iter()
            .find(|d| d.id == "run-205")
            .map(|d| d.status)
    };
    assert_eq!(
        status(&db.store.load().await.unwrap()),
        Some(DeploymentStatus::InProgress)
    );
    put(rerun("completed", Some("success")));
    assert!(sync(&db.store, &config).await.ok());
    assert_eq!(
        status(&db.store.load().await.unwrap()),
        Some(DeploymentStatus::Success)
    );
    db.finish().await;
}

/// `acme/big`: 4,000 commits and 300 deployments (successes, failures, superseded ones, one
/// without a sha); `acme/rel`: 300 releases (one a draft).
fn large_organisation() -> BTreeMap<String, Listing> {
    let t = Templates::load();
    let mut all = BTreeMap::new();
    let mut big = Repo::new("acme/big");
    big.history(4000);
    let mut deployments: Vec<(Value, Vec<Value>)> = (1..=300u32)
        .map(|i| {
            let start = i * 2000;
            let states: Vec<(&str, String)> = match i % 4 {
                0 => vec![("failure", at(1, start + 5))],
                1 => vec![
                    ("in_progress", at(1, start + 1)),
                    ("success", at(1, start + 9)),
                ],
                2 => vec![
                    ("success", at(1, start + 7)),
                    ("inactive", at(1, start + 900)),
                ],
                _ => vec![("queued", at(1, start)), ("success", at(1, start + 3))],
            };
            let commit = big.main_commit((i as usize * 13) % 4000 + 1).sha;
            let sha = if i == 150 { "x".to_string() } else { commit };
            let (mut d, statuses) = deployment(
                &t,
                1000 + u64::from(i),
                &sha,
                "production",
                &at(1, start),
                &states,
            );
            if i == 150 {
                d["sha"] = Value::Null;
            }
            (d, statuses)
        })
        .collect();
    deployments.sort_by(|a, b| b.0["created_at"].as_str().cmp(&a.0["created_at"].as_str()));
    for (d, statuses) in &deployments {
        big.listings.insert(
            format!("/repos/acme/big/deployments/{}/statuses", d["id"]),
            Listing::Items(statuses.clone()),
        );
    }
    big.listings.insert(
        "/repos/acme/big/deployments".into(),
        Listing::Items(deployments.into_iter().map(|(d, _)| d).collect()),
    );
    all.extend(big.finish(&t));

    let mut rel = Repo::new("acme/rel");
    rel.history(10);
    let mut releases = Vec::new();
    for i in (1..=300u32).rev() {
        let tag = format!("v1.{i}.0");
        let mut v = t.release.clone();
        v["id"] = json!(5000 + i);
        v["tag_name"] = json!(tag);
        v["created_at"] = json!(at(2, i * 60));
        v["published_at"] = json!(at(2, i * 60 + 5));
        v["draft"] = json!(i == 300);
        v["prerelease"] = json!(false);
        releases.push(v);
        rel.listings.insert(
            format!("/repos/acme/rel/commits/{tag}"),
            Listing::Text(sha("acme/rel", (i as usize % 10) + 1)),
        );
    }
    rel.listings
        .insert("/repos/acme/rel/releases".into(), Listing::Items(releases));
    all.extend(rel.finish(&t));
    let repo = |name: &str| {
        let mut v = t.pull["base"]["repo"].clone();
        v["full_name"] = json!(name);
        v["name"] = json!(name.split('/').nth(1));
        v["archived"] = json!(false);
        v["fork"] = json!(false);
        v
    };
    all.insert(
        "/orgs/acme/repos".into(),
        Listing::Items(vec![repo("acme/big"), repo("acme/rel")]),
    );
    all
}

fn large_config(address: SocketAddr, details: PullDetails) -> GithubConfig {
    GithubConfig {
        url: format!("http://{address}"),
        token: TOKEN.into(),
        orgs: vec!["acme".into()],
        retry_base_ms: 1,
        deployment_sources: vec![DeploymentSourceConfig {
            repo: "acme/rel".into(),
            source: DeploymentSource::Releases,
            workflows: vec![],
            environment: Some("production".into()),
        }],
        deployment_details: details,
        ..GithubConfig::default()
    }
}

#[tokio::test]
async fn deployment_details_through_graphql_cost_a_query_per_page_and_give_the_rest_store() {
    let (fake, address) = start_fake_with(Switches::default(), large_organisation()).await;
    let graphql = TestDb::sqlite().await;
    let outcome = sync(&graphql.store, &large_config(address, PullDetails::Graphql)).await;
    assert!(outcome.ok(), "{outcome:?}");
    let log = fake.log();
    let queries = log.iter().filter(|l| l.url.starts_with("/graphql")).count();
    // 1 organisation page; acme/big: 40 commit pages, pulls, 3 deployment pages, 3 queries,
    // incidents; acme/rel: commits, pulls, 3 release pages, 3 queries, incidents.
    eprintln!(
        "large organisation, GraphQL: {} requests, {queries} queries",
        log.len()
    );
    assert!(log.len() <= 60, "{} requests", log.len());
    assert_eq!(queries, 6, "one query per page of 100");
    assert!(
        !log.iter()
            .any(|l| l.url.contains("/statuses") || l.url.contains("/commits/v"))
    );
    let data = graphql.store.load().await.unwrap();
    assert_eq!(data.commits.len(), 4010);
    assert_eq!(
        data.deployments.len(),
        299 + 299,
        "all but the one without a sha and the draft"
    );

    fake.log.lock().unwrap().clear();
    let rest = TestDb::sqlite().await;
    let outcome = sync(&rest.store, &large_config(address, PullDetails::Rest)).await;
    assert!(outcome.ok(), "{outcome:?}");
    eprintln!("large organisation, REST: {} requests", fake.log().len());
    assert!(
        fake.log().len() > 600,
        "REST asks once per deployment and release"
    );
    assert_eq!(
        graphql.store.load().await.unwrap(),
        rest.store.load().await.unwrap()
    );

    // Unchanged, a re-sync costs conditional requests only: no query.
    fake.log.lock().unwrap().clear();
    let used = *fake.used.lock().unwrap();
    let outcome = sync(&graphql.store, &large_config(address, PullDetails::Graphql)).await;
    assert!(outcome.ok(), "{outcome:?}");
    let log = fake.log();
    assert!(
        log.iter().all(|l| l.status == 304 && l.conditional),
        "{:?}",
        log.iter().map(|l| &l.url).collect::<Vec<_>>()
    );
    assert_eq!(*fake.used.lock().unwrap(), used);
    rest.finish().await;
    graphql.finish().await;
}

#[tokio::test]
async fn deployment_details_fall_back_per_batch_on_partial_truncated_or_refused_answers() {
    let (fake, address) = start_fake_with(Switches::default(), large_organisation()).await;
    let rest = TestDb::sqlite().await;
    assert!(
        sync(&rest.store, &large_config(address, PullDetails::Rest))
            .await
            .ok()
    );
    let expected = rest.store.load().await.unwrap();
    let cases: [(&str, Switches); 3] = [
        (
            "partial",
            Switches {
                graphql_partial: true,
                ..Switches::default()
            },
        ),
        (
            "truncated",
            Switches {
                truncated: (1001..=1060).collect(),
                ..Switches::default()
            },
        ),
        (
            "refused",
            Switches {
                graphql_refused: true,
                ..Switches::default()
            },
        ),
    ];
    for (case, switches) in cases {
        *fake.switches.lock().unwrap() = switches;
        fake.log.lock().unwrap().clear();
        let db = TestDb::sqlite().await;
        let outcome = sync(&db.store, &large_config(address, PullDetails::Graphql)).await;
        assert!(outcome.ok(), "{case}: {outcome:?}");
        assert_eq!(
            db.store.load().await.unwrap(),
            expected,
            "{case}: the REST store"
        );
        let log = fake.log();
        let one_by_one = log
            .iter()
            .filter(|l| l.url.contains("/statuses") || l.url.contains("/commits/v"))
            .count();
        match case {
            // Every other item of each batch was missing from the answer.
            "partial" => assert_eq!(one_by_one, 150 + 149, "{case}"),
            // Only the 60 deployments with too many statuses.
            "truncated" => assert_eq!(one_by_one, 60, "{case}"),
            _ => {
                assert_eq!(one_by_one, 300 + 299, "{case}");
                let warned: Vec<String> = warnings(&outcome)
                    .into_iter()
                    .filter(|w| w.contains("GraphQL"))
                    .collect();
                assert_eq!(warned.len(), 1, "{warned:?}");
                assert!(
                    warned[0].contains("deployment details through GraphQL failed"),
                    "{warned:?}"
                );
            }
        }
        db.finish().await;
    }
    rest.finish().await;
}
