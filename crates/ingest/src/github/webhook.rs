//! GitHub webhooks: a delivery is verified (HMAC-SHA256 of its raw body under one of the
//! configured secrets), admitted when it is an event Flowmeter reads about a followed
//! repository, kept under its delivery id by the server, and then processed here with the
//! sync's own normalizers and archive ids, so the store is the same whichever way a record came.
//!
//! An event that carries a whole record writes it: a deployment with its statuses (the status
//! delivered is merged into the statuses archived for that deployment), a workflow run, an
//! incident issue. An event that lacks what a record needs (a push has no parents, a pull
//! request event has neither its commits nor its reviews, a release event has no tag commit)
//! writes nothing partial: it makes the next sync of that resource read it (the resource's
//! ETag is dropped, so its first page is read whole, and the sync pages down to its cursor).
//!
//! One file over 600 lines: about a third is its unit tests; the rest is one event table
//! (`Ctx`'s methods) that reads best next to the signature and admission rules it depends on.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use flowmeter_core::Record;
use flowmeter_core::config::{DeploymentSource, GithubConfig};
use flowmeter_core::import::RecordKind;
use flowmeter_store::{Cursor, Delivery, Store, StoreError};

use super::{Mark, SOURCE, archive, normalize, raw_id};

/// The events Flowmeter reads. Others are answered and ignored.
pub const EVENTS: &[&str] = &[
    "push",
    "pull_request",
    "pull_request_review",
    "deployment",
    "deployment_status",
    "workflow_run",
    "release",
    "issues",
    "ping",
];

/// Whether `signature` (the `X-Hub-Signature-256` header, `sha256=<hex>`) is the HMAC-SHA256
/// of `body` under one of `secrets`. The comparison takes the same time whatever the bytes
/// (the `hmac` crate's `verify_slice`), and every secret is tried, so timing tells nothing
/// about which matched.
pub fn verify(secrets: &[impl AsRef<str>], signature: Option<&str>, body: &[u8]) -> bool {
    let Some(expected) = signature
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .and_then(decode_hex)
    else {
        return false;
    };
    secrets
        .iter()
        .map(AsRef::as_ref)
        .filter(|secret| !secret.is_empty())
        .fold(false, |matched, secret| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
            mac.update(body);
            mac.verify_slice(&expected).is_ok() | matched
        })
}

/// The `X-Hub-Signature-256` header for `body` under `secret`, as GitHub computes it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The repository a delivery's body names (`repository.full_name`), read without trusting
/// anything else in it: which repository's own secrets may have signed it.
pub fn repository_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        repository: Option<Repository>,
    }
    #[derive(serde::Deserialize)]
    struct Repository {
        full_name: Option<String>,
    }
    serde_json::from_slice::<Probe>(body)
        .ok()?
        .repository?
        .full_name
}

/// 32 bytes from 64 hex digits, else `None`.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// What to do with a verified delivery before it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Keep it: an event Flowmeter reads, about `repo` (empty for a `ping` of an
    /// organisation's hook).
    Keep {
        repo: String,
        action: Option<String>,
    },
    /// Answer it and do nothing: why, as a metric label.
    Ignore(&'static str),
}

/// Whether a delivery of `event` with this body is kept: an event Flowmeter reads, about a
/// repository it follows (`github.repos`, or one of `github.orgs` unless archived or a fork).
pub fn admit(config: &GithubConfig, event: &str, body: &Value) -> Admission {
    if !EVENTS.contains(&event) {
        return Admission::Ignore("unknown_event");
    }
    let action = text(body, &["action"]).map(String::from);
    let repo = text(body, &["repository", "full_name"]);
    if event == "ping" {
        let scope = repo.or(text(body, &["organization", "login"]));
        return Admission::Keep {
            repo: scope.unwrap_or_default().to_string(),
            action,
        };
    }
    let Some(repo) = repo else {
        return Admission::Ignore("no_repository");
    };
    if !follows(config, repo, &body["repository"]) {
        return Admission::Ignore("repository_not_followed");
    }
    Admission::Keep {
        repo: repo.to_string(),
        action,
    }
}

