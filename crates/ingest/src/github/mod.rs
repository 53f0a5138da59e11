//! `flowmeter sync github`: commits, pull requests (with their timelines), deployments and
//! incident issues of the configured repositories, through octocrab's HTTP layer (base URI,
//! authentication, timeouts) with this module's own paging, conditional requests and
//! rate-limit handling, because the typed API hides the response headers those need.
//!
//! Every resource is a newest-first listing whose first page has a fixed URL:
//! - the first page is asked for with `If-None-Match` and the ETag of the last complete pass, so
//!   an unchanged resource costs one `304 Not Modified` and no rate limit;
//! - paging (by the `Link` header) stops at the resource's cursor (the newest time the last
//!   complete pass saw), so an incremental sync reads only what changed;
//! - records are written page by page, and the cursor and ETag are saved only once the pass
//!   reached the cursor: a sync killed mid-way reads the same pages again next time, and upserts
//!   make that harmless.
//!
//! Raw bodies are archived per item under `github:{host}:{owner/repo}:{kind}:{key}`, so
//! `flowmeter replay github` can normalize them again without calling GitHub.
//!
//! Over 600 lines because each resource's pass is written out here; a shared pass over
//! declared listings (issue 14) is what would shrink it.

pub mod normalize;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};
use http::HeaderValue;
use octocrab::Octocrab;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use flowmeter_core::config::{DeploymentSource, GithubConfig, PullDetails};
use flowmeter_core::import::RecordKind;
use flowmeter_core::{Record, Timestamp};
use flowmeter_store::{Cursor, RawPayload, Store, StoreError};

use crate::retry::{Fault, RetryPolicy};
use crate::{Progress, ResourceOutcome, SyncOutcome};

pub const SOURCE: &str = "github";

