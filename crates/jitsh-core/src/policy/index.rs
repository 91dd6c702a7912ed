//! The compiled task index: finds the rules whose task patterns cover a command name without
//! looking at every rule.
//!
//! Exact names are one hash probe; `literal*` patterns sit in a byte trie of their literals
//! walked once along the name, `*literal` in a trie of reversed literals walked from the name's
//! end; the remaining globs are grouped in a trie by their literal text before the first
//! wildcard and tried only when the name starts with it. A walk stops at the first byte no
//! pattern continues with, so the cost of a lookup grows with the name's length and the number
//! of patterns that actually match, not with the number of rules.

use crate::catalog::ci_map::{Lower, Query};
use crate::invocation::TaskKind;
use crate::policy::model::{Effect, Rule};
use crate::policy::pattern::{Glob, LowerName, Shape};

/// A pattern occurrence: which rule, and the module qualifier it carries.
#[derive(Clone, Debug)]
struct Entry {
    rule: u32,
    module: Option<String>,
    /// Allow rules honour module qualifiers strictly (see [`crate::policy::model::TaskPattern::covers`]).
    strict_module: bool,
}

impl Entry {
    fn module_ok(&self, module: Option<&str>) -> bool {
        match (&self.module, module) {
            (Some(want), Some(got)) if self.strict_module => want == got,
            _ => true,
        }
    }
}

/// One index per task kind: a pattern only ever covers tasks of its own kind (`*` written for
/// commands never covers a script path or a method).
#[derive(Default, Debug)]
pub(crate) struct TaskIndex {
    command: NameIndex,
    path: NameIndex,
    program: NameIndex,
    method: NameIndex,
}

impl TaskIndex {
    pub(crate) fn build(rules: &[Rule]) -> TaskIndex {
        let mut ix = TaskIndex::default();
        for kind in [
            TaskKind::Command,
            TaskKind::Path,
            TaskKind::Program,
            TaskKind::Method,
        ] {
            *ix.of_mut(kind) = NameIndex::build(rules, kind);
        }
        ix
    }

    fn of(&self, kind: TaskKind) -> &NameIndex {
        match kind {
            TaskKind::Command => &self.command,
            TaskKind::Path => &self.path,
            TaskKind::Program => &self.program,
            TaskKind::Method => &self.method,
        }
    }

    fn of_mut(&mut self, kind: TaskKind) -> &mut NameIndex {
        match kind {
            TaskKind::Command => &mut self.command,
            TaskKind::Path => &mut self.path,
            TaskKind::Program => &mut self.program,
            TaskKind::Method => &mut self.method,
        }
    }

    /// Indexes of the rules with a pattern of `kind` covering the lowercase `lname` (see
    /// [`NameIndex::candidates`]).
    pub(crate) fn candidates(
        &self,
        kind: TaskKind,
        lname: &LowerName<'_>,
        module: Option<&str>,
    ) -> Vec<u32> {
        self.of(kind).candidates(lname, module)
    }

    /// Indexes of rules with a pattern of `kind` that may cover every name `glob` matches.
    pub(crate) fn subsuming(&self, kind: TaskKind, glob: &Glob) -> Vec<u32> {
        self.of(kind).subsuming(glob)
    }
}

/// Exact task names. Looked up for every invocation of every line: a fast hash (the keys come
/// from the policies).
type ExactMap = hashbrown::HashMap<Lower, Vec<Entry>, foldhash::fast::RandomState>;

/// The patterns of one task kind.
#[derive(Default, Debug)]
struct NameIndex {
    /// By the name lowercased, held in place when short: a probe then compares with the
    /// table's own memory, not a string allocated anywhere in a large set's heap.
    exact: ExactMap,
    /// `literal*` patterns by their literal, a trie walked along the name.
    prefix: Trie<Entry>,
    /// `*literal` patterns by their literal reversed, walked along the name from its end.
    suffix: Trie<Entry>,
    /// Other globs by their literal text before the first wildcard, walked along the name.
    other: Trie<(Glob, Entry)>,
}

