//! The tree walk that turns statements into invocations.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use crate::invocation::{Invocation, Param, ParamValue, TaskKind};
use crate::span::Span;
use crate::syntax::ast::*;
use crate::syntax::{is_plain_integer, number_value};
use smol_str::SmolStr;

use super::safe;
use super::types::{self, Calls};
use crate::catalog::aliases::{self, AliasUse};
use crate::catalog::ci_map::CiMap;
use crate::catalog::{Catalog, CommandMeta, ParamLookup, ParamMeta, Platform, ValueKind};

/// Recursion budget for the walk. The parser bounds nesting, so a valid tree stays far below
/// this; if it is ever reached the walk stops and reports a dynamic invocation (fail closed).
const MAX_FRAMES: usize = 2048;

/// Most invocations one line may have; beyond it the line is refused (fail closed). Admin lines
/// have a handful; the most in any Exchange documentation example is 17.
const MAX_INVOCATIONS: usize = 2048;

/// Whether script-block contents are code (their commands run) or data (OPATH filter text, whose
/// words are not commands; `$( )` inside is still code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Code,
    Data,
}

/// A literal hashtable assigned by a statement that stands directly in a body's statement list
/// (so it runs exactly once, before every later statement of that body): `$h = @{ Identity =
/// 'x'; ... }`. Whether a splat may use it is decided at the end of the line, when every writer
/// of the variable is known.
#[derive(Debug)]
struct SplatSource {
    /// The variable as written, without `$` (for the strict name comparison).
    name: String,
    /// The body whose statement list holds the assignment.
    body: usize,
    end: usize,
    entries: Vec<(String, ParamValue)>,
}

#[derive(Debug)]
struct PendingSplat {
    invocation: usize,
    param_index: usize,
    /// The variable as written, without `@` (`h`, `Local:h`).
    variable: String,
    written: String,
    at: usize,
    /// The body the command stands in.
    body: usize,
}

/// A statement list the walk is in: the line itself, a block, a function body, a
/// subexpression. Bodies form a tree that follows the text.
#[derive(Debug, Clone, Copy)]
struct Body {
    parent: Option<usize>,
    /// Whether the body runs where it stands, in the same runspace and while the line runs:
    /// a branch or loop body, `$( )`, `& { }`, a block given to `ForEach-Object`. A function
    /// body, a stored script block or one handed to a command that may keep it, run remotely
    /// or in a job does not: it runs at another time, with whatever the variables then hold
    /// (PowerShell scoping is dynamic: a function sees its caller's variables at call time).
    runs_here: bool,
}

/// `$v.Method(…)`, safe only if `$v` certainly holds a type for which `Method` is harmless.
#[derive(Debug)]
struct PendingTyped {
    /// The variable by [`var_key`].
    variable: String,
    method: String,
    at: usize,
    span: Span,
    depth: usize,
    /// The body the call stands in.
    body: usize,
}

