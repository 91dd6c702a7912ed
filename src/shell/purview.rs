//! Carry out a Purview cmdlet (`*-ElevatedAccess*`, read by [`crate::purview`]) against the
//! approval service's REST API, as the session's credential. The runspace never sees them; the
//! service checks rights (approvers for the rule, global-admin for policies and control) and
//! audits every change.

use reqwest::Method;
use serde_json::{json, Value};

use super::access::Access;
use super::service::{url_segment, ApiFailure, Service};
use crate::purview::format::{error_record, render, Object};
use crate::purview::{Cmdlet, PurviewError, PurviewLine};

/// A request's duration when `-DurationHours` is not given (Purview's default).
pub(crate) const DEFAULT_DURATION_HOURS: u32 = 4;

/// Longest `-DurationHours` accepted (a rule's `max_duration` may allow less).
const MAX_DURATION_HOURS: u32 = 24;

/// Most request pages `Get-ElevatedAccessRequest` reads.
const MAX_PAGES: usize = 20;

/// What a Purview line produced: output for stdout, and an error record when it failed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub output: String,
    pub error: Option<String>,
}

impl Outcome {
    fn failed(line: &PurviewLine, message: &str, id: &str, category: &str) -> Outcome {
        Outcome {
            output: String::new(),
            error: Some(error_record(
                line.cmdlet.name(),
                &line.text,
                message,
                id,
                category,
            )),
        }
    }

    fn service(line: &PurviewLine, f: &ApiFailure) -> Outcome {
        let category = match f.code.as_str() {
            "unreachable" => "ConnectionError",
            "not_found" => "ObjectNotFound",
            c if c.starts_with("not_") || c.contains("forbidden") => "PermissionDenied",
            _ => "InvalidOperation",
        };
        Outcome::failed(line, &f.message, &f.code, category)
    }
}

/// The error record for a line that names a Purview cmdlet but cannot be carried out.
pub fn refused(line: &str, e: &PurviewError) -> String {
    let (id, category) = e.ids();
    error_record(e.cmdlet(), line, &e.to_string(), id, category)
}

/// The Purview plan for a line, or `None` when it names no Purview cmdlet.
pub fn recognise(access: &Access, text: &str) -> Option<Result<PurviewLine, PurviewError>> {
    let platform = access.policies().defaults().platform;
    crate::purview::recognise(text, access.catalog(), platform)
}

/// `jitsh exec`: carry out the line when it names a Purview cmdlet, printing its output and
/// error; the exit status (0, or 1 on an error), or `None` when the gate decides the line.
pub(crate) async fn exec_line(text: &str, access: &mut Access) -> Option<u8> {
    let plan = recognise(access, text)?;
    let outcome = match plan {
        Ok(line) => run(&line, access).await,
        Err(e) => Outcome {
            output: String::new(),
            error: Some(refused(text, &e)),
        },
    };
    print!("{}", outcome.output);
    match outcome.error {
        Some(err) => {
            eprint!("{err}");
            Some(1)
        }
        None => Some(0),
    }
}

/// Carry out one recognised line.
pub async fn run(line: &PurviewLine, access: &mut Access) -> Outcome {
    access.refresh_policies();
    if line.cmdlet == Cmdlet::GetPolicy {
        // Rules without approvers are approved by the default approver group, which the
        // service keeps.
        let default_group = match access.service() {
            Some(service) => service
                .api(Method::GET, "/v1/control", None)
                .await
                .ok()
                .and_then(|v| {
                    v.get("admin_group")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                }),
            None => None,
        };
        return get_policies(line, access, default_group.as_deref());
    }
    let Some(service) = access.service() else {
        return Outcome::failed(
            line,
            "no approval service is configured: start jitsh with --server URL (or set JITSH_SERVER)",
            "JitshNoService",
            "ConnectionError",
        );
    };
    let result = match line.cmdlet {
        Cmdlet::NewRequest => new_request(line, service).await,
        Cmdlet::GetRequest => get_requests(line, service).await,
        Cmdlet::ApproveRequest => decide(line, service, "approve").await,
        Cmdlet::DenyRequest => decide(line, service, "deny").await,
        Cmdlet::NewPolicy => super::purview_admin::new_policy(line, service).await,
        Cmdlet::RemovePolicy => super::purview_admin::remove_policy(line, service).await,
        Cmdlet::EnableControl => super::purview_admin::enable_control(line, service).await,
        Cmdlet::DisableControl => super::purview_admin::disable_control(line, service).await,
        Cmdlet::GetPolicy => Ok((Vec::new(), None)),
    };
    match result {
        Ok((objects, tracked)) => {
            if let Some((id, task)) = tracked {
                access.track(&id, &task);
            }
            let mut output = render(objects, &line.stages);
            if line.cmdlet == Cmdlet::NewPolicy {
                output.push_str(&shadowed_warning(line, access));
            }
            Outcome {
                output,
                error: None,
            }
        }
        Err(Failure::Service(f)) => Outcome::service(line, &f),
        Err(Failure::Argument(message)) => {
            Outcome::failed(line, &message, "JitshInvalidArgument", "InvalidArgument")
        }
    }
}

