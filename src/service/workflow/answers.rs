//! What the approval workflow answers, as domain types. Each serializes to exactly the JSON the
//! API has always returned (fields in alphabetical order, as the JSON objects had them); the
//! HTTP layer only wraps them.

use serde::Serialize;
use serde_json::Value;

/// A lock as shown: times in RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockView {
    pub expires_at: Option<String>,
    pub reason: String,
    pub scope: String,
    pub set_at: String,
    pub set_by: String,
}

/// `GET /v1/locks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Locks {
    pub locks: Vec<LockView>,
}

/// `DELETE /v1/locks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockCleared {
    pub cleared: LockView,
}

/// One grant a gate must stop honouring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedGrant {
    pub exp: String,
    pub jti: String,
}

/// `GET /v1/revocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocations {
    pub now: String,
    pub revoked: Vec<RevokedGrant>,
}

/// `GET /v1/requests/{id}/token`. The token is a credential: never logged.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    pub exp: String,
    pub jti: String,
    pub kid: String,
    pub nbf: String,
    pub request: String,
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("jti", &self.jti)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/grants/{jti}/use`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantUse {
    pub jti: String,
    pub remaining: Option<u32>,
    pub used: u32,
    pub uses: Option<u32>,
}

/// `PUT /v1/policies/{file}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyChanged {
    pub file: String,
    pub sha256: String,
}

/// `DELETE /v1/policies/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRemoved {
    pub removed: String,
    pub rule: String,
}

/// `POST /v1/users`: the credential, shown once. Never logged.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct UserAdded {
    pub credential: String,
    pub name: String,
}

impl std::fmt::Debug for UserAdded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAdded")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/audit/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsAccepted {
    pub accepted: usize,
    pub duplicate: bool,
}

/// `GET /v1/requests`: request views and where the next page starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestPage {
    pub next_cursor: Option<String>,
    pub requests: Vec<RequestView>,
}

/// A request as the API shows it (`workflow::view`); `digest` is `request_digest` of the
/// fields an approver is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    pub approvals: Vec<ApprovalView>,
    pub approvers: Vec<String>,
    pub command: Option<String>,
    pub comment: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub digest: String,
    pub duration: String,
    pub grant: Option<GrantView>,
    pub grant_params: Option<Value>,
    pub id: String,
    pub kind: String,
    pub min_approvals: u32,
    pub mode: String,
    pub params: serde_json::Map<String, Value>,
    pub pending_expires_at: String,
    pub reason: String,
    pub requester: String,
    pub role: Option<String>,
    pub rule: String,
    pub status: &'static str,
    pub task: Option<String>,
    pub tasks: Vec<String>,
    pub ticket: Option<String>,
    pub uses: Option<u32>,
}

impl RequestView {
    /// The view as JSON, for pages that render any field and for the digest.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// One approval of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalView {
    pub approver: String,
    pub at: String,
    pub comment: Option<String>,
}

/// The grant of an approved request and its state (`live`, `expired`, `not_yet_valid`,
/// `used_up`, `revoked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    pub exp: String,
    pub jti: String,
    pub nbf: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub state: &'static str,
    pub used: u32,
    pub uses: Option<u32>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use serde_json::json;

    /// The typed answers write the bytes the `json!` objects wrote.
    #[test]
    fn answers_serialize_exactly_as_before() {
        let lock = LockView {
            expires_at: None,
            reason: "incident".into(),
            scope: "user:alice".into(),
            set_at: "2026-12-01T10:00:00Z".into(),
            set_by: "root".into(),
        };
        let before = json!({
            "scope": "user:alice", "reason": "incident", "set_by": "root",
            "set_at": "2026-12-01T10:00:00Z", "expires_at": null,
        });
        // The service has always written these answers with their keys sorted.
        let same = |typed: String, mut old: Value| {
            old.sort_all_objects();
            assert_eq!(typed, old.to_string());
        };
        same(serde_json::to_string(&lock).unwrap(), before.clone());
        same(
            serde_json::to_string(&Locks {
                locks: vec![lock.clone()],
            })
            .unwrap(),
            json!({ "locks": [before.clone()] }),
        );
        same(
            serde_json::to_string(&LockCleared { cleared: lock }).unwrap(),
            json!({ "cleared": before }),
        );
        same(
            serde_json::to_string(&Revocations {
                now: "n".into(),
                revoked: vec![RevokedGrant {
                    exp: "e".into(),
                    jti: "j".into(),
                }],
            })
            .unwrap(),
            json!({ "now": "n", "revoked": [{ "jti": "j", "exp": "e" }] }),
        );
        same(
            serde_json::to_string(&IssuedToken {
                exp: "e".into(),
                jti: "j".into(),
                kid: "k".into(),
                nbf: "n".into(),
                request: "r".into(),
                token: "t".into(),
            })
            .unwrap(),
            json!({ "token": "t", "jti": "j", "request": "r", "nbf": "n", "exp": "e", "kid": "k" }),
        );
        same(
            serde_json::to_string(&GrantUse {
                jti: "j".into(),
                remaining: None,
                used: 1,
                uses: None,
            })
            .unwrap(),
            json!({ "jti": "j", "used": 1, "uses": null, "remaining": null }),
        );
        same(
            serde_json::to_string(&PolicyChanged {
                file: "f".into(),
                sha256: "s".into(),
            })
            .unwrap(),
            json!({ "file": "f", "sha256": "s" }),
        );
        same(
            serde_json::to_string(&PolicyRemoved {
                removed: "f".into(),
                rule: "r".into(),
            })
            .unwrap(),
            json!({ "removed": "f", "rule": "r" }),
        );
        same(
            serde_json::to_string(&UserAdded {
                credential: "c".into(),
                name: "n".into(),
            })
            .unwrap(),
            json!({ "name": "n", "credential": "c" }),
        );
        same(
            serde_json::to_string(&EventsAccepted {
                accepted: 2,
                duplicate: false,
            })
            .unwrap(),
            json!({ "accepted": 2, "duplicate": false }),
        );
        same(
            serde_json::to_string(&RequestPage {
                next_cursor: Some("5.r".into()),
                requests: vec![],
            })
            .unwrap(),
            json!({ "requests": [], "next_cursor": "5.r" }),
        );
        let shown = format!(
            "{:?}{:?}",
            IssuedToken {
                exp: "e".into(),
                jti: "j".into(),
                kid: "k".into(),
                nbf: "n".into(),
                request: "r".into(),
                token: "secret-token".into(),
            },
            UserAdded {
                credential: "secret-cred".into(),
                name: "n".into()
            }
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