#[derive(Debug)]
pub(crate) struct Walker<'a> {
    src: &'a str,
    catalog: &'a Catalog,
    out: Vec<Invocation>,
    frames: usize,
    overflowed: bool,
    /// Literal hashtable assignments that may feed a splat.
    splat_sources: Vec<SplatSource>,
    /// How many times each variable (by [`var_key`]) is written anywhere in the line, in any
    /// way: assignments (splat sources included), loop variables, parameters, `[ref]`,
    /// `++`/`--`, `-OutVariable` and its kin.
    writes: HashMap<String, usize>,
    /// Set when something in the line may write any variable unseen (a function or script, a
    /// dynamic invocation, `Set-Variable`, a member assignment that may reach a hashtable
    /// through another name): then no splat's value is certain.
    writes_unseen: Option<String>,
    pending: Vec<PendingSplat>,
    /// The bodies inside the line: body `k` is `bodies[k - 1]`, body 0 the line itself (see
    /// [`Walker::body_at`]), so a line without blocks makes no list.
    bodies: Vec<Body>,
    /// The body the walk is in.
    body: usize,
    /// The runspace's platform: what a default alias runs depends on it.
    platform: Platform,
    /// Spans of code stored for later (see [`super::Analysis::deferred`]).
    deferred: Vec<Span>,
    /// Variables assigned, at the top level with `=`, a value whose type is certain
    /// (`$a = [System.Collections.ArrayList]($x)`, `$s = "…"`): (end of the assignment, full
    /// type name), in source order.
    typed_sources: HashMap<String, Vec<(usize, String)>>,
    /// Variables written any other way anywhere in the line (another assignment, `foreach`).
    other_writes: HashSet<String>,
    /// The line runs a command that writes variables by name (`Set-Variable`, `-OutVariable`,
    /// `[ref]`): no variable's type is certain.
    writes_by_name: bool,
    /// Method calls on a variable whose type may make them safe, decided after the walk.
    pending_typed: Vec<PendingTyped>,
    /// Parameter lookups by (command, name as written), lowercased: a line repeating one
    /// unknown `-name` (or splat) thousands of times must not scan the metadata each time.
    param_cache: RefCell<HashMap<(String, String), ParamLookup<'a>>>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(src: &'a str, catalog: &'a Catalog) -> Self {
        Walker {
            src,
            catalog,
            // Nearly every line has an invocation: room made at once, not on the first push.
            out: Vec::with_capacity(4),
            frames: 0,
            overflowed: false,
            splat_sources: Vec::new(),
            writes: HashMap::new(),
            writes_unseen: None,
            pending: Vec::new(),
            bodies: Vec::new(),
            body: 0,
            platform: Platform::Unknown,
            deferred: Vec::new(),
            typed_sources: HashMap::new(),
            other_writes: HashSet::new(),
            writes_by_name: false,
            pending_typed: Vec::new(),
            param_cache: RefCell::new(HashMap::new()),
        }
    }

    /// Resolves names as on `platform`.
    pub(crate) fn on(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// What the default alias `bare` runs on the runspace's platform, with its target, when the
    /// catalog's alias of that name is the default one.
    fn platform_alias(&self, bare: &str) -> Option<(AliasUse, &'static aliases::AliasEntry)> {
        let entry = aliases::builtin_alias(bare)?;
        let same = self
            .catalog
            .resolve_alias(bare)
            .is_some_and(|t| t.eq_ignore_ascii_case(entry.target));
        same.then(|| (entry.shell.on(self.platform), entry))
    }

    pub(crate) fn run(mut self, script: &Script) -> super::Analysis {
        // Typed variables are recorded first: every other write, wherever it stands, is
        // compared with them during the walk.
        for st in &script.statements {
            self.note_typed_assignment(st);
        }
        self.body_statements(&script.statements, 0, Mode::Code);
        self.resolve_splats();
        self.resolve_typed_calls();
        if self.overflowed {
            self.out.push(Invocation {
                name: "<too deeply nested>".into(),
                module: None,
                as_written: SmolStr::default(),
                span: script.span,
                depth: 0,
                dynamic: Some("the line is nested too deeply to analyse".into()),
                params: Vec::new(),
                params_uncertain: None,
                pipeline_input: false,
                kind: TaskKind::Command,
                pipeline_params: Vec::new(),
            });
        }
        self.out.sort_by_key(|i| i.span.start);
        if self.out.len() > MAX_INVOCATIONS {
            // Deciding and reporting each costs far more than finding it: a line that is
            // nothing but `% a a a …` must not keep the gate busy. Refuse it whole.
            let count = self.out.len();
            self.out.truncate(MAX_INVOCATIONS);
            self.out.push(Invocation {
                name: "<too many invocations>".into(),
                module: None,
                as_written: SmolStr::default(),
                span: script.span,
                depth: 0,
                dynamic: Some(format!(
                    "the line has {count} invocations, more than the {MAX_INVOCATIONS} the gate analyses"
                )),
                params: Vec::new(),
                params_uncertain: None,
                pipeline_input: false,
                kind: TaskKind::Command,
                pipeline_params: Vec::new(),
            });
        }
        super::Analysis {
            invocations: self.out,
            deferred: self.deferred,
        }
    }

    /// Records the script blocks an assigned value stores (`$sb = { … }`, `$h = @{ e = { … } }`,
    /// `$a = { … }, { … }`).
    fn note_stored_blocks(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::ScriptBlock(_) => self.deferred.push(e.span),
            ExprKind::List(items) => {
                for item in items {
                    self.note_stored_blocks(item);
                }
            }
            ExprKind::Hashtable(entries) => {
                for entry in entries {
                    if let Some(v) = single_expression(&entry.value) {
                        self.note_stored_blocks(v);
                    }
                }
            }
            ExprKind::Cast { operand, .. } => self.note_stored_blocks(operand),
            ExprKind::Paren(st) => {
                if let Some(v) = single_expression(st) {
                    self.note_stored_blocks(v);
                }
            }
            ExprKind::ArraySubexpression(stmts) | ExprKind::Subexpression(stmts) => {
                for st in stmts {
                    if let Some(v) = single_expression(st) {
                        self.note_stored_blocks(v);
                    }
                }
            }
            _ => {}
        }
    }

    /// Records `$v = value` at the top level when the value's type is certain (see
    /// [`static_type`]).
    fn note_typed_assignment(&mut self, st: &Statement) {
        let StatementKind::Assignment { target, op, value } = &st.kind else {
            return;
        };
        let (ExprKind::Variable(v), "=") = (&target.kind, op.as_str()) else {
            return;
        };
        let value = single_expression(value);
        let ty = value
            .and_then(static_type)
            .or_else(|| value.and_then(|e| self.string_method_result(e, st.span.start)));
        if let Some(t) = ty {
            self.typed_sources
                .entry(var_key(&v.name))
                .or_default()
                .push((st.span.end, t));
        }
    }

    /// `System.String` when `e` is `$v.Method(…)` with `$v` recorded as a string before `at`
    /// and `Method` a string method that returns a string (`$t = $t.Replace('<', '_')`).
    fn string_method_result(&self, e: &Expr, at: usize) -> Option<String> {
        const RETURNS_STRING: &[&str] = &[
            "replace",
            "trim",
            "trimstart",
            "trimend",
            "tolower",
            "toupper",
            "tolowerinvariant",
            "toupperinvariant",
            "substring",
            "padleft",
            "padright",
            "tostring",
        ];
        let ExprKind::Postfix { base, ops } = &e.kind else {
            return None;
        };
        let (ExprKind::Variable(v), [op]) = (&base.kind, ops.as_slice()) else {
            return None;
        };
        let PostfixKind::Member {
            name: MemberName::Name(m),
            is_static: false,
            args: Some(_),
        } = &op.kind
        else {
            return None;
        };
        let is_string = self
            .typed_sources
            .get(&var_key(&v.name))
            .and_then(|srcs| srcs.iter().rev().find(|(end, _)| *end <= at))
            .is_some_and(|(_, t)| t == "System.String");
        (is_string && RETURNS_STRING.contains(&m.to_ascii_lowercase().as_str()))
            .then(|| "System.String".to_string())
    }

    /// Any write to variable `name` (as written) other than a recorded typed assignment makes
    /// its type uncertain. `assignment_end` is the end of the assignment statement when `name`
    /// is its whole target (`$v = …`).
    fn note_typed_write(&mut self, name: &str, assignment_end: Option<usize>) {
        let key = var_key(name);
        let typed = assignment_end.is_some_and(|at| {
            self.typed_sources
                .get(&key)
                .is_some_and(|srcs| srcs.iter().any(|(end, _)| *end == at))
        });
        if !typed {
            self.other_writes.insert(key);
        }
    }

    /// Whether code in `body` runs while the line runs, in the line's own scope: every body
    /// from it up to the line's runs where it stands.
    fn runs_in_line(&self, mut body: usize) -> bool {
        while body != 0 {
            match self.body_at(body) {
                Some(b) if b.runs_here => match b.parent {
                    Some(parent) => body = parent,
                    None => return false,
                },
                _ => return false,
            }
        }
        true
    }

    /// Decides the method calls on variables left for after the walk: harmless when the
    /// variable's type is certain at the call and the method is safe on that type; otherwise
    /// dynamic, like any method call outside the safe list.
    fn resolve_typed_calls(&mut self) {
        if self.pending_typed.is_empty() {
            return;
        }
        // Commands that write variables by name, parameters that do, splats that may pass
        // such parameters unseen, and scripts (which may be dot-sourced) make every variable's
        // type uncertain.
        let by_name = self.out.iter().any(|inv| {
            VARIABLE_WRITERS.contains(&inv.name.to_ascii_lowercase().as_str())
                || matches!(inv.kind, TaskKind::Path | TaskKind::Program)
                || inv.params.iter().any(|p| {
                    p.as_written.starts_with('@')
                            || p.name.to_ascii_lowercase().ends_with("variable")
                            // `-ov`, `-OutVar` on a command without metadata
                            || (!p.resolved && !p.name.is_empty())
                })
        });
        // So do commands that may set their caller's variables without naming them (a
        // function or script the catalog does not know, a dynamic invocation).
        self.writes_by_name |= by_name || self.invisible_writer().is_some();
        for p in std::mem::take(&mut self.pending_typed) {
            // A call in code that runs at another time (a function body, a stored block) may
            // see whatever the variable then holds.
            let certain = !self.writes_by_name
                && !self.other_writes.contains(&p.variable)
                && self.runs_in_line(p.body);
            let ty = self.typed_sources.get(&p.variable).and_then(|srcs| {
                srcs.iter()
                    .rev()
                    .find(|(end, _)| *end <= p.at)
                    .map(|(_, t)| t.as_str())
            });
            if let (true, Some(t)) = (certain, ty) {
                if safe::typed_method_is_safe(t, &p.method) {
                    continue;
                }
            }
            let display = format!(".{}()", p.method);
            self.out.push(Invocation {
                dynamic: Some(format!("method call `{display}` is not on the safe list")),
                name: display.into(),
                module: None,
                as_written: p.span.text(self.src).into(),
                span: p.span,
                depth: p.depth,
                params: Vec::new(),
                params_uncertain: None,
                pipeline_input: false,
                kind: TaskKind::Command,
                pipeline_params: Vec::new(),
            });
        }
    }

    /// Records `$h = @{ literal keys }`, standing directly in the current body's statement
    /// list, as a possible splatting source. A scope-qualified target (`$global:h`) is only
    /// counted as a write: which scope it reaches depends on where the code runs.
    fn note_splat_source(&mut self, st: &Statement) {
        let StatementKind::Assignment { target, op, value } = &st.kind else {
            return;
        };
        let ExprKind::Variable(v) = &target.kind else {
            return;
        };
        if op != "=" || v.name.contains(':') {
            return;
        }
        let Some(ExprKind::Hashtable(entries)) = single_expression(value).map(|e| &e.kind) else {
            return;
        };
        let mut literal = Vec::new();
        for entry in entries {
            let key = match &entry.key.kind {
                ExprKind::String(s) => s.static_value().map(Cow::into_owned),
                _ => None,
            };
            let Some(key) = key else { return };
            if names_variable_setter(&key) {
                // Splatted, it sets a variable this check does not follow by name.
                self.note_unseen_write(format!(
                    "the hashtable assigned to `${}` has key `{key}`, which may name a parameter that sets a variable",
                    v.name
                ));
            }
            let value = single_expression(&entry.value).map_or(ParamValue::Dynamic, value_of);
            literal.push((key, value));
        }
        self.splat_sources.push(SplatSource {
            name: v.name.clone(),
            body: self.body,
            end: st.span.end,
            entries: literal,
        });
    }

    /// Counts one write of variable `name` (as written, any qualifier); its type is no longer
    /// certain.
    fn note_write(&mut self, name: &str) {
        self.note_write_at(name, None);
    }

    /// Counts one write of variable `name`; `assignment_end` as in [`Walker::note_typed_write`].
    fn note_write_at(&mut self, name: &str, assignment_end: Option<usize>) {
        *self.writes.entry(var_key(name)).or_default() += 1;
        self.note_typed_write(name, assignment_end);
    }

    /// Counts a write through an operand of `[ref]` or `++`/`--`: a variable, or anything
    /// else (`$h.n++`, `[ref]$h.x`), which may reach a hashtable held by another variable.
    fn note_written_operand(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Variable(v) => self.note_write(&v.name),
            ExprKind::Postfix { base, ops }
                if ops.iter().all(|op| matches!(op.kind, PostfixKind::Step(_))) =>
            {
                self.note_written_operand(base)
            }
            ExprKind::Paren(st) => match single_expression(st) {
                Some(inner) => self.note_written_operand(inner),
                None => self.note_unseen_write(format!(
                    "`{}` is written through a reference",
                    e.span.text(self.src)
                )),
            },
            _ => self.note_unseen_write(format!(
                "`{}` is written through a reference or `++`/`--`, which may change a hashtable held by another variable",
                e.span.text(self.src)
            )),
        }
    }

    /// Something may write variables the walk cannot name: no splat in the line is certain.
    fn note_unseen_write(&mut self, why: String) {
        self.writes_unseen.get_or_insert(why);
    }

    /// Walks `list` as a body of its own (see [`Body`]), noting the splat sources it holds.
    fn body(&mut self, list: &[Statement], depth: usize, mode: Mode, runs_here: bool) {
        let parent = self.body;
        self.bodies.push(Body {
            parent: Some(parent),
            runs_here,
        });
        self.body = self.bodies.len();
        self.body_statements(list, depth, mode);
        self.body = parent;
    }

    /// Body `id`: 0 is the line's own, which runs where it stands.
    fn body_at(&self, id: usize) -> Option<&Body> {
        const LINE: Body = Body {
            parent: None,
            runs_here: true,
        };
        match id.checked_sub(1) {
            None => Some(&LINE),
            Some(k) => self.bodies.get(k),
        }
    }

    fn body_statements(&mut self, list: &[Statement], depth: usize, mode: Mode) {
        for st in list {
            self.note_splat_source(st);
            self.statement(st, depth, mode);
        }
    }

    fn enter(&mut self) -> bool {
        if self.frames >= MAX_FRAMES {
            self.overflowed = true;
            return false;
        }
        self.frames += 1;
        true
    }

    fn leave(&mut self) {
        self.frames = self.frames.saturating_sub(1);
    }

    /// A statement list that runs where it stands (`$( )`, `@( )`).
    fn statements(&mut self, list: &[Statement], depth: usize, mode: Mode) {
        self.body(list, depth, mode, true);
    }

    /// A block that runs where it stands (a branch or loop body, `& { }`).
    fn block(&mut self, b: &Block, depth: usize, mode: Mode) {
        self.body(&b.statements, depth, mode, true);
    }

    /// A block that runs at another time or place (a function body, a stored script block).
    fn block_elsewhere(&mut self, b: &Block, depth: usize, mode: Mode) {
        self.body(&b.statements, depth, mode, false);
    }

    fn statement(&mut self, st: &Statement, depth: usize, mode: Mode) {
        if !self.enter() {
            return;
        }
        match &st.kind {
            StatementKind::Chain(c) => self.chain(c, depth, mode),
            StatementKind::Assignment { target, value, .. } => {
                self.note_assignment_target(target, st.span.end);
                self.check_assignment_target(target, depth);
                if let Some(v) = single_expression(value) {
                    self.note_stored_blocks(v);
                }
                if !matches!(target.kind, ExprKind::Variable(_)) {
                    self.expr(target, depth, mode);
                }
                self.statement(value, depth, mode);
            }
            StatementKind::If {
                clauses,
                else_block,
            } => {
                for (cond, body) in clauses {
                    self.statement(cond, depth + 1, mode);
                    self.block(body, depth + 1, mode);
                }
                if let Some(b) = else_block {
                    self.block(b, depth + 1, mode);
                }
            }
            StatementKind::Foreach {
                variable,
                iterable,
                body,
            } => {
                self.note_write(&variable.name);
                if let Some(why) = session_write(variable) {
                    self.push_synthetic(format!("${}", variable.name), st.span, depth, why);
                }
                self.statement(iterable, depth + 1, mode);
                self.block(body, depth + 1, mode);
            }
            StatementKind::For {
                init,
                condition,
                step,
                body,
            } => {
                for s in [init, condition, step].into_iter().flatten() {
                    self.statement(s, depth + 1, mode);
                }
                self.block(body, depth + 1, mode);
            }
            StatementKind::While { condition, body } => {
                self.statement(condition, depth + 1, mode);
                self.block(body, depth + 1, mode);
            }
            StatementKind::Do {
                body, condition, ..
            } => {
                self.block(body, depth + 1, mode);
                self.statement(condition, depth + 1, mode);
            }
            StatementKind::Switch {
                subject, clauses, ..
            } => {
                self.statement(subject, depth + 1, mode);
                for c in clauses {
                    if let Some(p) = &c.pattern {
                        self.expr(p, depth + 1, mode);
                        // A script block pattern is a condition that runs.
                        if !is_literal_value(p) && !matches!(p.kind, ExprKind::Type(_)) {
                            self.push_synthetic(
                                p.span.text(self.src).to_string(),
                                p.span,
                                depth + 1,
                                "a `switch` pattern computed at run time runs as a condition if it is a script block".into(),
                            );
                        }
                    }
                    self.block(&c.body, depth + 1, mode);
                }
            }
            StatementKind::Function {
                name, params, body, ..
            } => {
                if let Some(why) = self.shadows(name) {
                    self.push_synthetic(format!("function {name}"), st.span, depth, why);
                }
                self.deferred.push(st.span);
                self.param_decls(params, depth + 1, mode);
                self.block_elsewhere(body, depth + 1, mode);
            }
            StatementKind::Param(params) => self.param_decls(params, depth, mode),
            StatementKind::NamedBlock { body, .. } => self.block(body, depth + 1, mode),
            StatementKind::Try {
                body,
                catches,
                finally,
            } => {
                self.block(body, depth + 1, mode);
                for (_, b) in catches {
                    self.block(b, depth + 1, mode);
                }
                if let Some(f) = finally {
                    self.block(f, depth + 1, mode);
                }
            }
            StatementKind::Trap { body, .. } => self.block_elsewhere(body, depth + 1, mode),
            StatementKind::Flow { value, .. } => {
                if let Some(v) = value {
                    self.statement(v, depth, mode);
                }
            }
        }
        self.leave();
    }

    /// Why defining a function or filter named `name` would change what an existing name runs,
    /// if it would. A call to a known command is resolved from the catalog (an OPATH `-Filter`
    /// block bound to it is data), so a same-named function, which runs first in this line and
    /// stays defined for later lines, would make the gate's reading of every later call wrong.
    /// Host hooks (`prompt`, `Out-Default`) run by themselves after every line.
    fn shadows(&self, name: &str) -> Option<String> {
        let bare: String = name
            .chars()
            .map(|c| if is_dash(c) { '-' } else { c })
            .collect();
        let lower = bare.to_lowercase();
        let bare = ["global:", "script:", "local:", "private:"]
            .iter()
            .find_map(|s| lower.strip_prefix(s))
            .unwrap_or(&lower);
        let bare = bare.rsplit('\\').next().unwrap_or(bare);
        let known = HOST_HOOKS.contains(&bare)
            || self.catalog.resolve_alias(bare).is_some()
            || self.catalog.command(bare).is_some();
        known.then(|| {
            format!(
                "defining `{name}` replaces an existing command or alias for the rest of the session"
            )
        })
    }

    /// Counts the variables an assignment writes. A member or element assignment
    /// (`$g['ForwardingSmtpAddress'] = …`) may change a hashtable that another variable also
    /// holds (`$g = $h`), so it makes every splat in the line uncertain, and the type of the
    /// variable it starts from. `end` is the end of the assignment statement.
    fn note_assignment_target(&mut self, target: &Expr, end: usize) {
        match &target.kind {
            ExprKind::Variable(v) => self.note_write_at(&v.name, Some(end)),
            ExprKind::Cast { operand, .. } => self.note_assignment_target(operand, end),
            ExprKind::List(items) => {
                for item in items {
                    self.note_assignment_target(item, end);
                }
            }
            _ => {
                if let ExprKind::Postfix { base, .. } = &target.kind {
                    if let ExprKind::Variable(v) = &base.kind {
                        self.note_typed_write(&v.name, None);
                    }
                }
                self.note_unseen_write(format!(
                    "`{}` assigns to a member or element, which may change a hashtable held by another variable",
                    target.span.text(self.src)
                ))
            }
        }
    }

    /// Assignments that change the session rather than a variable of the line: through a
    /// provider (`${function:Get-Mailbox} = '…'` defines a function from text, `$alias:fl = …`
    /// re-points an alias, `${C:\\x.ps1} = …` writes a file), to `$PSDefaultParameterValues`
    /// (adds parameters to later commands unseen), or into a member or element of an object
    /// (`$h['Set-Mailbox:ForwardingSmtpAddress'] = …` where `$h` may be a session object, as
    /// `.Add()` may be, which is why collection mutators are off the safe list).
    fn check_assignment_target(&mut self, target: &Expr, depth: usize) {
        match &target.kind {
            ExprKind::Variable(v) => {
                if let Some(why) = session_write(v) {
                    self.push_synthetic(format!("${}", v.name), target.span, depth, why);
                }
            }
            ExprKind::Cast { operand, .. } => self.check_assignment_target(operand, depth),
            ExprKind::List(items) => {
                for item in items {
                    self.check_assignment_target(item, depth);
                }
            }
            ExprKind::Postfix { .. } => self.push_synthetic(
                target.span.text(self.src).to_string(),
                target.span,
                depth,
                "assigning to a member or element changes an object the line may share with the session"
                    .into(),
            ),
            _ => self.push_synthetic(
                target.span.text(self.src).to_string(),
                target.span,
                depth,
                "the assignment target is not a plain variable".into(),
            ),
        }
    }

    fn param_decls(&mut self, params: &[ParamDecl], depth: usize, mode: Mode) {
        for p in params {
            self.note_write(&p.variable.name);
            if let Some(why) = session_write(&p.variable) {
                self.push_synthetic(format!("${}", p.variable.name), p.span, depth, why);
            }
            for a in &p.attributes {
                if a.args.is_none() {
                    // A type constraint converts the value given (and the default).
                    self.conversion(&a.name, p.span, depth + 1);
                }
                for (_, v) in a.args.iter().flatten() {
                    if let Some(v) = v {
                        self.expr(v, depth + 1, mode);
                    }
                }
            }
            if let Some(d) = &p.default {
                self.expr(d, depth + 1, mode);
            }
        }
    }

    fn chain(&mut self, c: &Chain, depth: usize, mode: Mode) {
        self.pipeline(&c.first, depth, mode);
        for (_, p) in &c.rest {
            self.pipeline(p, depth, mode);
        }
    }

    fn pipeline(&mut self, p: &Pipeline, depth: usize, mode: Mode) {
        for (i, el) in p.elements.iter().enumerate() {
            match el {
                PipelineElement::Command(c) => self.command(c, depth, i > 0, mode),
                PipelineElement::Expression { expr, redirections } => {
                    self.expr(expr, depth, mode);
                    self.redirections(redirections, depth, mode);
                }
            }
        }
    }

    fn command(&mut self, c: &Command, depth: usize, pipeline_input: bool, mode: Mode) {
        if mode == Mode::Data {
            // OPATH text: its words are not commands, but `$( )` inside still runs.
            if let CommandName::Expr(e) = &c.name {
                self.expr(e, depth, mode);
            }
            for r in &c.redirections {
                if let Some(t) = &r.target {
                    self.expr(t, depth, mode);
                }
            }
            for el in &c.elements {
                match el {
                    CommandElement::Parameter(p) => {
                        if let Some(v) = &p.value {
                            self.expr(v, depth, mode);
                        }
                    }
                    CommandElement::Argument(e) => self.expr(e, depth, mode),
                }
            }
            return;
        }
        let (name_text, name_span, dynamic): (Cow<'_, str>, Span, Option<String>) = match &c.name {
            CommandName::Word(w) => (Cow::Borrowed(w.text.as_str()), w.span, None),
            CommandName::Expr(e) => match &e.kind {
                ExprKind::String(s) if s.static_value().is_some() => {
                    (s.static_value().unwrap_or_default(), e.span, None)
                }
                ExprKind::ScriptBlock(b) => {
                    // `& { ... }` / `. { ... }`: the block's own commands are the invocations.
                    self.block(b, depth + 1, Mode::Code);
                    self.elements_as_code(c, depth);
                    return;
                }
                _ => {
                    self.expr(e, depth, mode);
                    let written = e.span.text(self.src).to_string();
                    let reason = format!(
                        "the command is computed at run time (`{}{written}`)",
                        match c.call_operator {
                            Some(CallOperator::DotSource) => ". ",
                            _ => "& ",
                        }
                    );
                    (Cow::Owned(written), e.span, Some(reason))
                }
            },
        };
        // The word's own text when it is written as it stands (no escapes): a long name is
        // then shared, not copied.
        let as_written = match &c.name {
            CommandName::Word(w) if w.text == name_span.text(self.src) => w.text.clone(),
            _ => SmolStr::new(name_span.text(self.src)),
        };
        let file_kind = if dynamic.is_some() {
            TaskKind::Command
        } else {
            self.command_kind(&name_text)
        };
        if file_kind != TaskKind::Command {
            self.file_command(c, file_kind, &name_text, name_span, depth, pipeline_input);
            return;
        }
        let (module, bare) = if dynamic.is_some() || !has_path_char(&name_text) {
            (None, name_text.as_ref())
        } else {
            split_module(&name_text)
        };
        // A default alias that not every platform defines (`sort`, `ls`, `ps` on Linux and
        // macOS) is the native program of that name there, and uncertain when the platform is.
        let on_platform = match (&dynamic, &module) {
            (None, None) => self.platform_alias(bare),
            _ => None,
        };
        let mut dynamic = dynamic;
        let mut kind = TaskKind::Command;
        match on_platform {
            Some((AliasUse::Program, _)) => kind = TaskKind::Program,
            Some((AliasUse::Uncertain, entry)) => {
                let target = entry.target;
                dynamic = Some(if entry.shell == aliases::Shell::WindowsPowerShell51 {
                    format!(
                        "`{bare}` is an alias of `{target}` in Windows PowerShell 5.1 but the native program `{bare}` in PowerShell 7, and which one runs is not known: write `{target}`"
                    )
                } else {
                    format!(
                        "`{bare}` is an alias of `{target}` on Windows but the native program `{bare}` on Linux and macOS, and the runspace's platform is not known (set `platform` in the policy's `[defaults]`)"
                    )
                });
            }
            Some((AliasUse::Alias, _)) | None => {}
        }
        let expanded = match (&module, on_platform) {
            (None, None | Some((AliasUse::Alias, _))) => self.catalog.resolve_alias(bare),
            _ => None,
        };
        let lookup_name = expanded.unwrap_or(bare);
        let meta = if dynamic.is_some() || kind == TaskKind::Program {
            None
        } else {
            self.catalog.command(lookup_name)
        };
        let name = meta.map_or_else(|| SmolStr::new(lookup_name), |m| m.name.clone());
        let module = module.map(SmolStr::new);

        let binding = self.bind(c, meta, &name, pipeline_input);
        let members = if dynamic.is_none() && name == FOREACH {
            self.foreach_members(&binding)
        } else {
            Vec::new()
        };
        let dynamic = if kind == TaskKind::Program {
            // A native program gets its arguments and pipeline input as text: it runs no
            // script block (its parameters are still unknown, so they stay uncertain).
            dynamic
        } else {
            dynamic.or(binding.code_from_value.clone()).or_else(|| {
                // Pipeline input may be a script block (`… | Select-Object -Expand
                // ScriptBlock`), which a parameter of a command without metadata may take by
                // value and run.
                (meta.is_none() && pipeline_input).then(|| {
                    format!("`{name}` is not in the catalog and gets pipeline input, which may be a script block it runs")
                })
            })
        };
        // `-AsJob` / `-InDisconnectedSession` (`Invoke-Command`, `ForEach-Object -Parallel`)
        // run the command's blocks in the background, past the line and its approval window.
        let in_background = binding.params.iter().any(|p| {
            p.resolved
                && (p.name.eq_ignore_ascii_case("asjob")
                    || p.name.eq_ignore_ascii_case("indisconnectedsession"))
        });
        let pipeline_params = match (pipeline_input, meta) {
            (false, _) => Vec::new(),
            (true, None) => vec![SmolStr::new_static("*")],
            (true, Some(m)) => m
                .pipeline_input_params()
                .filter(|p| {
                    !binding
                        .params
                        .iter()
                        .any(|b| b.resolved && b.name.eq_ignore_ascii_case(&p.name))
                })
                .map(|p| p.name.clone())
                .collect(),
        };
        let index = self.out.len();
        self.out.push(Invocation {
            name,
            module,
            as_written,
            span: name_span,
            depth,
            dynamic,
            params: binding.params,
            params_uncertain: binding.uncertain,
            pipeline_input,
            kind,
            pipeline_params,
        });
        // A splat may pass `-OutVariable` unseen.
        self.writes_by_name |= !binding.splats.is_empty();
        for (splat_at, variable, written, at) in binding.splats {
            self.pending.push(PendingSplat {
                invocation: index,
                param_index: splat_at,
                variable,
                written,
                at,
                body: self.body,
            });
        }
        for (member, span) in members {
            let display = format!(".{member}()");
            self.out.push(Invocation {
                dynamic: Some(format!(
                    "`ForEach-Object` may call member `{member}` of its input as a method"
                )),
                name: display.into(),
                module: None,
                as_written: span.text(self.src).into(),
                span,
                depth,
                params: Vec::new(),
                params_uncertain: None,
                pipeline_input: true,
                kind: TaskKind::Command,
                pipeline_params: Vec::new(),
            });
        }
        for written in &binding.variable_writes {
            match written {
                Ok(variable) => self.note_write(variable),
                Err(why) => self.note_unseen_write(why.clone()),
            }
        }
        for (e, m, when) in binding.walk {
            let when = if in_background { BlockUse::Later } else { when };
            if m == Mode::Code && when == BlockUse::Later {
                // Blocks kept for later run outside this line's approval window.
                self.note_stored_blocks(e);
            }
            match (&e.kind, m) {
                (ExprKind::ScriptBlock(b), Mode::Data) => self.block(b, depth + 1, Mode::Data),
                (ExprKind::ScriptBlock(b), Mode::Code) => {
                    self.body(&b.statements, depth + 1, Mode::Code, when == BlockUse::Here)
                }
                _ => self.expr(e, depth, Mode::Code),
            }
        }
        self.redirections(&c.redirections, depth, Mode::Code);
    }

    /// How PowerShell looks up the command name `text` (static, as the runspace sees it): a
    /// name with a folder (`\`, `/`), a drive or provider (`C:`, `FileSystem::`), or starting
    /// with `.` or `~` is a script or program run by its path; a name whose last part has an
    /// extension (`Get-Report.ps1`, `ping.exe`, `notes.txt`) is a file looked up on `PATH`,
    /// unless the catalog knows a command or alias of exactly that name. `Module\Name` with a
    /// plain module name stays a module-qualified command when the catalog knows `Name`.
    fn command_kind(&self, text: &str) -> TaskKind {
        // A cmdlet name (nearly every command word) has none of the characters that make a
        // path or a file name: one pass over it settles that.
        if !has_path_char(text) {
            return TaskKind::Command;
        }
        let known =
            |n: &str| self.catalog.command(n).is_some() || self.catalog.resolve_alias(n).is_some();
        if text.starts_with(['.', '~']) || text.contains(['/', ':']) {
            return TaskKind::Path;
        }
        if text.contains('\\') {
            // `Module\Name` runs the module's command; when no such command exists PowerShell
            // goes on to read the name as a relative path (`Scripts\Get-Report` runs
            // `.\Scripts\Get-Report.ps1`). Only a name the catalog knows is read as a command.
            return match split_module(text) {
                (Some(_), name) if !name.contains('.') && known(name) => TaskKind::Command,
                _ => TaskKind::Path,
            };
        }
        if text.contains('.') && !known(text) {
            return TaskKind::Program;
        }
        TaskKind::Command
    }

    /// A script or program run by path or by file name: its own kind of task, which no command
    /// glob covers. Its arguments are walked as code; parameters are not bound (the gate has no
    /// metadata for a script), so they are listed as written.
    fn file_command(
        &mut self,
        c: &Command,
        kind: TaskKind,
        text: &str,
        span: Span,
        depth: usize,
        pipeline_input: bool,
    ) {
        let name = match kind {
            TaskKind::Path => text.replace('/', "\\"),
            _ => text.to_string(),
        };
        // A policy names folders literally: a `..` step (Windows also trims trailing dots and
        // spaces, so `...` and `.. ` may be one) or a wildcard would let a path that matches
        // `path:C:\Scripts\*` run something outside that folder; a `:` after the drive names an
        // alternate data stream (`x.txt:y.ps1`) or goes through a provider (`FileSystem::`).
        let up = |seg: &str| {
            seg.trim_end_matches([' ', '.']).is_empty() && seg.matches('.').count() >= 2
        };
        let drive_colon = name.get(1..2) == Some(":");
        let colons = name.matches(':').count() - usize::from(drive_colon);
        let dynamic = if name.split('\\').any(up) {
            Some(format!(
                "the path `{name}` steps out of a folder with `..`, so it is not compared with path rules"
            ))
        } else if colons > 0 {
            Some(format!(
                "the path `{name}` names a stream or a provider after its drive, so it is not compared with path rules"
            ))
        } else if name.contains(['*', '?', '[', ']']) {
            Some(format!(
                "the path `{name}` has wildcard characters, which the runspace expands to files at run time"
            ))
        } else {
            None
        };
        let mut binding = self.bind(c, None, &name, pipeline_input);
        if let Some((_, _, written, _)) = binding.splats.first() {
            binding.uncertain.get_or_insert(format!(
                "splatted variable `{written}` gives parameters the gate does not see"
            ));
        }
        self.out.push(Invocation {
            name: name.into(),
            module: None,
            as_written: span.text(self.src).into(),
            span,
            depth,
            dynamic: dynamic.or(binding.code_from_value.clone()),
            params: binding.params,
            params_uncertain: binding.uncertain,
            pipeline_input,
            kind,
            // A script's parameters are not known: any of them may bind from the pipeline.
            pipeline_params: if pipeline_input {
                vec!["*".into()]
            } else {
                Vec::new()
            },
        });
        for written in &binding.variable_writes {
            match written {
                Ok(variable) => self.note_write(variable),
                Err(why) => self.note_unseen_write(why.clone()),
            }
        }
        for (e, m, when) in binding.walk {
            if m == Mode::Code && when == BlockUse::Later {
                // A script may keep a block it is given and run it after the line.
                self.note_stored_blocks(e);
            }
            self.expr(e, depth, Mode::Code);
        }
        self.redirections(&c.redirections, depth, Mode::Code);
    }

    /// A redirection to a file is `Out-File -FilePath target` (`-Append` for `>>`), and is
    /// decided as that command: writing a file is not harmless (a profile script runs later).
    /// Stream merges (`2>&1`) and `> $null` write nothing. In OPATH text it is only text.
    fn redirections(&mut self, rs: &[Redirection], depth: usize, mode: Mode) {
        for r in rs {
            let Some(t) = &r.target else { continue };
            self.expr(t, depth, mode);
            let to_null = matches!(&t.kind, ExprKind::Variable(v) if v.plain_name() == "null");
            if mode == Mode::Data || to_null {
                continue;
            }
            let mut params = vec![Param {
                name: "FilePath".into(),
                as_written: SmolStr::default(),
                value: value_of(t),
                resolved: true,
            }];
            if r.operator.contains(">>") {
                params.push(Param {
                    name: "Append".into(),
                    as_written: SmolStr::default(),
                    value: ParamValue::Switch,
                    resolved: true,
                });
            }
            self.out.push(Invocation {
                name: "Out-File".into(),
                module: None,
                as_written: r.span.text(self.src).into(),
                span: r.span,
                depth,
                dynamic: None,
                params,
                params_uncertain: None,
                pipeline_input: true,
                kind: TaskKind::Command,
                pipeline_params: Vec::new(),
            });
        }
    }

    /// `ForEach-Object Name` / `-MemberName Name` reads a property or calls a method of every
    /// input object (`{...} | % Invoke` runs a script block). Property and method cannot be told
    /// apart statically, so every member outside the safe method list is reported as dynamic.
    fn foreach_members(&self, binding: &Binding<'_, '_>) -> Vec<(String, Span)> {
        let named = binding
            .named_values
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("MemberName"))
            .map(|(_, e)| *e);
        // A positional argument that is not a block names a member (`% Name`, `% Invoke`).
        let positional = binding
            .positional_args
            .iter()
            .copied()
            .filter(|e| !matches!(e.kind, ExprKind::ScriptBlock(_)));
        let mut out = Vec::new();
        for e in named.chain(positional) {
            let member = match &e.kind {
                ExprKind::String(s) => s.static_value(),
                _ => None,
            };
            match member {
                Some(m) if safe::instance_method_is_safe(&m, false) => {}
                Some(m) => out.push((m.into_owned(), e.span)),
                None => out.push((e.span.text(self.src).to_string(), e.span)),
            }
        }
        out
    }

    /// Walks a command's arguments as code (used when the command itself is not an invocation).
    fn elements_as_code(&mut self, c: &Command, depth: usize) {
        for el in &c.elements {
            match el {
                CommandElement::Parameter(p) => {
                    if let Some(v) = &p.value {
                        self.expr(v, depth, Mode::Code);
                    }
                }
                CommandElement::Argument(e) => self.expr(e, depth, Mode::Code),
            }
        }
    }

    /// Binds a command's parameters and positional arguments using its metadata.
    fn bind<'c>(
        &self,
        c: &'c Command,
        meta: Option<&'a CommandMeta>,
        name: &str,
        pipeline_input: bool,
    ) -> Binding<'a, 'c> {
        // Sized once for the elements: growing these per parameter cost more than the binding.
        let n = c.elements.len();
        let mut b = Binding {
            params: Vec::with_capacity(n),
            walk: Vec::with_capacity(n),
            ..Binding::default()
        };
        // The values by name and the positional arguments are read only for `ForEach-Object`
        // (its member names): kept for it alone, so no other command pays for them.
        let members = name == FOREACH;
        let listed = Listed::new(name);
        let mut positional = 0usize;
        let mut positional_bound = 0usize;
        let mut slots_exhausted = false;
        let mut i = 0usize;
        let elements = &c.elements;
        while let Some(el) = elements.get(i) {
            i += 1;
            match el {
                CommandElement::Parameter(p) => {
                    let written = SmolStr::new(p.token_span.text(self.src));
                    let (canon, resolved, pmeta) = match meta
                        .map(|m| cached_lookup(&self.param_cache, m, &p.name))
                    {
                        Some(ParamLookup::Found(pm)) => (pm.name.clone(), true, Some(pm)),
                        Some(ParamLookup::Ambiguous(options)) => {
                            b.uncertain.get_or_insert(format!(
                                "parameter `-{}` is ambiguous: it could be {}",
                                p.name,
                                options.join(", ")
                            ));
                            (p.name.clone(), false, None)
                        }
                        Some(ParamLookup::NotFound) => {
                            b.uncertain
                                .get_or_insert(format!("`{name}` has no parameter `-{}`", p.name));
                            (p.name.clone(), false, None)
                        }
                        None => (p.name.clone(), false, None),
                    };
                    let is_switch = pmeta.is_some_and(|m| m.switch);
                    let value_expr = match &p.value {
                        Some(v) => Some(v),
                        None if is_switch => None,
                        None => match elements.get(i) {
                            Some(CommandElement::Argument(e))
                                if !matches!(e.kind, ExprKind::Splat(_)) =>
                            {
                                i += 1;
                                Some(e)
                            }
                            _ => None,
                        },
                    };
                    let value = match value_expr {
                        None => ParamValue::Switch,
                        Some(e) => {
                            if let Some(pm) = pmeta.filter(|_| resolved && members) {
                                b.named_values.push((pm.name.as_str(), e));
                            }
                            if let Some(why) =
                                pmeta.and_then(|m| code_from_value(&listed, m, pipeline_input, e))
                            {
                                b.code_from_value.get_or_insert(why);
                            }
                            if let Some(why) = sets_session_variable(&canon, e) {
                                b.code_from_value.get_or_insert(why);
                            }
                            if resolved && is_variable_setter(&canon) {
                                b.variable_writes.push(variable_named_by(&canon, e));
                            }
                            if meta.is_none() && !is_literal_value(e) {
                                b.code_from_value.get_or_insert(format!(
                                    "`{name}` is not in the catalog, so `-{canon}` may be a parameter that runs a script block, and it gets a value computed at run time"
                                ));
                            }
                            let data = pmeta.is_some_and(|m| is_data_param(m, pipeline_input))
                                && matches!(e.kind, ExprKind::ScriptBlock(_));
                            b.walk.push((
                                e,
                                if data { Mode::Data } else { Mode::Code },
                                block_use(&listed, meta, pmeta),
                            ));
                            if data {
                                block_text(e, self.src)
                            } else {
                                value_of(e)
                            }
                        }
                    };
                    let value = match pmeta.filter(|_| resolved) {
                        Some(pm) => typed(pm.class.value_kind(), value),
                        None => value,
                    };
                    b.params.push(Param {
                        name: canon,
                        as_written: written,
                        value,
                        resolved,
                    });
                }
                CommandElement::Argument(e) => {
                    if let ExprKind::Splat(v) = &e.kind {
                        b.splats.push((
                            b.params.len(),
                            v.name.clone(),
                            e.span.text(self.src).to_string(),
                            e.span.start,
                        ));
                        continue;
                    }
                    if members {
                        b.positional_args.push(e);
                    }
                    // Once a slot has no candidate in any set, no later slot has one either
                    // (named parameters only remove slots): skip the lookups, which would
                    // otherwise cost a scan of every set per argument.
                    let candidates = match meta {
                        Some(m) if !slots_exhausted => {
                            // A parameter bound by name or by position (a resolved one in
                            // `params`, as the catalog spells it) takes its slot out of the
                            // list: count only the arguments before this one whose slot is
                            // still in it.
                            let named = b.params.iter().filter(|p| p.resolved);
                            m.positional_candidates_of(
                                positional - positional_bound,
                                named.map(|p| p.name.as_str()),
                            )
                        }
                        _ => Vec::new(),
                    };
                    slots_exhausted |= meta.is_some() && candidates.is_empty();
                    let bound = match candidates.as_slice() {
                        [one] => Some(*one),
                        // Sets disagree: a script block literal can only bind to the one
                        // ScriptBlock-typed candidate (`? { }` is `-FilterScript`).
                        _ if matches!(e.kind, ExprKind::ScriptBlock(_)) => {
                            let blocks: Vec<&ParamMeta> = candidates
                                .iter()
                                .copied()
                                .filter(|p| p.is_script_block())
                                .collect();
                            match blocks.as_slice() {
                                [one] => Some(*one),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    positional += 1;
                    // Unbound, it runs as the most restrictive of the candidates would.
                    let when = match bound {
                        Some(pm) => block_use(&listed, meta, Some(pm)),
                        None => {
                            let uses: Vec<BlockUse> = candidates
                                .iter()
                                .map(|pm| block_use(&listed, meta, Some(pm)))
                                .collect();
                            if meta.is_none() || uses.contains(&BlockUse::Later) {
                                BlockUse::Later
                            } else if !uses.is_empty() && uses.iter().all(|u| *u == BlockUse::Here)
                            {
                                BlockUse::Here
                            } else {
                                BlockUse::Elsewhere
                            }
                        }
                    };
                    b.walk.push((e, Mode::Code, when));
                    // Unbound but possibly code: the binder picks among the candidates by the
                    // value's type (`? $sb` is `-FilterScript`), and a command without metadata
                    // may have a parameter that runs a script block.
                    let maybe_code = bound.is_none()
                        && (candidates
                            .iter()
                            .any(|m| runs_block_values(&listed, m, pipeline_input))
                            || meta.is_none());
                    if maybe_code && !is_literal_value(e) {
                        b.code_from_value.get_or_insert(format!(
                            "positional argument {positional} of `{name}` may bind to a parameter that runs a script block, and is computed at run time"
                        ));
                    }
                    match bound {
                        Some(pm) => {
                            if let Some(why) = code_from_value(&listed, pm, pipeline_input, e) {
                                b.code_from_value.get_or_insert(why);
                            }
                            positional_bound += 1;
                            b.params.push(Param {
                                name: pm.name.clone(),
                                as_written: SmolStr::default(),
                                value: typed(pm.class.value_kind(), value_of(e)),
                                resolved: true,
                            });
                        }
                        None => {
                            b.uncertain.get_or_insert(match meta {
                                Some(_) => format!(
                                    "positional argument {positional} of `{name}` matches no single parameter"
                                ),
                                None => format!(
                                    "`{name}` is not in the catalog, so its positional argument {positional} cannot be bound"
                                ),
                            });
                            b.params.push(Param {
                                name: SmolStr::default(),
                                as_written: SmolStr::default(),
                                value: value_of(e),
                                resolved: false,
                            });
                        }
                    }
                }
            }
        }
        if !b.splats.is_empty() && positional > 0 {
            b.uncertain.get_or_insert(
                "positional arguments next to splatting cannot be bound with certainty".into(),
            );
        }
        b
    }

    /// Something in the line that may set variables without naming them, if there is one:
    /// a dynamic invocation, a command the catalog does not know (a function or script may
    /// assign `$global:h`, and a dot-sourced one any variable), or a command that sets
    /// variables by name or path.
    fn invisible_writer(&self) -> Option<String> {
        self.out.iter().find_map(|inv| {
            if inv.dynamic.is_some() {
                return Some(format!(
                    "`{}` runs code the gate cannot see, which may set variables",
                    inv.as_written
                ));
            }
            if inv.kind == TaskKind::Method {
                // A .NET method of a known type that reaches no code (those are dynamic):
                // it cannot set a PowerShell variable.
                return None;
            }
            if self.catalog.command(&inv.name).is_none() {
                return Some(format!(
                    "`{}` is not in the catalog: a function or script may set variables of its caller",
                    inv.as_written
                ));
            }
            TOUCHES_VARIABLES
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&inv.name))
                .then(|| format!("`{}` may set variables by name", inv.name))
        })
    }

    /// The literal hashtable a splat certainly receives (index into `splat_sources`), or why
    /// its value when the command runs is not certain. Certain means: one literal assignment
    /// of that exact variable, standing in the same body as the use or in one the use's body
    /// runs in while the line runs, executed before the use in straight-line order, and no
    /// other writer of the variable of any kind anywhere in the line.
    /// `by_key` lists the sources of each variable (by [`var_key`]).
    fn splat_source(
        &self,
        p: &PendingSplat,
        by_key: &HashMap<String, Vec<usize>>,
    ) -> Result<usize, String> {
        if let Some(why) = &self.writes_unseen {
            return Err(why.clone());
        }
        if p.variable.contains(':') {
            return Err(
                "a scope- or drive-qualified name may reach another variable than the line assigns"
                    .into(),
            );
        }
        let key = var_key(&p.variable);
        if AUTOMATIC_VARIABLES.contains(&key.as_str()) {
            return Err("PowerShell sets this automatic variable itself".into());
        }
        let index = match by_key.get(&key).map(Vec::as_slice) {
            Some([one]) => *one,
            None | Some([]) => {
                return Err("it is not a literal hashtable assigned in the line".into())
            }
            Some(_) => return Err("it is assigned more than once in the line".into()),
        };
        let source = self
            .splat_sources
            .get(index)
            .ok_or_else(|| "its assignment is not known".to_string())?;
        if self.writes.get(&key).copied().unwrap_or(0) != 1 {
            return Err("the line also sets it in another way".into());
        }
        if !same_variable(&source.name, &p.variable) {
            return Err(format!(
                "it is spelt `{}` where assigned, which may be another variable",
                source.name
            ));
        }
        if source.end > p.at {
            return Err("it is used before the line assigns it".into());
        }
        let mut body = p.body;
        while body != source.body {
            let b = self
                .body_at(body)
                .ok_or_else(|| "its scope is not known".to_string())?;
            if !b.runs_here {
                return Err(
                    "it is used in code that runs at another time or place (a function, a stored or handed-over script block), when the variable may hold something else"
                        .into(),
                );
            }
            body = b
                .parent
                .ok_or_else(|| "it is assigned in a block the use does not run in".to_string())?;
        }
        Ok(index)
    }

    /// Fills in the parameters of splatted literal hashtables, or marks them uncertain.
    fn resolve_splats(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            // Nothing is splatted (nearly every line): what may write variables unseen, and
            // which assignments are splat sources, matter only to a splat.
            return;
        }
        if let Some(why) = self.invisible_writer() {
            self.note_unseen_write(why);
        }
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, source) in self.splat_sources.iter().enumerate() {
            by_key.entry(var_key(&source.name)).or_default().push(i);
        }
        let mut found: Vec<Result<usize, String>> = pending
            .iter()
            .map(|p| self.splat_source(p, &by_key))
            .collect();
        // A splat whose keys are unknown may hold `OutVariable = 'h'` and so set any other
        // splatted variable: with one of them uncertain, none is certain.
        if let Some(first) = pending
            .iter()
            .zip(&found)
            .find_map(|(p, f)| f.is_err().then_some(p.written.clone()))
        {
            for f in &mut found {
                if f.is_ok() {
                    *f = Err(format!(
                        "`{first}` in the same line splats unknown keys, which may set this variable too (`-OutVariable`)"
                    ));
                }
            }
        }
        // (invocation, parameter index to insert at, parameters), applied at the end in one
        // pass per invocation: splicing each one in would be quadratic in a long line.
        let mut inserts: Vec<(usize, usize, Vec<Param>)> = Vec::new();
        for (p, found) in pending.into_iter().zip(found).rev() {
            let source = found.and_then(|i| {
                self.splat_sources
                    .get(i)
                    .ok_or_else(|| "no source".to_string())
            });
            let Some(inv) = self.out.get_mut(p.invocation) else {
                continue;
            };
            let source = match source {
                Ok(source) => source,
                Err(why) => {
                    inv.params_uncertain.get_or_insert(format!(
                        "the value of splatted variable `{}` when the command runs is not certain: {why}",
                        p.written
                    ));
                    // Unknown keys may bind a script block to a parameter that runs it.
                    let runs_blocks = match self.catalog.command(&inv.name) {
                        Some(m) => {
                            let listed = Listed::new(&inv.name);
                            m.parameters
                                .iter()
                                .any(|pm| runs_block_values(&listed, pm, inv.pipeline_input))
                        }
                        None => true,
                    };
                    if runs_blocks && inv.dynamic.is_none() {
                        inv.dynamic = Some(format!(
                            "splatted variable `{}` may give code to a parameter that runs it",
                            p.written
                        ));
                    }
                    continue;
                }
            };
            let meta = if inv.dynamic.is_some() {
                None
            } else {
                self.catalog.command(&inv.name)
            };
            let mut params = Vec::new();
            for (key, value) in &source.entries {
                let (name, kind) = match meta.map(|m| cached_lookup(&self.param_cache, m, key)) {
                    Some(ParamLookup::Found(pm)) => {
                        // Splatted values are not kept as expressions: a computed one and a
                        // block literal both count as code given to a parameter that runs it.
                        let computed = matches!(value, ParamValue::Dynamic);
                        if computed
                            && runs_block_values(&Listed::new(&inv.name), pm, inv.pipeline_input)
                            && inv.dynamic.is_none()
                        {
                            inv.dynamic = Some(format!(
                                "splatted `{}` gives `-{}` a value computed at run time, and it runs script blocks",
                                p.written, pm.name
                            ));
                        }
                        (pm.name.clone(), Some(pm.class.value_kind()))
                    }
                    Some(ParamLookup::Ambiguous(_)) | Some(ParamLookup::NotFound) => {
                        inv.params_uncertain.get_or_insert(format!(
                            "splatted key `{key}` of `{}` is not a parameter of `{}`",
                            p.written, inv.name
                        ));
                        (SmolStr::new(key), None)
                    }
                    None => (SmolStr::new(key), None),
                };
                params.push(Param {
                    name,
                    as_written: SmolStr::new(&p.written),
                    value: match kind {
                        Some(kind) => typed(kind, value.clone()),
                        None => value.clone(),
                    },
                    resolved: kind.is_some(),
                });
            }
            inserts.push((p.invocation, p.param_index, params));
        }
        inserts.reverse();
        // Stable: splats at the same place stay in source order.
        inserts.sort_by_key(|(index, at, _)| (*index, *at));
        let mut rest = inserts.into_iter().peekable();
        while let Some((index, at, params)) = rest.next() {
            let mut group = vec![(at, params)];
            while let Some((_, at, params)) = rest.next_if(|(i, _, _)| *i == index) {
                group.push((at, params));
            }
            let Some(inv) = self.out.get_mut(index) else {
                continue;
            };
            let own = std::mem::take(&mut inv.params);
            let mut merged = Vec::with_capacity(own.len());
            let mut group = group.into_iter().peekable();
            for (i, param) in own.into_iter().enumerate() {
                while let Some((_, ps)) = group.next_if(|(at, _)| *at <= i) {
                    merged.extend(ps);
                }
                merged.push(param);
            }
            for (_, ps) in group {
                merged.extend(ps);
            }
            inv.params = merged;
        }
    }

    fn expr(&mut self, e: &Expr, depth: usize, mode: Mode) {
        if !self.enter() {
            return;
        }
        match &e.kind {
            ExprKind::String(s) => {
                for part in &s.parts {
                    match part {
                        StringPart::Subexpression(stmts, _) => {
                            self.statements(stmts, depth + 1, Mode::Code)
                        }
                        StringPart::Variable(v, span) => self.variable_read(v, *span, depth),
                        StringPart::Text(_) => {}
                    }
                }
            }
            ExprKind::Variable(v) | ExprKind::Splat(v) => self.variable_read(v, e.span, depth),
            ExprKind::Number(_) | ExprKind::Type(_) => {}
            ExprKind::List(items) => {
                for item in items {
                    self.expr(item, depth, mode);
                }
            }
            ExprKind::ArraySubexpression(stmts) | ExprKind::Subexpression(stmts) => {
                self.statements(stmts, depth + 1, Mode::Code);
            }
            ExprKind::Hashtable(entries) => {
                for entry in entries {
                    self.expr(&entry.key, depth + 1, mode);
                    self.statement(&entry.value, depth + 1, mode);
                }
            }
            ExprKind::ScriptBlock(b) => self.block_elsewhere(b, depth + 1, mode),
            ExprKind::Paren(st) => self.statement(st, depth + 1, mode),
            ExprKind::Cast { type_name, operand } => {
                if is_ref_type(type_name) {
                    // `[ref]$h` lets whatever receives it assign `$h`.
                    self.note_written_operand(operand);
                }
                self.expr(operand, depth, mode);
                if matches!(operand.kind, ExprKind::Hashtable(_)) {
                    self.hashtable_conversion(type_name, e.span, depth);
                } else {
                    self.conversion(type_name, e.span, depth);
                }
            }
            ExprKind::Unary { op, operand } => {
                if op == "++" || op == "--" {
                    self.note_written_operand(operand);
                }
                self.expr(operand, depth, mode)
            }
            ExprKind::Binary { first, rest } => {
                self.expr(first, depth, mode);
                for (op, operand) in rest {
                    self.expr(operand, depth, mode);
                    // `-replace` runs a script block replacement (PowerShell 7) and `-split` a
                    // script block predicate; a computed operand may be one.
                    let runs_blocks = matches!(
                        op.to_ascii_lowercase().as_str(),
                        "-replace" | "-ireplace" | "-creplace" | "-split" | "-isplit" | "-csplit"
                    );
                    if runs_blocks && !is_literal_value(operand) {
                        self.push_synthetic(
                            format!("{op} {}", operand.span.text(self.src)),
                            e.span,
                            depth,
                            format!("`{op}` runs a script block operand, and gets one computed at run time"),
                        );
                    }
                    if op.eq_ignore_ascii_case("-as") {
                        match &operand.kind {
                            ExprKind::Type(t) => self.conversion(t, e.span, depth),
                            ExprKind::String(s) if s.static_value().is_some() => {
                                let t = s.static_value().unwrap_or_default();
                                self.conversion(&t, e.span, depth);
                            }
                            _ => self.push_synthetic(
                                format!("-as {}", operand.span.text(self.src)),
                                e.span,
                                depth,
                                "`-as` converts to a type computed at run time, whose constructor may act or run code".into(),
                            ),
                        }
                    }
                }
            }
            ExprKind::Postfix { base, ops } => {
                if ops.iter().any(|op| matches!(op.kind, PostfixKind::Step(_))) {
                    self.note_written_operand(e);
                }
                self.expr(base, depth, mode);
                self.postfix_ops(base, ops, depth, mode);
            }
        }
        self.leave();
    }

    /// A conversion to the type written `type_name` (cast, `-as`, typed variable or parameter).
    /// Building a value of a type on the pure list is harmless; any other known type runs a
    /// constructor or setters that may act, which is the task `[Full.Name]::new`; a type the
    /// gate does not know, or one whose conversion runs code, is dynamic.
    fn conversion(&mut self, type_name: &str, span: Span, depth: usize) {
        if is_scriptblock_type(type_name) {
            self.push_synthetic(
                format!("[{type_name}]"),
                span,
                depth,
                "a conversion to a script block turns text into code".into(),
            );
            return;
        }
        match types::lookup(type_name) {
            Some(t) if t.full == "System.Management.Automation.PSReference" => {
                // `[ref]$v` lets a method or command write `$v`.
                self.writes_by_name = true;
            }
            Some(t) if t.pure_conversion => {}
            Some(t) if t.calls == Calls::Code => self.push_dynamic_method(
                format!("[{}]::new", t.full),
                span,
                depth,
                format!(
                    "a conversion to `[{}]` creates an object that runs or reaches code",
                    t.full
                ),
            ),
            Some(t) => self.push_method(format!("[{}]::new", t.full), span, depth),
            None => self.push_dynamic_method(
                format!("[{type_name}]::new"),
                span,
                depth,
                format!(
                    "a conversion to `[{type_name}]`, a type the gate does not know, may run its constructor"
                ),
            ),
        }
    }

    /// `[T]@{ Name = value }`: PowerShell builds a `T` with its default constructor and runs
    /// the setter of each named property. Only the types that hold the entries as data
    /// (hashtables, ordered dictionaries, custom objects) are harmless; for any other type the
    /// setters are the task `[Full.Name]::new`, even when a plain conversion to it is pure.
    fn hashtable_conversion(&mut self, type_name: &str, span: Span, depth: usize) {
        const DATA: &[&str] = &[
            "System.Collections.Hashtable",
            "System.Collections.Specialized.OrderedDictionary",
            "System.Management.Automation.PSObject",
            "System.Object",
        ];
        match types::lookup(type_name) {
            Some(t) if DATA.contains(&t.full.as_str()) => {}
            Some(t) if t.calls != Calls::Code => {
                self.push_method(format!("[{}]::new", t.full), span, depth)
            }
            _ => self.conversion(type_name, span, depth),
        }
    }

    /// A static method call `[type_name]::method(args)`: nothing to decide when it is on the
    /// safe list; the task `[Full.Name]::Method` when the type is known; dynamic when the type
    /// is unknown, its calls run code, or a delegate-taking type gets arguments the line does
    /// not show.
    fn static_call(
        &mut self,
        type_name: &str,
        method: &str,
        args: &[Expr],
        span: Span,
        depth: usize,
    ) {
        let Some(t) = types::lookup(type_name) else {
            self.push_dynamic_method(
                format!("[{type_name}]::{method}"),
                span,
                depth,
                format!(
                    "method call `[{type_name}]::{method}` is on a type the gate does not know"
                ),
            );
            return;
        };
        if safe::static_method_is_safe(&t.full, method) {
            return;
        }
        let task = format!("[{}]::{method}", t.full);
        match t.calls {
            Calls::Code => self.push_dynamic_method(
                task.clone(),
                span,
                depth,
                format!("method call `{task}` runs or reaches code"),
            ),
            Calls::Delegates if !args.iter().all(is_literal_value) => self.push_dynamic_method(
                task.clone(),
                span,
                depth,
                format!(
                    "method call `{task}` may take a script block as a delegate, and gets arguments computed at run time"
                ),
            ),
            Calls::Tasks | Calls::Delegates => self.push_method(task, span, depth),
        }
    }

    /// A .NET method call or conversion that cannot be decided as a task: dynamic, but still
    /// of the method kind, so a deny rule naming it (`[System.Diagnostics.Process]::*`) applies.
    fn push_dynamic_method(&mut self, name: String, span: Span, depth: usize, reason: String) {
        self.out.push(Invocation {
            name: name.into(),
            module: None,
            as_written: span.text(self.src).into(),
            span,
            depth,
            dynamic: Some(reason),
            params: Vec::new(),
            params_uncertain: None,
            pipeline_input: false,
            kind: TaskKind::Method,
            pipeline_params: Vec::new(),
        });
    }

    /// A .NET method task a policy decides (`[System.IO.File]::ReadAllBytes`).
    fn push_method(&mut self, name: String, span: Span, depth: usize) {
        self.out.push(Invocation {
            name: name.into(),
            module: None,
            as_written: span.text(self.src).into(),
            span,
            depth,
            dynamic: None,
            params: Vec::new(),
            params_uncertain: None,
            pipeline_input: false,
            kind: TaskKind::Method,
            pipeline_params: Vec::new(),
        });
    }

    fn variable_read(&mut self, v: &VarRef, span: Span, depth: usize) {
        if let Some(why) = provider_read(v) {
            self.push_synthetic(format!("${}", v.name), span, depth, why);
        }
    }

    fn push_synthetic(&mut self, name: String, span: Span, depth: usize, reason: String) {
        self.out.push(Invocation {
            name: name.into(),
            module: None,
            as_written: span.text(self.src).into(),
            span,
            depth,
            dynamic: Some(reason),
            params: Vec::new(),
            params_uncertain: None,
            pipeline_input: false,
            kind: TaskKind::Command,
            pipeline_params: Vec::new(),
        });
    }

    /// Member access is harmless; method calls outside the safe list become dynamic invocations.
    fn postfix_ops(&mut self, base: &Expr, ops: &[PostfixOp], depth: usize, mode: Mode) {
        for (i, op) in ops.iter().enumerate() {
            match &op.kind {
                PostfixKind::Index(ix) => self.expr(ix, depth, mode),
                PostfixKind::Step(_) => {}
                PostfixKind::Member {
                    name,
                    is_static,
                    args,
                } => {
                    if let MemberName::Dynamic(d) = name {
                        self.expr(d, depth, mode);
                    }
                    let Some(args) = args else { continue };
                    for a in args {
                        self.expr(a, depth, mode);
                    }
                    // Even in OPATH text a method call is reported: how much of a filter the
                    // client evaluates before sending it is not something to bet on.
                    let static_type = match (&base.kind, i, is_static) {
                        (ExprKind::Type(t), 0, true) => Some(t.as_str()),
                        _ => None,
                    };
                    let span = Span::new(base.span.start, op.span.end);
                    let (display, safe) = match (name, static_type) {
                        (MemberName::Name(m), Some(t)) => {
                            self.static_call(t, m, args, span, depth);
                            continue;
                        }
                        (MemberName::Name(m), None)
                            if !is_static
                                && i == 0
                                && !safe::instance_method_is_safe(m, false)
                                && safe::typed_method_may_be_safe(m) =>
                        {
                            if let ExprKind::Variable(v) = &base.kind {
                                self.pending_typed.push(PendingTyped {
                                    variable: var_key(&v.name),
                                    method: m.clone(),
                                    at: base.span.start,
                                    span,
                                    depth,
                                    body: self.body,
                                });
                                continue;
                            }
                            let string_receiver = is_string_expr(base);
                            (
                                format!(".{m}()"),
                                safe::instance_method_is_safe(m, string_receiver),
                            )
                        }
                        (MemberName::Name(m), None) if !is_static => {
                            let string_receiver = i == 0 && is_string_expr(base);
                            (
                                format!(".{m}()"),
                                safe::instance_method_is_safe(m, string_receiver),
                            )
                        }
                        (MemberName::Name(m), None) => (format!("::{m}()"), false),
                        (MemberName::Dynamic(d), _) => {
                            (format!(".{}()", d.span.text(self.src)), false)
                        }
                    };
                    if safe {
                        continue;
                    }
                    self.out.push(Invocation {
                        dynamic: Some(format!("method call `{display}` is not on the safe list")),
                        name: display.into(),
                        module: None,
                        as_written: span.text(self.src).into(),
                        span,
                        depth,
                        params: Vec::new(),
                        params_uncertain: None,
                        pipeline_input: false,
                        kind: TaskKind::Command,
                        pipeline_params: Vec::new(),
                    });
                }
            }
        }
    }
}

