//! Policy text → validated [`PolicySet`]: TOML parsed with spans, every problem in every file
//! collected with its `file:line:col`, and no policy set at all if there is any.
//!
//! Two passes: first every file is parsed and its `[defaults]` and `[roles]` gathered (roles
//! may be used from any file), then every rule is validated and compiled.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::catalog::Platform;
use crate::policy::error::{LoadError, LoadErrors};
use crate::policy::model::{ApprovalMode, Defaults, Effect, Rule, TaskPattern};
use crate::policy::params::{valid_param_name, ParamConstraints, RegexCache, ValueConstraint};
use crate::policy::pattern::lower;
use crate::policy::{PolicySet, PolicySource, Role};

/// The longest grant any rule may allow.
pub const MAX_DURATION_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The only policy format version this build reads.
const FORMAT_VERSION: i64 = 1;

// ---- raw TOML shapes (spans kept for error positions) ----------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) version: Option<Spanned<i64>>,
    pub(crate) defaults: Option<RawDefaults>,
    #[serde(default)]
    pub(crate) roles: BTreeMap<Spanned<String>, RawRole>,
    #[serde(default)]
    pub(crate) rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    pub(crate) unmatched: Option<Spanned<String>>,
    pub(crate) dynamic: Option<Spanned<String>>,
    pub(crate) platform: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    pub(crate) tasks: Spanned<Vec<Spanned<String>>>,
    pub(crate) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) id: Spanned<String>,
    pub(crate) effect: Spanned<String>,
    pub(crate) tasks: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(crate) except: Vec<Spanned<String>>,
    pub(crate) approval: Option<Spanned<String>>,
    pub(crate) approvers: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) requesters: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) max_duration: Option<Spanned<String>>,
    pub(crate) min_approvals: Option<Spanned<i64>>,
    pub(crate) offline: Option<Spanned<String>>,
    // Not `Spanned`: dotted-key tables (`when.any_param = ...`) carry no span of their own.
    pub(crate) when: Option<RawWhen>,
    pub(crate) params: Option<RawParams>,
    pub(crate) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWhen {
    pub(crate) any_param: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) no_param: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `params.only = [...]` plus `params.NAME = { glob | regex | one_of }`.
pub(crate) struct RawParams {
    pub(crate) only: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) values: Vec<(Spanned<String>, Spanned<RawConstraint>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConstraint {
    pub(crate) glob: Option<Spanned<String>>,
    pub(crate) regex: Option<Spanned<String>>,
    pub(crate) one_of: Option<Spanned<Vec<String>>>,
}

impl<'de> Deserialize<'de> for RawParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawParams;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of parameter constraints")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawParams, A::Error> {
                let mut out = RawParams {
                    only: None,
                    values: Vec::new(),
                };
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    if key.get_ref() == "only" {
                        out.only = Some(map.next_value()?);
                    } else {
                        out.values.push((key, map.next_value()?));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

// ---- positions -------------------------------------------------------------------------------

/// Line starts of one file, for `line:col` of many offsets without rescanning the text.
/// Gives the same answer as [`crate::span::line_col`].
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..)
            .unwrap_or("")
            .char_indices()
            .take_while(|(i, _)| start + i < offset)
            .count();
        (line, col + 1)
    }
}

/// Error collector for one file.
struct FileCx<'a> {
    name: &'a str,
    lines: LineIndex<'a>,
    errors: &'a mut Vec<LoadError>,
}

impl FileCx<'_> {
    fn at(&self, span: &Range<usize>) -> (usize, usize) {
        self.lines.line_col(span.start)
    }

    fn where_(&self, span: &Range<usize>) -> String {
        let (l, c) = self.at(span);
        format!("{}:{l}:{c}", self.name)
    }

    fn err(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, col) = self.at(span);
        self.errors.push(LoadError {
            file: self.name.to_string(),
            line,
            col,
            message: message.into(),
        });
    }
}

// ---- the load --------------------------------------------------------------------------------

pub(crate) fn load(sources: &[PolicySource]) -> Result<PolicySet, LoadErrors> {
    // The fast reader first; any error at all, and the load is redone with the full TOML
    // parser alone, so what is reported never depends on which reader ran.
    load_with(sources, true).or_else(|_| load_with(sources, false))
}