/// Deployments and workflow runs still running after this long are taken as they are: the
/// cursor no longer waits for them.
const PENDING_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("github.{0} is not configured")]
    Missing(&'static str),
    #[error("cannot set up the GitHub client for {url}: {message}")]
    Client { url: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Percent-encodes a path segment or query value.
fn encode(value: &str) -> String {
    crate::encode(value)
}

/// The URL of the `rel="next"` page in a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// One answer: `body` is `None` for `304 Not Modified`.
#[derive(Debug)]
struct Answer {
    body: Option<String>,
    etag: Option<String>,
    next: Option<String>,
}

struct Api {
    octo: Octocrab,
    /// The client for `/graphql`: octocrab puts its base path before every path, and GitHub
    /// Enterprise Server's GraphQL endpoint (`https://HOST/api/graphql`) is not under its REST
    /// base (`https://HOST/api/v3`), so this one's base is `https://HOST/api`.
    graphql: Octocrab,
    policy: RetryPolicy,
    max_wait: Duration,
    /// When each rate limit (`x-ratelimit-resource`: `core` for REST, `graphql`) resets, once
    /// an answer said none of it is left.
    spent_until: Mutex<HashMap<String, Timestamp>>,
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// When a rate limit resets in this machine's time: GitHub's reset less GitHub's own clock (the
/// `Date` header), so a clock running ahead of GitHub's does not cut waits short. A reset too far
/// away for the calendar is the latest time there is (and so longer than any allowed wait), never
/// an overflow.
fn reset_at(reset: Option<&str>, date: Option<&str>, now: Timestamp) -> Option<Timestamp> {
    let seconds = reset?.trim().parse::<i64>().ok()?;
    let reset = chrono::DateTime::from_timestamp(seconds, 0).unwrap_or(if seconds < 0 {
        chrono::DateTime::<chrono::Utc>::MIN_UTC
    } else {
        chrono::DateTime::<chrono::Utc>::MAX_UTC
    });
    let server_now = date
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.to_utc());
    Some(match server_now {
        Some(server) => now
            .checked_add_signed(reset - server)
            .unwrap_or(if reset < server {
                chrono::DateTime::<chrono::Utc>::MIN_UTC
            } else {
                chrono::DateTime::<chrono::Utc>::MAX_UTC
            }),
        None => reset,
    })
}

fn until(reset: Timestamp) -> Duration {
    // Reset times have whole seconds: one more second makes sure the window has turned.
    (reset - chrono::Utc::now() + chrono::Duration::seconds(1))
        .to_std()
        .unwrap_or(Duration::from_secs(1))
}

impl Api {
    /// One GET, retried per the policy; counts every attempt in `outcome`.
    async fn get(
        &self,
        label: &str,
        url: &str,
        etag: Option<&str>,
        accept: &'static str,
        progress: &dyn Progress,
        outcome: &mut ResourceOutcome,
    ) -> Result<Answer, String> {
        let mut attempts = 0u64;
        let answer = self
            .policy
            .run(label, progress, || {
                attempts += 1;
                async move {
                    self.wait_if_spent("core", label, progress).await?;
                    self.attempt(url, etag, accept).await
                }
            })
            .await;
        outcome.requests += attempts;
        if matches!(&answer, Ok(Answer { body: None, .. })) {
            outcome.not_modified += 1;
        }
        answer
    }

    /// Waits for a spent rate limit to reset before a request, when an earlier answer (of any
    /// task) said none is left.
    async fn wait_if_spent(
        &self,
        limit: &str,
        label: &str,
        progress: &dyn Progress,
    ) -> Result<(), Fault> {
        let spent = self
            .spent_until
            .lock()
            .expect("not poisoned")
            .get(limit)
            .copied();
        if let Some(reset) = spent.filter(|r| *r > chrono::Utc::now()) {
            let wait = until(reset);
            if wait > self.max_wait {
                return Err(Fault::Permanent(format!(
                    "GitHub's rate limit is spent until {reset}, later than github.max_rate_limit_wait_seconds allows"
                )));
            }
            progress.waiting(label, "GitHub's rate limit is spent", wait.as_secs_f64());
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    async fn attempt(
        &self,
        url: &str,
        etag: Option<&str>,
        accept: &'static str,
    ) -> Result<Answer, Fault> {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::ACCEPT, HeaderValue::from_static(accept));
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        if let Some(value) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(http::header::IF_NONE_MATCH, value);
        }
        let path = url.split('?').next().unwrap_or(url).to_string();
        let response = self
            .octo
            ._get_with_headers(url, Some(headers))
            .await
            .map_err(|e| Fault::Transient {
                message: format!("request for {path} failed: {e}"),
                retry_after: None,
            })?;
        self.read(response, &path, etag).await
    }

    /// One GraphQL query, retried per the policy; counts every attempt in `outcome`. GraphQL
    /// answers errors with a 200: a spent limit waits, other errors without data fail.
    async fn graphql(
        &self,
        label: &str,
        query: &str,
        progress: &dyn Progress,
        outcome: &mut ResourceOutcome,
    ) -> Result<Value, String> {
        let body = json!({ "query": query });
        let mut attempts = 0u64;
        let answer = self
            .policy
            .run(label, progress, || {
                attempts += 1;
                let body = &body;
                async move {
                    self.wait_if_spent("graphql", label, progress).await?;
                    self.attempt_graphql(body).await
                }
            })
            .await;
        outcome.requests += attempts;
        answer
    }

    async fn attempt_graphql(&self, body: &Value) -> Result<Value, Fault> {
        let response = self
            .graphql
            ._post("/graphql", Some(body))
            .await
            .map_err(|e| Fault::Transient {
                message: format!("GraphQL request failed: {e}"),
                retry_after: None,
            })?;
        let answer = self.read(response, "/graphql", None).await?;
        let value: Value = serde_json::from_str(answer.body.as_deref().unwrap_or_default())
            .map_err(|e| Fault::Transient {
                message: format!("unreadable GraphQL answer: {e}"),
                retry_after: None,
            })?;
        let errors = value.get("errors").and_then(Value::as_array);
        if let Some(errors) = errors.filter(|e| !e.is_empty()) {
            let kinds: Vec<&str> = errors
                .iter()
                .filter_map(|e| e.get("type").and_then(Value::as_str))
                .collect();
            if kinds.contains(&"RATE_LIMITED") {
                let spent = self
                    .spent_until
                    .lock()
                    .expect("not poisoned")
                    .get("graphql")
                    .copied();
                let wait = spent.map_or(Duration::from_secs(60), until);
                if wait > self.max_wait {
                    return Err(Fault::Permanent(format!(
                        "GitHub's GraphQL rate limit is spent for {}s, longer than github.max_rate_limit_wait_seconds",
                        wait.as_secs()
                    )));
                }
                return Err(Fault::RateLimited {
                    message: "GitHub's GraphQL rate limit is spent".into(),
                    wait,
                });
            }
            if value.get("data").is_none_or(Value::is_null) {
                let message = errors
                    .iter()
                    .filter_map(|e| e.get("message").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(Fault::Permanent(format!("GitHub's GraphQL API: {message}")));
            }
        }
        Ok(value)
    }

    /// Reads an answer: its body, ETag and next page, or the fault its status means.
    async fn read(
        &self,
        response: http::Response<
            http_body_util::combinators::BoxBody<bytes::Bytes, octocrab::Error>,
        >,
        path: &str,
        etag: Option<&str>,
    ) -> Result<Answer, Fault> {
        let status = response.status();
        let headers = response.headers().clone();
        let remaining: Option<u64> =
            header(&headers, "x-ratelimit-remaining").and_then(|v| v.trim().parse().ok());
        let reset = reset_at(
            header(&headers, "x-ratelimit-reset"),
            header(&headers, "date"),
            chrono::Utc::now(),
        );
        if status == http::StatusCode::NOT_MODIFIED {
            return Ok(Answer {
                body: None,
                etag: etag.map(String::from),
                next: None,
            });
        }
        let body = self
            .octo
            .body_to_string(response)
            .await
            .map_err(|e| Fault::Transient {
                message: format!("reading the answer for {path} failed: {e}"),
                retry_after: None,
            })?;
        if remaining == Some(0)
            && let Some(reset) = reset
        {
            // No request of any task that needs this limit is sent before the reset.
            let limit = header(&headers, "x-ratelimit-resource").unwrap_or("core");
            self.spent_until
                .lock()
                .expect("not poisoned")
                .insert(limit.to_string(), reset);
        }
        if status.is_success() {
            return Ok(Answer {
                body: Some(body),
                etag: header(&headers, "etag").map(String::from),
                next: header(&headers, "link").and_then(next_link),
            });
        }
        if nothing_to_list(status.as_u16(), path) {
            return Ok(Answer {
                body: Some("[]".into()),
                etag: None,
                next: None,
            });
        }
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        let retry_after = header(&headers, "retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(fault_of(
            status.as_u16(),
            path,
            &message,
            Limits {
                remaining,
                reset,
                retry_after,
                max_wait: self.max_wait,
            },
        ))
    }
}

/// Answers that mean an empty list, not a failure: the commits of an empty repository (409) and
/// the issues of a repository whose issues are switched off (410).
fn nothing_to_list(code: u16, path: &str) -> bool {
    matches!(
        (code, path.rsplit('/').next()),
        (409, Some("commits")) | (410, Some("issues"))
    )
}

/// What an error answer's rate-limit headers said.
#[derive(Debug, Clone, Copy)]
struct Limits {
    remaining: Option<u64>,
    reset: Option<Timestamp>,
    retry_after: Option<Duration>,
    max_wait: Duration,
}

/// The fault an error answer means, by GitHub's rules for rate limits: `retry-after` says how
/// long; else none remaining waits until the reset; else a secondary limit waits a minute.
fn fault_of(code: u16, path: &str, message: &str, limits: Limits) -> Fault {
    let Limits {
        remaining,
        reset,
        retry_after,
        max_wait,
    } = limits;
    match code {
        403 | 429 if retry_after.is_some_and(|w| w > max_wait) => Fault::Permanent(format!(
            "GitHub asks to wait {}s (retry-after), longer than github.max_rate_limit_wait_seconds",
            retry_after.map_or(0, |w| w.as_secs())
        )),
        403 | 429 if retry_after.is_some() => Fault::RateLimited {
            message: format!("GitHub's secondary rate limit ({code})"),
            wait: retry_after.expect("checked"),
        },
        403 | 429 if remaining == Some(0) => {
            let wait = reset.map_or(Duration::from_secs(60), until);
            if wait > max_wait {
                return Fault::Permanent(format!(
                    "GitHub's rate limit is spent for {}s, longer than github.max_rate_limit_wait_seconds",
                    wait.as_secs()
                ));
            }
            Fault::RateLimited {
                message: format!("GitHub's rate limit is spent ({code})"),
                wait,
            }
        }
        // A secondary limit without retry-after: GitHub asks for at least a minute.
        403 | 429 if code == 429 || message.to_lowercase().contains("secondary rate limit") => {
            Fault::RateLimited {
                message: format!("GitHub's secondary rate limit ({code})"),
                wait: Duration::from_secs(60),
            }
        }
        401 => Fault::Permanent(
            "GitHub rejected the token (401): check github.token or GITHUB_TOKEN".into(),
        ),
        403 => Fault::Permanent(format!("GitHub refused {path} (403): {message}")),
        404 => Fault::Permanent(format!(
            "GitHub has no {path} (404): check the name and that the token may read it"
        )),
        500..=599 => Fault::Transient {
            message: format!("GitHub answered {code} for {path}"),
            retry_after: None,
        },
        _ => Fault::Permanent(format!("GitHub answered {code} for {path}: {message}")),
    }
}

/// What a resource's cursor holds (as JSON in `sync_cursors.cursor`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Mark {
    /// The newest time the last complete pass saw (commit, update or creation time).
    newest: Option<Timestamp>,
    /// Paging stops before items older than this; the newest time unless something is pending.
    stop_before: Option<Timestamp>,
    /// Items (deployments, releases) whose outcome was not known yet: read again next time.
    pending: Vec<String>,
    /// For an organisation: its repositories.
    repos: Vec<String>,
    /// Releases recorded as deployments (by tag).
    known: Vec<String>,
    /// Every page (URL, ETag) of the last complete pass, for listings not ordered by arrival
    /// (an organisation's repositories, releases), where a change may leave the first page as
    /// it was.
    pages: Vec<(String, String)>,
    /// Deployments a webhook delivered with their outcome known since the last pass (by id):
    /// the next pass needs no more requests for them.
    delivered: Vec<String>,
    /// Items created exactly at `newest` that the last pass saw final (by id): known, where an
    /// item arriving later within the same second is not.
    at_newest: Vec<String>,
}

impl Mark {
    /// The mark of a listing that stops at the newest time it saw.
    fn newest(newest: Option<Timestamp>) -> Mark {
        Mark {
            newest: at_most_now(newest),
            ..Mark::default()
        }
    }

    fn stop_before(&self) -> Option<Timestamp> {
        self.stop_before.or(self.newest)
    }

    /// The mark of a listing whose items may be pending: the next pass stops before the oldest
    /// pending one, else at the newest.
    fn with_pending(newest: Option<Timestamp>, pending: Vec<(String, Timestamp)>) -> Mark {
        let newest = at_most_now(newest);
        Mark {
            stop_before: pending.iter().map(|(_, c)| *c).min().or(newest),
            newest,
            pending: pending.into_iter().map(|(k, _)| k).collect(),
            ..Mark::default()
        }
    }
}

struct Ctx<'a> {
    api: Api,
    /// Set once GraphQL refused: the rest of the sync reads timelines.
    graphql_off: std::sync::atomic::AtomicBool,
    store: &'a Store,
    config: &'a GithubConfig,
    progress: &'a dyn Progress,
    host: String,
}

/// One pass over a newest-first listing.
struct Pass<'c, 'a> {
    ctx: &'c Ctx<'a>,
    scope: String,
    resource: String,
    saved: Mark,
    saved_etag: Option<String>,
    outcome: ResourceOutcome,
    next: Option<String>,
    conditional: bool,
    /// Every page read, with its ETag (the first one's is saved with the cursor).
    pages: Vec<(String, String)>,
}

