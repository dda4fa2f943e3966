//! How failures become HTTP responses.
//!
//! Policy: every error a client can cause is a 4xx with a JSON `{"detail": …}` body (and
//! the same text in `X-Sentry-Error` on ingest routes, as Relay does); 5xx is reserved for
//! faults of the server itself, which are logged once here with their cause while the
//! client gets a generic message. Every status decision lives in [`ApiError::status`].

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after: u64,
        scope: &'static str,
        reason: &'static str,
    },
    #[error("{detail}")]
    Unavailable { detail: String, retry_after: u64 },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<bugbane_store::Error> for ApiError {
    fn from(e: bugbane_store::Error) -> Self {
        match e {
            bugbane_store::Error::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            bugbane_store::Error::Conflict(msg) => ApiError::BadRequest(msg),
            bugbane_store::Error::SpoolFull => ApiError::RateLimited {
                detail: "ingestion backlog is full, retry later".into(),
                retry_after: 1,
                scope: "organization",
                reason: "backlog",
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let detail = self.to_string();
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&detail) {
            headers.insert("x-sentry-error", v);
        }
        match &self {
            ApiError::RateLimited {
                retry_after,
                scope,
                reason,
                ..
            } => {
                headers.insert("retry-after", HeaderValue::from(*retry_after));
                // Empty categories: the limit applies to everything the SDK sends.
                if let Ok(v) = HeaderValue::from_str(&format!("{retry_after}::{scope}:{reason}")) {
                    headers.insert("x-sentry-rate-limits", v);
                }
            }
            ApiError::Unavailable { retry_after, .. } => {
                headers.insert("retry-after", HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        (status, headers, axum::Json(json!({ "detail": detail }))).into_response()
    }
}
