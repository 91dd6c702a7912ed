//! Cmdlet metadata: what the resolver needs to turn a command line into canonical names.
//!
//! The catalog answers four questions: which command an alias names, which parameter an
//! abbreviation names (PowerShell's unique-prefix rule), which parameter a positional argument
//! binds to, and whether a parameter's type turns a script block into text.
//!
//! Pure data: the shipped metadata is embedded with `include_str!`; [`Catalog::builtin`] builds
//! a name index once, and each command's entry is converted on first lookup (both cached in
//! `OnceLock`s, never changed afterwards). Extra modules' metadata comes in as text
//! ([`Catalog::from_json`], checked in full at once) and is layered on with
//! [`Catalog::merge`]; this module never reads files.
//!
//! Data format (`data/*.json`, and what [`Catalog::from_json`] accepts):
//!
//! ```json
//! { "format": 1,
//!   "commands": [ { "name": "Get-Mailbox", "module": "ExchangePowerShell",
//!       "parameters": [ { "name": "Identity", "type": "MailboxIdParameter",
//!                         "aliases": [], "switch": false, "pipeline": "value,property" } ],
//!       "sets": [ { "name": "Identity", "default": true,
//!                   "parameters": ["Identity"], "positions": { "Identity": 1 } } ] } ],
//!   "aliases": { "gmbx": "Get-Mailbox" } }
//! ```
//!
//! `aliases`, `switch`, `pipeline`, `default`, `positions` and the top-level `aliases` map may
//! be left out; a set without `parameters` holds every declared parameter; a parameter of type
//! `SwitchParameter` is a switch without saying so. `pipeline` is `value`, `property` or
//! `value,property`. Positions keep the numbering of the source documentation (Exchange's
//! pages count from 1, PowerShell's from 0): only their order matters for binding. Common
//! parameters (`-Verbose`, `-ErrorAction`, `-WhatIf`, ...) are implied for every command.
//! The shipped files also keep one command object per line, which lets the name index be
//! built without parsing the objects.

pub mod aliases;
pub(crate) mod ci_map;
pub mod names;

pub use aliases::Platform;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

// Converting a command's metadata: a fast hash (the keys are catalog names, not chosen by
// whoever types a line).
use foldhash::HashMap;

use serde::Deserialize;
use smol_str::SmolStr;

use ci_map::CiMap;

/// The Exchange Online / Exchange Server cmdlets, derived from the public reference docs by
/// `tools/gen-catalog.py`.
const EXCHANGE_JSON: &str = include_str!("../../../../data/exchange-cmdlets.json");
/// The PowerShell cmdlets administrators pipe Exchange output into, and those that take script
/// blocks or keep them to run later (`Add-Member`, `Register-EngineEvent`, `Set-PSBreakpoint`,
/// …), so that the parameters that run code are known by type.
const COMMON_JSON: &str = include_str!("../../../../data/common-cmdlets.json");

/// The only data format version this code reads.
const FORMAT_VERSION: u32 = 1;

/// Cmdlet and alias metadata, keyed case-insensitively.
#[derive(Clone, Default)]
pub struct Catalog {
    commands: Vec<Slot>,
    /// Command name (case-insensitive) -> index into `commands`.
    by_name: CiMap<usize>,
    /// Alias (case-insensitive) -> canonical target name.
    aliases: CiMap<String>,
}

/// One command: converted, or (embedded data only) its JSON text, converted on first use.
///
/// Converting all 1,400 Exchange cmdlets up front costs far more than a shell start-up can
/// afford in a debug build; a session touches a handful. The embedded text is checked in full
/// by the tests, so a lazy conversion does not fail in practice; if it did, the command reads
/// as unknown, which the resolver treats restrictively.
#[derive(Clone)]
enum Slot {
    Ready(CommandMeta),
    Lazy {
        name: String,
        index: usize,
        text: &'static str,
        meta: OnceLock<Option<CommandMeta>>,
    },
}

impl Slot {
    fn name(&self) -> &str {
        match self {
            Slot::Ready(meta) => &meta.name,
            Slot::Lazy { name, .. } => name,
        }
    }

    fn meta(&self) -> Option<&CommandMeta> {
        match self {
            Slot::Ready(meta) => Some(meta),
            Slot::Lazy {
                name,
                index,
                text,
                meta,
            } => meta
                .get_or_init(|| {
                    let raw: RawCommand<'_> = serde_json::from_str(text).ok()?;
                    convert_command(raw, *index)
                        .ok()
                        .filter(|converted| converted.name == *name)
                })
                .as_ref(),
        }
    }
}

