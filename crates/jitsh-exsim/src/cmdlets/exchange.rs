//! Exchange cmdlets: mailboxes, databases, move requests, transport rules, permissions, the
//! admin audit log and export requests.

use super::{boolean, cols, id_matches, list, number, opt, required, s};
use crate::format::{Obj, View};
use crate::lang::{Bound, Value};
use crate::session::{Flow, Session, Stop};
use crate::state::{ExportRequest, Mailbox, MoveRequest, Permission, State, TransportRule};

// ---- mailboxes ---------------------------------------------------------------------------

fn mailbox_obj(state: &State, m: &Mailbox) -> Obj {
    Obj::new(
        "Mailbox",
        View::Table(cols(&["Name", "Alias", "Database", "ProhibitSendQuota"])),
    )
    .with("Name", s(&m.name))
    .with("Alias", s(&m.alias))
    .with("DisplayName", s(&m.display_name))
    .with("PrimarySmtpAddress", s(&m.primary_smtp_address))
    .with("Database", s(&m.database))
    .with(
        "ServerName",
        s(&state.server_of(&m.database).to_ascii_lowercase()),
    )
    .with("RecipientTypeDetails", s(&m.recipient_type_details))
    .with("ProhibitSendQuota", s(&m.prohibit_send_quota))
    .with(
        "ForwardingSmtpAddress",
        m.forwarding_smtp_address
            .as_ref()
            .map(|a| {
                if a.to_ascii_lowercase().starts_with("smtp:") {
                    s(a)
                } else {
                    s(&format!("smtp:{a}"))
                }
            })
            .unwrap_or(Value::Null),
    )
    .with(
        "DeliverToMailboxAndForward",
        Value::Bool(m.deliver_to_mailbox_and_forward),
    )
    .with(
        "HiddenFromAddressListsEnabled",
        Value::Bool(m.hidden_from_address_lists_enabled),
    )
    .with("Identity", s(&m.name))
}

pub(super) fn get_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let identity = b.str("Identity");
    let limit = number(b, "ResultSize")?.unwrap_or(u64::MAX);
    let mut out: Vec<Obj> = Vec::new();
    for m in &ses.state.mailboxes {
        if let Some(id) = &identity {
            let hit = [&m.name, &m.alias, &m.display_name, &m.primary_smtp_address]
                .iter()
                .any(|v| id_matches(v, id));
            if !hit {
                continue;
            }
        }
        if b.str("Database")
            .is_some_and(|d| !m.database.eq_ignore_ascii_case(&d))
        {
            continue;
        }
        if b.str("RecipientTypeDetails")
            .is_some_and(|t| !m.recipient_type_details.eq_ignore_ascii_case(&t))
        {
            continue;
        }
        if b.str("Anr")
            .is_some_and(|a| !m.name.to_lowercase().starts_with(&a.to_lowercase()))
        {
            continue;
        }
        if out.len() as u64 >= limit {
            break;
        }
        out.push(mailbox_obj(&ses.state, m));
    }
    match identity {
        Some(id) if out.is_empty() && !id.contains('*') => Err(ses.not_found(&id)),
        _ => Ok(Flow::Objects(out)),
    }
}

