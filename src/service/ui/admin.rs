//! Pages for global admins: the audit log (search and verify verdict), the policies in force
//! with their lint findings, locks and users. Read-only: changes stay with the CLI and the API.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::html::{h, page, value};
use super::{failed, html, to_signin, Ctx, Signed, Ui};
use crate::audit::chain::Record;
use crate::audit::search::{parse_decision, parse_time, search, Filter};
use crate::service::error::ApiError;

/// Most hits shown on one page (newest first).
const MAX_HITS: usize = 200;

/// The signed-in global admin, or the page to answer instead.
async fn admin(ui: &Ui, ctx: &Ctx) -> Result<Signed, Response> {
    let Some(signed) = ui.signed(ctx).await else {
        return Err(to_signin());
    };
    if !signed.who.is_global_admin() {
        let e = ApiError::forbidden(
            "not_allowed",
            "this page is for global admins; ask one, or use the CLI",
        );
        return Err(failed(&signed, &e, "/ui/"));
    }
    Ok(signed)
}

fn show(signed: &Signed, title: &str, body: &str) -> Response {
    html(
        StatusCode::OK,
        page(title, Some((&signed.who, &signed.csrf)), None, body),
    )
}

/// The filters of `jitsh audit search`, as query parameters.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    user: Option<String>,
    task: Option<String>,
    param: Option<String>,
    rule: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
    session: Option<String>,
    request: Option<String>,
    /// `1`/`true`/`on`: only sessions whose review is open.
    unreviewed: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl AuditQuery {
    fn filter(&self) -> Result<Filter, String> {
        let time = |t: &Option<String>| given(t).as_deref().map(parse_time).transpose();
        Ok(Filter {
            user: given(&self.user),
            task: given(&self.task),
            param: given(&self.param).map(|p| match p.split_once('=') {
                Some((n, v)) => (n.trim_start_matches('-').to_owned(), Some(v.to_owned())),
                None => (p.trim_start_matches('-').to_owned(), None),
            }),
            rule: given(&self.rule),
            decision: given(&self.decision)
                .as_deref()
                .map(parse_decision)
                .transpose()
                .map_err(|e| e.to_string())?,
            since: time(&self.since).map_err(|e| e.to_string())?,
            until: time(&self.until).map_err(|e| e.to_string())?,
            session: given(&self.session),
            request: given(&self.request),
            unreviewed: matches!(
                given(&self.unreviewed).as_deref(),
                Some("1" | "true" | "on" | "yes")
            ),
        })
    }
}

/// The log's records and its verify verdict, as one sentence.
pub(super) fn read_log(
    state: &Path,
    chain: Option<&crate::service::postgres::PgStore>,
) -> Result<(Vec<Record>, String), String> {
    if let Some(pg) = chain {
        return read_chain(state, pg);
    }
    let dir = state.join("audit");
    let paths: Vec<PathBuf> =
        crate::audit::log::log_files(&dir).map_err(|e| format!("the audit log: {e}"))?;
    let mut records = Vec::new();
    let mut unreadable = 0usize;
    crate::audit::read::for_each_record(&paths, |_, r| match r {
        Ok(r) => records.push(r),
        Err(_) => unreadable += 1,
    })
    .map_err(|e| e.to_string())?;
    let verdict = match std::fs::read_to_string(state.join("signing.pub"))
        .map_err(|e| e.to_string())
        .and_then(|t| crate::audit::keys::parse_trust_key(&t).map_err(|e| e.to_string()))
    {
        Err(e) => format!("not verified: the service's key could not be read ({e})"),
        Ok(key) => {
            let options = crate::audit::VerifyOptions {
                allow_unsealed: true,
            };
            match crate::audit::read::verify_paths(&paths, &[key], options) {
                Ok(Ok(s)) => format!(
                    "intact: {} records, {} checkpoints, last seq {}{}",
                    s.records,
                    s.checkpoints,
                    s.last_seq,
                    if s.unsealed > 0 {
                        format!(" ({} not yet covered by a checkpoint)", s.unsealed)
                    } else {
                        String::new()
                    }
                ),
                Ok(Err(f)) => format!("BAD: {f}"),
                Err(e) => format!("not verified: {e}"),
            }
        }
    };
    let verdict = if unreadable > 0 {
        format!("{verdict}; {unreadable} lines are not records")
    } else {
        verdict
    };
    Ok((records, verdict))
}