impl std::fmt::Debug for Catalog {
    // The full metadata is megabytes; counts are what a log line needs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("commands", &self.commands.len())
            .field("aliases", &self.aliases.len())
            .finish()
    }
}

/// One command's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMeta {
    pub name: SmolStr,
    pub module: String,
    pub parameters: Vec<ParamMeta>,
    pub parameter_sets: Vec<ParamSet>,
    /// Index in `parameters` of the first parameter with each name (case-insensitive), so an
    /// exact name is one probe instead of a scan of a few hundred parameters.
    by_lower: CiMap<usize>,
    /// Indices in `parameters` of those that take pipeline input, in order: a piped command
    /// looks at these few, not at every parameter.
    pipeline_inputs: Vec<usize>,
}

/// One parameter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSet {
    pub name: String,
    pub default: bool,
    /// Canonical parameter names in this set (common parameters are in every set and not listed).
    pub parameters: Vec<String>,
    /// (position, canonical parameter name), sorted by position. Positions keep the source's
    /// numbering; only their order matters.
    pub positions: Vec<(usize, String)>,
}

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamMeta {
    pub name: SmolStr,
    pub aliases: Vec<String>,
    /// The type as documented (`String`, `MailboxIdParameter`, `ScriptBlock[]`, ...); empty when
    /// the documentation names the parameter but gives no type.
    pub type_name: String,
    pub switch: bool,
    pub pipeline_by_value: bool,
    pub pipeline_by_property_name: bool,
    /// What `type_name` means to the resolver ([`TypeClass::of`]), worked out when the
    /// metadata is loaded.
    pub class: TypeClass,
}

/// What the resolver asks of a parameter's type, worked out once from its documented name:
/// it is asked for every parameter a line gives a value, where comparing the type's text
/// each time cost more than binding the parameter. Only [`TypeClass::of`] makes one (no
/// `Default`): a class not read from the type could call a script block parameter data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeClass {
    script_block: bool,
    string_like: bool,
    object: bool,
    undocumented: bool,
    value: ValueKind,
}

/// How the runspace converts a value for a parameter of this type, where that changes what a
/// value constraint must compare: PowerShell binds `1` to a Boolean parameter as `True`, rounds
/// `1023.5` for an `Int32`, and reads `'0x400'` as 1024 for a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Taken as given (strings, identities, enumerations, and every type not below).
    Text,
    /// `Boolean` or `SwitchParameter`: a number is `True` unless it is zero; text is refused.
    Boolean,
    /// A whole number type (`Int32`, `UInt64`, `Byte`, ...), or an array of one.
    Integer,
    /// `Double`, `Single` or `Decimal`.
    Float,
    /// Exchange's `Unlimited`: `Unlimited` or a quantity the type parses itself.
    Unlimited,
    /// Exchange's `ByteQuantifiedSize`: a quantity the type parses itself (`1GB`, `1 GB`).
    Size,
}

impl TypeClass {
    /// The class of the type documented as `type_name`.
    pub fn of(type_name: &str) -> TypeClass {
        let base = base_type(type_name);
        let trimmed = type_name.trim();
        let unqualified = crate::invocation::strip_prefix_ci(trimmed, "system.").unwrap_or(trimmed);
        TypeClass {
            script_block: base.eq_ignore_ascii_case("ScriptBlock")
                || base.eq_ignore_ascii_case("ScriptBlock[]"),
            string_like: base.eq_ignore_ascii_case("String")
                || base.eq_ignore_ascii_case("String[]"),
            object: ["object", "object[]", "psobject", "psobject[]"]
                .iter()
                .any(|o| o.eq_ignore_ascii_case(unqualified)),
            undocumented: trimmed.is_empty(),
            value: ValueKind::of(base),
        }
    }

    /// How a value for this type is converted.
    pub fn value_kind(self) -> ValueKind {
        self.value
    }

    /// `Object`, `Object[]`, `PSObject` or `PSObject[]` (with or without `System.`).
    pub fn is_object(self) -> bool {
        self.object
    }

    /// The documentation names the parameter but gives no type.
    pub fn is_undocumented(self) -> bool {
        self.undocumented
    }
}

