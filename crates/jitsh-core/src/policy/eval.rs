//! The decision for one invocation: pure, and independent of rule order.
//!
//! Matching rules are collected as sets by effect, then one exhaustive `match` decides:
//! deny > allow > approval > `defaults.unmatched`. Uncertainty never loosens a decision: a
//! deny or approval rule whose condition is unknown counts as matching; an allow rule whose
//! condition is unknown does not, and if it could have allowed, the decision falls to
//! `defaults.dynamic` (or stricter).

use crate::invocation::{Invocation, TaskKind};
use crate::policy::model::{match_name, split_module, Effect, Rule, RuleDecision};
use crate::policy::params::{eval_any_param, Cond};
use crate::policy::pattern::{lower, with_lower, LowerName};
use crate::policy::PolicySet;

/// A message from its pieces (`str`s, `String`s and the invocation as [`shown`]), sized once:
/// every invocation of every line gets one, and `format!` cost several times as much as the
/// copying (4% of a line's instructions). Each piece is a place or a cheap accessor: the macro
/// reads it twice.
macro_rules! msg {
    ($($part:expr),+ $(,)?) => {{
        let mut text = String::with_capacity(0 $(+ Piece::len(&$part))+);
        $(Piece::push(&$part, &mut text);)+
        text
    }};
}

/// A piece of a [`msg!`].
trait Piece {
    fn len(&self) -> usize;
    fn push(&self, to: &mut String);
}

impl Piece for str {
    fn len(&self) -> usize {
        str::len(self)
    }
    fn push(&self, to: &mut String) {
        to.push_str(self);
    }
}

impl Piece for String {
    fn len(&self) -> usize {
        String::len(self)
    }
    fn push(&self, to: &mut String) {
        to.push_str(self);
    }
}

impl<T: Piece + ?Sized> Piece for &T {
    fn len(&self) -> usize {
        T::len(self)
    }
    fn push(&self, to: &mut String) {
        T::push(self, to);
    }
}

impl Piece for [&str; 3] {
    fn len(&self) -> usize {
        self.iter().map(|p| p.len()).sum()
    }
    fn push(&self, to: &mut String) {
        self.iter().for_each(|p| to.push_str(p));
    }
}

/// Rules that matched, by how.
#[derive(Default)]
struct Hits<'a> {
    deny: Vec<(&'a Rule, Option<String>)>,
    allow: Vec<&'a Rule>,
    /// Allow rules whose task matched but whose condition could not be decided.
    allow_unknown: Vec<(&'a Rule, String)>,
    approval: Vec<(&'a Rule, Option<String>)>,
}

/// The rule's `when` and `params` conditions.
pub(crate) fn condition(rule: &Rule, inv: &Invocation) -> Cond {
    let mut cond = Cond::Yes;
    if let Some(names) = &rule.when_any_param {
        cond = cond.and(eval_any_param(names, inv));
    }
    if let Some(names) = &rule.when_no_param {
        cond = cond.and(eval_any_param(names, inv).not());
    }
    if let Some(p) = &rule.params {
        cond = cond.and(p.eval(inv));
    }
    cond
}

pub(crate) fn decide<'s>(set: &'s PolicySet, inv: &Invocation) -> RuleDecision<'s> {
    let kind = inv.kind;
    let (name, module) = match kind {
        TaskKind::Command => split_module(&inv.name, inv.module.as_deref()),
        _ => (inv.name.as_str(), None),
    };
    let name = match_name(kind, name);
    with_lower(name.as_ref(), |lname| {
        decide_lower(set, inv, &LowerName::new(lname), module)
    })
}

