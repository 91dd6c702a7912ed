//! Log and store agree both ways, even when the disk fills between a record and its commit.
//!
//! - No action without a record: a step's hook syncs its record before the step commits; when
//!   it cannot be written the step rolls back and the caller gets `audit_unavailable`.
//! - No record without an action: when the step fails after its hook wrote records (the commit
//!   failed, typically on a full disk), each of those records is followed, in the same chain,
//!   by an `audit.abandoned` record naming its seq: the action did not take effect. If the log
//!   cannot take that record either, it is owed: kept in memory and written before any other
//!   record once the log can be written again (every append settles it first, and the sweeper
//!   tries each second), so nothing is recorded after a claim that was not withdrawn.
//!
//! Writing the record after the commit instead would reverse the failure: a crash between the
//! two would leave an action with no record, which a tamper-evident log must never allow. A
//! claim followed by its withdrawal is the honest failure mode of the two.
//!
//! [`Steps`] wraps the service's store so every step is watched without its callers knowing:
//! the records a hook writes are noted per thread ([`note`]; both stores run the hook on the
//! caller's thread), and a step that then fails gets its withdrawals.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::super::store::{
    Approval, ApproveOutcome, Control, GateBatch, Grant, Hook, ListQuery, Lock, NewRequest,
    OutboxItem, Quorum, RequestRecord, Review, Revocation, Status, Store, StoreError, UnixTime,
};
use crate::audit::{AuditEvent, AuditSink, AuditSinkError};

thread_local! {
    /// Records (seq, action, subject) written by the step running on this thread.
    static STEP_RECORDS: RefCell<Option<Vec<(u64, String, String)>>> = const { RefCell::new(None) };
}

/// A record was written; if a step runs on this thread, it is that step's.
pub(super) fn note(seq: u64, action: &str, subject: &str) {
    STEP_RECORDS.with(|s| {
        if let Some(v) = s.borrow_mut().as_mut() {
            v.push((seq, action.to_owned(), subject.to_owned()));
        }
    });
}

/// The records noted so far belong to parts of the step that committed.
fn committed_so_far() {
    STEP_RECORDS.with(|s| {
        if let Some(v) = s.borrow_mut().as_mut() {
            v.clear();
        }
    });
}

/// The service's store, each mutating step watched (see the module comment).
pub(super) struct Steps {
    inner: Arc<dyn Store>,
    audit: Arc<dyn AuditSink>,
    /// `audit.abandoned` records the log could not take yet; written before any other record.
    owed: Mutex<Vec<AuditEvent>>,
}

impl Steps {
    pub(super) fn new(inner: Arc<dyn Store>, audit: Arc<dyn AuditSink>) -> Steps {
        Steps {
            inner,
            audit,
            owed: Mutex::new(Vec::new()),
        }
    }

    /// Withdrawals still waiting for the log.
    pub(super) fn owed(&self) -> usize {
        self.owed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Write owed `audit.abandoned` records, oldest first. Until they are written no other
    /// record is.
    pub(super) fn settle(&self) -> Result<(), AuditSinkError> {
        let mut owed = self.owed.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(first) = owed.first() {
            self.audit.append(first.clone())?;
            owed.remove(0);
        }
        Ok(())
    }

    /// Run one step; when it fails after its hook wrote records, withdraw them.
    fn watched<T>(&self, run: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.watched_unless(run, |_| false)
    }

    /// [`Steps::watched`], for a method that commits item by item: a record whose subject
    /// `took_effect` (an earlier item that committed) is not withdrawn.
    fn watched_unless<T>(
        &self,
        run: impl FnOnce() -> Result<T, StoreError>,
        took_effect: impl Fn(&str) -> bool,
    ) -> Result<T, StoreError> {
        let outer = STEP_RECORDS.with(|s| s.replace(Some(Vec::new())));
        let result = run();
        let mut written = STEP_RECORDS.with(|s| s.replace(outer)).unwrap_or_default();
        if let Err(e) = &result {
            written.retain(|(_, _, subject)| !took_effect(subject));
            if !written.is_empty() {
                self.abandon(written, e);
            }
        }
        result
    }

    /// Follow each record of a failed step with an `audit.abandoned` record; owed when the log
    /// cannot take them now.
    fn abandon(&self, written: Vec<(u64, String, String)>, why: &StoreError) {
        if self.audit.commits_with_store() {
            // The step's records rolled back with it (PostgreSQL): nothing to withdraw.
            return;
        }
        let reason = why.to_string();
        let events = written.into_iter().map(|(seq, action, subject)| {
            tracing::error!(seq, action, subject, error = %reason, "a recorded action did not take effect; recording that it was abandoned");
            super::event(
                "jitsh",
                crate::audit::chain::ABANDONED_ACTION,
                &subject,
                "error",
                json!({ "seq": seq, "action": action, "reason": reason }),
            )
        });
        self.owed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(events);
        if let Err(e) = self.settle() {
            tracing::error!(error = %e, "abandoned actions could not be recorded yet; they will be before any other record");
        }
    }
}

impl Store for Steps {
    fn keeps_directory(&self) -> bool {
        self.inner.keeps_directory()
    }

    fn directory_version(&self) -> Result<i64, StoreError> {
        self.inner.directory_version()
    }