enum Step {
    Items(Vec<Value>),
    /// Nothing changed since the last complete pass, or the listing ended, or it failed.
    Done,
}

impl<'c, 'a> Pass<'c, 'a> {
    async fn open(
        ctx: &'c Ctx<'a>,
        scope: &str,
        resource: &str,
        label: String,
        first: String,
    ) -> Result<Pass<'c, 'a>, StoreError> {
        let saved = ctx.store.cursor(SOURCE, scope, resource).await?;
        let (saved, saved_etag) = match saved {
            Some(Cursor { cursor, etag }) => (
                cursor
                    .and_then(|c| serde_json::from_str::<Mark>(&c).ok())
                    .unwrap_or_default(),
                etag,
            ),
            None => (Mark::default(), None),
        };
        Ok(Pass {
            ctx,
            scope: scope.to_string(),
            resource: resource.to_string(),
            // The ETag of the last complete pass's first page, if there was one.
            conditional: saved_etag.is_some(),
            saved,
            saved_etag,
            outcome: ResourceOutcome {
                resource: label,
                ..ResourceOutcome::default()
            },
            next: Some(first),
            pages: Vec::new(),
        })
    }

    /// A listing not ordered by arrival is unchanged only when every page is: with several
    /// pages last time, each is asked for with its own ETag first (304s cost no rate limit);
    /// all unchanged ends the pass, any change reads the whole listing again.
    async fn whole_listing(&mut self) -> Result<(), StoreError> {
        if self.saved.pages.len() <= 1 || !self.conditional {
            return Ok(());
        }
        let label = self.label().to_string();
        for (url, etag) in self.saved.pages.clone() {
            let answer = self
                .ctx
                .api
                .get(
                    &label,
                    &url,
                    (!etag.is_empty()).then_some(etag.as_str()),
                    "application/vnd.github+json",
                    self.ctx.progress,
                    &mut self.outcome,
                )
                .await;
            match answer {
                Ok(Answer { body: None, .. }) => continue,
                Ok(_) => {
                    self.conditional = false;
                    return Ok(());
                }
                Err(error) => {
                    self.fail(error);
                    self.next = None;
                    return Ok(());
                }
            }
        }
        // Every page unchanged.
        self.next = None;
        Ok(())
    }

    /// Items pending last time must be read again even when the listing itself did not
    /// change, so its first page is then asked for without `If-None-Match`.
    fn reread_pending(&mut self) {
        if !self.saved.pending.is_empty() {
            self.conditional = false;
        }
    }

    fn label(&self) -> &str {
        &self.outcome.resource
    }

    fn fail(&mut self, error: String) {
        tracing::warn!(resource = %self.outcome.resource, %error, "GitHub resource failed");
        self.outcome.error = Some(error);
    }

    /// A GET whose answer must pass `check`: an answer that does not (a truncated body, an
    /// error page or error object that came with a success status) is archived as unreadable
    /// and asked for again, up to `github.max_attempts` times. `Ok(None)` is a `304`.
    async fn checked_get(
        &mut self,
        url: &str,
        etag: Option<&str>,
        accept: &'static str,
        check: impl Fn(&str) -> bool,
    ) -> Result<Option<Answer>, Unreadable> {
        let policy = self.ctx.api.policy;
        let mut tries = 0;
        loop {
            tries += 1;
            let label = self.label().to_string();
            let answer = self
                .ctx
                .api
                .get(
                    &label,
                    url,
                    etag,
                    accept,
                    self.ctx.progress,
                    &mut self.outcome,
                )
                .await
                .map_err(|error| Unreadable { error, next: None })?;
            let Some(body) = &answer.body else {
                return Ok(None);
            };
            if check(body) {
                return Ok(Some(answer));
            }
            let path = url.split('?').next().unwrap_or(url).to_string();
            if let Err(e) = self
                .ctx
                .store
                .put_raw(&RawPayload {
                    id: format!("github:unreadable:{url}"),
                    source: SOURCE.into(),
                    resource: "unreadable".into(),
                    fetched_at: chrono::Utc::now(),
                    etag: None,
                    body: body.clone(),
                })
                .await
            {
                return Err(Unreadable {
                    error: e.to_string(),
                    next: None,
                });
            }
            if tries >= policy.max_attempts {
                return Err(Unreadable {
                    error: format!(
                        "GitHub's answer for {path} is not the page it should be (gave up after {tries} attempts; its raw body is kept)"
                    ),
                    next: answer.next,
                });
            }
            let delay = policy.delay(tries, tries as u64);
            self.ctx
                .progress
                .waiting(&label, "an unreadable answer", delay.as_secs_f64());
            tokio::time::sleep(delay).await;
        }
    }

    /// The next page of the listing. `items_key` names the array in an object answer (workflow
    /// runs); `None` reads a top-level array. A page that stays unreadable fails the resource
    /// (its cursor stays where it was, so the next sync reads it again) and paging goes on.
    async fn page(&mut self, items_key: Option<&str>) -> Result<Step, StoreError> {
        loop {
            let Some(url) = self.next.take() else {
                return Ok(Step::Done);
            };
            let first = self.pages.is_empty();
            let etag = (first && self.conditional)
                .then_some(self.saved_etag.as_deref())
                .flatten()
                .map(String::from);
            let answer = self
                .checked_get(
                    &url,
                    etag.as_deref(),
                    "application/vnd.github+json",
                    |body| list_of(body, items_key).is_some(),
                )
                .await;
            let answer = match answer {
                Ok(Some(answer)) => answer,
                // 304: nothing changed since the last complete pass.
                Ok(None) => return Ok(Step::Done),
                Err(Unreadable { error, next }) => {
                    self.warn(format!("{}: {error}", self.label()));
                    self.fail(error);
                    self.next = next;
                    continue;
                }
            };
            self.pages
                .push((url.clone(), answer.etag.clone().unwrap_or_default()));
            self.next = answer.next;
            self.outcome.pages += 1;
            let items =
                list_of(answer.body.as_deref().unwrap_or_default(), items_key).expect("checked");
            return Ok(Step::Items(items));
        }
    }

    /// Every page of a secondary listing (a timeline, a deployment's statuses).
    async fn all(&mut self, first: String) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let answer = self
                .checked_get(&url, None, "application/vnd.github+json", |body| {
                    list_of(body, None).is_some()
                })
                .await
                .map_err(|u| u.error)?
                .ok_or_else(|| "GitHub answered 304 to a request without an ETag".to_string())?;
            items.extend(
                list_of(answer.body.as_deref().unwrap_or_default(), None).expect("checked"),
            );
            next = answer.next;
        }
        Ok(items)
    }

    /// Archives one item's raw body and normalizes it; a warning when it cannot be read.
    async fn keep<T>(
        &mut self,
        repo: &str,
        kind: &str,
        key: &str,
        raw: &Value,
        normalize: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, StoreError> {
        archive(self.ctx.store, &self.ctx.host, repo, kind, key, raw).await?;
        Ok(match normalize(raw) {
            Ok(value) => Some(value),
            Err(warning) => {
                self.warn(warning);
                None
            }
        })
    }

    fn warn(&mut self, warning: String) {
        tracing::warn!(%warning, "GitHub payload not fully readable; raw body kept");
        self.outcome.warnings.push(warning);
    }

    async fn write(&mut self, kind: RecordKind, records: Vec<Record>) -> Result<(), StoreError> {
        let (records, unfit) = crate::fit_all(records);
        for warning in unfit {
            self.warn(warning);
        }
        let summary = self.ctx.store.write(kind, &records).await?;
        self.outcome.records += summary.received;
        self.outcome.changed += summary.changed;
        Ok(())
    }

    fn page_done(&self) {
        self.ctx.progress.page(
            &self.outcome.resource,
            self.outcome.pages,
            self.outcome.records,
        );
    }

    /// Ends the pass: the cursor and the first page's ETag are saved when the pass reached the
    /// cursor without failing.
    async fn finish(self, mark: Mark) -> Result<ResourceOutcome, StoreError> {
        let reached = self.outcome.error.is_none();
        if reached && let Some((_, etag)) = self.pages.first() {
            let etag = (!etag.is_empty()).then(|| etag.clone());
            self.ctx
                .store
                .set_cursor(
                    SOURCE,
                    &self.scope,
                    &self.resource,
                    &Cursor {
                        cursor: Some(serde_json::to_string(&mark).expect("a mark serializes")),
                        etag,
                    },
                )
                .await?;
        }
        Ok(self.outcome)
    }
}