pub(super) fn set_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let index = ses.mailbox_index(b, "Identity")?;
    let Some(before) = ses.state.mailboxes.get(index).cloned() else {
        return Err(ses.not_found(""));
    };
    let mut m = before.clone();
    if let Some(v) = b.str("DisplayName") {
        m.display_name = v;
    }
    if let Some(v) = b.str("Alias") {
        m.alias = v;
    }
    if let Some(v) = b.str("PrimarySmtpAddress") {
        m.primary_smtp_address = v;
    }
    if b.has("ForwardingSmtpAddress") {
        m.forwarding_smtp_address = b.str("ForwardingSmtpAddress").filter(|a| !a.is_empty());
    }
    if let Some(v) = boolean(b, "DeliverToMailboxAndForward")? {
        m.deliver_to_mailbox_and_forward = v;
    }
    if let Some(v) = boolean(b, "HiddenFromAddressListsEnabled")? {
        m.hidden_from_address_lists_enabled = v;
    }
    if let Some(v) = b.str("ProhibitSendQuota") {
        m.prohibit_send_quota = v;
    }
    if m == before {
        ses.term
            .warning(&format!(
                "The command completed successfully but no settings of '{}/Users/{}' have been modified.",
                ses.state.organization, before.name
            ))
            ?;
        return Ok(Flow::Nothing);
    }
    if !ses.should_process(b, &format!("Setting mailbox \"{}\".", before.name), false)? {
        return Ok(Flow::Nothing);
    }
    if let Some(slot) = ses.state.mailboxes.get_mut(index) {
        *slot = m;
    }
    ses.commit("Set-Mailbox", &before.name, b)?;
    Ok(Flow::Nothing)
}

pub(super) fn new_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let name = required(b, "Name")?;
    let alias = b
        .str("Alias")
        .or_else(|| {
            b.str("UserPrincipalName")
                .and_then(|u| u.split('@').next().map(str::to_owned))
        })
        .unwrap_or_else(|| name.chars().filter(|c| !c.is_whitespace()).collect());
    if ses.state.find_mailbox(&name).is_some() || ses.state.find_mailbox(&alias).is_some() {
        return Err(Stop::Error(format!(
            "The name \"{name}\" is already being used. Please try another name."
        )));
    }
    let database = match b.str("Database") {
        Some(db) => ses
            .state
            .databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(&db))
            .map(|d| d.name.clone())
            .ok_or_else(|| {
                format!("Couldn't find database \"{db}\". Make sure you have typed it correctly.")
            })?,
        None => ses
            .state
            .databases
            .first()
            .map(|d| d.name.clone())
            .unwrap_or_default(),
    };
    let display_name = b.str("DisplayName").unwrap_or_else(|| name.clone());
    let mailbox = Mailbox {
        primary_smtp_address: b.str("PrimarySmtpAddress").unwrap_or_else(|| {
            format!("{}@{}", alias.to_ascii_lowercase(), ses.state.organization)
        }),
        name: name.clone(),
        alias,
        display_name,
        database,
        recipient_type_details: if b.flag("Shared") {
            "SharedMailbox"
        } else {
            "UserMailbox"
        }
        .to_owned(),
        prohibit_send_quota: "Unlimited".to_owned(),
        forwarding_smtp_address: None,
        deliver_to_mailbox_and_forward: false,
        hidden_from_address_lists_enabled: false,
    };
    if !ses.should_process(b, &format!("Creating mailbox \"{name}\"."), false)? {
        return Ok(Flow::Nothing);
    }
    let obj = mailbox_obj(&ses.state, &mailbox);
    ses.state.mailboxes.push(mailbox);
    // The password is accepted and never stored or logged.
    let mut logged = b.clone();
    if logged.has("Password") {
        logged.set("Password", s("********"));
    }
    ses.commit("New-Mailbox", &name, &logged)?;
    Ok(Flow::Objects(vec![obj]))
}

pub(super) fn remove_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let name = ses.mailbox_name(b, "Identity")?;
    if !ses.should_process(b, &format!("Removing mailbox \"{name}\"."), true)? {
        return Ok(Flow::Nothing);
    }
    ses.state.mailboxes.retain(|m| m.name != name);
    ses.state.permissions.retain(|p| p.identity != name);
    ses.state.move_requests.retain(|r| r.identity != name);
    ses.commit("Remove-Mailbox", &name, b)?;
    Ok(Flow::Nothing)
}

