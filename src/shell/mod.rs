//! The gated shell: a PTY proxy between the admin's terminal and a management runspace.
//!
//! jitsh owns line editing while the runspace sits at its prompt (it learns where it stands
//! from OSC 133 markers, see [`osc`]); each complete line goes to the gate, and only an allowed
//! line is sent on. While a command runs, keystrokes pass through raw (confirmation prompts,
//! Ctrl-C). Every session is recorded (asciicast v2) and audited.
//!
//! Module map: [`osc`] and [`line`] and [`meta`] are pure; [`term`] (raw mode), [`pty`]
//! (the runspace), [`record`] (recording), [`service`] (approval service calls) and [`access`]
//! (policies and tokens) do the I/O; [`proxy`] is the event loop.

pub mod access;
pub mod control;
pub mod line;
pub mod local_service;
pub(crate) mod logfile;
pub mod meta;
pub(crate) mod osc;
pub mod proxy;
pub mod pty;
pub mod purview;
pub(crate) mod purview_admin;
pub mod record;
pub mod service;
pub mod term;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::audit::keys::AuditSigner;
use crate::audit::log::{AuditError, AuditLog};
use crate::audit::AuditEvent;
use crate::token::SigningKey;

use crate::gate::LineDecision;
use crate::policy::Effect;

/// Why a session could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("the runspace could not be started: {0}")]
    Spawn(String),
    #[error("{0}")]
    Config(String),
    #[error("the session recording could not be written: {0}")]
    Record(String),
    #[error("terminal i/o failed: {0}")]
    Io(String),
    #[error("the approval service: {0}")]
    Service(String),
    #[error("no approval service is configured; start the shell with `--server URL` (or set JITSH_SERVER)")]
    NoService,
}

/// Everything a session needs to start.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// The runspace command line (program first).
    pub runspace: Vec<OsString>,
    pub access: access::AccessConfig,
    /// Folder for `<session-id>.cast` (and `audit/` when no service keeps the audit log).
    pub record_dir: PathBuf,
    /// The runspace reads a multi-line command as one unit (PowerShell does; jitsh-exsim reads
    /// one line at a time). When false, multi-line commands are refused: sent line by line,
    /// they would run as separate commands the gate never judged.
    pub multiline: bool,
    /// The audit spool folder (default: `record_dir/spool`); the local demo service keeps
    /// one in its own state folder, since its credentials are its own.
    pub spool_dir: Option<PathBuf>,
}

/// Run one interactive session; returns the runspace's exit status (128+signal if killed).
pub async fn run(config: ShellConfig) -> Result<i32, ShellError> {
    proxy::Session::start(config).await?.run().await
}

/// A fresh session id: UTC time plus randomness, so ids sort by start time and never collide.
pub(crate) fn new_session_id() -> String {
    let now = chrono::Utc::now();
    let mut random = [0u8; 6];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), record::hex(&random))
}

/// The message shown when a line is refused in the shell: which invocation, which rule, and the
/// `:request` meta-command that asks for access. Lines end with `\r\n` (the terminal is in raw
/// mode).
pub(crate) fn refusal_message(d: &LineDecision) -> String {
    crate::text::escape_lines(&refusal_text(d, true), "\r\n")
}

/// The refusal for `jitsh exec` and piped input, where `:request` does not exist: it names
/// `jitsh request` instead. Lines end with `\n`.
pub(crate) fn exec_refusal_message(d: &LineDecision) -> String {
    crate::text::escape_lines(&refusal_text(d, false), "\n")
}

