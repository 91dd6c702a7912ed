//! The gate's decision for one line: parse, resolve every invocation, decide each against the
//! policies, let valid approval tokens cover approval-needing invocations, and combine.
//!
//! Pure: the clock (`now`), tokens, revocations and the catalog are passed in.
//! INVARIANT: an approval-needing invocation becomes allowed only through [`token_covers`], which
//! requires a signature-verified token ([`VerifiedToken`] can only come from `token::verify`),
//! valid at `now` for this user, not revoked, issued under the rule that decided the invocation
//! (its most specific approval rule), whose tasks, params and exact command cover
//! the invocation with certainty, and only for an invocation that runs now: one stored in a
//! function or an assigned script block runs later, outside the token's window.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use smol_str::SmolStr;

use crate::catalog::Catalog;
use crate::invocation::{Invocation, TaskKind};
use crate::policy::{Effect, PolicySet, Tri};
use crate::resolve;
use crate::span::Span;
use crate::syntax::{ParseError, ParseErrorKind};
use crate::token::VerifiedToken;

/// Everything a decision depends on besides the line itself.
#[derive(Debug, Clone, Copy)]
pub struct GateContext<'a> {
    pub policies: &'a PolicySet,
    pub catalog: &'a Catalog,
    /// The session's user: a token covers a line only when its `sub` is this user.
    pub user: &'a str,
    pub now: DateTime<Utc>,
    /// Tokens whose signature has been verified (at load time).
    pub tokens: &'a [VerifiedToken],
    /// Token ids (`jti`) the approval service refused to confirm for this line (revoked, used
    /// up, locked, another user's): they cover nothing.
    pub revoked: &'a HashSet<String>,
    /// Clock skew tolerated on `nbf`/`exp`.
    pub skew: chrono::Duration,
    /// Whether the caller confirms every covering token at the approval service before the line
    /// runs ([`grants_used`]: revocation, locks, the holder's identity and counted uses are the
    /// service's to check at that moment). An offline gate honours a token only when its rule
    /// allows offline use and the token is inside that bound, and never a counted one.
    pub online: bool,
}

/// The gate's verdict on one line.
#[must_use]
#[derive(Debug, Clone, Serialize)]
pub struct LineDecision {
    pub text: String,
    /// The line's decision after tokens: the most restrictive of its invocations'.
    pub decision: Effect,
    /// One human sentence saying why.
    pub reason: Cow<'static, str>,
    /// The parser needs more input (unclosed quote, brace, here-string, trailing pipe): a shell
    /// asks for a continuation line. The decision is still `deny` for the line as it stands.
    pub incomplete: bool,
    /// The parse error, when the line does not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<LineError>,
    pub invocations: Vec<InvocationDecision>,
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, Serialize)]
pub struct LineError {
    pub message: String,
    pub offset: usize,
}

/// The decision for one invocation in a line.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationDecision {
    pub name: SmolStr,
    pub as_written: SmolStr,
    pub depth: usize,
    /// Decision after tokens.
    pub decision: Effect,
    /// The rule that decided, if any (none for `defaults`).
    pub rule: Option<SmolStr>,
    /// The id (`jti`) of the token that covered it, if one did.
    pub token: Option<String>,
    /// The invocation could not be analysed statically.
    pub dynamic: bool,
    /// Why, in one sentence.
    pub reason: String,
    /// Canonical parameter names bound to the invocation, without the dash: written out
    /// (`to_json`, serde) as `-Name`. Taken over from the invocation, so no name is copied.
    #[serde(serialize_with = "dashed")]
    pub params: Vec<SmolStr>,
    /// The kind of task (`command`, or a script `path`, a `program`, a .NET `method`).
    pub kind: TaskKind,
}

