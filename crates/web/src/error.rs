//! Errors as HTTP answers: 4xx name what was wrong in a JSON body; 5xx are logged with their
//! cause and answer without internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub param: Option<String>,
    pub message: String,
}

/// Seconds a client is asked to wait when the server or its store is busy.
pub const RETRY_AFTER_SECONDS: u64 = 2;

impl ApiError {
    pub fn bad_request(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            param: Some(param.into()),
            message: message.into(),
        }
    }

    /// 503 with `Retry-After`: too much work waits already; a client should come back soon.
    pub fn busy() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            param: None,
            message: "the server is busy; retry shortly".into(),
        }
    }

    /// 503 with `Retry-After`: the store did not take the write (unavailable, or busy with
    /// another writer); nothing was written and the same request may be sent again.
    pub fn store_unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(cause = %cause, "the store did not take a write");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            param: None,
            message: "the store is unavailable; nothing was written, retry shortly".into(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(cause = %cause, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            param: None,
            message: "internal error; see the server log".into(),
        }
    }
}

impl From<flowmeter_engine::EngineError> for ApiError {
    fn from(e: flowmeter_engine::EngineError) -> Self {
        match e {
            flowmeter_engine::EngineError::UnknownScope { param, .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                param: Some(param.into()),
                message: e.to_string(),
            },
            other => ApiError::internal(other),
        }
    }
}

impl From<flowmeter_core::window::WindowError> for ApiError {
    fn from(e: flowmeter_core::window::WindowError) -> Self {
        ApiError::bad_request(e.param(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "status": self.status.as_u16(),
            "param": self.param,
            "message": self.message,
        }});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}