/// A new approval policy changes nothing for a task that an `allow` rule also covers (allow
/// wins over approval): say so, as a PowerShell warning.
fn shadowed_warning(line: &PurviewLine, access: &Access) -> String {
    let Some(task) = line.text_arg("Task").map(|t| task_name(&t)) else {
        return String::new();
    };
    let allowing: Vec<&str> = access
        .policies()
        .rules()
        .iter()
        .filter(|r| r.effect == crate::policy::Effect::Allow && r.covers_name(&task, None))
        .map(|r| r.id.as_str())
        .collect();
    if allowing.is_empty() {
        return String::new();
    }
    crate::text::escape(&format!(
        "WARNING: `{task}` is also allowed by rule {}: an allow rule wins over an approval rule, so this policy puts nothing behind approval until that rule no longer covers it.",
        allowing.join(", ")
    ))
    .into_owned()
        + "\n"
}

/// Why a cmdlet failed.
#[derive(Debug)]
pub(super) enum Failure {
    Service(ApiFailure),
    Argument(String),
}

impl From<ApiFailure> for Failure {
    fn from(f: ApiFailure) -> Failure {
        Failure::Service(f)
    }
}

/// Objects to show, and a request the session should watch for its token.
pub(super) type Done = Result<(Vec<Object>, Option<(String, String)>), Failure>;

/// `Exchange\New-MoveRequest` names jitsh's task `New-MoveRequest`.
pub(super) fn task_name(task: &str) -> String {
    let t = task.trim();
    match t.split_once('\\') {
        Some((module, rest)) if module.eq_ignore_ascii_case("Exchange") => rest.to_string(),
        _ => t.to_string(),
    }
}

async fn new_request(line: &PurviewLine, service: &Service) -> Done {
    let task = line
        .text_arg("Task")
        .map(|t| task_name(&t))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Failure::Argument(
                "-Task is required: the task to ask for, such as 'Exchange\\New-MoveRequest'"
                    .into(),
            )
        })?;
    let reason = line
        .text_arg("Reason")
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            Failure::Argument("-Reason is required: say why the task is needed".into())
        })?;
    let hours = match line.text_arg("DurationHours") {
        None => DEFAULT_DURATION_HOURS,
        Some(h) => h
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=MAX_DURATION_HOURS).contains(h))
            .ok_or_else(|| {
                Failure::Argument(format!(
                    "-DurationHours must be a whole number of hours from 1 to {MAX_DURATION_HOURS}"
                ))
            })?,
    };
    let mut body = json!({ "task": task, "reason": reason, "duration": format!("{hours}h") });
    if let Some(ticket) = line.text_arg("Ticket") {
        body["ticket"] = Value::String(ticket);
    }
    let created = service
        .api(Method::POST, "/v1/requests", Some(body))
        .await?;
    let id = text(&created, "id");
    // The creation answer may be short; show the request as the service now holds it.
    let shown = service
        .api(
            Method::GET,
            &format!("/v1/requests/{}", url_segment(&id)),
            None,
        )
        .await
        .unwrap_or(created);
    let status = text(&shown, "status");
    let track = (status == "pending" || status == "approved").then(|| (id.clone(), task));
    Ok((vec![request_object(&shown)], track))
}

async fn get_requests(line: &PurviewLine, service: &Service) -> Done {
    let id = line
        .text_arg("Identity")
        .or_else(|| line.text_arg("RequestId"));
    if let Some(id) = id {
        let v = service
            .api(
                Method::GET,
                &format!("/v1/requests/{}", url_segment(&id)),
                None,
            )
            .await?;
        return Ok((vec![request_object(&v)], None));
    }
    let mut objects = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let path = match &cursor {
            Some(c) => format!("/v1/requests?cursor={}", url_segment(c)),
            None => "/v1/requests".to_string(),
        };
        let page = service.api(Method::GET, &path, None).await?;
        if let Some(items) = page.get("requests").and_then(Value::as_array) {
            objects.extend(items.iter().map(request_object));
        }
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    Ok((objects, None))
}

/// Approve or deny: the approval is bound to the request as fetched (its digest), so a request
/// changed in between is refused by the service.
async fn decide(line: &PurviewLine, service: &Service, verb: &str) -> Done {
    let id = line
        .text_arg("RequestId")
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| Failure::Argument("-RequestId is required".into()))?;
    let path = format!("/v1/requests/{}", url_segment(&id));
    let current = service.api(Method::GET, &path, None).await?;
    let digest = crate::service::workflow::request_digest(&current);
    let comment = line.text_arg("Comment").unwrap_or_default();
    let after = service
        .api(
            Method::POST,
            &format!("{path}/{verb}"),
            Some(json!({ "comment": comment, "digest": digest })),
        )
        .await?;
    Ok((vec![request_object(&after)], None))
}

