//! The validated policy model: rules, effects, defaults and the decision for one invocation.
//!
//! INVARIANT: a [`Rule`] is built only by the loader (`load.rs`), so its compiled task
//! patterns always agree with its `tasks`/`except` text and its role expansion.

use crate::catalog::Platform;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::invocation::TaskKind;
use crate::policy::params::ParamConstraints;
use crate::policy::pattern::{lower, Glob, LowerName};

/// What a rule (or a default) says about an invocation.
///
/// `Ord` follows restrictiveness: `Allow < Approval < Deny`, so "the most restrictive of" is
/// `max`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// How an approval rule's requests are approved.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// A member of one of the rule's approver groups (never the requester) approves.
    Manual,
    /// The service approves at once; the request and grant are still audited.
    Auto,
}

/// The `[defaults]` table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct Defaults {
    /// Decision for an invocation no rule matches.
    pub unmatched: Effect,
    /// Decision for an invocation that cannot be analysed statically.
    /// INVARIANT: never [`Effect::Allow`] (the loader refuses it).
    pub dynamic: Effect,
    /// The runspace's platform: `sort`, `ls`, `ps` … are aliases on Windows and native
    /// programs on Linux and macOS. Unknown unless a policy says, and then such names are
    /// uncertain.
    pub platform: Platform,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            unmatched: Effect::Deny,
            dynamic: Effect::Deny,
            platform: Platform::Unknown,
        }
    }
}

/// One task pattern of a rule: its kind, an optional module qualifier and a name glob.
#[derive(Clone, Debug)]
pub(crate) struct TaskPattern {
    /// Which kind of task it names; it covers tasks of that kind only.
    pub(crate) kind: TaskKind,
    /// Lowercase module qualifier (`Exchange` in `Exchange\New-MoveRequest`).
    pub(crate) module: Option<String>,
    /// For methods, over `Full.Type.Name::Method` (see [`match_name`]).
    pub(crate) glob: Glob,
}

impl TaskPattern {
    /// Parses `Name`, `Module\Name`, `path:GLOB`, `program:GLOB`, `[Type]::Method` or a glob
    /// of one of them; `role:` references are expanded by the loader before this is called.
    pub(crate) fn parse(text: &str) -> Result<TaskPattern, String> {
        if text.trim().is_empty() {
            return Err("empty task name".to_string());
        }
        match TaskKind::split(text) {
            (TaskKind::Command, _) => {}
            (TaskKind::Path, rest) => return parse_path(text, rest),
            (TaskKind::Program, rest) => return parse_program(text, rest),
            (TaskKind::Method, rest) => return parse_method(text, rest),
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("task `{text}` contains whitespace"));
        }
        if text.contains('`') {
            return Err(format!(
                "task `{text}` contains a backtick: write the name without escapes"
            ));
        }
        let (module, name) = match text.rsplit_once('\\') {
            Some((m, n)) => {
                if m.is_empty() || m.contains('\\') {
                    return Err(format!(
                        "task `{text}` has an empty or nested module qualifier"
                    ));
                }
                if m.contains(['*', '?', '[', ']']) {
                    return Err(format!(
                        "task `{text}` has wildcards in its module qualifier: only the name may be a pattern"
                    ));
                }
                (Some(lower(m)), n)
            }
            None => (None, text),
        };
        if name.is_empty() {
            return Err(format!("task `{text}` has an empty name"));
        }
        let glob = Glob::new(name).map_err(|e| format!("invalid task pattern `{text}`: {e}"))?;
        Ok(TaskPattern {
            kind: TaskKind::Command,
            module,
            glob,
        })
    }

    /// Whether this pattern covers `name` (already lowercased into chars) in `module`
    /// (lowercase). `strict_module`: a module qualifier must agree with the invocation's;
    /// otherwise (deny and approval rules) the qualifier is ignored so that writing another
    /// module's name never escapes a restrictive rule.
    pub(crate) fn covers(&self, name: &[char], module: Option<&str>, strict_module: bool) -> bool {
        self.module_ok(module, strict_module) && self.glob.matches_lower(name)
    }

    pub(crate) fn module_ok(&self, module: Option<&str>, strict_module: bool) -> bool {
        match (&self.module, module) {
            (Some(want), Some(got)) if strict_module => want == got,
            _ => true,
        }
    }
}

