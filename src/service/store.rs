//! The service's durable state behind one trait, so SQLite (the default) and a server database
//! can both back it.
//!
//! Every mutating method is one atomic workflow step: it reads, checks, writes, runs the caller's
//! `hook` (which writes the audit event and returns the notifications to enqueue) and commits only
//! if the hook succeeded. A crash at any point leaves either the whole step or none of it, and an
//! action whose audit record cannot be written never happens (fail closed).

use crate::audit::{AuditEvent, AuditSinkError};

/// Most queued audit events appended behind one log sync by [`Store::drain_audit`].
pub(crate) const DRAIN_CHUNK: usize = 500;

/// Unix seconds (UTC). Kept as an integer so ordering and comparisons are exact in every backend.
pub(crate) type UnixTime = i64;

/// Runs inside the step's transaction, after its checks and writes and before its commit.
pub(crate) type Hook<'a, T> = &'a mut dyn FnMut(&T) -> Result<Vec<Notification>, AuditSinkError>;

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
    /// `manual`, `auto`, or granted at once without approval: `system-account` (the requester
    /// is a system account) or `control-disabled` (approval control was disabled).
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

impl Lock {
    /// The one lock check, used by every path (filing a request, approving, issuing, using
    /// and listing grants): whether this lock blocks an action by `user` under `rule` (empty
    /// when no rule is involved, as for an approver's own lock). Names compare
    /// case-insensitively, as everywhere.
    pub fn blocks(&self, user: &str, rule: &str) -> bool {
        let scope = self.scope.as_str();
        scope.eq_ignore_ascii_case("all")
            || strip_prefix_ci(scope, "user:").is_some_and(|u| u.eq_ignore_ascii_case(user))
            || strip_prefix_ci(scope, "rule:")
                .is_some_and(|r| !rule.is_empty() && r.eq_ignore_ascii_case(rule))
    }
}

/// The first of `locks` (active ones) that blocks `user` under `rule`.
pub fn blocking_lock<'a>(locks: &'a [Lock], user: &str, rule: &str) -> Option<&'a Lock> {
    locks.iter().find(|l| l.blocks(user, rule))
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
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
    /// The sender is a system account: every session the batch names has a review item (opened
    /// by the first batch of the session), and the lines it ran are added to it.
    pub review: bool,
}

/// Purview's elevated access control (`Enable-/Disable-ElevatedAccessControl`), as global
/// admins set it. Kept in the store so every replica sees the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Control {
    /// The default approver group (`-AdminGroup`): approves rules that name no approvers, is told
    /// of control changes, and acknowledges system accounts' reviews.
    #[serde(default)]
    pub admin_group: Option<String>,
    /// Accounts for automation (`-SystemAccounts`): their requests are granted at once, and each
    /// of their sessions opens a review item.
    #[serde(default)]
    pub system_accounts: Vec<String>,
    /// Set while approval control is disabled: who disabled it, and when.
    #[serde(default)]
    pub disabled: Option<ControlChange>,
    /// The last change.
    #[serde(default)]
    pub changed: Option<ControlChange>,
}

/// Who changed the control, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControlChange {
    pub by: String,
    pub at: UnixTime,
}

impl Control {
    /// Whether `name` is one of the system accounts (names compare case-insensitively).
    pub fn is_system_account(&self, name: &str) -> bool {
        self.system_accounts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name))
    }

    /// The approver groups of a rule: its own, else the default approver group, else none
    /// (nobody can approve: fail closed).
    pub fn approvers(&self, rule_approvers: &[String]) -> Vec<String> {
        if rule_approvers.is_empty() {
            self.admin_group.iter().cloned().collect()
        } else {
            rule_approvers.to_vec()
        }
    }
}

/// A system account's session waiting for (or given) a person's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Review {
    pub id: i64,
    pub account: String,
    pub session: String,
    pub started_at: UnixTime,
    /// Gate records of the session so far.
    pub commands: u64,
    /// What ran (`OUTCOME: LINE`), oldest first; filled by [`Store::review`] only.
    pub ran: Vec<String>,
    pub acked_by: Option<String>,
    pub acked_at: Option<UnixTime>,
    pub ack_comment: Option<String>,
}

/// Most lines one review keeps (the audit log keeps every one).
pub const REVIEW_LINES: u64 = 1000;

