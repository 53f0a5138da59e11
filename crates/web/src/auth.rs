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
