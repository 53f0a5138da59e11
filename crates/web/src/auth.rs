//! Who may reach what (docs/security.md). Once any token is configured, every page, `/api`,
//! `/export` and `/metrics` need one: `Authorization: Bearer <token>`, or the session cookie
//! `/signin` sets after a token was given; pushing (POST) needs a token with the `write`
//! scope. `/healthz`, `/readyz`, the stylesheet and sign-in stay open, and
//! `server.public_dashboard` keeps pages open too.
//!
//! Tokens are compared by their SHA-256 digests in constant time, every configured token each
//! time, so neither a token's length nor its place shows in the timing. Sessions are stateless:
//! the cookie holds a token's name, an expiry and an HMAC of both under a key derived from the
//! configured tokens, so every replica with the same tokens accepts it and changing a token ends
//! its sessions. Secrets are never logged.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use flowmeter_core::config::{Config, TokenConfig, TokenScope};
use hmac::Mac as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "flowmeter_session";
/// How long a session lasts.
const SESSION_SECONDS: i64 = 12 * 3600;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What guards a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    Open,
    Page,
    Api,
}

fn guard_of(path: &str) -> Guard {
    match path {
        "/healthz" | "/readyz" | "/static/style.css" | "/signin" | "/signout" => Guard::Open,
        _ if path.starts_with("/hooks/") => Guard::Open,
        _ if path.starts_with("/api/") || path.starts_with("/export/") || path == "/metrics" => {
            Guard::Api
        }
        _ => Guard::Page,
    }
}

fn digest(secret: &str) -> [u8; 32] {
    sha2::Sha256::digest(secret.as_bytes()).into()
}

/// The configured token a presented secret is, checking every token in constant time.
pub fn token_of<'c>(config: &'c Config, presented: &str) -> Option<&'c TokenConfig> {
    let presented = digest(presented);
    let mut found = None;
    for token in &config.server.tokens {
        let same: bool = digest(&token.token).ct_eq(&presented).into();
        if same && found.is_none() {
            found = Some(token);
        }
    }
    found
}

/// The key of session cookies: derived from every configured token, so sessions end when a
/// token changes.
pub fn session_key(config: &Config) -> [u8; 32] {
    let mut tokens: Vec<&TokenConfig> = config.server.tokens.iter().collect();
    tokens.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hash = sha2::Sha256::new();
    hash.update(b"flowmeter session key\0");
    for t in tokens {
        hash.update(t.name.as_bytes());
        hash.update(b"\0");
        hash.update(t.token.as_bytes());
        hash.update(b"\0");
    }
    hash.finalize().into()
}

fn session_mac(key: &[u8; 32], body: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(body.as_bytes());
    mac
}

/// A session cookie's value for a token: `<name>.<expiry>.<hmac>`.
fn session_value(key: &[u8; 32], name: &str, expires: i64) -> String {
    let body = format!("{}.{expires}", hex(name.as_bytes()));
    let tag = session_mac(key, &body).finalize().into_bytes();
    format!("{body}.{}", hex(&tag))
}

/// The token a session cookie's value stands for, when it is genuine and not expired.
fn session_token<'c>(
    config: &'c Config,
    key: &[u8; 32],
    value: &str,
    now: i64,
) -> Option<&'c TokenConfig> {
    let (body, tag) = value.rsplit_once('.')?;
    let tag = unhex(tag)?;
    session_mac(key, body).verify_slice(&tag).ok()?;
    let (name, expires) = body.split_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    if expires <= now {
        return None;
    }
    let name = String::from_utf8(unhex(name)?).ok()?;
    config.server.tokens.iter().find(|t| t.name == name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError {
        status: StatusCode::UNAUTHORIZED,
        param: Some("authorization".into()),
        message: message.into(),
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let config = state.config();
    let guard = guard_of(request.uri().path());
    if config.server.tokens.is_empty()
        || guard == Guard::Open
        || (guard == Guard::Page && config.server.public_dashboard)
    {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = match bearer {
        Some(presented) => match token_of(config, presented) {
            Some(token) => token,
            None => return unauthorized("invalid token"),
        },
        None => {
            let now = chrono::Utc::now().timestamp();
            let session = cookie(&request, SESSION_COOKIE)
                .and_then(|v| session_token(config, &state.inner_session_key(), v, now));
            match (session, guard) {
                (Some(token), _) => token,
                (None, Guard::Page) => {
                    let target = request
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_string();
                    let to = format!("/signin?next={}", crate::params::encode(&target));
                    return Redirect::to(&to).into_response();
                }
                (None, _) => return unauthorized("missing bearer token"),
            }
        }
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
    let name = host_name(host);
    matches!(
        name.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1"
    )
}

fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    }
}

/// Refuses requests addressed to another name while listening on a loopback address (a web
/// page in the operator's browser must not reach it by rebinding a name to 127.0.0.1), but
/// the names in `server.allowed_hosts` (a proxy's).
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
        && !state
            .config()
            .server
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(host_name(host)))
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

