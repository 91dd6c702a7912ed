//! The approval workflow: who may ask for what, who may decide, and what a decision yields.
//!
//! Every method is blocking (it talks to the store) and is called from `spawn_blocking`. Each
//! mutating method is one store step whose hook writes the audit event before the commit, so an
//! action and its audit record happen together or not at all; a record whose step then fails
//! to commit is withdrawn in the same log ([`steps`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::rand::SecureRandom as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::directory::{valid_name, Directory, Principal};
use super::error::ApiError;
use super::ports::{approval_rule, ApprovalRule, Signer};
use super::store::{
    Approval, ApproveOutcome, Grant, ListQuery, Lock, NewRequest, Notification, Quorum,
    RequestRecord, Status, Store, StoreError, UnixTime,
};
use super::{format_duration, parse_duration, rfc3339};
use crate::audit::outage::Unavailable;
use crate::audit::{AuditEvent, AuditSink, AuditSinkError};
use crate::policy::PolicySet;
use crate::text::escape;

mod answers;
mod control;
mod purview;
mod steps;

pub use control::{DisableBody, EnableBody};

/// A request's `mode` when it was granted at once because its requester is a system account.
pub const MODE_SYSTEM: &str = "system-account";
/// A request's `mode` when it was granted at once because approval control was disabled.
pub const MODE_DISABLED: &str = "control-disabled";

/// Why a request was granted without approval, for its audit record.
fn unattended_why(mode: &str) -> Option<&'static str> {
    match mode {
        MODE_SYSTEM => Some("system account"),
        MODE_DISABLED => Some("approval control disabled"),
        _ => None,
    }
}

pub use answers::{
    ApprovalView, EventsAccepted, GrantUse, GrantView, IssuedToken, LockCleared, LockView, Locks,
    PolicyChanged, PolicyRemoved, RequestPage, RequestView, Revocations, RevokedGrant, UserAdded,
};

/// Longest grant any rule may give.
pub(crate) const MAX_GRANT: Duration = Duration::from_secs(24 * 3600);
const MAX_REASON: usize = 2000;
const MAX_COMMAND: usize = 8192;
/// Largest page of a listing; the default page is [`DEFAULT_PAGE`].
pub(crate) const MAX_LIST: u32 = 500;
pub(crate) const DEFAULT_PAGE: u32 = 100;

/// What one user may file, so nobody floods approvers' lists and mailboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Requests one user may file per hour (0: no limit).
    pub per_hour: u32,
    /// Requests one user may have pending at once (0: no limit).
    pub pending: u32,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            per_hour: 60,
            pending: 20,
        }
    }
}

/// Everything the workflow needs, shared by all handlers.
pub struct Service {
    store: Arc<dyn Store>,
    policies: RwLock<Arc<PolicySet>>,
    policies_dir: PathBuf,
    directory: DirectoryHandle,
    signer: Signer,
    audit: Arc<dyn AuditSink>,
    issuer: String,
    pending_ttl: Duration,
    email: bool,
    webhook: bool,
    gate_limiter: super::gate_events::RateLimiter,
    limits: RequestLimits,
    /// Held from counting a user's requests to inserting the new one, so concurrent filings
    /// cannot together pass a limit each passes alone.
    filing: Mutex<()>,
    /// The store as `store` sees it, with the withdrawals it owes the log.
    steps: Arc<steps::Steps>,
    /// Tokens already signed, by grant `jti`: a grant's token is signed and audited once and
    /// served again while the claims the grant yields now are the same (every check before
    /// signing still runs on each fetch). Expired grants are dropped as new ones arrive.
    issued: Mutex<std::collections::HashMap<String, SignedToken>>,
}

/// A token as signed for a grant, with the claims it carries.
struct SignedToken {
    claims: crate::token::Claims,
    token: String,
    exp: i64,
}

/// Why the service cannot take actions now (`GET /healthz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degraded {
    /// The audit log cannot be written (full disk); every action is refused until it can.
    AuditUnavailable(Unavailable),
    /// `n` records claim actions whose store step failed, and their withdrawals still wait for
    /// the log.
    AbandonmentsOwed(usize),
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("policies_dir", &self.policies_dir)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// How the service is put together.
#[allow(missing_debug_implementations, reason = "holds trait objects")]
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub policies: Arc<PolicySet>,
    pub policies_dir: PathBuf,
    pub directory_path: PathBuf,
    pub signer: Signer,
    pub audit: Arc<dyn AuditSink>,
    pub issuer: String,
    pub pending_ttl: Duration,
    /// Whether mail is configured (otherwise no mail is queued).
    pub email: bool,
    /// Whether a webhook is configured.
    pub webhook: bool,
    pub limits: RequestLimits,
}

/// `POST /v1/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub task: Option<String>,
    pub role: Option<String>,
    /// Pick one of several rules that cover the task.
    pub rule: Option<String>,
    pub reason: Option<String>,
    pub duration: Option<String>,
    #[serde(default)]
    pub params: Option<std::collections::BTreeMap<String, String>>,
    pub ticket: Option<String>,
    pub command: Option<String>,
    pub uses: Option<u32>,
}

/// `POST /v1/locks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    pub scope: String,
    pub reason: Option<String>,
    /// RFC 3339 time or a duration from now (`2h`).
    pub expires: Option<String>,
}

/// `POST /v1/audit/events`: a gate's audit events, forwarded from its spool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateEventsBody {
    pub events: Vec<AuditEvent>,
    /// The sender's id for this batch; a repeat is accepted without logging the events twice.
    pub batch: String,
}

/// Most events in one `POST /v1/audit/events`.
pub(crate) const MAX_GATE_EVENTS: usize = 500;
const MAX_BATCH_ID: usize = 200;