fn refusal_text(d: &LineDecision, in_shell: bool) -> String {
    let blocking = d
        .invocations
        .iter()
        .find(|i| i.decision == Effect::Deny)
        .or_else(|| {
            d.invocations
                .iter()
                .find(|i| i.decision == Effect::Approval)
        });
    let esc = |t: &str| crate::text::escape(t).into_owned();
    let mut msg = String::new();
    match (d.decision, blocking) {
        (Effect::Approval, Some(inv)) => {
            if d.reason == inv.reason {
                msg.push_str(&format!(
                    "jitsh: {}; no valid token covers it\n",
                    esc(&d.reason)
                ));
            } else {
                msg.push_str(&format!("jitsh: {}\n", esc(&d.reason)));
            }
            // One way to ask, the one that works where the line was typed.
            if in_shell {
                msg.push_str(&format!(
                    "  ask for it: :request {} --reason \"...\" --for 1h\n",
                    esc(&inv.name)
                ));
            } else {
                msg.push_str(&format!(
                    "  ask for it: jitsh request --task {} --reason \"...\" --for 1h\n",
                    esc(&inv.name)
                ));
            }
        }
        (_, Some(inv)) => msg.push_str(&format!("jitsh: denied: {}\n", esc(&inv.reason))),
        (_, None) => msg.push_str(&format!("jitsh: denied: {}\n", esc(&d.reason))),
    }
    msg
}

/// The asciicast marker label for a gate decision: decision, deciding rule(s), token id(s).
pub(crate) fn marker_label(d: &LineDecision) -> String {
    let rules: Vec<&str> = d
        .invocations
        .iter()
        .filter_map(|i| i.rule.as_deref())
        .collect();
    let tokens: Vec<&str> = d
        .invocations
        .iter()
        .filter_map(|i| i.token.as_deref())
        .collect();
    let list = |v: &[&str]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    format!(
        "gate: {} rule={} token={}",
        d.decision.as_str(),
        list(&rules),
        list(&tokens)
    )
}

/// Audit event helper.
pub fn event(actor: &str, action: &str, subject: &str, outcome: &str) -> AuditEvent {
    AuditEvent {
        time: now_rfc3339(),
        actor: actor.to_string(),
        action: action.to_string(),
        subject: subject.to_string(),
        outcome: outcome.to_string(),
        details: serde_json::Map::new(),
    }
}

/// The current time as an audit event's RFC 3339 text.
pub fn now_rfc3339() -> String {
    crate::rfc3339::format(chrono::Utc::now()).unwrap_or_default()
}

/// Where a session's audit events go: to the approval service when one is configured (spooled
/// durably first, forwarded in order, nothing lost while the service is briefly unreachable), to
/// the local chained log otherwise.
///
/// A record that withdraws an earlier one (an allowed line that did not run after all) is
/// owed when the sink cannot take it: it is written before any later record, and until it is,
/// nothing else is recorded (so no privileged line runs).
#[derive(Debug)]
pub(crate) struct SessionAudit {
    sink: Sink,
    owed: std::sync::Mutex<Vec<crate::audit::AuditEvent>>,
}

#[derive(Debug)]
enum Sink {
    Local(AuditLog),
    Service(crate::audit::spool::SpoolingSink),
}

impl SessionAudit {
    /// Open the sink for `user`'s session whose recordings go to `record_dir`. With a service,
    /// the spool is that service's and that user's alone ([`spool_dir`], under `spool_base`,
    /// default `record_dir/spool`): events are never delivered to another service or under
    /// another user's credential. A spool held by another running session is left to it: the
    /// next free sibling (`<key>-2`, ...) is used instead.
    pub fn open(
        record_dir: &Path,
        spool_base: Option<&Path>,
        session_id: &str,
        user: &str,
        service: Option<(String, String)>,
    ) -> Result<SessionAudit, ShellError> {
        match service {
            Some((server, credential)) => {
                let default_base = record_dir.join("spool");
                let base = spool_dir(spool_base.unwrap_or(&default_base), &server, user)?;
                let mut last = None;
                for n in 1..=16usize {
                    let dir = if n == 1 {
                        base.clone()
                    } else {
                        let mut name = base.file_name().unwrap_or_default().to_os_string();
                        name.push(format!("-{n}"));
                        let sibling = base.with_file_name(name);
                        private_dir(&sibling)?;
                        sibling
                    };
                    match crate::audit::spool::SpoolingSink::open(
                        &dir,
                        server.clone(),
                        credential.clone(),
                    ) {
                        Ok(sink) => return Ok(SessionAudit::new(Sink::Service(sink))),
                        Err(e @ crate::audit::spool::SpoolError::Locked(_)) => last = Some(e),
                        Err(e) => return Err(ShellError::Record(format!("audit spool: {e}"))),
                    }
                }
                Err(ShellError::Record(format!(
                    "audit spool: {}",
                    last.map(|e| e.to_string()).unwrap_or_default()
                )))
            }
            None => open_audit(&record_dir.join("audit"), session_id)
                .map(|log| SessionAudit::new(Sink::Local(log))),
        }
    }