/// The outcome of looking up a parameter name as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamLookup<'a> {
    Found(&'a ParamMeta),
    /// The written prefix matches several parameters (canonical names, sorted); PowerShell
    /// refuses to bind it.
    Ambiguous(Vec<&'a str>),
    NotFound,
}

/// Why metadata text could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The text is not valid JSON for the catalog format.
    #[error("catalog json is malformed at line {line} column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The text is well-formed but names an unsupported version.
    #[error("catalog format `{found}` is not supported (expected {FORMAT_VERSION})")]
    Version { found: u32 },
    /// The text is well-formed but its content is inconsistent.
    #[error("catalog entry `{path}`: {message}")]
    Invalid { path: String, message: String },
}

impl Catalog {
    /// The shipped catalog: Exchange cmdlets, common PowerShell cmdlets and the default
    /// PowerShell alias table. Parsed on first use.
    pub fn builtin() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        // The embedded data is checked by tests; should it ever fail to load, an empty catalog
        // (aliases only) makes every command unknown, which the resolver treats restrictively.
        BUILTIN.get_or_init(|| build_builtin().unwrap_or_else(|_| Catalog::aliases_only()))
    }

    /// Loads metadata in the `data/*.json` format (for extra modules).
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = serde_json::from_str(text).map_err(|e| CatalogError::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        if raw.format != FORMAT_VERSION {
            return Err(CatalogError::Version { found: raw.format });
        }
        let mut catalog = Catalog::default();
        for (i, rc) in raw.commands.into_iter().enumerate() {
            catalog.add_new(Slot::Ready(convert_command(rc, i)?), i)?;
        }
        catalog.add_aliases(raw.aliases)?;
        Ok(catalog)
    }

    /// Embedded data, with commands converted on first use. The generator writes
    /// one command object per line between a header line and a closing line; anything else
    /// is an error here, and the caller falls back to [`Catalog::from_json`].
    fn from_embedded_lines(text: &'static str) -> Result<Catalog, CatalogError> {
        let layout = |message: &str| invalid("(embedded layout)".to_string(), message.to_string());
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| layout("empty"))?;
        // The header plus a closing bracket is a complete catalog with no commands.
        let whole_header = format!("{header}]}}");
        let head: RawCatalog<'_> = serde_json::from_str(&whole_header)
            .map_err(|_| layout("first line is not a catalog header"))?;
        if head.format != FORMAT_VERSION {
            return Err(CatalogError::Version { found: head.format });
        }
        // One line per command: the line count bounds the index size.
        let mut catalog = Catalog {
            by_name: CiMap::with_capacity(text.len() / 400),
            ..Catalog::default()
        };
        let mut closed = false;
        for (i, line) in lines.enumerate() {
            if closed {
                return Err(layout("text after the closing line"));
            }
            if line == "]}" {
                closed = true;
                continue;
            }
            let object = line.strip_suffix(',').unwrap_or(line);
            // The name is the object's first member; reading only that keeps start-up to an
            // index build. The full object is checked against it when converted.
            let name = object
                .strip_prefix("{\"name\":\"")
                .and_then(|rest| rest.split_once('"'))
                .map(|(name, _)| name)
                .filter(|name| !name.contains('\\'))
                .ok_or_else(|| layout("a line does not start with a command name"))?;
            let slot = Slot::Lazy {
                name: name.to_string(),
                index: i,
                text: object,
                meta: OnceLock::new(),
            };
            catalog.add_new(slot, i)?;
        }
        if !closed {
            return Err(layout("no closing line"));
        }
        catalog.add_aliases(head.aliases)?;
        Ok(catalog)
    }

    fn add_new(&mut self, slot: Slot, i: usize) -> Result<(), CatalogError> {
        if self.by_name.contains_key(slot.name()) {
            return Err(invalid(
                format!("commands[{i}]"),
                format!("command `{}` is listed twice", slot.name()),
            ));
        }
        self.by_name.insert(slot.name(), self.commands.len());
        self.commands.push(slot);
        Ok(())
    }

    fn add_aliases(
        &mut self,
        aliases: BTreeMap<Cow<'_, str>, Cow<'_, str>>,
    ) -> Result<(), CatalogError> {
        for (alias, target) in aliases {
            if alias.is_empty() || target.is_empty() {
                return Err(invalid(
                    format!("aliases.{alias}"),
                    "alias and target must not be empty".to_string(),
                ));
            }
            self.aliases.insert(&alias, target.into_owned());
        }
        Ok(())
    }

    /// Adds `other`'s commands and aliases; on a name clash `other`'s entry wins.
    pub fn merge(&mut self, other: Catalog) {
        for command in other.commands {
            match self
                .by_name
                .get(command.name())
                .and_then(|&i| self.commands.get_mut(i))
            {
                Some(slot) => *slot = command,
                None => {
                    self.by_name.insert(command.name(), self.commands.len());
                    self.commands.push(command);
                }
            }
        }
        self.aliases.extend(other.aliases);
    }

    /// The command named `name` (case-insensitive, without a module qualifier).
    pub fn command(&self, name: &str) -> Option<&CommandMeta> {
        self.by_name
            .get(name)
            .and_then(|&i| self.commands.get(i))
            .and_then(Slot::meta)
    }

    /// Whether `name` names a command the gate knows of: one in the catalog, an alias, or one
    /// of PowerShell's own or a common module's commands listed by name only
    /// ([`names::is_known_name`]). Used by lint to tell real commands from typos.
    pub fn knows_name(&self, name: &str) -> bool {
        self.command(name).is_some()
            || self.resolve_alias(name).is_some()
            || names::is_known_name(name)
    }

    /// The canonical command an alias names (case-insensitive), or `None` if `name` is not an
    /// alias. One level only: PowerShell aliases name commands, not other aliases.
    pub fn resolve_alias(&self, name: &str) -> Option<&str> {
        self.aliases.get(name).map(String::as_str)
    }

    /// Every command name, in catalog order (aliases not included).
    pub fn command_names(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().map(Slot::name)
    }

    /// The alias table: (alias as stored lowercased, canonical target).
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases.iter().map(|(a, t)| (a, t.as_str()))
    }

    fn aliases_only() -> Catalog {
        let mut catalog = Catalog::default();
        for entry in aliases::DEFAULT_ALIASES {
            catalog
                .aliases
                .insert(entry.alias, entry.target.to_string());
        }
        catalog
    }
}

