//! The one error every service operation can return: what kind of failure it is (a domain
//! kind, mapped to an HTTP status in `http.rs` only), a stable snake_case code for scripts, and
//! one sentence for people.

use super::directory::DirectoryError;
use super::store::StoreError;

/// What kind of failure an [`ApiError`] is. The HTTP layer maps each kind to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed.
    BadRequest,
    /// No known credential.
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// No such thing.
    NotFound,
    /// The operation does not exist in that form (a method an endpoint does not take).
    NotAllowed,
    /// The input took too long to arrive.
    Timeout,
    /// The state does not allow it now (already decided, used up, tampered, ...).
    Conflict,
    /// The input is over a size limit.
    TooLarge,
    /// Well-formed, but policy refuses it (too long, not a task of the rule, locked, ...).
    Policy,
    /// The caller did too much of something that costs others.
    TooMany,
    /// A fault of the service itself.
    Internal,
    /// Something the service depends on is not usable (store, audit log, policy folder).
    Unavailable,
}

/// A service error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadRequest, code, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            ErrorKind::Unauthenticated,
            "unauthenticated",
            "missing or unknown credential; send `Authorization: Bearer <credential>`",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Forbidden, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, code, message)
    }

    pub fn policy(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Policy, code, message)
    }

    /// The caller did too much of something that costs others; `message` says when to retry.
    pub fn too_many(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::TooMany, code, message)
    }

    /// Something the service depends on is not usable; `message` says who can fix it.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unavailable, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, "internal", message)
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
            StoreError::ReviewNotFound(_) => ApiError::not_found(msg),
            StoreError::ControlTampered => {
                tracing::error!("elevated access control edited outside the service");
                ApiError::conflict("tampered", msg)
            }
            StoreError::AlreadyAcked(_) => ApiError::conflict("already_acknowledged", msg),
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
                ApiError::unavailable(
                    "audit_unavailable",
                    "the audit log cannot be written, so the action was not taken; ask an operator to check the service",
                )
            }
            StoreError::Backend(m) => {
                tracing::error!(error = %m, "state store failed");
                let full = m.contains("disk is full") || m.contains("No space left");
                ApiError::unavailable(
                    "store_unavailable",
                    if full {
                        "the service's state store is out of disk space, so the action was not \
                         taken; retry once an operator has freed space"
                    } else {
                        "the service's state store failed, so the action was not taken; retry later"
                    },
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
