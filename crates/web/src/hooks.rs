//! `POST /hooks/github`: GitHub's webhook deliveries. Outside the token-guarded API (GitHub
//! signs instead): a delivery whose `X-Hub-Signature-256` is not the HMAC of its raw body under
//! one of `github.webhook_secret` is 401 and nothing is kept. A verified delivery of an event
//! Flowmeter reads, about a followed repository, is kept under its `X-GitHub-Delivery` id and
//! answered 202; a worker then processes the kept deliveries in arrival order
//! (`flowmeter_ingest::github::webhook`) and wakes the snapshot refresher. A redelivery is 200
//! and changes nothing; other events and repositories are 202 and ignored (counted in
//! `/metrics`). The endpoint has its own body limit (GitHub's 25 MB) and rate limit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use serde_json::{Value, json};

use flowmeter_ingest::github::webhook::{self, Admission};
use flowmeter_store::Delivery;

use crate::state::AppState;

/// The largest delivery GitHub sends: payloads over 25 MB are not delivered.
pub const BODY_LIMIT: usize = 25 * 1024 * 1024;

/// Deliveries taken at once after a quiet spell, and per second after that: far above what
/// GitHub sends for a busy organisation, low enough that a flood cannot hold the store.
const BURST: f64 = 200.0;
const PER_SECOND: f64 = 50.0;

/// How long a worker holds a claimed delivery before another process may take it.
const LEASE: Duration = Duration::from_secs(300);
/// How often the worker looks for deliveries kept by other processes, when not woken.
const POLL: Duration = Duration::from_secs(30);
/// Processed deliveries are forgotten after this many days (their records stay).
const KEEP_DAYS: i64 = 30;

/// A token bucket: `BURST` at once, refilled at `PER_SECOND`.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            tokens: BURST,
            at: Instant::now(),
        }
    }
}

impl Bucket {
    /// Takes one token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * PER_SECOND).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / PER_SECOND))
        }
    }
}

/// The hooks' shared state: the rate limit and the worker's wake-up.
#[derive(Debug, Default)]
pub struct Hooks {
    bucket: Mutex<Bucket>,
    wake: tokio::sync::Notify,
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    answer(
        status,
        json!({"error": {"status": status.as_u16(), "message": message}}),
    )
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The metric label of an event: the ones Flowmeter reads by name, every other as `other`, so
/// senders cannot grow the metrics without bound.
fn event_label(event: &str) -> &str {
    if webhook::EVENTS.contains(&event) {
        event
    } else {
        "other"
    }
}

pub async fn github(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let event = header_text(&headers, "x-github-event").unwrap_or_default();
    let label = event_label(event).to_string();
    let count = |result: &str| state.metrics().hook(&label, result);
    let github = &state.config().github;
    if !github.webhooks_on() {
        count("off");
        return refuse(
            StatusCode::NOT_FOUND,
            "GitHub webhooks are off: set github.webhook_secret (or FLOWMETER_GITHUB_WEBHOOK_SECRET)",
        );
    }
    // A repository with a secret of its own: which one the body says is read first (only then),
    // and the signature decides whether to believe it.
    let repo = (!github.webhook_repo_secrets.is_empty())
        .then(|| webhook::repository_of(&body))
        .flatten();
    let secrets = github.webhook_secrets(repo.as_deref());
    let signature = header_text(&headers, "x-hub-signature-256");
    if !webhook::verify(&secrets, signature, &body) {
        count("unauthorized");
        let message = match signature {
            None => "no X-Hub-Signature-256 header: set the webhook's secret in GitHub",
            Some(_) => {
                "X-Hub-Signature-256 is not this body's signature under any configured secret"
            }
        };
        return refuse(StatusCode::UNAUTHORIZED, message);
    }
    // Only signed deliveries reach the store, so only they count against the rate limit.
    if let Err(wait) = state
        .hooks()
        .bucket
        .lock()
        .expect("bucket")
        .take(Instant::now())
    {
        count("rate_limited");
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many webhook deliveries; the next sync fills any gap",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            (wait.as_secs() + 1).to_string().parse().expect("a number"),
        );
        return response;
    }
    if event.is_empty() {
        count("malformed");
        return refuse(StatusCode::BAD_REQUEST, "no X-GitHub-Event header");
    }
    let delivery = match header_text(&headers, "x-github-delivery") {
        Some(id)
            if !id.is_empty()
                && id.len() <= 100
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_string()
        }
        _ => {
            count("malformed");
            return refuse(
                StatusCode::BAD_REQUEST,
                "no X-GitHub-Delivery header, or not a delivery id (letters, digits, '-', at most 100)",
            );
        }
    };
    if header_text(&headers, "content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
    {
        count("malformed");
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "set the webhook's content type to application/json in GitHub",
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        count("malformed");
        return refuse(StatusCode::BAD_REQUEST, "the body is not UTF-8 JSON");
    };
    let payload: Value = match serde_json::from_str(text) {
        Ok(payload @ Value::Object(_)) => payload,
        _ => {
            count("malformed");
            return refuse(StatusCode::BAD_REQUEST, "the body is not a JSON object");
        }
    };
    let (repo, action) = match webhook::admit(github, event, &payload) {
        Admission::Keep { repo, action } => (repo, action),
        Admission::Ignore(why) => {
            count(why);
            return answer(
                StatusCode::ACCEPTED,
                json!({"status": "ignored", "reason": why}),
            );
        }
    };
    let kept = state
        .store()
        .receive_delivery(&Delivery {
            delivery: delivery.clone(),
            source: "github".into(),
            event: event.to_string(),
            action,
            repo,
            received_at: chrono::Utc::now(),
            body: text.to_string(),
        })
        .await;
    match kept {
        Ok(true) => {
            count("accepted");
            state.hooks().wake.notify_one();
            answer(
                StatusCode::ACCEPTED,
                json!({"status": "accepted", "delivery": delivery}),
            )
        }
        Ok(false) => {
            count("duplicate");
            answer(
                StatusCode::OK,
                json!({"status": "duplicate", "delivery": delivery}),
            )
        }
        Err(e) => {
            count("unavailable");
            crate::error::ApiError::store_unavailable(e).into_response()
        }
    }
}