/// A request that failed, or whose answer stayed unreadable; `next` is the unreadable page's
/// next page, where paging may go on.
struct Unreadable {
    error: String,
    next: Option<String>,
}

/// The items of a listing's page: a top-level array, or the array under `items_key`.
fn list_of(body: &str, items_key: Option<&str>) -> Option<Vec<Value>> {
    let value: Value = serde_json::from_str(body).ok()?;
    match items_key {
        Some(key) => match value {
            Value::Object(mut map) => match map.remove(key) {
                Some(Value::Array(items)) => Some(items),
                _ => None,
            },
            _ => None,
        },
        None => match value {
            Value::Array(items) => Some(items),
            _ => None,
        },
    }
}

/// Whether a body is a commit sha (the `sha` media type's answer): 40 hex digits, or 64 in a
/// SHA-256 repository.
fn is_sha(body: &str) -> bool {
    let sha = body.trim();
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

fn raw_id(host: &str, repo: &str, kind: &str, key: &str) -> String {
    format!("github:{host}:{repo}:{kind}:{key}")
}

/// Keeps one item's raw body under its archive id (the sync's and the webhooks' alike).
async fn archive(
    store: &Store,
    host: &str,
    repo: &str,
    kind: &str,
    key: &str,
    raw: &Value,
) -> Result<(), StoreError> {
    store
        .put_raw(&RawPayload {
            id: raw_id(host, repo, kind, key),
            source: SOURCE.into(),
            resource: kind.into(),
            fetched_at: chrono::Utc::now(),
            etag: None,
            body: raw.to_string(),
        })
        .await
}

/// (repo, kind, key) of an archived item's id.
fn parse_raw_id(id: &str) -> Option<(&str, &str, &str)> {
    let mut parts = id.rsplitn(4, ':');
    let key = parts.next()?;
    let kind = parts.next()?;
    let repo = parts.next()?;
    parts.next()?.strip_prefix("github:")?;
    Some((repo, kind, key))
}

/// Whether an item's time is before the cursor a listing stops at (unknown times are not).
fn before(time: Option<Timestamp>, stop: Option<Timestamp>) -> bool {
    stop.is_some_and(|s| time.is_some_and(|t| t < s))
}

fn item_time(item: &Value, field: &str) -> Option<Timestamp> {
    item.get(field)
        .and_then(Value::as_str)
        .and_then(normalize::parse_time)
}

/// Not in the future: a skewed clock must not move a cursor past what is still to come.
fn at_most_now(t: Option<Timestamp>) -> Option<Timestamp> {
    t.map(|t| t.min(chrono::Utc::now()))
}

/// The repositories of an organisation (archived ones and forks left out).
async fn org_repos(ctx: &Ctx<'_>, org: &str) -> Result<(Vec<String>, ResourceOutcome), StoreError> {
    let first = format!(
        "/orgs/{}/repos?type=all&sort=created&direction=desc&per_page={}",
        encode(org),
        ctx.config.page_size
    );
    let scope = format!("{}/{org}", ctx.host);
    let mut pass = Pass::open(ctx, &scope, "repos", format!("{org} repositories"), first).await?;
    pass.whole_listing().await?;
    let mut repos = Vec::new();
    let mut listed = false;
    while let Step::Items(items) = pass.page(None).await? {
        listed = true;
        for item in items {
            let skip = item.get("archived").and_then(Value::as_bool) == Some(true)
                || item.get("fork").and_then(Value::as_bool) == Some(true);
            match item.get("full_name").and_then(Value::as_str) {
                Some(name) if !skip => repos.push(name.to_string()),
                Some(_) => {}
                None => pass.warn(format!("{org}: a repository without a full_name")),
            }
        }
        pass.page_done();
    }
    if !listed && pass.outcome.error.is_none() {
        // 304: the organisation's repositories are the ones the last pass listed.
        repos = pass.saved.repos.clone();
    }
    let mark = Mark {
        repos: repos.clone(),
        pages: pass.pages.clone(),
        ..Mark::default()
    };
    Ok((repos, pass.finish(mark).await?))
}

/// Default-branch commits, newest first, down to the cursor less the overlap.
async fn commits(ctx: &Ctx<'_>, repo: &str) -> Result<ResourceOutcome, StoreError> {
    let first = format!("/repos/{repo}/commits?per_page={}", ctx.config.page_size);
    let scope = format!("{}/{repo}", ctx.host);
    let mut pass = Pass::open(ctx, &scope, "commits", format!("{repo} commits"), first).await?;
    let stop = pass
        .saved
        .newest
        .map(|n| n - chrono::Duration::hours(i64::from(ctx.config.overlap_hours)));
    let mut newest = pass.saved.newest;
    while let Step::Items(items) = pass.page(None).await? {
        let mut records = Vec::new();
        // Whether every readable commit of the page is older than the cursor less the overlap.
        let mut all_older = true;
        for raw in &items {
            let key = raw
                .get("sha")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            if let Some(c) = pass
                .keep(repo, "commit", &key, raw, |r| normalize::commit(r, repo))
                .await?
            {
                all_older &= stop.is_some_and(|s| c.committed_at < s);
                newest = newest.max(Some(c.committed_at));
                records.push(Record::Commit(c));
            }
        }
        let reached = all_older && !records.is_empty();
        pass.write(RecordKind::Commits, records).await?;
        pass.page_done();
        if reached {
            break;
        }
    }
    pass.finish(Mark::newest(newest)).await
}

/// Pull requests of every state by last update, newest first, down to the cursor; each one with
/// its timeline (commits, reviews, ready for review) in one more listing.
async fn pulls(ctx: &Ctx<'_>, repo: &str) -> Result<ResourceOutcome, StoreError> {
    let first = format!(
        "/repos/{repo}/pulls?state=all&sort=updated&direction=desc&per_page={}",
        ctx.config.page_size
    );
    let scope = format!("{}/{repo}", ctx.host);
    let mut pass = Pass::open(ctx, &scope, "pulls", format!("{repo} pulls"), first).await?;
    let stop = pass.saved.stop_before();
    let mut newest = pass.saved.newest;
    'pages: while let Step::Items(items) = pass.page(None).await? {
        let mut todo = Vec::new();
        let mut reached = false;
        for pull in items {
            let updated = item_time(&pull, "updated_at");
            if before(updated, stop) {
                reached = true;
                break;
            }
            newest = newest.max(updated);
            match pull.get("number").and_then(Value::as_u64) {
                Some(number) => todo.push((number, pull)),
                None => pass.warn(format!("{repo}: a pull request without a number")),
            }
        }
        // Their commits, reviews and ready time: batched through GraphQL, or one timeline each.
        let mut details: HashMap<u64, Value> = HashMap::new();
        let off = std::sync::atomic::Ordering::Relaxed;
        if ctx.config.pull_details == PullDetails::Graphql {
            for batch in todo.chunks(GRAPHQL_BATCH) {
                if ctx.graphql_off.load(off) {
                    break;
                }
                let numbers: Vec<u64> = batch.iter().map(|(n, _)| *n).collect();
                match pass.graphql_details(repo, &numbers).await {
                    Ok(found) => details.extend(found),
                    // GraphQL refused (a token without access to it, a server without it): the
                    // timelines give the same records, at one request each, for the rest of
                    // this sync.
                    Err(error) => {
                        if !ctx.graphql_off.swap(true, off) {
                            pass.warn(format!(
                                "{repo}: pull request details through GraphQL failed ({error}); this sync reads timelines instead"
                            ));
                        }
                    }
                }
            }
        }
        let mut pulls = Vec::new();
        let mut commits = Vec::new();
        for (number, pull) in todo {
            let bundle = match details.remove(&number) {
                Some(node) => json!({"pull": pull, "graphql": node}),
                None => match pass
                    .all(format!(
                        "/repos/{repo}/issues/{number}/timeline?per_page=100"
                    ))
                    .await
                {
                    Ok(timeline) => json!({"pull": pull, "timeline": timeline}),
                    Err(error) => {
                        pass.fail(error);
                        break 'pages;
                    }
                },
            };
            if let Some((pr, pr_commits, warnings)) = pass
                .keep(repo, "pull", &number.to_string(), &bundle, |r| {
                    normalize::pull_request(r, repo)
                })
                .await?
            {
                for w in warnings {
                    pass.warn(w);
                }
                pulls.push(Record::PullRequest(pr));
                commits.extend(pr_commits.into_iter().map(Record::Commit));
            }
        }
        pass.write(RecordKind::Commits, commits).await?;
        pass.write(RecordKind::PullRequests, pulls).await?;
        pass.page_done();
        if reached {
            break;
        }
    }
    pass.finish(Mark::newest(newest)).await
}