/// Builds the shipped catalog; separate from [`Catalog::builtin`] so tests see load errors.
fn build_builtin() -> Result<Catalog, CatalogError> {
    let mut catalog = Catalog::from_embedded_lines(EXCHANGE_JSON)
        .or_else(|_| Catalog::from_json(EXCHANGE_JSON))?;
    catalog.merge(
        Catalog::from_embedded_lines(COMMON_JSON).or_else(|_| Catalog::from_json(COMMON_JSON))?,
    );
    catalog.merge(Catalog::aliases_only());
    Ok(catalog)
}

impl ParamMeta {
    /// True for `ScriptBlock` and `ScriptBlock[]`: an argument bound here is code.
    pub fn is_script_block(&self) -> bool {
        self.class.script_block
    }

    /// True when the runspace turns a script block bound here into its text: `String` and
    /// `String[]` only. Exchange's OPATH `-Filter` parameters are `String`. Everything else
    /// (`MultiValuedProperty`, `Object`, `PSObject`, identity types, an undocumented type) is
    /// not string-like, so a script block given to it counts as code: the restrictive choice.
    pub fn is_string_like(&self) -> bool {
        self.class.string_like
    }

    /// True when the parameter takes pipeline input in any way.
    pub fn takes_pipeline_input(&self) -> bool {
        self.pipeline_by_value || self.pipeline_by_property_name
    }
}

impl ValueKind {
    /// The kind of a type name without its `System.` prefix (`Int32[]` is an integer).
    fn of(base: &str) -> ValueKind {
        let element = base.strip_suffix("[]").unwrap_or(base);
        let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(element));
        if is(&["Boolean", "SwitchParameter"]) {
            ValueKind::Boolean
        } else if is(&[
            "Int16", "Int32", "Int64", "UInt16", "UInt32", "UInt64", "Byte", "SByte",
        ]) {
            ValueKind::Integer
        } else if is(&["Double", "Single", "Decimal"]) {
            ValueKind::Float
        } else if is(&["Unlimited", "UnlimitedInt"]) || element.contains(".Unlimited`1[") {
            ValueKind::Unlimited
        } else if is(&[
            "ByteQuantifiedSize",
            "Microsoft.Exchange.Data.ByteQuantifiedSize",
        ]) {
            ValueKind::Size
        } else {
            ValueKind::Text
        }
    }
}

