//! API tokens: once any token is configured, `/api` and `/export` need `Authorization: Bearer
//! <token>`; pushing (POST) needs a token with the `write` scope. Tokens are compared in
//! constant time and never logged.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flowmeter_core::config::TokenScope;

use crate::error::ApiError;
use crate::state::AppState;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a path is behind the tokens.
pub fn protected(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/export/")
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let tokens = &state.config().server.tokens;
    if tokens.is_empty() || !protected(request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let unauthorized = |message: &str| {
        let mut response = ApiError {
            status: StatusCode::UNAUTHORIZED,
            param: Some("authorization".into()),
            message: message.into(),
        }
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    };
    let Some(presented) = presented else {
        return unauthorized("missing bearer token");
    };
    let Some(token) = tokens
        .iter()
        .find(|t| constant_time_eq(t.token.as_bytes(), presented.as_bytes()))
    else {
        return unauthorized("invalid token");
    };
    if request.method() != Method::GET
        && request.method() != Method::HEAD
        && token.scope != TokenScope::Write
    {
        return ApiError {
            status: StatusCode::FORBIDDEN,
            param: Some("authorization".into()),
            message: format!("token '{}' may only read", token.name),
        }
        .into_response();
    }
    next.run(request).await
}

/// Whether a `Host` header names this machine: `localhost`, `127.0.0.1` or `[::1]`, any port.
pub fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1"
    )
}

/// Refuses requests addressed to another name while serving an unguarded API on loopback.
pub async fn require_local_host(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.is_loopback_only()
        && let Some(host) = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        && !is_local_host(host)
    {
        return ApiError {
            status: StatusCode::MISDIRECTED_REQUEST,
            param: Some("host".into()),
            message: "this server answers only requests addressed to localhost".into(),
        }
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::is_local_host;

    #[test]
    fn only_this_machine_by_name() {
        for host in [
            "localhost",
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "LOCALHOST",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:3000",
            "127.0.0.1.evil.example",
            "[::2]:80",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }
}
