//! Agreement between jitsh's parser and tree-sitter's PowerShell grammar (crates.io
//! `tree-sitter-powershell`) on the top-level commands of each Exchange example.
//!
//! Top-level commands are the commands of the pipelines a line runs directly: statements,
//! assignment right-hand sides, `&&`/`||` chains and `return`/`throw`/`exit` operands, but not
//! commands inside braces (script blocks, loop and branch bodies, functions), parentheses,
//! subexpressions or strings. Each is named by its command word: backtick escapes removed,
//! compared without regard to case; a command called through `&`/`.` on anything but a plain
//! word or a constant string is named `<dynamic>`.
//!
//! An example agrees when both readers accept it and name the same commands in the same order,
//! or when both reject it (jitsh: a parse error; tree-sitter: an ERROR or MISSING node).
//!
//! A second figure compares every command, nested ones included, in source order.
//!
//! Usage: `tools/ts-agreement/run.sh [exchange-examples.jsonl]` (see README.md there).

use std::process::ExitCode;

use jitsh::syntax::ast::{
    CommandName, ExprKind, PipelineElement, Script, Statement, StatementKind,
};
use tree_sitter::{Node, Parser};

/// Node kinds a top-level command may sit under in tree-sitter's tree.
const TRANSPARENT: &[&str] = &[
    "program",
    "statement_list",
    "pipeline",
    "pipeline_chain",
    "pipeline_chain_tail",
    "assignment_expression",
    "flow_control_statement",
    "empty_statement",
];

fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        for p in [
            "../shared/corpus/exchange-examples.jsonl",
            "../../../shared/corpus/exchange-examples.jsonl",
            "/work/shared/corpus/exchange-examples.jsonl",
        ] {
            if std::path::Path::new(p).is_file() {
                return p.to_string();
            }
        }
        String::new()
    });
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ts-agreement: cannot read the examples file `{path}`: {e}; pass its path");
            return ExitCode::from(2);
        }
    };
    let mut parser = Parser::new();
    if let Err(e) = parser.set_language(&tree_sitter_powershell::LANGUAGE.into()) {
        eprintln!("ts-agreement: tree-sitter-powershell does not load: {e}");
        return ExitCode::from(2);
    }
    let mut total = 0usize;
    let mut agree = 0usize;
    let mut agree_all = 0usize;
    let mut disagreements = Vec::new();
    let mut disagreements_all = Vec::new();
    let (mut top_count, mut all_count) = (0usize, 0usize);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(id), Some(src)) = (v["id"].as_str(), v["text"].as_str()) else {
            continue;
        };
        total += 1;
        let ours = jitsh_commands(src);
        let theirs = tree_sitter_commands(&mut parser, src);
        let same = match (&ours, &theirs) {
            (Err(_), Err(_)) => true,
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let ours_all = jitsh_all_commands(src);
        let theirs_all = tree_sitter_all_commands(&mut parser, src);
        let same_all = match (&ours_all, &theirs_all) {
            (Err(_), Err(_)) => true,
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if let (Ok(a), Ok(b)) = (&ours, &ours_all) {
            top_count += a.len();
            all_count += b.len();
        }
        if same_all {
            agree_all += 1;
        } else if same {
            disagreements_all.push(format!(
                "{id}\n  jitsh:       {}\n  tree-sitter: {}",
                show(&ours_all),
                show(&theirs_all)
            ));
        }
        if same {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{id}\n  jitsh:       {}\n  tree-sitter: {}",
                show(&ours),
                show(&theirs)
            ));
        }
    }
    println!("== top-level commands differ");
    for d in &disagreements {
        println!("{d}");
    }
    println!("== top-level commands agree, nested commands differ");
    for d in &disagreements_all {
        println!("{d}");
    }
    if total == 0 {
        eprintln!("ts-agreement: no examples in `{path}`");
        return ExitCode::from(2);
    }
    println!(
        "agreement: {agree}/{total} examples ({:.2}%), {} disagreements",
        agree as f64 * 100.0 / total as f64,
        disagreements.len()
    );
    println!(
        "agreement on all commands (nested included): {agree_all}/{total} examples ({:.2}%)",
        agree_all as f64 * 100.0 / total as f64
    );
    println!("jitsh reads {top_count} top-level and {all_count} commands in all");
    ExitCode::SUCCESS
}

/// Every command jitsh reads in `src`, nested ones included, in source order. The tree is
/// walked through its serialised form, so every kind of node is entered.
fn jitsh_all_commands(src: &str) -> Result<Vec<String>, String> {
    let script = jitsh::syntax::parse(src).map_err(|e| e.to_string())?;
    let value = serde_json::to_value(&script).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    json_commands(&value, &mut found);
    found.sort_by_key(|(at, _)| *at);
    Ok(found.into_iter().map(|(_, n)| n).collect())
}

