//! The resolved form of one command invocation: what the resolver produces and the policy
//! engine, the token scope check and the audit log consume.
//!
//! INVARIANT: anything the resolver could not establish with certainty is recorded here
//! (`dynamic`, `params_uncertain`, `ParamValue::Dynamic`, `Param::resolved == false`), never
//! guessed. Consumers treat uncertainty as restrictive.

use serde::Serialize;
use smol_str::SmolStr;

use crate::span::Span;

/// One command invocation found in a line, after name and parameter resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invocation {
    /// Canonical command name: alias expanded, module qualifier and backticks removed, in the
    /// catalog's casing when the command is known. For a dynamic invocation, the text as written.
    pub name: SmolStr,
    /// Module qualifier as written (`Exchange\New-MoveRequest` gives `Exchange`).
    pub module: Option<SmolStr>,
    /// The command word exactly as it stands in the source.
    pub as_written: SmolStr,
    /// Where the command word stands in the source.
    pub span: Span,
    /// 0 for a top-level command; one more for each enclosing script block, subexpression,
    /// string expansion or grouping that contains it.
    pub depth: usize,
    /// Why this invocation cannot be analysed statically (`& $x`, `iex`, a .NET method call
    /// outside the safe list, ...). `None` when the name is known for certain.
    pub dynamic: Option<String>,
    /// Parameters bound to this invocation, in source order.
    pub params: Vec<Param>,
    /// Why the parameter list is not fully known (splatting a variable whose keys are unknown, an
    /// ambiguous abbreviation, ...). `None` when every parameter is known.
    pub params_uncertain: Option<String>,
    /// Whether this command receives pipeline input (it is not the first element of a pipeline).
    pub pipeline_input: bool,
    /// What kind of task `name` names: a command, a script or program run by path or by a
    /// file name, or a .NET method. Policies match each kind only with patterns of that kind.
    #[serde(skip_serializing_if = "TaskKind::is_command")]
    pub kind: TaskKind,
    /// For a command that receives pipeline input: the parameters the line does not give that
    /// the runspace may bind from each input object (by value or by property name), from the
    /// catalog; `["*"]` when the command has no metadata, so any parameter may be. Empty
    /// otherwise. A condition on such a parameter cannot be decided from the line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pipeline_params: Vec<SmolStr>,
}

/// The kinds of task a policy can name (SPEC §2.1). A pattern of one kind never matches a
/// task of another: `Get-*` does not cover `.\Get-Report.ps1`, `Get-Helper.exe` or a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A cmdlet, function or alias, looked up by name (`Get-Mailbox`, `Exchange\Get-Mailbox`).
    #[default]
    Command,
    /// A script or program run by its path (`.\Get-Report.ps1`, `C:\Tools\x.exe`,
    /// `\\server\share\x.ps1`); in policies `path:GLOB`. The name is the path with `/` written
    /// as `\`.
    Path,
    /// A script or program named by a file name with an extension and looked up on the
    /// runspace's `PATH` (`ping.exe`, `Get-Report.ps1`); in policies `program:GLOB`.
    Program,
    /// A .NET method: a static call (`[System.IO.File]::ReadAllBytes`) or a constructor run by
    /// `::new`, a cast or `-as` (`[System.IO.StreamWriter]::new`); type accelerators resolved.
    Method,
}

impl TaskKind {
    pub fn is_command(&self) -> bool {
        *self == TaskKind::Command
    }

    /// The kind of a task as written in a policy, a request or a grant, and its name without
    /// the kind's prefix: `path:…`, `program:…`, `[Type]::Method`, or a command name.
    pub fn split(task: &str) -> (TaskKind, &str) {
        if let Some(rest) = strip_prefix_ci(task, "path:") {
            (TaskKind::Path, rest)
        } else if let Some(rest) = strip_prefix_ci(task, "program:") {
            (TaskKind::Program, rest)
        } else if task.starts_with('[') && task.contains("]::") {
            (TaskKind::Method, task)
        } else {
            (TaskKind::Command, task)
        }
    }

    /// The task as a policy names it: `path:` and `program:` prefixed, the others as they are.
    pub fn display(self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    /// What a policy writes before a task of this kind (`path:`, `program:`, or nothing).
    pub fn prefix(self) -> &'static str {
        match self {
            TaskKind::Path => "path:",
            TaskKind::Program => "program:",
            TaskKind::Command | TaskKind::Method => "",
        }
    }

    /// Lowercase-insensitive names for messages (`command`, `path`, `program`, `method`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Command => "command",
            TaskKind::Path => "path",
            TaskKind::Program => "program",
            TaskKind::Method => "method",
        }
    }
}