/// Decide one line.
pub fn check_line(text: &str, ctx: &GateContext<'_>) -> LineDecision {
    let platform = ctx.policies.defaults().platform;
    let analysis = match resolve::analyse_line_on(text, ctx.catalog, platform) {
        Ok(a) => a,
        Err(err) => return refuse_unparsed(text, &err),
    };
    let deferred = &analysis.deferred;
    let mut decisions: Vec<InvocationDecision> = analysis
        .invocations
        .into_iter()
        .map(|inv| {
            // The decision takes the invocation's names over rather than copying them.
            let mut d = decide_invocation(&inv, deferred, ctx);
            d.name = inv.name;
            d.as_written = inv.as_written;
            d.params = inv
                .params
                .into_iter()
                .map(|p| p.name)
                .filter(|n| !n.is_empty())
                .collect();
            d
        })
        .collect();
    limit_counted_grants(&mut decisions, ctx);
    let decision = decisions
        .iter()
        .map(|d| d.decision)
        .max()
        .unwrap_or(Effect::Allow);
    let reason = line_reason(decision, &decisions);
    LineDecision {
        text: text.to_string(),
        decision,
        reason,
        incomplete: false,
        error: None,
        invocations: decisions,
    }
}

/// A counted grant (`uses`) is spent one use per line, so it may cover only one top-level
/// invocation in that line: one inside a block or loop could run any number of times, and two in
/// one line would run twice on one use.
fn limit_counted_grants(decisions: &mut [InvocationDecision], ctx: &GateContext<'_>) {
    for token in ctx.tokens.iter().filter(|t| t.claims().uses.is_some()) {
        let jti = token.jti();
        let covered: Vec<usize> = decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.token.as_deref() == Some(jti))
            .map(|(i, _)| i)
            .collect();
        let single_top_level = covered.len() == 1
            && covered
                .first()
                .and_then(|&i| decisions.get(i))
                .is_some_and(|d| d.depth == 0);
        if covered.is_empty() || single_top_level {
            continue;
        }
        for i in covered {
            if let Some(d) = decisions.get_mut(i) {
                d.decision = Effect::Approval;
                d.token = None;
                d.reason = format!(
                    "`{}` needs approval and token `{jti}` is a counted grant, which covers one top-level command per line (this line would use it more than once)",
                    d.name
                );
            }
        }
    }
}

/// Fuzzing entry point: the whole per-line path for arbitrary bytes (lines that are not UTF-8
/// are skipped) under `policies` and the builtin catalog, user `alice`, with four verified
/// tokens so privileged lines reach the token checks: a broad one (role tasks), a
/// parameter-scoped exact-command one, a counted one and a revoked one. Must never panic.
pub fn fuzz_check_line(data: &[u8], policies: &PolicySet) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let f = fuzz_fixture();
    let ctx = GateContext {
        policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: f.now,
        tokens: &f.tokens,
        revoked: &f.revoked,
        skew: chrono::Duration::seconds(30),
        online: false,
    };
    let _ = check_line(line, &ctx);
}

struct FuzzFixture {
    tokens: Vec<VerifiedToken>,
    revoked: HashSet<String>,
    now: DateTime<Utc>,
}

