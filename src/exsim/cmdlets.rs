//! The cmdlets: lookup, argument binding, pipelines, confirmation, and each cmdlet's effect on
//! the state.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::format::{render_default, render_list, render_table, Obj, View};
use super::lang::{bind, parse, wildcard, Bound, Command, Filter, Kind, Value};
use super::state::{
    AuditEntry, ExportRequest, Mailbox, MoveRequest, Permission, State, StateFile, TransportRule,
};
use super::{Input, Interrupt, Term};

/// What a line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineResult {
    /// Back to the prompt; `ok` is false when anything failed or was interrupted.
    Done { ok: bool },
    /// `exit`: end the runspace with this status.
    Exit(u8),
}

/// Why a pipeline stopped early.
#[derive(Debug)]
enum Stop {
    /// A terminating error, already prefixed with the cmdlet name.
    Error(String),
    Interrupted,
    Exit(u8),
    Io(std::io::Error),
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Self {
        Stop::Io(e)
    }
}

/// What flows between pipeline stages.
#[derive(Debug)]
enum Flow {
    Nothing,
    Objects(Vec<Obj>),
    /// Already formatted lines (Format-*, strings).
    Text(Vec<String>),
}

type Run = fn(&mut Session, &Bound, Flow) -> Result<Flow, String>;

/// A cmdlet's signature and implementation.
struct Cmdlet {
    name: &'static str,
    params: &'static [(&'static str, Kind)],
    positional: &'static [&'static str],
    /// Parameters filled from the same-named property of each piped object (ByPropertyName).
    /// When set and objects are piped in, the cmdlet runs once per object.
    by_property: &'static [&'static str],
    run: Run,
}

use Kind::{Switch as S, Value as V};

