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

impl ApiError {
    pub fn bad_request(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            param: Some(param.into()),
            message: message.into(),
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
        (self.status, Json(body)).into_response()
    }
}
