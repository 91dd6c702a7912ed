//! Purview's own commands (`*-ElevatedAccess*`): recognised in a line and read into a plan the
//! gate carries out itself against the approval service. They never reach the runspace.
//!
//! Pure: the line is parsed with jitsh's parser and resolver; values must be written literally
//! (the gate does not evaluate expressions), and anything else about the line that is not a
//! plain `Cmdlet -Param value ... | Format-Table | Format-List | Select-Object | Where-Object`
//! pipeline is refused. A line that names one of these cmdlets is never sent to the runspace.

pub mod format;

use crate::catalog::{Catalog, Platform};
use crate::syntax::ast::{
    CommandElement, CommandName, Expr, ExprKind, PipelineElement, StatementKind, StringPart,
};

pub use format::{Filter, FilterOp, Stage};

/// The Purview cmdlets jitsh carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmdlet {
    NewRequest,
    GetRequest,
    ApproveRequest,
    DenyRequest,
    NewPolicy,
    GetPolicy,
    RemovePolicy,
    EnableControl,
    DisableControl,
}

/// Whether a parameter takes a value or is a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    Switch,
}

const ALL: [Cmdlet; 9] = [
    Cmdlet::NewRequest,
    Cmdlet::GetRequest,
    Cmdlet::ApproveRequest,
    Cmdlet::DenyRequest,
    Cmdlet::NewPolicy,
    Cmdlet::GetPolicy,
    Cmdlet::RemovePolicy,
    Cmdlet::EnableControl,
    Cmdlet::DisableControl,
];

/// Parameters every one of them accepts and ignores safely (PowerShell's common confirm
/// switches); anything else unknown is refused as PowerShell would.
const COMMON: [(&str, Kind); 2] = [("Confirm", Kind::Switch), ("WhatIf", Kind::Switch)];

impl Cmdlet {
    pub fn name(self) -> &'static str {
        match self {
            Cmdlet::NewRequest => "New-ElevatedAccessRequest",
            Cmdlet::GetRequest => "Get-ElevatedAccessRequest",
            Cmdlet::ApproveRequest => "Approve-ElevatedAccessRequest",
            Cmdlet::DenyRequest => "Deny-ElevatedAccessRequest",
            Cmdlet::NewPolicy => "New-ElevatedAccessApprovalPolicy",
            Cmdlet::GetPolicy => "Get-ElevatedAccessApprovalPolicy",
            Cmdlet::RemovePolicy => "Remove-ElevatedAccessApprovalPolicy",
            Cmdlet::EnableControl => "Enable-ElevatedAccessControl",
            Cmdlet::DisableControl => "Disable-ElevatedAccessControl",
        }
    }

    /// The cmdlet a command name (module qualifier removed) names, case-insensitively.
    pub fn from_name(name: &str) -> Option<Cmdlet> {
        let bare = name.rsplit('\\').next().unwrap_or(name);
        ALL.into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(bare))
    }

    fn params(self) -> &'static [(&'static str, Kind)] {
        use Kind::{Switch, Value};
        match self {
            Cmdlet::NewRequest => &[
                ("Task", Value),
                ("Reason", Value),
                ("DurationHours", Value),
                ("Ticket", Value),
            ],
            Cmdlet::GetRequest => &[("Identity", Value), ("RequestId", Value)],
            Cmdlet::ApproveRequest | Cmdlet::DenyRequest => {
                &[("RequestId", Value), ("Comment", Value)]
            }
            Cmdlet::NewPolicy => &[
                ("Task", Value),
                ("ApprovalType", Value),
                ("ApproverGroup", Value),
                ("Name", Value),
                ("Role", Value),
                ("RoleGroup", Value),
                ("MaxDurationHours", Value),
            ],
            Cmdlet::GetPolicy => &[("Identity", Value)],
            Cmdlet::RemovePolicy => &[("Identity", Value)],
            Cmdlet::EnableControl => &[("AdminGroup", Value), ("SystemAccounts", Value)],
            Cmdlet::DisableControl => &[("Force", Switch)],
        }
    }

    /// The parameter a first positional argument binds to.
    fn positional(self) -> Option<&'static str> {
        match self {
            Cmdlet::GetRequest | Cmdlet::GetPolicy | Cmdlet::RemovePolicy => Some("Identity"),
            Cmdlet::ApproveRequest | Cmdlet::DenyRequest => Some("RequestId"),
            _ => None,
        }
    }
}