/// Purview's `Get-ElevatedAccessApprovalPolicy`: the approval rules of every policy file the
/// gate loaded, one object each.
fn get_policies(line: &PurviewLine, access: &Access, default_group: Option<&str>) -> Outcome {
    let filter = line.text_arg("Identity").map(|i| i.to_lowercase());
    let objects: Vec<Object> = access
        .policies()
        .rules()
        .iter()
        .filter(|r| r.effect == crate::policy::Effect::Approval)
        .filter(|r| {
            filter
                .as_ref()
                .is_none_or(|f| crate::purview::format::wildcard(f, &r.id.to_lowercase()))
        })
        .map(|r| {
            let hours = r
                .max_duration
                .map(|d| hours_text(d.as_secs()))
                .unwrap_or_default();
            let kind = if r.tasks.iter().all(|t| t.starts_with("role:")) {
                "Role"
            } else {
                "Task"
            };
            Object {
                props: vec![
                    ("Identity".into(), r.id.clone()),
                    ("Type".into(), kind.into()),
                    ("Task".into(), r.tasks.join(", ")),
                    (
                        "ApprovalType".into(),
                        match r.approval {
                            crate::policy::ApprovalMode::Manual => "Manual".into(),
                            crate::policy::ApprovalMode::Auto => "Auto".into(),
                        },
                    ),
                    ("ApproverGroup".into(), approver_group(r, default_group)),
                    ("MaxDurationHours".into(), hours),
                    (
                        "Description".into(),
                        r.description.clone().unwrap_or_default(),
                    ),
                    ("Source".into(), r.source.clone()),
                ],
                table: vec!["Identity", "Task", "ApprovalType", "ApproverGroup"],
            }
        })
        .collect();
    if objects.is_empty() {
        if let Some(f) = filter.filter(|f| !f.contains(['*', '?'])) {
            return Outcome::failed(
                line,
                &format!("The approval policy '{f}' could not be found."),
                "JitshPolicyNotFound",
                "ObjectNotFound",
            );
        }
    }
    Outcome {
        output: render(objects, &line.stages),
        error: None,
    }
}

/// A rule's approvers; a manual rule without any is approved by the default approver group.
fn approver_group(r: &crate::policy::Rule, default_group: Option<&str>) -> String {
    if !r.approvers.is_empty() || r.approval == crate::policy::ApprovalMode::Auto {
        return r.approvers.join(", ");
    }
    match default_group {
        Some(g) => format!("{g} (default)"),
        None => "(none: no default approver group is set, so nobody can approve)".into(),
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// Whole hours as `4`, others as `1.5`.
pub(super) fn hours_text(secs: u64) -> String {
    if secs.is_multiple_of(3600) {
        (secs / 3600).to_string()
    } else {
        let tenths = secs * 10 / 3600;
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

/// Purview's status words: `Pending`, `Approved`, `Denied`, ...
fn status_word(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A request as Purview's `ElevatedAccessRequest` object.
fn request_object(v: &Value) -> Object {
    let task = match (text(v, "task"), text(v, "role")) {
        (t, _) if !t.is_empty() => t,
        (_, r) if !r.is_empty() => format!("role:{r}"),
        _ => String::new(),
    };
    let duration = crate::policy::parse_duration(&text(v, "duration"))
        .map(|d| hours_text(d.as_secs()))
        .unwrap_or_else(|_| text(v, "duration"));
    let status = text(v, "status");
    let expires = if status == "pending" {
        text(v, "pending_expires_at")
    } else {
        v.get("grant").map(|g| text(g, "exp")).unwrap_or_default()
    };
    Object {
        props: vec![
            ("RequestId".into(), text(v, "id")),
            ("Requestor".into(), text(v, "requester")),
            ("Task".into(), task),
            ("Reason".into(), text(v, "reason")),
            ("DurationHours".into(), duration),
            ("RequestStatus".into(), status_word(&status)),
            ("ApprovalPolicy".into(), text(v, "rule")),
            ("ApproverGroup".into(), text(v, "approvers")),
            ("CreatedDate".into(), text(v, "created_at")),
            ("ExpirationTime".into(), expires),
            ("DecidedBy".into(), text(v, "decided_by")),
            ("Comment".into(), text(v, "comment")),
            ("Ticket".into(), text(v, "ticket")),
        ],
        table: vec![
            "RequestId",
            "Requestor",
            "Task",
            "DurationHours",
            "RequestStatus",
        ],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_take_purview_shape() {
        let o = request_object(&json!({
            "id": "r1", "requester": "alice", "task": "New-MoveRequest", "duration": "4h",
            "status": "approved", "rule": "mailbox-moves", "approvers": ["mbmanagers"],
            "grant": {"exp": "2026-01-01T04:00:00Z"}, "reason": "move"
        }));
        assert_eq!(o.get("RequestStatus"), Some("Approved"));
        assert_eq!(o.get("DurationHours"), Some("4"));
        assert_eq!(o.get("ApproverGroup"), Some("mbmanagers"));
        assert_eq!(o.get("ExpirationTime"), Some("2026-01-01T04:00:00Z"));
        assert_eq!(hours_text(5400), "1.5");
        assert_eq!(task_name("exchange\\New-MoveRequest"), "New-MoveRequest");
        assert_eq!(
            task_name("Other\\New-MoveRequest"),
            "Other\\New-MoveRequest"
        );
    }
}