    fn new(sink: Sink) -> SessionAudit {
        SessionAudit {
            sink,
            owed: std::sync::Mutex::default(),
        }
    }

    /// Record `event`, after any owed records.
    pub fn append(
        &self,
        event: crate::audit::AuditEvent,
    ) -> Result<u64, crate::audit::AuditSinkError> {
        let mut owed = self
            .owed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(first) = owed.first() {
            self.write(first.clone())?;
            owed.remove(0);
        }
        self.write(event)
    }

    /// Record `event`, which withdraws an earlier record; owed when it cannot be written now.
    pub fn append_or_owe(&self, event: crate::audit::AuditEvent) {
        if let Err(e) = self.append(event.clone()) {
            tracing::warn!("a record is owed to the audit log until it can be written: {e}");
            self.owed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(event);
        }
    }

    fn write(&self, event: crate::audit::AuditEvent) -> Result<u64, crate::audit::AuditSinkError> {
        use crate::audit::AuditSink as _;
        match &self.sink {
            Sink::Local(log) => log.append(event),
            Sink::Service(sink) => sink.append(event),
        }
    }

    /// End of session: seal the local log, or try to deliver what is spooled. Undelivered
    /// events stay in the spool and go out with the next session; that is not an error.
    pub fn close(&self) -> Result<(), String> {
        let owed = std::mem::take(
            &mut *self
                .owed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for event in owed {
            if let Err(e) = self.write(event) {
                tracing::error!("an owed audit record was lost at the end of the session: {e}");
            }
        }
        match &self.sink {
            Sink::Local(log) => log.close().map_err(|e| e.to_string()),
            Sink::Service(sink) => {
                if let Err(e) = sink.flush(std::time::Duration::from_secs(5)) {
                    tracing::warn!("audit events stay spooled for later delivery: {e}");
                }
                Ok(())
            }
        }
    }
}

/// `BASE/<digest of service URL and user>` (BASE is usually `RECORD_DIR/spool`), created
/// private (0700).
pub(crate) fn spool_dir(base: &Path, server: &str, user: &str) -> Result<PathBuf, ShellError> {
    let mut key = Vec::with_capacity(server.len() + user.len() + 1);
    key.extend_from_slice(server.trim_end_matches('/').as_bytes());
    key.push(0);
    key.extend_from_slice(user.to_ascii_lowercase().as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &key);
    let name = crate::audit::chain::hex(digest.as_ref().get(..12).unwrap_or_default());
    let dir = base.join(name);
    private_dir(&dir)?;
    Ok(dir)
}

fn private_dir(dir: &Path) -> Result<(), ShellError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ShellError::Record(format!("audit spool `{}`: {e}", dir.display())))
}

/// The local audit log (hash-chained, `crate::audit::log`) in `dir`, its checkpoints signed
/// with the local audit key (`dir/signing.key`, created on first use; `dir/signing.pub` verifies
/// it with `jitsh audit verify`). When another session holds the log, this session gets a log
/// of its own in `dir/<session-id>/` rather than none.
pub fn open_audit(dir: &Path, session_id: &str) -> Result<AuditLog, ShellError> {
    let err = |e: &dyn std::fmt::Display| ShellError::Record(format!("audit log: {e}"));
    let key = local_audit_key(dir).map_err(|e| err(&e))?;
    let signer = || Some(AuditSigner::from_signing_key(&key));
    match AuditLog::open(dir, signer()) {
        Ok(log) => Ok(log),
        Err(AuditError::Locked(_)) => {
            AuditLog::open(&dir.join(session_id), signer()).map_err(|e| err(&e))
        }
        Err(e) => Err(err(&e)),
    }
}