/// A parameter value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Switch(bool),
    Text(String),
    List(Vec<String>),
}

impl Value {
    /// The value as one string (a list is joined with `,`).
    pub fn text(&self) -> String {
        match self {
            Value::Switch(b) => b.to_string(),
            Value::Text(t) => t.clone(),
            Value::List(v) => v.join(","),
        }
    }

    pub fn list(&self) -> Vec<String> {
        match self {
            Value::Switch(b) => vec![b.to_string()],
            Value::Text(t) => vec![t.clone()],
            Value::List(v) => v.clone(),
        }
    }
}

/// One recognised Purview line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurviewLine {
    pub cmdlet: Cmdlet,
    /// Canonical parameter names and values, in the order written.
    pub args: Vec<(String, Value)>,
    /// What the output is piped through.
    pub stages: Vec<Stage>,
    /// The line as written (for errors and the audit).
    pub text: String,
}

impl PurviewLine {
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn text_arg(&self, name: &str) -> Option<String> {
        self.arg(name).map(Value::text)
    }
}

/// Why a line that names a Purview cmdlet cannot be carried out. Every variant refuses the
/// whole line: nothing of it runs anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurviewError {
    #[error("`{cmdlet}` is carried out by the gate itself, not by the runspace, so it must stand alone on its line (optionally piped to Format-Table, Format-List, Select-Object or Where-Object): {why}")]
    Mixed { cmdlet: &'static str, why: String },
    #[error("A parameter cannot be found that matches parameter name '{name}'.")]
    UnknownParameter { cmdlet: &'static str, name: String },
    #[error("Parameter cannot be processed because the parameter name '{name}' is ambiguous.")]
    AmbiguousParameter { cmdlet: &'static str, name: String },
    #[error("Cannot bind parameter '{name}': the gate runs `{cmdlet}` itself and does not evaluate expressions, so write the value out literally (a quoted string, a number, or a list of them).")]
    NotLiteral { cmdlet: &'static str, name: String },
    #[error("Missing an argument for parameter '{name}'. Specify a parameter of type 'System.String' and try again.")]
    MissingArgument { cmdlet: &'static str, name: String },
    #[error("A positional parameter cannot be found that accepts argument '{arg}'.")]
    Positional { cmdlet: &'static str, arg: String },
    #[error("Cannot bind parameter '{name}' twice.")]
    Repeated { cmdlet: &'static str, name: String },
    #[error("{message}")]
    Stage {
        cmdlet: &'static str,
        message: String,
    },
}

impl PurviewError {
    /// The cmdlet the error is reported against.
    pub fn cmdlet(&self) -> &'static str {
        match self {
            PurviewError::Mixed { cmdlet, .. }
            | PurviewError::UnknownParameter { cmdlet, .. }
            | PurviewError::AmbiguousParameter { cmdlet, .. }
            | PurviewError::NotLiteral { cmdlet, .. }
            | PurviewError::MissingArgument { cmdlet, .. }
            | PurviewError::Positional { cmdlet, .. }
            | PurviewError::Repeated { cmdlet, .. }
            | PurviewError::Stage { cmdlet, .. } => cmdlet,
        }
    }

    /// PowerShell's error id and category for the error record.
    pub fn ids(&self) -> (&'static str, &'static str) {
        match self {
            PurviewError::Mixed { .. } => ("JitshGateOnlyCommand", "PermissionDenied"),
            PurviewError::UnknownParameter { .. } => ("NamedParameterNotFound", "InvalidArgument"),
            PurviewError::AmbiguousParameter { .. } => ("AmbiguousParameter", "InvalidArgument"),
            PurviewError::NotLiteral { .. } => ("JitshValueNotLiteral", "InvalidArgument"),
            PurviewError::MissingArgument { .. } => ("MissingArgument", "InvalidArgument"),
            PurviewError::Positional { .. } => ("PositionalParameterNotFound", "InvalidArgument"),
            PurviewError::Repeated { .. } => ("ParameterAlreadyBound", "InvalidArgument"),
            PurviewError::Stage { .. } => ("JitshPipelineNotSupported", "NotImplemented"),
        }
    }
}

/// `None` when the line names no Purview cmdlet (the gate decides it as usual, including a
/// line that does not parse); otherwise the plan, or why the line is refused as a whole.
pub fn recognise(
    line: &str,
    catalog: &Catalog,
    platform: Platform,
) -> Option<Result<PurviewLine, PurviewError>> {
    let analysis = crate::resolve::analyse_line_on(line, catalog, platform).ok()?;
    let named = analysis
        .invocations
        .iter()
        .find_map(|inv| Cmdlet::from_name(&inv.name))?;
    Some(plan(line, named, &analysis))
}

fn mixed(cmdlet: Cmdlet, why: impl Into<String>) -> PurviewError {
    PurviewError::Mixed {
        cmdlet: cmdlet.name(),
        why: why.into(),
    }
}

fn plan(
    line: &str,
    named: Cmdlet,
    analysis: &crate::resolve::Analysis,
) -> Result<PurviewLine, PurviewError> {
    let script = crate::syntax::parse(line).map_err(|e| mixed(named, e.to_string()))?;
    let [statement] = script.statements.as_slice() else {
        return Err(mixed(named, "the line holds more than one statement"));
    };
    let StatementKind::Chain(chain) = &statement.kind else {
        return Err(mixed(named, "the line is not a plain pipeline"));
    };
    if !chain.rest.is_empty() {
        return Err(mixed(named, "the line chains pipelines with `&&` or `||`"));
    }
    let elements = &chain.first.elements;
    // Every invocation the resolver found must be one of this pipeline's commands, at the top:
    // a command nested in a script block, subexpression or string would run somewhere else.
    if analysis.invocations.len() != elements.len()
        || analysis.invocations.iter().any(|i| i.depth != 0)
    {
        return Err(mixed(
            named,
            "it holds other commands, nested or not, that would run in the runspace",
        ));
    }
    let mut commands = Vec::with_capacity(elements.len());
    for element in elements {
        match element {
            PipelineElement::Command(c)
                if c.call_operator.is_none()
                    && c.redirections.is_empty()
                    && matches!(c.name, CommandName::Word(_)) =>
            {
                commands.push(c);
            }
            _ => {
                return Err(mixed(
                    named,
                    "only plain commands may stand in its pipeline (no call operator, expression or redirection)",
                ))
            }
        }
    }
    let (first, rest) = commands
        .split_first()
        .ok_or_else(|| mixed(named, "the line is empty"))?;
    let first_inv = analysis
        .invocations
        .first()
        .ok_or_else(|| mixed(named, "the line is empty"))?;
    let Some(cmdlet) = Cmdlet::from_name(&first_inv.name) else {
        return Err(mixed(
            named,
            format!("`{}` would run in the runspace", first_inv.name),
        ));
    };
    if first_inv.dynamic.is_some() && !matches!(first.name, CommandName::Word(_)) {
        return Err(mixed(cmdlet, "the command name is not written out"));
    }
    let args = bind(cmdlet, &first.elements)?;
    let mut stages = Vec::new();
    for (inv, command) in analysis.invocations.iter().skip(1).zip(rest) {
        if Cmdlet::from_name(&inv.name).is_some() {
            return Err(mixed(
                cmdlet,
                "only one of Purview's commands may stand on a line",
            ));
        }
        stages.push(format::stage(cmdlet, &inv.name, &command.elements)?);
    }
    Ok(PurviewLine {
        cmdlet,
        args,
        stages,
        text: line.to_string(),
    })
}

/// Bind the command's elements to the cmdlet's parameters, as PowerShell would (unique
/// case-insensitive prefixes, `-Name value`, `-Name:value`, one positional parameter).
fn bind(cmdlet: Cmdlet, elements: &[CommandElement]) -> Result<Vec<(String, Value)>, PurviewError> {
    let name = cmdlet.name();
    let mut out: Vec<(String, Value)> = Vec::new();
    let push = |out: &mut Vec<(String, Value)>, p: &str, v: Value| {
        if out.iter().any(|(n, _)| n == p) {
            return Err(PurviewError::Repeated {
                cmdlet: name,
                name: p.to_string(),
            });
        }
        out.push((p.to_string(), v));
        Ok(())
    };
    let mut i = 0;
    let mut positional_used = false;
    while let Some(element) = elements.get(i) {
        i += 1;
        match element {
            CommandElement::Parameter(token) => {
                let (param, kind) = param_named(cmdlet, &token.name)?;
                let value = match (kind, &token.value) {
                    (Kind::Switch, None) => Value::Switch(true),
                    (Kind::Switch, Some(expr)) => {
                        Value::Switch(switch_value(expr).ok_or_else(|| {
                            PurviewError::NotLiteral {
                                cmdlet: name,
                                name: param.to_string(),
                            }
                        })?)
                    }
                    (Kind::Value, Some(expr)) => literal(cmdlet, param, expr)?,
                    (Kind::Value, None) => match elements.get(i) {
                        Some(CommandElement::Argument(expr)) => {
                            i += 1;
                            literal(cmdlet, param, expr)?
                        }
                        _ => {
                            return Err(PurviewError::MissingArgument {
                                cmdlet: name,
                                name: param.to_string(),
                            })
                        }
                    },
                };
                // The confirm switches change nothing here: the gate never prompts.
                if COMMON.iter().any(|(n, _)| *n == param) {
                    continue;
                }
                push(&mut out, param, value)?;
            }
            CommandElement::Argument(expr) => {
                let target = cmdlet
                    .positional()
                    .filter(|_| !positional_used)
                    .ok_or_else(|| PurviewError::Positional {
                        cmdlet: name,
                        arg: crate::text::escape(&expr_text(expr)).into_owned(),
                    })?;
                positional_used = true;
                let value = literal(cmdlet, target, expr)?;
                push(&mut out, target, value)?;
            }
        }
    }
    Ok(out)
}

fn param_named(cmdlet: Cmdlet, written: &str) -> Result<(&'static str, Kind), PurviewError> {
    let all = cmdlet.params().iter().chain(COMMON.iter());
    let matches: Vec<(&'static str, Kind)> = all
        .clone()
        .filter(|(n, _)| {
            n.len() >= written.len()
                && n.get(..written.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(written))
        })
        .copied()
        .collect();
    if let Some(exact) = matches
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(written))
    {
        return Ok(*exact);
    }
    match matches.as_slice() {
        [one] if !written.is_empty() => Ok(*one),
        [] | [_] => Err(PurviewError::UnknownParameter {
            cmdlet: cmdlet.name(),
            name: crate::text::escape(written).into_owned(),
        }),
        _ => Err(PurviewError::AmbiguousParameter {
            cmdlet: cmdlet.name(),
            name: crate::text::escape(written).into_owned(),
        }),
    }
}

fn switch_value(expr: &Expr) -> Option<bool> {
    match &expr.kind {
        ExprKind::Variable(v) if v.name.eq_ignore_ascii_case("true") => Some(true),
        ExprKind::Variable(v) if v.name.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn literal(cmdlet: Cmdlet, param: &str, expr: &Expr) -> Result<Value, PurviewError> {
    let err = || PurviewError::NotLiteral {
        cmdlet: cmdlet.name(),
        name: param.to_string(),
    };
    match literal_list(expr, 0).ok_or_else(err)? {
        Literal::One(s) => Ok(Value::Text(s)),
        Literal::Many(v) => Ok(Value::List(v)),
    }
}

enum Literal {
    One(String),
    Many(Vec<String>),
}

/// A value written out literally: a string without expansions, a number, a bare word, a list
/// of them, or `@(...)` around such a list. Anything else is `None`.
fn literal_list(expr: &Expr, depth: usize) -> Option<Literal> {
    if depth > 4 {
        return None;
    }
    match &expr.kind {
        ExprKind::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(scalar(item)?);
            }
            Some(Literal::Many(out))
        }
        ExprKind::ArraySubexpression(statements) | ExprKind::Subexpression(statements) => {
            match statements.as_slice() {
                [] => Some(Literal::Many(Vec::new())),
                [s] => match &s.kind {
                    StatementKind::Chain(chain) if chain.rest.is_empty() => {
                        match chain.first.elements.as_slice() {
                            [PipelineElement::Expression { expr, redirections }]
                                if redirections.is_empty() =>
                            {
                                match literal_list(expr, depth + 1)? {
                                    Literal::One(s) => Some(Literal::Many(vec![s])),
                                    many => Some(many),
                                }
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        _ => scalar(expr).map(Literal::One),
    }
}

/// A single literal value: a string without expansions, a number, a bare word.
pub(crate) fn scalar(expr: &Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::String(lit) => {
            let mut out = String::new();
            for part in &lit.parts {
                match part {
                    StringPart::Text(t) => out.push_str(t),
                    _ => return None,
                }
            }
            Some(out)
        }
        ExprKind::Number(n) => Some(n.clone()),
        _ => None,
    }
}

fn expr_text(expr: &Expr) -> String {
    scalar(expr).unwrap_or_else(|| "(expression)".into())
}

#[cfg(test)]
mod tests;
