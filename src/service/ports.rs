//! What the service needs from the policy engine, the token signer and the audit log.
//! (Interim policy and audit implementations live here until `crate::policy` and
//! `crate::audit::log` are available.)

use std::path::Path;
use std::time::Duration;

use crate::audit::{AuditEvent, AuditSink, AuditSinkError};
use crate::token::{Claims, SigningKey, TokenError};

/// The parts of an approval rule the workflow uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRule {
    pub id: String,
    /// `false`: the service approves at once.
    pub manual: bool,
    pub approvers: Vec<String>,
    /// Empty: anyone may request.
    pub requesters: Vec<String>,
    pub max_duration: Option<Duration>,
    pub min_approvals: u32,
    /// Constraints in the policy file's `params` form, as JSON.
    pub params: Option<serde_json::Value>,
}

/// A loaded, validated policy set.
pub trait Policies: Send + Sync + std::fmt::Debug {
    /// Approval rules that cover `task`, in a stable order.
    fn approval_rules_for(&self, task: &str) -> Vec<ApprovalRule>;
    /// Tasks of the policy role `name`, if it exists.
    fn role_tasks(&self, name: &str) -> Option<Vec<String>>;
}

/// Load every `*.toml` in `dir`; the whole load fails on any error.
pub fn load_policies(dir: &Path) -> Result<Box<dyn Policies>, String> {
    let mut sources = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("policy folder `{}` could not be read: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("policy file `{}` could not be read: {e}", path.display()))?;
            sources.push((path.display().to_string(), text));
        }
    }
    sources.sort();
    policies_from_sources(&sources)
}

/// Validate a set of `(file name, text)` sources as one policy set.
pub fn policies_from_sources(sources: &[(String, String)]) -> Result<Box<dyn Policies>, String> {
    interim::Set::from_sources(sources).map(|s| Box::new(s) as Box<dyn Policies>)
}

/// The service's signing key (`STATE/signing.key`, the format `jitsh keygen` writes).
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// Load `STATE/signing.key`, or create it (mode 0600) and `STATE/signing.pub` if absent.
    pub fn load_or_create(state: &Path) -> Result<Signer, String> {
        let key_path = state.join("signing.key");
        let pub_path = state.join("signing.pub");
        let key = match std::fs::read_to_string(&key_path) {
            Ok(text) => SigningKey::from_file_text(&text)
                .map_err(|e| format!("signing key `{}`: {e}", key_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&ring::rand::SystemRandom::new())
                    .map_err(|e| format!("no signing key could be made: {e}"))?;
                super::directory::write_private_atomic(&key_path, key.to_file_text().as_bytes())
                    .map_err(|e| {
                        format!(
                            "signing key `{}` could not be written: {e}",
                            key_path.display()
                        )
                    })?;
                key
            }
            Err(e) => {
                return Err(format!(
                    "signing key `{}` could not be read: {e}",
                    key_path.display()
                ))
            }
        };
        if !pub_path.exists() {
            std::fs::write(&pub_path, key.public_key().to_file_text()).map_err(|e| {
                format!(
                    "public key `{}` could not be written: {e}",
                    pub_path.display()
                )
            })?;
        }
        Ok(Signer { key })
    }

    /// Key id carried in the token footer.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// Sign `claims` as a PASETO v4.public token.
    pub fn issue(&self, claims: &Claims) -> Result<String, TokenError> {
        crate::token::issue(claims, &self.key)
    }
}

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenAuditError {
    /// Another process (a running service) holds it.
    #[error("audit log `{0}` is in use by another process")]
    Locked(String),
    #[error("{0}")]
    Other(String),
}

/// Open the audit log at `STATE/audit.jsonl`.
pub fn open_audit(state: &Path) -> Result<std::sync::Arc<dyn AuditSink>, OpenAuditError> {
    Ok(std::sync::Arc::new(interim::JsonlAudit::new(
        state.join("audit.jsonl"),
    )))
}

