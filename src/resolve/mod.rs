//! Resolution: syntax tree → the [`Invocation`]s a line would run, with names and parameters
//! resolved the way PowerShell resolves them (aliases, module qualifiers, case, backticks,
//! unique-prefix and `-Name:value` parameters, positional binding from metadata, splatting of a
//! literal hashtable), and everything that cannot be known statically marked as such.
//!
//! INVARIANTS: pure (the catalog is passed in); invocations come out in source order; nothing
//! uncertain is guessed (see `crate::invocation`); when unsure whether a script block is code, it
//! is treated as code.

mod safe;
mod types;
mod walk;

use serde_json::{json, Value};

use crate::catalog::{Catalog, Platform};
use crate::invocation::{Invocation, ParamValue};
use crate::span::Span;
use crate::syntax::{self, ast, ParseError, ParseErrorKind};

/// The full name PowerShell resolves a type name written in `[...]` to (`IO.File` is
/// `System.IO.File`), if the gate knows the type.
pub(crate) fn canonical_type_name(written: &str) -> Option<String> {
    types::lookup(written).map(|t| t.full)
}

/// Every command invocation in `script` (parsed from `src`), nested ones included, in source order.
pub fn invocations(script: &ast::Script, src: &str, catalog: &Catalog) -> Vec<Invocation> {
    walk::Walker::new(src, catalog).run(script).invocations
}

/// Parses and resolves one line.
pub fn analyse(src: &str, catalog: &Catalog) -> Result<Vec<Invocation>, ParseError> {
    Ok(analyse_line(src, catalog)?.invocations)
}

/// A resolved line: its invocations, and where it stores code to run later.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Every command invocation, nested ones included, in source order.
    pub invocations: Vec<Invocation>,
    /// Code the line keeps for later instead of (or besides) running it now: function and
    /// filter definitions, and script blocks assigned to a variable (`$sb = { … }`). An
    /// invocation inside runs whenever it is called, in this or a later line, so an approval
    /// for this line's moment cannot cover it.
    pub deferred: Vec<Span>,
}

/// Parses and resolves one line, keeping where it stores code for later. Names whose meaning
/// depends on the platform are uncertain (see [`analyse_line_on`]).
pub fn analyse_line(src: &str, catalog: &Catalog) -> Result<Analysis, ParseError> {
    analyse_line_on(src, catalog, Platform::Unknown)
}

/// Parses and resolves one line as the runspace on `platform` would: `sort` is `Sort-Object`
/// on Windows, the native program `sort` on Linux and macOS, and uncertain when unknown.
pub fn analyse_line_on(
    src: &str,
    catalog: &Catalog,
    platform: Platform,
) -> Result<Analysis, ParseError> {
    let script = syntax::parse(src)?;
    Ok(walk::Walker::new(src, catalog).on(platform).run(&script))
}

/// The `jitsh parse` output object for one line (SPEC §3): `text`, `error` (`null` or
/// `{message, offset, kind}`) and `invocations` (`name`, `params`, `depth`, plus `as_written`,
/// `module`, `dynamic`, `params_uncertain` when they carry information).
pub fn parse_report(src: &str, catalog: &Catalog) -> Value {
    parse_report_on(src, catalog, Platform::Unknown)
}

/// [`parse_report`] with names resolved as on `platform`.
pub fn parse_report_on(src: &str, catalog: &Catalog, platform: Platform) -> Value {
    match analyse_line_on(src, catalog, platform).map(|a| a.invocations) {
        Ok(invs) => json!({
            "text": src,
            "error": null,
            "invocations": invs.iter().map(invocation_json).collect::<Vec<_>>(),
        }),
        Err(e) => json!({
            "text": src,
            "error": {
                "message": e.message,
                "offset": e.offset,
                "kind": match e.kind {
                    ParseErrorKind::Incomplete => "incomplete",
                    ParseErrorKind::Invalid => "invalid",
                    ParseErrorKind::DepthLimit => "depth_limit",
                },
            },
            "invocations": [],
        }),
    }
}

fn invocation_json(inv: &Invocation) -> Value {
    let params: Vec<String> = inv
        .params
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| format!("-{}", p.name))
        .collect();
    let mut obj = json!({ "name": inv.name, "params": params, "depth": inv.depth });
    if let Some(map) = obj.as_object_mut() {
        if inv.as_written != inv.name {
            map.insert("as_written".into(), json!(inv.as_written));
        }
        if let Some(m) = &inv.module {
            map.insert("module".into(), json!(m));
        }
        if let Some(d) = &inv.dynamic {
            map.insert("dynamic".into(), json!(d));
        }
        if !inv.kind.is_command() {
            map.insert("kind".into(), json!(inv.kind.as_str()));
            map.insert("task".into(), json!(inv.task()));
        }
        if let Some(u) = &inv.params_uncertain {
            map.insert("params_uncertain".into(), json!(u));
        }
        let values: Vec<Value> = inv
            .params
            .iter()
            .filter(|p| !p.name.is_empty())
            .map(|p| match &p.value {
                ParamValue::Switch => json!(true),
                ParamValue::Static(s) => json!(s),
                ParamValue::List(l) => json!(l),
                ParamValue::Dynamic => Value::Null,
            })
            .collect();
        if inv
            .params
            .iter()
            .any(|p| !matches!(p.value, ParamValue::Switch))
        {
            map.insert("values".into(), json!(values));
        }
    }
    obj
}

#[cfg(test)]
mod tests;