fn fuzz_fixture() -> &'static FuzzFixture {
    use crate::token::{issue, verify, Claims, SigningKey, TrustStore};
    use chrono::Duration;
    static FIXTURE: std::sync::OnceLock<FuzzFixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let now = chrono::DateTime::UNIX_EPOCH + Duration::days(20_000);
        // The fixed seed always makes a key; were it not to, lines are fuzzed without tokens.
        let Ok(key) = SigningKey::from_seed([0x4a; 32]) else {
            return FuzzFixture {
                tokens: Vec::new(),
                revoked: HashSet::new(),
                now,
            };
        };
        let trust: TrustStore = [key.public_key()].into_iter().collect();
        // Claims are read from their JSON form, as a token carries them, so the fixture names
        // only the claims it sets.
        let at = |t: DateTime<Utc>| crate::rfc3339::format(t).unwrap_or_default();
        let claims = |jti: &str, rule: &str, tasks: &[&str], more: Value| -> Option<Claims> {
            let mut v = json!({
                "iss": "fuzz", "sub": "alice", "jti": jti,
                "iat": at(now), "nbf": at(now - Duration::minutes(1)),
                "exp": at(now + Duration::hours(1)),
                "rule": rule, "tasks": tasks, "request": "req", "approvers": ["bob"],
                "offline": 3600,
            });
            if let (Some(map), Value::Object(extra)) = (v.as_object_mut(), more) {
                map.extend(extra);
            }
            serde_json::from_value(v).ok()
        };
        let broad = claims(
            "t-broad",
            "mailbox-moves",
            &["New-MoveRequest", "Set-MoveRequest"],
            json!({}),
        );
        let narrow = claims(
            "t-narrow",
            "mail-forwarding",
            &["Set-Mailbox"],
            json!({
                "params": {
                    "Identity": { "glob": "alice*" },
                    "ForwardingSmtpAddress": { "one_of": ["$null"] },
                },
                "command": "Set-Mailbox -Identity alice -ForwardingSmtpAddress $null",
            }),
        );
        let counted = claims(
            "t-counted",
            "mailbox-removal",
            &["Remove-Mailbox"],
            json!({ "uses": 1 }),
        );
        let revoked_one = claims(
            "t-revoked",
            "transport-rules",
            &["New-TransportRule"],
            json!({}),
        );
        let tokens = [broad, narrow, counted, revoked_one]
            .iter()
            .flatten()
            .filter_map(|c| verify(&issue(c, &key).ok()?, &trust).ok())
            .collect();
        FuzzFixture {
            tokens,
            revoked: ["t-revoked".to_string()].into_iter().collect(),
            now,
        }
    })
}

/// Token ids of counted grants that cover an invocation of an allowed line: each must be spent
/// at the approval service (one use) before the line runs.
pub fn counted_grants_used(decision: &LineDecision, tokens: &[VerifiedToken]) -> Vec<String> {
    grants_used(decision, tokens)
        .into_iter()
        .filter(|(_, counted)| *counted)
        .map(|(jti, _)| jti)
        .collect()
}

/// Every token that covers an invocation of the line, once each, with whether it is counted;
/// uncounted ones first, so confirming them (no side effect) comes before spending a use. An
/// online gate confirms each at the approval service before the line runs.
pub fn grants_used(decision: &LineDecision, tokens: &[VerifiedToken]) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for d in &decision.invocations {
        if let Some(jti) = &d.token {
            let counted = tokens
                .iter()
                .any(|t| t.jti() == jti && t.claims().uses.is_some());
            if !out.iter().any(|(j, _)| j == jti) {
                out.push((jti.clone(), counted));
            }
        }
    }
    out.sort_by_key(|(_, counted)| *counted);
    out
}

fn refuse_unparsed(text: &str, err: &ParseError) -> LineDecision {
    let incomplete = matches!(err.kind, ParseErrorKind::Incomplete);
    LineDecision {
        text: text.to_string(),
        decision: Effect::Deny,
        reason: Cow::Owned(if incomplete {
            format!(
                "the line is incomplete ({}): nothing runs until it is finished",
                err.message
            )
        } else {
            format!(
                "the line does not parse at offset {}: {}",
                err.offset, err.message
            )
        }),
        incomplete,
        error: Some(LineError {
            message: err.message.clone(),
            offset: err.offset,
        }),
        invocations: Vec::new(),
    }
}