/// Characters a file path or name in a task may not contain: controls, and the quoting and
/// escape characters PowerShell would have removed before the name is known.
fn bad_file_char(c: char) -> bool {
    c.is_control() || matches!(c, '`' | '"' | '\'' | '\u{2018}'..='\u{201E}')
}

fn parse_path(text: &str, rest: &str) -> Result<TaskPattern, String> {
    let path = rest.trim();
    if path.is_empty() || path.chars().any(bad_file_char) || path != rest {
        return Err(format!(
            "task `{text}` needs a path without quotes, backticks or surrounding spaces after `path:`, e.g. `path:C:\\Scripts\\*.ps1`"
        ));
    }
    let path = normalize_path(path);
    let looks_like_path = path.contains('\\') || path.starts_with('~') || path.contains(':');
    if !looks_like_path {
        return Err(format!(
            "task `{text}` names no folder: `path:` matches scripts and programs run by their path (`path:C:\\Scripts\\*.ps1`, `path:.\\*.ps1`); for a file name looked up on PATH write `program:{path}`"
        ));
    }
    if path
        .split('\\')
        .any(|seg| seg.trim_end_matches([' ', '.']).is_empty() && seg.matches('.').count() >= 2)
    {
        return Err(format!(
            "task `{text}` contains a `..` folder: name the folder itself"
        ));
    }
    let glob = Glob::new(&path).map_err(|e| format!("invalid task pattern `{text}`: {e}"))?;
    Ok(TaskPattern {
        kind: TaskKind::Path,
        module: None,
        glob,
    })
}

fn parse_program(text: &str, rest: &str) -> Result<TaskPattern, String> {
    let name = rest.trim();
    if name.is_empty() || name.chars().any(bad_file_char) || name != rest {
        return Err(format!(
            "task `{text}` needs a file name without quotes, backticks or surrounding spaces after `program:`, e.g. `program:ping.exe`"
        ));
    }
    if name.contains(['\\', '/', ':']) {
        return Err(format!(
            "task `{text}` contains a folder: `program:` matches file names looked up on PATH; for a script or program run by its path write `path:{name}`"
        ));
    }
    if !name.contains('.') {
        return Err(format!(
            "task `{text}` has no extension: `program:` matches names with one (`program:ping.exe`, `program:Get-Report.ps1`)"
        ));
    }
    let glob = Glob::new(name).map_err(|e| format!("invalid task pattern `{text}`: {e}"))?;
    Ok(TaskPattern {
        kind: TaskKind::Program,
        module: None,
        glob,
    })
}

fn parse_method(text: &str, rest: &str) -> Result<TaskPattern, String> {
    let usage = "write a .NET method as `[Full.Type.Name]::Method` (globs allowed in both parts)";
    let Some((ty, method)) = rest.strip_prefix('[').and_then(|r| r.split_once("]::")) else {
        return Err(format!("task `{text}` is not a method name: {usage}"));
    };
    let ty = ty.trim();
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '*' | '?' | '`' | '+'))
    };
    if !ident(ty) || ty.contains('`') {
        return Err(format!(
            "task `{text}` has an invalid type name `{ty}` (generic and array types cannot be named): {usage}"
        ));
    }
    if !method
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '*' | '?'))
        || method.is_empty()
    {
        return Err(format!(
            "task `{text}` has an invalid method name `{method}`: {usage}"
        ));
    }
    // `[IO.File]` and `[System.IO.File]` are one type: match the full name PowerShell resolves.
    let ty = if ty.contains(['*', '?']) {
        ty.to_string()
    } else {
        crate::resolve::canonical_type_name(ty).unwrap_or_else(|| ty.to_string())
    };
    let glob = Glob::new(&format!("{ty}::{method}"))
        .map_err(|e| format!("invalid task pattern `{text}`: {e}"))?;
    Ok(TaskPattern {
        kind: TaskKind::Method,
        module: None,
        glob,
    })
}

