//! Purview's elevated access control: `Enable-ElevatedAccessControl -AdminGroup -SystemAccounts`
//! and `Disable-ElevatedAccessControl` (global admins only, audited, announced to the admin
//! group), and the reviews of system accounts' sessions (acknowledged by the admin group).
//!
//! Disabling approval control never opens a new way in: approval rules then grant at once
//! (tokens are still issued, every step audited as "approval control disabled"), deny rules
//! still deny, and gates still require a token. Gates read the state only to show it.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{event, person_of, require_admin, rfc3339, ApiError, Principal, Service};
use crate::service::directory::{valid_name, Directory};
use crate::service::store::{Control, ControlChange, Notification, Review, StoreError};
use crate::text::escape;

/// Most reviews one listing shows.
const MAX_REVIEWS: u32 = 500;
/// Most system accounts.
const MAX_SYSTEM_ACCOUNTS: usize = 100;
const MAX_COMMENT: usize = 2000;

/// `POST /v1/control/enable`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableBody {
    /// The default approver group; unchanged when absent.
    pub admin_group: Option<String>,
    /// User names (or their email addresses, as Purview's UPNs); unchanged when absent.
    pub system_accounts: Option<Vec<String>>,
}

/// `POST /v1/control/disable`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    pub reason: Option<String>,
}

impl Service {
    /// The control as the caller may see it: its state and default approver group for everyone
    /// (gates show it), whether the caller is a system account, and the system accounts for
    /// global admins and the admin group.
    pub fn control_view(&self, who: &Principal) -> Result<Value, ApiError> {
        let c = self.store.control()?;
        let mut v = json!({
            "approval_control": if c.disabled.is_some() { "disabled" } else { "enabled" },
            "disabled_by": c.disabled.as_ref().map(|d| d.by.clone()),
            "disabled_at": c.disabled.as_ref().map(|d| rfc3339(d.at)),
            "admin_group": c.admin_group,
            "system_account": c.is_system_account(&who.name),
        });
        if who.is_global_admin() || in_admin_group(who, &c) {
            v["system_accounts"] = json!(c.system_accounts);
        }
        Ok(v)
    }

    /// Turn approval control on, optionally setting the default approver group and the system
    /// accounts (global admin only).
    pub fn enable_control(
        &self,
        who: &Principal,
        body: EnableBody,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        self.admin_for_control(who, "enable elevated access control")?;
        let dir = self.directory.read()?;
        // A control row edited outside the service is replaced, never kept: start afresh.
        let mut c = match self.store.control() {
            Ok(c) => c,
            Err(StoreError::ControlTampered) => {
                self.append(event(
                    "jitsh",
                    "store.tampered",
                    "approval-control",
                    "error",
                    json!({ "replaced_by": who.name }),
                ))
                .map_err(StoreError::from)?;
                Control::default()
            }
            Err(e) => return Err(e.into()),
        };
        let before = c.clone();
        if let Some(group) = body.admin_group {
            let group = group.trim().to_ascii_lowercase();
            if !valid_name(&group) {
                return Err(ApiError::bad_request(
                    "invalid_group",
                    format!(
                        "`{}` is not a group name; use letters, digits, `.`, `_` and `-`",
                        escape(&group)
                    ),
                ));
            }
            c.admin_group = Some(group);
        }
        if let Some(accounts) = body.system_accounts {
            c.system_accounts = system_accounts(&dir, &accounts)?;
        }
        let at = now.timestamp();
        let change = ControlChange {
            by: who.name.clone(),
            at,
        };
        c.disabled = None;
        c.changed = Some(change);
        self.store.set_control(&c, &mut |c| {
            self.append(event(
                &who.name,
                "control.enable",
                "approval-control",
                "ok",
                json!({
                    "admin_group": c.admin_group, "system_accounts": c.system_accounts,
                    "was_disabled": before.disabled.is_some(),
                }),
            ))?;
            Ok(self.admin_group_notes(
                &dir,
                c,
                "approval control is enabled",
                &format!(
                    "{} enabled elevated access control. Default approver group: {}. System accounts: {}.",
                    who.name,
                    c.admin_group.as_deref().unwrap_or("(none)"),
                    if c.system_accounts.is_empty() {
                        "(none)".to_owned()
                    } else {
                        c.system_accounts.join(", ")
                    }
                ),
            ))
        })?;
        self.control_view(who)
    }