/// The deployment's chain in PostgreSQL, verified with the key in `STATE/signing.pub` (the
/// deployment's, which the replica wrote there at start).
fn read_chain(
    state: &Path,
    pg: &crate::service::postgres::PgStore,
) -> Result<(Vec<Record>, String), String> {
    let mut lines = Vec::new();
    pg.export_chain(&mut lines)
        .map_err(|e| format!("the audit chain: {e}"))?;
    let mut records = Vec::new();
    let mut unreadable = 0usize;
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match crate::audit::chain::decode(line) {
            Ok((r, _)) => records.push(r),
            Err(_) => unreadable += 1,
        }
    }
    let verdict = match std::fs::read_to_string(state.join("signing.pub"))
        .map_err(|e| e.to_string())
        .and_then(|t| crate::audit::keys::parse_trust_key(&t).map_err(|e| e.to_string()))
    {
        Err(e) => format!("not verified: the service's key could not be read ({e})"),
        Ok(key) => {
            let options = crate::audit::VerifyOptions {
                allow_unsealed: true,
            };
            match pg.verify_chain(&[key], options) {
                Ok(crate::service::pg_chain::Verdict::Intact(s)) => format!(
                    "intact (PostgreSQL chain): {} records, {} checkpoints, last seq {}{}",
                    s.records,
                    s.checkpoints,
                    s.last_seq,
                    if s.unsealed > 0 {
                        format!(" ({} not yet covered by a checkpoint)", s.unsealed)
                    } else {
                        String::new()
                    }
                ),
                Ok(crate::service::pg_chain::Verdict::Bad(f)) => format!("BAD: {f}"),
                Err(e) => format!("not verified: {e}"),
            }
        }
    };
    let verdict = if unreadable > 0 {
        format!("{verdict}; {unreadable} records do not decode")
    } else {
        verdict
    };
    Ok((records, verdict))
}