/// Whether the sync follows `repo`: listed in `github.repos`, or in one of `github.orgs` and
/// neither archived nor a fork (as the organisation's listing is read).
fn follows(config: &GithubConfig, repo: &str, repository: &Value) -> bool {
    if config.repos.iter().any(|r| r.eq_ignore_ascii_case(repo)) {
        return true;
    }
    let owner = repo.split('/').next().unwrap_or_default();
    config.orgs.iter().any(|o| o.eq_ignore_ascii_case(owner))
        && repository.get("archived").and_then(Value::as_bool) != Some(true)
        && repository.get("fork").and_then(Value::as_bool) != Some(true)
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

/// What came of processing one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Records written (`changed` of them new or different).
    Written {
        records: u64,
        changed: u64,
        warnings: Vec<String>,
    },
    /// Nothing written: these resources are read by the next sync.
    Refetch(Vec<String>),
    /// Nothing to do, and why.
    Ignored(String),
}

impl Outcome {
    /// The metric label of the outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Written { .. } => "written",
            Outcome::Refetch(_) => "refetch",
            Outcome::Ignored(_) => "ignored",
        }
    }

    /// Whether the store's records changed.
    pub fn changed_records(&self) -> bool {
        matches!(self, Outcome::Written { changed, .. } if *changed > 0)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Written {
                records,
                changed,
                warnings,
            } => {
                write!(f, "{records} record(s) written, {changed} changed")?;
                for w in warnings {
                    write!(f, "; {w}")?;
                }
                Ok(())
            }
            Outcome::Refetch(resources) => write!(
                f,
                "the next sync reads {} (the event does not carry whole records)",
                resources.join(", ")
            ),
            Outcome::Ignored(why) => write!(f, "ignored: {why}"),
        }
    }
}

/// Processes one kept delivery: writes the records it carries whole, or makes the next sync
/// read the resources it names. Only the store's faults are errors; a payload that cannot be
/// read is an outcome saying so.
pub async fn process(
    store: &Store,
    config: &GithubConfig,
    delivery: &Delivery,
) -> Result<Outcome, StoreError> {
    let Ok(host) = super::host(config) else {
        return Ok(Outcome::Ignored("github.url has no host".into()));
    };
    let body: Value = match serde_json::from_str(&delivery.body) {
        Ok(body) => body,
        Err(e) => return Ok(Outcome::Ignored(format!("the body is not JSON: {e}"))),
    };
    let repo = delivery.repo.as_str();
    let ctx = Ctx {
        store,
        config,
        host: &host,
        repo,
    };
    match delivery.event.as_str() {
        "ping" => Ok(Outcome::Ignored(
            "a ping: the hook reaches Flowmeter".into(),
        )),
        "push" => ctx.push(&body).await,
        "pull_request" | "pull_request_review" => ctx.refetch(&["pulls"]).await,
        "deployment" | "deployment_status" => ctx.deployment(&body).await,
        "workflow_run" => ctx.workflow_run(&body).await,
        "release" => ctx.release(&body).await,
        "issues" => ctx.issue(&body).await,
        other => Ok(Outcome::Ignored(format!("the {other} event is not read"))),
    }
}

struct Ctx<'a> {
    store: &'a Store,
    config: &'a GithubConfig,
    host: &'a str,
    repo: &'a str,
}