const CMDLETS: &[Cmdlet] = &[
    Cmdlet {
        name: "Get-Mailbox",
        params: &[
            ("Identity", V),
            ("ResultSize", V),
            ("Database", V),
            ("RecipientTypeDetails", V),
            ("Anr", V),
        ],
        positional: &["Identity"],
        by_property: &[],
        run: get_mailbox,
    },
    Cmdlet {
        name: "Set-Mailbox",
        params: &[
            ("Identity", V),
            ("DisplayName", V),
            ("Alias", V),
            ("PrimarySmtpAddress", V),
            ("ForwardingSmtpAddress", V),
            ("DeliverToMailboxAndForward", V),
            ("HiddenFromAddressListsEnabled", V),
            ("ProhibitSendQuota", V),
            ("Force", S),
        ],
        positional: &["Identity"],
        by_property: &["Identity"],
        run: set_mailbox,
    },
    Cmdlet {
        name: "New-Mailbox",
        params: &[
            ("Name", V),
            ("Alias", V),
            ("DisplayName", V),
            ("FirstName", V),
            ("LastName", V),
            ("UserPrincipalName", V),
            ("PrimarySmtpAddress", V),
            ("Password", V),
            ("Database", V),
            ("Shared", S),
            ("ResetPasswordOnNextLogon", V),
        ],
        positional: &["Name"],
        by_property: &[],
        run: new_mailbox,
    },
    Cmdlet {
        name: "Remove-Mailbox",
        params: &[("Identity", V), ("Permanent", V), ("Force", S)],
        positional: &["Identity"],
        by_property: &["Identity"],
        run: remove_mailbox,
    },
    Cmdlet {
        name: "Get-MailboxDatabase",
        params: &[("Identity", V), ("Server", V), ("Status", S)],
        positional: &["Identity"],
        by_property: &[],
        run: get_mailbox_database,
    },
    Cmdlet {
        name: "New-MoveRequest",
        params: &[
            ("Identity", V),
            ("TargetDatabase", V),
            ("BatchName", V),
            ("BadItemLimit", V),
            ("AcceptLargeDataLoss", S),
            ("PrimaryOnly", S),
            ("ArchiveOnly", S),
            ("SuspendWhenReadyToComplete", S),
        ],
        positional: &["Identity"],
        by_property: &["Identity"],
        run: new_move_request,
    },
    Cmdlet {
        name: "Get-MoveRequest",
        params: &[
            ("Identity", V),
            ("MoveStatus", V),
            ("TargetDatabase", V),
            ("BatchName", V),
            ("ResultSize", V),
        ],
        positional: &["Identity"],
        by_property: &[],
        run: get_move_request,
    },
    Cmdlet {
        name: "Remove-MoveRequest",
        params: &[("Identity", V), ("Force", S)],
        positional: &["Identity"],
        by_property: &["Identity"],
        run: remove_move_request,
    },
    Cmdlet {
        name: "New-TransportRule",
        params: &[
            ("Name", V),
            ("From", V),
            ("SentTo", V),
            ("SubjectContainsWords", V),
            ("RedirectMessageTo", V),
            ("BlindCopyTo", V),
            ("DeleteMessage", V),
            ("Comments", V),
            ("Enabled", V),
            ("Priority", V),
        ],
        positional: &["Name"],
        by_property: &[],
        run: new_transport_rule,
    },
    Cmdlet {
        name: "Get-TransportRule",
        params: &[("Identity", V), ("State", V)],
        positional: &["Identity"],
        by_property: &[],
        run: get_transport_rule,
    },
    Cmdlet {
        name: "Remove-TransportRule",
        params: &[("Identity", V)],
        positional: &["Identity"],
        by_property: &["Identity"],
        run: remove_transport_rule,
    },
    Cmdlet {
        name: "Add-MailboxPermission",
        params: &[
            ("Identity", V),
            ("User", V),
            ("AccessRights", V),
            ("InheritanceType", V),
            ("AutoMapping", V),
            ("Deny", S),
        ],
        positional: &["Identity"],
        by_property: &["Identity"],
        run: add_mailbox_permission,
    },
    Cmdlet {
        name: "Get-MailboxPermission",
        params: &[("Identity", V), ("User", V), ("Owner", S)],
        positional: &["Identity"],
        by_property: &["Identity"],
        run: get_mailbox_permission,
    },
    Cmdlet {
        name: "Remove-MailboxPermission",
        params: &[
            ("Identity", V),
            ("User", V),
            ("AccessRights", V),
            ("InheritanceType", V),
            ("Deny", S),
            ("BypassMasterAccountSid", S),
        ],
        positional: &["Identity"],
        by_property: &["Identity", "User", "AccessRights"],
        run: remove_mailbox_permission,
    },
    Cmdlet {
        name: "Search-AdminAuditLog",
        params: &[
            ("Cmdlets", V),
            ("ObjectIds", V),
            ("Parameters", V),
            ("StartDate", V),
            ("EndDate", V),
            ("UserIds", V),
            ("ResultSize", V),
            ("IsSuccess", V),
        ],
        positional: &[],
        by_property: &[],
        run: search_admin_audit_log,
    },
    Cmdlet {
        name: "New-MailboxExportRequest",
        params: &[
            ("Mailbox", V),
            ("FilePath", V),
            ("Name", V),
            ("ContentFilter", V),
            ("IncludeFolders", V),
            ("ExcludeFolders", V),
            ("BadItemLimit", V),
        ],
        positional: &["Mailbox"],
        by_property: &[],
        run: new_mailbox_export_request,
    },
    Cmdlet {
        name: "Get-MailboxExportRequest",
        params: &[("Identity", V), ("Mailbox", V), ("Status", V), ("Name", V)],
        positional: &["Identity"],
        by_property: &[],
        run: get_mailbox_export_request,
    },
    Cmdlet {
        name: "Get-Date",
        params: &[("Format", V), ("UFormat", V)],
        positional: &[],
        by_property: &[],
        run: get_date,
    },
    Cmdlet {
        name: "Write-Host",
        params: &[
            ("Object", V),
            ("NoNewline", S),
            ("Separator", V),
            ("ForegroundColor", V),
            ("BackgroundColor", V),
        ],
        positional: &["Object"],
        by_property: &[],
        run: write_host,
    },
    Cmdlet {
        name: "Read-Host",
        params: &[("Prompt", V), ("AsSecureString", S), ("MaskInput", S)],
        positional: &["Prompt"],
        by_property: &[],
        run: read_host,
    },
    Cmdlet {
        name: "Start-Sleep",
        params: &[("Seconds", V), ("Milliseconds", V)],
        positional: &["Seconds"],
        by_property: &[],
        run: start_sleep,
    },
    Cmdlet {
        name: "Get-LargeOutput",
        params: &[("Megabytes", V)],
        positional: &["Megabytes"],
        by_property: &[],
        run: get_large_output,
    },
    Cmdlet {
        name: "Select-Object",
        params: &[
            ("Property", V),
            ("First", V),
            ("Last", V),
            ("ExpandProperty", V),
        ],
        positional: &["Property"],
        by_property: &[],
        run: select_object,
    },
    Cmdlet {
        name: "Where-Object",
        params: &[("FilterScript", V)],
        positional: &["FilterScript"],
        by_property: &[],
        run: where_object,
    },
    Cmdlet {
        name: "Sort-Object",
        params: &[("Property", V), ("Descending", S)],
        positional: &["Property"],
        by_property: &[],
        run: sort_object,
    },
    Cmdlet {
        name: "Format-Table",
        params: &[
            ("Property", V),
            ("AutoSize", S),
            ("Wrap", S),
            ("HideTableHeaders", S),
        ],
        positional: &["Property"],
        by_property: &[],
        run: format_table,
    },
    Cmdlet {
        name: "Format-List",
        params: &[("Property", V)],
        positional: &["Property"],
        by_property: &[],
        run: format_list,
    },
    Cmdlet {
        name: "Measure-Object",
        params: &[
            ("Property", V),
            ("Sum", S),
            ("Average", S),
            ("Maximum", S),
            ("Minimum", S),
        ],
        positional: &["Property"],
        by_property: &[],
        run: measure_object,
    },
    Cmdlet {
        name: "Get-Command",
        params: &[("Name", V)],
        positional: &["Name"],
        by_property: &[],
        run: get_command,
    },
    Cmdlet {
        name: "Clear-Host",
        params: &[],
        positional: &[],
        by_property: &[],
        run: clear_host,
    },
    Cmdlet {
        name: "exit",
        params: &[("Code", V)],
        positional: &["Code"],
        by_property: &[],
        run: exit,
    },
];