pub(super) async fn audit(
    State(ui): State<Ui>,
    ctx: Ctx,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let signed = match admin(&ui, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let field = |id: &str, label: &str, v: &Option<String>, hint: &str| {
        format!(
            r#"<label for="{id}">{label}</label><input type="text" id="{id}" name="{id}" value="{}" placeholder="{hint}">"#,
            h(v.as_deref().unwrap_or(""))
        )
    };
    let mut body = String::from(r#"<form method="get" action="/ui/audit" class="card">"#);
    for (id, label, v, hint) in [
        ("user", "User", &q.user, ""),
        ("task", "Task", &q.task, "Set-Mailbox"),
        ("param", "Parameter", &q.param, "Identity or Identity=kim"),
        ("rule", "Rule", &q.rule, ""),
        (
            "decision",
            "Decision",
            &q.decision,
            "allow, approval or deny",
        ),
        ("since", "Since", &q.since, "2026-01-02 or RFC 3339"),
        ("until", "Until", &q.until, "2026-01-02 or RFC 3339"),
        ("session", "Session", &q.session, ""),
        ("request", "Request", &q.request, "r-..."),
    ] {
        body.push_str(&field(id, label, v, hint));
    }
    body.push_str(r#"<button type="submit">Search</button></form>"#);
    let filter = match q.filter() {
        Ok(f) => f,
        Err(e) => {
            return failed(
                &signed,
                &ApiError::bad_request("invalid_filter", e),
                "/ui/audit",
            )
        }
    };
    let Some(state) = ctx.state.clone() else {
        return show(
            &signed,
            "Audit",
            "<p>This service has no audit log to show.</p>",
        );
    };
    let chain = ctx.chain.clone();
    let read = tokio::task::spawn_blocking(move || {
        read_log(&state, chain.as_deref()).map(|(records, verdict)| {
            let hits = search(&records, &filter);
            (records, verdict, hits)
        })
    })
    .await;
    let (records, verdict, hits) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return failed(&signed, &ApiError::internal(e), "/ui/audit"),
        Err(_) => {
            return failed(
                &signed,
                &ApiError::internal("the audit reader stopped"),
                "/ui/audit",
            )
        }
    };
    let _ = write!(
        body,
        r#"<p><strong>Log:</strong> <span class="verdict">{}</span></p><h2>{} records match{}</h2>"#,
        h(&verdict),
        hits.len(),
        if hits.len() > MAX_HITS {
            format!(" (the newest {MAX_HITS} shown)")
        } else {
            String::new()
        }
    );
    body.push_str(
        "<table><caption class=\"hint\">Newest first</caption><thead><tr><th scope=\"col\">Seq</th><th scope=\"col\">Time</th><th scope=\"col\">User</th><th scope=\"col\">Action</th><th scope=\"col\">Subject</th><th scope=\"col\">Outcome</th><th scope=\"col\">Details</th></tr></thead><tbody>",
    );
    for hit in hits.iter().rev().take(MAX_HITS) {
        let Some(r) = records.get(hit.index) else {
            continue;
        };
        let request = crate::audit::search::request_of(r)
            .filter(|q| !q.is_empty() && q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .map(|q| format!(r#" <a href="/ui/audit?request={q}">request {q}</a>"#))
            .unwrap_or_default();
        // A gate decision links to its recording at the decision's marker.
        let recording = match r.details.get("marker").and_then(Value::as_u64) {
            Some(m)
                if r.action == crate::audit::search::GATE_DECISION
                    && super::player::valid_session(&r.subject) =>
            {
                format!(
                    r#" <a href="/ui/sessions/{}?marker={m}">recording at marker {m}</a>"#,
                    r.subject
                )
            }
            _ => String::new(),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{request}{recording}</td><td>{}</td><td>{}</td></tr>",
            r.seq,
            h(&r.time),
            h(&r.actor),
            h(&r.action),
            h(&r.subject),
            h(&r.outcome),
            value(Some(&Value::Object(r.details.clone()))),
        );
    }
    body.push_str("</tbody></table>");
    show(&signed, "Audit", &body)
}

pub(super) async fn policies(State(ui): State<Ui>, ctx: Ctx) -> Response {
    let signed = match admin(&ui, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let set = match ui.app.service.policy_set() {
        Ok(s) => s,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let who = signed.who.clone();
    let default_group = ui
        .app
        .run(move |s, _| s.control_view(&who))
        .await
        .ok()
        .and_then(|c| {
            c.get("admin_group")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let lint_set = Arc::clone(&set);
    let findings = tokio::task::spawn_blocking(move || {
        let catalog = crate::catalog::Catalog::builtin();
        lint_set.lint(&|name: &str| catalog.command(name).is_some())
    })
    .await
    .unwrap_or_default();
    let mut body = String::from("<h2>Lint findings</h2>");
    if findings.is_empty() {
        body.push_str("<p>No findings.</p>");
    } else {
        body.push_str("<ul>");
        for f in &findings {
            let _ = write!(
                body,
                "<li><strong>{}</strong> ({}): {}</li>",
                h(&f.rule),
                h(&f.kind),
                h(&f.message)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Rules</h2><table><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Effect</th><th scope=\"col\">Tasks</th><th scope=\"col\">Approvers</th><th scope=\"col\">Requesters</th><th scope=\"col\">Longest</th><th scope=\"col\">Approvals</th></tr></thead><tbody>");
    for r in set.rules() {
        let list = |v: &[String]| {
            if v.is_empty() {
                "—".to_owned()
            } else {
                v.iter().map(|s| h(s)).collect::<Vec<_>>().join(", ")
            }
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{:?}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            h(&r.id),
            r.effect,
            list(&r.tasks),
            if r.except.is_empty() {
                String::new()
            } else {
                format!(" except {}", list(&r.except))
            },
            if r.effect == crate::policy::Effect::Approval
                && r.approval == crate::policy::ApprovalMode::Manual
                && r.approvers.is_empty()
            {
                // Approved by the default approver group (Enable-ElevatedAccessControl).
                match &default_group {
                    Some(g) => format!("{} (default approver group)", h(g)),
                    None => "none: no default approver group is set".to_owned(),
                }
            } else {
                list(&r.approvers)
            },
            list(&r.requesters),
            r.max_duration
                .map(crate::service::format_duration)
                .unwrap_or_else(|| "—".into()),
            r.min_approvals.max(1),
        );
    }
    body.push_str("</tbody></table>");
    show(&signed, "Policies", &body)
}

pub(super) async fn locks(State(ui): State<Ui>, ctx: Ctx) -> Response {
    let signed = match admin(&ui, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let locks = match ui.app.run(|s, now| s.locks(now)).await {
        Ok(v) => v,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let items = locks.locks;
    let mut body = String::new();
    if items.is_empty() {
        body.push_str("<p>No locks are in force.</p>");
    } else {
        body.push_str("<table><thead><tr><th scope=\"col\">Scope</th><th scope=\"col\">Reason</th><th scope=\"col\">Set by</th><th scope=\"col\">Since</th><th scope=\"col\">Until</th></tr></thead><tbody>");
        for l in &items {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                h(&l.scope),
                h(&l.reason),
                h(&l.set_by),
                h(&l.set_at),
                l.expires_at.as_deref().map_or_else(|| "—".to_owned(), h),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(r#"<p class="hint">Set and clear locks with <code>jitsh lock</code>.</p>"#);
    show(&signed, "Locks", &body)
}

pub(super) async fn users(State(ui): State<Ui>, ctx: Ctx) -> Response {
    let signed = match admin(&ui, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let users = match ui.app.run(|s, _| s.users()).await {
        Ok(v) => v,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let mut body = String::from("<table><thead><tr><th scope=\"col\">User</th><th scope=\"col\">Email</th><th scope=\"col\">Person</th><th scope=\"col\">Groups and roles</th></tr></thead><tbody>");
    for u in &users {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            h(&u.name),
            u.email.as_deref().map(h).unwrap_or_else(|| "—".into()),
            h(&u.person),
            h(&u.memberships.join(", ")),
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(r#"<p class="hint">Add users with <code>jitsh user add</code>.</p>"#);
    show(&signed, "Users", &body)
}
