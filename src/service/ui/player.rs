//! Session review: the sessions the audit log knows (from the gates' forwarded `session.*` and
//! `gate.decision` events), and a player for a recording with the gate's decisions beside it.
//!
//! Recordings stay on the gates; the service plays those copied into `STATE/recordings/`, named
//! `SESSION.cast`. The path in an audit record is never opened: it comes from a gate and names
//! a file on that machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::admin::read_log;
use super::html::{h, page, value};
use super::{failed, html, secure, to_signin, Ctx, Signed, Ui};
use crate::audit::chain::Record;
use crate::audit::decision;
use crate::audit::search::GATE_DECISION;
use crate::service::error::ApiError;

/// Largest recording served (a longer one is left to `jitsh replay`).
const MAX_CAST: u64 = 64 * 1024 * 1024;

pub(crate) const PLAYER_JS: &str =
    include_str!("../../../ui-assets/asciinema-player/asciinema-player.min.js");
pub(crate) const PLAYER_CSS: &str =
    include_str!("../../../ui-assets/asciinema-player/asciinema-player.css");
pub(crate) const PLAYER_LICENSE: &str = include_str!("../../../ui-assets/asciinema-player/LICENSE");
pub(crate) const GLUE_JS: &str = include_str!("../../../ui-assets/player.js");