    fn load_directory(&self) -> Result<(i64, crate::service::Directory), StoreError> {
        self.inner.load_directory()
    }

    fn change_directory(
        &self,
        change: &mut dyn FnMut(
            &mut crate::service::Directory,
        ) -> Result<(), crate::service::directory::DirectoryError>,
        hook: Hook<'_, ()>,
    ) -> Result<(), StoreError> {
        self.watched(|| self.inner.change_directory(change, hook))
    }

    fn control(&self) -> Result<Control, StoreError> {
        self.inner.control()
    }

    fn set_control(&self, control: &Control, hook: Hook<'_, Control>) -> Result<(), StoreError> {
        self.watched(|| self.inner.set_control(control, hook))
    }

    fn reviews(&self, open_only: bool, limit: u32) -> Result<Vec<Review>, StoreError> {
        self.inner.reviews(open_only, limit)
    }

    fn review(&self, id: i64) -> Result<Review, StoreError> {
        self.inner.review(id)
    }

    fn ack_review(
        &self,
        id: i64,
        by: &str,
        comment: Option<&str>,
        at: UnixTime,
        hook: Hook<'_, Review>,
    ) -> Result<Review, StoreError> {
        self.watched(|| self.inner.ack_review(id, by, comment, at, hook))
    }

    fn create_request(
        &self,
        new: &NewRequest,
        auto_grant: Option<&Grant>,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        self.watched(|| self.inner.create_request(new, auto_grant, hook))
    }

    fn request(&self, id: &str) -> Result<RequestRecord, StoreError> {
        self.inner.request(id)
    }

    fn list_requests(
        &self,
        status: Option<Status>,
        requester: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        self.inner.list_requests(status, requester, limit)
    }

    fn list_page(&self, query: &ListQuery) -> Result<Vec<RequestRecord>, StoreError> {
        self.inner.list_page(query)
    }

    fn count_requests(
        &self,
        requester: &str,
        since: UnixTime,
        pending_only: bool,
    ) -> Result<u64, StoreError> {
        self.inner.count_requests(requester, since, pending_only)
    }

    fn withdraw(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        self.watched(|| self.inner.withdraw(id, by, now, hook))
    }

    fn approve(
        &self,
        id: &str,
        vote: &Approval,
        grant: &Grant,
        quorum: &Quorum<'_>,
        hook: Hook<'_, ApproveOutcome>,
    ) -> Result<ApproveOutcome, StoreError> {
        self.watched(|| self.inner.approve(id, vote, grant, quorum, hook))
    }

    fn deny(
        &self,
        id: &str,
        by: &str,
        comment: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        self.watched(|| self.inner.deny(id, by, comment, now, hook))
    }

    fn revoke(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        self.watched(|| self.inner.revoke(id, by, now, hook))
    }

    fn grant(&self, jti: &str) -> Result<Grant, StoreError> {
        self.inner.grant(jti)
    }

    fn use_grant(
        &self,
        jti: &str,
        now: UnixTime,
        hook: Hook<'_, Grant>,
    ) -> Result<Grant, StoreError> {
        self.watched(|| self.inner.use_grant(jti, now, hook))
    }

    fn expire_pending(
        &self,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        // One transaction per request: when the hook runs for the next one, the ones before
        // it committed; and a request the store holds as expired did expire.
        self.watched_unless(
            || {
                self.inner.expire_pending(now, &mut |record| {
                    committed_so_far();
                    hook(record)
                })
            },
            |id| matches!(self.inner.request(id), Ok(r) if r.status == Status::Expired),
        )
    }

    fn set_lock(&self, lock: &Lock, hook: Hook<'_, Lock>) -> Result<(), StoreError> {
        self.watched(|| self.inner.set_lock(lock, hook))
    }

    fn clear_lock(&self, scope: &str, hook: Hook<'_, Lock>) -> Result<Lock, StoreError> {
        self.watched(|| self.inner.clear_lock(scope, hook))
    }

    fn active_locks(&self, now: UnixTime) -> Result<Vec<Lock>, StoreError> {
        self.inner.active_locks(now)
    }

    fn revocations(&self, since: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.inner.revocations(since)
    }

    fn live_grants(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.inner.live_grants(now)
    }

    fn record(&self, hook: Hook<'_, ()>) -> Result<(), StoreError> {
        self.watched(|| self.inner.record(hook))
    }

    fn queue_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.inner.queue_audit(event)
    }

    fn queue_gate_batch(&self, batch: &GateBatch, now: UnixTime) -> Result<bool, StoreError> {
        self.inner.queue_gate_batch(batch, now)
    }

    fn drain_audit(
        &self,
        sink: &mut dyn FnMut(Vec<AuditEvent>) -> Result<(), AuditSinkError>,
    ) -> Result<usize, StoreError> {
        // Withdrawals first: until they are written, nothing else is.
        self.settle()?;
        self.inner.drain_audit(sink)
    }

    fn due_notifications(&self, now: UnixTime, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        self.inner.due_notifications(now, limit)
    }

    fn mark_delivered(&self, id: i64, now: UnixTime) -> Result<(), StoreError> {
        self.inner.mark_delivered(id, now)
    }

    fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: UnixTime,
        give_up: bool,
    ) -> Result<(), StoreError> {
        self.inner.mark_failed(id, error, next_attempt_at, give_up)
    }
}
