//! Parameter conditions: a rule's `when.any_param` and its `params` table (`only` plus
//! per-parameter value constraints), also carried by approval tokens as JSON.
//!
//! Semantics: `only` means only; common parameters (`-Confirm`, `-Verbose`, `-OutVariable`,
//! ...) count like any other. A value-constrained parameter must be given, with every value
//! matching: left out, PowerShell would prompt for it or bind it from the pipeline, and the
//! value would never be checked. `only` is a reserved key, so a parameter literally named
//! `only` cannot carry a value constraint.
//!
//! Evaluation is three-valued: a condition that needs a parameter the resolver could not pin
//! down (splatting, an unresolved abbreviation, a value computed at run time, a parameter that
//! may come from pipeline input) is `Unknown`, and the caller treats it restrictively.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::invocation::{Invocation, ParamValue};
use crate::policy::error::ConstraintError;
use crate::policy::model::Tri;
use crate::policy::pattern::{lower, Glob};

/// Upper bound on a compiled constraint regex, so a policy or token cannot make the gate build
/// an enormous automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `params.only` and per-parameter value constraints, in the same form as a rule's `params`
/// table: `{"only": ["Identity"], "Identity": {"glob": "*@contoso.com"}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamConstraints {
    only: Option<Vec<String>>,
    /// Sorted by lowercase name; names unique case-insensitively.
    values: Vec<(String, ValueConstraint)>,
}

/// A constraint on one parameter's value.
#[derive(Clone)]
pub enum ValueConstraint {
    /// Case-insensitive wildcard match of the whole value.
    Glob(Glob),
    /// Case-insensitive regex match of the whole value (the pattern is anchored).
    Regex { source: String, re: Regex },
    /// The value is one of these (case-insensitive).
    OneOf(Vec<String>),
}

/// The outcome of a condition, with the reason when it is not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    Yes,
    No,
    Unknown(String),
}

impl Cond {
    /// Conjunction: any `No` wins, then the first `Unknown`.
    pub(crate) fn and(self, other: Cond) -> Cond {
        match (self, other) {
            (Cond::No, _) | (_, Cond::No) => Cond::No,
            (Cond::Unknown(r), _) | (_, Cond::Unknown(r)) => Cond::Unknown(r),
            (Cond::Yes, Cond::Yes) => Cond::Yes,
        }
    }

    /// Negation: an unknown condition stays unknown.
    pub(crate) fn not(self) -> Cond {
        match self {
            Cond::Yes => Cond::No,
            Cond::No => Cond::Yes,
            Cond::Unknown(r) => Cond::Unknown(r),
        }
    }

    pub(crate) fn tri(&self) -> Tri {
        match self {
            Cond::Yes => Tri::Yes,
            Cond::No => Tri::No,
            Cond::Unknown(_) => Tri::Unknown,
        }
    }
}

/// Caches compiled regexes by source while loading, so many rules sharing a pattern compile
/// it once.
#[derive(Default, Debug)]
pub(crate) struct RegexCache(HashMap<String, Regex>);

impl ValueConstraint {
    pub fn glob(pattern: &str) -> Result<ValueConstraint, String> {
        Glob::new(pattern)
            .map(ValueConstraint::Glob)
            .map_err(|e| format!("invalid glob `{pattern}`: {e}"))
    }

    pub fn regex(pattern: &str) -> Result<ValueConstraint, String> {
        ValueConstraint::regex_cached(pattern, &mut RegexCache::default())
    }

    pub(crate) fn regex_cached(
        pattern: &str,
        cache: &mut RegexCache,
    ) -> Result<ValueConstraint, String> {
        if let Some(re) = cache.0.get(pattern) {
            return Ok(ValueConstraint::Regex {
                source: pattern.to_string(),
                re: re.clone(),
            });
        }
        let re = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .case_insensitive(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid regex `{pattern}`: {}", regex_message(&e)))?;
        cache.0.insert(pattern.to_string(), re.clone());
        Ok(ValueConstraint::Regex {
            source: pattern.to_string(),
            re,
        })
    }

    pub fn one_of(values: Vec<String>) -> Result<ValueConstraint, String> {
        if values.is_empty() {
            return Err("`one_of` is empty: no value could ever match".to_string());
        }
        Ok(ValueConstraint::OneOf(values))
    }

    /// Whether one static value satisfies the constraint.
    pub fn accepts(&self, value: &str) -> bool {
        match self {
            ValueConstraint::Glob(g) => g.matches(value),
            ValueConstraint::Regex { re, .. } => re.is_match(value),
            ValueConstraint::OneOf(vs) => {
                let v = lower(value);
                vs.iter().any(|c| lower(c) == v)
            }
        }
    }

    fn to_json(&self) -> Value {
        let (k, v) = match self {
            ValueConstraint::Glob(g) => ("glob", Value::from(g.as_str())),
            ValueConstraint::Regex { source, .. } => ("regex", Value::from(source.as_str())),
            ValueConstraint::OneOf(vs) => ("one_of", Value::from(vs.clone())),
        };
        let mut m = Map::new();
        m.insert(k.to_string(), v);
        Value::Object(m)
    }
}

impl PartialEq for ValueConstraint {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ValueConstraint::Glob(a), ValueConstraint::Glob(b)) => a == b,
            (
                ValueConstraint::Regex { source: a, .. },
                ValueConstraint::Regex { source: b, .. },
            ) => a == b,
            (ValueConstraint::OneOf(a), ValueConstraint::OneOf(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for ValueConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueConstraint::Glob(g) => write!(f, "glob {:?}", g.as_str()),
            ValueConstraint::Regex { source, .. } => write!(f, "regex {source:?}"),
            ValueConstraint::OneOf(vs) => write!(f, "one_of {vs:?}"),
        }
    }
}

