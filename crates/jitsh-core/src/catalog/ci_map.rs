//! A map keyed by names compared as `str::to_lowercase` compares them.
//!
//! Every command word and every parameter of every line is looked up here (command, alias,
//! parameter). A `str`-keyed map needs the lowercased query as a `str`, which costs a UTF-8
//! check per lookup that an ASCII name cannot fail; this one takes the lowercased bytes.
//! Its key ([`Lower`]) and query ([`Query`]) also serve the policy index's exact task names,
//! which the policy lowercases by its own rule before they get here.

use std::hash::{Hash, Hasher};

/// Values by name, case-insensitively (`str::to_lowercase`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CiMap<V> {
    map: hashbrown::HashMap<Lower, V, foldhash::fast::RandomState>,
    /// The longest key's length in bytes. Lowercasing ASCII keeps a name's length, so an ASCII
    /// name longer than this is in no key: most command words are full cmdlet names, longer
    /// than any alias, and are turned away without hashing them or reading the table.
    longest: usize,
}

/// A key as stored: the name lowercased, in place when it is short (nearly every command and
/// parameter name). A probe then compares with the table's own memory instead of reading
/// another allocation, which the load of a large policy set leaves anywhere in the heap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lower {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

/// The longest key held in place: the key is then as large as a `String`'s header plus eight.
const INLINE: usize = 30;

impl Lower {
    /// `lower`, already lowercased, as a key.
    pub(crate) fn new(lower: String) -> Lower {
        let mut bytes = [0u8; INLINE];
        match (bytes.get_mut(..lower.len()), u8::try_from(lower.len())) {
            (Some(head), Ok(len)) => {
                head.copy_from_slice(lower.as_bytes());
                Lower::Inline { len, bytes }
            }
            _ => Lower::Heap(lower.into_boxed_str()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Lower::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Lower::Heap(s) => s.as_bytes(),
        }
    }

    /// The key as text: a whole lowercased `str`'s bytes, so always UTF-8.
    fn as_str(&self) -> &str {
        match self {
            Lower::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Lower::Heap(s) => s,
        }
    }
}

/// A query: a name lowercased, as bytes.
pub(crate) struct Query<'a>(pub(crate) &'a [u8]);

impl Hash for Lower {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.as_bytes());
    }
}

impl Hash for Query<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.0);
    }
}

impl hashbrown::Equivalent<Lower> for Query<'_> {
    fn equivalent(&self, key: &Lower) -> bool {
        self.0 == key.as_bytes()
    }
}

