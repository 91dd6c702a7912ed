//! What the service accepts from a gate through `POST /v1/audit/events`, and in what form.
//!
//! A gate is a user's program: everything in its events is a claim. The service therefore
//! - sets each event's `time` (the gate's own time is kept as `details.sent_time`), its actor
//!   (the authenticated caller) and the receipt fields (`received_by`, `gate_batch`);
//! - accepts only the gate's own actions, each with its outcomes: `session.start`,
//!   `session.end`, `gate.decision`, `gate.request`, `gate.abort`, `gate.bypass`,
//!   `purview.command`; never a
//!   `request.*`, `grant.*`, `token.*` or any other service action;
//! - lets an event name a request (`details.request`) or a token (`details.token_id`, an
//!   invocation's `token`) only when that request or grant belongs to the caller, so a gate
//!   cannot attach its events to someone else's request in `audit search`;
//! - limits each caller's rate ([`RateLimiter`]).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::error::ApiError;
use super::store::{Store, StoreError};
use crate::audit::AuditEvent;

/// Longest subject (a session id) a gate may send.
const MAX_SUBJECT: usize = 128;
/// Events a caller may send at once after a quiet spell (a spool emptying after an outage).
pub(crate) const BURST_EVENTS: f64 = 5000.0;
/// Events per second a caller may send on average.
pub(crate) const EVENTS_PER_SECOND: f64 = 100.0;

/// Whether a gate may send `action` at all.
pub fn gate_action(action: &str) -> bool {
    crate::audit::decision::gate_outcomes(action).is_some()
}

/// Check a gate's events and put them in the form the log keeps. `i`-th event errors name it.
pub(crate) fn admit(
    caller: &str,
    batch: &str,
    events: Vec<AuditEvent>,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Vec<AuditEvent>, ApiError> {
    let time = super::rfc3339(now.timestamp());
    let mut out = Vec::with_capacity(events.len());
    for (i, mut e) in events.into_iter().enumerate() {
        if !e.actor.eq_ignore_ascii_case(caller) {
            return Err(ApiError::forbidden(
                "not_your_event",
                format!(
                    "event {i} is in the name of `{}`; a gate may only send events of its own user `{caller}`",
                    e.actor
                ),
            ));
        }
        let Some(allowed) = crate::audit::decision::gate_outcomes(&e.action) else {
            return Err(ApiError::policy(
                "action_not_allowed",
                format!(
                    "event {i} has action `{}`; gates send only session.start, session.end, \
                     gate.decision, gate.request, gate.abort, gate.bypass and purview.command \
                     events",
                    e.action
                ),
            ));
        };
        if !allowed.contains(&e.outcome.as_str()) {
            return Err(ApiError::policy(
                "invalid_outcome",
                format!(
                    "event {i} ({}) has outcome `{}`; it may be one of: {}",
                    e.action,
                    e.outcome,
                    allowed.join(", ")
                ),
            ));
        }
        if e.subject.is_empty()
            || e.subject.len() > MAX_SUBJECT
            || !e.subject.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::policy(
                "invalid_subject",
                format!(
                    "event {i} has subject `{}`; a gate event's subject is its session id (1 to \
                     {MAX_SUBJECT} printable ASCII characters)",
                    crate::audit::export::printable(&e.subject)
                ),
            ));
        }
        check_references(i, caller, &e, store)?;
        let sent = std::mem::replace(&mut e.time, time.clone());
        e.actor = caller.to_owned();
        e.details.insert("sent_time".into(), json!(sent));
        e.details.insert("received_by".into(), json!("service"));
        e.details.insert("gate_batch".into(), json!(batch));
        out.push(e);
    }
    Ok(out)
}

/// A request or token an event names must be the caller's.
fn check_references(
    i: usize,
    caller: &str,
    e: &AuditEvent,
    store: &dyn Store,
) -> Result<(), ApiError> {
    let not_yours = |what: String| {
        ApiError::forbidden(
            "not_your_request",
            format!("event {i} names {what}, which is not yours; a gate may only refer to its own user's requests and tokens"),
        )
    };
    match e.details.get("request") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => match store.request(id) {
            Ok(r) if r.new.requester.eq_ignore_ascii_case(caller) => {}
            Ok(_) | Err(StoreError::NotFound(_)) => {
                return Err(not_yours(format!("request `{id}`")))
            }
            Err(other) => return Err(other.into()),
        },
        Some(_) => {
            return Err(ApiError::policy(
                "invalid_details",
                format!("event {i}: `details.request` must be a request id"),
            ))
        }
    }
    let mut tokens: Vec<&Value> = e.details.get("token_id").into_iter().collect();
    if let Some(Value::Array(list)) = e.details.get("invocations") {
        tokens.extend(list.iter().filter_map(|inv| inv.get("token")));
    }
    for t in tokens {
        let jti = match t {
            Value::Null => continue,
            Value::String(s) => s,
            _ => {
                return Err(ApiError::policy(
                    "invalid_details",
                    format!("event {i}: a token id must be text"),
                ))
            }
        };
        match store.grant(jti) {
            Ok(g) if g.sub.eq_ignore_ascii_case(caller) => {}
            Ok(_) => return Err(not_yours(format!("token `{jti}`"))),
            // A token this service did not issue joins nothing in its log.
            Err(StoreError::GrantNotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// Per-caller token buckets: each caller may send [`BURST_EVENTS`] at once and
/// [`EVENTS_PER_SECOND`] on average, so one gate cannot flood the log for everyone.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, DateTime<Utc>)>>,
}

impl RateLimiter {
    /// Take `n` events from `caller`'s bucket at `now`, or say when to come back.
    pub fn take(&self, caller: &str, n: usize, now: DateTime<Utc>) -> Result<(), ApiError> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = caller.to_ascii_lowercase();
        let (level, last) = buckets.get(&key).copied().unwrap_or((BURST_EVENTS, now));
        let elapsed = (now - last).as_seconds_f64().max(0.0);
        let level = (level + elapsed * EVENTS_PER_SECOND).min(BURST_EVENTS);
        let want = n as f64;
        if want > level {
            let wait = ((want - level) / EVENTS_PER_SECOND).ceil().max(1.0);
            buckets.insert(key, (level, now));
            return Err(ApiError::too_many(
                "rate_limited",
                format!("too many audit events from `{caller}`; send them again in {wait:.0}s"),
            ));
        }
        buckets.insert(key, (level - want, now));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_bucket_that_refills() {
        let limiter = RateLimiter::default();
        let t0 = chrono::DateTime::UNIX_EPOCH;
        limiter.take("alice", 5000, t0).unwrap();
        let err = limiter.take("alice", 1, t0).unwrap_err();
        assert_eq!(err.code, "rate_limited");
        limiter.take("bob", 500, t0).unwrap();
        limiter
            .take("ALICE", 100, t0 + chrono::Duration::seconds(1))
            .unwrap();
    }

    #[test]
    fn only_gate_actions_pass() {
        for a in [
            "session.start",
            "gate.decision",
            "gate.request",
            "purview.command",
        ] {
            assert!(gate_action(a), "{a}");
        }
        for a in [
            "request.approve",
            "request.local",
            "token.issue",
            "grant.revoke",
            "gate.",
            "session.anything",
            "audit.checkpoint",
        ] {
            assert!(!gate_action(a), "{a}");
        }
    }
}