fn load_with(sources: &[PolicySource], fast: bool) -> Result<PolicySet, LoadErrors> {
    let mut errors = Vec::new();

    // Pass 1: parse every file; gather defaults and roles.
    let mut parsed: Vec<(&PolicySource, RawFile)> = Vec::new();
    let mut any_unparsed = false;
    for src in sources {
        let quick = if fast {
            super::fast::parse(&src.text)
        } else {
            None
        };
        match quick.map_or_else(|| toml::from_str::<RawFile>(&src.text), Ok) {
            Ok(raw) => parsed.push((src, raw)),
            Err(e) => {
                any_unparsed = true;
                let lines = LineIndex::new(&src.text);
                let (line, col) = e.span().map_or((1, 1), |s| lines.line_col(s.start));
                errors.push(LoadError {
                    file: src.name.clone(),
                    line,
                    col,
                    message: toml_message(&e),
                });
            }
        }
    }

    let mut defaults = Defaults::default();
    let mut defaults_at: Option<String> = None;
    let mut roles: HashMap<String, (Role, String)> = HashMap::new();
    for (src, raw) in &mut parsed {
        let mut cx = FileCx {
            name: &src.name,
            lines: LineIndex::new(&src.text),
            errors: &mut errors,
        };
        if let Some(v) = &raw.version {
            if *v.get_ref() != FORMAT_VERSION {
                cx.err(
                    &v.span(),
                    format!(
                        "unsupported policy format version `{}`: this jitsh reads version {FORMAT_VERSION}",
                        v.get_ref()
                    ),
                );
            }
        }
        // Positions come from the first key set: `defaults.x = ...` tables have no span.
        if let Some((d, span)) = raw.defaults.take().and_then(|d| {
            let span = d
                .unmatched
                .as_ref()
                .or(d.dynamic.as_ref())
                .or(d.platform.as_ref())?
                .span();
            Some((d, span))
        }) {
            let here = cx.where_(&span);
            if let Some(first) = &defaults_at {
                cx.err(
                    &span,
                    format!(
                        "`[defaults]` is already set at {first}: set defaults in one file only"
                    ),
                );
            } else {
                defaults_at = Some(here);
                defaults = check_defaults(&mut cx, d);
            }
        }
        for (name, role) in std::mem::take(&mut raw.roles) {
            let key = lower(name.get_ref());
            if let Some((_, first)) = roles.get(&key) {
                cx.err(
                    &name.span(),
                    format!(
                        "duplicate role `{}`: first defined at {first}",
                        name.get_ref()
                    ),
                );
                continue;
            }
            let here = cx.where_(&name.span());
            let role = check_role(&mut cx, name.get_ref(), role);
            roles.insert(key, (role, here));
        }
    }

    // Pass 2: rules.
    let parsed_names: Vec<String> = parsed.iter().map(|(src, _)| src.name.clone()).collect();
    let mut rules = Vec::new();
    // id -> (position in `rules` or usize::MAX if invalid, file number, offset of the id);
    // the place is formatted only for a duplicate.
    let mut ids: HashMap<String, (usize, usize, usize)> = HashMap::new();
    let mut cache = RegexCache::default();
    let file_lines: Vec<LineIndex<'_>> = parsed
        .iter()
        .map(|(src, _)| LineIndex::new(&src.text))
        .collect();
    for (file_no, (src, raw)) in parsed.iter_mut().enumerate() {
        let mut cx = FileCx {
            name: &src.name,
            lines: LineIndex::new(&src.text),
            errors: &mut errors,
        };
        for r in std::mem::take(&mut raw.rule) {
            let id = r.get_ref().id.clone();
            let here = (file_no, id.span().start);
            if let Some(&(_, f, off)) = ids.get(id.get_ref()) {
                let first = match (parsed_names.get(f), file_lines.get(f)) {
                    (Some(name), Some(lines)) => {
                        let (l, c) = lines.line_col(off);
                        format!("{name}:{l}:{c}")
                    }
                    _ => "another file".to_string(),
                };
                cx.err(
                    &id.span(),
                    format!(
                        "duplicate rule id `{}`: first defined at {first}",
                        id.get_ref()
                    ),
                );
            }
            let check = RuleCx {
                roles: &roles,
                skip_unknown_roles: any_unparsed,
                cache: &mut cache,
            };
            if let Some(rule) = check.rule(&mut cx, r) {
                ids.entry(id.into_inner())
                    .or_insert((rules.len(), here.0, here.1));
                rules.push(rule);
            } else {
                ids.entry(id.into_inner())
                    .or_insert((usize::MAX, here.0, here.1));
            }
        }
    }

    // Report in reading order: by file as given, then by position.
    let order: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    errors.sort_by_key(|e| (order.get(e.file.as_str()).copied(), e.line, e.col));
    if let Some(errors) = LoadErrors::new(errors) {
        return Err(errors);
    }
    let by_id = ids
        .into_iter()
        .filter(|(_, (i, _, _))| *i != usize::MAX)
        .map(|(id, (i, _, _))| (id, i))
        .collect();
    let roles = roles.into_iter().map(|(k, (role, _))| (k, role)).collect();
    Ok(PolicySet::assemble(defaults, rules, by_id, roles))
}

