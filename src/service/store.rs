//! The service's durable state behind one trait, so SQLite (the default) and a server database
//! can both back it.
//!
//! Every mutating method is one atomic workflow step: it reads, checks, writes, runs the caller's
//! `hook` (which writes the audit event and returns the notifications to enqueue) and commits only
//! if the hook succeeded. A crash at any point leaves either the whole step or none of it, and an
//! action whose audit record cannot be written never happens (fail closed).

use crate::audit::{AuditEvent, AuditSinkError};

/// Most queued audit events appended behind one log sync by [`Store::drain_audit`].
pub const DRAIN_CHUNK: usize = 500;

/// Unix seconds (UTC). Kept as an integer so ordering and comparisons are exact in every backend.
pub type UnixTime = i64;

/// Runs inside the step's transaction, after its checks and writes and before its commit.
pub type Hook<'a, T> = &'a mut dyn FnMut(&T) -> Result<Vec<Notification>, AuditSinkError>;

/// Where a request stands. Stored as the lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
    Revoked,
    /// The requester took it back before anyone decided it.
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "pending" => Some(Status::Pending),
            "approved" => Some(Status::Approved),
            "denied" => Some(Status::Denied),
            "expired" => Some(Status::Expired),
            "revoked" => Some(Status::Revoked),
            "withdrawn" => Some(Status::Withdrawn),
            _ => None,
        }
    }
}

/// A request as first written. Rule details are a snapshot taken at request time, so a later
/// policy edit never changes who may approve a request already made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewRequest {
    pub id: String,
    pub requester: String,
    /// The task or role name as asked for.
    pub target: String,
    /// `task` or `role`.
    pub target_kind: String,
    /// Task names the grant covers.
    pub tasks: Vec<String>,
    pub rule: String,
    /// `manual` or `auto`.
    pub mode: String,
    pub approvers: Vec<String>,
    pub min_approvals: u32,
    pub reason: String,
    pub ticket: Option<String>,
    pub command: Option<String>,
    pub uses: Option<u32>,
    /// Parameter values the requester pinned (`NAME -> VALUE`).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Parameter constraints the token will carry (rule constraints plus the pins).
    pub grant_params: Option<serde_json::Value>,
    pub duration_secs: i64,
    pub created_at: UnixTime,
    pub pending_expires_at: UnixTime,
}

/// A grant: what an approved request yields. Its clock starts at approval.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub jti: String,
    pub request_id: String,
    pub sub: String,
    pub nbf: UnixTime,
    pub exp: UnixTime,
    pub uses: Option<u32>,
    pub used: u32,
    pub revoked_at: Option<UnixTime>,
    pub revoked_by: Option<String>,
}

/// One approver's vote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub approver: String,
    pub comment: Option<String>,
    pub at: UnixTime,
}

/// A request with everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestRecord {
    pub new: NewRequest,
    pub status: Status,
    pub approvals: Vec<Approval>,
    pub decided_at: Option<UnixTime>,
    pub decided_by: Option<String>,
    pub decision_comment: Option<String>,
    pub grant: Option<Grant>,
}

/// A lock: while active, new requests in its scope are refused and live grants in it are listed
/// as revoked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lock {
    /// `user:NAME`, `rule:ID` or `all`.
    pub scope: String,
    pub reason: String,
    pub set_by: String,
    pub set_at: UnixTime,
    pub expires_at: Option<UnixTime>,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `email` or `webhook`.
    pub channel: String,
    /// Mail address, or empty for the webhook.
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// A queued notification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub attempts: u32,
    pub note: Notification,
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproveOutcome {
    /// The vote counted; more distinct approvers are needed.
    Recorded { record: RequestRecord },
    /// The quorum was reached: the request is approved and the grant exists.
    Decided { record: RequestRecord },
}

/// How an approval step counts votes: under the rule as it is when the vote is cast.
pub struct Quorum<'a> {
    /// Distinct counted votes needed.
    pub needed: u32,
    /// Whether a voter's approval counts now (still an approver, not the requester).
    pub counts: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for Quorum<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum")
            .field("needed", &self.needed)
            .finish_non_exhaustive()
    }
}