    /// Turn approval control off: approval rules grant at once until it is enabled again
    /// (global admin only).
    pub fn disable_control(
        &self,
        who: &Principal,
        body: DisableBody,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        self.admin_for_control(who, "disable elevated access control")?;
        let reason = body
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason
            .as_deref()
            .is_some_and(|r| r.len() > MAX_COMMENT || r.chars().any(char::is_control))
        {
            return Err(ApiError::policy(
                "invalid_reason",
                format!("the reason must be one line of at most {MAX_COMMENT} bytes"),
            ));
        }
        let dir = self.directory.read()?;
        let mut c = self.store.control()?;
        if c.disabled.is_some() {
            return Err(ApiError::conflict(
                "already_disabled",
                "approval control is already disabled; Enable-ElevatedAccessControl turns it on",
            ));
        }
        let change = ControlChange {
            by: who.name.clone(),
            at: now.timestamp(),
        };
        c.disabled = Some(change.clone());
        c.changed = Some(change);
        self.store.set_control(&c, &mut |c| {
            self.append(event(
                &who.name,
                "control.disable",
                "approval-control",
                "ok",
                json!({ "reason": reason }),
            ))?;
            Ok(self.admin_group_notes(
                &dir,
                c,
                "approval control is DISABLED",
                &format!(
                    "{} disabled elevated access control: requests under approval rules are now granted at once (audited as \"approval control disabled\") until Enable-ElevatedAccessControl is run. Deny rules still deny.{}",
                    who.name,
                    reason
                        .as_deref()
                        .map(|r| format!(" Reason: {}", escape(r)))
                        .unwrap_or_default()
                ),
            ))
        })?;
        self.control_view(who)
    }

    /// Reviews of system accounts' sessions (global admins and the admin group).
    pub fn list_reviews(
        &self,
        who: &Principal,
        open_only: bool,
        limit: Option<u32>,
    ) -> Result<Value, ApiError> {
        let c = self.store.control()?;
        may_see_reviews(who, &c)?;
        let limit = limit.unwrap_or(100).clamp(1, MAX_REVIEWS);
        let items: Vec<Value> = self
            .store
            .reviews(open_only, limit)?
            .iter()
            .map(review_view)
            .collect();
        Ok(json!({ "reviews": items }))
    }

    /// One review with what ran (global admins and the admin group).
    pub fn show_review(&self, who: &Principal, id: i64) -> Result<Value, ApiError> {
        let c = self.store.control()?;
        may_see_reviews(who, &c)?;
        Ok(review_view(&self.store.review(id)?))
    }

    /// Acknowledge a review: a member of the admin group who is not the account under review
    /// (under any of their accounts). Every refusal is audited.
    pub fn ack_review(
        &self,
        who: &Principal,
        id: i64,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        let refused = |e: ApiError| {
            self.audit_refusal(
                &who.name,
                "review.refused",
                &id.to_string(),
                &e,
                json!({ "review": id }),
            );
            e
        };
        let c = self.store.control()?;
        let Some(group) = c.admin_group.clone() else {
            return Err(refused(ApiError::conflict(
                "no_admin_group",
                "no admin group is set, so nobody can acknowledge reviews; a global admin sets one with Enable-ElevatedAccessControl -AdminGroup GROUP",
            )));
        };
        if !in_admin_group(who, &c) {
            return Err(refused(ApiError::forbidden(
                "not_admin_group",
                format!("only members of the admin group `{group}` may acknowledge reviews"),
            )));
        }
        let review = self.store.review(id)?;
        let dir = self.directory.read()?;
        if review.account.eq_ignore_ascii_case(&who.name)
            || person_of(&dir, &review.account) == who.person
        {
            return Err(refused(ApiError::forbidden(
                "self_review",
                format!(
                    "review {id} is of `{}`'s session, an account of yours; another member of `{group}` must acknowledge it",
                    review.account
                ),
            )));
        }
        let comment = comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if comment
            .as_deref()
            .is_some_and(|c| c.len() > MAX_COMMENT || c.chars().any(char::is_control))
        {
            return Err(ApiError::policy(
                "invalid_comment",
                format!("the comment must be one line of at most {MAX_COMMENT} bytes"),
            ));
        }
        let review = self.store.ack_review(
            id,
            &who.name,
            comment.as_deref(),
            now.timestamp(),
            &mut |r| {
                self.append(event(
                    &who.name,
                    "review.ack",
                    &r.session,
                    "ok",
                    json!({ "review": r.id, "account": r.account, "comment": r.ack_comment,
                            "commands": r.commands }),
                ))?;
                Ok(Vec::new())
            },
        )?;
        Ok(review_view(&review))
    }