/// [`decide`] for the invocation's task name, lowercased, and its module as written.
fn decide_lower<'s>(
    set: &'s PolicySet,
    inv: &Invocation,
    lname: &LowerName<'_>,
    module: Option<&str>,
) -> RuleDecision<'s> {
    let defaults = set.defaults();
    let sh = shown(inv);
    let kind = inv.kind;
    let lmodule = module.map(lower);

    // A name that is not known for certain is never matched for allow or approval; only a
    // deny that its text (as far as it is known) hits can make the default stricter.
    if let Some(why) = &inv.dynamic {
        let denies: Vec<&Rule> = matching_rules(set, kind, lname, lmodule.as_deref())
            .filter(|r| r.effect == Effect::Deny)
            .collect();
        if let Some(first) = denies.iter().min_by(|a, b| a.id.cmp(&b.id)) {
            return RuleDecision {
                effect: Effect::Deny,
                rule: Some(first.id.as_str()),
                dynamic: true,
                reason: msg! {
                    "`", sh, "` cannot be analysed statically (", why,
                    ") and is denied by rule `", first.id, "`"
                },
                rules: {
                    let mut v = ids(denies.iter().copied());
                    v.sort();
                    v
                },
            };
        }
        return RuleDecision {
            effect: defaults.dynamic,
            rule: None,
            dynamic: true,
            reason: msg! {
                "`", sh, "` cannot be analysed statically (", why,
                "); the policy's default for such invocations is ", defaults.dynamic.as_str()
            },
            rules: Vec::new(),
        };
    }

    // A script or program no rule names is code the gate cannot see: never the plain
    // `unmatched` default (which may be allow), but the dynamic one, or stricter.
    let file = matches!(kind, TaskKind::Path | TaskKind::Program);
    let unmatched = if file {
        defaults.dynamic.max(defaults.unmatched)
    } else {
        defaults.unmatched
    };

    let mut hits = Hits::default();
    for rule in matching_rules(set, kind, lname, lmodule.as_deref()) {
        match (rule.effect, condition(rule, inv)) {
            (_, Cond::No) => {}
            (Effect::Deny, Cond::Yes) => hits.deny.push((rule, None)),
            (Effect::Deny, Cond::Unknown(why)) => hits.deny.push((rule, Some(why))),
            (Effect::Allow, Cond::Yes) => hits.allow.push(rule),
            (Effect::Allow, Cond::Unknown(why)) => hits.allow_unknown.push((rule, why)),
            (Effect::Approval, Cond::Yes) => hits.approval.push((rule, None)),
            (Effect::Approval, Cond::Unknown(why)) => hits.approval.push((rule, Some(why))),
        }
    }
    // Candidates come sorted by rule position; sort by id so nothing depends on file order.
    // Approval rules go most specific first: the first one is the rule a token must be for,
    // so a narrow rule with its own approvers (forwarding changes) is never satisfied by a
    // token from a broad catch-all rule.
    hits.deny.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    hits.allow.sort_by(|a, b| a.id.cmp(&b.id));
    hits.allow_unknown.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    hits.approval.sort_by_cached_key(|(r, _)| {
        (
            std::cmp::Reverse(specificity(r, kind, lname.chars(), lmodule.as_deref())),
            r.id.clone(),
        )
    });

    match (
        hits.deny.as_slice(),
        hits.allow.as_slice(),
        hits.allow_unknown.as_slice(),
        hits.approval.as_slice(),
    ) {
        // Any matching deny denies, whatever else matches.
        ([first, ..], _, _, _) => {
            let certain = hits.deny.iter().find(|(_, why)| why.is_none());
            let (rule, why) = certain.unwrap_or(first);
            let reason = match why {
                None => msg! {"`", sh, "` is denied by rule `", rule.id, "`"},
                Some(why) => msg! {
                    "`", sh, "` is denied by rule `", rule.id,
                    "` because its condition cannot be ruled out: ", why
                },
            };
            RuleDecision {
                effect: Effect::Deny,
                rule: Some(rule.id.as_str()),
                dynamic: certain.is_none(),
                reason,
                rules: ids(hits.deny.iter().map(|(r, _)| *r)),
            }
        }
        // No deny: a certain allow allows.
        ([], [first, ..], _, _) => RuleDecision {
            effect: Effect::Allow,
            rule: Some(first.id.as_str()),
            dynamic: false,
            reason: msg! {"`", sh, "` is allowed by rule `", first.id, "`"},
            rules: ids(hits.allow.iter().copied()),
        },
        // An allow that might apply but cannot be confirmed: never allow; take the dynamic
        // default, or what the other rules say if that is stricter.
        ([], [], [(allow, why), ..], approvals) => {
            let fallback = if approvals.is_empty() {
                unmatched
            } else {
                Effect::Approval
            };
            let effect = defaults.dynamic.max(fallback);
            let by_approval = effect == Effect::Approval && !approvals.is_empty();
            RuleDecision {
                effect,
                rule: if by_approval {
                    approvals.first().map(|(r, _)| r.id.as_str())
                } else {
                    None
                },
                dynamic: true,
                reason: msg! {
                    "rule `", allow.id, "` would allow `", sh,
                    "` only if its parameter conditions hold, and that cannot be checked (", why,
                    "); the decision is ", effect.as_str()
                },
                rules: if by_approval {
                    ids(approvals.iter().map(|(r, _)| *r))
                } else {
                    Vec::new()
                },
            }
        }
        // Only approval rules match.
        ([], [], [], [first, ..]) => {
            let certain = hits.approval.iter().find(|(_, why)| why.is_none());
            let (rule, why) = first;
            let reason = match why {
                None => msg! {"`", sh, "` needs approval under rule `", rule.id, "`"},
                Some(why) => msg! {
                    "`", sh, "` needs approval under rule `", rule.id,
                    "` because its condition cannot be ruled out: ", why
                },
            };
            RuleDecision {
                effect: Effect::Approval,
                rule: Some(rule.id.as_str()),
                dynamic: certain.is_none(),
                reason,
                rules: ids(hits.approval.iter().map(|(r, _)| *r)),
            }
        }
        // Nothing matches.
        ([], [], [], []) if file => RuleDecision {
            effect: unmatched,
            rule: None,
            dynamic: true,
            reason: msg! {
                "`", sh,
                "` runs a script or program that no rule names, which is code the gate cannot \
                 see; the decision is the policy's default for dynamic invocations, ",
                unmatched.as_str()
            },
            rules: Vec::new(),
        },
        ([], [], [], []) => RuleDecision {
            effect: defaults.unmatched,
            rule: None,
            dynamic: false,
            reason: msg! {
                "no rule matches `", sh, "`; the policy's default for unmatched commands is ",
                defaults.unmatched.as_str()
            },
            rules: Vec::new(),
        },
    }
}