/// When a script block given to a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockUse {
    /// Where it stands, in this runspace, while the line runs (`ForEach-Object { }`).
    Here,
    /// Now, but in another scope or place (`Invoke-Command`, `Start-Job`'s process, a
    /// delay-bind block).
    Elsewhere,
    /// Kept to run later (an event action, a breakpoint action, a script method), or given to
    /// a command whose metadata is unknown, which may keep it.
    Later,
}

/// When a script block bound to parameter `param` of `command` runs.
fn block_use(
    command: &Listed<'_>,
    meta: Option<&CommandMeta>,
    param: Option<&ParamMeta>,
) -> BlockUse {
    if meta.is_none() {
        return BlockUse::Later;
    }
    if param.is_some_and(|p| command.stores_code(&p.name)) {
        return BlockUse::Later;
    }
    // `ForEach-Object -Parallel` runs its block in other runspaces.
    if RUNS_BLOCKS_HERE
        .iter()
        .any(|c| c.eq_ignore_ascii_case(command.name))
        && !param.is_some_and(|p| p.name.eq_ignore_ascii_case("parallel"))
    {
        BlockUse::Here
    } else {
        BlockUse::Elsewhere
    }
}

/// Commands that run the script blocks they are given at once, in the caller's runspace,
/// lowercased.
const RUNS_BLOCKS_HERE: &[&str] = &[
    "foreach-object",
    "where-object",
    "sort-object",
    "select-object",
    "group-object",
    "measure-object",
    "compare-object",
    "format-table",
    "format-list",
    "format-wide",
    "format-custom",
    "convertto-html",
    "measure-command",
    "trace-command",
];