/// Aliases PowerShell defines for the cmdlets here.
const ALIASES: &[(&str, &str)] = &[
    ("select", "Select-Object"),
    ("where", "Where-Object"),
    ("?", "Where-Object"),
    ("sort", "Sort-Object"),
    ("ft", "Format-Table"),
    ("fl", "Format-List"),
    ("measure", "Measure-Object"),
    ("sleep", "Start-Sleep"),
    ("cls", "Clear-Host"),
    ("clear", "Clear-Host"),
    ("gcm", "Get-Command"),
];

fn lookup(name: &str) -> Option<&'static Cmdlet> {
    let name = ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
        .unwrap_or(name);
    CMDLETS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// Names of every cmdlet the runspace knows.
pub fn cmdlet_names() -> Vec<&'static str> {
    CMDLETS
        .iter()
        .map(|c| c.name)
        .filter(|n| *n != "exit")
        .collect()
}

/// A running runspace: state, its file, the terminal and the Ctrl-C counter.
#[derive(Debug)]
pub struct Session {
    state: State,
    file: StateFile,
    pub(super) term: Term,
    interrupt: Interrupt,
    /// The Ctrl-C count when the current line was read.
    seen: u64,
    /// "Yes to All" / "No to All" answered during the current cmdlet.
    confirm_all: Option<bool>,
    caller: String,
}

