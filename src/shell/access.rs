//! What the session may do right now: policies, the tokens it holds, the approval service.
//!
//! Every line is checked with a fresh clock reading, so a token that expires mid-session stops
//! covering the very next line. Tokens are verified once, when loaded; time, user, scope are the
//! gate's to check on every line. With an approval service, every token a line leans on is
//! confirmed at the service before the line runs (revocation, locks, the holder's identity and
//! counted uses take effect on the next line, with no cache). When the service cannot be
//! reached, only tokens whose rule allows offline use count, inside that rule's bound; lines
//! that standing access allows still run.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::service::{self, Service};
use super::ShellError;
use crate::catalog::Catalog;
use crate::gate::{self, LineDecision};
use crate::policy::{self, Effect, PolicySet};
use crate::token::{self, PublicKey, TrustStore, VerifiedToken};

/// A token the session holds, verified once when it was loaded, with where it came from.
#[derive(Clone)]
pub(crate) struct HeldToken {
    pub token: VerifiedToken,
    /// `file PATH` or `request ID`.
    pub source: String,
}

impl std::fmt::Debug for HeldToken {
    // The token is a bearer credential: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldToken")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A request sent from this session and not yet turned into a token.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub task: String,
    pub status: String,
}

/// The result of checking one line.
#[derive(Debug)]
pub struct Checked {
    pub decision: LineDecision,
    /// True when a token was needed to allow the line (a privileged line).
    pub privileged: bool,
}

/// Policies, tokens and the service connection of one session.
#[derive(Debug)]
pub struct Access {
    policies: PolicySet,
    catalog: &'static Catalog,
    trust: TrustStore,
    skew: chrono::Duration,
    user: String,
    tokens: Vec<HeldToken>,
    service: Option<Service>,
    pending: Vec<Pending>,
    /// The user was named explicitly (`--user`, JITSH_USER): it must then be the credential's.
    user_explicit: bool,
    /// Where the policies come from, and what the folder looked like when they were loaded:
    /// a policy file added, changed or removed (`New-ElevatedAccessApprovalPolicy`, an edit)
    /// is in force from the next line on.
    policies_dir: PathBuf,
    policies_stamp: Vec<(String, u64, i64, u64)>,
    /// The folder changed and no longer loads: every line is refused until it does again.
    policies_error: Option<String>,
    /// The elevated access control notice last shown, and when the service was last asked.
    control_seen: Option<Option<String>>,
    control_checked: Option<std::time::Instant>,
}

/// How often a session asks the service whether the elevated access control changed.
const CONTROL_EVERY: Duration = Duration::from_secs(5);

