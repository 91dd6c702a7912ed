//! Searching audit records, and joining gate decisions to the requests behind them.
//!
//! Pure: records come in parsed; times are compared as parsed RFC 3339.
//!
//! A gate decision (`action` `gate.decision`, shaped by [`crate::audit::decision`]) carries
//! `details.invocations` (each with `name`, `params`, `rule`, `decision`, `token`), `token_id`,
//! `request`, `session`, `marker`. Its
//! request is `details.request`, else the request whose `token.issue` record named one of its
//! token ids. The related records are every non-decision record about that request
//! (`request.create`, `request.approve`, `token.issue`, ...).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::audit::chain::Record;

pub(crate) const GATE_DECISION: &str = crate::audit::decision::ACTION;

/// What to look for; every field set must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The actor.
    pub user: Option<String>,
    /// A task name (details `task`/`tasks`) or a command name in a decision (any case).
    pub task: Option<String>,
    /// A parameter name (any case), optionally with a value (any case).
    pub param: Option<(String, Option<String>)>,
    pub rule: Option<String>,
    /// `allow`, `approval` or `deny`.
    pub decision: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub session: Option<String>,
    pub request: Option<String>,
    /// Only records of system accounts' sessions whose review is still open (the service's
    /// `review.open` without a later `review.ack`), and those review records.
    pub unreviewed: bool,
}

/// Why a filter value is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SearchError {
    #[error("`{0}` is not a time: use RFC 3339 (2026-01-02T03:04:05Z) or a date (2026-01-02)")]
    BadTime(String),
    #[error("`{0}` is not a decision: use allow, approval or deny")]
    BadDecision(String),
}

/// Parse `--since`/`--until`: RFC 3339, or a date meaning its midnight UTC.
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, SearchError> {
    if let Some(t) = crate::rfc3339::parse(text) {
        return Ok(t);
    }
    // Exactly YYYY-MM-DD: chrono alone would also read unpadded or longer years.
    let digits = |r: std::ops::Range<usize>| {
        text.get(r)
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    };
    let shaped = text.len() == 10 && digits(0..4) && digits(5..7) && digits(8..10);
    shaped
        .then(|| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| SearchError::BadTime(text.to_owned()))
}

/// Check a `--decision` value.
pub(crate) fn parse_decision(text: &str) -> Result<String, SearchError> {
    match text {
        "allow" | "approval" | "deny" => Ok(text.to_owned()),
        _ => Err(SearchError::BadDecision(text.to_owned())),
    }
}

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        self.matches_about(r, request_of(r).as_deref())
    }

    /// [`Filter::matches`] with the record's request already worked out (a gate decision's
    /// comes from the token it used).
    fn matches_about(&self, r: &Record, request: Option<&str>) -> bool {
        let invocations = invocations(r);
        self.user.as_ref().is_none_or(|u| &r.actor == u)
            && self.rule.as_ref().is_none_or(|rule| {
                r.detail_str("rule") == Some(rule)
                    || invocations
                        .iter()
                        .any(|i| str_field(i, "rule") == Some(rule))
            })
            && self.decision.as_ref().is_none_or(|d| {
                r.action == GATE_DECISION
                    && (&r.outcome == d
                        || invocations
                            .iter()
                            .any(|i| str_field(i, "decision") == Some(d)))
            })
            && self.session.as_ref().is_none_or(|s| {
                r.detail_str("session") == Some(s)
                    || ((r.action.starts_with("session.") || r.action == GATE_DECISION)
                        && &r.subject == s)
            })
            && self
                .request
                .as_ref()
                .is_none_or(|q| request == Some(q.as_str()))
            && self
                .task
                .as_ref()
                .is_none_or(|t| has_task(r, &invocations, t))
            && self
                .param
                .as_ref()
                .is_none_or(|(n, v)| has_param(r, &invocations, n, v.as_deref()))
            && self.in_time(r)
    }

    fn in_time(&self, r: &Record) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Ok(t) = parse_time(&r.time) else {
            // An unreadable time never matches a time window.
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// One search hit: the record's index and, for a gate decision, its request's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub index: usize,
    pub related: Vec<usize>,
}

/// Sessions whose last review record opens a review: `review.open` (written by the service
/// only) not followed by a `review.ack`.
pub fn unreviewed_sessions(records: &[Record]) -> std::collections::HashSet<&str> {
    let mut open = std::collections::HashSet::new();
    for r in records {
        match r.action.as_str() {
            "review.open" if r.actor == "jitsh" => {
                open.insert(r.subject.as_str());
            }
            "review.ack" => {
                open.remove(r.subject.as_str());
            }
            _ => {}
        }
    }
    open
}