/// The last line of a regex syntax error (`error: unclosed group`), without the
/// multi-line caret drawing the regex crate prints.
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A parameter name as Exchange and PowerShell write them.
pub(crate) fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ParamConstraints {
    /// Builds a constraint set; names must be valid and unique (case-insensitively).
    pub fn new(
        only: Option<Vec<String>>,
        values: Vec<(String, ValueConstraint)>,
    ) -> Result<ParamConstraints, String> {
        for n in only.iter().flatten().chain(values.iter().map(|(n, _)| n)) {
            if !valid_param_name(n) {
                return Err(format!(
                    "invalid parameter name `{n}`: write it without the dash, e.g. `Identity`"
                ));
            }
        }
        let mut values = values;
        values.sort_by_key(|(n, _)| lower(n));
        if let Some(w) = values
            .windows(2)
            .find(|w| matches!(w, [a, b] if lower(&a.0) == lower(&b.0)))
        {
            let name = w.first().map(|(n, _)| n.as_str()).unwrap_or_default();
            return Err(format!("parameter `{name}` is constrained twice"));
        }
        Ok(ParamConstraints { only, values })
    }

    /// `params.only`, if given.
    pub fn only(&self) -> Option<&[String]> {
        self.only.as_deref()
    }

    /// Per-parameter value constraints, sorted by name.
    pub fn values(&self) -> &[(String, ValueConstraint)] {
        &self.values
    }

    /// Whether `inv` satisfies every constraint; `Unknown` when that depends on something the
    /// resolver could not establish.
    pub fn check(&self, inv: &Invocation) -> Tri {
        self.eval(inv).tri()
    }

    pub(crate) fn eval(&self, inv: &Invocation) -> Cond {
        let mut cond = Cond::Yes;
        if let Some(only) = &self.only {
            cond = cond.and(eval_only(only, inv));
        }
        for (name, c) in &self.values {
            cond = cond.and(eval_value(name, c, inv));
        }
        cond
    }

    /// Parses the JSON form (as carried in a token's `params` claim).
    pub fn from_json(v: &Value) -> Result<ParamConstraints, ConstraintError> {
        let err = |m: String| ConstraintError { message: m };
        let obj = v
            .as_object()
            .ok_or_else(|| err("parameter constraints must be a JSON object".to_string()))?;
        let mut only = None;
        let mut values = Vec::new();
        for (k, v) in obj {
            if k == "only" {
                let list = string_list(v)
                    .ok_or_else(|| err("`only` must be a list of parameter names".to_string()))?;
                only = Some(list);
                continue;
            }
            let c = v.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                err(format!(
                    "constraint for `{k}` must have exactly one of `glob`, `regex` or `one_of`"
                ))
            })?;
            let c = match c.iter().next() {
                Some((kind, Value::String(s))) if kind == "glob" => ValueConstraint::glob(s),
                Some((kind, Value::String(s))) if kind == "regex" => ValueConstraint::regex(s),
                Some((kind, list)) if kind == "one_of" => match string_list(list) {
                    Some(l) => ValueConstraint::one_of(l),
                    None => Err(format!("`one_of` for `{k}` must be a list of strings")),
                },
                _ => Err(format!(
                    "constraint for `{k}` must be one of `glob`, `regex` (strings) or `one_of` (a list)"
                )),
            }
            .map_err(err)?;
            values.push((k.clone(), c));
        }
        ParamConstraints::new(only, values).map_err(err)
    }

    /// The JSON form, the same shape as a rule's `params` table.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(only) = &self.only {
            m.insert("only".to_string(), Value::from(only.clone()));
        }
        for (n, c) in &self.values {
            m.insert(n.clone(), c.to_json());
        }
        Value::Object(m)
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