/// `POST /v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub name: String,
    pub email: Option<String>,
    /// The person behind the account when the email does not tell (separation of duties).
    pub person: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Service {
    pub fn new(parts: Parts) -> Result<Service, String> {
        let directory =
            DirectoryHandle::open(parts.directory_path, &parts.store).map_err(|e| e.message)?;
        let steps = Arc::new(steps::Steps::new(parts.store, Arc::clone(&parts.audit)));
        Ok(Service {
            store: Arc::clone(&steps) as Arc<dyn Store>,
            steps,
            policies: RwLock::new(parts.policies),
            policies_dir: parts.policies_dir,
            directory,
            signer: parts.signer,
            audit: parts.audit,
            issuer: parts.issuer,
            pending_ttl: parts.pending_ttl,
            email: parts.email,
            webhook: parts.webhook,
            gate_limiter: Default::default(),
            limits: parts.limits,
            filing: Mutex::new(()),
            issued: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Whether the service can take actions; why not, when it cannot.
    pub fn degraded(&self) -> Option<Degraded> {
        if let Some(u) = self.audit.unavailable() {
            return Some(Degraded::AuditUnavailable(u));
        }
        let owed = self.steps.owed();
        (owed > 0).then_some(Degraded::AbandonmentsOwed(owed))
    }

    /// Write the withdrawals the log is owed (the sweeper calls this each second).
    pub fn settle(&self) -> Result<(), AuditSinkError> {
        self.steps.settle()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn pending_ttl(&self) -> Duration {
        self.pending_ttl
    }

    /// The public keys tokens are signed with (today one: the current signing key).
    pub fn public_keys(&self) -> Vec<crate::token::PublicKey> {
        vec![self.signer.public_key()]
    }

    /// The user presenting `credential`.
    pub fn authenticate(&self, credential: &str) -> Result<Principal, ApiError> {
        // A failure is audited (with its source, within a budget) by the HTTP layer that
        // throttles guessing; never the credential.
        self.directory
            .read()?
            .authenticate(credential)
            .ok_or_else(ApiError::unauthorized)
    }

    /// Record a refused action (who tried what, and why it was refused). The refusal stands
    /// whether or not it could be recorded.
    fn audit_refusal(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        e: &ApiError,
        mut details: Value,
    ) {
        if let Some(d) = details.as_object_mut() {
            d.insert("error".into(), json!(e.code));
            d.insert("message".into(), json!(e.message));
        }
        if let Err(a) = self.append(event(actor, action, subject, "refused", details)) {
            tracing::error!(error = %a, action, "a refusal could not be audited");
        }
    }

    /// The user named `name` as the directory knows them now (the web UI's sessions hold only
    /// the name, so a removed user or a changed group takes effect at once).
    pub fn user(&self, name: &str) -> Result<Option<Principal>, ApiError> {
        Ok(self.directory.read()?.user(name))
    }

    /// Every user in the directory, as principals (never their credential hashes).
    pub fn users(&self) -> Result<Vec<Principal>, ApiError> {
        let dir = self.directory.read()?;
        Ok(dir.users.iter().filter_map(|u| dir.user(&u.name)).collect())
    }

    /// The policies in force (read-only views such as the web UI's).
    pub fn policy_set(&self) -> Result<Arc<PolicySet>, ApiError> {
        self.policies()
    }

    fn policies(&self) -> Result<Arc<PolicySet>, ApiError> {
        self.policies
            .read()
            .map(|p| Arc::clone(&p))
            .map_err(|_| ApiError::internal("policy set unavailable"))
    }

    /// A store error on the way to a decision; an edited database is audited before the
    /// refusal goes out.
    fn tamper_alarm(&self, who: &Principal, step: &str, e: StoreError) -> ApiError {
        if let StoreError::Tampered(id) = &e {
            let logged = self.append(event(
                "jitsh",
                "store.tampered",
                id,
                "error",
                json!({ "refused": step, "caller": who.name }),
            ));
            if let Err(a) = logged {
                tracing::error!(error = %a, "the tampered request could not be audited");
            }
        }
        e.into()
    }

    fn append(&self, event: AuditEvent) -> Result<(), AuditSinkError> {
        self.steps.settle()?;
        let (action, subject) = (event.action.clone(), event.subject.clone());
        let seq = self.audit.append(event)?;
        steps::note(seq, &action, &subject);
        Ok(())
    }

    /// File a request; `auto` rules approve it at once.
    pub fn create(
        &self,
        who: &Principal,
        body: CreateBody,
        now: DateTime<Utc>,
    ) -> Result<RequestView, ApiError> {
        refuse_control_characters(&body)?;
        let reason = body.reason.as_deref().map(str::trim).unwrap_or_default();
        if reason.is_empty() {
            return Err(ApiError::policy(
                "reason_required",
                "a request needs a non-empty `reason` saying why the access is needed",
            ));
        }
        if reason.len() > MAX_REASON {
            return Err(ApiError::policy(
                "reason_too_long",
                format!("the reason is longer than {MAX_REASON} bytes; shorten it"),
            ));
        }
        let duration_text = body.duration.as_deref().unwrap_or_default();
        if duration_text.is_empty() {
            return Err(ApiError::policy(
                "duration_required",
                "a request needs a `duration` such as `1h` or `30m`",
            ));
        }
        let duration = parse_duration(duration_text)
            .map_err(|e| ApiError::bad_request("invalid_duration", e))?;
        let command = match &body.command {
            None => None,
            Some(c) => {
                if c.len() > MAX_COMMAND || c.contains('\n') {
                    return Err(ApiError::policy(
                        "invalid_command",
                        format!("`command` must be one line of at most {MAX_COMMAND} bytes"),
                    ));
                }
                // Resolved as the gates resolve it, on the policies' platform.
                let platform = self.policies()?.defaults().platform;
                Some(canonical_command(c, body.task.as_deref(), platform)?)
            }
        };
        if body.uses == Some(0) {
            return Err(ApiError::policy(
                "invalid_uses",
                "`uses` must be at least 1 when given",
            ));
        }
        let policies = self.policies()?;
        let (target, kind, tasks) = match (&body.task, &body.role) {
            (Some(t), None) if !t.trim().is_empty() => {
                (t.trim().to_owned(), "task", vec![t.trim().to_owned()])
            }
            (None, Some(r)) if !r.trim().is_empty() => {
                let tasks = policies
                    .role(r.trim())
                    .map(<[String]>::to_vec)
                    .ok_or_else(|| {
                        ApiError::policy("unknown_role", format!("no policy role is named `{r}`"))
                    })?;
                (r.trim().to_owned(), "role", tasks)
            }
            _ => {
                return Err(ApiError::policy(
                    "task_required",
                    "a request names exactly one of `task` or `role`",
                ))
            }
        };
        if kind == "task" {
            known_task(&policies, &target)?;
        }
        // A grant for a task that is always denied could never be used: refuse it now rather
        // than have an approver approve it.
        if let Some((task, deny)) = tasks
            .iter()
            .find_map(|t| always_denied(&policies, t).map(|d| (t, d)))
        {
            return Err(ApiError::policy(
                "task_denied",
                format!(
                    "`{task}` is always denied by rule `{deny}`, so no approval can let it run"
                ),
            ));
        }
        let rule = choose_rule(&policies, who, &target, kind, body.rule.as_deref())?;
        if kind == "task" {
            // A task in another module than the rule names would be a grant no gate honours.
            let (task_kind, text) = crate::invocation::TaskKind::split(&target);
            let (module, name) = match text.rsplit_once('\\') {
                Some((m, n)) if task_kind == crate::invocation::TaskKind::Command => (Some(m), n),
                _ => (None, text),
            };
            if !policies
                .rule(&rule.id)
                .is_some_and(|r| r.covers_task_strictly(task_kind, name, module))
            {
                return Err(ApiError::policy(
                    "unknown_task",
                    format!(
                        "rule `{}` does not name `{target}` in that module; request the task as the rule names it",
                        rule.id
                    ),
                ));
            }
        }
        let limit = rule.max_duration.unwrap_or(MAX_GRANT).min(MAX_GRANT);
        if duration > limit {
            return Err(ApiError::policy(
                "duration_too_long",
                format!(
                    "rule `{}` grants at most {}; ask for `{}` or less",
                    rule.id,
                    format_duration(limit),
                    format_duration(limit)
                ),
            ));
        }
        let pins = body.params.unwrap_or_default();
        let grant_params = grant_params(rule.params.as_ref(), &pins)?;
        // A rule without approvers is approved by the default approver group; a system
        // account's request, or any while approval control is disabled, is granted at once
        // (and audited as such): the gate still needs the token.
        let control = self.store.control()?;
        let mode = if !rule.manual {
            "auto"
        } else if control.is_system_account(&who.name) {
            MODE_SYSTEM
        } else if control.disabled.is_some() {
            MODE_DISABLED
        } else {
            "manual"
        };
        let created_at = now.timestamp();
        let _filing = self
            .filing
            .lock()
            .map_err(|_| ApiError::internal("request filing unavailable"))?;
        self.within_limits(who, created_at)?;
        let new = NewRequest {
            id: request_id()?,
            requester: who.name.clone(),
            target,
            target_kind: kind.to_owned(),
            tasks,
            rule: rule.id.clone(),
            mode: mode.to_owned(),
            approvers: control.approvers(&rule.approvers),
            min_approvals: rule.min_approvals.max(1),
            reason: reason.to_owned(),
            ticket: body.ticket.filter(|t| !t.trim().is_empty()),
            command,
            uses: body.uses,
            params: pins
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
            grant_params,
            duration_secs: secs(duration),
            created_at,
            pending_expires_at: created_at.saturating_add(secs(self.pending_ttl)),
        };
        let auto_grant = if mode == "manual" {
            None
        } else {
            Some(self.new_grant(&new, created_at)?)
        };
        let dir = self.directory.read()?;
        let record = self
            .store
            .create_request(&new, auto_grant.as_ref(), &mut |record| {
                self.append(event(
                    &who.name,
                    "request.create",
                    &record.new.id,
                    "ok",
                    json!({
                        "rule": record.new.rule, "tasks": record.new.tasks,
                        "reason": record.new.reason, "duration": format_duration(duration),
                        "params": record.new.params, "ticket": record.new.ticket,
                        "command": record.new.command, "uses": record.new.uses,
                        "mode": record.new.mode,
                    }),
                ))?;
                let mut notes = Vec::new();
                if record.status == Status::Approved {
                    self.append(event(
                        "jitsh",
                        "request.approve",
                        &record.new.id,
                        "approved",
                        json!({ "rule": record.new.rule, "mode": "auto",
                                "why": unattended_why(&record.new.mode),
                                "jti": record.grant.as_ref().map(|g| g.jti.clone()) }),
                    ))?;
                    notes.extend(self.decision_notes(&dir, record));
                } else {
                    notes.extend(self.new_request_notes(&dir, record));
                }
                Ok(notes)
            })?;
        tracing::info!(request = %record.new.id, requester = %who.name, rule = %record.new.rule, status = record.status.as_str(), "request filed");
        Ok(view(&record, now))
    }

    /// A request, if the caller may see it.
    pub fn get(
        &self,
        who: &Principal,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestView, ApiError> {
        let record = self.store.request(id)?;
        // A request filed under a rule without approvers before the default approver group was
        // set is the group's to decide now, so its members see it too.
        let default_group =
            record.new.approvers.is_empty() && who.in_any(&self.store.control()?.approvers(&[]));
        if !(visible(who, &record) || default_group) {
            return Err(ApiError::forbidden(
                "not_visible",
                format!("request `{id}` is neither yours nor one you may approve"),
            ));
        }
        Ok(view(&record, now))
    }

    /// Requests the caller may see, newest first, one page at a time: filtered in the store
    /// before the page is cut, continued with the answer's `next_cursor`.
    pub fn list(
        &self,
        who: &Principal,
        status: Option<Status>,
        mine: bool,
        page: Page,
        now: DateTime<Utc>,
    ) -> Result<RequestPage, ApiError> {
        let limit = page.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_LIST);
        let after = page.cursor.as_deref().map(parse_cursor).transpose()?;
        let query = ListQuery {
            status,
            requester: mine.then(|| who.name.clone()),
            viewer: (!who.is_global_admin()).then(|| (who.name.clone(), who.memberships.clone())),
            after,
            limit,
        };
        let records = self.store.list_page(&query)?;
        let next = (records.len() >= usize::try_from(limit).unwrap_or(usize::MAX))
            .then(|| {
                records
                    .last()
                    .map(|r| format!("{}.{}", r.new.created_at, r.new.id))
            })
            .flatten();
        let items: Vec<RequestView> = records
            .iter()
            .filter(|r| visible(who, r))
            .map(|r| view(r, now))
            .collect();
        Ok(RequestPage {
            next_cursor: next,
            requests: items,
        })
    }

    /// Refuse a request over the filer's hourly or pending allowance (429).
    fn within_limits(&self, who: &Principal, now: UnixTime) -> Result<(), ApiError> {
        let RequestLimits { per_hour, pending } = self.limits;
        if per_hour > 0
            && self.store.count_requests(&who.name, now - 3600, false)? >= u64::from(per_hour)
        {
            return Err(ApiError::too_many(
                "rate_limited",
                format!("you filed {per_hour} requests in the last hour, the most allowed; wait before filing more"),
            ));
        }
        if pending > 0 && self.store.count_requests(&who.name, 0, true)? >= u64::from(pending) {
            return Err(ApiError::too_many(
                "too_many_pending",
                format!("you have {pending} requests waiting for a decision, the most allowed; withdraw some (`jitsh withdraw ID`) or wait for decisions"),
            ));
        }
        Ok(())
    }

    /// One approver's vote; the last vote of the quorum approves and starts the grant's clock.
    ///
    /// `digest` is [`request_digest`] of the request as the approver was shown it; when given it
    /// must match, so an approval never applies to something other than what was displayed.
    pub fn approve(
        &self,
        who: &Principal,
        id: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<RequestView, ApiError> {
        let record = self.store.request(id)?;
        // Every refusal of this vote is audited (who tried, and why).
        let refused = |e: ApiError| {
            self.audit_refusal(&who.name, "request.refused", id, &e, json!({}));
            e
        };
        // The rule as the policies define it now: its approver groups say who may vote and whose
        // earlier votes still count, its quorum how many are needed.
        check_digest(&record, decision.digest.as_deref(), now).map_err(refused)?;
        let rule = self.rule_in_force(&record).map_err(refused)?;
        let dir = self.directory.read()?;
        self.may_decide(who, &record, &rule.approvers, &dir, true)
            .map_err(refused)?;
        let limit = secs(rule.max_duration.unwrap_or(MAX_GRANT).min(MAX_GRANT));
        if record.new.duration_secs > limit || record.new.duration_secs <= 0 {
            return Err(refused(ApiError::conflict(
                "beyond_policy",
                format!(
                    "request `{id}` asks for longer than rule `{}` now allows; it must be filed again",
                    rule.id
                ),
            )));
        }
        let at = now.timestamp();
        self.not_locked_for_approval(who, &record, at)
            .map_err(refused)?;
        let grant = self.new_grant(&record.new, at)?;
        let vote = Approval {
            approver: who.name.clone(),
            comment: decision.comment.filter(|c| !c.trim().is_empty()),
            at,
        };
        let requester = record.new.requester.clone();
        let requester_person = person_of(&dir, &requester);
        // Votes count while their people are approvers of the rule in force, and never the
        // requester's under any of their accounts.
        let counts = |name: &str| {
            !name.eq_ignore_ascii_case(&requester)
                && person_of(&dir, name) != requester_person
                && dir.user(name).is_some_and(|p| p.in_any(&rule.approvers))
        };
        let quorum = Quorum {
            needed: rule.min_approvals.max(1),
            counts: &counts,
        };
        // Set inside the step when the votes, read under its lock, turn out to include this
        // person twice (two accounts approving at once); the step is then rolled back.
        let mut twice = None;
        let outcome = self
            .store
            .approve(id, &vote, &grant, &quorum, &mut |outcome| {
                let (record, state) = match outcome {
                    ApproveOutcome::Recorded { record } => (record, "recorded"),
                    ApproveOutcome::Decided { record } => (record, "approved"),
                };
                if let Some(e) = one_vote_per_person(&dir, record) {
                    twice = Some(e);
                    return Err(crate::audit::AuditSinkError {
                        path: String::new(),
                        message: "vote refused".into(),
                    });
                }
                self.append(event(
                &who.name,
                "request.approve",
                id,
                state,
                json!({
                    "rule": record.new.rule, "comment": vote.comment,
                    "approvals": record.approvals.iter().filter(|a| counts(&a.approver)).count(),
                    "needed": quorum.needed,
                    "jti": record.grant.as_ref().map(|g| g.jti.clone()),
                }),
            ))?;
                Ok(match outcome {
                    ApproveOutcome::Decided { record } => self.decision_notes(&dir, record),
                    ApproveOutcome::Recorded { .. } => Vec::new(),
                })
            });
        let outcome = match (outcome, twice) {
            (_, Some(e)) => return Err(e),
            (outcome, None) => outcome?,
        };
        let record = match outcome {
            ApproveOutcome::Recorded { record } | ApproveOutcome::Decided { record } => record,
        };
        tracing::info!(request = %id, approver = %who.name, status = record.status.as_str(), "approval recorded");
        Ok(view(&record, now))
    }

    /// Refuse a pending request.
    pub fn deny(
        &self,
        who: &Principal,
        id: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<RequestView, ApiError> {
        let comment = decision
            .comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ApiError::policy(
                    "comment_required",
                    "a denial needs a `comment` telling the requester why",
                )
            })?;
        let record = self.store.request(id)?;
        let refused = |e: ApiError| {
            self.audit_refusal(&who.name, "request.refused", id, &e, json!({}));
            e
        };
        // A rule that no longer exists leaves its old approvers the right to refuse.
        let approvers = self
            .rule_in_force(&record)
            .map(|r| r.approvers)
            .unwrap_or_else(|_| record.new.approvers.clone());
        check_digest(&record, decision.digest.as_deref(), now).map_err(refused)?;
        let dir = self.directory.read()?;
        self.may_decide(who, &record, &approvers, &dir, false)
            .map_err(refused)?;
        let record = self
            .store
            .deny(id, &who.name, &comment, now.timestamp(), &mut |record| {
                self.append(event(
                    &who.name,
                    "request.deny",
                    id,
                    "denied",
                    json!({ "rule": record.new.rule, "comment": comment }),
                ))?;
                Ok(self.decision_notes(&dir, record))
            })?;
        Ok(view(&record, now))
    }

    /// The requester takes back a request nobody has decided yet.
    pub fn withdraw(
        &self,
        who: &Principal,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestView, ApiError> {
        let record = self.store.request(id)?;
        if !record.new.requester.eq_ignore_ascii_case(&who.name) {
            return Err(ApiError::forbidden(
                "not_requester",
                format!("only the requester of `{id}` may withdraw it"),
            ));
        }
        let dir = self.directory.read()?;
        let record = self
            .store
            .withdraw(id, &who.name, now.timestamp(), &mut |record| {
                self.append(event(
                    &who.name,
                    "request.withdraw",
                    id,
                    "withdrawn",
                    json!({ "rule": record.new.rule }),
                ))?;
                Ok(self.decision_notes(&dir, record))
            })?;
        Ok(view(&record, now))
    }

    /// A failed authentication from `source`, for the audit log (never the credential).
    pub fn auth_failed(&self, source: &str, why: &str) -> Result<(), ApiError> {
        self.store.record(&mut |()| {
            self.append(event(
                "-",
                "auth.fail",
                source,
                "refused",
                json!({ "why": why }),
            ))?;
            Ok(Vec::new())
        })?;
        Ok(())
    }

    /// End an approved grant early: an approver of its rule, a global admin, or the requester.
    pub fn revoke(
        &self,
        who: &Principal,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<RequestView, ApiError> {
        let record = self.store.request(id)?;
        let own = record.new.requester.eq_ignore_ascii_case(&who.name);
        if !(own || who.is_global_admin() || who.in_any(&record.new.approvers)) {
            return Err(ApiError::forbidden(
                "not_allowed",
                format!(
                    "only the requester, an approver of rule `{}` or a global admin may revoke request `{id}`",
                    record.new.rule
                ),
            ));
        }
        let dir = self.directory.read()?;
        let record = self
            .store
            .revoke(id, &who.name, now.timestamp(), &mut |record| {
                self.append(event(
                    &who.name,
                    "grant.revoke",
                    id,
                    "revoked",
                    json!({ "rule": record.new.rule,
                            "jti": record.grant.as_ref().map(|g| g.jti.clone()) }),
                ))?;
                Ok(self.decision_notes(&dir, record))
            })?;
        Ok(view(&record, now))
    }

    /// The signed token of an approved, live grant (requester only).
    pub fn token(
        &self,
        who: &Principal,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, ApiError> {
        let record = self
            .store
            .request(id)
            .map_err(|e| self.tamper_alarm(who, "token.issue", e))?;
        if !record.new.requester.eq_ignore_ascii_case(&who.name) {
            return Err(ApiError::forbidden(
                "not_requester",
                format!("only the requester of `{id}` may fetch its token"),
            ));
        }
        let grant = match (&record.status, &record.grant) {
            (Status::Approved, Some(g)) => g.clone(),
            (status, _) => {
                return Err(ApiError::conflict(
                    "not_approved",
                    format!("request `{id}` is {}, so it has no token", status.as_str()),
                ))
            }
        };
        let at = now.timestamp();
        if at >= grant.exp {
            return Err(ApiError::conflict(
                "grant_not_live",
                format!("the grant of request `{id}` has expired; file a new request"),
            ));
        }
        if let Some(lock) = self
            .store
            .active_locks(at)?
            .into_iter()
            .find(|l| l.blocks(&grant.sub, &record.new.rule))
        {
            return Err(ApiError::conflict(
                "locked",
                format!("grants for `{}` are locked: {}", lock.scope, lock.reason),
            ));
        }
        // Signed only for what the policy in force allows now: a stored row (edited by hand, or
        // approved under rules since tightened) never yields more than the rule gives.
        let rule = self.rule_in_force(&record)?;
        let params = self.issuable(&record, &grant, &rule)?;
        let claims = crate::token::Claims {
            iss: self.issuer.clone(),
            sub: grant.sub.clone(),
            jti: grant.jti.clone(),
            // The issue instant: offline use is bounded from here.
            iat: from_unix(at.max(grant.nbf))?,
            nbf: from_unix(grant.nbf)?,
            exp: from_unix(grant.exp)?,
            rule: record.new.rule.clone(),
            tasks: record.new.tasks.clone(),
            params,
            request: id.to_owned(),
            approvers: record
                .approvals
                .iter()
                .map(|a| a.approver.clone())
                .collect(),
            uses: grant.uses,
            command: record.new.command.clone(),
            offline: rule.offline.map(|d| d.as_secs()),
            extra: Map::new(),
        };
        let reply = |token: &str| IssuedToken {
            exp: rfc3339(grant.exp),
            jti: grant.jti.clone(),
            kid: self.signer.kid().to_owned(),
            nbf: rfc3339(grant.nbf),
            request: id.to_owned(),
            token: token.to_owned(),
        };
        // The same grant yielding the same claims (but for the issue instant): serve the token
        // signed before. Anything that changed (rule tightened, approvers, the row) signs anew.
        {
            let issued = self
                .issued
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(prev) = issued.get(&grant.jti) {
                let same = crate::token::Claims {
                    iat: prev.claims.iat,
                    ..claims.clone()
                };
                if same == prev.claims {
                    return Ok(reply(&prev.token));
                }
            }
        }
        let token = self
            .signer
            .issue(&claims)
            .map_err(|e| ApiError::internal(format!("the token could not be signed: {e}")))?;
        self.store.record(&mut |()| {
            self.append(event(
                &who.name,
                "token.issue",
                id,
                "ok",
                json!({ "jti": grant.jti, "rule": record.new.rule, "exp": rfc3339(grant.exp) }),
            ))?;
            Ok(Vec::new())
        })?;
        let mut issued = self
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        issued.retain(|_, t| t.exp > at);
        issued.insert(
            grant.jti.clone(),
            SignedToken {
                claims,
                token: token.clone(),
                exp: grant.exp,
            },
        );
        Ok(reply(&token))
    }

    /// What a gate needs to stop honouring grants: the token id and expiry of every grant
    /// revoked since `since`, used up, or under an active lock. Nothing about who holds them or
    /// why: any authenticated user may read this list.
    pub fn revocations(
        &self,
        since: UnixTime,
        now: DateTime<Utc>,
    ) -> Result<Revocations, ApiError> {
        let at = now.timestamp();
        let locks = self.store.active_locks(at)?;
        let mut revoked: Vec<RevokedGrant> = self
            .store
            .revocations(since)?
            .into_iter()
            .map(|r| RevokedGrant {
                exp: rfc3339(r.exp),
                jti: r.jti,
            })
            .collect();
        if !locks.is_empty() {
            for g in self.store.live_grants(at)? {
                if locks.iter().any(|l| l.blocks(&g.sub, &g.rule)) {
                    revoked.push(RevokedGrant {
                        exp: rfc3339(g.exp),
                        jti: g.jti,
                    });
                }
            }
        }
        Ok(Revocations {
            now: rfc3339(at),
            revoked,
        })
    }

    /// Active locks.
    pub fn locks(&self, now: DateTime<Utc>) -> Result<Locks, ApiError> {
        let locks = self.store.active_locks(now.timestamp())?;
        Ok(Locks {
            locks: locks.iter().map(lock_view).collect(),
        })
    }

    /// Confirm a grant at the moment a gate uses it, and spend one use of a counted grant: the
    /// grant's holder only, while it is live, unlocked and its rule still in force.
    pub fn use_grant(
        &self,
        who: &Principal,
        jti: &str,
        now: DateTime<Utc>,
    ) -> Result<GrantUse, ApiError> {
        let at = now.timestamp();
        let grant = self.store.grant(jti)?;
        if !grant.sub.eq_ignore_ascii_case(&who.name) {
            return Err(ApiError::forbidden(
                "not_holder",
                format!("grant `{jti}` belongs to another user"),
            ));
        }
        let record = self.store.request(&grant.request_id)?;
        // A grant is confirmed only while the policy in force still puts its task behind its rule.
        let rule = self.rule_in_force(&record)?;
        // A grant nobody approved ends with what allowed it (control enabled again, or no
        // longer a system account).
        if rule.manual
            && (record.new.mode == MODE_SYSTEM || record.new.mode == MODE_DISABLED)
            && !self.unattended_holds(&record.new)?
        {
            return Err(ApiError::conflict(
                "grant_not_live",
                format!(
                    "grant `{jti}` was given without approval ({}), which no longer holds; file a new request",
                    unattended_why(&record.new.mode).unwrap_or("unattended")
                ),
            ));
        }
        if let Some(lock) = self
            .store
            .active_locks(at)?
            .into_iter()
            .find(|l| l.blocks(&grant.sub, &record.new.rule))
        {
            return Err(ApiError::conflict(
                "locked",
                format!("grants for `{}` are locked: {}", lock.scope, lock.reason),
            ));
        }
        let grant = self.store.use_grant(jti, at, &mut |g| {
            self.append(event(
                &who.name,
                "grant.use",
                &g.request_id,
                "ok",
                json!({ "jti": g.jti, "used": g.used, "uses": g.uses }),
            ))?;
            Ok(Vec::new())
        })?;
        Ok(GrantUse {
            remaining: grant.uses.map(|u| u.saturating_sub(grant.used)),
            jti: grant.jti,
            used: grant.used,
            uses: grant.uses,
        })
    }

    /// Set a lock (global admin only).
    pub fn set_lock(
        &self,
        who: &Principal,
        body: LockBody,
        now: DateTime<Utc>,
    ) -> Result<LockView, ApiError> {
        require_admin(who, "set locks").inspect_err(|e| {
            self.audit_refusal(
                &who.name,
                "lock.refused",
                "-",
                e,
                json!({ "wanted": "set locks" }),
            );
        })?;
        let scope = check_scope(&body.scope)?;
        let reason = body
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                ApiError::policy("reason_required", "a lock needs a non-empty `reason`")
            })?;
        let at = now.timestamp();
        let expires_at = match body.expires.as_deref() {
            None | Some("") => None,
            Some(text) => Some(parse_expiry(text, at)?),
        };
        if let Some(t) = expires_at.filter(|&t| t <= at) {
            return Err(ApiError::policy(
                "lock_expired",
                format!(
                    "a lock ending at {} would already be over; give a later time or a duration such as `2h`",
                    rfc3339(t)
                ),
            ));
        }
        let lock = Lock {
            scope,
            reason,
            set_by: who.name.clone(),
            set_at: at,
            expires_at,
        };
        self.store.set_lock(&lock, &mut |l| {
            self.append(event(
                &who.name,
                "lock.set",
                &l.scope,
                "ok",
                lock_details(l),
            ))?;
            Ok(self.webhook_note(format!(
                "jitsh: {} locked `{}` ({})",
                who.name,
                l.scope,
                escape(&l.reason)
            )))
        })?;
        Ok(lock_view(&lock))
    }

    /// Clear a lock (global admin only).
    pub fn clear_lock(&self, who: &Principal, scope: &str) -> Result<LockCleared, ApiError> {
        require_admin(who, "clear locks").inspect_err(|e| {
            self.audit_refusal(
                &who.name,
                "lock.refused",
                "-",
                e,
                json!({ "wanted": "clear locks" }),
            );
        })?;
        let scope = check_scope(scope)?;
        let lock = self.store.clear_lock(&scope, &mut |l| {
            self.append(event(
                &who.name,
                "lock.clear",
                &l.scope,
                "ok",
                lock_details(l),
            ))?;
            Ok(self.webhook_note(format!(
                "jitsh: {} cleared the lock on `{}`",
                who.name, l.scope
            )))
        })?;
        Ok(LockCleared {
            cleared: lock_view(&lock),
        })
    }

    /// Replace or add one policy file after validating the whole set (global admin only).
    pub fn put_policy(
        &self,
        who: &Principal,
        file: &str,
        text: &str,
    ) -> Result<PolicyChanged, ApiError> {
        require_admin(who, "change policies").inspect_err(|e| {
            self.audit_refusal(
                &who.name,
                "policy.refused",
                "-",
                e,
                json!({ "wanted": "change policies" }),
            );
        })?;
        let valid_file = file.len() <= 100
            && file.ends_with(".toml")
            && file
                .trim_end_matches(".toml")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && file.len() > ".toml".len();
        if !valid_file {
            return Err(ApiError::bad_request(
                "invalid_file_name",
                format!("`{file}` is not a policy file name; use letters, digits, `-`, `_` and the `.toml` extension"),
            ));
        }
        let mut sources = read_sources(&self.policies_dir)?;
        sources.retain(|(name, _)| name != file);
        sources.push((file.to_owned(), text.to_owned()));
        sources.sort();
        let set = super::ports::policies_from_sources(&sources)
            .map_err(|e| ApiError::policy("policy_invalid", e))?;
        let path = self.policies_dir.join(file);
        // Staged beside the target (fsynced, mode kept) and put in place only once audited.
        let staged = crate::atomic_write::stage(
            &path,
            text.as_bytes(),
            crate::atomic_write::Mode::KeepOr(0o644),
        )
        .map_err(|e| ApiError::internal(format!("policy file could not be written: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let sha: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let recorded = self.store.record(&mut |()| {
            self.append(event(
                &who.name,
                "policy.change",
                file,
                "ok",
                json!({ "sha256": sha, "bytes": text.len() }),
            ))?;
            Ok(self.webhook_note(format!("jitsh: {} changed policy file `{file}`", who.name)))
        });
        // Dropping the staged file on failure leaves the old policy file as it was.
        recorded?;
        staged
            .commit()
            .map_err(|e| ApiError::internal(format!("policy file could not be written: {e}")))?;
        let mut current = self
            .policies
            .write()
            .map_err(|_| ApiError::internal("policy set unavailable"))?;
        *current = Arc::new(set);
        Ok(PolicyChanged {
            file: file.to_owned(),
            sha256: sha,
        })
    }

    /// Add a user and return their credential, once (global admin only).
    pub fn add_user(&self, who: &Principal, body: UserBody) -> Result<UserAdded, ApiError> {
        require_admin(who, "add users").inspect_err(|e| {
            self.audit_refusal(
                &who.name,
                "user.refused",
                "-",
                e,
                json!({ "wanted": "add users" }),
            );
        })?;
        let added = || {
            event(
                &who.name,
                "user.add",
                &body.name,
                "ok",
                json!({ "groups": body.groups, "roles": body.roles, "email": body.email,
                        "person": body.person }),
            )
        };
        let credential = if self.store.keeps_directory() {
            // One step on the shared directory: every replica sees the user at once.
            let mut credential = None;
            self.store.change_directory(
                &mut |dir| {
                    let c = dir.add_user(
                        &body.name,
                        body.email.clone(),
                        body.groups.clone(),
                        body.roles.clone(),
                    )?;
                    dir.set_person(&body.name, body.person.clone());
                    credential = Some(c);
                    Ok(())
                },
                &mut |()| {
                    self.append(added())?;
                    Ok(Vec::new())
                },
            )?;
            credential.ok_or_else(|| ApiError::internal("the user was not added"))?
        } else {
            self.directory.add_user(
                &body.name,
                body.email.clone(),
                body.person.clone(),
                body.groups.clone(),
                body.roles.clone(),
                &mut || {
                    self.store.record(&mut |()| {
                        self.append(added())?;
                        Ok(Vec::new())
                    })
                },
            )?
        };
        Ok(UserAdded {
            credential: credential.expose().to_owned(),
            name: body.name,
        })
    }

    /// Take a gate's batch of its own session and gate events for the audit log: queued in the
    /// inbox in one step, so they are durable when this returns and reach the log in arrival
    /// order through [`Service::drain_audit`] (run right after by the handler, and every
    /// second by the sweeper).
    pub fn gate_events(
        &self,
        who: &Principal,
        body: GateEventsBody,
        now: DateTime<Utc>,
    ) -> Result<EventsAccepted, ApiError> {
        let id = body.batch;
        if id.is_empty() || id.len() > MAX_BATCH_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::bad_request(
                "invalid_batch",
                format!(
                    "`batch` must be 1 to {MAX_BATCH_ID} printable ASCII characters without spaces"
                ),
            ));
        }
        if body.events.is_empty() || body.events.len() > MAX_GATE_EVENTS {
            return Err(ApiError::policy(
                "invalid_event_count",
                format!(
                    "a batch carries 1 to {MAX_GATE_EVENTS} events, not {}",
                    body.events.len()
                ),
            ));
        }
        self.gate_limiter.take(&who.name, body.events.len(), now)?;
        let sent = serde_json::to_vec(&body.events)
            .map_err(|e| ApiError::internal(format!("events could not be encoded: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &sent);
        let sha256: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let events =
            super::gate_events::admit(&who.name, &id, body.events, self.store.as_ref(), now)?;
        // Events are taken even when the control row was edited outside the service: refusing
        // them would lose audit records (a gate sets a refused batch aside). Who is a system
        // account cannot be told then, so the batch opens a review (fail closed: a review too
        // many costs an acknowledgement, one too few hides a session), and the edit is reported.
        let review = match self.store.control() {
            Ok(c) => c.is_system_account(&who.name),
            Err(StoreError::ControlTampered) => {
                tracing::error!(
                    "the elevated access control was edited outside the service; this batch opens a review, and a global admin must enable the control again"
                );
                true
            }
            Err(e) => return Err(e.into()),
        };
        let count = events.len();
        let batch = super::store::GateBatch {
            user: who.name.clone(),
            id: id.clone(),
            sha256,
            events,
            review,
        };
        let fresh = self.store.queue_gate_batch(&batch, now.timestamp())?;
        Ok(EventsAccepted {
            accepted: count,
            duplicate: !fresh,
        })
    }

    /// Append audit events other processes queued in the store.
    pub fn drain_audit(&self) -> Result<usize, ApiError> {
        Ok(self
            .store
            .drain_audit(&mut |events| self.audit.append_all(events).map(|_| ()))?)
    }

    /// Expire pending requests whose time ran out.
    pub fn expire(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let dir = self.directory.read()?;
        let expired = self.store.expire_pending(now.timestamp(), &mut |record| {
            self.append(event(
                "jitsh",
                "request.expire",
                &record.new.id,
                "expired",
                json!({ "rule": record.new.rule, "requester": record.new.requester }),
            ))?;
            Ok(self.decision_notes(&dir, record))
        })?;
        Ok(expired.len())
    }

    /// The request's rule as the policies in force define it now, or why nothing more may
    /// come of the request: the rule is gone, no longer an approval rule for the task, or the
    /// task is now always denied.
    fn rule_in_force(&self, record: &RequestRecord) -> Result<ApprovalRule, ApiError> {
        let policies = self.policies()?;
        let n = &record.new;
        let key = if n.target_kind == "role" {
            format!("role:{}", n.target)
        } else {
            n.target.clone()
        };
        let mut rule = policies
            .approval_rules_for(&key)
            .into_iter()
            .find(|r| r.id == n.rule)
            .map(approval_rule)
            .ok_or_else(|| {
                ApiError::conflict(
                    "rule_changed",
                    format!(
                        "rule `{}` no longer puts `{}` behind approval; file a new request",
                        n.rule, n.target
                    ),
                )
            })?;
        if let Some((task, deny)) = n
            .tasks
            .iter()
            .find_map(|t| always_denied(&policies, t).map(|d| (t, d)))
        {
            return Err(ApiError::conflict(
                "task_denied",
                format!("`{task}` is now always denied by rule `{deny}`"),
            ));
        }
        rule.approvers = self.store.control()?.approvers(&rule.approvers);
        Ok(rule)
    }

    /// Whether an approved request may be signed into a token under `rule` as it stands now,
    /// and the parameter scope the token carries. Every limit is the rule's, checked again: the
    /// grant's length, the requester, the approvers and their quorum, the task list and the
    /// parameter scope.
    fn issuable(
        &self,
        record: &RequestRecord,
        grant: &Grant,
        rule: &ApprovalRule,
    ) -> Result<Option<crate::policy::ParamConstraints>, ApiError> {
        let n = &record.new;
        let beyond = |why: String| ApiError::conflict("beyond_policy", why);
        let limit = secs(rule.max_duration.unwrap_or(MAX_GRANT).min(MAX_GRANT));
        if grant.exp.saturating_sub(grant.nbf) > limit || grant.exp <= grant.nbf {
            return Err(beyond(format!(
                "the grant of `{}` lasts longer than rule `{}` allows ({})",
                n.id,
                rule.id,
                format_duration(Duration::from_secs(u64::try_from(limit).unwrap_or(0)))
            )));
        }
        if !grant.sub.eq_ignore_ascii_case(&n.requester) {
            return Err(beyond(format!(
                "the grant of `{}` is not for its requester",
                n.id
            )));
        }
        match (n.uses, grant.uses) {
            (None, _) => {}
            (Some(asked), Some(given)) if given <= asked => {}
            _ => {
                return Err(beyond(format!(
                    "the grant of `{}` has more uses than were asked for",
                    n.id
                )))
            }
        }
        let dir = self.directory.read()?;
        let requester = dir
            .user(&n.requester)
            .ok_or_else(|| beyond(format!("`{}` is no longer a user", n.requester)))?;
        if !rule.requesters.is_empty() && !requester.in_any(&rule.requesters) {
            return Err(beyond(format!(
                "`{}` may no longer request under rule `{}`",
                n.requester, rule.id
            )));
        }
        let unattended = self.unattended_holds(n)?;
        if rule.manual && !unattended {
            let mut counted: Vec<String> = Vec::new();
            let requester_person = person_of(&dir, &n.requester);
            for a in &record.approvals {
                // One vote a person, never the requester's under another account.
                let name = person_of(&dir, &a.approver);
                let valid = !a.approver.eq_ignore_ascii_case(&n.requester)
                    && name != requester_person
                    && dir
                        .user(&a.approver)
                        .is_some_and(|p| p.in_any(&rule.approvers));
                if valid && !counted.contains(&name) {
                    counted.push(name);
                }
            }
            let needed = usize::try_from(rule.min_approvals.max(1)).unwrap_or(usize::MAX);
            if counted.len() < needed {
                return Err(beyond(format!(
                    "request `{}` has {} approval(s) from current approvers of rule `{}`, which needs {needed}",
                    n.id,
                    counted.len(),
                    rule.id
                )));
            }
        }
        let policies = self.policies()?;
        let tasks_ok = if n.target_kind == "role" {
            policies.role(&n.target).is_some_and(|role| {
                n.tasks
                    .iter()
                    .all(|t| role.iter().any(|r| r.eq_ignore_ascii_case(t)))
            })
        } else {
            n.tasks.len() == 1 && n.tasks.first() == Some(&n.target)
        };
        if !tasks_ok {
            return Err(beyond(format!(
                "the tasks of `{}` are not what was requested",
                n.id
            )));
        }
        let pins: std::collections::BTreeMap<String, String> = n
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let expected = grant_params(rule.params.as_ref(), &pins)?;
        if expected != n.grant_params {
            return Err(beyond(format!(
                "the parameter scope of `{}` is not the one rule `{}` gives",
                n.id, rule.id
            )));
        }
        expected
            .map(|v| crate::policy::ParamConstraints::from_json(&v))
            .transpose()
            .map_err(|e| beyond(format!("the parameter scope cannot be signed: {e}")))
    }

    /// A request granted without approval counts only while what allowed it still holds: its
    /// requester is still a system account, or approval control is still disabled. `false` for
    /// every other request.
    fn unattended_holds(&self, n: &NewRequest) -> Result<bool, ApiError> {
        if n.mode != MODE_SYSTEM && n.mode != MODE_DISABLED {
            return Ok(false);
        }
        let control = self.store.control()?;
        Ok(match n.mode.as_str() {
            MODE_SYSTEM => control.is_system_account(&n.requester),
            _ => control.disabled.is_some(),
        })
    }

    /// Whether `who` may decide `record`: an approver of its rule who is not the requester, under
    /// any of their accounts (people are compared by [`Principal::person`]). An approval also
    /// needs the requester to be known (to tell who they are) and counts each person once.
    fn may_decide(
        &self,
        who: &Principal,
        record: &RequestRecord,
        approvers: &[String],
        dir: &Directory,
        approving: bool,
    ) -> Result<(), ApiError> {
        if record.new.requester.eq_ignore_ascii_case(&who.name) {
            return Err(ApiError::forbidden(
                "self_approval",
                format!(
                    "you filed request `{}`, so someone else must decide it",
                    record.new.id
                ),
            ));
        }
        let requester = dir.user(&record.new.requester);
        if approving && requester.is_none() {
            return Err(ApiError::conflict(
                "requester_unknown",
                format!(
                    "`{}`, who filed request `{}`, is no longer in the directory, so it cannot be approved; deny it",
                    record.new.requester, record.new.id
                ),
            ));
        }
        if requester.is_some_and(|r| r.same_person(who)) {
            return Err(ApiError::forbidden(
                "self_approval",
                format!(
                    "request `{}` was filed by `{}`, another account of yours, so someone else must decide it",
                    record.new.id, record.new.requester
                ),
            ));
        }
        if let Some(earlier) = record.approvals.iter().find(|a| {
            approving
                && !a.approver.eq_ignore_ascii_case(&who.name)
                && person_of(dir, &a.approver) == who.person
        }) {
            return Err(ApiError::conflict(
                "already_approved",
                format!(
                    "you already approved request `{}` as `{}`; a quorum needs different people",
                    record.new.id, earlier.approver
                ),
            ));
        }
        if approvers.is_empty() {
            return Err(ApiError::forbidden(
                "no_approvers",
                format!(
                    "rule `{}` names no approvers and no default approver group is set, so nobody can decide its requests; a global admin sets one with Enable-ElevatedAccessControl -AdminGroup GROUP",
                    record.new.rule
                ),
            ));
        }
        if !who.in_any(approvers) {
            return Err(ApiError::forbidden(
                "not_an_approver",
                format!(
                    "rule `{}` is decided by members of {}, and you are in none of them",
                    record.new.rule,
                    quoted_list(approvers)
                ),
            ));
        }
        Ok(())
    }

    /// Locks stop approvals too: on the requester, on the approver, on the rule, or on all.
    fn not_locked_for_approval(
        &self,
        who: &Principal,
        record: &RequestRecord,
        at: UnixTime,
    ) -> Result<(), ApiError> {
        let locks = self.store.active_locks(at)?;
        let found = locks
            .iter()
            .find(|l| l.blocks(&record.new.requester, &record.new.rule) || l.blocks(&who.name, ""));
        match found {
            None => Ok(()),
            Some(l) => Err(ApiError::policy(
                "locked",
                format!(
                    "approvals are locked for `{}`: {}",
                    l.scope,
                    escape(&l.reason)
                ),
            )),
        }
    }

    fn new_grant(&self, new: &NewRequest, at: UnixTime) -> Result<Grant, ApiError> {
        Ok(Grant {
            jti: grant_id()?,
            request_id: new.id.clone(),
            sub: new.requester.clone(),
            nbf: at,
            exp: at.saturating_add(new.duration_secs),
            uses: new.uses,
            used: 0,
            revoked_at: None,
            revoked_by: None,
        })
    }

    fn webhook_note(&self, text: String) -> Vec<Notification> {
        if !self.webhook {
            return Vec::new();
        }
        vec![Notification {
            channel: "webhook".into(),
            recipient: String::new(),
            subject: String::new(),
            body: json!({ "text": escape(&text) }).to_string(),
        }]
    }

    fn new_request_notes(&self, dir: &Directory, r: &RequestRecord) -> Vec<Notification> {
        let n = &r.new;
        // Everything the requester wrote is escaped: mail and chat clients render it.
        let summary = format!(
            "{} asks for `{}` ({}) for {} under rule `{}`: {}",
            escape(&n.requester),
            escape(&n.target),
            n.target_kind,
            format_duration(Duration::from_secs(
                u64::try_from(n.duration_secs).unwrap_or(0)
            )),
            n.rule,
            escape(&n.reason)
        );
        let requester = dir.user(&n.requester);
        let mut notes = Vec::new();
        if self.email {
            for member in dir.members_of(&n.approvers) {
                if member.name.eq_ignore_ascii_case(&n.requester)
                    || requester.as_ref().is_some_and(|p| p.same_person(&member))
                {
                    continue;
                }
                if let Some(email) = member.email {
                    notes.push(Notification {
                        channel: "email".into(),
                        recipient: email,
                        subject: format!(
                            "[jitsh] approval needed: {} by {}",
                            escape(&n.target),
                            escape(&n.requester)
                        ),
                        body: format!(
                            "{summary}\n\nRequest: {}\nTasks: {}\nParameters: {}\nCommand: {}\nTicket: {}\nApprovals needed: {}\n\nTo approve: jitsh approve {}\nTo deny:    jitsh deny {} --comment \"why\"\n",
                            n.id,
                            escape(&n.tasks.join(", ")),
                            escape(&Value::Object(n.params.clone()).to_string()),
                            escape(n.command.as_deref().unwrap_or("(any)")),
                            escape(n.ticket.as_deref().unwrap_or("(none)")),
                            n.min_approvals,
                            n.id,
                            n.id
                        ),
                    });
                }
            }
        }
        notes.extend(self.webhook_note(format!(
            "jitsh request {}: {summary}. Approve with `jitsh approve {}`",
            n.id, n.id
        )));
        notes
    }

    fn decision_notes(&self, dir: &Directory, r: &RequestRecord) -> Vec<Notification> {
        let n = &r.new;
        let what = match r.status {
            Status::Approved => {
                let exp = r.grant.as_ref().map(|g| rfc3339(g.exp)).unwrap_or_default();
                format!(
                    "approved by {} until {exp}; fetch the token with `jitsh token fetch {} --out FILE`",
                    r.decided_by.as_deref().unwrap_or("jitsh"),
                    n.id
                )
            }
            Status::Denied => format!(
                "denied by {}: {}",
                r.decided_by.as_deref().unwrap_or("?"),
                escape(r.decision_comment.as_deref().unwrap_or(""))
            ),
            Status::Withdrawn => "withdrawn by its requester".to_owned(),
            Status::Expired => "expired before anyone decided it".to_owned(),
            Status::Revoked => format!(
                "revoked by {}",
                r.grant
                    .as_ref()
                    .and_then(|g| g.revoked_by.as_deref())
                    .unwrap_or("?")
            ),
            Status::Pending => "still pending".to_owned(),
        };
        let line = format!("Request {} for `{}` was {what}", n.id, escape(&n.target));
        let mut notes = Vec::new();
        if self.email {
            if let Some(email) = dir.user(&n.requester).and_then(|u| u.email) {
                notes.push(Notification {
                    channel: "email".into(),
                    recipient: email,
                    subject: format!(
                        "[jitsh] {} {}: {}",
                        n.id,
                        r.status.as_str(),
                        escape(&n.target)
                    ),
                    body: format!(
                        "{line}.\n\nReason given: {}\nRule: {}\n",
                        escape(&n.reason),
                        n.rule
                    ),
                });
            }
        }
        notes.extend(self.webhook_note(format!("jitsh: {line}")));
        notes
    }
}

/// The directory file, reloaded when it changes on disk (the CLI's `user add` writes it); or,
/// on a store that keeps the directory (PostgreSQL), the stored directory, read again whenever
/// its version moved (another replica added a user).
struct DirectoryHandle {
    path: PathBuf,
    /// The directory and the file's (mtime, length) it was read at.
    cached: RwLock<(Directory, Option<FileStamp>)>,
    write: Mutex<()>,
    /// The store that keeps the directory, and the version cached from it.
    store: Option<(Arc<dyn Store>, StoredCache)>,
}

/// The stored directory as last read, with its version.
type StoredCache = RwLock<Option<(i64, Directory)>>;

impl std::fmt::Debug for DirectoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryHandle")
            .field("path", &self.path)
            .field("stored", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl DirectoryHandle {
    fn open(path: PathBuf, store: &Arc<dyn Store>) -> Result<DirectoryHandle, ApiError> {
        if store.keeps_directory() {
            return Ok(DirectoryHandle {
                path,
                cached: RwLock::new((Directory::default(), None)),
                write: Mutex::new(()),
                store: Some((Arc::clone(store), RwLock::new(None))),
            });
        }
        let dir = Directory::load(&path).map_err(|e| ApiError::internal(e.to_string()))?;
        let mtime = modified(&path);
        Ok(DirectoryHandle {
            path,
            cached: RwLock::new((dir, mtime)),
            write: Mutex::new(()),
            store: None,
        })
    }

    /// The stored directory: the cached copy while its version is current (one indexed read
    /// of one row), else read again.
    fn read_stored(store: &dyn Store, cache: &StoredCache) -> Result<Directory, ApiError> {
        let unavailable = || ApiError::internal("directory unavailable");
        let version = store.directory_version()?;
        if let Some((v, dir)) = cache.read().map_err(|_| unavailable())?.as_ref() {
            if *v == version {
                return Ok(dir.clone());
            }
        }
        let (version, dir) = store.load_directory()?;
        *cache.write().map_err(|_| unavailable())? = Some((version, dir.clone()));
        Ok(dir)
    }

    fn read(&self) -> Result<Directory, ApiError> {
        if let Some((store, cache)) = &self.store {
            return DirectoryHandle::read_stored(store.as_ref(), cache);
        }
        let unavailable = || ApiError::internal("directory unavailable");
        let mtime = modified(&self.path);
        {
            let cached = self.cached.read().map_err(|_| unavailable())?;
            if cached.1 == mtime {
                return Ok(cached.0.clone());
            }
        }
        let dir = Directory::load(&self.path).map_err(|e| {
            tracing::error!(error = %e, "directory reload failed");
            ApiError::internal("the user directory cannot be read; ask an operator to fix it")
        })?;
        let mut cached = self.cached.write().map_err(|_| unavailable())?;
        *cached = (dir.clone(), mtime);
        Ok(dir)
    }

    fn add_user(
        &self,
        name: &str,
        email: Option<String>,
        person: Option<String>,
        groups: Vec<String>,
        roles: Vec<String>,
        audit: &mut dyn FnMut() -> Result<(), StoreError>,
    ) -> Result<super::directory::Credential, ApiError> {
        let _guard = self
            .write
            .lock()
            .map_err(|_| ApiError::internal("directory unavailable"))?;
        // Under the file lock, on the file as it is now: other processes (`jitsh user add`)
        // write it too.
        Directory::update(&self.path, |dir| {
            let credential = dir.add_user(name, email, groups, roles)?;
            dir.set_person(name, person);
            audit()?;
            Ok::<_, ApiError>(credential)
        })
    }
}

/// What tells a rewritten directory file apart: mtime, length and inode (every atomic rewrite
/// is a new inode, even within one mtime tick).
type FileStamp = (SystemTime, u64, u64);

fn modified(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

/// The policy folder's files as `(file name, text)`, read by the gate's reader with the gate's
/// checks: a folder or file another user could change is refused here as at start.
fn read_sources(dir: &Path) -> Result<Vec<(String, String)>, ApiError> {
    let sources = crate::policy::read_folder(dir).map_err(|e| {
        tracing::error!(error = %e, "policy folder refused");
        ApiError::unavailable(
            "policy_folder_unsafe",
            format!(
                "the policy folder cannot be trusted, so no policy was changed; ask an operator to fix it: {}",
                e.to_string().replace('\n', "; ")
            ),
        )
    })?;
    Ok(sources
        .into_iter()
        .map(|s| {
            let name = Path::new(&s.name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, s.text)
        })
        .collect())
}

fn choose_rule(
    policies: &PolicySet,
    who: &Principal,
    target: &str,
    kind: &str,
    wanted: Option<&str>,
) -> Result<ApprovalRule, ApiError> {
    // For a role the policy engine finds rules naming the role or covering all its tasks.
    let key = if kind == "role" {
        format!("role:{target}")
    } else {
        target.to_owned()
    };
    let mut candidates: Vec<ApprovalRule> = policies
        .approval_rules_for(&key)
        .into_iter()
        .map(approval_rule)
        .collect();
    if let Some(id) = wanted {
        candidates.retain(|r| r.id == id);
    }
    if candidates.is_empty() {
        return Err(ApiError::policy(
            "no_approval_rule",
            match wanted {
                Some(id) => format!("rule `{id}` is not an approval rule covering `{target}`"),
                None => format!(
                    "no approval rule covers `{target}`; check the task name or ask a global admin to add a rule"
                ),
            },
        ));
    }
    // Most specific first; the first the caller may use wins.
    candidates
        .iter()
        .find(|r| r.requesters.is_empty() || who.in_any(&r.requesters))
        .cloned()
        .ok_or_else(|| {
            let allowed: Vec<String> = candidates
                .iter()
                .flat_map(|r| r.requesters.iter().cloned())
                .collect();
            ApiError::forbidden(
                "not_a_requester",
                format!(
                    "only members of {} may request `{target}`",
                    quoted_list(&allowed)
                ),
            )
        })
}

/// Text that reaches approvers' terminals, mail and the audit log carries no control characters
/// (C0, DEL, C1) nor bidirectional overrides: they can make a request look like another.
fn refuse_control_characters(body: &CreateBody) -> Result<(), ApiError> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    let fields = [
        ("task", body.task.as_deref()),
        ("role", body.role.as_deref()),
        ("rule", body.rule.as_deref()),
        ("reason", body.reason.as_deref()),
        ("duration", body.duration.as_deref()),
        ("ticket", body.ticket.as_deref()),
        ("command", body.command.as_deref()),
    ];
    let params = body
        .params
        .iter()
        .flatten()
        .flat_map(|(k, v)| [("params", Some(k.as_str())), ("params", Some(v.as_str()))]);
    match fields
        .into_iter()
        .chain(params)
        .find(|(_, text)| text.is_some_and(|t| t.chars().any(hidden)))
    {
        Some((field, _)) => Err(ApiError::policy(
            "control_characters",
            format!("`{field}` contains control or text-direction characters; send plain text"),
        )),
        None => Ok(()),
    }
}

/// A requested task is one command the runspace knows (the catalog) or that a rule names
/// exactly; a pattern or an unknown name would be approved into a grant nothing runs.
fn known_task(policies: &PolicySet, task: &str) -> Result<(), ApiError> {
    if task.contains(['*', '?', '[', ']']) {
        return Err(ApiError::policy(
            "unknown_task",
            format!("`{task}` is a pattern: request one task by its name"),
        ));
    }
    let bare = task.rsplit('\\').next().unwrap_or(task);
    let named = |t: &String| {
        let t = t.rsplit('\\').next().unwrap_or(t);
        t.eq_ignore_ascii_case(bare)
    };
    let known = crate::catalog::Catalog::builtin().command(bare).is_some()
        || policies.rules().iter().any(|r| r.tasks.iter().any(named))
        || policies.roles().iter().any(|r| r.tasks.iter().any(named));
    if known {
        Ok(())
    } else {
        Err(ApiError::policy(
            "unknown_task",
            format!(
                "`{task}` is not a command jitsh knows nor one a rule names; check the spelling"
            ),
        ))
    }
}

/// The id of a rule that denies `task` whatever its parameters (no `when`, no `params`), if one
/// does: a request for it could never be used.
fn always_denied(policies: &PolicySet, task: &str) -> Option<String> {
    let (module, name) = match task.rsplit_once('\\') {
        Some((m, n)) => (Some(m), n),
        None => (None, task),
    };
    policies
        .rules()
        .iter()
        .find(|r| {
            r.effect == crate::policy::Effect::Deny
                && r.when_any_param.is_none()
                && r.params.is_none()
                && r.covers_name(name, module)
        })
        .map(|r| r.id.clone())
}

/// The token's parameter constraints: the rule's, narrowed by the requester's pinned values.
fn grant_params(
    rule: Option<&Value>,
    pins: &std::collections::BTreeMap<String, String>,
) -> Result<Option<Value>, ApiError> {
    let mut out: Map<String, Value> = rule.and_then(Value::as_object).cloned().unwrap_or_default();
    for (name, value) in pins {
        if !valid_name(name) {
            return Err(ApiError::bad_request(
                "invalid_param",
                format!("`{name}` is not a parameter name"),
            ));
        }
        if let Some(only) = out.get("only").and_then(Value::as_array) {
            if !only
                .iter()
                .any(|o| o.as_str().is_some_and(|o| o.eq_ignore_ascii_case(name)))
            {
                return Err(ApiError::policy(
                    "param_not_allowed",
                    format!("the rule does not allow parameter `{name}`"),
                ));
            }
        }
        let key = out
            .keys()
            .find(|k| k.as_str() != "only" && k.eq_ignore_ascii_case(name))
            .cloned();
        if let Some(key) = &key {
            let allowed = out.get(key).is_some_and(|c| satisfies(key, c, value));
            if !allowed {
                return Err(ApiError::policy(
                    "param_not_allowed",
                    format!("`{value}` is not an allowed value of `{name}` under this rule"),
                ));
            }
            out.remove(key);
        }
        out.insert(name.clone(), json!({ "one_of": [value] }));
    }
    if out.is_empty() {
        return Ok(None);
    }
    let out = Value::Object(out);
    // The token carries exactly the form the gate reads back.
    crate::policy::ParamConstraints::from_json(&out).map_err(|e| {
        ApiError::policy(
            "param_not_allowed",
            format!("parameter constraints are not valid: {e}"),
        )
    })?;
    Ok(Some(out))
}

/// Whether `value` meets one parameter's constraint (policy `params` JSON form), with the
/// policy engine's own matching.
fn satisfies(name: &str, constraint: &Value, value: &str) -> bool {
    let mut one = Map::new();
    one.insert(name.to_owned(), constraint.clone());
    crate::policy::ParamConstraints::from_json(&Value::Object(one))
        .ok()
        .and_then(|c| c.values().first().map(|(_, vc)| vc.accepts(value)))
        .unwrap_or(false)
}

fn visible(who: &Principal, r: &RequestRecord) -> bool {
    r.new.requester.eq_ignore_ascii_case(&who.name)
        || who.is_global_admin()
        || who.in_any(&r.new.approvers)
}

fn require_admin(who: &Principal, what: &str) -> Result<(), ApiError> {
    if who.is_global_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_global_admin",
            format!("only members of `global-admin` may {what}"),
        ))
    }
}

fn check_scope(scope: &str) -> Result<String, ApiError> {
    // Names compare case-insensitively everywhere: `user:ALICE` is alice's lock.
    let scope = scope.trim().to_ascii_lowercase();
    let scope = scope.as_str();
    let ok = scope == "all"
        || scope
            .strip_prefix("user:")
            .or_else(|| scope.strip_prefix("rule:"))
            .is_some_and(valid_name);
    if ok {
        Ok(scope.to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_scope",
            format!("`{scope}` is not a lock scope; use `user:NAME`, `rule:ID` or `all`"),
        ))
    }
}

fn parse_expiry(text: &str, now: UnixTime) -> Result<UnixTime, ApiError> {
    if let Ok(d) = parse_duration(text) {
        return Ok(now.saturating_add(secs(d)));
    }
    crate::rfc3339::parse(text)
        .map(|t| t.timestamp())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_expires",
                format!("`{text}` is neither a duration like `2h` nor an RFC 3339 time"),
            )
        })
}

fn lock_view(l: &Lock) -> LockView {
    LockView {
        expires_at: l.expires_at.map(rfc3339),
        reason: l.reason.clone(),
        scope: l.scope.clone(),
        set_at: rfc3339(l.set_at),
        set_by: l.set_by.clone(),
    }
}

/// A lock as an audit record's details (the same fields as its view).
fn lock_details(l: &Lock) -> Value {
    serde_json::to_value(lock_view(l)).unwrap_or(Value::Null)
}

fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "no group".to_owned();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn event(actor: &str, action: &str, subject: &str, outcome: &str, details: Value) -> AuditEvent {
    let details = match details {
        Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    };
    AuditEvent {
        time: rfc3339(chrono::Utc::now().timestamp()),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        outcome: outcome.to_owned(),
        details,
    }
}

/// The view of a request the API answers with.
pub fn view(r: &RequestRecord, now: DateTime<Utc>) -> RequestView {
    let n = &r.new;
    let at = now.timestamp();
    let grant = r.grant.as_ref().map(|g| {
        let state = if g.revoked_at.is_some() {
            "revoked"
        } else if at >= g.exp {
            "expired"
        } else if at < g.nbf {
            "not_yet_valid"
        } else if g.uses.is_some_and(|u| g.used >= u) {
            "used_up"
        } else {
            "live"
        };
        GrantView {
            exp: rfc3339(g.exp),
            jti: g.jti.clone(),
            nbf: rfc3339(g.nbf),
            revoked_at: g.revoked_at.map(rfc3339),
            revoked_by: g.revoked_by.clone(),
            state,
            used: g.used,
            uses: g.uses,
        }
    });
    let mut out = RequestView {
        approvals: r
            .approvals
            .iter()
            .map(|a| ApprovalView {
                approver: a.approver.clone(),
                at: rfc3339(a.at),
                comment: a.comment.clone(),
            })
            .collect(),
        approvers: n.approvers.clone(),
        command: n.command.clone(),
        comment: r.decision_comment.clone(),
        created_at: rfc3339(n.created_at),
        decided_at: r.decided_at.map(rfc3339),
        decided_by: r.decided_by.clone(),
        digest: String::new(),
        duration: format_duration(Duration::from_secs(
            u64::try_from(n.duration_secs).unwrap_or(0),
        )),
        grant,
        grant_params: n.grant_params.clone(),
        id: n.id.clone(),
        kind: n.target_kind.clone(),
        min_approvals: n.min_approvals,
        mode: n.mode.clone(),
        params: n.params.clone(),
        pending_expires_at: rfc3339(n.pending_expires_at),
        reason: n.reason.clone(),
        requester: n.requester.clone(),
        role: (n.target_kind == "role").then(|| n.target.clone()),
        rule: n.rule.clone(),
        status: r.status.as_str(),
        task: (n.target_kind == "task").then(|| n.target.clone()),
        tasks: n.tasks.clone(),
        ticket: n.ticket.clone(),
        uses: n.uses,
    };
    out.digest = request_digest(&out.to_value());
    out
}

/// The fields an approver is shown before deciding, in a fixed order. Everything that
/// changes what a grant allows or why it was asked for is here.
pub(crate) const SHOWN_FIELDS: [&str; 14] = [
    "id",
    "requester",
    "kind",
    "task",
    "role",
    "tasks",
    "rule",
    "params",
    "grant_params",
    "command",
    "uses",
    "duration",
    "reason",
    "ticket",
];

/// SHA-256 (hex) of [`SHOWN_FIELDS`] of a request's JSON view, in canonical JSON (sorted object
/// keys, no whitespace). The client computes it over the answer it displayed and sends it with
/// `approve`/`deny`; the service computes it over the stored request and refuses a mismatch.
pub fn request_digest(view: &Value) -> String {
    let mut text = String::new();
    for field in SHOWN_FIELDS {
        canonical_json(view.get(field).unwrap_or(&Value::Null), &mut text);
        text.push('\n');
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Refuse a decision whose digest differs from the stored request's (409).
fn check_digest(
    record: &RequestRecord,
    digest: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(sent) = digest else { return Ok(()) };
    if sent.trim().eq_ignore_ascii_case(&view(record, now).digest) {
        return Ok(());
    }
    Err(ApiError::conflict(
        "request_mismatch",
        format!(
            "request `{}` is not what you were shown (its digest differs), so nothing was decided; show it again with `jitsh approve {}` and check it",
            record.new.id, record.new.id
        ),
    ))
}

/// The person behind an account name, as the directory knows it (an unknown account is a
/// person of its own).
fn person_of(dir: &Directory, account: &str) -> String {
    dir.user(account).map_or_else(
        || format!("account:{}", account.to_lowercase()),
        |p| p.person,
    )
}

/// Why the votes on `record` are not one per person (nor by the requester), if they are not.
fn one_vote_per_person(dir: &Directory, record: &RequestRecord) -> Option<ApiError> {
    let requester = person_of(dir, &record.new.requester);
    let mut seen: Vec<String> = Vec::new();
    for a in &record.approvals {
        let person = person_of(dir, &a.approver);
        if person == requester {
            return Some(ApiError::forbidden(
                "self_approval",
                format!(
                    "request `{}` was filed by another account of the same person, so someone else must decide it",
                    record.new.id
                ),
            ));
        }
        if seen.contains(&person) {
            return Some(ApiError::conflict(
                "already_approved",
                format!(
                    "request `{}` already has an approval from the same person under another account; a quorum needs different people",
                    record.new.id
                ),
            ));
        }
        seen.push(person);
    }
    None
}

/// A page of a listing: how many, and where the previous page ended.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// An approver's decision as sent: a comment, and the digest of what they were shown.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub comment: Option<String>,
    pub digest: Option<String>,
}

/// `CREATED_AT.ID` as written in `next_cursor`.
fn parse_cursor(text: &str) -> Result<(UnixTime, String), ApiError> {
    text.split_once('.')
        .and_then(|(at, id)| {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            Some((at.parse::<UnixTime>().ok()?, id.to_owned())).filter(|_| ok)
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "`cursor` must be the `next_cursor` of a previous page",
            )
        })
}

fn random_bytes(n: usize) -> Result<Vec<u8>, ApiError> {
    let mut buf = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ApiError::internal("no randomness available"))?;
    Ok(buf)
}