fn json_commands(v: &serde_json::Value, out: &mut Vec<(u64, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            if map.contains_key("call_operator") && map.contains_key("elements") {
                let at = map["span"]["start"].as_u64().unwrap_or(0);
                let name = &map["name"];
                let text = if let Some(w) = name.get("Word") {
                    normalise(w["text"].as_str().unwrap_or_default())
                } else {
                    let e = &name["Expr"];
                    match e["kind"].get("String") {
                        Some(s)
                            if s["parts"].as_array().is_some_and(|p| {
                                p.iter().all(|part| part.get("Text").is_some())
                            }) =>
                        {
                            let parts = s["parts"].as_array().cloned().unwrap_or_default();
                            normalise(
                                &parts
                                    .iter()
                                    .filter_map(|p| p["Text"].as_str())
                                    .collect::<String>(),
                            )
                        }
                        _ => "<dynamic>".into(),
                    }
                };
                out.push((at, text));
            }
            for child in map.values() {
                json_commands(child, out);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                json_commands(child, out);
            }
        }
        _ => {}
    }
}

/// Every command tree-sitter reads in `src`, nested ones included, in source order.
fn tree_sitter_all_commands(parser: &mut Parser, src: &str) -> Result<Vec<String>, String> {
    let tree = parser
        .parse(src, None)
        .ok_or_else(|| "no tree".to_string())?;
    let root = tree.root_node();
    if root.has_error() {
        let at = first_error(root).map(|n| n.start_byte()).unwrap_or(0);
        return Err(format!("syntax error at byte {at}"));
    }
    let mut out = Vec::new();
    all(root, src, &mut out);
    Ok(out)
}

fn all(node: Node<'_>, src: &str, out: &mut Vec<String>) {
    if node.kind() == "command" {
        out.push(command_name(node, src));
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        all(child, src, out);
    }
}

fn show(r: &Result<Vec<String>, String>) -> String {
    match r {
        Ok(names) => format!("{names:?}"),
        Err(e) => format!("rejects: {e}"),
    }
}

fn normalise(name: &str) -> String {
    name.replace('`', "").to_lowercase()
}

/// jitsh's top-level commands, or its parse error.
fn jitsh_commands(src: &str) -> Result<Vec<String>, String> {
    let script: Script = jitsh::syntax::parse(src).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for st in &script.statements {
        statement(st, &mut out);
    }
    Ok(out)
}

fn statement(st: &Statement, out: &mut Vec<String>) {
    match &st.kind {
        StatementKind::Chain(c) => {
            for p in std::iter::once(&c.first).chain(c.rest.iter().map(|(_, p)| p)) {
                for el in &p.elements {
                    if let PipelineElement::Command(cmd) = el {
                        out.push(match &cmd.name {
                            CommandName::Word(w) => normalise(&w.text),
                            CommandName::Expr(e) => match &e.kind {
                                ExprKind::String(s) => s
                                    .static_value()
                                    .map(|v| normalise(&v))
                                    .unwrap_or_else(|| "<dynamic>".into()),
                                _ => "<dynamic>".into(),
                            },
                        });
                    }
                }
            }
        }
        StatementKind::Assignment { value, .. } => statement(value, out),
        StatementKind::Flow { value: Some(v), .. } => statement(v, out),
        _ => {}
    }
}

/// tree-sitter's top-level commands, or where its tree has an error.
fn tree_sitter_commands(parser: &mut Parser, src: &str) -> Result<Vec<String>, String> {
    let tree = parser
        .parse(src, None)
        .ok_or_else(|| "no tree".to_string())?;
    let root = tree.root_node();
    if root.has_error() {
        let at = first_error(root).map(|n| n.start_byte()).unwrap_or(0);
        return Err(format!("syntax error at byte {at}"));
    }
    let mut out = Vec::new();
    collect(root, src, &mut out);
    Ok(out)
}

fn first_error(node: Node<'_>) -> Option<Node<'_>> {
    if node.is_error() || node.is_missing() {
        return Some(node);
    }
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
    children.into_iter().find_map(first_error)
}

/// Walks only through transparent nodes, so every command found is a top-level one.
fn collect(node: Node<'_>, src: &str, out: &mut Vec<String>) {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.kind() == "command" {
            out.push(command_name(child, src));
        } else if TRANSPARENT.contains(&child.kind()) {
            collect(child, src, out);
        }
    }
}

fn command_name(cmd: Node<'_>, src: &str) -> String {
    let Some(name) = cmd.child_by_field_name("command_name") else {
        return "<none>".into();
    };
    let text = name.utf8_text(src.as_bytes()).unwrap_or_default();
    match name.kind() {
        "command_name" | "path_command_name" => normalise(text),
        "command_name_expr" => {
            let inner = name.named_child(0);
            match inner.map(|n| n.kind()) {
                Some("command_name") | Some("path_command_name") => normalise(text),
                Some("string_literal") if text.starts_with('\'') => {
                    normalise(text.trim_matches('\'').replace("''", "'").as_str())
                }
                Some("string_literal") if !text.contains(['$', '`']) => {
                    normalise(text.trim_matches('"'))
                }
                _ => "<dynamic>".into(),
            }
        }
        _ => "<dynamic>".into(),
    }
}