/// Whether a record belongs to an open review: one of the session's own (gate) records, or the
/// review's opening.
fn in_open_review(r: &Record, open: &std::collections::HashSet<&str>) -> bool {
    let session_record = crate::audit::decision::gate_outcomes(&r.action).is_some()
        || (r.action == "review.open" && r.actor == "jitsh");
    session_record && open.contains(r.subject.as_str())
}

/// Records matching `filter`, each gate decision joined to its request's records.
pub fn search(records: &[Record], filter: &Filter) -> Vec<Hit> {
    let open = if filter.unreviewed {
        unreviewed_sessions(records)
    } else {
        Default::default()
    };
    let mut by_request: HashMap<String, Vec<usize>> = HashMap::new();
    let mut request_of_token: HashMap<String, String> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.action == GATE_DECISION {
            continue;
        }
        if let Some(req) = request_of(r) {
            if r.action == "token.issue" {
                for key in ["token_id", "jti"] {
                    if let Some(t) = r.detail_str(key) {
                        request_of_token.insert(t.to_owned(), req.clone());
                    }
                }
            }
            by_request.entry(req).or_default().push(i);
        }
    }
    records
        .iter()
        .enumerate()
        .filter_map(|(index, r)| {
            let decision = r.action == GATE_DECISION;
            let request = if decision {
                decision_request(r, &request_of_token)
            } else {
                request_of(r)
            };
            if !filter.matches_about(r, request.as_deref())
                || (filter.unreviewed && !in_open_review(r, &open))
            {
                return None;
            }
            let related = match (decision, request) {
                (true, Some(q)) => by_request.get(&q).cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            Some(Hit { index, related })
        })
        .collect()
}

/// The request a record is about: `details.request`, or the subject of `request.*`,
/// `grant.*` and `token.*` records.
pub(crate) fn request_of(r: &Record) -> Option<String> {
    if let Some(q) = r.detail_str("request") {
        return Some(q.to_owned());
    }
    let about_request = ["request.", "grant.", "token."]
        .iter()
        .any(|p| r.action.starts_with(p));
    (about_request && !r.subject.is_empty()).then(|| r.subject.clone())
}

fn decision_request(r: &Record, request_of_token: &HashMap<String, String>) -> Option<String> {
    if let Some(q) = r.detail_str("request") {
        return Some(q.to_owned());
    }
    let tokens = r.detail_str("token_id").into_iter().chain(
        invocations(r)
            .into_iter()
            .filter_map(|i| str_field(i, "token")),
    );
    tokens
        .filter_map(|t| request_of_token.get(t))
        .next()
        .cloned()
}