/// A revoked grant, for gates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revocation {
    pub jti: String,
    pub request: String,
    pub sub: String,
    pub rule: String,
    pub revoked_at: UnixTime,
    pub exp: UnixTime,
}

/// A batch of a gate's audit events, as the service will log them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateBatch {
    /// The authenticated sender; batch ids are scoped to it.
    pub user: String,
    /// The sender's batch id (stable across its retries).
    pub id: String,
    /// SHA-256 (hex) of the events as sent, so a reused id with other events is refused.
    pub sha256: String,
    pub events: Vec<AuditEvent>,
}

/// One page of a listing, filtered in the store before the limit applies.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    /// Only this requester's requests (case-insensitive).
    pub requester: Option<String>,
    /// Only requests this viewer may see: their own, or those whose approver groups include one
    /// of `groups` (lowercase). `None` lists everything (global admins).
    pub viewer: Option<(String, Vec<String>)>,
    /// Continue after this `(created_at, id)`, exclusive (the last item of the previous page).
    pub after: Option<(UnixTime, String)>,
    pub limit: u32,
}

/// Why a store step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no request `{0}`")]
    NotFound(String),
    #[error("no grant `{0}`")]
    GrantNotFound(String),
    #[error("request `{id}` is already {status}")]
    AlreadyDecided { id: String, status: &'static str },
    #[error("request `{id}` expired while pending")]
    PendingExpired { id: String },
    #[error("`{approver}` has already approved request `{id}`")]
    AlreadyApproved { id: String, approver: String },
    #[error("requests are locked for `{scope}`: {reason}")]
    Locked { scope: String, reason: String },
    #[error("grant `{0}` has no uses left")]
    Exhausted(String),
    #[error("grant `{jti}` is {state}")]
    NotLive { jti: String, state: &'static str },
    #[error("no lock on `{0}`")]
    NoLock(String),
    #[error("batch `{0}` was already received with other events")]
    BatchConflict(String),
    #[error(
        "session `{0}` belongs to another user; a gate may only send events of its own sessions"
    )]
    SessionNotYours(String),
    /// A request's rows no longer match the seal the service wrote with them: the database was
    /// edited outside the service.
    #[error(
        "request `{0}` was changed in the state database outside the service (its seal does not \
         match); it is not used"
    )]
    Tampered(String),
    /// A directory change the directory refused (the user exists, a bad name).
    #[error(transparent)]
    Directory(#[from] super::directory::DirectoryError),
    #[error(transparent)]
    Audit(#[from] AuditSinkError),
    #[error("state database error: {0}")]
    Backend(String),
}

/// Durable state of the approval service.
pub trait Store: Send + Sync {
    /// Insert a request; refused with [`StoreError::Locked`] when any of `lock_scopes` is locked.
    /// When `auto_grant` is set the request is approved in the same step.
    fn create_request(
        &self,
        new: &NewRequest,
        lock_scopes: &[String],
        auto_grant: Option<&Grant>,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError>;

    fn request(&self, id: &str) -> Result<RequestRecord, StoreError>;

    /// Newest first, at most `limit`.
    fn list_requests(
        &self,
        status: Option<Status>,
        requester: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError>;

    /// Newest first by `(created_at, id)`, filtered as `query` says, at most `query.limit`.
    fn list_page(&self, query: &ListQuery) -> Result<Vec<RequestRecord>, StoreError>;

    /// How many requests `requester` filed at or after `since` (only pending ones if
    /// `pending_only`).
    fn count_requests(
        &self,
        requester: &str,
        since: UnixTime,
        pending_only: bool,
    ) -> Result<u64, StoreError>;

    /// The requester takes a pending request back.
    fn withdraw(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError>;

    /// Add one approver's vote; when the votes that count under `quorum` (this one included)
    /// reach its quorum, approve with `grant`.
    fn approve(
        &self,
        id: &str,
        vote: &Approval,
        grant: &Grant,
        quorum: &Quorum<'_>,
        hook: Hook<'_, ApproveOutcome>,
    ) -> Result<ApproveOutcome, StoreError>;

    fn deny(
        &self,
        id: &str,
        by: &str,
        comment: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError>;

    fn revoke(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError>;

    fn grant(&self, jti: &str) -> Result<Grant, StoreError>;

    /// Consume one use of a counted grant; returns the grant after the use.
    fn use_grant(
        &self,
        jti: &str,
        now: UnixTime,
        hook: Hook<'_, Grant>,
    ) -> Result<Grant, StoreError>;

    /// Mark every pending request whose time ran out as expired, one step per request.
    fn expire_pending(
        &self,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<Vec<RequestRecord>, StoreError>;

    fn set_lock(&self, lock: &Lock, hook: Hook<'_, Lock>) -> Result<(), StoreError>;
    fn clear_lock(&self, scope: &str, hook: Hook<'_, Lock>) -> Result<Lock, StoreError>;
    /// Locks not yet expired at `now`.
    fn active_locks(&self, now: UnixTime) -> Result<Vec<Lock>, StoreError>;

    /// Grants revoked at or after `since`, and counted grants with no use left.
    fn revocations(&self, since: UnixTime) -> Result<Vec<Revocation>, StoreError>;
    /// Unrevoked grants whose `exp` is after `now`.
    fn live_grants(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError>;

    /// Record a side action (policy change, user added, token issued) that has no state of its
    /// own here, still through the hook so its audit record and notifications are atomic.
    fn record(&self, hook: Hook<'_, ()>) -> Result<(), StoreError>;

    /// Keep an audit event written by another process (the CLI's `user add` while the service
    /// holds the audit log) until the service appends it.
    fn queue_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// Queue a gate's batch for the audit log in one step, once per `(user, id)`: `false` when
    /// the same batch was queued before (nothing is queued again), so a sender retrying after
    /// a lost answer never duplicates events. A known id with other events is
    /// [`StoreError::BatchConflict`].
    fn queue_gate_batch(&self, batch: &GateBatch, now: UnixTime) -> Result<bool, StoreError>;
    /// Append queued audit events through `sink`, oldest first, in chunks of at most
    /// [`DRAIN_CHUNK`]: each chunk is handed over whole (one log sync) and removed in the
    /// same step.
    fn drain_audit(
        &self,
        sink: &mut dyn FnMut(Vec<AuditEvent>) -> Result<(), AuditSinkError>,
    ) -> Result<usize, StoreError>;

    /// Whether the directory of users lives in this store (PostgreSQL, shared by replicas)
    /// rather than in a file beside the service (SQLite).
    fn keeps_directory(&self) -> bool {
        false
    }
    /// The stored directory's version: it grows with every change, so a cached copy is
    /// current while the version is the same.
    fn directory_version(&self) -> Result<i64, StoreError> {
        Err(StoreError::Backend("this store keeps no directory".into()))
    }
    /// The stored directory and its version.
    fn load_directory(&self) -> Result<(i64, super::Directory), StoreError> {
        Err(StoreError::Backend("this store keeps no directory".into()))
    }
    /// Change the stored directory in one step: `change` runs on the directory as it is now
    /// (changes serialised across replicas), then `hook` audits it; all commit together.
    fn change_directory(
        &self,
        _change: &mut dyn FnMut(
            &mut super::Directory,
        ) -> Result<(), super::directory::DirectoryError>,
        _hook: Hook<'_, ()>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Backend("this store keeps no directory".into()))
    }

    /// Queued notifications due at `now`, oldest first.
    fn due_notifications(&self, now: UnixTime, limit: u32) -> Result<Vec<OutboxItem>, StoreError>;
    fn mark_delivered(&self, id: i64, now: UnixTime) -> Result<(), StoreError>;
    /// Reschedule after a failure; gives up (keeps the row, marked failed) after `give_up`.
    fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: UnixTime,
        give_up: bool,
    ) -> Result<(), StoreError>;
}
