//! Temporary stand-in for `crate::gate`, `crate::policy`, `crate::catalog` and `crate::token`
//! with the agreed shapes, so the shell can be built and exercised before they land. Replaced by
//! the real modules at merge; it never allows anything it cannot see plainly.

use std::collections::HashSet;
use std::path::Path;

/// Decision for a line or an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Approval,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Approval => "approval",
            Effect::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationDecision {
    pub name: String,
    pub as_written: String,
    pub depth: usize,
    pub decision: Effect,
    pub rule: Option<String>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDecision {
    pub decision: Effect,
    pub reason: String,
    pub incomplete: bool,
    pub invocations: Vec<InvocationDecision>,
}

impl LineDecision {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "decision": self.decision.as_str(),
            "reason": self.reason,
            "invocations": self.invocations.iter().map(|i| serde_json::json!({
                "name": i.name, "as_written": i.as_written, "depth": i.depth,
                "decision": i.decision.as_str(), "rule": i.rule, "token": i.token,
            })).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct PolicySet;

pub fn load_dir(_dir: &Path) -> Result<PolicySet, String> {
    Ok(PolicySet)
}

pub use crate::catalog::Catalog;

#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub jti: String,
    pub tasks: Vec<String>,
    pub exp: time::OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct TrustStore;

#[derive(Debug)]
pub struct GateContext<'a> {
    pub policies: &'a PolicySet,
    pub catalog: &'a Catalog,
    pub user: &'a str,
    pub now: time::OffsetDateTime,
    pub tokens: &'a [VerifiedToken],
    pub revoked: &'a HashSet<String>,
    pub skew: std::time::Duration,
}

/// Plain-words check: `Get-*` allowed, `New-MoveRequest` needs approval, anything else (and
/// anything dynamic-looking) denied; a trailing `|` asks for a continuation.
pub fn check_line(text: &str, ctx: &GateContext) -> LineDecision {
    let trimmed = text.trim_end();
    if trimmed.ends_with('|') {
        return LineDecision {
            decision: Effect::Deny,
            reason: "incomplete".into(),
            incomplete: true,
            invocations: Vec::new(),
        };
    }
    let mut invocations = Vec::new();
    for segment in trimmed.split(['|', ';', '\n']) {
        let Some(word) = segment.split_whitespace().next() else {
            continue;
        };
        let (decision, rule) = if word.contains(['&', '`', '(', '$']) {
            (Effect::Deny, None)
        } else if word.to_ascii_lowercase().starts_with("get-")
            || ["Remove-Mailbox", "Start-Sleep", "Read-Host", "exit"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(word))
        {
            (Effect::Allow, Some("read-only".to_string()))
        } else if word.eq_ignore_ascii_case("New-MoveRequest") {
            (Effect::Approval, Some("mailbox-moves".to_string()))
        } else {
            (Effect::Deny, None)
        };
        let token = (decision == Effect::Approval)
            .then(|| {
                ctx.tokens.iter().find(|t| {
                    t.exp > ctx.now
                        && !ctx.revoked.contains(&t.jti)
                        && t.tasks.iter().any(|k| k.eq_ignore_ascii_case(word))
                })
            })
            .flatten()
            .map(|t| t.jti.clone());
        let decision = if token.is_some() {
            Effect::Allow
        } else {
            decision
        };
        invocations.push(InvocationDecision {
            name: word.to_string(),
            as_written: word.to_string(),
            depth: 0,
            decision,
            rule,
            token,
        });
    }
    let decision = invocations
        .iter()
        .map(|i| i.decision)
        .fold(Effect::Allow, |acc, d| match (acc, d) {
            (Effect::Deny, _) | (_, Effect::Deny) => Effect::Deny,
            (Effect::Approval, _) | (_, Effect::Approval) => Effect::Approval,
            _ => Effect::Allow,
        });
    LineDecision {
        decision,
        reason: format!("line decision: {}", decision.as_str()),
        incomplete: false,
        invocations,
    }
}