/// `System.String` -> `String`, `System.Management.Automation.ScriptBlock` -> `ScriptBlock`.
fn base_type(type_name: &str) -> &str {
    let t = type_name.trim();
    t.strip_prefix("System.Management.Automation.")
        .or_else(|| t.strip_prefix("System."))
        .unwrap_or(t)
}

impl CommandMeta {
    /// Exact name or alias first (case-insensitive), then unique prefix among names and
    /// aliases, with PowerShell's common parameters included.
    ///
    /// As in PowerShell, when a prefix matches several parameters and exactly one of them is
    /// the command's own (not a common or `WhatIf`/`Confirm` parameter), that one wins;
    /// otherwise the prefix is [`ParamLookup::Ambiguous`].
    pub fn lookup_param(&self, written: &str) -> ParamLookup<'_> {
        // The resolver normally strips the dash; accept one here too, including the Unicode
        // dashes PowerShell treats as `-`.
        let written = written
            .strip_prefix(['-', '\u{2013}', '\u{2014}', '\u{2015}'])
            .unwrap_or(written);
        if written.is_empty() {
            return ParamLookup::NotFound;
        }
        // The command's own parameters, then the common ones it does not declare itself. The
        // test is applied first and `declares` (a scan of the command's parameters) only to
        // the common parameters that pass it.
        let find = |test: &dyn Fn(&ParamMeta) -> bool| {
            self.parameters.iter().find(|p| test(p)).or_else(|| {
                common_parameters()
                    .iter()
                    .find(|c| test(c) && !self.declares(&c.name))
            })
        };

        // As PowerShell: an exact name, then an exact alias, then prefixes of either.
        if let Some(p) = self.exact_param(written) {
            return ParamLookup::Found(p);
        }
        if let Some(p) = find(&|p| p.aliases.iter().any(|a| eq_ci(a, written))) {
            return ParamLookup::Found(p);
        }
        let prefixed = |p: &ParamMeta| p.names().any(|n| starts_with_ci(n, written));
        let matches: Vec<&ParamMeta> = self
            .parameters
            .iter()
            .filter(|p| prefixed(p))
            .chain(
                common_parameters()
                    .iter()
                    .filter(|c| prefixed(c) && !self.declares(&c.name)),
            )
            .collect();
        match matches.as_slice() {
            [] => ParamLookup::NotFound,
            [one] => ParamLookup::Found(one),
            _ => {
                let declared: Vec<&ParamMeta> = matches
                    .iter()
                    .copied()
                    .filter(|p| !is_common_name(&p.name))
                    .collect();
                if let [one] = declared.as_slice() {
                    return ParamLookup::Found(one);
                }
                let mut names: Vec<&str> = matches.iter().map(|p| p.name.as_str()).collect();
                names.sort_unstable_by_key(|n| n.to_lowercase());
                ParamLookup::Ambiguous(names)
            }
        }
    }

    /// The parameter named exactly `name` (case-insensitive, no dash): the command's own, or a
    /// common parameter it does not declare itself. [`CommandMeta::lookup_param`]'s first step,
    /// and all it comes to for nearly every parameter a line writes.
    pub fn exact_param(&self, name: &str) -> Option<&ParamMeta> {
        self.param(name).or_else(|| {
            common_parameters()
                .iter()
                .find(|c| eq_ci(&c.name, name) && !self.declares(&c.name))
        })
    }

    /// The parameter bound to positional slot `index` (0-based among positional arguments),
    /// given the canonical names already bound by name.
    ///
    /// Candidate sets contain every name in `named` (common parameters are in every set) and
    /// have an unbound positional parameter at that slot: a set without one cannot take the
    /// argument, so PowerShell would not select it. `Some` only if every candidate set gives
    /// the same parameter; `None` when none does or they disagree (uncertain).
    pub fn positional_param(&self, index: usize, named: &[&str]) -> Option<&ParamMeta> {
        match self.positional_candidates(index, named).as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Every distinct parameter that positional slot `index` could bind to across the candidate
    /// sets of [`CommandMeta::positional_param`], in set order. Lets a caller narrow by the
    /// argument's kind (a script block literal goes to `Where-Object -FilterScript`, not
    /// `-Property`) when the sets disagree.
    pub fn positional_candidates(&self, index: usize, named: &[&str]) -> Vec<&ParamMeta> {
        self.positional_candidates_of(index, named.iter().copied())
    }

    /// [`CommandMeta::positional_candidates`] with the names bound so far as an iterator, so a
    /// binder reads them from its own list instead of keeping a second one.
    pub(crate) fn positional_candidates_of<'n>(
        &self,
        index: usize,
        named: impl Iterator<Item = &'n str> + Clone,
    ) -> Vec<&ParamMeta> {
        let mut out: Vec<&ParamMeta> = Vec::new();
        for set in &self.parameter_sets {
            let holds_all = named
                .clone()
                .all(|n| is_common_name(n) || set.parameters.iter().any(|p| eq_ci(p, n)));
            if !holds_all {
                continue;
            }
            // Slots are runs of one position value among the positions not bound by name; a
            // few documented sets give two parameters the same position, and then the slot
            // names all of them (uncertain). Counted as they go by: this runs per argument.
            let mut slot = 0usize;
            let mut at: Option<usize> = None;
            let unbound = set
                .positions
                .iter()
                .filter(|(_, p)| !named.clone().any(|n| eq_ci(p, n)));
            for (position, name) in unbound {
                match at {
                    Some(a) if a == *position => {}
                    Some(_) => slot += 1,
                    None => {}
                }
                at = Some(*position);
                if slot > index {
                    break;
                }
                if slot < index {
                    continue;
                }
                if let Some(param) = self.param(name) {
                    if !out.iter().any(|p| eq_ci(&p.name, &param.name)) {
                        out.push(param);
                    }
                }
            }
        }
        out
    }

    /// The command's own parameter with canonical name `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&ParamMeta> {
        // For an ASCII name, `eq_ci` with a parameter's name is equality of their lowercase
        // forms, which the index holds (first parameter first, as the scan finds it).
        if name.is_ascii() {
            return self
                .by_lower
                .get(name)
                .and_then(|&i| self.parameters.get(i));
        }
        self.parameters.iter().find(|p| eq_ci(&p.name, name))
    }

    /// The parameters that take pipeline input (by value or by property name), in order.
    pub fn pipeline_input_params(&self) -> impl Iterator<Item = &ParamMeta> + '_ {
        self.pipeline_inputs
            .iter()
            .filter_map(|&i| self.parameters.get(i))
    }

    fn declares(&self, name: &str) -> bool {
        self.param(name).is_some()
    }
}