/// Request ids are typed by people: `r-` and 20 lowercase hex digits (80 bits).
fn request_id() -> Result<String, ApiError> {
    let hex: String = random_bytes(10)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("r-{hex}"))
}

/// Grant (token) ids: 128 random bits, base64url.
fn grant_id() -> Result<String, ApiError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(16)?))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn from_unix(t: UnixTime) -> Result<DateTime<Utc>, ApiError> {
    crate::rfc3339::from_unix(t).ok_or_else(|| ApiError::internal("time out of range"))
}

/// The canonical form of an exact-command request (`Invocation::canonical`): the one thing the
/// token will cover. The line must be a single invocation of the requested task, fully known
/// statically, or the request is refused (an approver must see exactly what will run).
fn canonical_command(
    line: &str,
    task: Option<&str>,
    platform: crate::catalog::Platform,
) -> Result<String, ApiError> {
    let refuse = |why: String| ApiError::policy("invalid_command", why);
    let invocations =
        crate::resolve::analyse_line_on(line, crate::catalog::Catalog::builtin(), platform)
            .map(|a| a.invocations)
            .map_err(|e| refuse(format!("`command` does not parse: {}", e.message)))?;
    let [inv] = invocations.as_slice() else {
        return Err(refuse(format!(
            "`command` must be exactly one command invocation, found {}",
            invocations.len()
        )));
    };
    if let Some(task) = task {
        let same = match crate::invocation::TaskKind::split(task) {
            (crate::invocation::TaskKind::Command, _) => {
                let bare = task.rsplit('\\').next().unwrap_or(task);
                inv.kind.is_command() && inv.name.eq_ignore_ascii_case(bare)
            }
            (kind, name) => inv.kind == kind && inv.name.eq_ignore_ascii_case(name),
        };
        if !same {
            return Err(refuse(format!(
                "`command` runs `{}`, not the requested task `{task}`",
                inv.name
            )));
        }
    }
    inv.canonical().ok_or_else(|| {
        refuse("`command` has parts known only at run time (variables, splatting, abbreviations that are not unique), so it cannot be approved exactly".into())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct BrokenAudit;

    impl AuditSink for BrokenAudit {
        fn append(&self, _: AuditEvent) -> Result<u64, AuditSinkError> {
            Err(AuditSinkError {
                path: "audit".into(),
                message: "disk full".into(),
            })
        }
    }

    /// A service on a real SQLite file with `audit` as its log, alice as a requester.
    fn service_with(dir: &Path, audit: Arc<dyn AuditSink>) -> (Service, Arc<dyn Store>, Principal) {
        let store: Arc<dyn Store> =
            Arc::new(super::super::sqlite::SqliteStore::open(&dir.join("db")).unwrap());
        let policy = "[[rule]]\nid = \"moves\"\neffect = \"approval\"\ntasks = [\"New-MoveRequest\"]\napprovers = [\"mbmanagers\"]\n";
        let policies =
            super::super::ports::policies_from_sources(&[("p.toml".into(), policy.into())])
                .unwrap();
        let mut directory = Directory::default();
        directory
            .add_user("alice", None, vec!["exchange-admins".into()], vec![])
            .unwrap();
        let path = dir.join("directory.toml");
        directory.save(&path).unwrap();
        let service = Service::new(Parts {
            store: Arc::clone(&store),
            policies: Arc::new(policies),
            policies_dir: dir.to_owned(),
            directory_path: path,
            signer: Signer::load_or_create(dir).unwrap(),
            audit,
            issuer: "jitsh".into(),
            pending_ttl: Duration::from_secs(3600),
            email: false,
            webhook: false,
            limits: RequestLimits::default(),
        })
        .unwrap();
        let alice = directory.user("alice").unwrap();
        (service, store, alice)
    }

    fn move_request() -> CreateBody {
        CreateBody {
            task: Some("New-MoveRequest".into()),
            role: None,
            rule: None,
            reason: Some("move".into()),
            duration: Some("1h".into()),
            params: None,
            ticket: None,
            command: None,
            uses: None,
        }
    }

    #[test]
    fn no_audit_record_means_no_action() {
        let dir = tempfile::tempdir().unwrap();
        let (service, store, alice) = service_with(dir.path(), Arc::new(BrokenAudit));
        let err = service
            .create(&alice, move_request(), chrono::Utc::now())
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code),
            (
                crate::service::error::ErrorKind::Unavailable,
                "audit_unavailable"
            )
        );
        assert!(store.list_requests(None, None, 10).unwrap().is_empty());
    }

    /// A log in memory that refuses appends while `down` is set.
    #[derive(Debug, Default)]
    struct MemAudit {
        events: Mutex<Vec<AuditEvent>>,
        down: std::sync::atomic::AtomicBool,
        /// Go down after this many more appends (0: never).
        down_after: std::sync::atomic::AtomicUsize,
    }

    impl AuditSink for MemAudit {
        fn append(&self, event: AuditEvent) -> Result<u64, AuditSinkError> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.down.load(SeqCst) {
                return Err(AuditSinkError {
                    path: "audit".into(),
                    message: "No space left on device".into(),
                });
            }
            if self.down_after.load(SeqCst) == 1 {
                self.down.store(true, SeqCst);
            }
            let _ = self
                .down_after
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
            let mut events = self.events.lock().unwrap();
            events.push(event);
            Ok(events.len() as u64)
        }
    }

    /// Make every commit of a request fail at COMMIT (a deferred foreign key, checked only
    /// there), after the step's hook has run: as a full disk fails SQLite's commit.
    fn fail_commits(db: &Path, on: bool) {
        let conn = rusqlite::Connection::open(db).unwrap();
        let sql = if on {
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE doomed (ref INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER doom AFTER INSERT ON requests BEGIN INSERT INTO doomed VALUES (1); END;"
        } else {
            "DROP TRIGGER doom;"
        };
        conn.execute_batch(sql).unwrap();
    }

    #[test]
    fn a_record_whose_step_did_not_commit_is_followed_by_its_abandonment() {
        use std::sync::atomic::Ordering::SeqCst;
        let dir = tempfile::tempdir().unwrap();
        let audit = Arc::new(MemAudit::default());
        let (service, store, alice) = service_with(dir.path(), audit.clone());
        fail_commits(&dir.path().join("db"), true);
        let now = chrono::Utc::now();

        // The log works: the record is written, the commit fails, the withdrawal follows.
        let err = service.create(&alice, move_request(), now).unwrap_err();
        assert_eq!(err.code, "store_unavailable");
        assert!(store.list_requests(None, None, 10).unwrap().is_empty());
        {
            let events = audit.events.lock().unwrap();
            let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
            assert_eq!(actions, ["request.create", "audit.abandoned"]);
            assert_eq!(events[1].subject, events[0].subject);
            assert_eq!(events[1].details["seq"], json!(1));
            assert_eq!(events[1].details["action"], json!("request.create"));
        }
        assert_eq!(service.degraded(), None);

        // The log fails right after the record: the withdrawal is owed, and nothing else is
        // recorded (nor done) before it.
        audit.down_after.store(1, SeqCst);
        assert!(service.create(&alice, move_request(), now).is_err());
        assert_eq!(audit.events.lock().unwrap().len(), 3);
        assert_eq!(service.degraded(), Some(Degraded::AbandonmentsOwed(1)));
        fail_commits(&dir.path().join("db"), false);
        let err = service.create(&alice, move_request(), now).unwrap_err();
        assert_eq!(err.code, "audit_unavailable");
        assert!(store.list_requests(None, None, 10).unwrap().is_empty());

        // The log is back: the withdrawal comes first, then the new request.
        audit.down.store(false, SeqCst);
        let created = service.create(&alice, move_request(), now).unwrap();
        assert_eq!(service.degraded(), None);
        let events = audit.events.lock().unwrap();
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "request.create",
                "audit.abandoned",
                "request.create",
                "audit.abandoned",
                "request.create"
            ]
        );
        assert_eq!(events[3].details["seq"], json!(3));
        assert_eq!(events[3].subject, events[2].subject);
        assert_eq!(events[4].subject, created.id);
        let stored = store.list_requests(None, None, 10).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].new.id, created.id);
    }

    #[test]
    fn an_expiry_that_did_not_commit_is_withdrawn_and_one_that_did_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Arc::new(MemAudit::default());
        let (service, store, alice) = service_with(dir.path(), audit.clone());
        let now = chrono::Utc::now();
        let first = service.create(&alice, move_request(), now).unwrap();
        // Filed a second later: expired second, after the first one committed.
        let later = now + chrono::TimeDelta::seconds(1);
        let doomed = service.create(&alice, move_request(), later).unwrap();
        let doomed = doomed.id.clone();
        // The commit that expires `doomed` fails (a deferred foreign key, checked at COMMIT).
        let conn = rusqlite::Connection::open(dir.path().join("db")).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE doomed (ref INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER doom AFTER UPDATE ON requests WHEN NEW.id = '{doomed}'
             BEGIN INSERT INTO doomed VALUES (1); END;"
        ))
        .unwrap();
        assert!(service.expire(now + chrono::TimeDelta::hours(2)).is_err());
        let events = audit.events.lock().unwrap();
        let expiries: Vec<(u64, &str)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.action == "request.expire")
            .map(|(i, e)| (i as u64 + 1, e.subject.as_str()))
            .collect();
        let abandoned: Vec<&AuditEvent> = events
            .iter()
            .filter(|e| e.action == "audit.abandoned")
            .collect();
        assert_eq!(abandoned.len(), 1, "{events:?}");
        assert_eq!(abandoned[0].subject, doomed);
        let seq = abandoned[0].details["seq"].as_u64().unwrap();
        assert!(expiries.contains(&(seq, doomed.as_str())), "{events:?}");
        assert_eq!(store.request(&doomed).unwrap().status, Status::Pending);
        // The first one expired, and its record stands.
        let other = first.id.as_str();
        assert_eq!(store.request(other).unwrap().status, Status::Expired);
        assert!(expiries.iter().any(|(_, s)| *s == other), "{events:?}");
    }

    #[test]
    fn pinned_params_narrow_rule_constraints_and_never_widen_them() {
        let rule = json!({ "Identity": { "glob": "*@contoso.com" } });
        let mut pins = std::collections::BTreeMap::new();
        pins.insert("Identity".to_owned(), "bob@contoso.com".to_owned());
        let out = grant_params(Some(&rule), &pins).unwrap().unwrap();
        assert_eq!(
            out,
            json!({ "Identity": { "one_of": ["bob@contoso.com"] } })
        );
        pins.insert("Identity".to_owned(), "eve@evil.com".to_owned());
        assert_eq!(
            grant_params(Some(&rule), &pins).unwrap_err().code,
            "param_not_allowed"
        );
    }

    /// The typed request view writes the bytes the `json!` view wrote (kept here as the
    /// reference), digest included.
    #[test]
    fn the_typed_request_view_is_the_json_it_replaced() {
        use super::super::store::{Approval, Grant, NewRequest, RequestRecord, Status};
        let record = RequestRecord {
            new: NewRequest {
                id: "r1".into(),
                requester: "alice".into(),
                target: "New-MoveRequest".into(),
                target_kind: "task".into(),
                tasks: vec!["New-MoveRequest".into()],
                rule: "mailbox-moves".into(),
                mode: "manual".into(),
                approvers: vec!["mbmanagers".into()],
                min_approvals: 2,
                reason: "move \u{202e}it".into(),
                ticket: Some("CHG1".into()),
                command: None,
                uses: Some(3),
                params: [("Identity".to_owned(), json!("bob"))]
                    .into_iter()
                    .collect(),
                grant_params: Some(json!({ "Identity": { "one_of": ["bob"] } })),
                duration_secs: 5400,
                created_at: 1_796_119_200,
                pending_expires_at: 1_796_122_800,
            },
            status: Status::Approved,
            approvals: vec![Approval {
                approver: "bob".into(),
                comment: None,
                at: 1_796_119_260,
            }],
            decided_at: Some(1_796_119_300),
            decided_by: Some("dave".into()),
            decision_comment: Some("ok".into()),
            grant: Some(Grant {
                jti: "j1".into(),
                request_id: "r1".into(),
                sub: "alice".into(),
                nbf: 1_796_119_300,
                exp: 1_796_124_700,
                uses: Some(3),
                used: 1,
                revoked_at: None,
                revoked_by: None,
            }),
        };
        let now = crate::rfc3339::from_unix(1_796_119_400).unwrap();
        let n = &record.new;
        let g = record.grant.as_ref().unwrap();
        let mut before = json!({
            "id": n.id, "requester": n.requester, "kind": n.target_kind,
            "task": (n.target_kind == "task").then_some(&n.target),
            "role": (n.target_kind == "role").then_some(&n.target),
            "tasks": n.tasks, "rule": n.rule, "mode": n.mode, "approvers": n.approvers,
            "min_approvals": n.min_approvals, "reason": n.reason, "ticket": n.ticket,
            "command": n.command, "uses": n.uses, "params": n.params,
            "grant_params": n.grant_params,
            "duration": "1h30m",
            "status": "approved", "created_at": rfc3339(n.created_at),
            "pending_expires_at": rfc3339(n.pending_expires_at),
            "approvals": [{ "approver": "bob", "comment": null, "at": rfc3339(1_796_119_260) }],
            "decided_at": rfc3339(1_796_119_300), "decided_by": "dave",
            "comment": "ok", "grant": {
                "jti": g.jti, "nbf": rfc3339(g.nbf), "exp": rfc3339(g.exp), "uses": g.uses,
                "used": g.used, "state": "live", "revoked_at": null, "revoked_by": null,
            },
        });
        let digest = request_digest(&before);
        before["digest"] = Value::String(digest);
        let typed = view(&record, now);
        // The view has always been written with its keys sorted.
        before.sort_all_objects();
        assert_eq!(serde_json::to_string(&typed).unwrap(), before.to_string());
        assert_eq!(typed.to_value(), before);
    }
}
