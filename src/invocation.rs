//! The resolved form of one command invocation: what the resolver produces and the policy
//! engine, the token scope check and the audit log consume.
//!
//! INVARIANT: anything the resolver could not establish with certainty is recorded here
//! (`dynamic`, `params_uncertain`, `ParamValue::Dynamic`, `Param::resolved == false`), never
//! guessed. Consumers treat uncertainty as restrictive.

use serde::Serialize;

use crate::span::Span;

/// One command invocation found in a line, after name and parameter resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invocation {
    /// Canonical command name: alias expanded, module qualifier and backticks removed, in the
    /// catalog's casing when the command is known. For a dynamic invocation, the text as written.
    pub name: String,
    /// Module qualifier as written (`Exchange\New-MoveRequest` gives `Exchange`).
    pub module: Option<String>,
    /// The command word exactly as it stands in the source.
    pub as_written: String,
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
}

/// One parameter as bound to an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    /// Canonical parameter name (catalog casing, no dash) when `resolved`; otherwise the name as
    /// written without its dash, or "" for a positional argument that could not be bound.
    pub name: String,
    /// The parameter token as written (`-Ident`, `-Identity:`), or "" for a positional argument.
    pub as_written: String,
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
    Static(String),
    /// Several static values (`-Tasks a,b,c`).
    List(Vec<String>),
    /// A value computed at run time (variable, subexpression, method call, ...).
    Dynamic,
}

impl Invocation {
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
        if self.dynamic.is_some() || self.params_uncertain.is_some() {
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
        let mut out = self.name.clone();
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
        }
    }

    fn param(name: &str, value: ParamValue) -> Param {
        Param {
            name: name.into(),
            as_written: format!("-{name}"),
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