/// A path as the gate compares it: `/` written as `\` (Windows accepts both).
pub(crate) fn normalize_path(path: &str) -> String {
    path.replace('/', "\\")
}

/// The text a pattern of `kind` is matched against for a task named `name`: the name itself,
/// or for a method `[Full.Type]::Method` without its brackets (`Full.Type::Method`), so that a
/// glob's `[` keeps its meaning as a character class.
pub(crate) fn match_name(kind: TaskKind, name: &str) -> std::borrow::Cow<'_, str> {
    match kind {
        TaskKind::Method => match name.strip_prefix('[').and_then(|r| r.split_once("]::")) {
            Some((ty, m)) => format!("{ty}::{m}").into(),
            None => name.into(),
        },
        TaskKind::Path => normalize_path(name).into(),
        TaskKind::Command | TaskKind::Program => name.into(),
    }
}

/// One validated rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique across all files: `[a-z0-9][a-z0-9-]*`.
    pub id: String,
    pub effect: Effect,
    /// The tasks as written (names, globs, `Module\Name`, `role:NAME`).
    pub tasks: Vec<String>,
    /// Tasks this rule does not cover, as written.
    pub except: Vec<String>,
    /// For approval rules; `Manual` for the others (where it means nothing).
    pub approval: ApprovalMode,
    /// Groups whose members may approve (never the requester). Empty only for `Auto` and for
    /// allow/deny rules.
    pub approvers: Vec<String>,
    /// Groups or roles whose members may request; empty means any user.
    pub requesters: Vec<String>,
    /// Longest grant an approver may give (at most 24 hours).
    pub max_duration: Option<Duration>,
    /// Distinct approvers needed (extension; default 1).
    pub min_approvals: u32,
    /// `offline`: how long after issue a gate that cannot reach the approval service may still
    /// honour a grant of this rule (approval rules only; none: never offline).
    pub offline: Option<Duration>,
    /// `when.any_param`: the rule applies only if one of these parameters is used.
    pub when_any_param: Option<Vec<String>>,
    /// `when.no_param`: the rule applies only if none of these parameters is used (an
    /// extension: standing access to a read cmdlet without the parameters through which it
    /// acts, `Test-Mailflow` without `-TargetEmailAddress`).
    pub when_no_param: Option<Vec<String>>,
    /// `params`: `only` and per-parameter value constraints.
    pub params: Option<ParamConstraints>,
    /// Free text shown to requesters and approvers.
    pub description: Option<String>,
    /// Where the rule's `id` stands: `file:line`.
    pub source: String,
    pub(crate) patterns: Vec<TaskPattern>,
    pub(crate) except_patterns: Vec<TaskPattern>,
}

impl Rule {
    /// Whether the rule's tasks (after role expansion) cover the task written as `task` (a
    /// command name, `path:…`, `program:…` or `[Type]::Method`) in `module` and no `except`
    /// entry does. Conditions (`when`, `params`) are not considered.
    pub fn covers_name(&self, task: &str, module: Option<&str>) -> bool {
        let (kind, name) = TaskKind::split(task);
        self.covers_task(kind, name, module)
    }

    /// Whether the rule covers the task of `kind` named `name` (as an invocation names it) in
    /// `module`, and no `except` entry does.
    pub fn covers_task(&self, kind: TaskKind, name: &str, module: Option<&str>) -> bool {
        let (name, module) = match kind {
            TaskKind::Command => split_module(name, module),
            _ => (name, None),
        };
        let text = lower(&match_name(kind, name));
        let lname = LowerName::new(&text);
        let lmodule = module.map(lower);
        let strict = self.effect == Effect::Allow;
        self.patterns
            .iter()
            .any(|p| p.kind == kind && p.covers(lname.chars(), lmodule.as_deref(), strict))
            && !self.excepted(kind, &lname, lmodule.as_deref())
    }