/// Name, size, modification time (ns) and inode of every policy file: any edit changes it.
fn folder_stamp(dir: &std::path::Path) -> Vec<(String, u64, i64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out: Vec<(String, u64, i64, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let m = e.metadata().ok()?;
                    Some((
                        name,
                        m.len(),
                        m.mtime()
                            .saturating_mul(1_000_000_000)
                            .saturating_add(m.mtime_nsec()),
                        m.ino(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Where policies, tokens and keys come from.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub policies_dir: PathBuf,
    pub user: String,
    /// `user` came from `--user` or JITSH_USER rather than the login name.
    pub user_explicit: bool,
    pub token_files: Vec<PathBuf>,
    pub trust_keys: Vec<PathBuf>,
    /// Clock skew tolerated on token validity.
    pub skew: Duration,
    pub server: Option<String>,
    pub credential: Option<String>,
}

impl Access {
    pub fn load(config: &AccessConfig) -> Result<Access, ShellError> {
        let policies_stamp = folder_stamp(&config.policies_dir);
        let policies = policy::load_dir(&config.policies_dir).map_err(|errors| {
            ShellError::Config(format!(
                "the policies in `{}` were not loaded: {}",
                config.policies_dir.display(),
                errors.to_string().replace('\n', "; ")
            ))
        })?;
        let mut trust = TrustStore::new();
        for path in &config.trust_keys {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ShellError::Config(format!("trust key `{}`: {e}", path.display())))?;
            let key = PublicKey::from_file_text(&text)
                .map_err(|e| ShellError::Config(format!("trust key `{}`: {e}", path.display())))?;
            trust.add(key);
        }
        if !config.token_files.is_empty() && trust.is_empty() {
            return Err(ShellError::Config(
                "a token can only be honoured with the approval service's public key: add \
                 --trust-key FILE (the service's STATE/signing.pub)"
                    .into(),
            ));
        }
        let mut tokens = Vec::new();
        for path in &config.token_files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ShellError::Config(format!("token file `{}`: {e}", path.display())))?;
            let text = text.trim().to_string();
            // Refuse a bad token file at start rather than ignore it silently.
            let verified = token::verify(&text, &trust)
                .map_err(|e| ShellError::Config(format!("token file `{}`: {e}", path.display())))?;
            tokens.push(HeldToken {
                token: verified,
                source: format!("file {}", path.display()),
            });
        }
        let service = match &config.server {
            Some(url) => Some(Service::new(url, config.credential.clone())?),
            None => None,
        };
        Ok(Access {
            policies,
            catalog: Catalog::builtin(),
            trust,
            skew: chrono::Duration::from_std(config.skew).unwrap_or(chrono::Duration::zero()),
            user: config.user.clone(),
            tokens,
            service,
            pending: Vec::new(),
            user_explicit: config.user_explicit,
            policies_dir: config.policies_dir.clone(),
            policies_stamp,
            policies_error: None,
            control_seen: None,
            control_checked: None,
        })
    }

    /// Load the policy folder again when it changed since it was loaded. A folder that no
    /// longer loads refuses every line (fail closed) until it is fixed.
    pub fn refresh_policies(&mut self) {
        let stamp = folder_stamp(&self.policies_dir);
        if stamp == self.policies_stamp {
            return;
        }
        self.policies_stamp = stamp;
        match policy::load_dir(&self.policies_dir) {
            Ok(set) => {
                self.policies = set;
                self.policies_error = None;
            }
            Err(errors) => {
                self.policies_error = Some(format!(
                    "the policies in `{}` changed and no longer load ({}); every line is refused until they do",
                    self.policies_dir.display(),
                    errors.to_string().replace('\n', "; ")
                ));
            }
        }
    }

    /// With an approval service, the session's user is the one its credential authenticates
    /// as: a token is honoured only for its holder. An explicit `--user` that names someone
    /// else is refused; without one the credential's name is taken. When the service cannot be
    /// reached the name stays as configured (the service checks the holder at each use anyway).
    pub async fn bind_identity(&mut self) -> Result<(), ShellError> {
        let Some(service) = &self.service else {
            return Ok(());
        };
        let name = match service.me().await {
            Ok(name) => name,
            Err(service::Confirm::Refused(why)) => return Err(ShellError::Config(why)),
            Err(_) => return Ok(()),
        };
        if name == self.user || name.to_lowercase() == self.user.to_lowercase() {
            return Ok(());
        }
        if self.user_explicit {
            return Err(ShellError::Config(format!(
                "--user `{}` is not `{name}`, the user the approval service credential belongs to: a gate that talks to the service runs as its credential's user",
                self.user
            )));
        }
        self.user = name;
        Ok(())
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The elevated access control notice now (banner, `:status`): approval control disabled,
    /// or this is a system account. Display only; nothing the gate decides depends on it.
    pub async fn control_notice(&mut self) -> Option<String> {
        let service = self.service.as_ref()?;
        let now = super::control::notice(service).await?;
        self.control_checked = Some(std::time::Instant::now());
        self.control_seen = Some(now.clone());
        now
    }

    /// A notice line when the control changed since it was last shown (asked at most every
    /// few seconds).
    pub async fn control_change(&mut self) -> Option<String> {
        let service = self.service.as_ref()?;
        if self
            .control_checked
            .is_some_and(|t| t.elapsed() < CONTROL_EVERY)
        {
            return None;
        }
        self.control_checked = Some(std::time::Instant::now());
        let now = super::control::notice(service).await?;
        if self.control_seen.as_ref() == Some(&now) {
            return None;
        }
        let before = self.control_seen.replace(now.clone());
        match now {
            Some(text) => Some(text),
            None if before.flatten().is_some() => Some(
                "approval control is enabled again: requests under approval rules wait for their approvers".into(),
            ),
            None => None,
        }
    }

    /// Cmdlet names for Tab completion.
    pub fn command_names(&self) -> Vec<String> {
        self.catalog.command_names().map(str::to_string).collect()
    }

    pub fn has_service(&self) -> bool {
        self.service.is_some()
    }

    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// Gate one line with the clock as it is now.
    pub async fn check(&mut self, line: &str) -> Checked {
        self.refresh_policies();
        if let Some(why) = &self.policies_error {
            return Checked {
                decision: LineDecision {
                    text: line.to_string(),
                    decision: Effect::Deny,
                    reason: why.clone().into(),
                    incomplete: false,
                    error: None,
                    invocations: Vec::new(),
                },
                privileged: false,
            };
        }
        let first = self.decide(line, &HashSet::new(), self.service.is_some());
        let privileged = uses_tokens(&first);
        let Some(service) = &self.service else {
            return Checked {
                decision: first,
                privileged,
            };
        };
        if !privileged {
            return Checked {
                decision: first,
                privileged,
            };
        }
        let tokens = self.verified_tokens();
        let decision = service::decide_confirmed(service, &tokens, |refused, online| {
            self.decide(line, refused, online)
        })
        .await;
        Checked {
            decision,
            privileged,
        }
    }

    /// The gate's decision now, without the tokens in `refused`; `online` says every covering
    /// token will be confirmed at the service before the line runs.
    fn decide(&self, line: &str, refused: &HashSet<String>, online: bool) -> LineDecision {
        let now = chrono::Utc::now();
        let verified = self.verified_tokens();
        let ctx = gate::GateContext {
            policies: &self.policies,
            catalog: self.catalog,
            user: &self.user,
            now,
            tokens: &verified,
            revoked: refused,
            skew: self.skew,
            online,
        };
        gate::check_line(line, &ctx)
    }

    /// The held tokens (signatures verified when loaded). Time, user, scope and revocation are
    /// the gate's to check, line by line.
    fn verified_tokens(&self) -> Vec<VerifiedToken> {
        self.tokens.iter().map(|t| t.token.clone()).collect()
    }

    /// One line per held token: where it came from, its id, tasks, expiry and whether it
    /// counts right now.
    pub fn token_lines(&self) -> Vec<String> {
        let now = chrono::Utc::now();
        self.tokens
            .iter()
            .map(|t| {
                let c = t.token.claims();
                let state = match t.token.check(now, self.skew, &self.user) {
                    Ok(()) if self.service.is_some() => {
                        "valid (confirmed with the service at each use)".to_string()
                    }
                    Ok(()) => "valid".to_string(),
                    Err(e) => e.to_string(),
                };
                let exp = crate::rfc3339::format(c.exp).unwrap_or_default();
                format!(
                    "{} ({}): rule {}, tasks {}, until {exp}: {state}",
                    c.jti,
                    t.source,
                    c.rule,
                    c.tasks.join(","),
                )
            })
            .collect()
    }

    /// The approval service connection, if any.
    pub fn service(&self) -> Option<&Service> {
        self.service.as_ref()
    }

    /// The policies the gate decides with.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    /// Watch a request made outside `:request` (Purview's `New-ElevatedAccessRequest`): its
    /// token is picked up once it is approved.
    pub fn track(&mut self, id: &str, task: &str) {
        self.pending.push(Pending {
            id: id.to_string(),
            task: task.to_string(),
            status: "pending".into(),
        });
    }

    /// Take up the tokens of this user's approved requests that the session does not hold yet
    /// (a request made with `New-ElevatedAccessRequest` in an earlier `jitsh exec`). Each token
    /// is verified against the trusted keys like any other and still confirmed at use.
    pub async fn adopt_approved(&mut self) -> Vec<String> {
        let Some(service) = &self.service else {
            return Vec::new();
        };
        let Ok(page) = service
            .api(
                reqwest::Method::GET,
                "/v1/requests?mine=true&status=approved",
                None,
            )
            .await
        else {
            return Vec::new();
        };
        let held: HashSet<String> = self
            .tokens
            .iter()
            .map(|t| t.token.claims().jti.clone())
            .collect();
        let ids: Vec<(String, String)> = page
            .get("requests")
            .and_then(|r| r.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter(|r| {
                        r.get("grant")
                            .and_then(|g| g.get("jti"))
                            .and_then(|j| j.as_str())
                            .is_none_or(|j| !held.contains(j))
                    })
                    .filter_map(|r| {
                        let id = r.get("id")?.as_str()?.to_string();
                        let task = r
                            .get("task")
                            .and_then(|t| t.as_str())
                            .unwrap_or("")
                            .to_string();
                        Some((id, task))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut notices = Vec::new();
        for (id, task) in ids {
            let Ok(Some(text)) = service.fetch_token(&id).await else {
                continue;
            };
            match token::verify(&text, &self.trust) {
                Ok(verified) => self.tokens.push(HeldToken {
                    token: verified,
                    source: format!("request {id} ({task})"),
                }),
                Err(e) => notices.push(format!(
                    "request {id} for `{task}` was approved, but its token cannot be used: {e}"
                )),
            }
        }
        notices
    }

    /// Send a request to the service; returns its id.
    pub async fn request(&mut self, spec: &super::meta::RequestSpec) -> Result<String, ShellError> {
        let Some(service) = &self.service else {
            return Err(ShellError::NoService);
        };
        let id = service.create_request(spec).await?;
        tracing::info!("request sent: `{id}` for `{}`", spec.task);
        self.pending.push(Pending {
            id: id.clone(),
            task: spec.task.clone(),
            status: "pending".into(),
        });
        Ok(id)
    }

    /// A system account needs no approval: for a line that waits on approval, file a request
    /// for each command it needs (the service grants a system account's requests at once, and
    /// audits them) and take up the tokens. The tokens stay the gate's only proof: when the
    /// service does not grant, nothing changes. Returns what happened, one notice each; nothing
    /// when the user is not a system account.
    pub async fn request_as_system_account(&mut self, decision: &LineDecision) -> Vec<String> {
        let Some(service) = &self.service else {
            return Vec::new();
        };
        let system = service
            .api(reqwest::Method::GET, "/v1/control", None)
            .await
            .ok()
            .and_then(|v| v.get("system_account").and_then(|s| s.as_bool()))
            == Some(true);
        if !system {
            return Vec::new();
        }
        let mut tasks: Vec<String> = decision
            .invocations
            .iter()
            .filter(|i| {
                i.decision == Effect::Approval && i.kind == crate::invocation::TaskKind::Command
            })
            .map(|i| i.name.to_string())
            .collect();
        tasks.sort();
        tasks.dedup();
        let mut notices = Vec::new();
        for task in tasks {
            let spec = super::meta::RequestSpec {
                task: task.clone(),
                reason: "system account: automation without approval (Enable-ElevatedAccessControl -SystemAccounts)".into(),
                duration: "1h".into(),
                params: Vec::new(),
            };
            match self.request(&spec).await {
                Ok(id) => notices.push(format!(
                    "request {id} for `{task}` filed as a system account"
                )),
                Err(e) => notices.push(format!("no request for `{task}` could be filed: {e}")),
            }
        }
        notices.extend(self.poll().await);
        notices
    }

    /// Ask the service about pending requests; fetch the tokens of approved ones. Returns one
    /// notice per change (approved, denied, ...).
    pub async fn poll(&mut self) -> Vec<String> {
        let Some(service) = &self.service else {
            return Vec::new();
        };
        let mut notices = Vec::new();
        let mut still = Vec::new();
        for mut p in std::mem::take(&mut self.pending) {
            match service.request_status(&p.id).await {
                Ok(status) if status == "approved" => match service.fetch_token(&p.id).await {
                    Ok(Some(text)) => match token::verify(&text, &self.trust) {
                        Ok(verified) => {
                            notices.push(format!(
                                "request {} for `{}` was approved; its token is now in use",
                                p.id, p.task
                            ));
                            self.tokens.push(HeldToken {
                                token: verified,
                                source: format!("request {} ({})", p.id, p.task),
                            });
                        }
                        Err(e) => notices.push(format!(
                            "request {} for `{}` was approved, but its token cannot be used: {e} \
                             (if the service's signing key changed, check its new fingerprint \
                             with the operator and run `jitsh login` again)",
                            p.id, p.task
                        )),
                    },
                    _ => {
                        p.status = status;
                        still.push(p);
                    }
                },
                Ok(status) if status == "pending" => still.push(p),
                Ok(status) => {
                    notices.push(format!("request {} for `{}` is {status}", p.id, p.task))
                }
                Err(_) => still.push(p),
            }
        }
        self.pending = still;
        notices
    }
}

/// Whether the line's decision depends on approval: some invocation needs approval or is
/// covered by a token.
fn uses_tokens(d: &LineDecision) -> bool {
    d.invocations
        .iter()
        .any(|i| i.token.is_some() || i.decision == Effect::Approval)
}
