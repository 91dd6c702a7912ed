//! The cmdlets: their signatures (parameters, positions, pipeline binding), aliases, and shared
//! helpers; the implementations live in one file per area.

mod exchange;
mod host;
mod pipeline;

use super::lang::{wildcard, Bound, Kind, Value};
use super::session::{Flow, Session, Stop};
use exchange::*;
use host::*;
use pipeline::*;

type Run = fn(&mut Session, &Bound, Flow) -> Result<Flow, Stop>;

/// A cmdlet's signature and implementation.
pub(super) struct Cmdlet {
    pub(super) name: &'static str,
    pub(super) params: &'static [(&'static str, Kind)],
    pub(super) positional: &'static [&'static str],
    /// Parameters filled from the same-named property of each piped object (ByPropertyName).
    /// When set and objects are piped in, the cmdlet runs once per object.
    pub(super) by_property: &'static [&'static str],
    pub(super) run: Run,
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

pub(super) fn lookup(name: &str) -> Option<&'static Cmdlet> {
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