impl Serialize for ParamConstraints {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ParamConstraints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        ParamConstraints::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// Why the parameter list of `inv` is not fully known, if it is not.
pub(crate) fn uncertainty(inv: &Invocation) -> Option<String> {
    if let Some(why) = &inv.params_uncertain {
        return Some(why.clone());
    }
    inv.params.iter().find(|p| !p.resolved).map(|p| {
        if p.as_written.is_empty() {
            "a positional argument could not be bound to a parameter".to_string()
        } else {
            format!("parameter `{}` could not be resolved", p.as_written)
        }
    })
}

/// `when.any_param`: one of `names` is used.
pub(crate) fn eval_any_param(names: &[String], inv: &Invocation) -> Cond {
    let used = inv
        .params
        .iter()
        .any(|p| p.resolved && names.iter().any(|n| n.eq_ignore_ascii_case(&p.name)));
    if used {
        return Cond::Yes;
    }
    if let Some(why) = uncertainty(inv) {
        return Cond::Unknown(format!(
            "whether {} is used is not known: {why}",
            name_list(names)
        ));
    }
    match names.iter().find(|n| from_pipeline(n, inv)) {
        Some(n) => Cond::Unknown(format!("parameter `{n}` may be bound from pipeline input")),
        None => Cond::No,
    }
}

/// Whether parameter `name` may be bound from the invocation's pipeline input.
fn from_pipeline(name: &str, inv: &Invocation) -> bool {
    inv.pipeline_params
        .iter()
        .any(|p| p == "*" || p.eq_ignore_ascii_case(name))
}

/// `params.only`: no parameter outside `only` is used.
fn eval_only(only: &[String], inv: &Invocation) -> Cond {
    let outside = inv
        .params
        .iter()
        .find(|p| p.resolved && !only.iter().any(|n| n.eq_ignore_ascii_case(&p.name)));
    if outside.is_some() {
        return Cond::No;
    }
    if let Some(why) = uncertainty(inv) {
        return Cond::Unknown(format!(
            "whether only {} are used is not known: {why}",
            name_list(only)
        ));
    }
    let piped = inv
        .pipeline_params
        .iter()
        .find(|p| *p == "*" || !only.iter().any(|n| n.eq_ignore_ascii_case(p)));
    match piped {
        Some(p) => Cond::Unknown(format!(
            "parameter `{p}`, outside {}, may be bound from pipeline input",
            name_list(only)
        )),
        None => Cond::Yes,
    }
}

/// `params.NAME = {...}`: the parameter is given and every value satisfies the constraint.
fn eval_value(name: &str, c: &ValueConstraint, inv: &Invocation) -> Cond {
    let mut bound = inv
        .params
        .iter()
        .filter(|p| p.resolved && p.name.eq_ignore_ascii_case(name))
        .peekable();
    if bound.peek().is_none() {
        if let Some(why) = uncertainty(inv) {
            return Cond::Unknown(format!("parameter `{name}` may be bound: {why}"));
        }
        if inv.pipeline_input {
            return Cond::Unknown(format!(
                "parameter `{name}` may be bound from pipeline input"
            ));
        }
        return Cond::No;
    }
    let mut cond = Cond::Yes;
    for p in bound {
        let one = match &p.value {
            ParamValue::Static(v) => yes_no(c.accepts(v)),
            ParamValue::List(vs) => yes_no(!vs.is_empty() && vs.iter().all(|v| c.accepts(v))),
            ParamValue::Switch => Cond::No,
            ParamValue::Dynamic => Cond::Unknown(format!(
                "the value of parameter `{name}` is computed at run time"
            )),
        };
        cond = cond.and(one);
    }
    cond
}

fn yes_no(b: bool) -> Cond {
    if b {
        Cond::Yes
    } else {
        Cond::No
    }
}

fn name_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`-{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests report failure by panicking")]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip() {
        let v = json!({"only": ["Identity", "DisplayName"], "Identity": {"glob": "*@contoso.com"},
                       "DisplayName": {"regex": "[a-z ]+"}, "Type": {"one_of": ["Regular"]}});
        let c = ParamConstraints::from_json(&v).unwrap();
        assert_eq!(c.to_json(), v);
        let back: ParamConstraints = serde_json::from_value(c.to_json()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn json_errors_are_refused() {
        for bad in [
            json!([]),
            json!({"only": "Identity"}),
            json!({"Identity": {"glob": "a", "regex": "b"}}),
            json!({"Identity": {"regex": "("}}),
            json!({"Identity": {"one_of": []}}),
            json!({"-Identity": {"glob": "a"}}),
            json!({"Identity": {"glob": "a"}, "identity": {"glob": "b"}}),
        ] {
            assert!(ParamConstraints::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regex_is_anchored_and_case_insensitive() {
        let c = ValueConstraint::regex("[a-z]+@contoso\\.com").unwrap();
        assert!(c.accepts("Bob@Contoso.com"));
        assert!(!c.accepts("bob@contoso.com.evil.net"));
        let m = ValueConstraint::regex("(").unwrap_err();
        assert!(!m.contains('\n'), "{m}");
        assert!(m.starts_with("invalid regex `(`: "), "{m}");
    }
}