/// Processes the kept deliveries in arrival order whenever woken by a new one, and every
/// [`POLL`] for those kept by other processes (or left by one that stopped mid-way); forgets
/// processed deliveries after [`KEEP_DAYS`]. A delivery whose processing panicked is marked
/// failed, not retried forever; one the store did not take is retried once its claim lapses.
pub fn spawn_worker(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pruned: Option<Instant> = None;
        loop {
            if let Err(e) = drain(&state).await {
                tracing::warn!(error = %e, "processing webhook deliveries failed; retrying later");
            }
            if pruned.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                let before = chrono::Utc::now() - chrono::Duration::days(KEEP_DAYS);
                match state.store().prune_deliveries(before).await {
                    Ok(_) => pruned = Some(Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "pruning webhook deliveries failed"),
                }
            }
            tokio::select! {
                () = state.hooks().wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

async fn drain(state: &AppState) -> Result<(), flowmeter_store::StoreError> {
    let store = state.store();
    loop {
        let due = store.due_deliveries(chrono::Utc::now(), 100).await?;
        if due.is_empty() {
            return Ok(());
        }
        for id in due {
            let Some(delivery) = store.claim_delivery(&id, chrono::Utc::now(), LEASE).await? else {
                continue;
            };
            let config = &state.config().github;
            let processed =
                std::panic::AssertUnwindSafe(webhook::process(store, config, &delivery))
                    .catch_unwind()
                    .await;
            let (outcome, label) = match processed {
                Ok(Ok(outcome)) => {
                    if outcome.changed_records() {
                        state.wake();
                    }
                    (outcome.to_string(), outcome.label())
                }
                Ok(Err(e)) => {
                    // Left claimed: taken again once the claim lapses.
                    tracing::warn!(delivery = %id, error = %e, "a webhook delivery was not processed");
                    state.metrics().hook(event_label(&delivery.event), "failed");
                    return Err(e);
                }
                Err(_) => {
                    tracing::error!(delivery = %id, "processing a webhook delivery panicked");
                    ("failed: processing it panicked".to_string(), "failed")
                }
            };
            state.metrics().hook(event_label(&delivery.event), label);
            store
                .finish_delivery(&id, &outcome, chrono::Utc::now())
                .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_takes_a_burst_then_refills_steadily() {
        let start = Instant::now();
        let mut bucket = Bucket {
            tokens: BURST,
            at: start,
        };
        for _ in 0..BURST as usize {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).unwrap_err();
        assert_eq!(wait, Duration::from_secs_f64(1.0 / PER_SECOND));
        // A second later, PER_SECOND more; never more than BURST however long it rested.
        let later = start + Duration::from_secs(1);
        for _ in 0..PER_SECOND as usize {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
        let rested = later + Duration::from_secs(3600);
        for _ in 0..BURST as usize {
            assert!(bucket.take(rested).is_ok());
        }
        assert!(bucket.take(rested).is_err());
    }
}