impl<V> CiMap<V> {
    pub(crate) fn with_capacity(n: usize) -> CiMap<V> {
        CiMap {
            map: hashbrown::HashMap::with_capacity_and_hasher(n, Default::default()),
            longest: 0,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        // Lowercased on the stack for the short ASCII names commands and parameters have. As
        // bytes: a `str` would need a UTF-8 check that ASCII cannot fail.
        if name.len() > self.longest && name.is_ascii() {
            return None;
        }
        let mut buf = [0u8; 64];
        match super::ascii_lower(name, &mut buf) {
            Some(lower) => self.map.get(&Query(lower)),
            None => self.map.get(&Query(name.to_lowercase().as_bytes())),
        }
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name`'s value, replacing any under a name that folds alike.
    pub(crate) fn insert(&mut self, name: &str, value: V) {
        let lower = name.to_lowercase();
        self.longest = self.longest.max(lower.len());
        self.map.insert(Lower::new(lower), value);
    }

    /// Sets `name`'s value unless a name that folds alike has one.
    pub(crate) fn insert_first(&mut self, name: &str, value: V) {
        if !self.contains_key(name) {
            self.insert(name, value);
        }
    }

    /// Every (lowercased name, value).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds `other`'s entries; on a clash `other`'s value wins.
    pub(crate) fn extend(&mut self, other: CiMap<V>) {
        self.longest = self.longest.max(other.longest);
        self.map.extend(other.map);
    }
}

#[cfg(test)]
mod tests {
    use super::CiMap;

    /// Names found in any ASCII casing and, when not ASCII, as `str::to_lowercase` folds them;
    /// the first of two names that fold alike kept by `insert_first`, the last by `insert`;
    /// near misses (one byte more or less, another letter, an ASCII-only fold of a non-ASCII
    /// name) not found; over enough names that the table grows several times.
    #[test]
    fn finds_names_as_to_lowercase_compares_them_and_nothing_else() {
        let mut m = CiMap::with_capacity(0);
        let names: Vec<String> = (0..500)
            .map(|i| format!("Get-Mailbox{i}Statistics"))
            .collect();
        for (i, n) in names.iter().enumerate() {
            m.insert_first(n, i);
        }
        m.insert_first("GET-MAILBOX7STATISTICS", 9999);
        m.insert_first("Ärger-Ölfass", 500);
        m.insert_first("\u{212A}elvin", 501); // KELVIN SIGN folds to `k`
        m.insert_first("x", 502);
        assert_eq!(m.len(), 503);
        for (i, n) in names.iter().enumerate() {
            for q in [n.clone(), n.to_uppercase(), n.to_lowercase()] {
                assert_eq!(m.get(&q), Some(&i), "{q}");
            }
        }
        for q in ["ärger-ölfass", "ÄRGER-ÖLFASS", "Ärger-Ölfass"] {
            assert_eq!(m.get(q), Some(&500), "{q}");
        }
        for q in ["kelvin", "KELVIN", "\u{212A}ELVIN"] {
            assert_eq!(m.get(q), Some(&501), "{q}");
        }
        assert_eq!(m.get("X"), Some(&502));
        for q in [
            "",
            "Get-Mailbox7Statistic",
            "Get-Mailbox7Statisticss",
            "Get_Mailbox7Statistics",
            "Get-Mailbox500Statistics",
            "äRGER-öLFASS ",
            "y",
            "ärger-Ölfas",
        ] {
            assert_eq!(m.get(q), None, "{q}");
        }
        m.insert("get-mailbox7statistics", 7777);
        assert_eq!(m.get("Get-Mailbox7Statistics"), Some(&7777));
        assert_eq!(m.len(), 503);
        let mut keys: Vec<&str> = m
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !k.starts_with("get-"))
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["kelvin", "x", "ärger-ölfass"]);
    }

    /// The length bound turns away only names that are in no key: ASCII names one byte longer
    /// than the longest key are not found, names of its length are, and a non-ASCII name that
    /// is longer than every key until lowercased (the Kelvin sign's three bytes fold to `k`) is
    /// found; the bound follows keys added by `insert` and `extend`.
    #[test]
    fn names_longer_than_every_key_are_turned_away_only_when_absent() {
        let mut m = CiMap::with_capacity(0);
        assert_eq!(m.get(""), None::<&u8>);
        m.insert_first("gci", 1);
        m.insert_first("\u{212A}", 2);
        assert_eq!(m.get("GCI"), Some(&1));
        assert_eq!(m.get("gcix"), None);
        assert_eq!(m.get("Get-ChildItem"), None);
        for q in ["\u{212A}", "k", "K"] {
            assert_eq!(m.get(q), Some(&2), "{q}");
        }
        let mut longer = CiMap::with_capacity(0);
        longer.insert_first("Get-ChildItem", 3);
        m.extend(longer);
        assert_eq!(m.get("GET-CHILDITEM"), Some(&3));
        m.insert("Set-MailboxAutoReplyConfiguration", 4);
        assert_eq!(m.get("set-mailboxautoreplyconfiguration"), Some(&4));
        assert_eq!(m.get("Set-MailboxAutoReplyConfigurationX"), None);
        // A name that lowercases longer than it is written (U+0130 is two bytes, three once
        // lowercased) is found by its folded form.
        m.insert_first("\u{130}x", 5);
        assert_eq!(m.get("\u{130}X"), Some(&5));
    }

    /// Keys short enough to be held in place and keys too long for it are found alike, and
    /// never for a query that is one byte longer or shorter: names of 29 to 32 bytes, one
    /// ending in a character of two bytes across the limit.
    #[test]
    fn keys_in_place_and_on_the_heap_are_found_alike() {
        let mut m = CiMap::with_capacity(0);
        let names: Vec<String> = (29..=32)
            .map(|n| "Get-".to_string() + &"a".repeat(n - 4))
            .chain(["Set-".to_string() + &"b".repeat(25) + "É"])
            .collect();
        for (i, n) in names.iter().enumerate() {
            m.insert_first(n, i);
        }
        assert_eq!(m.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            for q in [n.clone(), n.to_uppercase(), n.to_lowercase()] {
                assert_eq!(m.get(&q), Some(&i), "{q}");
            }
            assert_eq!(m.get(&format!("{n}x")), None, "{n}x");
            assert_eq!(m.get(&n[1..]), None, "{}", &n[1..]);
        }
        let mut keys: Vec<&str> = m.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        let mut want: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        want.sort_unstable();
        assert_eq!(keys, want);
    }
}