    fn admin_for_control(&self, who: &Principal, what: &str) -> Result<(), ApiError> {
        require_admin(who, what).inspect_err(|e| {
            self.audit_refusal(
                &who.name,
                "control.refused",
                "approval-control",
                e,
                json!({ "wanted": what }),
            );
        })
    }

    /// Mail to every member of the admin group with an address, and the webhook.
    fn admin_group_notes(
        &self,
        dir: &Directory,
        c: &Control,
        subject: &str,
        text: &str,
    ) -> Vec<Notification> {
        let mut notes = Vec::new();
        if self.email {
            let group: Vec<String> = c.admin_group.iter().cloned().collect();
            for member in dir.members_of(&group) {
                if let Some(email) = member.email {
                    notes.push(Notification {
                        channel: "email".into(),
                        recipient: email,
                        subject: format!("[jitsh] {subject}"),
                        body: format!("{text}\n"),
                    });
                }
            }
        }
        notes.extend(self.webhook_note(format!("jitsh: {text}")));
        notes
    }
}

fn in_admin_group(who: &Principal, c: &Control) -> bool {
    c.admin_group
        .as_ref()
        .is_some_and(|g| who.in_any(std::slice::from_ref(g)))
}

fn may_see_reviews(who: &Principal, c: &Control) -> Result<(), ApiError> {
    if who.is_global_admin() || in_admin_group(who, c) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_admin_group",
            format!(
                "only global admins and members of the admin group{} see reviews",
                c.admin_group
                    .as_deref()
                    .map(|g| format!(" `{g}`"))
                    .unwrap_or_default()
            ),
        ))
    }
}

/// The directory's user names for `-SystemAccounts` values: a user name, or a user's email
/// address (Purview names accounts by UPN). Unknown accounts are refused, not kept.
fn system_accounts(dir: &Directory, given: &[String]) -> Result<Vec<String>, ApiError> {
    if given.len() > MAX_SYSTEM_ACCOUNTS {
        return Err(ApiError::policy(
            "too_many_accounts",
            format!("at most {MAX_SYSTEM_ACCOUNTS} system accounts"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for g in given {
        let g = g.trim();
        let found = dir.users.iter().find(|u| {
            u.name.eq_ignore_ascii_case(g)
                || u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(g))
        });
        let Some(user) = found else {
            return Err(ApiError::policy(
                "unknown_account",
                format!(
                    "`{}` is not a user of the directory; add it first (`jitsh user add NAME`) and name it by user name or email",
                    escape(g)
                ),
            ));
        };
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&user.name)) {
            out.push(user.name.clone());
        }
    }
    Ok(out)
}

fn review_view(r: &Review) -> Value {
    json!({
        "id": r.id, "account": r.account, "session": r.session,
        "started_at": rfc3339(r.started_at), "commands": r.commands, "ran": r.ran,
        "status": if r.acked_at.is_some() { "acknowledged" } else { "open" },
        "acked_by": r.acked_by, "acked_at": r.acked_at.map(rfc3339),
        "comment": r.ack_comment,
    })
}