/// The decision for `inv`, with `name`, `as_written` and `params` left empty for the caller
/// to fill.
fn decide_invocation(
    inv: &Invocation,
    deferred: &[Span],
    ctx: &GateContext<'_>,
) -> InvocationDecision {
    let mut rd = ctx.policies.decide(inv);
    let mut out = InvocationDecision {
        name: SmolStr::default(),
        as_written: SmolStr::default(),
        depth: inv.depth,
        decision: rd.effect,
        rule: rd.rule.map(SmolStr::new),
        token: None,
        dynamic: rd.dynamic,
        reason: std::mem::take(&mut rd.reason),
        params: Vec::new(),
        kind: inv.kind,
    };
    if rd.effect != Effect::Approval || rd.dynamic || inv.dynamic.is_some() {
        // Dynamic code is never covered by a token: nobody approved what it will run.
        return out;
    }
    if deferred
        .iter()
        .any(|d| d.start <= inv.span.start && inv.span.end <= d.end)
    {
        // A function body or stored script block runs whenever it is called, in this or a
        // later line: after the token expires, and as often as wished.
        if !ctx.tokens.is_empty() {
            out.reason = format!(
                "{}; no token covers it: it is stored in a function or script block to run later, outside any approval's window",
                out.reason
            );
        }
        return out;
    }
    let mut refusals = Vec::new();
    for token in ctx.tokens {
        match token_covers(token, inv, out.rule.as_deref(), ctx) {
            Ok(()) => {
                out.decision = Effect::Allow;
                out.token = Some(token.jti().to_string());
                out.reason = format!(
                    "`{}` needs approval under rule `{}` and token `{}` covers it",
                    inv.name,
                    out.rule.as_deref().unwrap_or("defaults"),
                    token.jti()
                );
                return out;
            }
            Err(why) => refusals.push(format!("token `{}`: {why}", token.jti())),
        }
    }
    if !refusals.is_empty() {
        out.reason = format!(
            "{}; no token covers it ({})",
            out.reason,
            refusals.join("; ")
        );
    }
    out
}

/// Whether `token` covers `inv` now. `deciding_rule` is the most specific approval rule that
/// matched: a token counts only when it was issued under exactly that rule, because a broad rule
/// (`Set-*`) also names tasks a narrower rule with other approvers (forwarding) decides. The
/// error says why not, for the user.
fn token_covers(
    token: &VerifiedToken,
    inv: &Invocation,
    deciding_rule: Option<&str>,
    ctx: &GateContext<'_>,
) -> Result<(), String> {
    token
        .check(ctx.now, ctx.skew, ctx.user)
        .map_err(|e| e.to_string())?;
    let claims = token.claims();
    if ctx.revoked.contains(token.jti()) {
        return Err("the approval service does not confirm it".into());
    }
    if claims.uses.is_some() && !ctx.online {
        return Err(
            "it is a counted grant and the approval service is not reachable to count this use"
                .into(),
        );
    }
    match deciding_rule {
        Some(id) if id == claims.rule => {}
        Some(id) => {
            return Err(format!(
                "it was issued under rule `{}` but `{}` is decided by rule `{id}`",
                claims.rule, inv.name
            ))
        }
        None => return Err(format!("no approval rule names `{}`", inv.name)),
    }
    let rule = ctx
        .policies
        .rule(&claims.rule)
        .ok_or_else(|| format!("its rule `{}` is not in the loaded policies", claims.rule))?;
    if !ctx.online {
        offline_allowed(token, rule, ctx.now)?;
    }
    // Coverage is strict about module qualifiers: what a grant covers must be the very command
    // its rule and tasks name, while restrictive matching stays loose.
    if rule.effect != Effect::Approval
        || !rule.covers_task_strictly(inv.kind, &inv.name, inv.module.as_deref())
    {
        return Err(format!(
            "its rule `{}` does not cover `{}`",
            claims.rule,
            shown_name(inv)
        ));
    }
    if !claims
        .tasks
        .iter()
        .any(|t| task_matches(t, inv, ctx.policies, 0))
    {
        return Err(format!(
            "it grants {} but not `{}`",
            claims.tasks.join(", "),
            shown_name(inv)
        ));
    }
    if let Some(constraints) = &claims.params {
        match constraints.check(inv) {
            Tri::Yes => {}
            Tri::No => return Err("the parameters are outside its scope".into()),
            Tri::Unknown => {
                return Err(
                    "the parameters cannot be resolved with certainty against its scope".into(),
                )
            }
        }
    }
    if let Some(command) = &claims.command {
        if inv.pipeline_input {
            // The canonical form names the command and its parameters, not the objects a
            // pipeline feeds it: `Get-MoveRequest | Remove-MoveRequest` would match a grant
            // for removing one reviewed request.
            return Err(
                "it approves an exact command, and this one takes its input from a pipeline the approval does not fix"
                    .into(),
            );
        }
        match inv.canonical() {
            Some(c) if c == *command => {}
            Some(_) => return Err("it approves a different exact command".into()),
            None => {
                return Err(
                    "the command cannot be put in canonical form to compare with the approved one"
                        .into(),
                )
            }
        }
    }
    Ok(())
}

