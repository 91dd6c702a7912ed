//! HTML for the web UI, built with `format!`. Every value that did not come from this file goes
//! through [`h`]: control and bidi characters are first written as visible escapes (the same
//! [`crate::text::escape`] the CLI and mail use), then `& < > " '` become entities, so no value
//! can open a tag, leave an attribute or redraw the text around it.

use std::fmt::Write as _;

use serde_json::Value;

use crate::service::directory::Principal;

/// `text` safe for HTML text and for a double- or single-quoted attribute value.
pub fn h(text: &str) -> String {
    let shown = crate::text::escape(text);
    let mut out = String::with_capacity(shown.len() + 8);
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as text for a page: strings as themselves, null as a dash, the rest as JSON.
pub fn value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => h(s),
        Some(Value::Array(items)) if items.is_empty() => "—".to_owned(),
        Some(Value::Object(map)) if map.is_empty() => "—".to_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| value(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{}={}", h(k), value(Some(v))))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => h(&other.to_string()),
    }
}

/// A hidden CSRF field for a form.
pub(crate) fn csrf_field(csrf: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, h(csrf))
}

/// A whole page: header with navigation (when signed in), an optional notice, the body.
pub fn page(
    title: &str,
    who: Option<(&Principal, &str)>,
    notice: Option<&str>,
    body: &str,
) -> String {
    let mut nav = String::new();
    if let Some((who, csrf)) = who {
        let _ = write!(
            nav,
            r#"<nav aria-label="Main"><ul>
<li><a href="/ui/approvals">Approvals</a></li>
<li><a href="/ui/requests">My requests</a></li>
<li><a href="/ui/sessions">Sessions</a></li>
<li><a href="/ui/reviews">Reviews</a></li>
{admin}</ul>
<form method="post" action="/ui/signout" class="signout">{}<span>Signed in as <strong>{}</strong></span> <button type="submit">Sign out</button></form>
</nav>"#,
            csrf_field(csrf),
            h(&who.name),
            admin = if who.is_global_admin() {
                r#"<li><a href="/ui/audit">Audit</a></li>
<li><a href="/ui/policies">Policies</a></li>
<li><a href="/ui/locks">Locks</a></li>
<li><a href="/ui/users">Users</a></li>
"#
            } else {
                ""
            },
        );
    }
    let notice = notice
        .map(|n| format!(r#"<p class="notice" role="alert">{}</p>"#, h(n)))
        .unwrap_or_default();
    format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · jitsh</title>
<link rel="stylesheet" href="/ui/assets/style.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/ui/">jitsh admin center</a>{nav}</header>
<main id="main">
<h1>{title}</h1>
{notice}{body}
</main>
</body>
</html>
"##,
        title = h(title),
    )
}

/// The fields of a request, as a definition list (what an approver decides on).
pub(crate) fn request_details(r: &Value) -> String {
    let mut out = String::from("<dl class=\"request\">");
    let target = match r.get("kind").and_then(Value::as_str) {
        Some("role") => ("Role", r.get("role")),
        _ => ("Task", r.get("task")),
    };
    let rows: [(&str, Option<&Value>); 13] = [
        ("Request", r.get("id")),
        ("Requester", r.get("requester")),
        target,
        ("Exact command", r.get("command")),
        ("Parameters", r.get("params")),
        ("Rule", r.get("rule")),
        ("Duration", r.get("duration")),
        ("Uses", r.get("uses")),
        ("Reason", r.get("reason")),
        ("Ticket", r.get("ticket")),
        ("Status", r.get("status")),
        ("Filed", r.get("created_at")),
        ("Pending until", r.get("pending_expires_at")),
    ];
    for (name, v) in rows {
        let shown = value(v);
        let shown = if name == "Exact command" && shown != "—" {
            format!("<code>{shown}</code>")
        } else {
            shown
        };
        let _ = write!(out, "<dt>{name}</dt><dd>{shown}</dd>");
    }
    let needed = r.get("min_approvals").and_then(Value::as_u64).unwrap_or(1);
    let votes: Vec<String> = r
        .get("approvals")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| {
                    let comment = v
                        .get("comment")
                        .and_then(Value::as_str)
                        .map(|c| format!(" — “{}”", h(c)))
                        .unwrap_or_default();
                    format!(
                        "{} at {}{comment}",
                        value(v.get("approver")),
                        value(v.get("at"))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let _ = write!(
        out,
        "<dt>Votes</dt><dd>{} of {needed}{}</dd>",
        votes.len(),
        if votes.is_empty() {
            String::new()
        } else {
            format!(": {}", votes.join("; "))
        }
    );
    if let Some(g) = r.get("grant").filter(|g| !g.is_null()) {
        let _ = write!(
            out,
            "<dt>Grant</dt><dd>{} until {} (token id {})</dd>",
            value(g.get("state")),
            value(g.get("exp")),
            value(g.get("jti"))
        );
    }
    if let Some(c) = r.get("comment").filter(|c| !c.is_null()) {
        let _ = write!(
            out,
            "<dt>Decision</dt><dd>{} by {}: {}</dd>",
            value(r.get("status")),
            value(r.get("decided_by")),
            value(Some(c))
        );
    }
    out.push_str("</dl>");
    out
}

/// The request id as a safe path segment (ids are `r-` and hex; anything else is refused
/// before it reaches a URL).
pub(crate) fn id_of(r: &Value) -> Option<&str> {
    r.get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

pub(crate) const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1b1b1b; --bg: #ffffff; --muted: #4a4a4a; --accent: #0b4f9c; --line: #c8c8c8; --warn: #8a1c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .5rem 1rem; border-bottom: 1px solid var(--line); background: #f3f5f8; }
.brand { font-weight: 700; color: var(--fg); text-decoration: none; }
nav { display: flex; flex: 1; align-items: center; gap: 1rem; }
nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; flex: 1; }
a { color: var(--accent); }
a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #f2a900; outline-offset: 2px; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
.notice { border-left: 4px solid var(--warn); background: #fdf0f0; color: var(--warn); padding: .5rem 1rem; }
.card { border: 1px solid var(--line); border-radius: 4px; padding: 1rem; margin: 1rem 0; }
dl.request { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 1rem; }
dt { font-weight: 600; color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code { background: #eef0f3; padding: 0 .25rem; }
label { display: block; font-weight: 600; margin-top: .75rem; }
input[type=text], input[type=password], input[type=number], select, textarea { width: 100%; padding: .4rem; font: inherit; border: 1px solid #767676; border-radius: 3px; }
button { font: inherit; padding: .4rem 1rem; margin: .5rem .5rem 0 0; border: 1px solid var(--accent); border-radius: 3px; background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
.signout { display: flex; align-items: center; gap: .5rem; margin: 0; }
.signout button { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: .3rem .5rem; vertical-align: top; }
.hint { color: var(--muted); font-size: .9rem; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .25rem .5rem; z-index: 1; }
.review { display: grid; gap: 1rem; }
ol.decisions { padding-left: 1.25rem; }
li.decision { border-left: 4px solid transparent; padding-left: .5rem; margin-bottom: .75rem; }
li.decision.current { border-left-color: #f2a900; background: #fff8e5; }
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn markup_and_screen_changing_characters_are_escaped() {
        for (input, expected) in [
            ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
            ("\" onfocus=\"x", "&quot; onfocus=&quot;x"),
            ("' autofocus '", "&#39; autofocus &#39;"),
            ("a&b", "a&amp;b"),
            (
                "Remove-Mailbox\rGet-Mailbox",
                "Remove-Mailbox\\rGet-Mailbox",
            ),
            ("x\u{202e}kcatta", "x\\u{202e}kcatta"),
            ("\u{1b}[2J<b>", "\\u{1b}[2J&lt;b&gt;"),
        ] {
            assert_eq!(h(input), expected, "{input:?}");
        }
    }

    #[test]
    fn request_fields_are_escaped_everywhere() {
        let r = serde_json::json!({
            "id": "r-1", "requester": "<i>eve</i>", "kind": "task", "task": "Remove-Mailbox",
            "command": "Remove-Mailbox -Identity x\r<script>", "params": {"<a>": "\"b\""},
            "rule": "r", "duration": "1h", "reason": "why\u{202e}", "approvals": [
                {"approver": "<bob>", "comment": "<ok>", "at": "t"}],
        });
        let out = request_details(&r);
        assert!(!out.contains("<script>") && !out.contains("<i>") && !out.contains("<bob>"));
        assert!(!out.contains("<a>") && !out.contains('\r') && !out.contains('\u{202e}'));
        assert!(out.contains("x\\r&lt;script&gt;"), "{out}");
    }

    #[test]
    fn ids_that_are_not_plain_are_not_linked() {
        assert_eq!(id_of(&serde_json::json!({"id": "r-0a"})), Some("r-0a"));
        for bad in ["", "r/../x", "r?x", "r\"x"] {
            assert_eq!(id_of(&serde_json::json!({ "id": bad })), None, "{bad}");
        }
    }
}