pub(super) fn get_mailbox_database(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let id = b.str("Identity");
    let out: Vec<Obj> = ses
        .state
        .databases
        .iter()
        .filter(|d| id.as_ref().is_none_or(|i| id_matches(&d.name, i)))
        .filter(|d| {
            b.str("Server")
                .is_none_or(|srv| d.server.eq_ignore_ascii_case(&srv))
        })
        .map(|d| {
            let count = ses
                .state
                .mailboxes
                .iter()
                .filter(|m| m.database == d.name)
                .count();
            Obj::new(
                "MailboxDatabase",
                View::Table(cols(&["Name", "Server", "Recovery", "ReplicationType"])),
            )
            .with("Name", s(&d.name))
            .with("Server", s(&d.server))
            .with("Recovery", Value::Bool(false))
            .with("ReplicationType", s("None"))
            .with("Mounted", Value::Bool(true))
            .with(
                "MailboxCount",
                Value::Int(i64::try_from(count).unwrap_or(i64::MAX)),
            )
            .with("Identity", s(&d.name))
        })
        .collect();
    match id {
        Some(i) if out.is_empty() => Err(ses.not_found(&i)),
        _ => Ok(Flow::Objects(out)),
    }
}

// ---- move requests -----------------------------------------------------------------------

fn move_obj(r: &MoveRequest) -> Obj {
    Obj::new(
        "MoveRequest",
        View::Table(cols(&["DisplayName", "Status", "TargetDatabase"])),
    )
    .with("DisplayName", s(&r.display_name))
    .with("Status", s(&r.status))
    .with("SourceDatabase", s(&r.source_database))
    .with("TargetDatabase", s(&r.target_database))
    .with("BatchName", opt(&r.batch_name))
    .with("Identity", s(&r.identity))
}

pub(super) fn new_move_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let index = ses.mailbox_index(b, "Identity")?;
    let Some(m) = ses.state.mailboxes.get(index).cloned() else {
        return Err(ses.not_found(""));
    };
    if ses.state.move_requests.iter().any(|r| r.identity == m.name) {
        return Err(Stop::Error(format!(
            "User '{}' already has a move request associated with it.",
            m.name
        )));
    }
    let target = match b.str("TargetDatabase") {
        Some(t) => ses
            .state
            .databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(&t))
            .map(|d| d.name.clone())
            .ok_or_else(|| {
                format!("Couldn't find database \"{t}\". Make sure you have typed it correctly.")
            })?,
        None => ses
            .state
            .databases
            .iter()
            .find(|d| d.name != m.database)
            .map(|d| d.name.clone())
            .ok_or_else(|| "There is no other database to move the mailbox to.".to_owned())?,
    };
    if target == m.database {
        return Err(Stop::Error(format!(
            "You can't move mailbox '{}' because it's already in database '{target}'.",
            m.name
        )));
    }
    if !ses.should_process(b, &format!("Creating move request \"{}\".", m.name), false)? {
        return Ok(Flow::Nothing);
    }
    let request = MoveRequest {
        identity: m.name.clone(),
        display_name: m.display_name.clone(),
        source_database: m.database.clone(),
        target_database: target,
        status: "Queued".into(),
        batch_name: b.str("BatchName"),
    };
    let obj = move_obj(&request);
    ses.state.move_requests.push(request);
    ses.commit("New-MoveRequest", &m.name, b)?;
    Ok(Flow::Objects(vec![obj]))
}

fn find_move(ses: &Session, identity: &str) -> Option<usize> {
    let name = ses
        .state
        .find_mailbox(identity)
        .and_then(|i| ses.state.mailboxes.get(i))
        .map(|m| m.name.clone());
    ses.state.move_requests.iter().position(|r| {
        Some(&r.identity) == name.as_ref()
            || r.identity.eq_ignore_ascii_case(identity)
            || r.display_name.eq_ignore_ascii_case(identity)
    })
}

pub(super) fn get_move_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    if let Some(id) = b.str("Identity") {
        let index = find_move(ses, &id).ok_or_else(|| ses.not_found(&id))?;
        return Ok(Flow::Objects(
            ses.state
                .move_requests
                .get(index)
                .map(move_obj)
                .into_iter()
                .collect(),
        ));
    }
    let limit = number(b, "ResultSize")?.unwrap_or(u64::MAX);
    let out = ses
        .state
        .move_requests
        .iter()
        .filter(|r| {
            b.str("MoveStatus")
                .is_none_or(|st| r.status.eq_ignore_ascii_case(&st))
        })
        .filter(|r| {
            b.str("TargetDatabase")
                .is_none_or(|t| r.target_database.eq_ignore_ascii_case(&t))
        })
        .filter(|r| {
            b.str("BatchName").is_none_or(|n| {
                r.batch_name
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&n))
            })
        })
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(move_obj)
        .collect();
    Ok(Flow::Objects(out))
}