impl ParamMeta {
    fn names(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// `name` lowercased into `buf`, when it is ASCII and fits (which `str::to_lowercase` would
/// lowercase the same way); `None` otherwise, for the caller's own fallback.
pub(crate) fn ascii_lower<'b>(name: &str, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    // Every command and parameter name is looked up through here, several times a line.
    let src = name.as_bytes();
    let len = src.len();
    if len < 8 {
        // A short name (most parameters') a byte at a time.
        let out = buf.get_mut(..len)?;
        for (d, &b) in out.iter_mut().zip(src) {
            if !b.is_ascii() {
                return None;
            }
            *d = b.to_ascii_lowercase();
        }
        return buf.get(..len);
    }
    // Eight bytes at a time, read from the name and written to `buf` as whole words (no copy
    // of the name first); the last word is the name's last eight bytes, which may overlap the
    // word before it: lowering a byte twice gives the same byte.
    let mut at = 0;
    while at + 8 < len {
        lower_word(src, buf, at)?;
        at += 8;
    }
    lower_word(src, buf, len - 8)?;
    buf.get(..len)
}

/// Lowercases `src[at..at + 8]` into `buf[at..at + 8]`; `None` when a byte is not ASCII (or the
/// range is outside either). A word is ASCII when no byte has its high bit; then adding
/// 0x80 - b'A' sets the high bit of the bytes from `A` up and adding 0x80 - b'[' that of the
/// bytes past `Z`, with no carry from one byte into the next, and an upper-case letter gets its
/// 0x20 bit. Always inlined: it runs for every word of every lookup, and a call would cost
/// about what the word's lowering does.
#[inline(always)]
fn lower_word(src: &[u8], buf: &mut [u8; 64], at: usize) -> Option<()> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word: [u8; 8] = src.get(at..at.checked_add(8)?)?.try_into().ok()?;
    let x = u64::from_le_bytes(word);
    if x & HIGH != 0 {
        return None;
    }
    let from_a = x.wrapping_add(0x3f3f_3f3f_3f3f_3f3f);
    let past_z = x.wrapping_add(0x2525_2525_2525_2525);
    let lowered = x | ((from_a & !past_z & HIGH) >> 2);
    buf.get_mut(at..at + 8)?
        .copy_from_slice(&lowered.to_le_bytes());
    Some(())
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    if text.is_ascii() && prefix.is_ascii() {
        text.len() >= prefix.len()
            && text
                .as_bytes()
                .iter()
                .zip(prefix.as_bytes())
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    } else {
        text.to_lowercase().starts_with(&prefix.to_lowercase())
    }
}