/// Parameters that keep a script block to run later, outside the line (and outside any
/// approval's window), lowercased as `command:parameter`.
static STORES_CODE: PairTable = PairTable::new(&[
    "add-member:value",
    "add-member:secondvalue",
    "update-typedata:value",
    "update-typedata:secondvalue",
    "register-argumentcompleter:scriptblock",
    "register-engineevent:action",
    "register-objectevent:action",
    "register-wmievent:action",
    "register-cimindicationevent:action",
    "set-psbreakpoint:action",
    "start-job:scriptblock",
    "start-job:initializationscript",
    "start-threadjob:scriptblock",
    "start-threadjob:initializationscript",
    "register-scheduledjob:scriptblock",
    "register-scheduledjob:initializationscript",
    "set-psreadlinekeyhandler:scriptblock",
]);

/// The command whose member names [`Walker::foreach_members`] reads from its binding (its
/// canonical name, as the catalog spells it).
const FOREACH: &str = "ForEach-Object";

#[derive(Debug, Default)]
struct Binding<'a, 'c> {
    params: Vec<Param>,
    uncertain: Option<String>,
    /// (param index to insert at, variable, text as written, offset)
    splats: Vec<(usize, String, String, usize)>,
    /// Argument expressions to walk for nested invocations, with how to treat script blocks
    /// and when a block given there runs.
    walk: Vec<(&'c Expr, Mode, BlockUse)>,
    /// Variables set through `-OutVariable` and its kin: the name, or why it is not known.
    variable_writes: Vec<Result<String, String>>,
    /// Values bound by name (resolved canonical name, value); for [`FOREACH`] only.
    named_values: Vec<(&'a str, &'c Expr)>,
    /// Arguments bound (or not) by position; for [`FOREACH`] only.
    positional_args: Vec<&'c Expr>,
    /// Set when a ScriptBlock-typed parameter receives something other than a block literal
    /// (`Invoke-Command -ScriptBlock $sb`): the code it runs is not visible in the line.
    code_from_value: Option<String>,
}

/// Commands that write a variable named by a string, lowercase: the variable cmdlets, and the
/// item cmdlets, which write `variable:` items.
const VARIABLE_WRITERS: &[&str] = &[
    "set-variable",
    "new-variable",
    "clear-variable",
    "remove-variable",
    "get-variable",
    "import-localizeddata",
    "set-item",
    "new-item",
    "clear-item",
    "remove-item",
    "copy-item",
    "move-item",
    "rename-item",
];

/// Variables whose value changes how later commands bind (`Set-Variable` is denied for the same
/// reason), lowercased.
const SESSION_VARIABLES: &[&str] = &["psdefaultparametervalues"];

/// Provider drives whose items a `$drive:name` read only looks at session state or the
/// environment; any other drive (`${C:\\secret.txt}`, `$HKLM:…`) reads through a provider, as
/// `Get-Content` and `Get-Item` would, and `${function:Remove-Mailbox}` is code as a value
/// (an Exchange proxy function's body), only useful to run it.
const READABLE_DRIVES: &[&str] = &["env", "variable", "alias"];

/// The drive a variable reference goes through (`env` for `$env:PATH`, `c` for `${C:\\x}`), if
/// any; scope qualifiers are not drives.
fn drive_of(v: &VarRef) -> Option<String> {
    let plain = v.plain_name();
    let (drive, _) = plain.split_once(':')?;
    Some(drive.to_string())
}

/// Parameters that set a variable named by their value (common parameters, `Tee-Object
/// -Variable`), lowercased.
const VARIABLE_SETTERS: &[&str] = &[
    "outvariable",
    "pipelinevariable",
    "errorvariable",
    "warningvariable",
    "informationvariable",
    "variable",
    "bindingvariable",
];

/// The built-in aliases of [`VARIABLE_SETTERS`], lowercased.
const VARIABLE_SETTER_ALIASES: &[&str] = &["ov", "pv", "ev", "wv", "iv"];

fn is_variable_setter(param: &str) -> bool {
    VARIABLE_SETTERS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(param))
}

