//! Errors of the policy module: load errors with `file:line:col`, and constraint errors for
//! the JSON form carried by tokens.

use std::fmt;

use crate::policy::PolicySource;

/// One problem found while loading policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file as named by its [`PolicySource`](crate::policy::PolicySource).
    pub file: String,
    /// 1-based; 0 when the error concerns the file or folder as a whole.
    pub line: usize,
    /// 1-based, in characters; 0 when `line` is 0.
    pub col: usize,
    /// Lowercase, no trailing period, user input in backticks.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

/// Every problem found in a load; a load with any error yields no policy set.
///
/// INVARIANT: never empty (the only constructor, [`LoadErrors::new`], refuses an empty list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadErrors(Vec<LoadError>);

impl LoadErrors {
    /// `None` when `errors` is empty.
    pub fn new(errors: Vec<LoadError>) -> Option<LoadErrors> {
        if errors.is_empty() {
            None
        } else {
            Some(LoadErrors(errors))
        }
    }

    /// A single error.
    pub fn one(error: LoadError) -> LoadErrors {
        LoadErrors(vec![error])
    }

    pub fn errors(&self) -> &[LoadError] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<LoadError> {
        self.0
    }

    /// For people at a terminal: each error, then its source line with a caret under the
    /// column (when the file is among `sources`).
    pub fn render(&self, sources: &[PolicySource]) -> String {
        let mut out = String::new();
        for e in &self.0 {
            out.push_str(&e.to_string());
            out.push('\n');
            let line = sources
                .iter()
                .find(|s| s.name == e.file)
                .and_then(|s| s.text.lines().nth(e.line.checked_sub(1)?));
            if let Some(line) = line {
                let pad: String = line
                    .chars()
                    .take(e.col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&format!("  | {line}\n  | {pad}^\n"));
            }
        }
        out
    }
}

/// One `file:line:col: message` per line.
impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// Parameter constraints in JSON form that are not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConstraintError {
    pub message: String,
}