/// PowerShell's common parameters (every cmdlet) and risk-mitigation parameters (cmdlets that
/// support ShouldProcess), with their built-in aliases. `ProgressAction` is PowerShell 7.4+.
const COMMON: &[(&str, &str, &str)] = &[
    ("Verbose", "vb", "SwitchParameter"),
    ("Debug", "db", "SwitchParameter"),
    ("ErrorAction", "ea", "ActionPreference"),
    ("WarningAction", "wa", "ActionPreference"),
    ("InformationAction", "infa", "ActionPreference"),
    ("ProgressAction", "proga", "ActionPreference"),
    ("ErrorVariable", "ev", "String"),
    ("WarningVariable", "wv", "String"),
    ("InformationVariable", "iv", "String"),
    ("OutVariable", "ov", "String"),
    ("OutBuffer", "ob", "Int32"),
    ("PipelineVariable", "pv", "String"),
    ("WhatIf", "wi", "SwitchParameter"),
    ("Confirm", "cf", "SwitchParameter"),
];

fn common_parameters() -> &'static [ParamMeta] {
    static COMMON_META: OnceLock<Vec<ParamMeta>> = OnceLock::new();
    COMMON_META.get_or_init(|| {
        COMMON
            .iter()
            .map(|&(name, alias, type_name)| ParamMeta {
                name: SmolStr::new_static(name),
                aliases: vec![alias.to_string()],
                type_name: type_name.to_string(),
                switch: type_name == "SwitchParameter",
                pipeline_by_value: false,
                pipeline_by_property_name: false,
                class: TypeClass::of(type_name),
            })
            .collect()
    })
}

/// True if `name` is a common or risk-mitigation parameter's canonical name.
pub fn is_common_name(name: &str) -> bool {
    COMMON.iter().any(|(n, _, _)| eq_ci(n, name))
}

// ---- the data format ------------------------------------------------------------------

// Raw structs borrow from the input where the JSON has no escapes: the embedded data is
// parsed on first use in every process, so allocations here are what the start-up pays for.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog<'a> {
    format: u32,
    /// Attribution or provenance text; not used.
    #[serde(default, borrow, rename = "source")]
    _source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    commands: Vec<RawCommand<'a>>,
    #[serde(default, borrow)]
    aliases: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    module: Cow<'a, str>,
    #[serde(borrow)]
    parameters: Vec<RawParam<'a>>,
    #[serde(default, borrow)]
    sets: Vec<RawSet<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow, rename = "type")]
    type_name: Cow<'a, str>,
    #[serde(default, borrow)]
    aliases: Vec<Cow<'a, str>>,
    #[serde(default)]
    switch: bool,
    #[serde(default, borrow)]
    pipeline: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    default: bool,
    /// Left out: every declared parameter.
    #[serde(default, borrow)]
    parameters: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    positions: BTreeMap<Cow<'a, str>, usize>,
}

