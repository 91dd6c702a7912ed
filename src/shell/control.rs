//! What the gate shows of the service's elevated access control (`GET /v1/control`): a line in
//! the session's banner, in `:status` and when it changes. Display only: whatever the service
//! (or anyone between) says here, every privileged line still needs a verified token.

use reqwest::Method;
use serde_json::Value;

use super::service::Service;

/// The notice for the control state the service reports (`Some(None)`: nothing to say), or
/// `None` when the service did not answer.
pub async fn notice(service: &Service) -> Option<Option<String>> {
    let v = service.api(Method::GET, "/v1/control", None).await.ok()?;
    Some(notice_for(&v))
}

/// The notice for one `GET /v1/control` answer.
pub fn notice_for(v: &Value) -> Option<String> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let mut parts = Vec::new();
    if v.get("approval_control").and_then(Value::as_str) == Some("disabled") {
        parts.push(format!(
            "APPROVAL CONTROL IS DISABLED (by {} since {}): requests under approval rules are granted at once and audited as \"approval control disabled\"; each privileged line still needs its token (New-ElevatedAccessRequest). Deny rules still deny.",
            text("disabled_by"),
            text("disabled_at")
        ));
    }
    if v.get("system_account").and_then(Value::as_bool) == Some(true) {
        parts.push(
            "this is a system account: its requests are granted without approval, and every session is recorded, audited and reviewed by the admin group.".to_string(),
        );
    }
    if parts.is_empty() {
        None
    } else {
        Some(crate::text::escape(&parts.join(" ")).into_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_disabled_control_or_a_system_account_is_announced() {
        assert_eq!(notice_for(&json!({"approval_control": "enabled"})), None);
        assert_eq!(notice_for(&json!({})), None);
        let n = notice_for(
            &json!({"approval_control": "disabled", "disabled_by": "root",
            "disabled_at": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert!(
            n.starts_with("APPROVAL CONTROL IS DISABLED (by root"),
            "{n}"
        );
        // What the service sends is escaped before it reaches a terminal.
        let n = notice_for(&json!({"approval_control": "disabled", "disabled_by": "r\u{1b}[2J"}))
            .unwrap();
        assert!(!n.contains('\u{1b}'), "{n}");
        assert!(notice_for(&json!({"system_account": true}))
            .unwrap()
            .contains("system account"));
    }
}
