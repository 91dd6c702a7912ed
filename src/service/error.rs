//! The one error every API call can return: an HTTP status, a stable snake_case code for
//! scripts, and one sentence for people. Serialized as `{"error": CODE, "message": SENTENCE}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::directory::DirectoryError;
use super::store::StoreError;

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing or unknown credential; send `Authorization: Bearer <credential>`",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn policy(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429: the caller did too much of something that costs others; `message` says when to retry.
    pub fn too_many(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let msg = e.to_string();
        match e {
            StoreError::NotFound(_) | StoreError::GrantNotFound(_) | StoreError::NoLock(_) => {
                ApiError::not_found(msg)
            }
            StoreError::AlreadyDecided { .. } => ApiError::conflict("already_decided", msg),
            StoreError::PendingExpired { .. } => ApiError::conflict("request_expired", msg),
            StoreError::AlreadyApproved { .. } => ApiError::conflict("already_approved", msg),
            StoreError::Locked { .. } => ApiError::policy("locked", msg),
            StoreError::BatchConflict(_) => ApiError::conflict("batch_conflict", msg),
            StoreError::SessionNotYours(_) => ApiError::forbidden("not_your_session", msg),
            StoreError::Exhausted(_) => ApiError::conflict("uses_exhausted", msg),
            StoreError::NotLive { .. } => ApiError::conflict("grant_not_live", msg),
            StoreError::Tampered(id) => {
                tracing::error!(request = %id, "state database edited outside the service");
                ApiError::conflict("tampered", msg)
            }
            StoreError::Directory(e) => e.into(),
            StoreError::Audit(e) => {
                tracing::error!(error = %e, "audit write failed; action refused");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "the audit log cannot be written, so the action was not taken; ask an operator to check the service",
                )
            }
            StoreError::Backend(m) => {
                tracing::error!(error = %m, "state store failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the service's state store failed, so the action was not taken; retry later",
                )
            }
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> ApiError {
        match e {
            DirectoryError::Exists(_) => ApiError::conflict("user_exists", e.to_string()),
            DirectoryError::BadName(_) => ApiError::bad_request("invalid_user", e.to_string()),
            other => {
                tracing::error!(error = %other, "directory write failed");
                ApiError::internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read; the connection cannot carry another request.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