/// A session id usable as a file name and in a URL: letters, digits, `-`, `_`, `.`, not
/// starting with a dot.
pub(super) fn valid_session(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// One session as the log tells it.
#[derive(Debug, Default)]
struct Summary {
    user: String,
    /// Every actor of the session's records (lowercase). Gates forward events under their user's
    /// credential, so a second actor means someone else wrote under this session id.
    actors: std::collections::BTreeSet<String>,
    start: Option<String>,
    end: Option<String>,
    decisions: usize,
    refusals: usize,
}

fn summaries(records: &[Record]) -> BTreeMap<String, Summary> {
    let mut out: BTreeMap<String, Summary> = BTreeMap::new();
    for r in records {
        if !(r.action.starts_with("session.") || r.action == GATE_DECISION) {
            continue;
        }
        let s = out.entry(r.subject.clone()).or_default();
        if s.user.is_empty() {
            s.user = r.actor.clone();
        }
        s.actors.insert(r.actor.to_lowercase());
        match r.action.as_str() {
            "session.start" => {
                s.user = r.actor.clone();
                s.start = Some(decision::gate_time(r).to_owned());
            }
            "session.end" => s.end = Some(decision::gate_time(r).to_owned()),
            _ => {
                s.decisions += 1;
                if r.outcome == "deny" {
                    s.refusals += 1;
                }
            }
        }
    }
    out
}

fn duration(start: Option<&str>, end: Option<&str>) -> String {
    use crate::audit::search::parse_time;
    match (start.map(parse_time), end.map(parse_time)) {
        (Some(Ok(a)), Some(Ok(b))) if b >= a => crate::service::format_duration(
            std::time::Duration::from_secs(u64::try_from((b - a).num_seconds()).unwrap_or(0)),
        ),
        (Some(_), None) => "not ended".to_owned(),
        _ => "—".to_owned(),
    }
}

/// Whether `who` may review a session: a global admin any; a user one whose every record is
/// theirs (a session id others also wrote under is left to global admins).
fn may_review(signed: &Signed, s: &Summary) -> bool {
    signed.who.is_global_admin()
        || (s.actors.len() == 1 && s.actors.contains(&signed.who.name.to_lowercase()))
}

async fn load(ctx: &Ctx) -> Result<Vec<Record>, ApiError> {
    let Some(state) = ctx.state.clone() else {
        return Ok(Vec::new());
    };
    let chain = ctx.chain.clone();
    tokio::task::spawn_blocking(move || {
        read_log(&state, chain.as_deref()).map(|(records, _)| records)
    })
    .await
    .map_err(|_| ApiError::internal("the audit reader stopped"))?
    .map_err(ApiError::internal)
}

pub(super) async fn sessions(State(ui): State<Ui>, ctx: Ctx) -> Response {
    let Some(signed) = ui.signed(&ctx).await else {
        return to_signin();
    };
    let records = match load(&ctx).await {
        Ok(r) => r,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let mut rows: Vec<(String, Summary)> = summaries(&records)
        .into_iter()
        .filter(|(id, s)| valid_session(id) && may_review(&signed, s))
        .collect();
    rows.sort_by(|a, b| b.1.start.cmp(&a.1.start));
    let mut body = String::new();
    if rows.is_empty() {
        body.push_str("<p>No sessions recorded.</p>");
    } else {
        body.push_str("<table><thead><tr><th scope=\"col\">Session</th><th scope=\"col\">User</th><th scope=\"col\">Start</th><th scope=\"col\">Duration</th><th scope=\"col\">Decisions</th><th scope=\"col\">Refusals</th></tr></thead><tbody>");
        for (id, s) in &rows {
            let _ = write!(
                body,
                r#"<tr><td><a href="/ui/sessions/{id}">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                h(&s.user),
                h(s.start.as_deref().unwrap_or("—")),
                duration(s.start.as_deref(), s.end.as_deref()),
                s.decisions,
                s.refusals,
            );
        }
        body.push_str("</tbody></table>");
    }
    html(
        StatusCode::OK,
        page("Sessions", Some((&signed.who, &signed.csrf)), None, &body),
    )
}

fn cast_path(ctx: &Ctx, id: &str) -> Option<PathBuf> {
    let state = ctx.state.as_ref()?;
    valid_session(id).then(|| state.join("recordings").join(format!("{id}.cast")))
}

/// The decisions of one session, as list items with a jump button each.
fn decision_items(records: &[&Record]) -> String {
    let mut out = String::new();
    for (i, r) in records.iter().enumerate() {
        let marker = r.details.get("marker").and_then(Value::as_u64).unwrap_or(0);
        let rules: Vec<String> = decision::invocations(r)
            .into_iter()
            .filter_map(|i| i.get("rule").and_then(Value::as_str))
            .map(h)
            .collect();
        let tokens: Vec<String> = decision::tokens(r).into_iter().map(h).collect();
        let tokens = if tokens.is_empty() {
            "—".to_owned()
        } else {
            tokens.join(", ")
        };
        let rule = if rules.is_empty() {
            value(r.details.get("rule"))
        } else {
            rules.join(", ")
        };
        let request = crate::audit::search::request_of(r)
            .filter(|q| q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .map(|q| format!(r#"<a href="/ui/audit?request={q}">{q}</a>"#))
            .unwrap_or_else(|| "—".to_owned());
        let jump = if marker > 0 {
            format!(
                r#"<button type="button" data-marker="{marker}" aria-describedby="d-{i}">Jump to marker {marker}</button>"#
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"<li class="decision" id="d-{i}"><strong>{}</strong> at {}: <code>{}</code>
<dl class="request"><dt>Rule</dt><dd>{rule}</dd><dt>Token</dt><dd>{tokens}</dd><dt>Request</dt><dd>{request}</dd><dt>Reason</dt><dd>{}</dd></dl>{jump}</li>"#,
            h(&r.outcome),
            h(decision::gate_time(r)),
            value(r.details.get("line")),
            value(r.details.get("reason")),
        );
    }
    out
}

/// `?marker=N`: start the player at the session's Nth marker.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct At {
    marker: Option<u32>,
}

pub(super) async fn session(
    State(ui): State<Ui>,
    ctx: Ctx,
    Path(id): Path<String>,
    at: Result<Query<At>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let start = at.ok().and_then(|Query(a)| a.marker).filter(|m| *m > 0);
    let Some(signed) = ui.signed(&ctx).await else {
        return to_signin();
    };
    let records = match load(&ctx).await {
        Ok(r) => r,
        Err(e) => return failed(&signed, &e, "/ui/sessions"),
    };
    let summary = summaries(&records).remove(&id);
    let Some(summary) = summary.filter(|s| valid_session(&id) && may_review(&signed, s)) else {
        return failed(
            &signed,
            &ApiError::not_found("no such session among those you may review"),
            "/ui/sessions",
        );
    };
    let decisions: Vec<&Record> = records
        .iter()
        .filter(|r| r.action == GATE_DECISION && r.subject == id)
        .collect();
    let recorded = cast_path(&ctx, &id).is_some_and(|p| p.is_file());
    let player = if recorded {
        format!(
            r#"<div id="player" class="player" data-src="/ui/sessions/{id}/cast"{start} role="region" aria-label="Recording of session {id}"></div>
<p id="jumped" class="hint" role="status"></p>
<p class="hint">The player needs JavaScript; the decisions below are listed without it.</p>"#,
            start = start
                .map(|m| format!(r#" data-start-marker="{m}""#))
                .unwrap_or_default(),
        )
    } else {
        format!(
            r#"<p class="notice">No recording of this session on the service. Copy it to <code>STATE/recordings/{id}.cast</code>, or play it where it was made with <code>jitsh replay</code>.</p>"#
        )
    };
    let body = format!(
        r#"<p>{user}, from {start}, {duration}: {n} decisions, {refused} refused.</p>
<div class="review">{player}
<section aria-labelledby="decisions"><h2 id="decisions">Gate decisions</h2><ol class="decisions">{items}</ol></section></div>"#,
        user = h(&summary.user),
        start = h(summary.start.as_deref().unwrap_or("—")),
        duration = duration(summary.start.as_deref(), summary.end.as_deref()),
        n = summary.decisions,
        refused = summary.refusals,
        items = decision_items(&decisions),
    );
    let mut response = html(
        StatusCode::OK,
        page_with_player(&format!("Session {id}"), &signed, &body, recorded),
    );
    if recorded {
        // The player compiles its terminal emulator from WebAssembly and sets inline styles;
        // scripts still come only from this service.
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; font-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    response
}

/// A page that loads the player's stylesheet and scripts (external files only).
fn page_with_player(title: &str, signed: &Signed, body: &str, player: bool) -> String {
    let out = page(title, Some((&signed.who, &signed.csrf)), None, body);
    if !player {
        return out;
    }
    out.replacen(
        "</head>",
        r#"<link rel="stylesheet" href="/ui/assets/asciinema-player.css">
<script src="/ui/assets/asciinema-player.min.js" defer></script>
<script src="/ui/assets/player.js" defer></script>
</head>"#,
        1,
    )
}

pub(super) async fn cast(State(ui): State<Ui>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let Some(signed) = ui.signed(&ctx).await else {
        return to_signin();
    };
    let records = match load(&ctx).await {
        Ok(r) => r,
        Err(e) => return failed(&signed, &e, "/ui/sessions"),
    };
    let allowed = summaries(&records)
        .get(&id)
        .is_some_and(|s| may_review(&signed, s));
    let path = cast_path(&ctx, &id).filter(|_| allowed);
    let Some(path) = path else {
        return failed(
            &signed,
            &ApiError::not_found("no such recording among those you may review"),
            "/ui/sessions",
        );
    };
    let read = tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&path)?;
        if meta.len() > MAX_CAST {
            return Err(std::io::Error::other(
                "the recording is too large to play here; use `jitsh replay`",
            ));
        }
        std::fs::read(&path)
    })
    .await;
    match read {
        Ok(Ok(bytes)) => {
            secure(([(header::CONTENT_TYPE, "application/x-asciicast")], bytes).into_response())
        }
        Ok(Err(e)) => failed(
            &signed,
            &ApiError::not_found(format!("the recording could not be read: {e}")),
            "/ui/sessions",
        ),
        Err(_) => failed(
            &signed,
            &ApiError::internal("the recording reader stopped"),
            "/ui/sessions",
        ),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = secure(([(header::CONTENT_TYPE, content_type)], body).into_response());
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}

pub(super) async fn player_js() -> Response {
    asset("text/javascript; charset=utf-8", PLAYER_JS)
}

pub(super) async fn player_css() -> Response {
    asset("text/css; charset=utf-8", PLAYER_CSS)
}

pub(super) async fn glue_js() -> Response {
    asset("text/javascript; charset=utf-8", GLUE_JS)
}

pub(super) async fn license() -> Response {
    asset("text/plain; charset=utf-8", PLAYER_LICENSE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn session_ids_never_name_another_file() {
        for ok in ["s-1", "2026-01-02T03-04-05Z-ab12", "a.b_c"] {
            assert!(valid_session(ok), "{ok}");
        }
        for bad in [
            "", "../x", "..", ".hidden", "a/b", "a\\b", "a b", "a%2f", "a\0",
        ] {
            assert!(!valid_session(bad), "{bad:?}");
        }
        assert!(!valid_session(&"a".repeat(101)));
    }
}
