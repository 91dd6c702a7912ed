//! The audit record: events, and the one interface every part of jitsh writes them through.
//!
//! The tamper-evident log (hash chain, signed checkpoints, durable appends) implements
//! [`AuditSink`]; producers (service, gate) never know how events are stored.
//!
//! - [`chain`] (pure): the record format, hash chain, checkpoints and verification over bytes.
//! - [`keys`] (pure): checkpoint signing seed and trusted public keys.
//! - [`search`], [`export`] (pure): filters, request joins, CEF and RFC 5424 formatting.
//! - [`log`]: the durable writer ([`AuditLog`]), group commit, torn-tail recovery, rotation.
//! - [`outage`]: full-disk failures: telling them apart, reporting them, faking them in tests.
//! - [`read`]: reading log files for verify, search and export.
//! - [`spool`]: a gate's sink, spooled locally and forwarded to the approval service.
//! - [`transport`]: what sends records off the machine: [`transport::syslog`] forwarding with a
//!   delivery cursor, the checkpoint [`transport::witness`], and [`transport::http`] to the
//!   approval service.

use serde::{Deserialize, Serialize};

pub mod anchor;
pub mod chain;
pub mod decision;
pub mod export;
pub mod keys;
pub mod log;
pub mod outage;
pub mod read;
pub mod recordings;
pub mod search;
pub mod spool;
pub mod transport;

pub use anchor::{Anchor, AnchorState, FileAnchor};
pub use chain::{Finding, FindingKind, Summary, VerifyOptions};
pub use keys::{parse_trust_key, AuditSigner, AuditVerifyKey};
pub use log::{AuditError, AuditLog, AuditLogOptions, AuditStats};
pub use transport::syslog::{ForwardError, ForwardTarget, SyslogForwarder};

/// One audited action. Serialized as a JSON object inside a log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 time the action happened (UTC).
    pub time: String,
    /// Who did it: a user name, or `jitsh` for the service's own actions (expiry).
    pub actor: String,
    /// What was done, dotted: `request.create`, `request.approve`, `request.deny`,
    /// `request.expire`, `grant.revoke`, `token.issue`, `policy.change`, `user.add`, `lock.set`,
    /// `session.start`, `session.end`, `gate.decision`, ...
    pub action: String,
    /// What it was done to: a request id, a task name, a session id, ...
    pub subject: String,
    /// `ok`, `allow`, `approval`, `deny`, `error`, ...
    pub outcome: String,
    /// Action-specific details (rule id, token id, reason, line text, params, ...). Secrets
    /// (credentials, tokens, private keys) never go here.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Where audit events go. Implementations must be durable before returning `Ok`, and must fail
/// (not drop) when they cannot record: callers fail closed on error.
pub trait AuditSink: Send + Sync {
    /// Record one event; returns its sequence number in the log.
    fn append(&self, event: AuditEvent) -> Result<u64, AuditSinkError>;

    /// Record several events in order, durable together (the log writes them behind one
    /// sync); all or, on error, an unknown prefix of them.
    fn append_all(&self, events: Vec<AuditEvent>) -> Result<Vec<u64>, AuditSinkError> {
        events.into_iter().map(|e| self.append(e)).collect()
    }

    /// Why appends fail now (a full disk), while they do; `None` when writing works.
    fn unavailable(&self) -> Option<outage::Unavailable> {
        None
    }

    /// Whether records appended during a store step commit in the step's own transaction (so
    /// a step that fails leaves no record to withdraw), rather than before it.
    fn commits_with_store(&self) -> bool {
        false
    }
}

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("audit log `{path}` could not be written: {message}")]
pub struct AuditSinkError {
    pub path: String,
    pub message: String,
}