/// The toml error's own message, on one line (`invalid array: expected `]``).
fn toml_message(e: &toml::de::Error) -> String {
    e.message()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
        .trim_end_matches('.')
        .to_string()
}

fn check_defaults(cx: &mut FileCx<'_>, d: RawDefaults) -> Defaults {
    let mut out = Defaults::default();
    if let Some(u) = d.unmatched {
        if let Some(e) = effect(cx, &u, "`unmatched` value") {
            out.unmatched = e;
        }
    }
    if let Some(v) = d.dynamic {
        match effect(cx, &v, "`dynamic` value") {
            Some(Effect::Allow) => cx.err(
                &v.span(),
                "`dynamic = \"allow\"` is not permitted: an invocation that cannot be analysed is never allowed; use `approval` or `deny`",
            ),
            Some(e) => out.dynamic = e,
            None => {}
        }
    }
    if let Some(p) = d.platform {
        match Platform::parse(p.get_ref()) {
            Some(platform) => out.platform = platform,
            None => cx.err(
                &p.span(),
                format!(
                    "unknown `platform` value `{}`: expected `windows`, `unix` or `unknown`",
                    p.get_ref()
                ),
            ),
        }
    }
    out
}

fn effect(cx: &mut FileCx<'_>, v: &Spanned<String>, field: &str) -> Option<Effect> {
    match v.get_ref().as_str() {
        "allow" => Some(Effect::Allow),
        "approval" => Some(Effect::Approval),
        "deny" => Some(Effect::Deny),
        other => {
            cx.err(
                &v.span(),
                format!("unknown {field} `{other}`: expected `allow`, `approval` or `deny`"),
            );
            None
        }
    }
}

fn check_role(cx: &mut FileCx<'_>, name: &str, raw: RawRole) -> Role {
    let mut tasks = Vec::new();
    let mut patterns = Vec::new();
    if raw.tasks.get_ref().is_empty() {
        cx.err(&raw.tasks.span(), format!("role `{name}` has no tasks"));
    }
    for t in raw.tasks.into_inner() {
        if t.get_ref().starts_with("role:") {
            cx.err(
                &t.span(),
                format!(
                    "role `{name}` refers to `{}`: roles cannot contain roles",
                    t.get_ref()
                ),
            );
            continue;
        }
        match TaskPattern::parse(t.get_ref()) {
            Ok(p) => {
                patterns.push(p);
                tasks.push(t.into_inner());
            }
            Err(m) => cx.err(&t.span(), m),
        }
    }
    Role {
        name: name.to_string(),
        tasks,
        description: raw.description,
        patterns,
    }
}

/// Validates one rule; errors go to `cx`, `None` when there were any.
struct RuleCx<'a> {
    roles: &'a HashMap<String, (Role, String)>,
    skip_unknown_roles: bool,
    cache: &'a mut RegexCache,
}