/// Deployments of the repository's configured source.
async fn deployments(ctx: &Ctx<'_>, repo: &str) -> Result<Vec<ResourceOutcome>, StoreError> {
    let source = ctx.config.deployment_source(repo);
    let environment = source
        .environment
        .clone()
        .unwrap_or_else(|| "production".to_string());
    let scope = format!("{}/{repo}", ctx.host);
    match source.source {
        DeploymentSource::Deployments => {
            let mut first = format!(
                "/repos/{repo}/deployments?per_page={}",
                ctx.config.page_size
            );
            if let Some(env) = &source.environment {
                first.push_str(&format!("&environment={}", encode(env)));
            }
            let pass = Pass::open(
                ctx,
                &scope,
                "deployments",
                format!("{repo} deployments"),
                first,
            )
            .await?;
            Ok(vec![
                with_details(pass, repo, Detail::Statuses, &environment).await?,
            ])
        }
        DeploymentSource::Releases => {
            let first = format!("/repos/{repo}/releases?per_page={}", ctx.config.page_size);
            let pass =
                Pass::open(ctx, &scope, "releases", format!("{repo} releases"), first).await?;
            Ok(vec![
                with_details(pass, repo, Detail::ReleaseCommit, &environment).await?,
            ])
        }
        DeploymentSource::WorkflowRuns => {
            let mut outcomes = Vec::new();
            for workflow in &source.workflows {
                let first = format!(
                    "/repos/{repo}/actions/workflows/{}/runs?per_page={}",
                    encode(workflow),
                    ctx.config.page_size
                );
                let pass = Pass::open(
                    ctx,
                    &scope,
                    &format!("runs:{workflow}"),
                    format!("{repo} runs of {workflow}"),
                    first,
                )
                .await?;
                outcomes.push(with_details(pass, repo, Detail::Run, &environment).await?);
            }
            Ok(outcomes)
        }
    }
}

/// Pull requests per GraphQL query. GitHub prices a query by the connections it may have to
/// fill, nested ones multiplied: per pull request its commits (1), their parents (50), its
/// reviews (1) and its ready event (1), so 25 pull requests cost 13 points of the GraphQL budget
/// (about 0.53 per pull request, where a REST timeline costs 1 of the REST budget).
const GRAPHQL_BATCH: usize = 25;

/// The query for the details of some pull requests of one repository.
pub fn details_query(repo: &str, numbers: &[u64]) -> String {
    let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
    let mut query = format!(
        "query {{ repository(owner: {}, name: {}) {{",
        Value::from(owner),
        Value::from(name)
    );
    for n in numbers {
        query.push_str(&format!(
            " pr{n}: pullRequest(number: {n}) {{ ...details }}"
        ));
    }
    query.push_str(
        " } } fragment details on PullRequest { \
         commits(first: 50) { pageInfo { hasNextPage } nodes { commit { oid authoredDate committedDate message \
         author { name email } committer { name email } parents(first: 5) { nodes { oid } } } } } \
         reviews(first: 100) { pageInfo { hasNextPage } nodes { author { login } state submittedAt } } \
         timelineItems(first: 1, itemTypes: [READY_FOR_REVIEW_EVENT, CONVERT_TO_DRAFT_EVENT]) { nodes { __typename \
         ... on ReadyForReviewEvent { createdAt } ... on ConvertToDraftEvent { createdAt } } } }",
    );
    query
}

impl Pass<'_, '_> {
    /// The GraphQL details of some pull requests, by number. A pull request missing from the
    /// answer, or with more commits (50) or reviews (100) than one query returns, is left out:
    /// its timeline is read instead.
    async fn graphql_details(
        &mut self,
        repo: &str,
        numbers: &[u64],
    ) -> Result<HashMap<u64, Value>, String> {
        let label = self.label().to_string();
        let answer = self
            .ctx
            .api
            .graphql(
                &label,
                &details_query(repo, numbers),
                self.ctx.progress,
                &mut self.outcome,
            )
            .await?;
        let mut found = HashMap::new();
        for n in numbers {
            let Some(node) = answer
                .pointer(&format!("/data/repository/pr{n}"))
                .filter(|v| v.is_object())
            else {
                continue;
            };
            let truncated = [
                "/commits/pageInfo/hasNextPage",
                "/reviews/pageInfo/hasNextPage",
            ]
            .iter()
            .any(|p| node.pointer(p).and_then(Value::as_bool) != Some(false));
            if !truncated {
                found.insert(*n, node.clone());
            }
        }
        Ok(found)
    }
}

/// Deployments or releases per GraphQL query: one query per listing page of 100. A query for
/// 100 deployments' statuses (up to 100 each) asks for 101 connections of at most 100 nodes, 2
/// points of the GraphQL budget (0.02 per deployment, where REST costs 1 each); 100 releases'
/// tag commits cost 1 point.
const DETAILS_BATCH: usize = 100;

/// The query for the statuses of some deployments, by their GraphQL node ids.
pub fn statuses_query(node_ids: &[&str]) -> String {
    format!(
        "query {{ nodes(ids: {}) {{ __typename ... on Deployment {{ databaseId \
         statuses(first: 100) {{ pageInfo {{ hasNextPage }} nodes {{ state createdAt environmentUrl logUrl description }} }} }} }} }}",
        Value::from(node_ids.to_vec())
    )
}

/// The query for the commits some release tags of one repository point at.
pub fn release_commits_query(repo: &str, tags: &[&str]) -> String {
    let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
    let mut query = format!(
        "query {{ repository(owner: {}, name: {}) {{",
        Value::from(owner),
        Value::from(name)
    );
    for (i, tag) in tags.iter().enumerate() {
        query.push_str(&format!(
            " r{i}: release(tagName: {}) {{ tagName tagCommit {{ oid }} }}",
            Value::from(*tag)
        ));
    }
    query.push_str(" } }");
    query
}

/// A deployment status as GraphQL gives it, in the shape of GitHub's REST statuses (lower-case
/// state, `created_at`, empty strings for absent URLs), so both paths archive and normalize
/// alike.
fn rest_status(node: &Value) -> Option<Value> {
    let url = |key: &str| node.get(key).and_then(Value::as_str).unwrap_or("");
    Some(json!({
        "state": node.get("state")?.as_str()?.to_ascii_lowercase(),
        "created_at": node.get("createdAt")?.as_str()?,
        "environment_url": url("environmentUrl"),
        "target_url": url("logUrl"),
        "log_url": url("logUrl"),
        "description": node.get("description").cloned().unwrap_or(Value::Null),
    }))
}

