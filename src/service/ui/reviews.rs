//! The reviews of system accounts' sessions (`/ui/reviews`): the elevated access control in
//! force, the open reviews with what ran, and *Acknowledge* for members of the admin group.
//! The same workflow as `jitsh review` and the API decides who may see and acknowledge.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::Value;

use super::html::{csrf_field, h, page, value};
use super::{failed, html, redirect, refused, to_signin, Ctx, Ui};

#[derive(Debug, Deserialize)]
pub(super) struct AckForm {
    csrf: Option<String>,
    comment: Option<String>,
}

pub(super) async fn reviews(State(ui): State<Ui>, ctx: Ctx) -> Response {
    let Some(signed) = ui.signed(&ctx).await else {
        return to_signin();
    };
    let who = signed.who.clone();
    let listed = ui
        .app
        .run(move |s, _| {
            let control = s.control_view(&who)?;
            let open = s.list_reviews(&who, true, None)?;
            let detailed: Vec<Value> = open
                .get("reviews")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("id").and_then(Value::as_i64))
                .map(|id| s.show_review(&who, id))
                .collect::<Result<_, _>>()?;
            Ok((control, detailed))
        })
        .await;
    let (control, items) = match listed {
        Ok(v) => v,
        Err(e) => return failed(&signed, &e, "/ui/"),
    };
    let mut body = String::from("<h2>Elevated access control</h2><dl>");
    let disabled = control.get("approval_control").and_then(Value::as_str) == Some("disabled");
    let _ = write!(
        body,
        "<dt>Approval control</dt><dd>{}</dd><dt>Default approver group</dt><dd>{}</dd><dt>System accounts</dt><dd>{}</dd></dl>",
        if disabled {
            format!(
                "<strong>disabled</strong> by {} since {}: requests under approval rules are granted at once",
                value(control.get("disabled_by")),
                value(control.get("disabled_at"))
            )
        } else {
            "enabled".to_owned()
        },
        value(control.get("admin_group")),
        value(control.get("system_accounts")),
    );
    body.push_str("<h2>Open reviews</h2>");
    if items.is_empty() {
        body.push_str("<p>No open reviews.</p>");
    }
    for r in &items {
        let id = r.get("id").and_then(Value::as_i64).unwrap_or_default();
        let session = r.get("session").and_then(Value::as_str).unwrap_or_default();
        // Linked only when the id is safe in a path (the gate chose it).
        let session_html = if super::player::valid_session(session) {
            format!(r#"<a href="/ui/sessions/{session}">{}</a>"#, h(session))
        } else {
            h(session)
        };
        let _ = write!(
            body,
            r#"<section class="review card" id="review-{id}"><h3>Review {id}: {}</h3><dl class="request"><dt>Session</dt><dd>{session_html}</dd><dt>Started</dt><dd>{}</dd><dt>Lines</dt><dd>{}</dd></dl><ol class="ran">"#,
            value(r.get("account")),
            value(r.get("started_at")),
            value(r.get("commands")),
        );
        for line in r.get("ran").and_then(Value::as_array).into_iter().flatten() {
            let _ = write!(body, "<li><code>{}</code></li>", value(Some(line)));
        }
        let _ = write!(
            body,
            r#"</ol><form method="post" action="/ui/reviews/{id}/ack">{}<label for="ack-{id}">Comment</label> <input type="text" id="ack-{id}" name="comment" maxlength="2000"> <button type="submit">Acknowledge</button></form></section>"#,
            csrf_field(&signed.csrf),
        );
    }
    body.push_str(r#"<p class="hint">Also <code>jitsh review list|show|ack</code>; <code>jitsh audit search --unreviewed</code> lists the records of open reviews.</p>"#);
    html(
        StatusCode::OK,
        page("Reviews", Some((&signed.who, &signed.csrf)), None, &body),
    )
}

pub(super) async fn ack(
    State(ui): State<Ui>,
    ctx: Ctx,
    Path(id): Path<String>,
    form: Result<Form<AckForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let signed = match ui.changing(&ctx, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return refused(StatusCode::NOT_FOUND, "No such review.");
    };
    let who = signed.who.clone();
    match ui
        .app
        .run(move |s, now| s.ack_review(&who, id, form.comment, now))
        .await
    {
        Ok(_) => redirect("/ui/reviews"),
        Err(e) => failed(&signed, &e, "/ui/reviews"),
    }
}