pub(super) fn remove_move_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let id = required(b, "Identity")?;
    let index = find_move(ses, &id).ok_or_else(|| ses.not_found(&id))?;
    let name = ses
        .state
        .move_requests
        .get(index)
        .map(|r| r.identity.clone())
        .unwrap_or_default();
    if !ses.should_process(b, &format!("Removing move request \"{name}\"."), true)? {
        return Ok(Flow::Nothing);
    }
    ses.state.move_requests.retain(|r| r.identity != name);
    ses.commit("Remove-MoveRequest", &name, b)?;
    Ok(Flow::Nothing)
}

// ---- transport rules ---------------------------------------------------------------------

fn rule_obj(r: &TransportRule) -> Obj {
    Obj::new(
        "TransportRule",
        View::Table(cols(&["Name", "State", "Mode", "Priority", "Comments"])),
    )
    .with("Name", s(&r.name))
    .with("State", s(&r.state))
    .with("Mode", s("Enforce"))
    .with("Priority", Value::Int(i64::from(r.priority)))
    .with("Comments", opt(&r.comments))
    .with("From", list(&r.from))
    .with("SentTo", list(&r.sent_to))
    .with("SubjectContainsWords", list(&r.subject_contains_words))
    .with("RedirectMessageTo", list(&r.redirect_message_to))
    .with("BlindCopyTo", list(&r.blind_copy_to))
    .with("DeleteMessage", Value::Bool(r.delete_message))
    .with("Identity", s(&r.name))
}

pub(super) fn new_transport_rule(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let name = required(b, "Name")?;
    if ses
        .state
        .transport_rules
        .iter()
        .any(|r| r.name.eq_ignore_ascii_case(&name))
    {
        return Err(Stop::Error(format!(
            "A transport rule with the name '{name}' already exists."
        )));
    }
    let priority = match number(b, "Priority")? {
        Some(p) => u32::try_from(p).map_err(|_| format!("Priority `{p}` is out of range."))?,
        None => u32::try_from(ses.state.transport_rules.len()).unwrap_or(u32::MAX),
    };
    let enabled = boolean(b, "Enabled")?.unwrap_or(true);
    let rule = TransportRule {
        name: name.clone(),
        state: if enabled { "Enabled" } else { "Disabled" }.into(),
        priority,
        from: b.list("From"),
        sent_to: b.list("SentTo"),
        subject_contains_words: b.list("SubjectContainsWords"),
        redirect_message_to: b.list("RedirectMessageTo"),
        blind_copy_to: b.list("BlindCopyTo"),
        delete_message: boolean(b, "DeleteMessage")?.unwrap_or(false),
        comments: b.str("Comments"),
    };
    if !ses.should_process(b, &format!("Creating transport rule \"{name}\"."), false)? {
        return Ok(Flow::Nothing);
    }
    let obj = rule_obj(&rule);
    ses.state.transport_rules.push(rule);
    ses.commit("New-TransportRule", &name, b)?;
    Ok(Flow::Objects(vec![obj]))
}

pub(super) fn get_transport_rule(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let id = b.str("Identity");
    let out: Vec<Obj> = ses
        .state
        .transport_rules
        .iter()
        .filter(|r| id.as_ref().is_none_or(|i| id_matches(&r.name, i)))
        .filter(|r| {
            b.str("State")
                .is_none_or(|st| r.state.eq_ignore_ascii_case(&st))
        })
        .map(rule_obj)
        .collect();
    match id {
        Some(i) if out.is_empty() && !i.contains('*') => Err(ses.not_found(&i)),
        _ => Ok(Flow::Objects(out)),
    }
}