/// Headers every answer carries: no sniffing, no framing, no referrer, and a content policy
/// that lets a page load only its own stylesheet and inline SVG.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[derive(askama::Template)]
#[template(path = "signin.html")]
struct SigninPage {
    next: String,
    message: String,
}

/// Only a path of this server may be where sign-in leads back to.
fn local_path(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".to_string()
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SigninQuery {
    next: Option<String>,
}

pub async fn signin_form(
    axum::extract::Query(query): axum::extract::Query<SigninQuery>,
) -> Result<Response, ApiError> {
    let page = SigninPage {
        next: local_path(query.next.as_deref().unwrap_or("/")),
        message: String::new(),
    };
    Ok(Html(askama::Template::render(&page).map_err(ApiError::internal)?).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct SigninForm {
    token: String,
    next: Option<String>,
}

/// Whether answers go out over TLS (the configured public address, or a proxy saying so):
/// session cookies are then Secure.
fn over_tls(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    state.config().server.public_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub async fn signin(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<SigninForm>,
) -> Result<Response, ApiError> {
    let next = local_path(form.next.as_deref().unwrap_or("/"));
    let Some(token) = token_of(state.config(), form.token.trim()) else {
        let page = SigninPage {
            next,
            message: "That is not a token of this server.".into(),
        };
        let html = askama::Template::render(&page).map_err(ApiError::internal)?;
        return Ok((StatusCode::UNAUTHORIZED, Html(html)).into_response());
    };
    let expires = chrono::Utc::now().timestamp() + SESSION_SECONDS;
    let value = session_value(&state.inner_session_key(), &token.name, expires);
    let secure = if over_tls(&state, &headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{secure}"
    );
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(response)
}

pub async fn signout() -> Response {
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        ))
        .expect("a valid header"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_toml(
            r#"
[[server.tokens]]
name = "bi"
token = "read-token-0123456789"
scope = "read"
[[server.tokens]]
name = "ci"
token = "write-token-0123456789"
scope = "write"
"#,
            |_| None,
        )
        .unwrap()
    }

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

    #[test]
    fn tokens_are_found_whatever_their_place_and_only_whole() {
        let config = config();
        assert_eq!(
            token_of(&config, "read-token-0123456789").unwrap().name,
            "bi"
        );
        assert_eq!(
            token_of(&config, "write-token-0123456789").unwrap().name,
            "ci"
        );
        for wrong in ["read-token-012345678", "read-token-01234567890", "", "ci"] {
            assert!(token_of(&config, wrong).is_none(), "{wrong}");
        }
    }

    #[test]
    fn a_session_holds_no_secret_and_cannot_be_forged_or_outlive_its_token() {
        let config = config();
        let key = session_key(&config);
        let value = session_value(&key, "ci", 2_000);
        assert!(!value.contains("write-token"));
        assert_eq!(
            session_token(&config, &key, &value, 1_000).unwrap().name,
            "ci"
        );
        assert!(
            session_token(&config, &key, &value, 2_000).is_none(),
            "expired"
        );
        // Another name or expiry under the same tag is refused.
        let forged = value.replacen(&hex(b"ci"), &hex(b"bi"), 1);
        assert!(session_token(&config, &key, &forged, 1_000).is_none());
        let longer = value.replacen(".2000.", ".9000.", 1);
        assert!(session_token(&config, &key, &longer, 1_000).is_none());
        // A changed token ends its sessions.
        let mut changed = config.clone();
        changed.server.tokens[1].token = "another-token-0123456789".into();
        assert!(session_token(&changed, &session_key(&changed), &value, 1_000).is_none());
    }

    #[test]
    fn sign_in_leads_back_only_to_this_server() {
        assert_eq!(local_path("/deployments?days=30"), "/deployments?days=30");
        for elsewhere in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
        ] {
            assert_eq!(local_path(elsewhere), "/", "{elsewhere}");
        }
    }
}