impl Session {
    pub(super) fn new(state: State, file: StateFile, term: Term, interrupt: Interrupt) -> Self {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "Administrator".into());
        let caller = format!("{}/Users/{user}", state.organization);
        let seen = interrupt.count();
        Session {
            state,
            file,
            term,
            interrupt,
            seen,
            confirm_all: None,
            caller,
        }
    }

    /// Run one input line.
    pub fn run_line(&mut self, line: &str) -> std::io::Result<LineResult> {
        self.seen = self.interrupt.count();
        let script = match parse(line) {
            Ok(script) => script,
            Err(message) => {
                self.term.error(&format!("ParserError: {message}"))?;
                return Ok(LineResult::Done { ok: false });
            }
        };
        let mut ok = true;
        for pipeline in &script {
            let result = self.run_pipeline(pipeline).and_then(|flow| self.emit(flow));
            match result {
                Ok(()) => {}
                Err(Stop::Error(message)) => {
                    self.term.error(&message)?;
                    ok = false;
                }
                Err(Stop::Interrupted) => {
                    self.term.write("\n")?;
                    return Ok(LineResult::Done { ok: false });
                }
                Err(Stop::Exit(code)) => return Ok(LineResult::Exit(code)),
                Err(Stop::Io(e)) => return Err(e),
            }
        }
        self.term.flush()?;
        Ok(LineResult::Done { ok })
    }

    fn run_pipeline(&mut self, pipeline: &[Command]) -> Result<Flow, Stop> {
        // Resolve every command first, as PowerShell does before running any of them.
        let mut stages = Vec::new();
        for command in pipeline {
            let Some(cmdlet) = lookup(&command.name) else {
                return Err(Stop::Error(format!(
                    "{0}: The term '{0}' is not recognized as a name of a cmdlet, function, script file, or executable program.\n\
                     Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
                    command.name
                )));
            };
            let bound = bind(cmdlet.params, cmdlet.positional, &command.args)
                .map_err(|m| Stop::Error(format!("{}: {m}", cmdlet.name)))?;
            stages.push((cmdlet, bound));
        }
        let mut flow = Flow::Nothing;
        for (cmdlet, bound) in stages {
            self.confirm_all = None;
            flow = self.invoke(cmdlet, &bound, flow)?;
            self.check_interrupt()?;
        }
        Ok(flow)
    }

    fn invoke(&mut self, cmdlet: &Cmdlet, bound: &Bound, input: Flow) -> Result<Flow, Stop> {
        let tag = |m: String| match m.as_str() {
            INTERRUPTED => Stop::Interrupted,
            _ => match m
                .strip_prefix(EXIT_PREFIX)
                .and_then(|c| c.parse::<u8>().ok())
            {
                Some(code) => Stop::Exit(code),
                None => Stop::Error(format!("{}: {m}", cmdlet.name)),
            },
        };
        match input {
            Flow::Objects(objs) if !cmdlet.by_property.is_empty() => {
                let mut out = Vec::new();
                for obj in objs {
                    let mut per = bound.clone();
                    for name in cmdlet.by_property {
                        if !per.has(name) {
                            let value = obj.get(name).or_else(|| {
                                if *name == "Identity" {
                                    obj.get("Name")
                                } else {
                                    None
                                }
                            });
                            if let Some(v) = value {
                                per.set(name, v.clone());
                            }
                        }
                    }
                    match (cmdlet.run)(self, &per, Flow::Nothing).map_err(tag)? {
                        Flow::Objects(more) => out.extend(more),
                        Flow::Text(lines) => self.emit(Flow::Text(lines))?,
                        Flow::Nothing => {}
                    }
                    self.check_interrupt()?;
                }
                Ok(if out.is_empty() {
                    Flow::Nothing
                } else {
                    Flow::Objects(out)
                })
            }
            input => (cmdlet.run)(self, bound, input).map_err(tag),
        }
    }

    fn emit(&mut self, flow: Flow) -> Result<(), Stop> {
        match flow {
            Flow::Nothing => {}
            Flow::Objects(objs) => self.term.write(&render_default(&objs))?,
            Flow::Text(lines) => {
                for line in lines {
                    self.term.write(&line)?;
                    self.term.write("\n")?;
                }
            }
        }
        self.term.flush()?;
        Ok(())
    }

    fn check_interrupt(&self) -> Result<(), Stop> {
        if self.interrupted() {
            Err(Stop::Interrupted)
        } else {
            Ok(())
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.count() != self.seen
    }

    /// PowerShell's ShouldProcess: `-WhatIf` reports, `-Confirm:$false` skips the question,
    /// high-impact actions (and any with `-Confirm`) ask.
    fn should_process(
        &mut self,
        bound: &Bound,
        target: &str,
        high_impact: bool,
    ) -> Result<bool, String> {
        if bound.flag("WhatIf") {
            self.term
                .write(&format!("What if: {target}\n"))
                .map_err(io_text)?;
            return Ok(false);
        }
        let explicit = bound.get("Confirm").map(Value::truthy);
        if explicit == Some(false) || !(high_impact || explicit == Some(true)) {
            return Ok(true);
        }
        if let Some(all) = self.confirm_all {
            return Ok(all);
        }
        loop {
            let question = format!(
                "Confirm\nAre you sure you want to perform this action?\n{target}\n\
                 [Y] Yes  [A] Yes to All  [N] No  [L] No to All  [?] Help (default is \"Y\"): "
            );
            self.term.write(&question).map_err(io_text)?;
            self.term.flush().map_err(io_text)?;
            let (count, seen) = (self.interrupt.clone(), self.seen);
            let stop = move || count.count() != seen;
            let answer = match self.term.read_line(Some(&stop)).map_err(io_text)? {
                Input::Line(answer) => answer,
                Input::Interrupted => return Err(INTERRUPTED.into()),
                // End of input answers No: never act without consent.
                Input::Eof => return Ok(false),
            };
            match answer.trim().to_ascii_uppercase().as_str() {
                "" | "Y" => return Ok(true),
                "A" => {
                    self.confirm_all = Some(true);
                    return Ok(true);
                }
                "N" => return Ok(false),
                "L" => {
                    self.confirm_all = Some(false);
                    return Ok(false);
                }
                "?" => self
                    .term
                    .write(
                        "Y - Continue with only the next step of the operation.\n\
                         A - Continue with all the steps of the operation.\n\
                         N - Skip this operation and proceed with the next operation.\n\
                         L - Skip this operation and all subsequent operations.\n",
                    )
                    .map_err(io_text)?,
                _ => {}
            }
        }
    }

    /// Append to the admin audit log and persist the state.
    fn commit(&mut self, cmdlet: &str, object: &str, bound: &Bound) -> Result<(), String> {
        self.state.admin_audit_log.push(AuditEntry {
            cmdlet_name: cmdlet.to_owned(),
            object_modified: object.to_owned(),
            cmdlet_parameters: bound.describe(),
            caller: self.caller.clone(),
            succeeded: true,
            run_date: now_rfc3339(),
        });
        self.file.save(&self.state).map_err(|e| e.to_string())
    }

    fn not_found(&self, identity: &str) -> String {
        let server = self
            .state
            .databases
            .first()
            .map(|d| d.server.clone())
            .unwrap_or_default();
        format!(
            "The operation couldn't be performed because object '{identity}' couldn't be found on '{server}.{}'.",
            self.state.organization
        )
    }

    fn mailbox_index(&self, bound: &Bound, param: &str) -> Result<usize, String> {
        let identity = bound
            .str(param)
            .ok_or_else(|| format!("Cannot process command because of one or more missing mandatory parameters: {param}."))?;
        self.state
            .find_mailbox(&identity)
            .ok_or_else(|| self.not_found(&identity))
    }
}

