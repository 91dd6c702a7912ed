//! The organisation the runspace manages, kept in a JSON file that is rewritten atomically
//! (temp file, fsync, rename, fsync of the folder) after every change so tests can read it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ExsimError;

/// Everything the cmdlets read and change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub organization: String,
    pub databases: Vec<Database>,
    pub mailboxes: Vec<Mailbox>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    #[serde(default)]
    pub move_requests: Vec<MoveRequest>,
    #[serde(default)]
    pub transport_rules: Vec<TransportRule>,
    #[serde(default)]
    pub export_requests: Vec<ExportRequest>,
    #[serde(default)]
    pub admin_audit_log: Vec<AuditEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    pub server: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: String,
    pub alias: String,
    pub display_name: String,
    pub primary_smtp_address: String,
    pub database: String,
    pub recipient_type_details: String,
    pub prohibit_send_quota: String,
    #[serde(default)]
    pub forwarding_smtp_address: Option<String>,
    #[serde(default)]
    pub deliver_to_mailbox_and_forward: bool,
    #[serde(default)]
    pub hidden_from_address_lists_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    /// The mailbox's name.
    pub identity: String,
    pub user: String,
    pub access_rights: Vec<String>,
    #[serde(default)]
    pub deny: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoveRequest {
    /// The mailbox's name.
    pub identity: String,
    pub display_name: String,
    pub source_database: String,
    pub target_database: String,
    pub status: String,
    #[serde(default)]
    pub batch_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportRule {
    pub name: String,
    pub state: String,
    pub priority: u32,
    #[serde(default)]
    pub from: Vec<String>,
    #[serde(default)]
    pub sent_to: Vec<String>,
    #[serde(default)]
    pub subject_contains_words: Vec<String>,
    #[serde(default)]
    pub redirect_message_to: Vec<String>,
    #[serde(default)]
    pub blind_copy_to: Vec<String>,
    #[serde(default)]
    pub delete_message: bool,
    #[serde(default)]
    pub comments: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub name: String,
    /// The mailbox's name.
    pub mailbox: String,
    pub file_path: String,
    pub status: String,
}

/// One `Search-AdminAuditLog` entry; every change a cmdlet makes appends one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub cmdlet_name: String,
    pub object_modified: String,
    pub cmdlet_parameters: Vec<String>,
    pub caller: String,
    pub succeeded: bool,
    /// RFC 3339.
    pub run_date: String,
}

impl State {
    /// The demo organisation a new state file starts with.
    pub fn seeded() -> Self {
        let org = "contoso.com";
        let people = [
            (
                "Administrator",
                "Administrator",
                "Administrator",
                "DB01",
                "UserMailbox",
            ),
            (
                "Alice Johnson",
                "alice",
                "Alice Johnson",
                "DB01",
                "UserMailbox",
            ),
            ("Bob Smith", "bob", "Bob Smith", "DB01", "UserMailbox"),
            ("Carol Diaz", "carol", "Carol Diaz", "DB01", "UserMailbox"),
            // The mailbox the README's quick start moves.
            ("Rob Turner", "rob", "Rob Turner", "DB01", "UserMailbox"),
            ("David Lee", "david", "David Lee", "DB02", "UserMailbox"),
            ("Erin Walsh", "erin", "Erin Walsh", "DB02", "UserMailbox"),
            (
                "Frank Miller",
                "frank",
                "Frank Miller (Finance)",
                "DB02",
                "UserMailbox",
            ),
            (
                "Support",
                "support",
                "Contoso Support",
                "DB02",
                "SharedMailbox",
            ),
        ];
        let mailboxes = people
            .iter()
            .map(|(name, alias, display, db, kind)| Mailbox {
                name: (*name).to_owned(),
                alias: (*alias).to_owned(),
                display_name: (*display).to_owned(),
                primary_smtp_address: format!("{}@{org}", alias.to_ascii_lowercase()),
                database: (*db).to_owned(),
                recipient_type_details: (*kind).to_owned(),
                prohibit_send_quota: "Unlimited".to_owned(),
                forwarding_smtp_address: None,
                deliver_to_mailbox_and_forward: false,
                hidden_from_address_lists_enabled: false,
            })
            .collect();
        let full = |identity: &str, user: &str| Permission {
            identity: identity.to_owned(),
            user: user.to_owned(),
            access_rights: vec!["FullAccess".to_owned()],
            deny: false,
        };
        State {
            organization: org.to_owned(),
            databases: vec![
                Database {
                    name: "DB01".into(),
                    server: "EX01".into(),
                },
                Database {
                    name: "DB02".into(),
                    server: "EX02".into(),
                },
            ],
            mailboxes,
            permissions: vec![
                full("Support", "CONTOSO\\alice"),
                full("Support", "CONTOSO\\bob"),
                full("Frank Miller", "CONTOSO\\carol"),
            ],
            move_requests: Vec::new(),
            transport_rules: vec![TransportRule {
                name: "External disclaimer".into(),
                state: "Enabled".into(),
                priority: 0,
                from: Vec::new(),
                sent_to: Vec::new(),
                subject_contains_words: Vec::new(),
                redirect_message_to: Vec::new(),
                blind_copy_to: Vec::new(),
                delete_message: false,
                comments: Some("Appends the legal disclaimer to outbound mail".into()),
            }],
            export_requests: Vec::new(),
            admin_audit_log: Vec::new(),
        }
    }

    /// The server that hosts `database`, for display.
    pub fn server_of(&self, database: &str) -> String {
        self.databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(database))
            .map(|d| d.server.clone())
            .unwrap_or_default()
    }

    /// Find a mailbox by name, alias, display name or SMTP address (case-insensitive).
    pub fn find_mailbox(&self, identity: &str) -> Option<usize> {
        self.mailboxes.iter().position(|m| {
            [&m.name, &m.alias, &m.display_name, &m.primary_smtp_address]
                .iter()
                .any(|v| v.eq_ignore_ascii_case(identity))
        })
    }
}

/// Where the state lives.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the state, creating the seeded demo organisation when the file does not exist.
    pub fn load_or_seed(&self) -> Result<State, ExsimError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ExsimError::StateFormat {
                path: self.path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = State::seeded();
                self.save(&state)?;
                Ok(state)
            }
            Err(e) => Err(self.io(e)),
        }
    }

    /// Replace the file atomically: a reader sees the old state or the new one, never half.
    pub fn save(&self, state: &State) -> Result<(), ExsimError> {
        let text = serde_json::to_string_pretty(state).map_err(|e| ExsimError::StateFormat {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io(e)
        })
    }

    fn io(&self, source: std::io::Error) -> ExsimError {
        ExsimError::StateIo {
            path: self.path.display().to_string(),
            source,
        }
    }
}
