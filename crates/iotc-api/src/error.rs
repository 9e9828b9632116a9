//! The one place where failures become HTTP responses: IoTC's `Error {code, message}` JSON.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::StoreError;

/// IoTC's error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Error {
    /// Short machine-readable reason, e.g. `INVALID_FIELD`.
    #[schema(example = "INVALID_FIELD")]
    pub code: String,
    /// What was wrong, naming the field or parameter.
    #[schema(example = "sourceEurid: \"a1b2\" is not 8 hexadecimal digits")]
    pub message: String,
}

/// Realm of the Basic auth challenge (the one IoTC's proxy uses).
pub const REALM: &str = "Basic realm=\"API Area Restricted\", charset=\"UTF-8\"";

/// A failed request: status, code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// An invalid value of a named field or parameter.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::bad_request("INVALID_FIELD", format!("{field}: {problem}"))
    }

    pub fn device_not_found(source: &str, destination: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "DEVICE_NOT_FOUND",
            format!("no device with sourceID {source} and destinationID {destination}"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Authentication credentials were not provided for the request.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store request failed");
        if e.is_unavailable() {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                "the device store (Redis) is not reachable; retry later",
            )
        } else {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                format!("store request failed: {e}"),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("iotc_api_errors_total", "code" => self.code).increment(1);
        let body = Error {
            code: self.code.to_string(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
        }
        response
    }
}