/// The line a gate record of a reviewed session adds to its review, if any.
pub fn review_line(e: &AuditEvent) -> Option<String> {
    if e.action != crate::audit::decision::ACTION && e.action != "purview.command" {
        return None;
    }
    let line = e.details.get("line").and_then(serde_json::Value::as_str)?;
    let mut text = format!("{}: {line}", e.outcome);
    if text.len() > 2000 {
        let mut cut = 2000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    Some(text)
}

/// The audit event a store writes with a review step: `review.open` (its session's first
/// batch, or a line after an acknowledgement reopens it). Its subject is the session, so a
/// search for the session finds it.
pub fn review_event(
    action: &str,
    review: i64,
    account: &str,
    session: &str,
    now: UnixTime,
) -> AuditEvent {
    let mut details = serde_json::Map::new();
    details.insert("review".into(), review.into());
    details.insert("account".into(), account.into());
    AuditEvent {
        time: super::rfc3339(now),
        actor: "jitsh".into(),
        action: action.into(),
        subject: session.into(),
        outcome: "ok".into(),
        details,
    }
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
    /// The control row no longer matches the seal the service wrote with it.
    #[error(
        "the elevated access control was changed in the state database outside the service (its \
         seal does not match), so it is not used; a global admin sets it again with \
         Enable-ElevatedAccessControl"
    )]
    ControlTampered,
    #[error("no review `{0}`")]
    ReviewNotFound(i64),
    #[error("review `{0}` is already acknowledged")]
    AlreadyAcked(i64),
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
    /// Insert a request; refused with [`StoreError::Locked`], in the same step, when an active
    /// lock blocks its requester under its rule ([`Lock::blocks`]). When `auto_grant` is set
    /// the request is approved in the same step.
    fn create_request(
        &self,
        new: &NewRequest,
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

    /// The elevated access control (the default when never set).
    fn control(&self) -> Result<Control, StoreError>;
    /// Replace the elevated access control.
    fn set_control(&self, control: &Control, hook: Hook<'_, Control>) -> Result<(), StoreError>;
    /// Reviews, newest first, at most `limit`; only those not acknowledged when `open_only`.
    /// Their `ran` is left empty.
    fn reviews(&self, open_only: bool, limit: u32) -> Result<Vec<Review>, StoreError>;
    /// One review with what ran.
    fn review(&self, id: i64) -> Result<Review, StoreError>;
    /// Acknowledge an open review.
    fn ack_review(
        &self,
        id: i64,
        by: &str,
        comment: Option<&str>,
        at: UnixTime,
        hook: Hook<'_, Review>,
    ) -> Result<Review, StoreError>;
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

#[cfg(test)]
mod lock_tests {
    use super::*;

    fn lock(scope: &str) -> Lock {
        Lock {
            scope: scope.into(),
            reason: "incident".into(),
            set_by: "root".into(),
            set_at: 0,
            expires_at: None,
        }
    }

    #[test]
    fn one_check_decides_every_scope_whatever_the_case() {
        for (scope, user, rule, blocks) in [
            ("all", "alice", "moves", true),
            ("ALL", "alice", "", true),
            ("user:alice", "alice", "moves", true),
            ("user:ALICE", "Alice", "", true),
            ("USER:alice", "alice", "moves", true),
            ("rule:moves", "bob", "moves", true),
            ("Rule:MOVES", "bob", "Moves", true),
            // near misses never block
            ("user:alice", "alice2", "moves", false),
            ("user:alic", "alice", "moves", false),
            ("user:alice", "bob", "alice", false),
            ("rule:moves", "moves", "other", false),
            ("rule:moves", "bob", "", false),
            ("rule:", "bob", "", false),
            ("alice", "alice", "moves", false),
            ("all:", "alice", "moves", false),
            ("", "alice", "moves", false),
            ("user:ä", "Ä", "", false),
        ] {
            assert_eq!(
                lock(scope).blocks(user, rule),
                blocks,
                "{scope} {user} {rule}"
            );
        }
        let locks = [lock("rule:other"), lock("user:alice"), lock("all")];
        assert_eq!(
            blocking_lock(&locks, "alice", "moves").map(|l| l.scope.as_str()),
            Some("user:alice")
        );
        assert_eq!(
            blocking_lock(&locks[..1], "alice", "moves").map(|l| l.scope.as_str()),
            None
        );
    }
}