    /// Like [`Rule::covers_task`], but a module qualifier in a task must agree with the
    /// invocation's whatever the effect: what a grant under this rule covers (a token never
    /// widens to another module's command of the same name).
    pub fn covers_task_strictly(&self, kind: TaskKind, name: &str, module: Option<&str>) -> bool {
        let (name, module) = match kind {
            TaskKind::Command => split_module(name, module),
            _ => (name, None),
        };
        let text = match_name(kind, name);
        let lname: Vec<char> = text
            .chars()
            .map(crate::policy::pattern::lower_char)
            .collect();
        let lmodule = module.map(lower);
        self.patterns
            .iter()
            .any(|p| p.kind == kind && p.covers(&lname, lmodule.as_deref(), true))
            // An exception only narrows a grant, so it matches whatever the qualifier.
            && !self
                .except_patterns
                .iter()
                .any(|p| p.kind == kind && p.covers(&lname, lmodule.as_deref(), false))
    }

    /// Whether an `except` entry of `kind` covers the (lowercased) name. The module qualifier
    /// of an `except` entry is always honoured loosely: an exception can only narrow what an
    /// allow grants, and for restrictive rules ignoring it would narrow them, so both go the
    /// restrictive way.
    pub(crate) fn excepted(
        &self,
        kind: TaskKind,
        lname: &LowerName<'_>,
        lmodule: Option<&str>,
    ) -> bool {
        let strict = self.effect != Effect::Allow;
        self.except_patterns
            .iter()
            .any(|p| p.kind == kind && p.covers(lname.chars(), lmodule, strict))
    }
}

/// `text.rsplit_once('\\')`, searched byte by byte: `\` is ASCII, so it never occurs inside a
/// multi-byte character, and the names split per line are short (the generic character search
/// was 2% of a line's instructions).
pub(crate) fn rsplit_backslash(text: &str) -> Option<(&str, &str)> {
    let at = text.bytes().rposition(|b| b == b'\\')?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}

/// Splits a `Module\Name` left in the name (defensively: the resolver normally splits it).
pub(crate) fn split_module<'a>(
    name: &'a str,
    module: Option<&'a str>,
) -> (&'a str, Option<&'a str>) {
    match (module, rsplit_backslash(name)) {
        (None, Some((m, n))) if !m.is_empty() => (n, Some(m)),
        _ => (name, module),
    }
}

/// The policy decision for one invocation (before tokens are considered).
#[must_use]
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct RuleDecision<'a> {
    pub effect: Effect,
    /// The rule that decided, `None` for a default. For an approval, the most specific
    /// matching approval rule (parameter conditions, then an exact task name, then the
    /// smallest id): a token must be issued under this rule to cover the invocation. For a
    /// deny or allow, the smallest id among `rules` (a deny with a certain condition first).
    pub rule: Option<&'a str>,
    /// True when the decision was reached under uncertainty (dynamic name or parameters that
    /// a rule needed but could not be resolved).
    pub dynamic: bool,
    /// A human sentence explaining the decision.
    pub reason: String,
    /// Every rule with the deciding effect that matched (for audit), in the order described
    /// for `rule`, which is the first of them; borrowed from the policy set, since most
    /// callers never read them.
    pub rules: Vec<&'a str>,
}

/// A three-valued answer: whether a condition holds when part of the input is unknown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tri {
    Yes,
    No,
    Unknown,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests report failure by panicking")]
mod tests {
    use super::rsplit_backslash;

    #[test]
    fn rsplit_backslash_agrees_with_the_standard_split() {
        let cases = [
            "",
            "\\",
            "\\\\",
            "New-MoveRequest",
            "Exchange\\New-MoveRequest",
            "a\\b\\c",
            "\\Get-Mailbox",
            "Module\\",
            "C:\\tools\\x.exe",
            "ü\\ß",
            "日本\\語",
            "Ex\u{301}\\Get-Ñ",
            "𝔘\\𝔙\\",
        ];
        for text in cases {
            assert_eq!(rsplit_backslash(text), text.rsplit_once('\\'), "{text:?}");
        }
        // Every character around a backslash, multi-byte ones included.
        for c in ['a', 'é', '€', '𝄞', '\u{5c5c}', '\u{305c}'] {
            for text in [format!("{c}\\{c}"), format!("{c}{c}\\"), format!("\\{c}")] {
                assert_eq!(rsplit_backslash(&text), text.rsplit_once('\\'), "{text:?}");
            }
        }
    }
}
