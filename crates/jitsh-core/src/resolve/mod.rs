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
    let mut report = match analyse_line_on(src, catalog, platform).map(|a| a.invocations) {
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
    };
    // Keys sorted at every level: the bytes `parse` has always written (serde_json's map keeps
    // insertion order).
    report.sort_all_objects();
    report
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

/// Checks that printing `src`'s syntax tree and parsing the print again gives a line that
/// parses and runs the same invocations: the same names (for statically known commands), depths,
/// dynamic markers, parameter names and statically known values. A line that does not parse
/// passes trivially. The printer promises a normal form that reads as the same
/// line; fuzzing and the corpus tests hold it to that.
pub fn round_trip(src: &str, catalog: &Catalog) -> Result<(), String> {
    let Ok(script) = syntax::parse(src) else {
        return Ok(());
    };
    let printed = syntax::print(&script);
    let again = syntax::parse(&printed)
        .map_err(|e| format!("the print does not parse ({e}):\n{printed}"))?;
    let before = invocations(&script, src, catalog);
    let after = invocations(&again, &printed, catalog);
    // Compared as collections: invocations that start at the same place (a call operator's name
    // expression and a variable inside it) may come out in either order, so both lists are
    // sorted, stably, by everything but their values.
    let sorted = |invs: &[Invocation]| {
        let mut keys: Vec<RoundTripKey> = invs.iter().map(round_trip_key).collect();
        keys.sort_by(|x, y| {
            (
                &x.0,
                x.1,
                x.2,
                x.3,
                x.4.iter().map(|p| &p.0).collect::<Vec<_>>(),
            )
                .cmp(&(
                    &y.0,
                    y.1,
                    y.2,
                    y.3,
                    y.4.iter().map(|p| &p.0).collect::<Vec<_>>(),
                ))
        });
        keys
    };
    let a = sorted(&before);
    let b = sorted(&after);
    if !same_keys(src, &a, &b) {
        return Err(format!(
            "the print runs other invocations:\n{a:?}\n---\n{b:?}\n--- printed:\n{printed}"
        ));
    }
    let reprinted = syntax::print(&again);
    if reprinted != printed {
        return Err(format!(
            "printing is not stable:\n{printed}\n--- printed again:\n{reprinted}"
        ));
    }
    Ok(())
}

/// What must survive a print: a dynamic invocation's name is its source text, which the printer
/// normalises, so only whether it is dynamic is kept.
type RoundTripKey = (
    Option<String>,
    usize,
    bool,
    bool,
    Vec<(String, Option<ParamValue>)>,
);

/// Keys are equal, except that a static value may differ where it is the text of a script block
/// in `src` passed to a string parameter (an OPATH `-Filter {...}`): the printer normalises code,
/// so such a value must only read as the same code (both parse, as a block, to the same print).
fn same_keys(src: &str, a: &[RoundTripKey], b: &[RoundTripKey]) -> bool {
    let same_value = |x: &Option<ParamValue>, y: &Option<ParamValue>| match (x, y) {
        (Some(ParamValue::Static(s)), Some(ParamValue::Static(t))) => {
            s == t
                || block_sources(src, s).any(|block| {
                    print_of(block).is_some_and(|p| Some(p) == print_of(&format!("{{ {t} }}")))
                })
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.0 == y.0
                && x.1 == y.1
                && x.2 == y.2
                && x.3 == y.3
                && x.4.len() == y.4.len()
                && x.4
                    .iter()
                    .zip(&y.4)
                    .all(|(p, q)| p.0 == q.0 && same_value(&p.1, &q.1))
        })
}

/// Every place where `text` stands in `src` as the whole (trimmed) body of a `{ }` block, as the
/// block's own source from `{` to `}`: the whitespace the value was trimmed from is kept, since
/// it matters (a comment ends at a newline, a trailing backtick escapes what follows it).
fn block_sources<'a>(src: &'a str, text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    src.match_indices(text)
        .filter(move |_| !text.is_empty())
        .filter_map(move |(i, _)| {
            let before = src.get(..i)?;
            let open = before.trim_end();
            let open = open.strip_suffix('{').map(str::len)?;
            let after = src.get(i + text.len()..)?;
            let close = i + text.len() + (after.len() - after.trim_start().len());
            after.trim_start().starts_with('}').then_some(())?;
            src.get(open..=close)
        })
}

/// The canonical print of `block`, if it parses.
fn print_of(block: &str) -> Option<String> {
    syntax::parse(block).ok().map(|s| syntax::print(&s))
}

fn round_trip_key(inv: &Invocation) -> RoundTripKey {
    (
        inv.dynamic.is_none().then(|| inv.name.to_string()),
        inv.depth,
        inv.dynamic.is_some(),
        inv.params_uncertain.is_some(),
        inv.params
            .iter()
            .map(|p| {
                let value = match &p.value {
                    ParamValue::Dynamic => None,
                    v => Some(v.clone()),
                };
                (p.name.to_string(), value)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