/// Whether hashtable key `key`, splatted, may bind to a parameter that sets a variable: a
/// setter's name, a prefix of one, or one of their aliases.
fn names_variable_setter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !key.is_empty()
        && (VARIABLE_SETTERS.iter().any(|s| s.starts_with(&key))
            || VARIABLE_SETTER_ALIASES.contains(&key.as_str()))
}

/// The variable a setter parameter (`-OutVariable +h`) names, or why it is not known.
fn variable_named_by(param: &str, value: &Expr) -> Result<String, String> {
    scalar_of(value)
        .map(|name| name.trim_start_matches('+').to_string())
        .ok_or_else(|| format!("`-{param}` sets a variable whose name is computed at run time"))
}

/// Why common parameter `param` (`-OutVariable`, `-PipelineVariable`, …) given `value` would
/// set a session variable (or one through a drive), if it would.
fn sets_session_variable(param: &str, value: &Expr) -> Option<String> {
    if !is_variable_setter(param) {
        return None;
    }
    let name = match variable_named_by(param, value) {
        Ok(name) => name,
        Err(why) => return Some(why),
    };
    let v = VarRef {
        name,
        braced: false,
    };
    session_write(&v)
}

/// The key under which writes to a variable are counted: scope qualifiers and the
/// `variable:` drive removed, case folded loosely. PowerShell compares variable names
/// ignoring case (.NET `OrdinalIgnoreCase`); folding through upper and then lower case puts
/// every pair it may consider equal under one key, so a write is never missed (it may merge
/// names PowerShell keeps apart, which only makes a splat uncertain).
fn var_key(name: &str) -> String {
    // ASCII folds the same through upper and lower case as through lower case alone.
    let folded = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        name.to_uppercase().to_lowercase()
    };
    // The key is the end of the folded name: cut off what was stripped instead of copying.
    let cut = folded.len() - unqualified(&folded).len();
    let mut key = folded;
    key.drain(..cut);
    key
}