pub(super) fn remove_transport_rule(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let id = required(b, "Identity")?;
    let name = ses
        .state
        .transport_rules
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(&id))
        .map(|r| r.name.clone())
        .ok_or_else(|| ses.not_found(&id))?;
    if !ses.should_process(b, &format!("Removing transport rule \"{name}\"."), true)? {
        return Ok(Flow::Nothing);
    }
    ses.state.transport_rules.retain(|r| r.name != name);
    ses.commit("Remove-TransportRule", &name, b)?;
    Ok(Flow::Nothing)
}

// ---- mailbox permissions -----------------------------------------------------------------

const ACCESS_RIGHTS: &[&str] = &[
    "FullAccess",
    "ReadPermission",
    "ChangePermission",
    "ChangeOwner",
    "DeleteItem",
    "ExternalAccount",
    "SendAs",
];

fn permission_obj(p: &Permission, inherited: bool) -> Obj {
    Obj::new(
        "MailboxPermission",
        View::Table(cols(&[
            "Identity",
            "User",
            "AccessRights",
            "IsInherited",
            "Deny",
        ])),
    )
    .with("Identity", s(&p.identity))
    .with("User", s(&p.user))
    .with("AccessRights", list(&p.access_rights))
    .with("IsInherited", Value::Bool(inherited))
    .with("Deny", Value::Bool(p.deny))
}

/// `alice` matches `CONTOSO\alice` and `alice@contoso.com`.
fn same_user(stored: &str, given: &str) -> bool {
    let short = |u: &str| -> String {
        let u = u.rsplit('\\').next().unwrap_or(u);
        u.split('@').next().unwrap_or(u).to_ascii_lowercase()
    };
    stored.eq_ignore_ascii_case(given) || short(stored) == short(given)
}

fn rights(b: &Bound) -> Result<Vec<String>, String> {
    let given = b.list("AccessRights");
    if given.is_empty() {
        return Err("Cannot process command because of one or more missing mandatory parameters: AccessRights.".into());
    }
    given
        .iter()
        .map(|r| {
            ACCESS_RIGHTS.iter().find(|a| a.eq_ignore_ascii_case(r)).map(|a| (*a).to_owned()).ok_or_else(|| {
                format!(
                    "Cannot bind parameter 'AccessRights'. Cannot convert value \"{r}\" to type \"MailboxRights\". Valid values: {}.",
                    ACCESS_RIGHTS.join(", ")
                )
            })
        })
        .collect()
}

pub(super) fn add_mailbox_permission(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let name = ses.mailbox_name(b, "Identity")?;
    let user = required(b, "User")?;
    let rights = rights(b)?;
    let deny = b.flag("Deny");
    if !ses.should_process(
        b,
        &format!("Adding mailbox permission \"{name}\" for user \"{user}\"."),
        false,
    )? {
        return Ok(Flow::Nothing);
    }
    let existing = ses
        .state
        .permissions
        .iter_mut()
        .find(|p| p.identity == name && same_user(&p.user, &user) && p.deny == deny);
    let entry = match existing {
        Some(p) => {
            for r in rights {
                if !p.access_rights.contains(&r) {
                    p.access_rights.push(r);
                }
            }
            p.clone()
        }
        None => {
            let p = Permission {
                identity: name.clone(),
                user: user.clone(),
                access_rights: rights,
                deny,
            };
            ses.state.permissions.push(p.clone());
            p
        }
    };
    ses.commit("Add-MailboxPermission", &name, b)?;
    Ok(Flow::Objects(vec![permission_obj(&entry, false)]))
}