fn convert_command(rc: RawCommand<'_>, i: usize) -> Result<CommandMeta, CatalogError> {
    let path = || format!("commands[{i}]");
    if rc.name.trim().is_empty() || rc.name.contains(char::is_whitespace) {
        return Err(invalid(path(), format!("bad command name `{}`", rc.name)));
    }
    let mut parameters: Vec<ParamMeta> = Vec::with_capacity(rc.parameters.len());
    for (j, rp) in rc.parameters.into_iter().enumerate() {
        let ppath = || format!("{}.parameters[{j}]", path());
        if rp.name.is_empty() || rp.name.starts_with('-') || rp.name.contains(char::is_whitespace) {
            return Err(invalid(
                ppath(),
                format!("bad parameter name `{}`", rp.name),
            ));
        }
        let (by_value, by_property) = match &*rp.pipeline {
            "" => (false, false),
            "value" => (true, false),
            "property" => (false, true),
            "value,property" => (true, true),
            other => {
                return Err(invalid(
                    format!("{}.pipeline", ppath()),
                    format!(
                        "unknown pipeline binding `{other}` (expected `value`, `property` or `value,property`)"
                    ),
                ))
            }
        };
        if rp.aliases.iter().any(|a| a.is_empty()) {
            return Err(invalid(
                format!("{}.aliases", ppath()),
                "empty alias".to_string(),
            ));
        }
        let switch = rp.switch || base_type(&rp.type_name).eq_ignore_ascii_case("SwitchParameter");
        parameters.push(ParamMeta {
            name: SmolStr::new(&rp.name),
            aliases: rp.aliases.into_iter().map(Cow::into_owned).collect(),
            class: TypeClass::of(&rp.type_name),
            type_name: rp.type_name.into_owned(),
            switch,
            pipeline_by_value: by_value,
            pipeline_by_property_name: by_property,
        });
    }
    // Duplicates, case-insensitively; sorting keeps this linearithmic for 150-parameter cmdlets.
    let mut lowered: Vec<(String, usize)> = parameters
        .iter()
        .enumerate()
        .map(|(j, p)| (p.name.to_lowercase(), j))
        .collect();
    lowered.sort_unstable();
    if let Some(pair) = lowered.windows(2).find(|w| w[0].0 == w[1].0) {
        let j = pair[1].1;
        let name = parameters
            .get(j)
            .map(|p| p.name.as_str())
            .unwrap_or_default();
        return Err(invalid(
            format!("{}.parameters[{j}]", path()),
            format!("parameter `{name}` of `{}` is listed twice", rc.name),
        ));
    }
    // Set members must be declared parameters; the canonical casing is the declaration's.
    // Exact spelling first: generated data always uses it, and it is much cheaper.
    let exact: HashMap<&str, usize> = parameters
        .iter()
        .enumerate()
        .map(|(j, p)| (p.name.as_str(), j))
        .collect();
    let canonical = |name: &str| -> Option<String> {
        exact
            .get(name)
            .and_then(|&j| parameters.get(j))
            .or_else(|| parameters.iter().find(|p| eq_ci(&p.name, name)))
            .map(|p| p.name.to_string())
    };
    let undeclared = |name: &str, at: String| {
        invalid(
            at,
            format!("parameter `{name}` of `{}` is not declared", rc.name),
        )
    };
    let mut parameter_sets = Vec::with_capacity(rc.sets.len());
    for (k, rs) in rc.sets.into_iter().enumerate() {
        let spath = || format!("{}.sets[{k}]", path());
        let members = match &rs.parameters {
            None => parameters.iter().map(|p| p.name.to_string()).collect(),
            Some(list) => {
                let mut members = Vec::with_capacity(list.len());
                for (m, name) in list.iter().enumerate() {
                    let found = canonical(name)
                        .ok_or_else(|| undeclared(name, format!("{}.parameters[{m}]", spath())))?;
                    members.push(found);
                }
                members
            }
        };
        let mut positions = Vec::with_capacity(rs.positions.len());
        for (name, pos) in rs.positions {
            let at = || format!("{}.positions.{name}", spath());
            let found = canonical(&name).ok_or_else(|| undeclared(&name, at()))?;
            if !members.iter().any(|m| m == &found) {
                return Err(invalid(
                    at(),
                    format!("positional parameter `{found}` is not in set `{}`", rs.name),
                ));
            }
            positions.push((pos, found));
        }
        positions.sort();
        parameter_sets.push(ParamSet {
            name: rs.name.into_owned(),
            default: rs.default,
            parameters: members,
            positions,
        });
    }
    let mut by_lower = CiMap::with_capacity(parameters.len());
    for (i, p) in parameters.iter().enumerate() {
        by_lower.insert_first(&p.name, i);
    }
    let pipeline_inputs = parameters
        .iter()
        .enumerate()
        .filter(|(_, p)| p.takes_pipeline_input())
        .map(|(i, _)| i)
        .collect();
    Ok(CommandMeta {
        name: SmolStr::new(&rc.name),
        module: rc.module.into_owned(),
        parameters,
        parameter_sets,
        by_lower,
        pipeline_inputs,
    })
}

fn invalid(path: String, message: String) -> CatalogError {
    CatalogError::Invalid { path, message }
}

/// serde_json appends " at line L column C"; the error carries those as fields already.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests;
