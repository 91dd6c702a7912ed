//! Pipeline cmdlets: selecting, filtering, sorting, formatting and counting objects.

use super::{cols, number};
use crate::format::{render_list, render_table};
use crate::format::{Obj, View};
use crate::lang::Filter;
use crate::lang::{Bound, Value};
use crate::session::{Flow, Session, Stop};

// ---- pipeline cmdlets --------------------------------------------------------------------

fn objects(input: Flow, cmdlet: &str) -> Result<Vec<Obj>, String> {
    match input {
        Flow::Nothing => Ok(Vec::new()),
        Flow::Objects(objs) => Ok(objs),
        Flow::Text(_) => Err(format!(
            "{cmdlet} needs objects as input; formatted text cannot be piped to it."
        )),
    }
}

pub(super) fn select_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, Stop> {
    let mut objs = objects(input, "Select-Object")?;
    if let Some(first) = number(b, "First")? {
        objs.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    }
    if let Some(last) = number(b, "Last")? {
        let keep = usize::try_from(last).unwrap_or(usize::MAX);
        let drop = objs.len().saturating_sub(keep);
        objs.drain(..drop);
    }
    if let Some(expand) = b.str("ExpandProperty") {
        let mut lines = Vec::new();
        for o in &objs {
            let value = o
                .get(&expand)
                .ok_or_else(|| format!("Property \"{expand}\" cannot be found."))?;
            lines.extend(value.strings());
        }
        return Ok(Flow::Text(lines));
    }
    let props = b.list("Property");
    if props.is_empty() || props.iter().any(|p| p == "*") {
        return Ok(Flow::Objects(objs));
    }
    let view = if props.len() <= 4 {
        View::Table(props.clone())
    } else {
        View::List(props.clone())
    };
    let out = objs
        .iter()
        .map(|o| {
            let mut n = Obj::new("Selected", view.clone());
            for p in &props {
                let (name, value) = o
                    .props
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(p))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap_or_else(|| (p.clone(), Value::Null));
                n.props.push((name, value));
            }
            let (View::Table(c) | View::List(c)) = &mut n.view;
            *c = n.props.iter().map(|(k, _)| k.clone()).collect();
            n
        })
        .collect();
    Ok(Flow::Objects(out))
}

pub(super) fn where_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, Stop> {
    let filter = match b.get("FilterScript") {
        Some(Value::Block(text)) => Filter::parse(text)?,
        _ => {
            return Err(
                "Where-Object needs a script block, as in Where-Object { $_.Name -eq 'x' }.".into(),
            )
        }
    };
    let objs = objects(input, "Where-Object")?;
    let kept = objs
        .into_iter()
        .filter(|o| filter.matches(&|p| o.get(p).cloned()))
        .collect();
    Ok(Flow::Objects(kept))
}

pub(super) fn sort_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, Stop> {
    let mut objs = objects(input, "Sort-Object")?;
    let keys = b.list("Property");
    objs.sort_by(|x, y| {
        let key = |o: &Obj| -> Vec<String> {
            if keys.is_empty() {
                o.props
                    .first()
                    .map(|(_, v)| vec![v.display().to_lowercase()])
                    .unwrap_or_default()
            } else {
                keys.iter()
                    .map(|k| {
                        o.get(k)
                            .map(|v| v.display().to_lowercase())
                            .unwrap_or_default()
                    })
                    .collect()
            }
        };
        key(x).cmp(&key(y))
    });
    if b.flag("Descending") {
        objs.reverse();
    }
    Ok(Flow::Objects(objs))
}

pub(super) fn format_table(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, Stop> {
    let objs = objects(input, "Format-Table")?;
    let Some(first) = objs.first() else {
        return Ok(Flow::Nothing);
    };
    let mut columns = b.list("Property");
    if columns.is_empty() {
        columns = match &first.view {
            View::Table(c) => c.clone(),
            View::List(c) => c.clone(),
        };
    } else if columns.iter().any(|c| c == "*") {
        columns = first.names();
    }
    let mut text = render_table(&objs, &columns);
    if b.flag("HideTableHeaders") {
        text = text.lines().skip(3).map(|l| format!("{l}\n")).collect();
    }
    Ok(Flow::Text(
        text.trim_end_matches('\n')
            .split('\n')
            .map(str::to_owned)
            .chain([String::new()])
            .collect(),
    ))
}

pub(super) fn format_list(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, Stop> {
    let objs = objects(input, "Format-List")?;
    let mut columns = b.list("Property");
    if columns.is_empty() {
        columns = vec!["*".into()];
    }
    let text = render_list(&objs, &columns);
    Ok(Flow::Text(
        text.trim_end_matches('\n')
            .split('\n')
            .map(str::to_owned)
            .chain([String::new()])
            .collect(),
    ))
}

pub(super) fn measure_object(_: &mut Session, b: &Bound, input: Flow) -> Result<Flow, Stop> {
    let count = match &input {
        Flow::Text(lines) => lines.len(),
        _ => 0,
    };
    let objs = objects(input, "Measure-Object").unwrap_or_default();
    let count = count.max(objs.len());
    let property = b.str("Property");
    let numbers: Vec<f64> = match &property {
        Some(p) => objs
            .iter()
            .filter_map(|o| o.get(p))
            .filter_map(|v| v.display().parse::<f64>().ok())
            .collect(),
        None => Vec::new(),
    };
    let stat = |on: bool, f: &dyn Fn(&[f64]) -> f64| -> Value {
        if on && !numbers.is_empty() {
            Value::Str(f(&numbers).to_string())
        } else {
            Value::Null
        }
    };
    let obj = Obj::new(
        "GenericMeasureInfo",
        View::List(cols(&[
            "Count", "Average", "Sum", "Maximum", "Minimum", "Property",
        ])),
    )
    .with(
        "Count",
        Value::Int(i64::try_from(count).unwrap_or(i64::MAX)),
    )
    .with(
        "Average",
        stat(b.flag("Average"), &|n| {
            n.iter().sum::<f64>() / n.len() as f64
        }),
    )
    .with("Sum", stat(b.flag("Sum"), &|n| n.iter().sum()))
    .with(
        "Maximum",
        stat(b.flag("Maximum"), &|n| {
            n.iter().copied().fold(f64::MIN, f64::max)
        }),
    )
    .with(
        "Minimum",
        stat(b.flag("Minimum"), &|n| {
            n.iter().copied().fold(f64::MAX, f64::min)
        }),
    )
    .with("Property", property.map(Value::Str).unwrap_or(Value::Null));
    Ok(Flow::Objects(vec![obj]))
}
