//! What the service takes from the policy engine, the token module and the audit log: rule
//! snapshots, the signing key, and the audit log opened with that key.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditError, AuditLog, AuditSigner};
use crate::policy::{ApprovalMode, PolicySet, PolicySource, Rule};
use crate::token::{Claims, SigningKey, TokenError};

/// The parts of an approval rule the workflow uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApprovalRule {
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
    /// How long after issue a gate may honour the grant without reaching the service.
    pub offline: Option<Duration>,
}

/// The approval rule's snapshot the workflow keeps with a request.
pub(crate) fn approval_rule(rule: &Rule) -> ApprovalRule {
    ApprovalRule {
        id: rule.id.clone(),
        manual: rule.approval == ApprovalMode::Manual,
        approvers: rule.approvers.clone(),
        requesters: rule.requesters.clone(),
        max_duration: rule.max_duration,
        min_approvals: rule.min_approvals,
        params: rule.params.as_ref().map(|p| p.to_json()),
        offline: rule.offline,
    }
}

/// Load every `*.toml` in `dir`; the whole load fails on any error.
pub(crate) fn load_policies(dir: &Path) -> Result<PolicySet, String> {
    crate::policy::load_dir(dir).map_err(|e| e.to_string())
}

/// Validate a set of `(file name, text)` sources as one policy set.
pub(crate) fn policies_from_sources(sources: &[(String, String)]) -> Result<PolicySet, String> {
    let sources: Vec<PolicySource> = sources
        .iter()
        .map(|(name, text)| PolicySource::new(name.clone(), text.clone()))
        .collect();
    PolicySet::from_sources(&sources).map_err(|e| e.to_string().replace('\n', "; "))
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
            crate::atomic_write::write(
                &pub_path,
                key.public_key().to_file_text().as_bytes(),
                crate::atomic_write::Mode::Public,
            )
            .map_err(|e| {
                format!(
                    "public key `{}` could not be written: {e}",
                    pub_path.display()
                )
            })?;
        }
        Ok(Signer { key })
    }

    /// Load `STATE/signing.key`, which must exist (repairs never make a new key).
    pub fn load_existing(state: &Path) -> Result<Signer, String> {
        let key_path = state.join("signing.key");
        let text = std::fs::read_to_string(&key_path).map_err(|e| {
            format!(
                "signing key `{}` could not be read: {e}",
                key_path.display()
            )
        })?;
        SigningKey::from_file_text(&text)
            .map(|key| Signer { key })
            .map_err(|e| format!("signing key `{}`: {e}", key_path.display()))
    }

    /// A signer for `key` (the deployment's key, from the PostgreSQL store).
    pub fn from_key(key: SigningKey) -> Signer {
        Signer { key }
    }

    /// The key itself, to share it through the PostgreSQL store.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The audit checkpoint signer of this key.
    pub fn audit_signer(&self) -> AuditSigner {
        AuditSigner {
            kid: self.key.kid().to_owned(),
            seed: *self.key.seed(),
        }
    }

    /// The key that seals the store's requests, derived from the signing key (never stored).
    pub fn store_sealer(&self) -> super::sqlite::Sealer {
        super::sqlite::Sealer::from_seed(self.key.seed())
    }

    /// Key id carried in the token footer.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// The public key gates verify tokens with (published at `GET /v1/keys`).
    pub fn public_key(&self) -> crate::token::PublicKey {
        self.key.public_key()
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

/// Open the tamper-evident audit log in `STATE/audit/`, its checkpoints signed with the
/// service's key (so `jitsh audit verify STATE/audit --trust-key STATE/signing.pub` checks it)
/// and its head anchored in `STATE/audit.anchor` (a log cut back, rewritten or extended by
/// hand does not open).
pub fn open_audit(state: &Path, signer: &Signer) -> Result<Arc<AuditLog>, OpenAuditError> {
    open_audit_witnessed(state, signer, None)
}

/// [`open_audit`], every checkpoint also sent to `syslog` (spooled in `STATE/audit-witness/`
/// while the collector is away).
pub fn open_audit_witnessed(
    state: &Path,
    signer: &Signer,
    syslog: Option<&crate::audit::ForwardTarget>,
) -> Result<Arc<AuditLog>, OpenAuditError> {
    let (dir, checkpoints, anchor) = audit_parts(state, signer)?;
    let opened = match syslog {
        None => AuditLog::open_anchored(&dir, Some(checkpoints), Default::default(), anchor),
        Some(target) => {
            let witness = crate::audit::transport::witness::SyslogWitness::start(
                target.clone(),
                &state.join("audit-witness"),
            )
            .map_err(|e| OpenAuditError::Other(e.to_string()))?;
            AuditLog::open_witnessed(
                &dir,
                Some(checkpoints),
                Default::default(),
                anchor,
                Box::new(witness),
            )
        }
    };
    match opened {
        Ok(log) => Ok(Arc::new(log)),
        Err(AuditError::Locked(path)) => Err(OpenAuditError::Locked(path)),
        Err(e) => Err(OpenAuditError::Other(e.to_string())),
    }
}

/// `jitsh audit repair`: re-anchor the state folder's log after a person reviewed it. Returns
/// the mismatch that was repaired, or `None` when log and store agreed.
pub(crate) fn repair_audit(
    state: &Path,
    signer: &Signer,
    actor: &str,
) -> Result<Option<String>, OpenAuditError> {
    let (dir, checkpoints, anchor) = audit_parts(state, signer)?;
    match AuditLog::repair(&dir, Some(checkpoints), anchor, actor) {
        Ok(found) => Ok(found),
        Err(AuditError::Locked(path)) => Err(OpenAuditError::Locked(path)),
        Err(e) => Err(OpenAuditError::Other(e.to_string())),
    }
}

type AuditParts = (
    std::path::PathBuf,
    AuditSigner,
    Box<dyn crate::audit::Anchor>,
);

fn audit_parts(state: &Path, signer: &Signer) -> Result<AuditParts, OpenAuditError> {
    let dir = state.join("audit");
    std::fs::create_dir_all(&dir).map_err(|e| {
        OpenAuditError::Other(format!(
            "audit folder `{}` could not be created: {e}",
            dir.display()
        ))
    })?;
    let checkpoints = AuditSigner {
        kid: signer.key.kid().to_owned(),
        seed: *signer.key.seed(),
    };
    let anchor = crate::audit::FileAnchor::open(&state.join(crate::audit::anchor::STATE_FILE))
        .map_err(OpenAuditError::Other)?;
    Ok((dir, checkpoints, Box::new(anchor)))
}
