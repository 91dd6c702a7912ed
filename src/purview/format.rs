//! Output of the Purview cmdlets the way PowerShell shows objects: a table by default, a list
//! with `Format-List`, only some properties with `Select-Object`, a subset with `Where-Object`,
//! and error records as PowerShell prints them. Pure.

use super::{scalar, Cmdlet, PurviewError};
use crate::syntax::ast::{
    CommandElement, Expr, ExprKind, MemberName, PipelineElement, PostfixKind, StatementKind,
};

/// One object: its properties in display order, and which of them a table shows by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub props: Vec<(String, String)>,
    pub table: Vec<&'static str>,
}

impl Object {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A step of the pipeline after the cmdlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// `Format-Table [-Property] a,b` (empty: the default columns).
    Table(Vec<String>),
    /// `Format-List [-Property] a,b` (empty: every property).
    List(Vec<String>),
    /// `Select-Object [-Property] a,b`.
    Select(Vec<String>),
    Where(Filter),
}

/// `Where-Object` with one comparison of a property to a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub property: String,
    pub op: FilterOp,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq { case: bool },
    Ne { case: bool },
    Like { case: bool },
    NotLike { case: bool },
}

impl FilterOp {
    fn parse(op: &str) -> Option<FilterOp> {
        let op = op.trim_start_matches('-').to_ascii_lowercase();
        let (case, base) = match op.strip_prefix('c') {
            Some(b) if matches!(b, "eq" | "ne" | "like" | "notlike") => (true, b.to_string()),
            _ => (false, op.strip_prefix('i').unwrap_or(&op).to_string()),
        };
        match base.as_str() {
            "eq" => Some(FilterOp::Eq { case }),
            "ne" => Some(FilterOp::Ne { case }),
            "like" => Some(FilterOp::Like { case }),
            "notlike" => Some(FilterOp::NotLike { case }),
            _ => None,
        }
    }
}

impl Filter {
    pub fn keeps(&self, object: &Object) -> bool {
        let have = object.get(&self.property).unwrap_or("");
        let fold = |s: &str, case: bool| {
            if case {
                s.to_string()
            } else {
                s.to_lowercase()
            }
        };
        match self.op {
            FilterOp::Eq { case } => fold(have, case) == fold(&self.value, case),
            FilterOp::Ne { case } => fold(have, case) != fold(&self.value, case),
            FilterOp::Like { case } => wildcard(&fold(&self.value, case), &fold(have, case)),
            FilterOp::NotLike { case } => !wildcard(&fold(&self.value, case), &fold(have, case)),
        }
    }
}

/// PowerShell's `*` and `?` wildcards (no character classes), iteratively.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == '*')
}

fn stage_error(cmdlet: Cmdlet, message: String) -> PurviewError {
    PurviewError::Stage {
        cmdlet: cmdlet.name(),
        message,
    }
}

/// Read one pipeline step after a Purview cmdlet (`name` is the resolver's canonical name).
pub(super) fn stage(
    cmdlet: Cmdlet,
    name: &str,
    elements: &[CommandElement],
) -> Result<Stage, PurviewError> {
    match name {
        "Format-Table" => properties(cmdlet, name, elements).map(Stage::Table),
        "Format-List" => properties(cmdlet, name, elements).map(Stage::List),
        "Select-Object" => properties(cmdlet, name, elements).map(Stage::Select),
        "Where-Object" => where_object(cmdlet, elements).map(Stage::Where),
        other => Err(PurviewError::Mixed {
            cmdlet: cmdlet.name(),
            why: format!(
                "`{}` would run in the runspace; pipe the output only to Format-Table, Format-List, Select-Object or Where-Object",
                crate::text::escape(other)
            ),
        }),
    }
}

/// `[-Property] a,b,c`: property names (wildcards allowed).
fn properties(
    cmdlet: Cmdlet,
    name: &str,
    elements: &[CommandElement],
) -> Result<Vec<String>, PurviewError> {
    let unsupported = || {
        stage_error(
            cmdlet,
            format!("`{name}` after `{}` takes only property names (`{name} Prop1,Prop2`), written out literally", cmdlet.name()),
        )
    };
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(e) = elements.get(i) {
        i += 1;
        let expr = match e {
            CommandElement::Parameter(p)
                if !p.name.is_empty() && "property".starts_with(&p.name.to_ascii_lowercase()) =>
            {
                match &p.value {
                    Some(v) => v,
                    None => match elements.get(i) {
                        Some(CommandElement::Argument(v)) => {
                            i += 1;
                            v
                        }
                        _ => return Err(unsupported()),
                    },
                }
            }
            CommandElement::Argument(v) if out.is_empty() => v,
            _ => return Err(unsupported()),
        };
        match &expr.kind {
            ExprKind::List(items) => {
                for item in items {
                    out.push(scalar(item).ok_or_else(unsupported)?);
                }
            }
            _ => out.push(scalar(expr).ok_or_else(unsupported)?),
        }
    }
    Ok(out)
}