fn invocations(r: &Record) -> Vec<&Value> {
    crate::audit::decision::invocations(r)
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn has_task(r: &Record, invocations: &[&Value], task: &str) -> bool {
    let eq = |s: &str| s.eq_ignore_ascii_case(task);
    r.detail_str("task").is_some_and(eq)
        || r.details
            .get("tasks")
            .and_then(Value::as_array)
            .is_some_and(|ts| ts.iter().filter_map(Value::as_str).any(eq))
        || invocations
            .iter()
            .any(|i| str_field(i, "name").is_some_and(eq) || str_field(i, "task").is_some_and(eq))
}

fn has_param(r: &Record, invocations: &[&Value], name: &str, value: Option<&str>) -> bool {
    let sources = r
        .details
        .get("params")
        .into_iter()
        .chain(invocations.iter().filter_map(|i| i.get("params")));
    sources
        .into_iter()
        .any(|params| params_match(params, name, value))
}

/// Params as an object (`{"Identity": "x"}`) or a list (`[{"name": .., "value": ..}]`).
fn params_match(params: &Value, name: &str, value: Option<&str>) -> bool {
    let value_ok = |v: Option<&Value>| match (value, v) {
        (None, _) => true,
        (Some(want), Some(v)) => value_text(v).eq_ignore_ascii_case(want),
        (Some(_), None) => false,
    };
    match params {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(name) && value_ok(Some(v))),
        Value::Array(items) => items.iter().any(|item| {
            str_field(item, "name").is_some_and(|n| n.eq_ignore_ascii_case(name))
                && value_ok(item.get("value"))
        }),
        _ => false,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    fn rec(seq: u64, action: &str, subject: &str, details: Value) -> Record {
        Record {
            seq,
            time: format!("2026-01-0{seq}T00:00:00Z"),
            actor: "alice".into(),
            action: action.into(),
            subject: subject.into(),
            outcome: if action == GATE_DECISION {
                "allow"
            } else {
                "ok"
            }
            .into(),
            details: details.as_object().cloned().unwrap_or_default(),
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn records() -> Vec<Record> {
        vec![
            rec(
                1,
                "request.create",
                "q1",
                serde_json::json!({"task": "mailbox-export"}),
            ),
            rec(
                2,
                "token.issue",
                "q1",
                serde_json::json!({"token_id": "t1"}),
            ),
            rec(3, "request.create", "q2", serde_json::json!({})),
            rec(
                4,
                GATE_DECISION,
                "s1",
                serde_json::json!({"session": "s1", "token_id": "t1", "invocations": [
                    {"name": "New-MailboxExportRequest", "params": {"Mailbox": "bob"},
                     "rule": "export", "decision": "allow", "token": "t1"}]}),
            ),
        ]
    }

    #[test]
    fn unreviewed_lists_the_sessions_whose_review_is_open_until_acknowledged() {
        let mut open = rec(1, "review.open", "s9", serde_json::json!({"review": 1}));
        open.actor = "jitsh".into();
        let mut forged = rec(2, "review.open", "s8", serde_json::json!({"review": 2}));
        forged.actor = "svc".into();
        let mut rs = vec![
            open.clone(),
            forged,
            rec(
                3,
                GATE_DECISION,
                "s9",
                serde_json::json!({"line": "Get-Mailbox"}),
            ),
            rec(
                4,
                GATE_DECISION,
                "s8",
                serde_json::json!({"line": "Get-Mailbox"}),
            ),
            rec(5, "request.create", "s9", serde_json::json!({})),
        ];
        let f = Filter {
            unreviewed: true,
            ..Filter::default()
        };
        let hits: Vec<usize> = search(&rs, &f).iter().map(|h| h.index).collect();
        // The service's opening and the session's gate record; not a review "opened" by
        // anyone else, nor a service record that merely shares the subject.
        assert_eq!(hits, vec![0, 2]);
        let mut ack = rec(6, "review.ack", "s9", serde_json::json!({"review": 1}));
        ack.actor = "carol".into();
        rs.push(ack);
        assert!(search(&rs, &f).is_empty());
        // Reopened by a line after the acknowledgement: both openings and the line are listed.
        rs.push(open);
        let hits: Vec<usize> = search(&rs, &f).iter().map(|h| h.index).collect();
        assert_eq!(hits, vec![0, 2, 6]);
    }

    #[test]
    fn decisions_in_the_shape_written_before_are_still_read() {
        let old = rec(
            5,
            GATE_DECISION,
            "s2",
            serde_json::json!({"line": "Get-Mailbox", "result": {"invocations": [
                {"name": "Get-Mailbox", "rule": "read", "decision": "allow"}]}}),
        );
        let hits = search(
            &[old],
            &Filter {
                task: Some("get-mailbox".into()),
                ..Filter::default()
            },
        );
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn decision_joins_its_request_through_the_token() {
        let hits = search(
            &records(),
            &Filter {
                decision: Some("allow".into()),
                ..Filter::default()
            },
        );
        assert_eq!(
            hits,
            vec![Hit {
                index: 3,
                related: vec![0, 1]
            }]
        );
    }

    #[test]
    fn filters_match_params_rules_tasks_and_time() {
        let rs = records();
        let f = |filter: Filter| {
            search(&rs, &filter)
                .iter()
                .map(|h| h.index)
                .collect::<Vec<_>>()
        };
        let param = |n: &str, v: Option<&str>| Filter {
            param: Some((n.into(), v.map(Into::into))),
            ..Filter::default()
        };
        assert_eq!(f(param("mailbox", Some("BOB"))), vec![3]);
        assert_eq!(f(param("mailbox", Some("carol"))), Vec::<usize>::new());
        assert_eq!(
            f(Filter {
                rule: Some("export".into()),
                ..Filter::default()
            }),
            vec![3]
        );
        assert_eq!(
            f(Filter {
                task: Some("MAILBOX-EXPORT".into()),
                ..Filter::default()
            }),
            vec![0]
        );
        assert_eq!(
            f(Filter {
                request: Some("q1".into()),
                ..Filter::default()
            }),
            // The decision used q1's token: it is about q1 too.
            vec![0, 1, 3]
        );
        assert_eq!(
            f(Filter {
                session: Some("s1".into()),
                ..Filter::default()
            }),
            vec![3]
        );
        let since = parse_time("2026-01-02").unwrap();
        let until = parse_time("2026-01-03T00:00:00Z").unwrap();
        assert_eq!(
            f(Filter {
                since: Some(since),
                until: Some(until),
                ..Filter::default()
            }),
            vec![1, 2]
        );
        assert_eq!(
            f(Filter {
                session: Some("s1".into()),
                ..Filter::default()
            }),
            vec![3]
        );
        assert_eq!(
            f(Filter {
                decision: Some("deny".into()),
                ..Filter::default()
            }),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn bad_filter_values_are_refused() {
        assert!(parse_time("yesterday").is_err());
        assert!(parse_decision("maybe").is_err());
    }
}
