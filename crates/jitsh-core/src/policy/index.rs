//! The compiled task index: finds the rules whose task patterns cover a command name without
//! looking at every rule.
//!
//! Exact names are one hash probe; `literal*` patterns are found by probing each prefix length
//! of the name that some pattern has, `*literal` likewise with suffixes; the remaining globs
//! are grouped by their literal text before the first wildcard and tried only when the name
//! starts with it. The cost of a lookup grows with the name's length and the number of
//! patterns that actually match, not with the number of rules.

use std::collections::{BTreeSet, HashMap};

use crate::invocation::TaskKind;
use crate::policy::model::{Effect, Rule, TaskPattern};
use crate::policy::pattern::{Glob, Shape};

/// A pattern occurrence: which rule, and the module qualifier it carries.
#[derive(Clone, Debug)]
struct Entry {
    rule: u32,
    module: Option<String>,
    /// Allow rules honour module qualifiers strictly (see [`TaskPattern::covers`]).
    strict_module: bool,
}

impl Entry {
    fn module_ok(&self, module: Option<&str>) -> bool {
        match (&self.module, module) {
            (Some(want), Some(got)) if self.strict_module => want == got,
            _ => true,
        }
    }
}

/// One index per task kind: a pattern only ever covers tasks of its own kind (`*` written for
/// commands never covers a script path or a method).
#[derive(Default, Debug)]
pub(crate) struct TaskIndex {
    command: NameIndex,
    path: NameIndex,
    program: NameIndex,
    method: NameIndex,
}

impl TaskIndex {
    pub(crate) fn build(rules: &[Rule]) -> TaskIndex {
        let mut ix = TaskIndex::default();
        for kind in [
            TaskKind::Command,
            TaskKind::Path,
            TaskKind::Program,
            TaskKind::Method,
        ] {
            *ix.of_mut(kind) = NameIndex::build(rules, kind);
        }
        ix
    }

    fn of(&self, kind: TaskKind) -> &NameIndex {
        match kind {
            TaskKind::Command => &self.command,
            TaskKind::Path => &self.path,
            TaskKind::Program => &self.program,
            TaskKind::Method => &self.method,
        }
    }

    fn of_mut(&mut self, kind: TaskKind) -> &mut NameIndex {
        match kind {
            TaskKind::Command => &mut self.command,
            TaskKind::Path => &mut self.path,
            TaskKind::Program => &mut self.program,
            TaskKind::Method => &mut self.method,
        }
    }

    /// Indexes of the rules with a pattern of `kind` covering the lowercase `lname` (see
    /// [`NameIndex::candidates`]).
    pub(crate) fn candidates(
        &self,
        kind: TaskKind,
        lname: &str,
        chars: &[char],
        module: Option<&str>,
    ) -> Vec<u32> {
        self.of(kind).candidates(lname, chars, module)
    }

    /// Indexes of rules with a pattern of `kind` that may cover every name `glob` matches.
    pub(crate) fn subsuming(&self, kind: TaskKind, glob: &Glob) -> Vec<u32> {
        self.of(kind).subsuming(glob)
    }
}

/// The patterns of one task kind.
#[derive(Default, Debug)]
struct NameIndex {
    exact: HashMap<String, Vec<Entry>>,
    prefix: HashMap<String, Vec<Entry>>,
    suffix: HashMap<String, Vec<Entry>>,
    other: HashMap<String, Vec<(Glob, Entry)>>,
    /// Byte lengths of the keys in `prefix`, `suffix` and `other`, so lookups probe only
    /// lengths that exist.
    prefix_lens: Vec<usize>,
    suffix_lens: Vec<usize>,
    other_lens: Vec<usize>,
}