/// `Where-Object { $_.Prop -eq 'v' }`, `-FilterScript {...}`, `Where-Object Prop -EQ v`,
/// `-Property Prop -EQ -Value v`.
fn where_object(cmdlet: Cmdlet, elements: &[CommandElement]) -> Result<Filter, PurviewError> {
    let unsupported = || {
        stage_error(
            cmdlet,
            format!(
                "`Where-Object` after `{}` takes one comparison of a property with a literal value: `Where-Object {{$_.RequestStatus -eq 'Approved'}}` or `Where-Object RequestStatus -EQ Approved` (-eq, -ne, -like, -notlike)",
                cmdlet.name()
            ),
        )
    };
    let mut property: Option<String> = None;
    let mut op: Option<FilterOp> = None;
    let mut value: Option<String> = None;
    let mut block: Option<&Expr> = None;
    let mut i = 0;
    while let Some(e) = elements.get(i) {
        i += 1;
        match e {
            CommandElement::Parameter(p) => {
                let lower = p.name.to_ascii_lowercase();
                let take_value = |i: &mut usize| -> Option<&Expr> {
                    match &p.value {
                        Some(v) => Some(v),
                        None => match elements.get(*i) {
                            Some(CommandElement::Argument(v)) => {
                                *i += 1;
                                Some(v)
                            }
                            _ => None,
                        },
                    }
                };
                if !lower.is_empty() && "filterscript".starts_with(&lower) {
                    block = Some(take_value(&mut i).ok_or_else(unsupported)?);
                } else if !lower.is_empty() && "property".starts_with(&lower) {
                    let v = take_value(&mut i).ok_or_else(unsupported)?;
                    property = Some(scalar(v).ok_or_else(unsupported)?);
                } else if lower == "value" {
                    let v = take_value(&mut i).ok_or_else(unsupported)?;
                    value = Some(scalar(v).ok_or_else(unsupported)?);
                } else if let Some(o) = FilterOp::parse(&lower) {
                    if op.is_some() || p.value.is_some() {
                        return Err(unsupported());
                    }
                    op = Some(o);
                } else {
                    return Err(unsupported());
                }
            }
            CommandElement::Argument(v) => {
                if matches!(v.kind, ExprKind::ScriptBlock(_)) && block.is_none() {
                    block = Some(v);
                } else if property.is_none() && op.is_none() {
                    property = Some(scalar(v).ok_or_else(unsupported)?);
                } else if value.is_none() && op.is_some() {
                    value = Some(scalar(v).ok_or_else(unsupported)?);
                } else {
                    return Err(unsupported());
                }
            }
        }
    }
    match (block, property, op, value) {
        (Some(b), None, None, None) => filter_block(b).ok_or_else(unsupported),
        (None, Some(property), Some(op), Some(value)) => Ok(Filter {
            property,
            op,
            value,
        }),
        _ => Err(unsupported()),
    }
}

/// `{ $_.Prop -op 'literal' }` (or `$PSItem`).
fn filter_block(expr: &Expr) -> Option<Filter> {
    let ExprKind::ScriptBlock(block) = &expr.kind else {
        return None;
    };
    let [statement] = block.statements.as_slice() else {
        return None;
    };
    let StatementKind::Chain(chain) = &statement.kind else {
        return None;
    };
    if !chain.rest.is_empty() {
        return None;
    }
    let [PipelineElement::Expression { expr, redirections }] = chain.first.elements.as_slice()
    else {
        return None;
    };
    if !redirections.is_empty() {
        return None;
    }
    let ExprKind::Binary { first, rest } = &expr.kind else {
        return None;
    };
    let [(op, rhs)] = rest.as_slice() else {
        return None;
    };
    let op = FilterOp::parse(op)?;
    let ExprKind::Postfix { base, ops } = &first.kind else {
        return None;
    };
    let ExprKind::Variable(var) = &base.kind else {
        return None;
    };
    if var.name != "_" && !var.name.eq_ignore_ascii_case("PSItem") {
        return None;
    }
    let [member] = ops.as_slice() else {
        return None;
    };
    let PostfixKind::Member {
        name: MemberName::Name(property),
        is_static: false,
        args: None,
    } = &member.kind
    else {
        return None;
    };
    Some(Filter {
        property: property.clone(),
        op,
        value: scalar(rhs)?,
    })
}

