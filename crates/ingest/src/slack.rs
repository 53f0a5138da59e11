//! Posting a message to a Slack incoming webhook, as Slack documents the answers: 200 is
//! success; 429 waits `Retry-After` (capped) and tries again; 5xx, timeouts and connection
//! errors are retried with backoff up to a limit; any other answer (400 `invalid_payload`,
//! 403, 404 `channel_not_found`, 410 `channel_is_archived`) is reported with Slack's text and
//! not retried. The webhook URL is a secret: it appears in no message, log line or `Debug`.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// A Slack incoming-webhook URL. It has no `Display`, and `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn new(url: impl Into<String>) -> WebhookUrl {
        WebhookUrl(url.into())
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookUrl(***)")
    }
}

/// Timeouts, retries and caps of sending.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    pub connect: Duration,
    /// The whole of one request.
    pub total: Duration,
    /// Backoff of 5xx answers, timeouts and connection errors; `max_attempts` in all.
    pub backoff: RetryPolicy,
    /// The longest `Retry-After` obeyed; a longer one waits this long.
    pub max_retry_after: Duration,
    /// 429 answers waited out before giving up.
    pub max_rate_limit_waits: u32,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(15),
            backoff: RetryPolicy {
                base: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
                max_attempts: 5,
            },
            max_retry_after: Duration::from_secs(60),
            max_rate_limit_waits: 5,
        }
    }
}

/// How a message got through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Requests sent, 429s included.
    pub requests: u32,
}

/// Why a message did not get through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Slack refused it; sending it again would not help.
    #[error("Slack refused the message: {status} {said}")]
    Rejected { status: u16, said: String },
    /// Slack never took it within the retries.
    #[error("Slack did not take the message after {requests} requests: {last}")]
    GaveUp { requests: u32, last: String },
}

/// A client for Slack's incoming webhooks.
#[derive(Clone)]
pub struct Slack {
    client: reqwest::Client,
    policy: SendPolicy,
}

/// What an answer said, for a message: its first line, without control characters, at most 200
/// characters; an HTML page is named, not quoted.
fn said(content_type: &str, body: &str) -> String {
    if content_type.contains("html") || body.trim_start().starts_with('<') {
        return "(an HTML error page)".into();
    }
    let line = body.lines().next().unwrap_or("").trim();
    let text: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.is_empty() {
        "(no text)".into()
    } else {
        text
    }
}

impl Slack {
    pub fn new(policy: SendPolicy) -> Result<Slack, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect)
            .timeout(policy.total)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Slack { client, policy })
    }

    /// Posts `message` (a JSON body with `text` and `blocks`) to `url`; `label` names the
    /// digest in log lines.
    pub async fn post(
        &self,
        url: &WebhookUrl,
        message: &serde_json::Value,
        label: &str,
    ) -> Result<Delivery, SendError> {
        let body = message.to_string();
        let (mut requests, mut failures, mut waits) = (0u32, 0u32, 0u32);
        loop {
            requests += 1;
            let answer = self
                .client
                .post(&url.0)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let last = match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let content_type = headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let text = response.text().await.unwrap_or_default();
                    match status {
                        200 => {
                            if text.trim() != "ok" {
                                tracing::debug!(
                                    digest = label,
                                    "Slack answered 200 with {}",
                                    said(&content_type, &text)
                                );
                            }
                            return Ok(Delivery { requests });
                        }
                        429 => {
                            waits += 1;
                            if waits > self.policy.max_rate_limit_waits {
                                return Err(SendError::GaveUp {
                                    requests,
                                    last: "429 rate limited".into(),
                                });
                            }
                            let wait = crate::http::retry_after(&headers)
                                .unwrap_or(Duration::from_secs(1))
                                .min(self.policy.max_retry_after);
                            tracing::info!(digest = label, "Slack's rate limit: waiting {wait:?}");
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        500..=599 => format!("{status} {}", said(&content_type, &text)),
                        _ => {
                            return Err(SendError::Rejected {
                                status,
                                said: said(&content_type, &text),
                            });
                        }
                    }
                }
                Err(e) if e.is_timeout() => "Slack did not answer in time".to_string(),
                Err(e) if e.is_connect() => "cannot reach Slack".to_string(),
                Err(e) => format!("cannot send to Slack: {}", e.without_url()),
            };
            failures += 1;
            if failures >= self.policy.backoff.max_attempts {
                return Err(SendError::GaveUp { requests, last });
            }
            let delay = self.policy.backoff.delay(failures, u64::from(requests));
            tracing::info!(digest = label, "{last}; trying again in {delay:?}");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_slack_said_is_short_and_never_a_page() {
        assert_eq!(said("text/plain", "invalid_payload"), "invalid_payload");
        assert_eq!(
            said("text/html", "<html>Server Error | Slack</html>"),
            "(an HTML error page)"
        );
        assert_eq!(said("", ""), "(no text)");
        assert_eq!(said("text/plain", &"x".repeat(500)).len(), 200);
        assert_eq!(
            format!(
                "{:?}",
                WebhookUrl::new("https://hooks.slack.com/services/SECRET")
            ),
            "WebhookUrl(***)"
        );
    }
}