/// Message used to carry an interruption out of a cmdlet.
const INTERRUPTED: &str = "\u{0}interrupted";
const EXIT_PREFIX: &str = "\u{0}exit:";

fn io_text(e: std::io::Error) -> String {
    format!("terminal i/o failed: {e}")
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn required(bound: &Bound, name: &str) -> Result<String, String> {
    bound.str(name).filter(|s| !s.is_empty()).ok_or_else(|| {
        format!(
            "Cannot process command because of one or more missing mandatory parameters: {name}."
        )
    })
}

fn boolean(bound: &Bound, name: &str) -> Result<Option<bool>, String> {
    match bound.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => match v.display().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            other => Err(format!(
                "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{other}\" to type \"System.Boolean\"."
            )),
        },
    }
}

fn number(bound: &Bound, name: &str) -> Result<Option<u64>, String> {
    match bound.get(name) {
        None => Ok(None),
        Some(v) => {
            let text = v.display();
            if text.eq_ignore_ascii_case("unlimited") {
                return Ok(None);
            }
            text.parse::<u64>().map(Some).map_err(|_| {
                format!("Cannot bind parameter '{name}'. Cannot convert value \"{text}\" to type \"System.Int32\".")
            })
        }
    }
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

fn opt(text: &Option<String>) -> Value {
    text.as_ref().map(|t| s(t)).unwrap_or(Value::Null)
}

fn list(items: &[String]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

fn id_matches(value: &str, pattern: &str) -> bool {
    if pattern.contains('*') || pattern.contains('?') {
        wildcard(value, pattern)
    } else {
        value.eq_ignore_ascii_case(pattern)
    }
}

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

fn get_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

fn set_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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
            .map_err(io_text)?;
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

fn new_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let name = required(b, "Name")?;
    let alias = b
        .str("Alias")
        .or_else(|| {
            b.str("UserPrincipalName")
                .and_then(|u| u.split('@').next().map(str::to_owned))
        })
        .unwrap_or_else(|| name.chars().filter(|c| !c.is_whitespace()).collect());
    if ses.state.find_mailbox(&name).is_some() || ses.state.find_mailbox(&alias).is_some() {
        return Err(format!(
            "The name \"{name}\" is already being used. Please try another name."
        ));
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

fn remove_mailbox(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let index = ses.mailbox_index(b, "Identity")?;
    let name = ses
        .state
        .mailboxes
        .get(index)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    if !ses.should_process(b, &format!("Removing mailbox \"{name}\"."), true)? {
        return Ok(Flow::Nothing);
    }
    ses.state.mailboxes.retain(|m| m.name != name);
    ses.state.permissions.retain(|p| p.identity != name);
    ses.state.move_requests.retain(|r| r.identity != name);
    ses.commit("Remove-Mailbox", &name, b)?;
    Ok(Flow::Nothing)
}

fn get_mailbox_database(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

fn new_move_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let index = ses.mailbox_index(b, "Identity")?;
    let Some(m) = ses.state.mailboxes.get(index).cloned() else {
        return Err(ses.not_found(""));
    };
    if ses.state.move_requests.iter().any(|r| r.identity == m.name) {
        return Err(format!(
            "User '{}' already has a move request associated with it.",
            m.name
        ));
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
        return Err(format!(
            "You can't move mailbox '{}' because it's already in database '{target}'.",
            m.name
        ));
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

fn get_move_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

fn remove_move_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

fn new_transport_rule(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let name = required(b, "Name")?;
    if ses
        .state
        .transport_rules
        .iter()
        .any(|r| r.name.eq_ignore_ascii_case(&name))
    {
        return Err(format!(
            "A transport rule with the name '{name}' already exists."
        ));
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

fn get_transport_rule(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

fn remove_transport_rule(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

fn add_mailbox_permission(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let index = ses.mailbox_index(b, "Identity")?;
    let name = ses
        .state
        .mailboxes
        .get(index)
        .map(|m| m.name.clone())
        .unwrap_or_default();
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

fn get_mailbox_permission(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let index = ses.mailbox_index(b, "Identity")?;
    let name = ses
        .state
        .mailboxes
        .get(index)
        .map(|m| m.name.clone())
        .unwrap_or_default();
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

fn remove_mailbox_permission(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let index = ses.mailbox_index(b, "Identity")?;
    let name = ses
        .state
        .mailboxes
        .get(index)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let user = required(b, "User")?;
    let rights = rights(b)?;
    let deny = b.flag("Deny");
    let Some(pos) = ses.state.permissions.iter().position(|p| {
        p.identity == name
            && same_user(&p.user, &user)
            && p.deny == deny
            && rights.iter().all(|r| p.access_rights.contains(r))
    }) else {
        return Err(format!(
            "Can't remove the access control entry on the object \"{name}\" for account \"{user}\" because the ACE doesn't exist on the object."
        ));
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

fn search_admin_audit_log(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

fn new_mailbox_export_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let index = ses.mailbox_index(b, "Mailbox")?;
    let mailbox = ses
        .state
        .mailboxes
        .get(index)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let path = required(b, "FilePath")?;
    if !path.starts_with("\\\\") {
        return Err(format!("The specified path \"{path}\" isn't a UNC path. Use a path like \\\\server\\share\\file.pst."));
    }
    let name = b.str("Name").unwrap_or_else(|| "MailboxExport".into());
    if ses
        .state
        .export_requests
        .iter()
        .any(|r| r.mailbox == mailbox && r.name.eq_ignore_ascii_case(&name))
    {
        return Err(format!(
            "The name '{name}' is already in use for mailbox '{mailbox}'; choose another -Name."
        ));
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

fn get_mailbox_export_request(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
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

// ---- host and utility cmdlets ------------------------------------------------------------

fn get_date(_: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    use time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let text = match b.str("Format").as_deref() {
        Some("o") | Some("s") | Some("u") => now.format(&Rfc3339).map_err(|e| e.to_string())?,
        _ => {
            let fmt = time::macros::format_description!(
                "[weekday], [month repr:long] [day padding:none], [year] [hour repr:12 padding:none]:[minute]:[second] [period]"
            );
            now.format(&fmt).map_err(|e| e.to_string())?
        }
    };
    Ok(Flow::Text(vec![String::new(), text, String::new()]))
}

fn write_host(ses: &mut Session, b: &Bound, input: Flow) -> Result<Flow, String> {
    let mut text = b
        .get("Object")
        .map(|v| {
            v.strings()
                .join(&b.str("Separator").unwrap_or_else(|| " ".into()))
        })
        .unwrap_or_default();
    if let Flow::Text(lines) = input {
        text = lines.join(" ");
    }
    if !b.flag("NoNewline") {
        text.push('\n');
    }
    ses.term.write(&text).map_err(io_text)?;
    Ok(Flow::Nothing)
}

fn read_host(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let prompt = b
        .str("Prompt")
        .map(|p| format!("{p}: "))
        .unwrap_or_default();
    let (count, seen) = (ses.interrupt.clone(), ses.seen);
    let stop = move || count.count() != seen;
    if b.flag("AsSecureString") || b.flag("MaskInput") {
        return match ses.term.read_secret(&prompt, &stop).map_err(io_text)? {
            Input::Eof => Err("Read-Host was stopped: the input ended.".into()),
            Input::Interrupted => Err(INTERRUPTED.into()),
            Input::Line(_) if b.flag("AsSecureString") => {
                Ok(Flow::Text(vec!["System.Security.SecureString".into()]))
            }
            // `-MaskInput` returns the text; it is not echoed back.
            Input::Line(_) => Ok(Flow::Nothing),
        };
    }
    ses.term.write(&prompt).map_err(io_text)?;
    ses.term.flush().map_err(io_text)?;
    match ses.term.read_line(Some(&stop)).map_err(io_text)? {
        Input::Line(line) => Ok(Flow::Text(vec![line])),
        Input::Interrupted => Err(INTERRUPTED.into()),
        Input::Eof => Err("Read-Host was stopped: the input ended.".into()),
    }
}

/// Sleep in short steps so Ctrl-C is noticed quickly.
fn pause(ses: &Session, total: Duration) -> Result<(), String> {
    let deadline = Instant::now() + total;
    loop {
        if ses.interrupted() {
            return Err(INTERRUPTED.into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

fn start_sleep(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let total = match (number(b, "Seconds")?, number(b, "Milliseconds")?) {
        (Some(secs), _) => Duration::from_secs(secs),
        (None, Some(ms)) => Duration::from_millis(ms),
        (None, None) => return Err(
            "Cannot process command because of one or more missing mandatory parameters: Seconds."
                .into(),
        ),
    };
    pause(ses, total)?;
    Ok(Flow::Nothing)
}

/// Largest `Get-LargeOutput -Megabytes` value.
const MAX_LARGE_OUTPUT_MB: u64 = 4096;

fn get_large_output(ses: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let mb = number(b, "Megabytes")?.unwrap_or(1);
    if mb > MAX_LARGE_OUTPUT_MB {
        return Err(format!(
            "Megabytes `{mb}` is more than the limit of {MAX_LARGE_OUTPUT_MB}."
        ));
    }
    let total = mb * 1024 * 1024;
    let mut written: u64 = 0;
    let mut line_no: u64 = 0;
    let mut chunk = String::with_capacity(70 * 1024);
    while written < total {
        chunk.clear();
        while chunk.len() < 64 * 1024 {
            line_no += 1;
            let user = line_no % 97;
            let trace = line_no.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            // Writing into a String cannot fail.
            let _ = writeln!(
                chunk,
                "{line_no:08} Received  user{user:02}@contoso.com{:12} Delivered to mailbox; trace id {trace:016x}",
                ""
            );
        }
        let room = usize::try_from(total - written).unwrap_or(usize::MAX);
        if chunk.len() > room {
            // The last line is shortened so the output is exactly the size asked for and still
            // ends with a newline (the text is ASCII, so any cut is a character boundary).
            chunk.truncate(room.saturating_sub(1));
            chunk.push('\n');
        }
        let part = chunk.as_str();
        if part.is_empty() {
            break;
        }
        ses.term.write(part).map_err(io_text)?;
        written += part.len() as u64;
        if ses.interrupted() {
            return Err(INTERRUPTED.into());
        }
    }
    Ok(Flow::Nothing)
}

fn exit(_: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let code = match b.get("Code") {
        None => 0,
        Some(Value::Int(n)) => u8::try_from(n.rem_euclid(256)).unwrap_or(1),
        Some(other) => {
            return Err(format!(
                "Cannot convert value \"{}\" to type \"System.Int32\".",
                other.display()
            ))
        }
    };
    Err(format!("{EXIT_PREFIX}{code}"))
}

fn get_command(_: &mut Session, b: &Bound, _: Flow) -> Result<Flow, String> {
    let pattern = b.str("Name");
    let out = cmdlet_names()
        .into_iter()
        .filter(|n| pattern.as_ref().is_none_or(|p| id_matches(n, p)))
        .map(|n| {
            Obj::new(
                "CommandInfo",
                View::Table(cols(&["CommandType", "Name", "Source"])),
            )
            .with("CommandType", s("Cmdlet"))
            .with("Name", s(n))
            .with(
                "Source",
                s(
                    if n.contains("Mailbox")
                        || n.contains("Move")
                        || n.contains("Transport")
                        || n.contains("Audit")
                    {
                        "ExchangeOnlineManagement"
                    } else {
                        "Microsoft.PowerShell.Utility"
                    },
                ),
            )
        })
        .collect();
    Ok(Flow::Objects(out))
}

fn clear_host(ses: &mut Session, _: &Bound, _: Flow) -> Result<Flow, String> {
    ses.term.write("\x1b[H\x1b[2J").map_err(io_text)?;
    Ok(Flow::Nothing)
}

// ---- pipeline cmdlets --------------------------------------------------------------------

fn objects(input: Flow, cmdlet: &str) -> Result<Vec<Obj>, String> {
    match input {
        Flow::Nothing => Ok(Vec::new()),
        Flow::Objects(objs) => Ok(objs),
        Flow::Text(_) => Err(format!(
            "{cmdlet} needs objects as input; formatted text cannot be piped to it."
        )),
    }
}

fn select_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, String> {
    let mut objs = objects(input, "Select-Object")?;
    if let Some(first) = number(b, "First")? {
        objs.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    }
    if let Some(last) = number(b, "Last")? {
        let keep = usize::try_from(last).unwrap_or(usize::MAX);
        let drop = objs.len().saturating_sub(keep);
        objs.drain(..drop);
    }
    if let Some(expand) = b.str("ExpandProperty") {
        let mut lines = Vec::new();
        for o in &objs {
            let value = o
                .get(&expand)
                .ok_or_else(|| format!("Property \"{expand}\" cannot be found."))?;
            lines.extend(value.strings());
        }
        return Ok(Flow::Text(lines));
    }
    let props = b.list("Property");
    if props.is_empty() || props.iter().any(|p| p == "*") {
        return Ok(Flow::Objects(objs));
    }
    let view = if props.len() <= 4 {
        View::Table(props.clone())
    } else {
        View::List(props.clone())
    };
    let out = objs
        .iter()
        .map(|o| {
            let mut n = Obj::new("Selected", view.clone());
            for p in &props {
                let (name, value) = o
                    .props
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(p))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap_or_else(|| (p.clone(), Value::Null));
                n.props.push((name, value));
            }
            let (View::Table(c) | View::List(c)) = &mut n.view;
            *c = n.props.iter().map(|(k, _)| k.clone()).collect();
            n
        })
        .collect();
    Ok(Flow::Objects(out))
}

fn where_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, String> {
    let filter = match b.get("FilterScript") {
        Some(Value::Block(text)) => Filter::parse(text)?,
        _ => {
            return Err(
                "Where-Object needs a script block, as in Where-Object { $_.Name -eq 'x' }.".into(),
            )
        }
    };
    let objs = objects(input, "Where-Object")?;
    let kept = objs
        .into_iter()
        .filter(|o| filter.matches(&|p| o.get(p).cloned()))
        .collect();
    Ok(Flow::Objects(kept))
}

fn sort_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, String> {
    let mut objs = objects(input, "Sort-Object")?;
    let keys = b.list("Property");
    objs.sort_by(|x, y| {
        let key = |o: &Obj| -> Vec<String> {
            if keys.is_empty() {
                o.props
                    .first()
                    .map(|(_, v)| vec![v.display().to_lowercase()])
                    .unwrap_or_default()
            } else {
                keys.iter()
                    .map(|k| {
                        o.get(k)
                            .map(|v| v.display().to_lowercase())
                            .unwrap_or_default()
                    })
                    .collect()
            }
        };
        key(x).cmp(&key(y))
    });
    if b.flag("Descending") {
        objs.reverse();
    }
    Ok(Flow::Objects(objs))
}

fn format_table(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, String> {
    let objs = objects(input, "Format-Table")?;
    let Some(first) = objs.first() else {
        return Ok(Flow::Nothing);
    };
    let mut columns = b.list("Property");
    if columns.is_empty() {
        columns = match &first.view {
            View::Table(c) => c.clone(),
            View::List(c) => c.clone(),
        };
    } else if columns.iter().any(|c| c == "*") {
        columns = first.names();
    }
    let mut text = render_table(&objs, &columns);
    if b.flag("HideTableHeaders") {
        text = text.lines().skip(3).map(|l| format!("{l}\n")).collect();
    }
    Ok(Flow::Text(
        text.trim_end_matches('\n')
            .split('\n')
            .map(str::to_owned)
            .chain([String::new()])
            .collect(),
    ))
}

fn format_list(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, String> {
    let objs = objects(input, "Format-List")?;
    let mut columns = b.list("Property");
    if columns.is_empty() {
        columns = vec!["*".into()];
    }
    let text = render_list(&objs, &columns);
    Ok(Flow::Text(
        text.trim_end_matches('\n')
            .split('\n')
            .map(str::to_owned)
            .chain([String::new()])
            .collect(),
    ))
}

fn measure_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, String> {
    let count = match &input {
        Flow::Text(lines) => lines.len(),
        _ => 0,
    };
    let objs = objects(input, "Measure-Object").unwrap_or_default();
    let count = count.max(objs.len());
    let property = b.str("Property");
    let numbers: Vec<f64> = match &property {
        Some(p) => objs
            .iter()
            .filter_map(|o| o.get(p))
            .filter_map(|v| v.display().parse::<f64>().ok())
            .collect(),
        None => Vec::new(),
    };
    let stat = |on: bool, f: &dyn Fn(&[f64]) -> f64| -> Value {
        if on && !numbers.is_empty() {
            Value::Str(f(&numbers).to_string())
        } else {
            Value::Null
        }
    };
    let obj = Obj::new(
        "GenericMeasureInfo",
        View::List(cols(&[
            "Count", "Average", "Sum", "Maximum", "Minimum", "Property",
        ])),
    )
    .with(
        "Count",
        Value::Int(i64::try_from(count).unwrap_or(i64::MAX)),
    )
    .with(
        "Average",
        stat(b.flag("Average"), &|n| {
            n.iter().sum::<f64>() / n.len() as f64
        }),
    )
    .with("Sum", stat(b.flag("Sum"), &|n| n.iter().sum()))
    .with(
        "Maximum",
        stat(b.flag("Maximum"), &|n| {
            n.iter().copied().fold(f64::MIN, f64::max)
        }),
    )
    .with(
        "Minimum",
        stat(b.flag("Minimum"), &|n| {
            n.iter().copied().fold(f64::MAX, f64::min)
        }),
    )
    .with("Property", property.map(Value::Str).unwrap_or(Value::Null));
    Ok(Flow::Objects(vec![obj]))
}