impl NameIndex {
    fn build(rules: &[Rule], kind: TaskKind) -> NameIndex {
        let mut ix = NameIndex::default();
        let (mut pl, mut sl, mut ol) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (i, rule) in rules.iter().enumerate() {
            let Ok(rule_no) = u32::try_from(i) else {
                // More than 4 billion rules cannot be loaded from text anyway.
                break;
            };
            for p in rule.patterns.iter().filter(|p| p.kind == kind) {
                ix.insert(rule_no, rule.effect, p, &mut pl, &mut sl, &mut ol);
            }
        }
        ix.prefix_lens = pl.into_iter().collect();
        ix.suffix_lens = sl.into_iter().collect();
        ix.other_lens = ol.into_iter().collect();
        ix
    }

    fn insert(
        &mut self,
        rule: u32,
        effect: Effect,
        p: &TaskPattern,
        pl: &mut BTreeSet<usize>,
        sl: &mut BTreeSet<usize>,
        ol: &mut BTreeSet<usize>,
    ) {
        let entry = Entry {
            rule,
            module: p.module.clone(),
            strict_module: effect == Effect::Allow,
        };
        match p.glob.shape() {
            Shape::Exact(k) => self.exact.entry(k).or_default().push(entry),
            Shape::Prefix(k) => {
                pl.insert(k.len());
                self.prefix.entry(k).or_default().push(entry);
            }
            Shape::Suffix(k) => {
                sl.insert(k.len());
                self.suffix.entry(k).or_default().push(entry);
            }
            Shape::Other(k) => {
                ol.insert(k.len());
                self.other
                    .entry(k)
                    .or_default()
                    .push((p.glob.clone(), entry));
            }
        }
    }

    /// Indexes of the rules with a task pattern covering the lowercase `lname` (`chars` is
    /// the same text split into chars) in lowercase `module`; sorted, without duplicates.
    /// `except` and conditions are not applied here.
    fn candidates(&self, lname: &str, chars: &[char], module: Option<&str>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut take = |entries: Option<&Vec<Entry>>| {
            for e in entries.into_iter().flatten() {
                if e.module_ok(module) {
                    out.push(e.rule);
                }
            }
        };
        take(self.exact.get(lname));
        for &n in &self.prefix_lens {
            if let Some(k) = lname.get(..n) {
                take(self.prefix.get(k));
            }
        }
        for &n in &self.suffix_lens {
            if let Some(k) = lname.len().checked_sub(n).and_then(|s| lname.get(s..)) {
                take(self.suffix.get(k));
            }
        }
        for &n in &self.other_lens {
            let Some(k) = lname.get(..n) else { continue };
            for (g, e) in self.other.get(k).into_iter().flatten() {
                if e.module_ok(module) && g.matches_lower(chars) {
                    out.push(e.rule);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Indexes of rules with a pattern that may cover every name `glob` matches (a superset
    /// of what [`Glob::subsumed_by`] confirms; the caller confirms). Lets lint compare
    /// patterns without trying every pair.
    fn subsuming(&self, glob: &Glob) -> Vec<u32> {
        if glob.is_literal() {
            let text = crate::policy::pattern::lower(glob.as_str());
            let chars: Vec<char> = text.chars().collect();
            return self.candidates(&text, &chars, None);
        }
        let mut out = Vec::new();
        let mut take = |entries: Option<&Vec<Entry>>| {
            out.extend(entries.into_iter().flatten().map(|e| e.rule));
        };
        match glob.shape() {
            Shape::Prefix(lit) | Shape::Other(lit) => {
                for &n in &self.prefix_lens {
                    if let Some(k) = lit.get(..n) {
                        take(self.prefix.get(k));
                    }
                }
            }
            Shape::Suffix(lit) => {
                take(self.prefix.get(""));
                for &n in &self.suffix_lens {
                    if let Some(k) = lit.len().checked_sub(n).and_then(|s| lit.get(s..)) {
                        take(self.suffix.get(k));
                    }
                }
            }
            Shape::Exact(_) => {}
        }
        if let Shape::Other(lit) = glob.shape() {
            for (g, e) in self.other.get(&lit).into_iter().flatten() {
                if g == glob {
                    out.push(e.rule);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