impl Pass<'_, '_> {
    /// The bundles of the items of one listing page that GraphQL gives whole, by key: the
    /// statuses of deployments (by node id), the commits of releases (by tag), 100 a query.
    /// Left out, and so read through REST one by one: an item GraphQL did not return, returned
    /// for another id, or with more statuses than one query holds, and every item of a batch
    /// whose query failed (GraphQL is then off for the rest of the sync).
    async fn batched_details(
        &mut self,
        detail: Detail,
        repo: &str,
        todo: &[(String, Value, Option<Timestamp>)],
    ) -> HashMap<String, Value> {
        let off = std::sync::atomic::Ordering::Relaxed;
        let mut found = HashMap::new();
        if self.ctx.config.deployment_details != PullDetails::Graphql
            || !matches!(detail, Detail::Statuses | Detail::ReleaseCommit)
        {
            return found;
        }
        let askable: Vec<(&str, &str, &Value)> = todo
            .iter()
            .filter_map(|(key, item, _)| {
                let id = match detail {
                    Detail::Statuses => item.get("node_id").and_then(Value::as_str)?,
                    _ => key.as_str(),
                };
                Some((key.as_str(), id, item))
            })
            .collect();
        for batch in askable.chunks(DETAILS_BATCH) {
            if self.ctx.graphql_off.load(off) {
                break;
            }
            let ids: Vec<&str> = batch.iter().map(|(_, id, _)| *id).collect();
            let query = match detail {
                Detail::Statuses => statuses_query(&ids),
                _ => release_commits_query(repo, &ids),
            };
            let label = self.label().to_string();
            let answer = match self
                .ctx
                .api
                .graphql(&label, &query, self.ctx.progress, &mut self.outcome)
                .await
            {
                Ok(answer) => answer,
                Err(error) => {
                    if !self.ctx.graphql_off.swap(true, off) {
                        self.warn(format!(
                            "{repo}: deployment details through GraphQL failed ({error}); this sync reads them one by one instead"
                        ));
                    }
                    continue;
                }
            };
            for (i, (key, _, item)) in batch.iter().enumerate() {
                let bundle = match detail {
                    Detail::Statuses => {
                        let node = answer.pointer(&format!("/data/nodes/{i}"));
                        let same = node
                            .and_then(|n| n.get("databaseId"))
                            .and_then(Value::as_u64)
                            .is_some_and(|id| id.to_string() == *key);
                        let whole = node
                            .and_then(|n| n.pointer("/statuses/pageInfo/hasNextPage"))
                            .and_then(Value::as_bool)
                            == Some(false);
                        let statuses: Option<Vec<Value>> = node
                            .and_then(|n| n.pointer("/statuses/nodes"))
                            .and_then(Value::as_array)
                            .and_then(|nodes| nodes.iter().map(rest_status).collect());
                        match statuses {
                            Some(mut statuses) if same && whole => {
                                // Newest first, as REST lists them.
                                statuses.sort_by(|a, b| {
                                    b["created_at"].as_str().cmp(&a["created_at"].as_str())
                                });
                                json!({"deployment": item, "statuses": statuses})
                            }
                            _ => continue,
                        }
                    }
                    _ => {
                        let node = answer.pointer(&format!("/data/repository/r{i}"));
                        let same = node.and_then(|n| n.get("tagName")).and_then(Value::as_str)
                            == Some(*key);
                        match node
                            .and_then(|n| n.pointer("/tagCommit/oid"))
                            .and_then(Value::as_str)
                            .filter(|oid| is_sha(oid))
                        {
                            Some(oid) if same => json!({"release": item, "sha": oid}),
                            _ => continue,
                        }
                    }
                };
                found.insert(key.to_string(), bundle);
            }
        }
        found
    }
}

/// The one more request an item of a listing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// A deployment's statuses.
    Statuses,
    /// The commit a release's tag points at.
    ReleaseCommit,
    /// Nothing: a workflow run is complete as listed.
    Run,
}

impl Detail {
    /// The archive kind of its items, and the deployment source that normalizes them.
    fn kind(self) -> (&'static str, DeploymentSource) {
        match self {
            Detail::Statuses => ("deployment", DeploymentSource::Deployments),
            Detail::ReleaseCommit => ("release", DeploymentSource::Releases),
            Detail::Run => ("run", DeploymentSource::WorkflowRuns),
        }
    }
}

impl Pass<'_, '_> {
    /// The item with what its detail request adds, as it is archived.
    async fn detail(
        &mut self,
        detail: Detail,
        repo: &str,
        item: Value,
        key: &str,
    ) -> Result<Value, String> {
        match detail {
            Detail::Statuses => {
                let statuses = self
                    .all(format!(
                        "/repos/{repo}/deployments/{key}/statuses?per_page=100"
                    ))
                    .await?;
                Ok(json!({"deployment": item, "statuses": statuses}))
            }
            Detail::ReleaseCommit => {
                let answer = self
                    .checked_get(
                        &format!("/repos/{repo}/commits/{}", encode(key)),
                        None,
                        "application/vnd.github.sha",
                        is_sha,
                    )
                    .await
                    .map_err(|u| u.error)?
                    .ok_or_else(|| {
                        "GitHub answered 304 to a request without an ETag".to_string()
                    })?;
                let sha = answer.body.unwrap_or_default().trim().to_string();
                Ok(json!({"release": item, "sha": sha}))
            }
            Detail::Run => Ok(item),
        }
    }
}

/// A newest-first listing of deployments of one source, down to the oldest item still pending.
/// Items that need one more request (deployment statuses, a release's commit) get it only when
/// not known to be final: new ones, and ones that were pending.
async fn with_details(
    mut pass: Pass<'_, '_>,
    repo: &str,
    detail: Detail,
    environment: &str,
) -> Result<ResourceOutcome, StoreError> {
    let (kind, source) = detail.kind();
    let releases = detail == Detail::ReleaseCommit;
    let items_key = (detail == Detail::Run).then_some("workflow_runs");
    pass.reread_pending();
    if releases {
        pass.whole_listing().await?;
    }
    let stop = pass.saved.stop_before();
    let known_until = pass.saved.newest;
    let saved_pending = pass.saved.pending.clone();
    let saved_known = pass.saved.known.clone();
    let saved_delivered = pass.saved.delivered.clone();
    let saved_at_newest = pass.saved.at_newest.clone();
    // Items seen whose outcome is final (or that no request will make readable), by creation.
    let mut seen_final: Vec<(String, Timestamp)> = Vec::new();
    let mut known: Vec<String> = Vec::new();
    let mut newest = pass.saved.newest;
    let mut pending: Vec<(String, Timestamp)> = Vec::new();
    let recent = chrono::Utc::now() - chrono::Duration::days(PENDING_DAYS);
    'pages: while let Step::Items(items) = pass.page(items_key).await? {
        let mut records = Vec::new();
        let mut reached = false;
        // The items of the page that need their detail: batched through GraphQL where it can,
        // else one request each.
        let mut todo: Vec<(String, Value, Option<Timestamp>)> = Vec::new();
        for item in items {
            let created = item_time(&item, "created_at");
            // Releases are listed in their commits' order, not by when they were published: the
            // whole listing is read.
            if !releases && before(created, stop) {
                reached = true;
                break;
            }
            let key = if releases {
                item.get("tag_name")
                    .and_then(Value::as_str)
                    .map(String::from)
            } else {
                item.get("id")
                    .and_then(Value::as_u64)
                    .map(|id| id.to_string())
            };
            let Some(key) = key else {
                pass.warn(format!("{repo}: a {kind} without an id"));
                continue;
            };
            newest = newest.max(created);
            if releases
                && (item.get("draft").and_then(Value::as_bool) == Some(true)
                    || item.get("prerelease").and_then(Value::as_bool) == Some(true))
            {
                // Not deployed (yet): a draft may be published, a prerelease promoted, later;
                // being unknown, they are read again then.
                continue;
            }
            // Known: recorded final by an earlier pass (items at exactly the cursor are read
            // again). Releases are known by tag: their time is their commit's.
            let is_known = if releases {
                saved_known.contains(&key)
            } else {
                (known_until.is_some_and(|k| {
                    created.is_some_and(|c| c < k || (c == k && saved_at_newest.contains(&key)))
                }) && !saved_pending.contains(&key))
                    || saved_delivered.contains(&key)
            };
            if releases && is_known {
                known.push(key.clone());
            }
            if is_known {
                if let Some(c) = created {
                    seen_final.push((key, c));
                }
                continue;
            }
            todo.push((key, item, created));
        }
        let mut batched = pass.batched_details(detail, repo, &todo).await;
        for (key, item, created) in todo {
            let bundle = match batched.remove(&key) {
                Some(bundle) => bundle,
                None => match pass.detail(detail, repo, item, &key).await {
                    Ok(bundle) => bundle,
                    Err(error) => {
                        pass.fail(error);
                        break 'pages;
                    }
                },
            };
            let deployment = pass
                .keep(repo, kind, &key, &bundle, |r| {
                    normalize::deployment_of(source, r, repo, environment)
                })
                .await?;
            // Pending by the listing's own time, the one paging stops on (a re-run workflow
            // run starts later than it was created).
            let pending_since = deployment
                .as_ref()
                .filter(|d| !normalize::is_final(d.status))
                .and(created.filter(|c| *c > recent));
            match pending_since {
                Some(c) => pending.push((key.clone(), c)),
                None => seen_final.extend(created.map(|c| (key.clone(), c))),
            }
            if let Some(d) = deployment {
                if releases {
                    known.push(key);
                }
                records.push(Record::Deployment(d));
            }
        }
        pass.write(RecordKind::Deployments, records).await?;
        pass.page_done();
        if reached {
            break;
        }
    }
    let mut mark = Mark::with_pending(newest, pending);
    mark.at_newest = seen_final
        .into_iter()
        .filter(|(_, c)| Some(*c) == mark.newest)
        .map(|(k, _)| k)
        .collect();
    if releases {
        mark.known = known;
        mark.pages = pass.pages.clone();
    }
    pass.finish(mark).await
}