pub(crate) fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// One parameter as bound to an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    /// Canonical parameter name (catalog casing, no dash) when `resolved`; otherwise the name as
    /// written without its dash, or "" for a positional argument that could not be bound.
    pub name: SmolStr,
    /// The parameter token as written (`-Ident`, `-Identity:`), or "" for a positional argument.
    pub as_written: SmolStr,
    pub value: ParamValue,
    /// True when the name is certain (exact, unique prefix, alias, or positional binding from
    /// metadata).
    pub resolved: bool,
}

/// A parameter's value as far as it is known without running anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ParamValue {
    /// A switch given without a value (`-Confirm`).
    Switch,
    /// A value known statically, as the runspace would see it (quotes removed, escapes applied).
    Static(SmolStr),
    /// Several static values (`-Tasks a,b,c`).
    List(Vec<SmolStr>),
    /// A value computed at run time (variable, subexpression, method call, ...).
    Dynamic,
}

impl Invocation {
    /// The task as a policy names it (see [`TaskKind::display`]).
    pub fn task(&self) -> String {
        self.kind.display(&self.name)
    }

    /// The parameter with canonical name `name` (case-insensitive), if bound.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params
            .iter()
            .find(|p| p.resolved && p.name.eq_ignore_ascii_case(name))
    }

    /// The canonical text of this invocation, used to bind an exact-command approval: the
    /// command name, then every parameter as ` -Name:'value'` sorted by name (values single-quoted
    /// with `'` doubled, lists joined by `,`, switches bare). `None` when anything about it is not
    /// known for certain, so such an invocation can never match an exact-command grant.
    pub fn canonical(&self) -> Option<String> {
        // A method's arguments are not kept as parameters, so its canonical form could not
        // tell `ReadAllBytes('C:\a')` from `ReadAllBytes('C:\secret')`.
        if self.dynamic.is_some()
            || self.params_uncertain.is_some()
            || self.kind == TaskKind::Method
        {
            return None;
        }
        let mut params: Vec<(String, String)> = Vec::with_capacity(self.params.len());
        for p in &self.params {
            if !p.resolved || p.name.is_empty() {
                return None;
            }
            let value = match &p.value {
                ParamValue::Switch => String::new(),
                ParamValue::Static(v) => format!(":{}", quote(v)),
                ParamValue::List(vs) => {
                    let items: Vec<String> = vs.iter().map(|v| quote(v)).collect();
                    format!(":{}", items.join(","))
                }
                ParamValue::Dynamic => return None,
            };
            params.push((p.name.to_ascii_lowercase(), format!(" -{}{value}", p.name)));
        }
        params.sort();
        let mut out = self.task();
        for (_, text) in params {
            out.push_str(&text);
        }
        Some(out)
    }
}

fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(params: Vec<Param>) -> Invocation {
        Invocation {
            name: "New-MoveRequest".into(),
            module: None,
            as_written: "nmr".into(),
            span: Span::default(),
            depth: 0,
            dynamic: None,
            params,
            params_uncertain: None,
            pipeline_input: false,
            kind: TaskKind::Command,
            pipeline_params: Vec::new(),
        }
    }

    fn param(name: &str, value: ParamValue) -> Param {
        Param {
            name: name.into(),
            as_written: format!("-{name}").into(),
            value,
            resolved: true,
        }
    }

    #[test]
    fn canonical_sorts_params_and_quotes_values() {
        let a = inv(vec![
            param("TargetDatabase", ParamValue::Static("DB 2".into())),
            param("Identity", ParamValue::Static("o'neil@contoso.com".into())),
            param("WhatIf", ParamValue::Switch),
        ]);
        assert_eq!(
            a.canonical().as_deref(),
            Some("New-MoveRequest -Identity:'o''neil@contoso.com' -TargetDatabase:'DB 2' -WhatIf")
        );
    }

    #[test]
    fn canonical_refuses_method_calls() {
        let mut m = inv(Vec::new());
        m.name = "[System.IO.File]::ReadAllBytes".into();
        m.kind = TaskKind::Method;
        assert_eq!(m.canonical(), None);
        let mut p = inv(Vec::new());
        p.name = r"C:\Scripts\x.ps1".into();
        p.kind = TaskKind::Path;
        assert_eq!(p.canonical().as_deref(), Some(r"path:C:\Scripts\x.ps1"));
    }

    #[test]
    fn canonical_refuses_anything_uncertain() {
        assert_eq!(
            inv(vec![param("Identity", ParamValue::Dynamic)]).canonical(),
            None
        );
        let mut unresolved = param("Ident", ParamValue::Static("x".into()));
        unresolved.resolved = false;
        assert_eq!(inv(vec![unresolved]).canonical(), None);
        let mut splatted = inv(vec![]);
        splatted.params_uncertain = Some("splatted variable".into());
        assert_eq!(splatted.canonical(), None);
    }
}
