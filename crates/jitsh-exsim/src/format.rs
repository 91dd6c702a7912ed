//! Pipeline objects and how PowerShell prints them: tables (header, dashes, aligned columns)
//! and lists (`Name : value`).

use super::lang::Value;

/// A record flowing through a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Obj {
    pub type_name: &'static str,
    pub props: Vec<(String, Value)>,
    /// How it prints when nothing formats it explicitly.
    pub view: View,
}

#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Table(Vec<String>),
    List(Vec<String>),
}

impl Obj {
    pub fn new(type_name: &'static str, view: View) -> Self {
        Self {
            type_name,
            props: Vec::new(),
            view,
        }
    }

    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.props.push((name.to_owned(), value));
        self
    }

    /// Property lookup, case-insensitive like PowerShell.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn names(&self) -> Vec<String> {
        self.props.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// Widest a non-final table column gets before values are cut with `...`.
const MAX_COLUMN: usize = 40;

/// Print objects with their own view; consecutive objects of one type share a table.
pub fn render_default(objs: &[Obj]) -> String {
    let mut out = String::new();
    let mut start = 0;
    while start < objs.len() {
        let first = objs.get(start).map(|o| o.type_name);
        let len = objs
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|o| Some(o.type_name) == first)
            .count();
        let group = objs.get(start..start + len).unwrap_or_default();
        if let Some(lead) = group.first() {
            out += &match &lead.view {
                View::Table(cols) => render_table(group, cols),
                View::List(cols) => render_list(group, cols),
            };
        }
        start += len.max(1);
    }
    out
}

/// `Format-Table`.
pub fn render_table(objs: &[Obj], cols: &[String]) -> String {
    if objs.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = objs
        .iter()
        .map(|o| {
            cols.iter()
                .map(|c| o.get(c).map(Value::display).unwrap_or_default())
                .collect()
        })
        .collect();
    let last = cols.len().saturating_sub(1);
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0);
            let w = widest.max(c.chars().count());
            if i == last {
                w
            } else {
                w.min(MAX_COLUMN)
            }
        })
        .collect();
    let row = |values: Vec<String>| -> String {
        let parts: Vec<String> = values
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (v, w))| {
                if i == last {
                    v.clone()
                } else {
                    format!("{:<w$}", fit(v, *w))
                }
            })
            .collect();
        parts.join(" ").trim_end().to_owned() + "\n"
    };
    let mut out = String::from("\n");
    out += &row(cols.to_vec());
    out += &row(cols.iter().map(|c| "-".repeat(c.chars().count())).collect());
    for r in cells {
        out += &row(r);
    }
    out + "\n"
}

fn fit(value: &str, width: usize) -> String {
    if value.chars().count() <= width {
        value.to_owned()
    } else {
        let kept: String = value.chars().take(width.saturating_sub(3)).collect();
        kept + "..."
    }
}

/// `Format-List`.
pub fn render_list(objs: &[Obj], cols: &[String]) -> String {
    let mut out = String::from("\n");
    for o in objs {
        let names = if cols.iter().any(|c| c == "*") {
            o.names()
        } else {
            cols.to_vec()
        };
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        for n in &names {
            let value = o.get(n).map(Value::display).unwrap_or_default();
            out += format!("{n:<width$} : {value}").trim_end();
            out += "\n";
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn mailbox(name: &str, alias: &str) -> Obj {
        Obj::new(
            "Mailbox",
            View::Table(vec!["Name".into(), "Alias".into(), "Database".into()]),
        )
        .with("Name", Value::Str(name.into()))
        .with("Alias", Value::Str(alias.into()))
        .with("Database", Value::Str("DB01".into()))
    }

    #[test]
    fn tables_align_columns_under_dashed_headers() {
        let text = render_default(&[
            mailbox("Administrator", "Administrator"),
            mailbox("Bob Smith", "bob"),
        ]);
        assert_eq!(
            text,
            "\nName          Alias         Database\n----          -----         --------\n\
             Administrator Administrator DB01\nBob Smith     bob           DB01\n\n"
        );
    }

    #[test]
    fn lists_pad_labels() {
        let text = render_list(
            &[mailbox("Bob", "bob")],
            &["Name".into(), "Database".into()],
        );
        assert_eq!(text, "\nName     : Bob\nDatabase : DB01\n\n");
    }

    #[test]
    fn long_cells_are_cut() {
        let long = "x".repeat(60);
        let text = render_table(&[mailbox(&long, "a")], &["Name".into(), "Alias".into()]);
        assert!(text.contains(&format!("{}... a", "x".repeat(37))), "{text}");
    }
}