/// A granted task covers an invocation: a cmdlet name (case-insensitive), `role:NAME`, or a
/// task of another kind (`path:…`, `program:…`, `[Type]::Method`), which must be the
/// invocation's kind and name exactly. Module qualifiers match strictly: an invocation written
/// `Module\Name` is covered only by a grant naming that same module (`Exchange\New-MoveRequest`
/// never covers `Whatever\New-MoveRequest`); an unqualified grant covers only the unqualified
/// name, i.e. the command the runspace resolves by that name. A qualified grant also covers the
/// unqualified name. Roles nest at most a few levels (the loader refuses cycles; the bound is a
/// guard).
fn task_matches(task: &str, inv: &Invocation, policies: &PolicySet, depth: u8) -> bool {
    if let Some(role) = task.strip_prefix("role:") {
        return depth < 4
            && policies.role(role).is_some_and(|tasks| {
                tasks
                    .iter()
                    .any(|t| task_matches(t, inv, policies, depth + 1))
            });
    }
    match TaskKind::split(task) {
        (TaskKind::Command, _) if inv.kind == TaskKind::Command => {
            let (module, bare) = match crate::policy::rsplit_backslash(task) {
                Some((m, n)) => (Some(m), n),
                None => (None, task),
            };
            if !bare.eq_ignore_ascii_case(&inv.name) {
                return false;
            }
            match (inv.module.as_deref(), module) {
                (None, _) => true,
                (Some(got), Some(want)) => got.eq_ignore_ascii_case(want),
                (Some(_), None) => false,
            }
        }
        (TaskKind::Command, _) => false,
        (k, granted) => k == inv.kind && granted.eq_ignore_ascii_case(&inv.name),
    }
}

/// Offline use: the gate cannot confirm the token with the service, so it honours it only when
/// the rule in the gate's policies allows offline use, the token was issued with that
/// allowance, and `now` is inside the smaller of the two bounds after the token's issue.
fn offline_allowed(
    token: &VerifiedToken,
    rule: &crate::policy::Rule,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let claims = token.claims();
    let (Some(by_rule), Some(by_token)) = (rule.offline, claims.offline) else {
        return Err(format!(
            "the approval service is not reachable to confirm it, and rule `{}` does not allow offline use (`offline`)",
            claims.rule
        ));
    };
    let secs = by_rule.as_secs().min(by_token);
    let bound = i64::try_from(secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| claims.iat.checked_add_signed(d));
    match bound {
        Some(until) if now < until => Ok(()),
        _ => Err(format!(
            "the approval service is not reachable to confirm it, and its offline allowance ({secs} s after issue under rule `{}`) is over",
            claims.rule
        )),
    }
}

/// The name as the line wrote its module, for messages.
fn shown_name(inv: &Invocation) -> String {
    match &inv.module {
        Some(m) => format!("{m}\\{}", inv.name),
        None => inv.name.to_string(),
    }
}

fn line_reason(decision: Effect, decisions: &[InvocationDecision]) -> Cow<'static, str> {
    if decisions.is_empty() {
        return Cow::Borrowed("the line runs no command");
    }
    match decision {
        Effect::Allow => {
            let covered: Vec<&str> = decisions
                .iter()
                .filter_map(|d| d.token.as_deref())
                .collect();
            if covered.is_empty() {
                Cow::Borrowed("every command in the line is allowed")
            } else {
                Cow::Owned(format!(
                    "every command in the line is allowed (approval tokens: {})",
                    covered.join(", ")
                ))
            }
        }
        Effect::Approval | Effect::Deny => decisions
            .iter()
            .find(|d| d.decision == decision)
            .map(|d| Cow::Owned(d.reason.clone()))
            .unwrap_or_default(),
    }
}

/// Parameter names as a command line writes them: `-Name`.
fn dashed<S: serde::Serializer>(params: &[SmolStr], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(params.iter().map(|p| Dashed(p)))
}

/// A parameter name written with its dash.
struct Dashed<'a>(&'a str);

