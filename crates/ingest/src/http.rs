//! The connectors' HTTP layer on reqwest: timeouts on every request, credentials sent as
//! sensitive headers, and an answer's status checked before its body is read, so that an error
//! page (a 5xx with a JSON error body, an HTML page from a proxy, an empty body) is a fault and
//! never a page to decode. Only a success reaches the caller, as text; decoding it into the type
//! a page must have is the caller's, and a body that is not that page is a fault too
//! ([`unreadable`]).

use std::time::Duration;

use http::HeaderValue;

use crate::retry::Fault;

/// How a source authenticates. The secret never appears in `Debug` output, logs or errors.
#[derive(Clone)]
pub enum Auth {
    Basic { user: String, secret: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Connect and whole-request timeouts, and the longest wait a rate limit may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect: Duration,
    pub total: Duration,
    pub max_wait: Duration,
}

/// A successful answer (2xx), its body read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// One HTTP client of one service (`Jira`, `GitHub`, ...), named in every fault.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    service: &'static str,
    authorization: HeaderValue,
    limits: Limits,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// The text of an error answer worth repeating: Jira's `errorMessages`, GitHub's `message`, or
/// nothing (an HTML page, an empty body). At most 200 characters.
fn error_text(body: &str) -> String {
    let value: serde_json::Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(_) => return String::new(),
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(messages) = value.get("errorMessages").and_then(|m| m.as_array()) {
        parts.extend(messages.iter().filter_map(|m| m.as_str()).map(String::from));
    }
    if let Some(message) = value.get("message").and_then(|m| m.as_str()) {
        parts.push(message.to_string());
    }
    let text = parts.join("; ");
    text.chars().take(200).collect()
}

/// `Retry-After` in seconds (Jira, GitHub and Slack send seconds).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The fault a body that is not the page it should be means: retried like a 5xx, because a
/// proxy's error page or a truncated answer is usually gone on the next attempt.
pub fn unreadable(service: &str, path: &str, error: impl std::fmt::Display) -> Fault {
    Fault::Transient {
        message: format!("{service}'s answer for {path} is not the page it should be: {error}"),
        retry_after: None,
    }
}

impl Http {
    pub fn new(service: &'static str, auth: &Auth, limits: Limits) -> Result<Http, String> {
        let mut authorization = match auth {
            Auth::Basic { user, secret } => {
                let encoded = base64(format!("{user}:{secret}").as_bytes());
                HeaderValue::from_str(&format!("Basic {encoded}"))
            }
            Auth::Bearer(secret) => HeaderValue::from_str(&format!("Bearer {secret}")),
        }
        // Not echoed: the value is a secret.
        .map_err(|_| {
            "the credentials hold characters that cannot be sent in a header".to_string()
        })?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect)
            .timeout(limits.total)
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Http {
            client,
            service,
            authorization,
            limits,
        })
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// One GET, one attempt: the answer when its status is a success, else the fault it
    /// means. `path` names the resource in messages (never a query, which may hold JQL).
    pub async fn get(&self, url: &str, path: &str) -> Result<Answer, Fault> {
        let request = self
            .client
            .get(url)
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .header(http::header::ACCEPT, "application/json");
        self.send(request, path).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, path: &str) -> Result<Answer, Fault> {
        let service = self.service;
        let response = request.send().await.map_err(|e| Fault::Transient {
            message: if e.is_timeout() {
                format!("{service} did not answer {path} in time")
            } else {
                format!("connection to {service} failed: {}", e.without_url())
            },
            retry_after: None,
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| Fault::Transient {
            message: format!(
                "reading {service}'s answer for {path} failed: {}",
                e.without_url()
            ),
            retry_after: None,
        })?;
        if status.is_success() {
            return Ok(Answer {
                status: status.as_u16(),
                headers,
                body,
            });
        }
        Err(self.fault(status.as_u16(), &headers, &body, path))
    }

    /// The fault an error answer means: 429 waits its `Retry-After` (a wait longer than the
    /// configured cap fails), 5xx are retried (after their `Retry-After` when they send one),
    /// 401 and other 4xx fail at once.
    fn fault(&self, code: u16, headers: &http::HeaderMap, body: &str, path: &str) -> Fault {
        let service = self.service;
        let text = error_text(body);
        let said = if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        };
        let wait = retry_after(headers);
        match code {
            429 => match wait {
                Some(wait) if wait > self.limits.max_wait => Fault::Permanent(format!(
                    "{service} asks to wait {}s (Retry-After), longer than max_rate_limit_wait_seconds allows",
                    wait.as_secs()
                )),
                Some(wait) => Fault::RateLimited {
                    message: format!("{service} answered 429"),
                    wait,
                },
                None => Fault::Transient {
                    message: format!("{service} answered 429"),
                    retry_after: None,
                },
            },
            500..=599 => Fault::Transient {
                message: format!("{service} answered {code} for {path}{said}"),
                retry_after: wait.map(|w| w.min(self.limits.max_wait)),
            },
            401 => Fault::Permanent(format!("{service} rejected the credentials (401)")),
            _ => Fault::Permanent(format!("{service} answered {code} for {path}{said}")),
        }
    }
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Http {
        Http::new(
            "Jira",
            &Auth::Bearer("t".into()),
            Limits {
                connect: Duration::from_secs(1),
                total: Duration::from_secs(1),
                max_wait: Duration::from_secs(60),
            },
        )
        .unwrap()
    }

    #[test]
    fn base64_pads_like_rfc_4648() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"bot@acme:s3cr3t"), "Ym90QGFjbWU6czNjcjN0");
    }

    #[test]
    fn error_answers_are_faults_whatever_their_body() {
        let http = http();
        let mut headers = http::HeaderMap::new();
        let json = r#"{"errorMessages": ["Service unavailable"], "errors": {}}"#;
        for body in [json, "", "<html>bad gateway</html>"] {
            assert!(matches!(
                http.fault(503, &headers, body, "/search/jql"),
                Fault::Transient { .. }
            ));
        }
        assert!(
            matches!(http.fault(503, &headers, json, "/x"), Fault::Transient { message, .. } if message.ends_with(": Service unavailable"))
        );
        assert!(matches!(
            http.fault(401, &headers, "", "/x"),
            Fault::Permanent(_)
        ));
        assert!(matches!(
            http.fault(400, &headers, json, "/x"),
            Fault::Permanent(_)
        ));
        assert!(matches!(
            http.fault(429, &headers, "", "/x"),
            Fault::Transient { .. }
        ));
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert!(
            matches!(http.fault(429, &headers, "", "/x"), Fault::RateLimited { wait, .. } if wait == Duration::from_secs(7))
        );
        headers.insert("retry-after", HeaderValue::from_static("86400"));
        assert!(
            matches!(http.fault(429, &headers, "", "/x"), Fault::Permanent(m) if m.contains("longer than"))
        );
        assert!(
            matches!(http.fault(503, &headers, "", "/x"), Fault::Transient { retry_after: Some(w), .. } if w == Duration::from_secs(60)),
            "a 5xx's Retry-After is capped"
        );
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let auth = Auth::Basic {
            user: "bot".into(),
            secret: "s3cr3t".into(),
        };
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        let http = Http::new("Jira", &auth, http().limits).unwrap();
        assert!(!format!("{http:?}").contains("s3cr3t"));
    }
}