pub(super) fn get_mailbox_permission(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let name = ses.mailbox_name(b, "Identity")?;
    let user = b.str("User");
    let own = Permission {
        identity: name.clone(),
        user: "NT AUTHORITY\\SELF".into(),
        access_rights: vec!["FullAccess".into(), "ReadPermission".into()],
        deny: false,
    };
    let mut out = Vec::new();
    if user.as_ref().is_none_or(|u| same_user(&own.user, u)) {
        out.push(permission_obj(&own, false));
    }
    out.extend(
        ses.state
            .permissions
            .iter()
            .filter(|p| p.identity == name && user.as_ref().is_none_or(|u| same_user(&p.user, u)))
            .map(|p| permission_obj(p, false)),
    );
    Ok(Flow::Objects(out))
}

pub(super) fn remove_mailbox_permission(
    ses: &mut Session,
    b: &Bound,
    _: Flow,
) -> Result<Flow, Stop> {
    let name = ses.mailbox_name(b, "Identity")?;
    let user = required(b, "User")?;
    let rights = rights(b)?;
    let deny = b.flag("Deny");
    let Some(pos) = ses.state.permissions.iter().position(|p| {
        p.identity == name
            && same_user(&p.user, &user)
            && p.deny == deny
            && rights.iter().all(|r| p.access_rights.contains(r))
    }) else {
        return Err(Stop::Error(format!(
            "Can't remove the access control entry on the object \"{name}\" for account \"{user}\" because the ACE doesn't exist on the object."
        )));
    };
    let quoted: Vec<String> = rights.iter().map(|r| format!("'{r}'")).collect();
    let target = format!(
        "Removing mailbox permission \"{name}\" for user \"{user}\" with access rights \"{}\".",
        quoted.join(", ")
    );
    if !ses.should_process(b, &target, true)? {
        return Ok(Flow::Nothing);
    }
    let mut now_empty = false;
    if let Some(p) = ses.state.permissions.get_mut(pos) {
        p.access_rights.retain(|r| !rights.contains(r));
        now_empty = p.access_rights.is_empty();
    }
    if now_empty {
        ses.state.permissions.remove(pos);
    }
    ses.commit("Remove-MailboxPermission", &name, b)?;
    Ok(Flow::Nothing)
}

// ---- audit log and exports ---------------------------------------------------------------

/// Accepts `YYYY-MM-DD...` and `MM/DD/YYYY`; returns the comparable `YYYY-MM-DD` prefix.
fn date_key(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split(['/', ' ']).collect();
    if let [m, d, y, ..] = parts.as_slice() {
        if let (Ok(m), Ok(d), Ok(y)) = (m.parse::<u32>(), d.parse::<u32>(), y.parse::<u32>()) {
            return Ok(format!("{y:04}-{m:02}-{d:02}"));
        }
    }
    match text.get(..10) {
        Some(day) if day.chars().filter(|c| *c == '-').count() == 2 => Ok(day.to_owned()),
        _ => Err(format!(
            "Cannot convert value \"{text}\" to type \"System.DateTime\"."
        )),
    }
}

pub(super) fn search_admin_audit_log(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, Stop> {
    let cmdlets = b.list("Cmdlets");
    let objects = b.list("ObjectIds");
    let parameters = b.list("Parameters");
    let start = b.str("StartDate").map(|d| date_key(&d)).transpose()?;
    let end = b.str("EndDate").map(|d| date_key(&d)).transpose()?;
    let limit = number(b, "ResultSize")?.unwrap_or(1000);
    let out = ses
        .state
        .admin_audit_log
        .iter()
        .rev()
        .filter(|e| {
            cmdlets.is_empty()
                || cmdlets
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(&e.cmdlet_name))
        })
        .filter(|e| {
            objects.is_empty()
                || objects
                    .iter()
                    .any(|o| e.object_modified.eq_ignore_ascii_case(o))
        })
        .filter(|e| {
            parameters.is_empty()
                || parameters.iter().any(|p| {
                    e.cmdlet_parameters.iter().any(|cp| {
                        cp.to_ascii_lowercase()
                            .starts_with(&format!("-{} ", p.to_ascii_lowercase()))
                    })
                })
        })
        .filter(|e| {
            start
                .as_ref()
                .is_none_or(|s| e.run_date.get(..10).is_some_and(|d| d >= s.as_str()))
        })
        .filter(|e| {
            end.as_ref()
                .is_none_or(|s| e.run_date.get(..10).is_some_and(|d| d <= s.as_str()))
        })
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|e| {
            Obj::new(
                "AdminAuditLogEvent",
                View::List(cols(&[
                    "CmdletName",
                    "ObjectModified",
                    "CmdletParameters",
                    "Caller",
                    "Succeeded",
                    "RunDate",
                ])),
            )
            .with("CmdletName", s(&e.cmdlet_name))
            .with("ObjectModified", s(&e.object_modified))
            .with("CmdletParameters", list(&e.cmdlet_parameters))
            .with("Caller", s(&e.caller))
            .with("Succeeded", Value::Bool(e.succeeded))
            .with("RunDate", s(&e.run_date))
        })
        .collect();
    Ok(Flow::Objects(out))
}