impl std::fmt::Display for Dashed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "-{}", self.0)
    }
}

impl Serialize for Dashed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl LineDecision {
    /// The pinned `check` output (SPEC §3).
    pub fn to_json(&self) -> Value {
        let invocations: Vec<Value> = self
            .invocations
            .iter()
            .map(|d| {
                let mut v = json!({
                    "name": d.name, "as_written": d.as_written, "depth": d.depth,
                    "decision": d.decision, "rule": d.rule, "token": d.token,
                    "dynamic": d.dynamic,
                    "params": d.params.iter().map(|p| Dashed(p)).collect::<Vec<_>>(),
                    "reason": d.reason,
                });
                if let (false, Some(obj)) = (d.kind.is_command(), v.as_object_mut()) {
                    obj.insert("kind".into(), json!(d.kind.as_str()));
                    obj.insert("task".into(), json!(d.kind.display(&d.name)));
                }
                v
            })
            .collect();
        let mut v = json!({
            "text": self.text, "decision": self.decision, "reason": self.reason,
            "invocations": invocations,
        });
        if let (Some(err), Some(obj)) = (&self.error, v.as_object_mut()) {
            obj.insert(
                "error".into(),
                json!({"message": err.message, "offset": err.offset}),
            );
            obj.insert("incomplete".into(), json!(self.incomplete));
        }
        // Keys sorted at every level: the bytes `check` and the audit log have always written
        // (serde_json's map keeps insertion order).
        v.sort_all_objects();
        v
    }
}

#[cfg(test)]
mod fuzz_fixture_tests {
    /// The fuzz fixture falls back to no tokens rather than panic; it must not fall back.
    #[test]
    fn fuzz_fixture_holds_its_four_tokens() {
        let f = super::fuzz_fixture();
        assert_eq!(f.tokens.len(), 4);
        assert!(f.revoked.contains("t-revoked"));
        let narrow = f
            .tokens
            .iter()
            .map(|t| t.claims())
            .find(|c| c.jti == "t-narrow")
            .expect("narrow token");
        assert!(narrow.params.is_some() && narrow.command.is_some());
        assert!(f
            .tokens
            .iter()
            .any(|t| t.claims().jti == "t-counted" && t.claims().uses == Some(1)));
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;
    use crate::policy::PolicySource;

    /// The decision keeps its parameter names without the dash and writes them with it, the
    /// same in the pinned `check` JSON (which `check` and the audit log write) and in its serde
    /// form: only bound names, in source order, positional ones by their canonical name.
    #[test]
    fn parameter_names_are_written_dashed_in_both_forms() {
        let set = PolicySet::from_sources(&[PolicySource::new(
            "p.toml",
            "version = 1\n[[rule]]\nid = \"r\"\neffect = \"allow\"\ntasks = [\"Get-Mailbox\", \"Set-Mailbox\"]\n",
        )])
        .expect("policy loads");
        let revoked = HashSet::new();
        let ctx = GateContext {
            policies: &set,
            catalog: Catalog::builtin(),
            user: "alice",
            now: chrono::DateTime::UNIX_EPOCH,
            tokens: &[],
            revoked: &revoked,
            skew: chrono::TimeDelta::seconds(30),
            online: false,
        };
        let d = check_line(
            "Get-Mailbox bob -ResultSize 5 | Set-Mailbox -HiddenFromAddressListsEnabled:$true",
            &ctx,
        );
        let names: Vec<&[SmolStr]> = d.invocations.iter().map(|i| i.params.as_slice()).collect();
        assert_eq!(
            names,
            [
                &["Identity".to_string(), "ResultSize".to_string()][..],
                &["HiddenFromAddressListsEnabled".to_string()][..]
            ]
        );
        let pinned = d.to_json();
        let derived = serde_json::to_value(&d).expect("serialises");
        for v in [&pinned, &derived] {
            assert_eq!(
                v["invocations"][0]["params"],
                serde_json::json!(["-Identity", "-ResultSize"])
            );
            assert_eq!(
                v["invocations"][1]["params"],
                serde_json::json!(["-HiddenFromAddressListsEnabled"])
            );
        }
    }
}