impl RuleCx<'_> {
    fn rule(mut self, cx: &mut FileCx<'_>, raw: Spanned<RawRule>) -> Option<Rule> {
        let before = cx.errors.len();
        let rule_span = raw.span();
        let r = raw.into_inner();
        let id = r.id.get_ref().clone();
        if !valid_id(&id) {
            cx.err(
                &r.id.span(),
                format!("invalid rule id `{id}`: use lowercase letters, digits and `-`, starting with a letter or digit"),
            );
        }
        let effect = effect(cx, &r.effect, "effect");

        // Tasks, with role expansion.
        let mut patterns = Vec::new();
        if r.tasks.get_ref().is_empty() {
            cx.err(&r.tasks.span(), format!("rule `{id}` has no tasks"));
        }
        for t in r.tasks.get_ref() {
            self.task(cx, t, &mut patterns);
        }
        let mut except_patterns = Vec::new();
        for t in &r.except {
            self.task(cx, t, &mut except_patterns);
        }

        // Approval settings belong to approval rules only.
        let is_approval = effect == Some(Effect::Approval);
        let only_for_approval = |cx: &mut FileCx<'_>, span: Range<usize>, field: &str| {
            cx.err(
                &span,
                format!("`{field}` applies only to rules with effect = \"approval\""),
            );
        };
        let mut approval = ApprovalMode::Manual;
        if let Some(a) = &r.approval {
            match a.get_ref().as_str() {
                "manual" => approval = ApprovalMode::Manual,
                "auto" => approval = ApprovalMode::Auto,
                other => cx.err(
                    &a.span(),
                    format!("unknown approval `{other}`: expected `manual` or `auto`"),
                ),
            }
            if effect.is_some() && !is_approval {
                only_for_approval(cx, a.span(), "approval");
            }
        }
        let approvers = names(cx, r.approvers.as_ref(), "approvers");
        let requesters = names(cx, r.requesters.as_ref(), "requesters");
        if effect.is_some() && !is_approval {
            if let Some(a) = &r.approvers {
                only_for_approval(cx, a.span(), "approvers");
            }
            if let Some(a) = &r.requesters {
                only_for_approval(cx, a.span(), "requesters");
            }
        }
        // Written out as `approval = "manual"`, a rule without approvers is an error. Left
        // implicit (as in the format's own example) it loads, nobody can approve it (fail
        // closed), and lint reports it.
        let explicit_manual = r.approval.as_ref().is_some_and(|a| a.get_ref() == "manual");
        if is_approval && explicit_manual && approvers.is_empty() {
            cx.err(
                &rule_span,
                format!("approval rule `{id}` has no `approvers`: a manual approval needs at least one approver group"),
            );
        }
        let mut max_duration = None;
        if let Some(d) = &r.max_duration {
            match parse_duration(d.get_ref()) {
                Ok(v) if v > MAX_DURATION_LIMIT => cx.err(
                    &d.span(),
                    format!("max_duration `{}` exceeds the 24h limit", d.get_ref()),
                ),
                Ok(v) => max_duration = Some(v),
                Err(m) => cx.err(&d.span(), m),
            }
            if effect.is_some() && !is_approval {
                only_for_approval(cx, d.span(), "max_duration");
            }
        }
        let mut offline = None;
        if let Some(d) = &r.offline {
            match parse_duration(d.get_ref()) {
                Ok(v) if v > MAX_DURATION_LIMIT => cx.err(
                    &d.span(),
                    format!("offline `{}` exceeds the 24h limit", d.get_ref()),
                ),
                Ok(v) if max_duration.is_some_and(|m| v > m) => cx.err(
                    &d.span(),
                    format!(
                        "offline `{}` is longer than the rule's max_duration: no grant lasts that long",
                        d.get_ref()
                    ),
                ),
                Ok(v) => offline = Some(v),
                Err(m) => cx.err(&d.span(), m),
            }
            if effect.is_some() && !is_approval {
                only_for_approval(cx, d.span(), "offline");
            }
        }
        let mut min_approvals = 1;
        if let Some(m) = &r.min_approvals {
            match u32::try_from(*m.get_ref()) {
                Ok(n) if (1..=16).contains(&n) => min_approvals = n,
                _ => cx.err(
                    &m.span(),
                    format!(
                        "min_approvals `{}` is out of range: use 1 to 16",
                        m.get_ref()
                    ),
                ),
            }
            if effect.is_some() && !is_approval {
                only_for_approval(cx, m.span(), "min_approvals");
            }
        }

        if let Some(RawWhen {
            any_param: None,
            no_param: None,
        }) = &r.when
        {
            cx.err(
                &r.id.span(),
                format!("rule `{id}` has a `when` table without `any_param` or `no_param`"),
            );
        }
        let when_any_param = r
            .when
            .as_ref()
            .and_then(|w| w.any_param.as_ref())
            .map(|list| {
                if list.get_ref().is_empty() {
                    cx.err(
                        &list.span(),
                        "`when.any_param` is empty: the rule could never apply",
                    );
                }
                param_names(cx, list.get_ref())
            });
        let when_no_param = r
            .when
            .as_ref()
            .and_then(|w| w.no_param.as_ref())
            .map(|list| {
                if list.get_ref().is_empty() {
                    cx.err(
                        &list.span(),
                        "`when.no_param` is empty: leave it out for a rule that always applies",
                    );
                }
                param_names(cx, list.get_ref())
            });
        let params = r.params.map(|p| self.params(cx, p));

        if cx.errors.len() != before {
            return None;
        }
        let (line, _) = cx.at(&r.id.span());
        Some(Rule {
            id,
            effect: effect?,
            tasks: r
                .tasks
                .into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            except: r.except.into_iter().map(Spanned::into_inner).collect(),
            approval,
            approvers,
            requesters,
            max_duration,
            min_approvals,
            offline,
            when_any_param,
            when_no_param,
            params: params.flatten(),
            description: r.description,
            source: format!("{}:{line}", cx.name),
            patterns,
            except_patterns,
        })
    }

    fn task(&self, cx: &mut FileCx<'_>, t: &Spanned<String>, out: &mut Vec<TaskPattern>) {
        let text = t.get_ref();
        if let Some(role) = text.strip_prefix("role:") {
            match self.roles.get(&lower(role)) {
                Some((r, _)) => out.extend(r.patterns.iter().cloned()),
                None if self.skip_unknown_roles => {}
                None => cx.err(&t.span(), format!("unknown role `{role}` in `{text}`")),
            }
            return;
        }
        match TaskPattern::parse(text) {
            Ok(p) => out.push(p),
            Err(m) => cx.err(&t.span(), m),
        }
    }

    fn params(&mut self, cx: &mut FileCx<'_>, p: RawParams) -> Option<ParamConstraints> {
        let span = p
            .values
            .first()
            .map(|(n, _)| n.span())
            .or_else(|| p.only.as_ref().map(Spanned::span))
            .unwrap_or_default();
        let before = cx.errors.len();
        let only = p.only.map(|o| param_names(cx, o.get_ref()));
        let mut values = Vec::new();
        for (name, c) in p.values {
            if !valid_param_name(name.get_ref()) {
                cx.err(
                    &name.span(),
                    format!(
                        "invalid parameter name `{}`: write it without the dash, e.g. `Identity`",
                        name.get_ref()
                    ),
                );
                continue;
            }
            let cspan = c.span();
            let c = c.into_inner();
            let given = [c.glob.is_some(), c.regex.is_some(), c.one_of.is_some()];
            if given.iter().filter(|b| **b).count() != 1 {
                cx.err(
                    &cspan,
                    format!(
                        "constraint for `{}` must have exactly one of `glob`, `regex` or `one_of`",
                        name.get_ref()
                    ),
                );
                continue;
            }
            let built = if let Some(g) = &c.glob {
                ValueConstraint::glob(g.get_ref()).map_err(|m| (g.span(), m))
            } else if let Some(r) = &c.regex {
                ValueConstraint::regex_cached(r.get_ref(), self.cache).map_err(|m| (r.span(), m))
            } else if let Some(o) = c.one_of {
                let s = o.span();
                ValueConstraint::one_of(o.into_inner()).map_err(|m| (s, m))
            } else {
                continue;
            };
            match built {
                Ok(v) => values.push((name.into_inner(), v)),
                Err((s, m)) => cx.err(&s, m),
            }
        }
        if cx.errors.len() != before {
            return None;
        }
        match ParamConstraints::new(only, values) {
            Ok(c) => Some(c),
            Err(m) => {
                cx.err(&span, m);
                None
            }
        }
    }
}