mod interim {
    use std::io::Write as _;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug)]
    pub(super) struct JsonlAudit {
        path: PathBuf,
        seq: Mutex<u64>,
    }

    impl JsonlAudit {
        pub(super) fn new(path: PathBuf) -> JsonlAudit {
            JsonlAudit {
                path,
                seq: Mutex::new(0),
            }
        }
    }

    impl AuditSink for JsonlAudit {
        fn append(&self, event: AuditEvent) -> Result<u64, AuditSinkError> {
            let err = |m: String| AuditSinkError {
                path: self.path.display().to_string(),
                message: m,
            };
            let mut seq = self.seq.lock().map_err(|_| err("poisoned".into()))?;
            let mut line = serde_json::to_string(&event).map_err(|e| err(e.to_string()))?;
            line.push('\n');
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.path)
                .map_err(|e| err(e.to_string()))?;
            f.write_all(line.as_bytes())
                .map_err(|e| err(e.to_string()))?;
            f.sync_data().map_err(|e| err(e.to_string()))?;
            *seq += 1;
            Ok(*seq)
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct File {
        #[serde(default)]
        roles: std::collections::BTreeMap<String, RoleDef>,
        #[serde(default)]
        rule: Vec<RuleDef>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct RoleDef {
        tasks: Vec<String>,
    }

    #[derive(Debug, Clone, serde::Deserialize)]
    struct RuleDef {
        id: String,
        effect: String,
        tasks: Vec<String>,
        #[serde(default)]
        except: Vec<String>,
        approval: Option<String>,
        #[serde(default)]
        approvers: Vec<String>,
        #[serde(default)]
        requesters: Vec<String>,
        max_duration: Option<String>,
        min_approvals: Option<u32>,
        params: Option<toml::Value>,
    }

    #[derive(Debug)]
    pub(super) struct Set {
        roles: std::collections::BTreeMap<String, Vec<String>>,
        rules: Vec<RuleDef>,
    }

    impl Set {
        pub(super) fn from_sources(sources: &[(String, String)]) -> Result<Set, String> {
            let mut roles = std::collections::BTreeMap::new();
            let mut rules: Vec<RuleDef> = Vec::new();
            for (name, text) in sources {
                let file: File =
                    toml::from_str(text).map_err(|e| format!("{name}: {}", e.message()))?;
                for (r, def) in file.roles {
                    roles.insert(r.to_ascii_lowercase(), def.tasks);
                }
                for rule in file.rule {
                    if rules.iter().any(|r| r.id == rule.id) {
                        return Err(format!("{name}: rule id `{}` is used twice", rule.id));
                    }
                    if let Some(d) = &rule.max_duration {
                        crate::service::parse_duration(d)
                            .map_err(|e| format!("{name}: rule `{}`: {e}", rule.id))?;
                    }
                    rules.push(rule);
                }
            }
            Ok(Set { roles, rules })
        }

        fn covers(&self, pattern: &str, task: &str) -> bool {
            if let Some(role) = pattern.strip_prefix("role:") {
                return self
                    .roles
                    .get(&role.to_ascii_lowercase())
                    .is_some_and(|ts| ts.iter().any(|t| glob(t, task)));
            }
            glob(pattern, task)
        }
    }

    fn base(name: &str) -> String {
        name.rsplit('\\')
            .next()
            .unwrap_or(name)
            .to_ascii_lowercase()
    }

    fn glob(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = base(pattern).chars().collect();
        let t: Vec<char> = base(text).chars().collect();
        fn m(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| t.get(i..).is_some_and(|s| m(rest, s))),
                Some((c, rest)) => t.split_first().is_some_and(|(d, tr)| c == d && m(rest, tr)),
            }
        }
        m(&p, &t)
    }

    impl Policies for Set {
        fn approval_rules_for(&self, task: &str) -> Vec<ApprovalRule> {
            self.rules
                .iter()
                .filter(|r| r.effect == "approval")
                .filter(|r| r.tasks.iter().any(|p| self.covers(p, task)))
                .filter(|r| !r.except.iter().any(|p| self.covers(p, task)))
                .map(|r| ApprovalRule {
                    id: r.id.clone(),
                    manual: r.approval.as_deref() != Some("auto"),
                    approvers: r.approvers.clone(),
                    requesters: r.requesters.clone(),
                    max_duration: r
                        .max_duration
                        .as_deref()
                        .and_then(|d| crate::service::parse_duration(d).ok()),
                    min_approvals: r.min_approvals.unwrap_or(1),
                    params: r.params.as_ref().and_then(|p| serde_json::to_value(p).ok()),
                })
                .collect()
        }

        fn role_tasks(&self, name: &str) -> Option<Vec<String>> {
            self.roles.get(&name.to_ascii_lowercase()).cloned()
        }
    }
}