impl Ctx<'_> {
    fn scope(&self) -> String {
        format!("{}/{}", self.host, self.repo)
    }

    /// Makes the next sync read these resources of the repository from their first page: their
    /// ETags (and, for releases, every page's) are dropped. Resources never synced are read
    /// whole by the first sync anyway.
    async fn refetch(&self, resources: &[&str]) -> Result<Outcome, StoreError> {
        let scope = self.scope();
        for resource in resources {
            let Some(cursor) = self.store.cursor(SOURCE, &scope, resource).await? else {
                continue;
            };
            let mut mark: Mark = cursor
                .cursor
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default();
            mark.pages.clear();
            let amended = Cursor {
                cursor: Some(serde_json::to_string(&mark).expect("a mark serializes")),
                etag: None,
            };
            self.store
                .amend_cursor(SOURCE, &scope, resource, &amended)
                .await?;
        }
        Ok(Outcome::Refetch(
            resources
                .iter()
                .map(|r| format!("{} {r}", self.repo))
                .collect(),
        ))
    }

    /// Default-branch commits: a push carries no parents, so the sync reads them.
    async fn push(&self, body: &Value) -> Result<Outcome, StoreError> {
        let default = text(body, &["repository", "default_branch"]);
        let on_default = default
            .is_some_and(|d| text(body, &["ref"]) == Some(format!("refs/heads/{d}").as_str()));
        if body.get("deleted").and_then(Value::as_bool) == Some(true) || !on_default {
            return Ok(Outcome::Ignored(
                "a push to another branch than the default one".into(),
            ));
        }
        self.refetch(&["commits"]).await
    }

    /// Archives one item under the sync's id, normalizes it with the sync's normalizer and
    /// writes its record.
    async fn keep(
        &self,
        kind: &str,
        key: &str,
        raw: &Value,
        records: RecordKind,
        normalize: impl FnOnce(&Value) -> Result<Record, String>,
    ) -> Result<(Outcome, Option<Record>), StoreError> {
        archive(self.store, self.host, self.repo, kind, key, raw).await?;
        let record = match normalize(raw) {
            Ok(record) => record,
            Err(warning) => {
                tracing::warn!(%warning, "GitHub webhook payload not fully readable; raw body kept");
                return Ok((
                    Outcome::Ignored(format!("not readable ({warning}); its raw body is kept")),
                    None,
                ));
            }
        };
        let (fitted, warnings) = crate::fit_all(vec![record]);
        let summary = self.store.write(records, &fitted).await?;
        Ok((
            Outcome::Written {
                records: summary.received,
                changed: summary.changed,
                warnings,
            },
            fitted.into_iter().next(),
        ))
    }

    /// A deployment (`deployment`) or one of its statuses (`deployment_status`): the bundle
    /// archived for that deployment gets the status, and the record is normalized from the
    /// whole bundle, as the sync does.
    async fn deployment(&self, body: &Value) -> Result<Outcome, StoreError> {
        let source = self.config.deployment_source(self.repo);
        if source.source != DeploymentSource::Deployments {
            return Ok(Outcome::Ignored(
                "the repository's deployments are not GitHub deployments (github.deployment_sources)"
                    .into(),
            ));
        }
        let Some(deployment) = body.get("deployment").filter(|d| d.is_object()) else {
            return Ok(Outcome::Ignored("no deployment in the payload".into()));
        };
        if let Some(environment) = &source.environment
            && text(deployment, &["environment"]) != Some(environment.as_str())
        {
            return Ok(Outcome::Ignored(format!(
                "a deployment to another environment than {environment}"
            )));
        }
        let Some(id) = deployment.get("id").and_then(Value::as_u64) else {
            return Ok(Outcome::Ignored("a deployment without an id".into()));
        };
        let key = id.to_string();
        let archived = self
            .store
            .raw_payload(&raw_id(self.host, self.repo, "deployment", &key))
            .await?
            .and_then(|p| serde_json::from_str::<Value>(&p.body).ok());
        let mut statuses: Vec<Value> = archived
            .as_ref()
            .and_then(|a| a.get("statuses"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(status) = body.get("deployment_status").filter(|s| s.is_object())
            && !statuses.iter().any(|s| same_status(s, status))
        {
            statuses.push(status.clone());
        }
        // Newest first, as GitHub lists them.
        statuses.sort_by(|a, b| {
            let at = |s: &Value| text(s, &["created_at"]).and_then(normalize::parse_time);
            let id = |s: &Value| s.get("id").and_then(Value::as_u64);
            (at(b), id(b)).cmp(&(at(a), id(a)))
        });
        let bundle = json!({"deployment": deployment, "statuses": statuses});
        let repo = self.repo;
        let (outcome, record) = self
            .keep(
                "deployment",
                &key,
                &bundle,
                RecordKind::Deployments,
                |raw| normalize::deployment(raw, repo).map(Record::Deployment),
            )
            .await?;
        if let Some(Record::Deployment(d)) = record
            && normalize::is_final(d.status)
        {
            self.delivered(&key).await?;
        }
        Ok(outcome)
    }

    /// Notes in the deployments cursor that `key`'s outcome is recorded, so the next pass asks
    /// nothing more about it. Without a cursor (never synced) there is nothing to note.
    async fn delivered(&self, key: &str) -> Result<(), StoreError> {
        let scope = self.scope();
        let Some(cursor) = self.store.cursor(SOURCE, &scope, "deployments").await? else {
            return Ok(());
        };
        let Some(mut mark) = cursor
            .cursor
            .as_deref()
            .and_then(|c| serde_json::from_str::<Mark>(c).ok())
        else {
            return Ok(());
        };
        if !mark.delivered.iter().any(|k| k == key) {
            mark.delivered.push(key.to_string());
            let amended = Cursor {
                cursor: Some(serde_json::to_string(&mark).expect("a mark serializes")),
                etag: cursor.etag,
            };
            self.store
                .amend_cursor(SOURCE, &scope, "deployments", &amended)
                .await?;
        }
        Ok(())
    }

    /// A run of one of the repository's deploying workflows (`workflow_runs` source).
    async fn workflow_run(&self, body: &Value) -> Result<Outcome, StoreError> {
        let source = self.config.deployment_source(self.repo);
        if source.source != DeploymentSource::WorkflowRuns {
            return Ok(Outcome::Ignored(
                "the repository does not deploy by workflow runs (github.deployment_sources)"
                    .into(),
            ));
        }
        let Some(run) = body.get("workflow_run").filter(|r| r.is_object()) else {
            return Ok(Outcome::Ignored("no workflow_run in the payload".into()));
        };
        let path = text(run, &["path"]).unwrap_or_default();
        let file = path.rsplit('/').next().unwrap_or_default();
        let workflow_id = run
            .get("workflow_id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string());
        // As the sync names them: a workflow's file name or its id.
        let deploying = source
            .workflows
            .iter()
            .any(|w| w == file || w == path || Some(w.as_str()) == workflow_id.as_deref());
        if !deploying {
            return Ok(Outcome::Ignored(format!(
                "{path} is not one of the repository's deploying workflows"
            )));
        }
        let Some(id) = run.get("id").and_then(Value::as_u64) else {
            return Ok(Outcome::Ignored("a workflow run without an id".into()));
        };
        let environment = source
            .environment
            .clone()
            .unwrap_or_else(|| "production".to_string());
        let repo = self.repo;
        let (outcome, _) = self
            .keep(
                "run",
                &id.to_string(),
                run,
                RecordKind::Deployments,
                |raw| normalize::workflow_run(raw, repo, &environment).map(Record::Deployment),
            )
            .await?;
        Ok(outcome)
    }

    /// A release of a repository deployed by releases: the event does not say which commit its
    /// tag points at, so the sync reads the releases.
    async fn release(&self, body: &Value) -> Result<Outcome, StoreError> {
        if self.config.deployment_source(self.repo).source != DeploymentSource::Releases {
            return Ok(Outcome::Ignored(
                "the repository does not deploy by releases (github.deployment_sources)".into(),
            ));
        }
        match text(body, &["action"]) {
            Some("published" | "released" | "edited" | "deleted" | "unpublished") => {
                self.refetch(&["releases"]).await
            }
            _ => Ok(Outcome::Ignored(
                "a release that is not published yet".into(),
            )),
        }
    }

    /// An issue carrying one of the incident labels (`github.incident_labels`).
    async fn issue(&self, body: &Value) -> Result<Outcome, StoreError> {
        let Some(issue) = body.get("issue").filter(|i| i.is_object()) else {
            return Ok(Outcome::Ignored("no issue in the payload".into()));
        };
        if issue.get("pull_request").is_some() {
            return Ok(Outcome::Ignored("a pull request, not an issue".into()));
        }
        let incident = issue
            .get("labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|l| text(l, &["name"]))
            .any(|name| {
                self.config
                    .incident_labels
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(name))
            });
        if !incident {
            return Ok(Outcome::Ignored(
                "an issue without an incident label (github.incident_labels)".into(),
            ));
        }
        let Some(number) = issue.get("number").and_then(Value::as_u64) else {
            return Ok(Outcome::Ignored("an issue without a number".into()));
        };
        let repo = self.repo;
        let (outcome, _) = self
            .keep(
                "incident",
                &number.to_string(),
                issue,
                RecordKind::Incidents,
                |raw| normalize::incident(raw, repo).map(Record::Incident),
            )
            .await?;
        Ok(outcome)
    }
}

/// Whether two deployment statuses are the same one: by id where both have one (REST and
/// webhooks), else by state and time (statuses read through GraphQL have no REST id).
fn same_status(a: &Value, b: &Value) -> bool {
    match (
        a.get("id").and_then(Value::as_u64),
        b.get("id").and_then(Value::as_u64),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => {
            let key = |s: &Value| {
                (
                    text(s, &["state"]).map(str::to_ascii_lowercase),
                    text(s, &["created_at"]).and_then(normalize::parse_time),
                )
            };
            key(a) == key(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_githubs_hmac_of_the_raw_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello,
        // World!".
        let secret = "It's a Secret to Everybody".to_string();
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(&secret, b"Hello, World!"), expected);
        assert!(verify(
            std::slice::from_ref(&secret),
            Some(expected),
            b"Hello, World!"
        ));
        let rotating = ["new".to_string(), secret.clone()];
        assert!(verify(&rotating, Some(expected), b"Hello, World!"));
        for (secrets, signature, body) in [
            (vec![secret.clone()], Some(expected), &b"Hello, World?"[..]),
            (vec!["wrong".to_string()], Some(expected), b"Hello, World!"),
            (vec![], Some(expected), b"Hello, World!"),
            (vec![String::new()], Some(expected), b"Hello, World!"),
            (vec![secret.clone()], None, b"Hello, World!"),
            (vec![secret.clone()], Some(&expected[7..]), b"Hello, World!"),
            (
                vec![secret.clone()],
                Some("sha1=757107ea0eb2509fc211221cce984b8a37570b6d"),
                b"Hello, World!",
            ),
            (
                vec![secret.clone()],
                Some("sha256=757107ea"),
                b"Hello, World!",
            ),
            (
                vec![secret.clone()],
                Some("sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                b"Hello, World!",
            ),
            (
                vec![secret.clone()],
                Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043eé"),
                b"Hello, World!",
            ),
        ] {
            assert!(
                !verify(&secrets, signature, body),
                "{signature:?} {secrets:?}"
            );
        }
        // Upper-case hex is the same digest.
        assert!(verify(
            std::slice::from_ref(&secret),
            Some(&expected.to_uppercase().replace("SHA256=", "sha256=")),
            b"Hello, World!"
        ));
    }

    #[test]
    fn only_followed_repositories_and_read_events_are_kept() {
        let config = GithubConfig {
            repos: vec!["Codertocat/Hello-World".into()],
            orgs: vec!["acme".into()],
            ..GithubConfig::default()
        };
        let body = |repo: &str, archived: bool| json!({"action": "created", "repository": {"full_name": repo, "archived": archived, "fork": false}});
        assert_eq!(
            admit(
                &config,
                "deployment",
                &body("codertocat/hello-world", false)
            ),
            Admission::Keep {
                repo: "codertocat/hello-world".into(),
                action: Some("created".into())
            }
        );
        assert!(matches!(
            admit(&config, "push", &body("acme/api", false)),
            Admission::Keep { .. }
        ));
        assert_eq!(
            admit(&config, "push", &body("acme/old", true)),
            Admission::Ignore("repository_not_followed")
        );
        assert_eq!(
            admit(&config, "push", &body("other/api", false)),
            Admission::Ignore("repository_not_followed")
        );
        assert_eq!(
            admit(&config, "star", &body("acme/api", false)),
            Admission::Ignore("unknown_event")
        );
        assert_eq!(
            admit(&config, "push", &json!({})),
            Admission::Ignore("no_repository")
        );
        assert_eq!(
            admit(
                &config,
                "ping",
                &json!({"zen": "Keep it simple.", "organization": {"login": "acme"}})
            ),
            Admission::Keep {
                repo: "acme".into(),
                action: None
            }
        );
    }

    #[test]
    fn statuses_are_the_same_by_id_or_by_state_and_time() {
        let rest = json!({"id": 7, "state": "success", "created_at": "2024-03-01T10:00:00Z"});
        let graphql = json!({"state": "success", "created_at": "2024-03-01T10:00:00Z"});
        let other = json!({"id": 8, "state": "success", "created_at": "2024-03-01T10:00:00Z"});
        assert!(same_status(&rest, &graphql));
        assert!(!same_status(&rest, &other));
        assert!(!same_status(
            &graphql,
            &json!({"state": "failure", "created_at": "2024-03-01T10:00:00Z"})
        ));
    }
}