/// Non-empty names (groups, users, roles) from an optional list.
fn names(
    cx: &mut FileCx<'_>,
    list: Option<&Spanned<Vec<Spanned<String>>>>,
    field: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for n in list.map(|l| l.get_ref().as_slice()).unwrap_or_default() {
        if n.get_ref().trim().is_empty() {
            cx.err(&n.span(), format!("empty name in `{field}`"));
        } else {
            out.push(n.get_ref().clone());
        }
    }
    out
}

fn param_names(cx: &mut FileCx<'_>, list: &[Spanned<String>]) -> Vec<String> {
    let mut out = Vec::new();
    for n in list {
        if valid_param_name(n.get_ref()) {
            out.push(n.get_ref().clone());
        } else {
            cx.err(
                &n.span(),
                format!(
                    "invalid parameter name `{}`: write it without the dash, e.g. `Identity`",
                    n.get_ref()
                ),
            );
        }
    }
    out
}

/// `[a-z0-9][a-z0-9-]*`
fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `"30m"`, `"4h"`, `"1h30m"`, `"90s"`, `"1d"` (24h): one or more `<digits><unit>` parts with
/// units `d`, `h`, `m`, `s`, each unit at most once, largest first.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration `{text}`: use forms like `30m`, `4h`, `1h30m`, `90s` or `1d`");
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_unit = u64::MAX;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        if digits.is_empty() || unit >= last_unit {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
        last_unit = unit;
    }
    if !digits.is_empty() || last_unit == u64::MAX || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests report failure by panicking")]