/// Issues carrying an incident label, by last update, newest first, down to the cursor.
async fn incidents(ctx: &Ctx<'_>, repo: &str, label: &str) -> Result<ResourceOutcome, StoreError> {
    let first = format!(
        "/repos/{repo}/issues?labels={}&state=all&sort=updated&direction=desc&per_page={}",
        encode(label),
        ctx.config.page_size
    );
    let scope = format!("{}/{repo}", ctx.host);
    let mut pass = Pass::open(
        ctx,
        &scope,
        &format!("incidents:{label}"),
        format!("{repo} issues labelled {label}"),
        first,
    )
    .await?;
    let stop = pass.saved.stop_before();
    let mut newest = pass.saved.newest;
    while let Step::Items(items) = pass.page(None).await? {
        let mut records = Vec::new();
        let mut reached = false;
        for raw in items {
            let updated = item_time(&raw, "updated_at");
            if before(updated, stop) {
                reached = true;
                break;
            }
            newest = newest.max(updated);
            // The issues API lists pull requests too.
            if raw.get("pull_request").is_some() {
                continue;
            }
            let key = raw
                .get("number")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .to_string();
            if let Some(i) = pass
                .keep(repo, "incident", &key, &raw, |r| {
                    normalize::incident(r, repo)
                })
                .await?
            {
                records.push(Record::Incident(i));
            }
        }
        pass.write(RecordKind::Incidents, records).await?;
        pass.page_done();
        if reached {
            break;
        }
    }
    pass.finish(Mark::newest(newest)).await
}

/// The host of `github.url` (with its port), which scopes cursors and archive ids.
pub fn host(config: &GithubConfig) -> Result<String, GithubError> {
    let url = config.url.trim_end_matches('/');
    let client_error = |message: &str| GithubError::Client {
        url: url.to_string(),
        message: message.to_string(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| client_error("github.url is not a URL"))?;
    uri.authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| client_error("github.url has no host"))
}

fn context<'a>(
    store: &'a Store,
    config: &'a GithubConfig,
    progress: &'a dyn Progress,
) -> Result<Ctx<'a>, GithubError> {
    if config.token.is_empty() {
        return Err(GithubError::Missing(
            "token (or FLOWMETER_GITHUB_TOKEN / GITHUB_TOKEN)",
        ));
    }
    let url = config.url.trim_end_matches('/');
    let client_error = |message: String| GithubError::Client {
        url: url.to_string(),
        message,
    };
    if !config.token.bytes().all(|b| b.is_ascii_graphic()) {
        // Not echoed: it is a secret.
        return Err(client_error(
            "the token holds characters that cannot be sent in a header".into(),
        ));
    }
    let host = host(config)?;
    let client = |base: &str| {
        Octocrab::builder()
            .base_uri(base)
            .map_err(|e| client_error(e.to_string()))?
            .personal_token(config.token.clone())
            .set_connect_timeout(Some(Duration::from_secs(30)))
            .set_read_timeout(Some(Duration::from_secs(120)))
            .build()
            .map_err(|e| client_error(e.to_string()))
    };
    let octo = client(url)?;
    let graphql = client(url.strip_suffix("/v3").unwrap_or(url))?;
    Ok(Ctx {
        api: Api {
            octo,
            policy: RetryPolicy {
                base: Duration::from_millis(config.retry_base_ms),
                max_delay: Duration::from_secs(60),
                max_attempts: config.max_attempts,
            },
            max_wait: Duration::from_secs(config.max_rate_limit_wait_seconds),
            spent_until: Mutex::new(HashMap::new()),
            graphql,
        },
        graphql_off: std::sync::atomic::AtomicBool::new(false),
        store,
        config,
        progress,
        host,
    })
}

type RepoJob<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<ResourceOutcome>, GithubError>> + Send + 'a>,
>;

/// One repository's resources, one after the other.
async fn sync_repo(ctx: &Ctx<'_>, repo: &str) -> Result<Vec<ResourceOutcome>, GithubError> {
    tracing::info!(repo = %repo, "syncing GitHub repository");
    let mut resources = vec![commits(ctx, repo).await?, pulls(ctx, repo).await?];
    resources.extend(deployments(ctx, repo).await?);
    for label in &ctx.config.incident_labels {
        resources.push(incidents(ctx, repo, label).await?);
    }
    Ok(resources)
}