/// A folded variable name without its scope qualifier and `variable:` drive.
fn unqualified(folded: &str) -> &str {
    let mut rest = folded;
    for scope in ["global:", "script:", "local:", "private:", "using:"] {
        if let Some(r) = rest.strip_prefix(scope) {
            rest = r;
            break;
        }
    }
    if let Some(r) = rest.strip_prefix("variable:") {
        rest = r.trim_start_matches(['/', '\\']);
    }
    rest
}

/// Whether two spellings certainly name one variable: equal ignoring ASCII case when both
/// are ASCII (PowerShell's rule for them), identical otherwise.
fn same_variable(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Variables PowerShell itself sets (`$_` per pipeline object, `$args` and
/// `$PSBoundParameters` per call, …), lowercased: what they hold when a command runs is never
/// what an assignment in the line left there.
const AUTOMATIC_VARIABLES: &[&str] = &[
    "_",
    "psitem",
    "args",
    "input",
    "this",
    "psboundparameters",
    "myinvocation",
    "pscmdlet",
    "matches",
    "foreach",
    "switch",
    "error",
    "event",
    "eventargs",
    "eventsubscriber",
    "sender",
    "stacktrace",
    "lastexitcode",
    "?",
    "^",
    "$",
    "psdebugcontext",
    "pssenderinfo",
    "psscriptroot",
    "pscommandpath",
    "executioncontext",
    "host",
    "psdefaultparametervalues",
    "true",
    "false",
    "null",
];

/// Commands that may set variables of the caller's scope by name, or run code that does,
/// without the line saying which (`Set-Variable`, `New-Item variable:h`, `Import-Module`),
/// lowercased. Any of them in a line makes every splat in it uncertain.
const TOUCHES_VARIABLES: &[&str] = &[
    "set-variable",
    "new-variable",
    "remove-variable",
    "clear-variable",
    "get-variable",
    "tee-object",
    "import-localizeddata",
    "set-item",
    "new-item",
    "clear-item",
    "remove-item",
    "copy-item",
    "move-item",
    "rename-item",
    "set-content",
    "add-content",
    "clear-content",
    "import-module",
    "import-pssession",
    "new-module",
    "invoke-expression",
    "invoke-command",
    "invoke-history",
    "set-psbreakpoint",
    "register-engineevent",
    "register-objectevent",
    "register-wmievent",
    "register-cimindicationevent",
    "enter-pssession",
];

/// Why writing variable `v` changes the session beyond the line, if it does.
fn session_write(v: &VarRef) -> Option<String> {
    if let Some(drive) = drive_of(v) {
        return Some(format!(
            "assigning to `${}` writes through the `{drive}:` provider",
            v.name
        ));
    }
    SESSION_VARIABLES
        .contains(&v.plain_name().as_str())
        .then(|| format!("assigning to `${}` changes how later commands bind", v.name))
}

/// Why reading variable `v` reads through a provider beyond session state, if it does.
fn provider_read(v: &VarRef) -> Option<String> {
    let drive = drive_of(v)?;
    (!READABLE_DRIVES.contains(&drive.as_str())).then(|| {
        format!(
            "reading `${}` reads through the `{drive}:` provider, as `Get-Content` would",
            v.name
        )
    })
}

/// Functions the PowerShell host calls by itself: defining one runs code after every line.
const HOST_HOOKS: &[&str] = &[
    "prompt",
    "out-default",
    "tabexpansion2",
    "psconsolehostreadline",
    "clear-host",
];

/// The dashes PowerShell accepts for `-` (U+2013..U+2015).
fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

/// Parameters that run a script block given as their value, besides `ScriptBlock`-typed ones:
/// property expressions (`Sort-Object { … }`, `Select-Object @{ e = { … } }`), lowercased as
/// `command:parameter`.
static PROPERTY_EXPRESSIONS: PairTable = PairTable::new(&[
    "sort-object:property",
    "select-object:property",
    "group-object:property",
    "measure-object:property",
    "compare-object:property",
    "format-table:property",
    "format-table:groupby",
    "format-list:property",
    "format-list:groupby",
    "format-wide:property",
    "format-wide:groupby",
    "format-custom:property",
    "format-custom:groupby",
    "convertto-html:property",
]);

/// Why the value `e` bound to parameter `m` of `command` may be code the line does not show,
/// if it may: a parameter that runs a script block value (`ScriptBlock`-typed, a property
/// expression, or a delay-bind parameter: pipeline-bound, not `Object`-typed, in a command that
/// receives pipeline input) given anything but literals. A script block can reach a variable
/// from outside the line (`${function:Remove-Mailbox}`, `(Get-Command X).ScriptBlock`).
fn code_from_value(
    command: &Listed<'_>,
    m: &ParamMeta,
    pipeline_input: bool,
    e: &Expr,
) -> Option<String> {
    if !runs_block_values(command, m, pipeline_input) {
        return None;
    }
    if m.is_script_block() {
        return (!is_block_literal(e)).then(|| {
            format!(
                "script block parameter `-{}` gets code computed at run time",
                m.name
            )
        });
    }
    (!is_literal_value(e)).then(|| {
        format!(
            "parameter `-{}` runs a script block value, and gets one computed at run time",
            m.name
        )
    })
}

/// Whether parameter `m` of `command` runs a script block given as its value (see
/// [`code_from_value`]).
fn runs_block_values(command: &Listed<'_>, m: &ParamMeta, pipeline_input: bool) -> bool {
    // An undocumented type may be `ScriptBlock`: as with a command without metadata, a
    // computed value is code.
    m.is_script_block()
        || m.class.is_undocumented()
        || command.property_expression(&m.name)
        || command.stores_code(&m.name)
        || (pipeline_input && m.takes_pipeline_input() && !m.class.is_object())
}

/// Whether `table` (lowercase `command:parameter` entries) lists `command` and `param`, compared
/// as `str::to_lowercase` would compare them. This runs for each parameter of each invocation:
/// the table is searched sorted, comparing ASCII names (every catalog name is one) without
/// building a key.
fn pair_listed(table: &PairTable, command: &str, param: &str) -> bool {
    let sorted = table.sorted.get_or_init(|| {
        let mut v: Vec<(&str, &str)> = table
            .entries
            .iter()
            .map(|e| e.split_once(':').unwrap_or((e, "")))
            .collect();
        v.sort_unstable();
        v
    });
    if !(command.is_ascii() && param.is_ascii()) {
        let (command, param) = (command.to_lowercase(), param.to_lowercase());
        return sorted
            .binary_search(&(command.as_str(), param.as_str()))
            .is_ok();
    }
    let ci = |entry: &str, name: &str| {
        entry
            .bytes()
            .cmp(name.bytes().map(|b| b.to_ascii_lowercase()))
    };
    sorted
        .binary_search_by(|(c, p)| ci(c, command).then_with(|| ci(p, param)))
        .is_ok()
}

/// A `command:parameter` table and its sorted (command, parameter) pairs, made on first use.
struct PairTable {
    entries: &'static [&'static str],
    sorted: std::sync::OnceLock<Vec<(&'static str, &'static str)>>,
}

/// A command's name, with whether the `command:parameter` tables name it: looked up once per
/// invocation, since the tables are asked about each of its parameters and most commands are
/// in neither.
struct Listed<'n> {
    name: &'n str,
    in_stores_code: bool,
    in_property_expressions: bool,
}