impl NameIndex {
    fn build(rules: &[Rule], kind: TaskKind) -> NameIndex {
        let mut exact = ExactMap::default();
        let (mut prefix, mut suffix, mut other) =
            (TrieBuilder::new(), TrieBuilder::new(), TrieBuilder::new());
        for (i, rule) in rules.iter().enumerate() {
            let Ok(rule_no) = u32::try_from(i) else {
                // More than 4 billion rules cannot be loaded from text anyway.
                break;
            };
            for p in rule.patterns.iter().filter(|p| p.kind == kind) {
                let entry = Entry {
                    rule: rule_no,
                    module: p.module.clone(),
                    strict_module: rule.effect == Effect::Allow,
                };
                match p.glob.shape() {
                    Shape::Exact(k) => exact.entry(Lower::new(k)).or_default().push(entry),
                    Shape::Prefix(k) => prefix.insert(k.bytes(), entry),
                    Shape::Suffix(k) => suffix.insert(k.bytes().rev(), entry),
                    Shape::Other(k) => other.insert(k.bytes(), (p.glob.clone(), entry)),
                }
            }
        }
        exact.shrink_to_fit();
        NameIndex {
            exact,
            prefix: prefix.freeze(),
            suffix: suffix.freeze(),
            other: other.freeze(),
        }
    }