/// Syncs the configured repositories into the store. A resource that keeps failing is
/// reported in the outcome and the others go on.
pub async fn sync(
    store: &Store,
    config: &GithubConfig,
    progress: &dyn Progress,
) -> Result<SyncOutcome, GithubError> {
    let ctx = context(store, config, progress)?;
    let mut outcome = SyncOutcome::default();
    let mut repos: Vec<String> = config.repos.clone();
    for org in &config.orgs {
        let (listed, resource) = org_repos(&ctx, org).await?;
        repos.extend(listed);
        outcome.resources.push(resource);
    }
    let mut seen = std::collections::HashSet::new();
    repos.retain(|r| seen.insert(r.to_lowercase()));
    if repos.is_empty() && outcome.resources.is_empty() {
        return Err(GithubError::Missing("repos (or github.orgs)"));
    }
    // A few repositories at a time (`github.concurrency`); the outcome lists them in order.
    // (Boxed as `Send` futures: a stream of borrowing futures is otherwise not provably `Send`.)
    let jobs: Vec<RepoJob<'_>> = repos
        .iter()
        .map(|repo| Box::pin(sync_repo(&ctx, repo)) as RepoJob<'_>)
        .collect();
    let per_repo: Vec<Vec<ResourceOutcome>> = futures_util::stream::iter(jobs)
        .buffered(config.concurrency.max(1) as usize)
        .try_collect()
        .await?;
    outcome.resources.extend(per_repo.into_iter().flatten());
    Ok(outcome)
}

/// Normalizes the archived raw items again and writes them, without calling GitHub.
pub async fn replay(store: &Store, config: &GithubConfig) -> Result<SyncOutcome, GithubError> {
    let mut outcome = ResourceOutcome {
        resource: "archive".into(),
        pages: 1,
        ..ResourceOutcome::default()
    };
    let mut batches: std::collections::BTreeMap<&'static str, Vec<Record>> = Default::default();
    let payloads = store.raw_payloads(SOURCE).await?;
    for payload in &payloads {
        let Some((repo, kind, _)) = parse_raw_id(&payload.id) else {
            continue;
        };
        if kind == "unreadable" || payload.resource == "unreadable" {
            continue;
        }
        let Ok(raw) = serde_json::from_str::<Value>(&payload.body) else {
            outcome
                .warnings
                .push(format!("{}: the archived body is not JSON", payload.id));
            continue;
        };
        let environment = config
            .deployment_source(repo)
            .environment
            .unwrap_or_else(|| "production".to_string());
        let records: Result<Vec<(&'static str, Record)>, String> = match kind {
            "commit" => normalize::commit(&raw, repo).map(|c| vec![("commits", Record::Commit(c))]),
            "pull" => normalize::pull_request(&raw, repo).map(|(pr, commits, warnings)| {
                outcome.warnings.extend(warnings);
                let mut all = vec![("pull_requests", Record::PullRequest(pr))];
                all.extend(commits.into_iter().map(|c| ("commits", Record::Commit(c))));
                all
            }),
            "deployment" => normalize::deployment(&raw, repo)
                .map(|d| vec![("deployments", Record::Deployment(d))]),
            "release" => normalize::release(&raw, repo, &environment)
                .map(|d| vec![("deployments", Record::Deployment(d))]),
            "run" => normalize::workflow_run(&raw, repo, &environment)
                .map(|d| vec![("deployments", Record::Deployment(d))]),
            "incident" => {
                normalize::incident(&raw, repo).map(|i| vec![("incidents", Record::Incident(i))])
            }
            _ => Ok(Vec::new()),
        };
        match records {
            Ok(records) => {
                for (kind, record) in records {
                    batches.entry(kind).or_default().push(record);
                }
            }
            Err(warning) => outcome.warnings.push(warning),
        }
    }
    for (kind, records) in [
        ("commits", RecordKind::Commits),
        ("pull_requests", RecordKind::PullRequests),
        ("deployments", RecordKind::Deployments),
        ("incidents", RecordKind::Incidents),
    ] {
        let (batch, unfit) = crate::fit_all(batches.remove(kind).unwrap_or_default());
        outcome.warnings.extend(unfit);
        for chunk in batch.chunks(5000) {
            let written = store.write(records, chunk).await?;
            outcome.records += written.received;
            outcome.changed += written.changed;
        }
    }
    Ok(SyncOutcome {
        resources: vec![outcome],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_reset_header_is_a_time_never_a_panic() {
        let now = chrono::Utc::now();
        let date = "Tue, 01 Dec 2026 12:00:00 GMT";
        let github_now = chrono::DateTime::parse_from_rfc2822(date).unwrap().to_utc();
        let in_30 = (github_now.timestamp() + 30).to_string();
        assert_eq!(
            reset_at(Some(&in_30), Some(date), now),
            Some(now + chrono::Duration::seconds(30)),
            "GitHub's clock, not ours"
        );
        let far = chrono::DateTime::<chrono::Utc>::MAX_UTC;
        for huge in [
            i64::MAX.to_string(),
            "99999999999999".to_string(),
            (far.timestamp() - 1).to_string(),
        ] {
            let reset = reset_at(Some(&huge), Some(date), now).unwrap();
            assert!(reset > now + chrono::Duration::days(365), "{huge}");
            let limits = Limits {
                remaining: Some(0),
                reset: Some(reset),
                retry_after: None,
                max_wait: Duration::from_secs(3600),
            };
            assert!(matches!(
                fault_of(403, "/p", "", limits),
                Fault::Permanent(_)
            ));
            assert!(until(reset) > Duration::from_secs(3600));
        }
        for past in [i64::MIN.to_string(), "-99999999999999".to_string()] {
            let reset = reset_at(Some(&past), Some(date), now).unwrap();
            assert!(reset < now, "{past}");
            assert_eq!(until(reset), Duration::from_secs(1));
        }
        assert_eq!(reset_at(Some("soon"), Some(date), now), None);
        assert_eq!(reset_at(None, Some(date), now), None);
    }

    #[test]
    fn error_answers_follow_githubs_rate_limit_rules() {
        let limits = Limits {
            remaining: Some(12),
            reset: None,
            retry_after: None,
            max_wait: Duration::from_secs(3600),
        };
        let wait = |f: Fault| match f {
            Fault::RateLimited { wait, .. } => Some(wait.as_secs()),
            _ => None,
        };
        let retry_after = Limits {
            retry_after: Some(Duration::from_secs(7)),
            ..limits
        };
        assert_eq!(wait(fault_of(403, "/p", "", retry_after)), Some(7));
        let too_long = Limits {
            retry_after: Some(Duration::from_secs(7200)),
            ..limits
        };
        assert!(matches!(
            fault_of(429, "/p", "", too_long),
            Fault::Permanent(_)
        ));
        assert_eq!(wait(fault_of(429, "/p", "", retry_after)), Some(7));
        let spent = Limits {
            remaining: Some(0),
            reset: Some(chrono::Utc::now() + chrono::Duration::seconds(30)),
            ..limits
        };
        let until_reset = wait(fault_of(403, "/p", "API rate limit exceeded", spent)).unwrap();
        assert!((30..=31).contains(&until_reset), "{until_reset}");
        let far = Limits {
            max_wait: Duration::from_secs(10),
            ..spent
        };
        assert!(matches!(fault_of(403, "/p", "", far), Fault::Permanent(_)));
        let secondary = "You have exceeded a secondary rate limit. Please wait a few minutes.";
        assert_eq!(wait(fault_of(403, "/p", secondary, limits)), Some(60));
        assert_eq!(wait(fault_of(429, "/p", "", limits)), Some(60));
        assert!(matches!(
            fault_of(403, "/p", "Resource not accessible by integration", limits),
            Fault::Permanent(m) if m == "GitHub refused /p (403): Resource not accessible by integration"
        ));
        assert!(matches!(
            fault_of(401, "/p", "Bad credentials", limits),
            Fault::Permanent(_)
        ));
        assert!(matches!(
            fault_of(404, "/p", "Not Found", limits),
            Fault::Permanent(_)
        ));
        assert!(matches!(
            fault_of(502, "/p", "", limits),
            Fault::Transient { .. }
        ));
        assert!(matches!(
            fault_of(422, "/p", "", limits),
            Fault::Permanent(_)
        ));
    }

    #[test]
    fn an_empty_repository_and_switched_off_issues_list_nothing() {
        assert!(nothing_to_list(409, "/repos/acme/empty/commits"));
        assert!(nothing_to_list(410, "/repos/acme/quiet/issues"));
        assert!(!nothing_to_list(409, "/repos/acme/empty/pulls"));
        assert!(!nothing_to_list(404, "/repos/acme/missing/commits"));
    }

    #[test]
    fn link_headers_and_archive_ids() {
        let link = "<https://api.github.com/resource?page=2>; rel=\"next\", <https://api.github.com/resource?page=5>; rel=\"last\"";
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/resource?page=2")
        );
        assert_eq!(
            next_link("<https://api.github.com/resource?page=1>; rel=\"prev\""),
            None
        );
        let id = raw_id("127.0.0.1:8080", "acme/api", "pull", "42");
        assert_eq!(id, "github:127.0.0.1:8080:acme/api:pull:42");
        assert_eq!(parse_raw_id(&id), Some(("acme/api", "pull", "42")));
        assert_eq!(parse_raw_id("jira:issue:x"), None);
    }
}