impl<'n> Listed<'n> {
    fn new(name: &'n str) -> Self {
        let (in_stores_code, in_property_expressions) = listed_command(name);
        Listed {
            name,
            in_stores_code,
            in_property_expressions,
        }
    }

    fn stores_code(&self, param: &str) -> bool {
        self.in_stores_code && pair_listed(&STORES_CODE, self.name, param)
    }

    fn property_expression(&self, param: &str) -> bool {
        self.in_property_expressions && pair_listed(&PROPERTY_EXPRESSIONS, self.name, param)
    }
}

impl PairTable {
    const fn new(entries: &'static [&'static str]) -> Self {
        PairTable {
            entries,
            sorted: std::sync::OnceLock::new(),
        }
    }

    /// The commands the table's entries are for.
    fn commands(&self) -> impl Iterator<Item = &'static str> {
        self.entries
            .iter()
            .map(|e| e.split_once(':').map_or(*e, |(c, _)| c))
    }
}

/// Whether [`STORES_CODE`] and [`PROPERTY_EXPRESSIONS`] have entries for `command` (compared as
/// `str::to_lowercase` would compare). Both tables' commands are in one map, made on first use:
/// every invocation asks about both, and one probe costs half of two.
fn listed_command(command: &str) -> (bool, bool) {
    static COMMANDS: std::sync::OnceLock<CiMap<(bool, bool)>> = std::sync::OnceLock::new();
    let commands = COMMANDS.get_or_init(|| {
        let mut map = CiMap::with_capacity(STORES_CODE.entries.len());
        for c in STORES_CODE.commands() {
            let (_, props) = map.get(c).copied().unwrap_or_default();
            map.insert(c, (true, props));
        }
        for c in PROPERTY_EXPRESSIONS.commands() {
            let (stores, _) = map.get(c).copied().unwrap_or_default();
            map.insert(c, (stores, true));
        }
        map
    });
    commands.get(command).copied().unwrap_or_default()
}

/// A value written out in the line, so any code in it is a block literal the walk checks:
/// strings (expansion yields text), numbers, `$true`/`$false`/`$null`, block literals, and
/// lists and hashtables of those (`Name, @{ n = 'x'; e = { … } }`).
fn is_literal_value(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::String(_) | ExprKind::Number(_) | ExprKind::ScriptBlock(_) => true,
        ExprKind::Variable(v) => matches!(v.plain_name().as_str(), "true" | "false" | "null"),
        ExprKind::List(items) => items.iter().all(is_literal_value),
        ExprKind::Hashtable(entries) => entries.iter().all(|entry| {
            is_literal_value(&entry.key)
                && single_expression(&entry.value).is_some_and(is_literal_value)
        }),
        ExprKind::ArraySubexpression(stmts) => stmts
            .iter()
            .all(|st| single_expression(st).is_some_and(is_literal_value)),
        _ => false,
    }
}

/// `m.lookup_param(written)`, remembered in `cache` for the line.
fn cached_lookup<'a>(
    cache: &RefCell<HashMap<(String, String), ParamLookup<'a>>>,
    m: &'a CommandMeta,
    written: &str,
) -> ParamLookup<'a> {
    // An exact name (the usual case: the command's own, or a common one such as `-Confirm`)
    // is one probe of the command's own index and a scan of the few common parameters:
    // cheaper than building the cache key. `lookup_param` would find the same parameter first.
    if let Some(p) = m.exact_param(written) {
        return ParamLookup::Found(p);
    }
    let key = (m.name.to_lowercase(), written.to_lowercase());
    if let Some(hit) = cache.borrow().get(&key) {
        return hit.clone();
    }
    let found = m.lookup_param(written);
    cache.borrow_mut().insert(key, found.clone());
    found
}

/// A script block bound to this parameter is data (OPATH text) only when the parameter is
/// string-typed and cannot take it as delay-bound pipeline input.
fn is_data_param(m: &ParamMeta, pipeline_input: bool) -> bool {
    m.is_string_like()
        && !m.is_script_block()
        && !(pipeline_input && (m.pipeline_by_property_name || m.pipeline_by_value))
}

/// Whether a type name written in a cast is `[ref]` (`PSReference`).
fn is_ref_type(type_name: &str) -> bool {
    let t = type_name.trim().to_ascii_lowercase();
    let t = t
        .strip_prefix("system.management.automation.")
        .unwrap_or(&t);
    matches!(t, "ref" | "psreference")
}

/// Whether a type name written in a cast or `-as` is `ScriptBlock`.
fn is_scriptblock_type(type_name: &str) -> bool {
    let t = type_name.trim().to_ascii_lowercase();
    let t = t
        .strip_prefix("system.management.automation.")
        .unwrap_or(&t);
    t == "scriptblock"
}

/// The full name of the type `e`'s value certainly has, when it is certain: a conversion to
/// a known type on the pure list (`[System.Collections.ArrayList]($x)`), or a string.
fn static_type(e: &Expr) -> Option<String> {
    if is_string_expr(e) {
        return Some("System.String".into());
    }
    match &e.kind {
        ExprKind::Cast { type_name, .. } => types::lookup(type_name)
            .filter(|t| t.pure_conversion)
            .map(|t| t.full),
        _ => None,
    }
}

/// An expression whose value is certainly a string: a string literal or expansion, or a
/// `[string]` conversion (`.Replace()` on it is `String.Replace`, not `FileInfo.Replace`).
fn is_string_expr(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::String(_) => true,
        ExprKind::Cast { type_name, .. } => {
            types::lookup(type_name).is_some_and(|t| t.full == "System.String")
        }
        ExprKind::Paren(st) => single_expression(st).is_some_and(is_string_expr),
        // `"a" + $x` concatenates; `-f` formats: both give a string.
        ExprKind::Binary { first, rest } => {
            rest.iter().all(|(op, _)| op.eq_ignore_ascii_case("-f"))
                || (is_string_expr(first) && rest.iter().all(|(op, _)| op == "+"))
        }
        _ => false,
    }
}