/// Apply the stages and render the objects; `\n` line ends.
pub fn render(objects: Vec<Object>, stages: &[Stage]) -> String {
    let mut objects = objects;
    let mut view: Option<(bool, Vec<String>)> = None;
    for stage in stages {
        match stage {
            Stage::Where(f) => objects.retain(|o| f.keeps(o)),
            Stage::Select(props) => {
                objects = objects.iter().map(|o| select(o, props)).collect();
            }
            Stage::Table(props) => view = Some((true, props.clone())),
            Stage::List(props) => view = Some((false, props.clone())),
        }
    }
    if objects.is_empty() {
        return String::new();
    }
    let (table, props) = view.unwrap_or_else(|| {
        // PowerShell's rule without a defined view: a table up to four properties, else a list.
        let first = objects.first();
        let defaults = first.map(|o| !o.table.is_empty()).unwrap_or(false);
        let count = first.map_or(0, |o| o.props.len());
        (defaults || count <= 4, Vec::new())
    });
    if table {
        render_table(&objects, &props)
    } else {
        render_list(&objects, &props)
    }
}

fn select(o: &Object, props: &[String]) -> Object {
    let mut out = Vec::new();
    for p in props {
        if p.contains(['*', '?']) {
            let lp = p.to_lowercase();
            for (n, v) in &o.props {
                if wildcard(&lp, &n.to_lowercase()) && !out.iter().any(|(m, _)| m == n) {
                    out.push((n.clone(), v.clone()));
                }
            }
        } else {
            let (name, value) = o
                .props
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(p))
                .map_or_else(
                    || (p.clone(), String::new()),
                    |(n, v)| (n.clone(), v.clone()),
                );
            out.push((name, value));
        }
    }
    Object {
        props: out,
        table: Vec::new(),
    }
}

/// Which properties a view shows: the named ones (wildcards allowed), else `default`.
fn columns(o: &Object, props: &[String], default: Vec<String>) -> Vec<String> {
    if props.is_empty() {
        return default;
    }
    select(o, props).props.into_iter().map(|(n, _)| n).collect()
}

fn render_table(objects: &[Object], props: &[String]) -> String {
    let Some(first) = objects.first() else {
        return String::new();
    };
    let default = if first.table.is_empty() {
        first.props.iter().map(|(n, _)| n.clone()).collect()
    } else {
        first.table.iter().map(|s| (*s).to_string()).collect()
    };
    let cols = columns(first, props, default);
    let cells: Vec<Vec<String>> = objects
        .iter()
        .map(|o| cols.iter().map(|c| cell(o.get(c).unwrap_or(""))).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |s| s.chars().count()))
                .chain(std::iter::once(c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let row = |values: &[String]| -> String {
        let mut line = String::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(v);
            if i + 1 < values.len() {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(v.chars().count());
                line.push_str(&" ".repeat(pad));
            }
        }
        line.trim_end().to_string()
    };
    let mut out = String::from("\n");
    out.push_str(&row(&cols));
    out.push('\n');
    let dashes: Vec<String> = cols.iter().map(|c| "-".repeat(c.chars().count())).collect();
    out.push_str(&row(&dashes));
    out.push('\n');
    for r in &cells {
        out.push_str(&row(r));
        out.push('\n');
    }
    out.push('\n');
    out
}

fn render_list(objects: &[Object], props: &[String]) -> String {
    let mut out = String::from("\n");
    for o in objects {
        let cols = columns(o, props, o.props.iter().map(|(n, _)| n.clone()).collect());
        let width = cols.iter().map(|c| c.chars().count()).max().unwrap_or(0);
        for c in &cols {
            let pad = width.saturating_sub(c.chars().count());
            out.push_str(&format!(
                "{c}{} : {}\n",
                " ".repeat(pad),
                cell(o.get(c).unwrap_or(""))
            ));
        }
        out.push('\n');
    }
    out
}

/// A value on one line, with anything that could steer the terminal made visible.
fn cell(v: &str) -> String {
    crate::text::escape(&v.replace(['\r', '\n'], " ")).into_owned()
}

/// An error record the way PowerShell prints one for a cmdlet.
pub(crate) fn error_record(
    cmdlet: &str,
    line: &str,
    message: &str,
    id: &str,
    category: &str,
) -> String {
    let esc = |t: &str| crate::text::escape(&t.replace(['\r', '\n'], " ")).into_owned();
    let shown = esc(line);
    format!(
        "{cmdlet} : {}\nAt line:1 char:1\n+ {shown}\n+ {}\n    + CategoryInfo          : {category}: (:) [{cmdlet}], JitshException\n    + FullyQualifiedErrorId : {},{cmdlet}\n\n",
        esc(message),
        "~".repeat(shown.chars().count().max(1)),
        esc(id),
    )
}
