//! What the session may do right now: policies, the tokens it holds, the approval service.
//!
//! Every line is checked with a fresh clock reading, so a token that expires mid-session stops
//! covering the very next line. Tokens are re-verified on every check (signature, user, time),
//! never cached as "good". Fail closed: when the service cannot be reached for revocations, a
//! line that needs a token is refused; lines that standing access allows still run.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::service::Service;
use super::ShellError;
use crate::catalog::Catalog;
use crate::gate::{self, LineDecision};
use crate::policy::{self, Effect, PolicySet};
use crate::token::{self, PublicKey, TrustStore, VerifiedToken};

/// How long a fetched revocation list is trusted.
const REVOCATIONS_MAX_AGE: Duration = Duration::from_secs(5);

/// A token the session holds, verified once when it was loaded, with where it came from.
#[derive(Clone)]
pub struct HeldToken {
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
    skew: time::Duration,
    user: String,
    tokens: Vec<HeldToken>,
    service: Option<Service>,
    pending: Vec<Pending>,
    revoked: HashSet<String>,
    revoked_at: Option<Instant>,
}

/// Where policies, tokens and keys come from.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub policies_dir: PathBuf,
    pub user: String,
    pub token_files: Vec<PathBuf>,
    pub trust_keys: Vec<PathBuf>,
    /// Clock skew tolerated on token validity.
    pub skew: Duration,
    pub server: Option<String>,
    pub credential: Option<String>,
}

impl Access {
    pub fn load(config: &AccessConfig) -> Result<Access, ShellError> {
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
            skew: time::Duration::try_from(config.skew).unwrap_or(time::Duration::ZERO),
            user: config.user.clone(),
            tokens,
            service,
            pending: Vec::new(),
            revoked: HashSet::new(),
            revoked_at: None,
        })
    }

    pub fn user(&self) -> &str {
        &self.user
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
        let first = self.decide(line, true);
        let privileged = uses_tokens(&first);
        if !privileged || self.service.is_none() {
            return Checked {
                decision: first,
                privileged,
            };
        }
        if self.revocations_fresh() {
            let decision = self.spend_counted_uses(line, first).await;
            return Checked {
                decision,
                privileged,
            };
        }
        // The line leans on a token: the revocation list must be fresh, or no token counts.
        match self.refresh_revocations().await {
            Ok(()) => {
                let decision = self.decide(line, true);
                let decision = self.spend_counted_uses(line, decision).await;
                Checked {
                    decision,
                    privileged,
                }
            }
            Err(e) => {
                let mut decision = self.decide(line, false);
                if decision.decision == Effect::Approval {
                    decision.reason = format!(
                        "the approval service could not be reached to check revocations ({e}); \
                         no token is honoured until it answers"
                    );
                }
                Checked {
                    decision,
                    privileged,
                }
            }
        }
    }

    /// Spend one use of every counted grant the allowed line leans on; if the service does not
    /// count it, the line is decided again without tokens (it does not run on that grant).
    async fn spend_counted_uses(&mut self, line: &str, decision: LineDecision) -> LineDecision {
        if decision.decision != Effect::Allow {
            return decision;
        }
        let verified = self.verified_tokens();
        let counted = gate::counted_grants_used(&decision, &verified);
        let Some(service) = &self.service else {
            return decision;
        };
        for jti in counted {
            if let Err(e) = service.use_grant(&jti).await {
                let mut refused = self.decide(line, false);
                refused.reason = format!("{e}; {}", refused.reason);
                return refused;
            }
        }
        decision
    }

    /// The gate's decision now; `with_tokens == false` decides as if no token were held.
    fn decide(&self, line: &str, with_tokens: bool) -> LineDecision {
        let now = time::OffsetDateTime::now_utc();
        let verified = if with_tokens {
            self.verified_tokens()
        } else {
            Vec::new()
        };
        let ctx = gate::GateContext {
            policies: &self.policies,
            catalog: self.catalog,
            user: &self.user,
            now,
            tokens: &verified,
            revoked: &self.revoked,
            skew: self.skew,
            // Counted grants need the service to count each use (see `check`).
            online: with_tokens && self.service.is_some(),
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
        let now = time::OffsetDateTime::now_utc();
        self.tokens
            .iter()
            .map(|t| {
                let c = t.token.claims();
                let state = if self.revoked.contains(&c.jti) {
                    "revoked".to_string()
                } else {
                    match t.token.check(now, self.skew, &self.user) {
                        Ok(()) => "valid".to_string(),
                        Err(e) => e.to_string(),
                    }
                };
                let exp = c
                    .exp
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
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

    fn revocations_fresh(&self) -> bool {
        self.revoked_at
            .is_some_and(|at| at.elapsed() <= REVOCATIONS_MAX_AGE)
    }

    async fn refresh_revocations(&mut self) -> Result<(), ShellError> {
        let Some(service) = &self.service else {
            return Ok(());
        };
        self.revoked = service.revocations().await?;
        self.revoked_at = Some(Instant::now());
        Ok(())
    }

    /// Send a request to the service; returns its id.
    pub async fn request(&mut self, spec: &super::meta::RequestSpec) -> Result<String, ShellError> {
        let Some(service) = &self.service else {
            return Err(ShellError::NoService);
        };
        let id = service.create_request(spec).await?;
        self.pending.push(Pending {
            id: id.clone(),
            task: spec.task.clone(),
            status: "pending".into(),
        });
        Ok(id)
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