fn export_obj(r: &ExportRequest) -> Obj {
    Obj::new(
        "MailboxExportRequest",
        View::Table(cols(&["Name", "Mailbox", "Status"])),
    )
    .with("Name", s(&r.name))
    .with("Mailbox", s(&r.mailbox))
    .with("Status", s(&r.status))
    .with("FilePath", s(&r.file_path))
    .with("Identity", s(&format!("{}\\{}", r.mailbox, r.name)))
}

pub(super) fn new_mailbox_export_request(
    ses: &mut Session,
    b: &Bound,
    _: Flow,
) -> Result<Flow, Stop> {
    let mailbox = ses.mailbox_name(b, "Mailbox")?;
    let path = required(b, "FilePath")?;
    if !path.starts_with("\\\\") {
        return Err(Stop::Error(format!("The specified path \"{path}\" isn't a UNC path. Use a path like \\\\server\\share\\file.pst.")));
    }
    let name = b.str("Name").unwrap_or_else(|| "MailboxExport".into());
    if ses
        .state
        .export_requests
        .iter()
        .any(|r| r.mailbox == mailbox && r.name.eq_ignore_ascii_case(&name))
    {
        return Err(Stop::Error(format!(
            "The name '{name}' is already in use for mailbox '{mailbox}'; choose another -Name."
        )));
    }
    if !ses.should_process(
        b,
        &format!("Creating mailbox export request \"{mailbox}\\{name}\"."),
        false,
    )? {
        return Ok(Flow::Nothing);
    }
    let request = ExportRequest {
        name,
        mailbox: mailbox.clone(),
        file_path: path,
        status: "Queued".into(),
    };
    let obj = export_obj(&request);
    ses.state.export_requests.push(request);
    ses.commit("New-MailboxExportRequest", &mailbox, b)?;
    Ok(Flow::Objects(vec![obj]))
}

pub(super) fn get_mailbox_export_request(
    ses: &mut Session,
    b: &Bound,
    _: Flow,
) -> Result<Flow, Stop> {
    let mailbox = b.str("Mailbox").map(|m| {
        ses.state
            .find_mailbox(&m)
            .and_then(|i| ses.state.mailboxes.get(i))
            .map(|x| x.name.clone())
            .unwrap_or(m)
    });
    let id = b.str("Identity");
    let out = ses
        .state
        .export_requests
        .iter()
        .filter(|r| {
            mailbox
                .as_ref()
                .is_none_or(|m| r.mailbox.eq_ignore_ascii_case(m))
        })
        .filter(|r| {
            b.str("Status")
                .is_none_or(|st| r.status.eq_ignore_ascii_case(&st))
        })
        .filter(|r| {
            b.str("Name")
                .is_none_or(|n| r.name.eq_ignore_ascii_case(&n))
        })
        .filter(|r| {
            id.as_ref().is_none_or(|i| {
                format!("{}\\{}", r.mailbox, r.name).eq_ignore_ascii_case(i)
                    || r.mailbox.eq_ignore_ascii_case(i)
            })
        })
        .map(export_obj)
        .collect();
    Ok(Flow::Objects(out))
}
