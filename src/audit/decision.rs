//! The one shape of a gate decision record (`gate.decision`), written by the shell and by
//! `jitsh exec` and read by `audit search`, through the same two functions here.
//!
//! `details`: `line`, `reason`, `invocations` (each `name`, `as_written`, `depth`, `decision`,
//! `rule`, `token`, `dynamic`, `params`, `reason`, as `jitsh check --json` gives them), `error`
//! (when the line did not parse), `via` (`shell` or `exec`). Callers add `recording`, `marker`,
//! `continuation`, ... Records written before this shape kept the check output under `result`;
//! [`invocations`] still reads them.

use serde_json::{Map, Value};

use crate::audit::chain::Record;
use crate::audit::AuditEvent;
use crate::gate::LineDecision;

pub(crate) const ACTION: &str = "gate.decision";

/// The actions a gate writes, each with the outcomes it may have. Nothing else is a gate's to
/// write: request, approval, token and grant records are the service's.
pub(crate) fn gate_outcomes(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "session.start" => &["ok"],
        "session.end" => &["ok", "error"],
        ACTION => &["allow", "approval", "deny"],
        "gate.request" => &["ok", "error"],
        "gate.abort" | "gate.bypass" => &["error"],
        // A Purview cmdlet the gate carried out against the service (which audits the action).
        "purview.command" => &["ok", "error"],
        _ => return None,
    })
}

/// The gate decision record for `line`, decided as `decision`, by `actor` in `session`.
pub fn event(
    actor: &str,
    session: &str,
    line: &str,
    decision: &LineDecision,
    via: &str,
    time: String,
) -> AuditEvent {
    let mut details = Map::new();
    details.insert("line".into(), line.into());
    details.insert("reason".into(), decision.reason.clone().into());
    let json = decision.to_json();
    if let Value::Object(mut result) = json {
        for key in ["invocations", "error", "incomplete"] {
            if let Some(v) = result.remove(key) {
                details.insert(key.into(), v);
            }
        }
    }
    details.insert("via".into(), via.into());
    AuditEvent {
        time,
        actor: actor.to_owned(),
        action: ACTION.to_owned(),
        subject: session.to_owned(),
        outcome: decision.decision.as_str().to_owned(),
        details,
    }
}

/// When the gate says it wrote `r`: the service stamps gate events with its own time on arrival
/// and keeps the gate's as `details.sent_time`. Only for showing a session's own timeline (its
/// recording runs on the gate's clock); ordering and review use the record's time.
pub(crate) fn gate_time(r: &Record) -> &str {
    r.details
        .get("sent_time")
        .and_then(Value::as_str)
        .unwrap_or(&r.time)
}

/// The tokens a gate decision record names: `details.token_id`, then each invocation's `token`.
pub fn tokens(r: &Record) -> Vec<&str> {
    let mut out: Vec<&str> = r
        .details
        .get("token_id")
        .and_then(Value::as_str)
        .into_iter()
        .collect();
    for t in invocations(r)
        .into_iter()
        .filter_map(|i| i.get("token").and_then(Value::as_str))
    {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The invocations of a gate decision record.
pub fn invocations(r: &Record) -> Vec<&Value> {
    let list = r
        .details
        .get("invocations")
        .or_else(|| r.details.get("result").and_then(|v| v.get("invocations")));
    list.and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}