/// A script block literal, possibly in parentheses: `{ ... }`, `({ ... })`.
fn is_block_literal(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::ScriptBlock(_) => true,
        ExprKind::List(items) => items
            .iter()
            .all(|i| matches!(i.kind, ExprKind::ScriptBlock(_))),
        _ => false,
    }
}

/// Whether `text` has a character that [`Walker::command_kind`] or [`split_module`] reads
/// (`.`, `~`, `/`, `:`, `\`); without one it is a plain command name with no module.
fn has_path_char(text: &str) -> bool {
    // Folded without an early exit, so the compiler checks many bytes at a time: a command
    // name has none of them, and the whole name is read either way.
    text.bytes().fold(false, |found, b| {
        found | matches!(b, b'.' | b'~' | b'/' | b':' | b'\\')
    })
}

/// `Exchange\New-MoveRequest` → (`Exchange`, `New-MoveRequest`); paths such as `.\x.ps1` or
/// `C:\tools\x.exe` are not module-qualified.
fn split_module(text: &str) -> (Option<&str>, &str) {
    if let Some((module, name)) = crate::policy::rsplit_backslash(text) {
        let plain_module = !module.is_empty()
            && module
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && !module.starts_with('.');
        if plain_module && !name.is_empty() {
            return (Some(module), name);
        }
    }
    (None, text)
}

/// The single expression a statement consists of, if it is just that.
fn single_expression(st: &Statement) -> Option<&Expr> {
    let StatementKind::Chain(c) = &st.kind else {
        return None;
    };
    if !c.rest.is_empty() || c.first.elements.len() != 1 {
        return None;
    }
    match c.first.elements.first() {
        Some(PipelineElement::Expression { expr, redirections }) if redirections.is_empty() => {
            Some(expr)
        }
        _ => None,
    }
}

/// The value an argument expression has without running anything.
fn value_of(e: &Expr) -> ParamValue {
    match scalar_of(e) {
        Some(v) => ParamValue::Static(v),
        None => match &e.kind {
            ExprKind::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    match scalar_of(item) {
                        Some(v) => values.push(v),
                        None => return ParamValue::Dynamic,
                    }
                }
                ParamValue::List(values)
            }
            _ => ParamValue::Dynamic,
        },
    }
}

/// The value a parameter of `kind` receives for `value`, where the runspace converts it (see
/// [`ValueKind`]). A value whose conversion is not computed exactly here is dynamic: a value
/// constraint never compares text the parameter does not receive.
fn typed(kind: ValueKind, value: ParamValue) -> ParamValue {
    match value {
        ParamValue::Static(v) => {
            typed_scalar(kind, v).map_or(ParamValue::Dynamic, ParamValue::Static)
        }
        ParamValue::List(vs) => vs
            .into_iter()
            .map(|v| typed_scalar(kind, v))
            .collect::<Option<Vec<_>>>()
            .map_or(ParamValue::Dynamic, ParamValue::List),
        other => other,
    }
}

fn typed_scalar(kind: ValueKind, v: SmolStr) -> Option<SmolStr> {
    match kind {
        ValueKind::Text => Some(v),
        ValueKind::Boolean => {
            if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
                return Some(v);
            }
            match numeric(&v) {
                // A number is `True` unless it is zero (ParameterBinderBase).
                Numeric::Value(x) => {
                    Some(SmolStr::new_static(if x == 0.0 { "False" } else { "True" }))
                }
                Numeric::Unknown => None,
                // Text is refused for a Boolean parameter: the command does not run.
                Numeric::Not => Some(v),
            }
        }
        // Only a whole number written plainly reads the same as text and as the number.
        ValueKind::Integer | ValueKind::Size => is_plain_integer(&v).then_some(v),
        ValueKind::Unlimited => {
            (is_plain_integer(&v) || v.eq_ignore_ascii_case("unlimited")).then_some(v)
        }
        ValueKind::Float => {
            (is_plain_integer(&v) || number_value(&v).is_some_and(|n| n == v.as_str())).then_some(v)
        }
    }
}

enum Numeric {
    Value(f64),
    /// A number whose value is not computed here.
    Unknown,
    Not,
}

/// The number a static value stands for, read as a numeric literal (with an optional sign).
fn numeric(v: &str) -> Numeric {
    let (negative, body) = match v.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, v),
    };
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Numeric::Not;
    }
    match number_value(body) {
        None => Numeric::Unknown,
        Some(n) => match n.parse::<f64>() {
            Ok(x) if negative => Numeric::Value(-x),
            Ok(x) => Numeric::Value(x),
            // Too large for its suffix (`300y`): PowerShell reads the word as text.
            Err(_) if n == body => Numeric::Not,
            Err(_) => Numeric::Unknown,
        },
    }
}

fn scalar_of(e: &Expr) -> Option<SmolStr> {
    match &e.kind {
        // One piece of text (nearly every value) is the parser's own string: a copy of a short
        // one, a shared reference to a long one, never an allocation.
        ExprKind::String(s) => match s.parts.as_slice() {
            [StringPart::Text(t)] => Some(t.clone()),
            _ => s.static_value().map(SmolStr::from),
        },
        ExprKind::Number(n) => number_value(n).map(SmolStr::from),
        ExprKind::Variable(v) if v.name.eq_ignore_ascii_case("true") => {
            Some(SmolStr::new_static("True"))
        }
        ExprKind::Variable(v) if v.name.eq_ignore_ascii_case("false") => {
            Some(SmolStr::new_static("False"))
        }
        _ => None,
    }
}

/// The text an OPATH filter block turns into: its source without the braces.
fn block_text(e: &Expr, src: &str) -> ParamValue {
    let text = e.span.text(src);
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    ParamValue::Static(SmolStr::new(inner.trim()))
}

#[cfg(test)]
mod pair_table_tests {
    use super::{listed_command, pair_listed, Listed, PROPERTY_EXPRESSIONS, STORES_CODE};

    #[test]
    fn pair_tables_find_every_entry_in_any_case_and_nothing_else() {
        for table in [&STORES_CODE, &PROPERTY_EXPRESSIONS] {
            for entry in table.entries {
                let (c, p) = entry.split_once(':').unwrap_or_default();
                assert!(pair_listed(table, c, p), "{entry}");
                assert!(
                    pair_listed(table, &c.to_uppercase(), &p.to_uppercase()),
                    "{entry}"
                );
                assert!(!pair_listed(table, c, &format!("{p}x")), "{entry}");
                assert!(!pair_listed(table, &c[1..], p), "{entry}");
                assert!(!pair_listed(table, p, c), "{entry}");
            }
        }
        // Beyond the stack key (128 bytes) and outside ASCII: the allocating path.
        assert!(!pair_listed(&STORES_CODE, &"a".repeat(200), "value"));
        assert!(pair_listed(&STORES_CODE, "ADD-MEMBER", "VALUE"));
        assert!(!pair_listed(&STORES_CODE, "add-membér", "value"));
    }

    /// The per-invocation shortcut may only skip commands no entry names: every entry's
    /// command, in any case, still reaches the pair lookup.
    #[test]
    fn listed_commands_are_every_table_command_in_any_case_and_nothing_else() {
        for entry in STORES_CODE.entries {
            let (c, p) = entry.split_once(':').unwrap_or_default();
            for name in [c.to_string(), c.to_uppercase(), c.to_ascii_uppercase()] {
                let listed = Listed::new(&name);
                assert!(listed.stores_code(p), "{entry} as {name}");
                assert!(listed.stores_code(&p.to_uppercase()), "{entry} as {name}");
            }
        }
        for entry in PROPERTY_EXPRESSIONS.entries {
            let (c, p) = entry.split_once(':').unwrap_or_default();
            let upper = c.to_uppercase();
            assert!(Listed::new(c).property_expression(p), "{entry}");
            assert!(Listed::new(&upper).property_expression(p), "{entry}");
        }
        for name in [
            "Set-Mailbox",
            "Add-Membe",
            "Add-Memberx",
            "ADD-MEMBÉR",
            "",
            &"a".repeat(200),
            &format!("add-member{}", "x".repeat(100)),
        ] {
            let listed = Listed::new(name);
            assert!(
                !listed.in_stores_code && !listed.in_property_expressions,
                "{name}"
            );
        }
        assert_eq!(listed_command("ADD-MEMBER"), (true, false));
    }
}

#[cfg(test)]
mod variable_key_tests {
    use super::{unqualified, var_key};

    /// A variable's key and plain name read as the full Unicode folds would read them, for
    /// ASCII names (now folded by the ASCII path) and for others, with and without scope
    /// qualifiers and the `variable:` drive.
    #[test]
    fn variable_keys_and_plain_names_fold_as_unicode_folds_them() {
        use crate::syntax::ast::VarRef;
        let names = [
            "x",
            "MailBox",
            "Global:Count",
            "SCRIPT:h",
            "local:_",
            "private:a1",
            "using:Cred",
            "variable:/x",
            "Variable:\\\\Y",
            "global:variable:z",
            "env:PATH",
            "C:\\x",
            "\u{212A}elvin",
            "\u{130}x",
            "script:\u{17F}essions",
            "Ärger",
            "using:ΣΑΣ",
            "a-very-long-variable-name-beyond-the-inline-limit",
            "Global:A-Very-Long-Variable-Name-Beyond-The-Inline-Limit",
        ];
        for name in names {
            let folded = name.to_uppercase().to_lowercase();
            assert_eq!(var_key(name), unqualified(&folded), "{name}");

            let lower = name.to_lowercase();
            let plain = ["global:", "script:", "local:", "private:", "using:"]
                .iter()
                .find_map(|s| lower.strip_prefix(s))
                .unwrap_or(&lower)
                .to_string();
            let v = VarRef {
                name: name.into(),
                braced: false,
            };
            assert_eq!(v.plain_name(), plain, "{name}");
        }
    }
}

#[cfg(test)]
mod typed_value_tests {
    use super::{typed, ParamValue, ValueKind};

    fn one(kind: ValueKind, v: &str) -> Option<String> {
        match typed(kind, ParamValue::Static(v.into())) {
            ParamValue::Static(t) => Some(t.to_string()),
            ParamValue::Dynamic => None,
            other => panic!("{other:?}"),
        }
    }

    /// Each kind's conversion as ParameterBinderBase and the types' parsers make it: a number
    /// to a Boolean is `True` unless zero, text to a Boolean stays (the binder refuses it), a
    /// whole-number type keeps only plain integers, and what is not computed is dynamic.
    #[test]
    fn each_kind_converts_as_the_runspace_does() {
        use ValueKind::*;
        let cases: &[(ValueKind, &str, Option<&str>)] = &[
            (Boolean, "True", Some("True")),
            (Boolean, "False", Some("False")),
            (Boolean, "1", Some("True")),
            (Boolean, "-1", Some("True")),
            (Boolean, "0.5", Some("True")),
            (Boolean, "0", Some("False")),
            (Boolean, "0.0", Some("False")),
            (Boolean, "-0", Some("False")),
            (Boolean, "0x1", Some("True")),
            (Boolean, "0x0", Some("False")),
            (Boolean, "1e15", None),
            (Boolean, "1.5d", None),
            (Boolean, "1abc", None),
            (Boolean, "300y", Some("300y")),
            (Boolean, "yes", Some("yes")),
            (Integer, "100", Some("100")),
            (Integer, "-100", Some("-100")),
            (Integer, "0", Some("0")),
            (Integer, "0100", None),
            (Integer, "-0", None),
            (Integer, "0x64", None),
            (Integer, " 100", None),
            (Integer, "+100", None),
            (Integer, "99.5", None),
            (Integer, "1e2", None),
            (Integer, "Unlimited", None),
            (Float, "1.5", Some("1.5")),
            (Float, "100", Some("100")),
            (Float, "1.50", None),
            (Float, "1e2", None),
            (Unlimited, "Unlimited", Some("Unlimited")),
            (Unlimited, "unlimited", Some("unlimited")),
            (Unlimited, "1073741824", Some("1073741824")),
            (Unlimited, "1GB", None),
            (Unlimited, "1 GB", None),
            (Size, "1073741824", Some("1073741824")),
            (Size, "1GB", None),
            (Size, "Unlimited", None),
            (Text, "0x64", Some("0x64")),
        ];
        for (kind, v, want) in cases {
            assert_eq!(one(*kind, v).as_deref(), *want, "{kind:?} {v:?}");
        }
        // A list is dynamic when any member is.
        let list = |vs: &[&str]| {
            typed(
                Integer,
                ParamValue::List(vs.iter().map(|v| (*v).into()).collect()),
            )
        };
        assert_eq!(
            list(&["1", "2"]),
            ParamValue::List(vec!["1".into(), "2".into()])
        );
        assert_eq!(list(&["1", "0x2"]), ParamValue::Dynamic);
    }
}