    /// Indexes of the rules with a task pattern covering the lowercase `name` in lowercase
    /// `module`; sorted, without duplicates. `except` and conditions are not applied here.
    fn candidates(&self, name: &LowerName<'_>, module: Option<&str>) -> Vec<u32> {
        let lname = name.text();
        let mut out = Vec::new();
        let take = |out: &mut Vec<u32>, entries: &[Entry]| {
            out.extend(
                entries
                    .iter()
                    .filter(|e| e.module_ok(module))
                    .map(|e| e.rule),
            );
        };
        if let Some(entries) = self.exact.get(&Query(lname.as_bytes())) {
            take(&mut out, entries);
        }
        // Byte walks: a literal ends on a char boundary, so matching its bytes is matching
        // the name's text up to that boundary.
        self.prefix.walk(lname.bytes(), |e| take(&mut out, e));
        self.suffix.walk(lname.bytes().rev(), |e| take(&mut out, e));
        self.other.walk(lname.bytes(), |entries| {
            for (g, e) in entries {
                if e.module_ok(module) && g.matches_lower(name.chars()) {
                    out.push(e.rule);
                }
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Indexes of rules with a pattern that may cover every name `glob` matches (a superset
    /// of what [`Glob::subsumed_by`] confirms; the caller confirms). Lets lint compare
    /// patterns without trying every pair.
    fn subsuming(&self, glob: &Glob) -> Vec<u32> {
        if glob.is_literal() {
            let text = crate::policy::pattern::lower(glob.as_str());
            return self.candidates(&LowerName::new(&text), None);
        }
        let mut out = Vec::new();
        let take = |out: &mut Vec<u32>, entries: &[Entry]| {
            out.extend(entries.iter().map(|e| e.rule));
        };
        match glob.shape() {
            Shape::Prefix(lit) => self.prefix.walk(lit.bytes(), |e| take(&mut out, e)),
            Shape::Other(lit) => {
                self.prefix.walk(lit.bytes(), |e| take(&mut out, e));
                for (g, e) in self.other.get(lit.bytes()) {
                    if g == glob {
                        out.push(e.rule);
                    }
                }
            }
            Shape::Suffix(lit) => {
                take(&mut out, self.prefix.get(std::iter::empty()));
                self.suffix.walk(lit.bytes().rev(), |e| take(&mut out, e));
            }
            Shape::Exact(_) => {}
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A byte trie, frozen into flat arrays after building: nodes, their sorted edges and their
/// items each in one allocation, so a walk touches few cache lines and the index stays small.
#[derive(Debug)]
struct Trie<T> {
    nodes: Vec<Node>,
    /// `(byte, child node)`, each node's run sorted by byte.
    edges: Vec<(u8, u32)>,
    items: Vec<T>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    edges: (u32, u32),
    items: (u32, u32),
}

impl<T> Default for Trie<T> {
    fn default() -> Self {
        Trie {
            nodes: Vec::new(),
            edges: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<T> Trie<T> {
    fn node_items(&self, node: &Node) -> &[T] {
        self.items
            .get(node.items.0 as usize..node.items.1 as usize)
            .unwrap_or(&[])
    }

    fn child(&self, node: &Node, byte: u8) -> Option<&Node> {
        let edges = self
            .edges
            .get(node.edges.0 as usize..node.edges.1 as usize)?;
        let i = edges.binary_search_by_key(&byte, |&(b, _)| b).ok()?;
        let &(_, next) = edges.get(i)?;
        self.nodes.get(next as usize)
    }

    /// Calls `f` with the items of every key that is a prefix of `key` (the empty key first),
    /// skipping nodes without items.
    fn walk(&self, key: impl Iterator<Item = u8>, mut f: impl FnMut(&[T])) {
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        let mut key = key;
        loop {
            let items = self.node_items(node);
            if !items.is_empty() {
                f(items);
            }
            match key.next().and_then(|b| self.child(node, b)) {
                Some(next) => node = next,
                None => return,
            }
        }
    }

    /// The items of exactly `key`.
    fn get(&self, key: impl Iterator<Item = u8>) -> &[T] {
        let Some(mut node) = self.nodes.first() else {
            return &[];
        };
        for b in key {
            match self.child(node, b) {
                Some(next) => node = next,
                None => return &[],
            }
        }
        self.node_items(node)
    }
}

/// A node under construction: its sorted edges and its items.
type BuildNode<T> = (Vec<(u8, u32)>, Vec<T>);

/// A trie under construction.
struct TrieBuilder<T> {
    nodes: Vec<BuildNode<T>>,
}

impl<T> TrieBuilder<T> {
    fn new() -> Self {
        TrieBuilder {
            nodes: vec![(Vec::new(), Vec::new())],
        }
    }

    fn insert(&mut self, key: impl Iterator<Item = u8>, item: T) {
        let mut at = 0usize;
        for b in key {
            let Some((edges, _)) = self.nodes.get(at) else {
                return;
            };
            at = match edges.binary_search_by_key(&b, |&(e, _)| e) {
                Ok(i) => edges.get(i).map_or(0, |&(_, n)| n as usize),
                Err(i) => {
                    let Ok(n) = u32::try_from(self.nodes.len()) else {
                        return;
                    };
                    if let Some((edges, _)) = self.nodes.get_mut(at) {
                        edges.insert(i, (b, n));
                    }
                    self.nodes.push((Vec::new(), Vec::new()));
                    n as usize
                }
            };
        }
        if let Some((_, items)) = self.nodes.get_mut(at) {
            items.push(item);
        }
    }

    fn freeze(self) -> Trie<T> {
        if self.nodes.iter().all(|(e, i)| e.is_empty() && i.is_empty()) {
            return Trie::default();
        }
        let mut trie = Trie {
            nodes: Vec::with_capacity(self.nodes.len()),
            edges: Vec::with_capacity(self.nodes.len().saturating_sub(1)),
            items: Vec::new(),
        };
        let count = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        for (edges, items) in self.nodes {
            let e0 = count(trie.edges.len());
            trie.edges.extend(edges);
            let i0 = count(trie.items.len());
            trie.items.extend(items);
            trie.nodes.push(Node {
                edges: (e0, count(trie.edges.len())),
                items: (i0, count(trie.items.len())),
            });
        }
        trie
    }
}

#[cfg(test)]
mod trie_tests {
    use super::TrieBuilder;

    #[test]
    fn walk_yields_every_stored_prefix_in_order() {
        let mut b = TrieBuilder::new();
        for (k, v) in [
            ("", 0),
            ("get-", 1),
            ("get-m", 2),
            ("get-mailbox", 3),
            ("set-", 4),
        ] {
            b.insert(k.bytes(), v);
        }
        b.insert("get-".bytes(), 5);
        let t = b.freeze();
        let mut seen = Vec::new();
        t.walk("get-mailbox".bytes(), |items| seen.extend_from_slice(items));
        assert_eq!(seen, [0, 1, 5, 2, 3]);
        seen.clear();
        t.walk("get-mailboxes".bytes(), |items| {
            seen.extend_from_slice(items)
        });
        assert_eq!(seen, [0, 1, 5, 2, 3]);
        seen.clear();
        t.walk("ge".bytes(), |items| seen.extend_from_slice(items));
        assert_eq!(seen, [0]);
        assert_eq!(t.get("get-".bytes()), [1, 5]);
        assert!(t.get("get".bytes()).is_empty());
        assert!(t.get("get-mx".bytes()).is_empty());
    }

    #[test]
    fn an_empty_trie_yields_nothing() {
        let t = TrieBuilder::<u32>::new().freeze();
        let mut n = 0;
        t.walk("x".bytes(), |_| n += 1);
        assert_eq!(n, 0);
        assert!(t.get(std::iter::empty()).is_empty());
    }
}