/// Rules whose tasks cover the name and whose `except` does not (conditions not checked).
fn matching_rules<'s: 'q, 'q>(
    set: &'s PolicySet,
    kind: TaskKind,
    lname: &'q LowerName<'q>,
    lmodule: Option<&'q str>,
) -> impl Iterator<Item = &'s Rule> + 'q {
    set.index
        .candidates(kind, lname, lmodule)
        .into_iter()
        .filter_map(|i| usize::try_from(i).ok().and_then(|i| set.rules().get(i)))
        .filter(move |r| !r.excepted(kind, lname, lmodule))
}

/// How narrowly `rule` targets this invocation: a rule with parameter conditions is narrower
/// than one without, and a task named exactly narrower than a glob.
pub(crate) fn specificity(
    rule: &Rule,
    kind: TaskKind,
    lname: &[char],
    lmodule: Option<&str>,
) -> u8 {
    let conditional =
        rule.when_any_param.is_some() || rule.when_no_param.is_some() || rule.params.is_some();
    let literal = rule
        .patterns
        .iter()
        .any(|p| p.kind == kind && p.glob.is_literal() && p.covers(lname, lmodule, false));
    u8::from(conditional) * 2 + u8::from(literal)
}

fn ids<'a>(rules: impl Iterator<Item = &'a Rule>) -> Vec<&'a str> {
    rules.map(|r| r.id.as_str()).collect()
}

/// The invocation as messages name it, in three pieces: `Module\Name`, or the task as a policy
/// names it (written straight into the message, without a string of its own).
fn shown(inv: &Invocation) -> [&str; 3] {
    match &inv.module {
        Some(m) => [m, "\\", &inv.name],
        None => ["", inv.kind.prefix(), &inv.name],
    }
}