/// Load `dir/signing.key`, or create it (mode 0600) with its `signing.pub`.
fn local_audit_key(dir: &Path) -> Result<SigningKey, String> {
    let path = dir.join("signing.key");
    std::fs::create_dir_all(dir).map_err(|e| format!("`{}`: {e}", dir.display()))?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return SigningKey::from_file_text(&text)
                .map_err(|e| format!("`{}`: {e}", path.display()))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("`{}`: {e}", path.display()))
        }
        Err(_) => {}
    }
    let key = SigningKey::generate(&ring::rand::SystemRandom::new())
        .map_err(|e| format!("a new audit key could not be made: {e}"))?;
    use crate::atomic_write::{write, write_new, Mode};
    write_new(&path, key.to_file_text().as_bytes(), Mode::Private)
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    let public = dir.join("signing.pub");
    write(
        &public,
        key.public_key().to_file_text().as_bytes(),
        Mode::Public,
    )
    .map_err(|e| format!("`{}`: {e}", public.display()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::InvocationDecision;

    #[test]
    #[allow(clippy::unwrap_used, reason = "test failures are panics")]
    fn each_service_and_user_has_a_private_spool() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = spool_dir(&dir.path().join("spool"), "https://svc-a:8750", "alice").unwrap();
        assert_eq!(
            a,
            spool_dir(&dir.path().join("spool"), "https://svc-a:8750/", "Alice").unwrap()
        );
        let others = [
            spool_dir(&dir.path().join("spool"), "https://svc-b:8750", "alice").unwrap(),
            spool_dir(&dir.path().join("spool"), "https://svc-a:8750", "bob").unwrap(),
        ];
        assert!(others.iter().all(|o| *o != a), "{others:?}");
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    fn inv(name: &str, decision: Effect, rule: Option<&str>) -> InvocationDecision {
        InvocationDecision {
            name: name.into(),
            as_written: name.into(),
            depth: 0,
            decision,
            rule: rule.map(Into::into),
            token: None,
            dynamic: false,
            reason: match decision {
                Effect::Approval => format!(
                    "`{name}` needs approval under rule `{}`",
                    rule.unwrap_or("-")
                ),
                _ => format!("`{name}` is denied by rule `{}`", rule.unwrap_or("-")),
            },
            params: Vec::new(),
            kind: crate::invocation::TaskKind::Command,
        }
    }

    #[test]
    fn approval_refusal_names_invocation_rule_and_request_command() {
        let d = LineDecision {
            text: String::new(),
            error: None,
            decision: Effect::Approval,
            reason: "`New-MoveRequest` needs approval under rule `mailbox-moves`".into(),
            incomplete: false,
            invocations: vec![
                inv("Get-Mailbox", Effect::Allow, Some("read-only")),
                inv("New-MoveRequest", Effect::Approval, Some("mailbox-moves")),
            ],
        };
        let m = refusal_message(&d);
        assert!(m.contains(
            "`New-MoveRequest` needs approval under rule `mailbox-moves`; no valid token covers it"
        ));
        assert!(m.contains(":request New-MoveRequest --reason \"...\" --for 1h"));
        assert!(!m.contains("jitsh request"), "{m}");
        assert_eq!(m.matches("New-MoveRequest").count(), 2, "{m}");
        let e = exec_refusal_message(&d);
        assert!(
            e.contains("jitsh request --task New-MoveRequest --reason \"...\" --for 1h\n"),
            "{e}"
        );
        assert!(!e.contains(":request") && !e.contains('\r'), "{e}");
        assert_eq!(
            marker_label(&d),
            "gate: approval rule=read-only,mailbox-moves token=-"
        );
    }

    #[test]
    fn deny_refusal_prefers_the_denied_invocation() {
        let d = LineDecision {
            text: String::new(),
            error: None,
            decision: Effect::Deny,
            reason: "denied".into(),
            incomplete: false,
            invocations: vec![
                inv("New-MoveRequest", Effect::Approval, Some("mailbox-moves")),
                inv("Invoke-Expression", Effect::Deny, Some("never")),
            ],
        };
        assert!(
            refusal_message(&d).contains("denied: `Invoke-Expression` is denied by rule `never`")
        );
    }

    #[test]
    fn session_ids_differ() {
        assert_ne!(new_session_id(), new_session_id());
    }
}
