//! Task-level policies, format v1 (SPEC §2): loading and validation with `file:line:col`
//! errors, a compiled matcher, the order-independent decision for one invocation, and lint.
//!
//! Layer 0 and pure. Reading a policy folder from disk is the product's adapter (`jitsh`'s
//! `policy::load_dir`), which hands the text to [`PolicySet::from_sources`].
//!
//! INVARIANT: a [`PolicySet`] exists only fully validated: every rule id unique, every glob,
//! regex and role reference compiled, `defaults.dynamic` never `allow`. A load with any error
//! returns all of them and no set.

use std::collections::HashMap;
use std::fmt;

use crate::invocation::Invocation;

mod error;
mod eval;
mod fast;
mod index;
mod lint;
mod load;
mod model;
mod params;
mod pattern;
mod synthetic;

pub use error::{ConstraintError, LoadError, LoadErrors};
pub use lint::LintFinding;
pub use load::{parse_duration, MAX_DURATION_LIMIT};
pub use model::{ApprovalMode, Defaults, Effect, Rule, RuleDecision, Tri};
pub use params::{ParamConstraints, ValueConstraint};
pub use pattern::Glob;
pub use synthetic::synthetic_policy_set;

use index::TaskIndex;
pub(crate) use model::rsplit_backslash;
use model::TaskPattern;
use pattern::lower;

/// The text of one policy file and the name errors show for it (usually its path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySource {
    pub name: String,
    pub text: String,
}

impl PolicySource {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        PolicySource {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// A named set of tasks (`[roles."NAME"]`), usable in rules as `role:NAME`.
#[derive(Clone, Debug)]
pub struct Role {
    pub name: String,
    pub tasks: Vec<String>,
    pub description: Option<String>,
    patterns: Vec<TaskPattern>,
}

/// A validated, compiled set of policies.
pub struct PolicySet {
    defaults: Defaults,
    /// In load order: files as given, rules in file order.
    rules: Vec<Rule>,
    by_id: HashMap<String, usize>,
    /// By lowercase role name.
    roles: HashMap<String, Role>,
    index: TaskIndex,
}

impl PolicySet {
    /// Loads and validates every source; all errors across all sources, never a partial set.
    pub fn from_sources(sources: &[PolicySource]) -> Result<PolicySet, LoadErrors> {
        load::load(sources)
    }

    fn assemble(
        defaults: Defaults,
        rules: Vec<Rule>,
        by_id: HashMap<String, usize>,
        roles: HashMap<String, Role>,
    ) -> PolicySet {
        let index = TaskIndex::build(&rules);
        PolicySet {
            defaults,
            rules,
            by_id,
            roles,
            index,
        }
    }

    /// The policy decision for one invocation (tokens are the gate's business). Pure; the
    /// same for any order of rules and files.
    pub fn decide(&self, inv: &Invocation) -> RuleDecision<'_> {
        eval::decide(self, inv)
    }

    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// Resolves names as on `platform` instead of the policies' `[defaults] platform` (the
    /// `--platform` option of `jitsh check`).
    pub fn set_platform(&mut self, platform: crate::catalog::Platform) {
        self.defaults.platform = platform;
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.by_id.get(id).and_then(|&i| self.rules.get(i))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The tasks of role `name` (case-insensitive), as written.
    pub fn role(&self, name: &str) -> Option<&[String]> {
        self.roles.get(&lower(name)).map(|r| r.tasks.as_slice())
    }

    /// Every role, sorted by name.
    pub fn roles(&self) -> Vec<&Role> {
        let mut v: Vec<&Role> = self.roles.values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Approval rules a request for `task` (a cmdlet name, or `role:NAME`) would fall under,
    /// most specific first (see [`RuleDecision::rule`]). For a role: rules that name the
    /// role, or that cover each of its tasks.
    pub fn approval_rules_for(&self, task: &str) -> Vec<&Rule> {
        let approval = self.rules.iter().filter(|r| r.effect == Effect::Approval);
        let mut out: Vec<&Rule> = match task.strip_prefix("role:") {
            Some(role_name) => {
                let Some(role) = self.roles.get(&lower(role_name)) else {
                    return Vec::new();
                };
                approval
                    .filter(|r| {
                        r.tasks.iter().any(|t| {
                            t.strip_prefix("role:")
                                .is_some_and(|n| lower(n) == lower(&role.name))
                        }) || (!role.tasks.is_empty()
                            && role.tasks.iter().all(|t| r.covers_name(t, None)))
                    })
                    .collect()
            }
            None => approval.filter(|r| r.covers_name(task, None)).collect(),
        };
        // Most specific first, as in decisions.
        let (kind, name) = crate::invocation::TaskKind::split(task);
        let text = model::match_name(kind, name);
        let lname: Vec<char> = text.chars().map(pattern::lower_char).collect();
        out.sort_by_cached_key(|r| {
            (
                std::cmp::Reverse(eval::specificity(r, kind, &lname, None)),
                r.id.clone(),
            )
        });
        out
    }

    /// Findings about rules that cannot work as written. `known` says whether a command name
    /// exists (the catalog); exact task names it does not know are reported.
    pub fn lint(&self, known: &dyn Fn(&str) -> bool) -> Vec<LintFinding> {
        lint::lint(self, known)
    }
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut roles: Vec<&str> = self.roles.values().map(|r| r.name.as_str()).collect();
        roles.sort_unstable();
        f.debug_struct("PolicySet")
            .field("defaults", &self.defaults)
            .field("rules", &self.rules.len())
            .field("roles", &roles)
            .finish_non_exhaustive()
    }
}