mod tests {
    use super::*;

    /// The fast reader and the full TOML parser give the same policy set for every file the
    /// fast reader accepts, and it accepts the shipped, fixture and generated policies.
    #[test]
    fn fast_reader_agrees_with_the_full_parser() {
        // The workspace root, where the shipped policies and the fixtures live.
        let root = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut texts: Vec<(String, String)> = Vec::new();
        for dir in [
            "policies",
            "tests/fixtures/policies/valid",
            "tests/fixtures/allow-all",
        ] {
            let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                texts.push((
                    f.display().to_string(),
                    std::fs::read_to_string(&f).unwrap(),
                ));
            }
        }
        for n in [1, 10, 200] {
            texts.push((
                format!("synthetic-{n}"),
                super::super::synthetic_policy_set(n),
            ));
        }
        let quoted = "version = 1\n[defaults]\nunmatched = 'deny' # c\r\n\n[roles.\"Mail Ops\"]\ntasks = [\n  \"Get-*\", # first\n  'Set-Mailbox',\n]\ndescription = \"t\\u00e9\\\"x\\\"\"\n[[ rule ]]\n\"id\" = \"a-1\"\neffect = \"approval\"\ntasks = [\"role:Mail Ops\"]\napprovers = [\"g\"]\nmin_approvals = 2\nparams.Identity = { glob = \"*@x.com\", }\nparams.Other = {regex='[a-z]+'}\nwhen.no_param = []\n";
        texts.push(("quoted".into(), quoted.to_string()));
        let mut accepted = 0;
        for (name, text) in &texts {
            let src = [PolicySource::new(name.clone(), text.clone())];
            let slow = load_with(&src, false);
            if super::super::fast::parse(text).is_some() {
                accepted += 1;
                let quick = load_with(&src, true);
                match (&slow, &quick) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(
                            format!("{:?}", a.rules()),
                            format!("{:?}", b.rules()),
                            "{name}"
                        );
                        assert_eq!(
                            format!("{:?}", a.defaults()),
                            format!("{:?}", b.defaults()),
                            "{name}"
                        );
                        let mut ra: Vec<_> = a.roles().iter().map(|r| format!("{r:?}")).collect();
                        let mut rb: Vec<_> = b.roles().iter().map(|r| format!("{r:?}")).collect();
                        ra.sort();
                        rb.sort();
                        assert_eq!(ra, rb, "{name}");
                    }
                    (Err(_), Err(_)) => {}
                    _ => panic!("{name}: the readers disagree on whether it loads"),
                }
            } else {
                assert!(
                    !name.starts_with("synthetic") && !name.contains("/policies/"),
                    "{name}: the fast reader should take it"
                );
            }
        }
        assert!(accepted >= texts.len() - 1, "{accepted} of {}", texts.len());
    }

    /// Mutated policy text: whenever the fast reader accepts a file, the full parser accepts it
    /// too and the loads agree (the fast reader never lets through what TOML refuses).
    #[test]
    fn fast_reader_never_accepts_what_the_full_parser_refuses() {
        // The workspace root, where the shipped policies and the fixtures live.
        let root = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut bases = vec![super::super::synthetic_policy_set(12)];
        for f in [
            "policies/privileged-tasks.toml",
            "policies/standing-access.toml",
        ] {
            bases.push(std::fs::read_to_string(root.join(f)).unwrap());
        }
        let alphabet: &[&str] = &[
            "\"",
            "'",
            "[",
            "]",
            "{",
            "}",
            ",",
            "=",
            ".",
            "#",
            "\n",
            "\r",
            "\t",
            " ",
            "\\",
            "\\u00e9",
            "a",
            "-",
            "_",
            "1",
            "0",
            "+",
            "\u{1}",
            "\u{7f}",
            "é",
            "[[rule]]\n",
            "tasks",
            "id",
            "params.",
            "when.",
            "\"\"\"",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        let (mut accepted, mut tried) = (0, 0);
        for base in &bases {
            for _ in 0..400 {
                let mut text = base.clone();
                for _ in 0..1 + next(3) {
                    let mut at = next(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    let mut end = (at + next(4)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    let with = alphabet[next(alphabet.len())];
                    text.replace_range(at..end, with);
                }
                tried += 1;
                if super::super::fast::parse(&text).is_none() {
                    continue;
                }
                accepted += 1;
                assert!(
                    toml::from_str::<RawFile>(&text).is_ok(),
                    "the fast reader accepted what TOML refuses:\n{text}"
                );
                let src = [PolicySource::new("m.toml", text.clone())];
                match (load_with(&src, false), load_with(&src, true)) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(
                            format!("{:?}", a.rules()),
                            format!("{:?}", b.rules()),
                            "{text}"
                        )
                    }
                    (Err(a), Err(b)) => {
                        assert_eq!(a.to_string().is_empty(), b.to_string().is_empty())
                    }
                    _ => panic!("the readers disagree on:\n{text}"),
                }
            }
        }
        assert!(
            accepted > tried / 10,
            "{accepted} of {tried} accepted: mutations too harsh"
        );
    }

    /// Outside the subset the fast reader steps aside rather than guess.
    #[test]
    fn fast_reader_declines_what_it_does_not_know() {
        for text in [
            "[[rule]]\nid = \"a\"\neffect = \"deny\"\n",
            "[[rule]]\nid = \"a\"\nid = \"b\"\neffect = \"deny\"\ntasks = [\"x\"]\n",
            "[[rule]]\nid = \"\"\"a\"\"\"\neffect = \"deny\"\ntasks = [\"x\"]\n",
            "[[rule]]\nid = \"a\"\neffect = \"deny\"\ntasks = [\"x\"]\nfoo = 1\n",
            "[[rule]]\nid = \"a\u{1}\"\neffect = \"deny\"\ntasks = [\"x\"]\n",
            "# \u{7f}\n",
            "version = 1_0\n",
            "version = 01\n",
            "[defaults]\n[defaults]\n",
            "[roles.a]\ntasks=[\"x\"]\n[roles.a]\ntasks=[\"y\"]\n",
            "[rule]\n",
            "a.b.c = 1\n",
            "x = 1\r",
            "\u{feff}version = 1\n",
        ] {
            assert!(super::super::fast::parse(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("30m"), Ok(1800));
        assert_eq!(d("4h"), Ok(14_400));
        assert_eq!(d("1h30m"), Ok(5400));
        assert_eq!(d("90s"), Ok(90));
        assert_eq!(d("1d"), Ok(86_400));
        for bad in [
            "",
            "4",
            "h",
            "30m1h",
            "1h1h",
            "4x",
            "-1h",
            "0m",
            "99999999999999999999d",
        ] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_index_agrees_with_span_line_col() {
        let text = "a\n\u{e9}b\r\n\ncd\n";
        let ix = LineIndex::new(text);
        for off in 0..=text.len() + 2 {
            if text.is_char_boundary(off.min(text.len())) {
                assert_eq!(
                    ix.line_col(off),
                    crate::span::line_col(text, off),
                    "offset {off}"
                );
            }
        }
    }

    #[test]
    fn ids() {
        assert!(valid_id("read-only"));
        assert!(valid_id("0day"));
        assert!(!valid_id("-x"));
        assert!(!valid_id("Read"));
        assert!(!valid_id("a_b"));
        assert!(!valid_id(""));
    }
}
