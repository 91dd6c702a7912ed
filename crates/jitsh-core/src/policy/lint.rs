//! Lint: rules that load but cannot work as their author meant.
//!
//! - `never-matches`: every task is removed by `except`, or the parameter conditions
//!   contradict each other (`params.only` forbids a parameter that `when` or a value
//!   constraint needs).
//! - `shadowed-approval`: an unconditional allow rule covers tasks of an approval rule, so
//!   those tasks never need approval (allow wins over approval).
//! - `unknown-task`: an exact task name the catalog does not know (a typo never matches).
//! - `no-approvers`: a manual approval rule without approvers (it loads; only the service's
//!   default approver group can approve its requests, nobody while none is set).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::invocation::TaskKind;
use crate::policy::model::{ApprovalMode, Effect, Rule};
use crate::policy::PolicySet;

/// One lint finding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LintFinding {
    /// The rule id (or `role:NAME` for a role).
    pub rule: String,
    /// `never-matches`, `shadowed-approval`, `unknown-task` or `no-approvers`.
    pub kind: String,
    pub message: String,
}

pub(crate) fn lint(set: &PolicySet, known: &dyn Fn(&str) -> bool) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let finding = |rule: &str, kind: &str, message: String| LintFinding {
        rule: rule.to_string(),
        kind: kind.to_string(),
        message,
    };
    let rules = set.rules();
    for rule in rules {
        if rule.effect == Effect::Approval
            && rule.approval == ApprovalMode::Manual
            && rule.approvers.is_empty()
        {
            out.push(finding(
                &rule.id,
                "no-approvers",
                format!(
                    "approval rule `{}` has no `approvers`: only the service's default approver group (Enable-ElevatedAccessControl -AdminGroup) can approve its requests, and nobody while none is set",
                    rule.id
                ),
            ));
        }
        if let Some(m) = never_matches(rule) {
            out.push(finding(&rule.id, "never-matches", m));
        }
        for t in rule.tasks.iter().chain(&rule.except) {
            if let Some(why) = unknown_literal(t, known) {
                out.push(finding(
                    &rule.id,
                    "unknown-task",
                    format!("rule `{}` names {why}", rule.id),
                ));
            }
        }
    }
    for role in set.roles() {
        for t in &role.tasks {
            if let Some(why) = unknown_literal(t, known) {
                out.push(finding(
                    &format!("role:{}", role.name),
                    "unknown-task",
                    format!("role `{}` names {why}", role.name),
                ));
            }
        }
    }

    // Pairs found through the index, so lint stays fast on very large sets.
    let unconditional_allow = |r: &Rule| {
        r.effect == Effect::Allow
            && r.when_any_param.is_none()
            && r.when_no_param.is_none()
            && r.params.is_none()
    };
    for appr in rules.iter().filter(|r| r.effect == Effect::Approval) {
        let mut by_allow: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for ap in &appr.patterns {
            for i in set.index.subsuming(ap.kind, &ap.glob) {
                let Some((i, allow)) = usize::try_from(i)
                    .ok()
                    .and_then(|i| Some((i, rules.get(i)?)))
                else {
                    continue;
                };
                if !unconditional_allow(allow) {
                    continue;
                }
                let subsumed = allow.patterns.iter().any(|p| {
                    p.kind == ap.kind && p.module.is_none() && ap.glob.subsumed_by(&p.glob)
                });
                let not_excepted = if ap.glob.is_literal() {
                    allow.covers_task(ap.kind, ap.glob.as_str(), None)
                } else {
                    allow.except_patterns.is_empty()
                };
                if subsumed && not_excepted {
                    by_allow.entry(i).or_default().push(ap.glob.as_str());
                }
            }
        }
        for (i, shadowed) in by_allow {
            let Some(allow) = rules.get(i) else { continue };
            out.push(finding(
                &appr.id,
                "shadowed-approval",
                format!(
                    "allow rule `{}` covers {} of approval rule `{}`, so {} never need approval; add them to its `except`",
                    allow.id,
                    backticked(&shadowed),
                    appr.id,
                    if shadowed.len() == 1 { "it does" } else { "they" },
                ),
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Why `rule` can never match, if it provably cannot.
fn never_matches(rule: &Rule) -> Option<String> {
    let all_excepted = !rule.patterns.is_empty()
        && rule.patterns.iter().all(|p| {
            rule.except_patterns
                .iter()
                .any(|e| e.kind == p.kind && e.module.is_none() && p.glob.subsumed_by(&e.glob))
        });
    if all_excepted {
        return Some(format!(
            "every task of rule `{}` is also listed in its `except`",
            rule.id
        ));
    }
    let only = rule.params.as_ref().and_then(|p| p.only());
    if let Some(only) = only {
        let allowed = |n: &str| only.iter().any(|o| o.eq_ignore_ascii_case(n));
        if let Some(names) = &rule.when_any_param {
            if !names.iter().any(|n| allowed(n)) {
                return Some(format!(
                    "rule `{}` needs one of `when.any_param` but `params.only` forbids all of them",
                    rule.id
                ));
            }
        }
        if let Some((n, _)) = rule
            .params
            .iter()
            .flat_map(|p| p.values())
            .find(|(n, _)| !allowed(n))
        {
            return Some(format!(
                "rule `{}` constrains parameter `{n}` but `params.only` forbids it",
                rule.id
            ));
        }
    }
    None
}

/// Why an exact task names nothing the gate knows, if it does: a command the catalog and the
/// known command names lack, or a method of a .NET type the gate does not know (calls to it
/// are always dynamic, so such a rule never applies). Scripts and programs name files, which
/// lint cannot see.
fn unknown_literal(task: &str, known: &dyn Fn(&str) -> bool) -> Option<String> {
    if task.starts_with("role:") {
        return None;
    }
    match TaskKind::split(task) {
        (TaskKind::Path | TaskKind::Program, _) => None,
        (TaskKind::Method, m) => {
            let ty = m.strip_prefix('[')?.split_once("]::")?.0;
            if ty.contains(['*', '?']) || crate::resolve::canonical_type_name(ty).is_some() {
                return None;
            }
            Some(format!(
                "`{task}`, a method of a type the gate does not know: calls to it are always dynamic"
            ))
        }
        (TaskKind::Command, _) => {
            if task.contains(['*', '?', '[']) {
                return None;
            }
            let name = task.rsplit_once('\\').map_or(task, |(_, n)| n);
            (!known(name)).then(|| format!("`{name}`, which is not a known command"))
        }
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
