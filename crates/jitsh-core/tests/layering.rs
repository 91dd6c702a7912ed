//! The core stays pure: its source never reaches files, sockets, processes, the environment,
//! the standard streams, threads, the OS random source or the clock, and it depends only on
//! crates that cannot do so for it. Time and randomness are passed in by the caller.
//!
//! A plain scan of the source text (no parsing): it is conservative (a forbidden path inside a
//! string literal counts too), and comments and test-only modules (`#[cfg(test)] mod tests`)
//! are skipped, since tests may time themselves or read fixtures.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the core's source must not use, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("std::fs", "file system I/O"),
    ("std::net", "network I/O"),
    ("std::process", "processes"),
    ("std::env", "the environment"),
    ("std::os", "OS-specific I/O"),
    ("std::io::stdin", "the standard streams"),
    ("std::io::stdout", "the standard streams"),
    ("std::io::stderr", "the standard streams"),
    ("io::stdin(", "the standard streams"),
    ("io::stdout(", "the standard streams"),
    ("io::stderr(", "the standard streams"),
    ("File::", "file system I/O"),
    ("OpenOptions", "file system I/O"),
    ("TcpStream", "network I/O"),
    ("UdpSocket", "network I/O"),
    ("println!", "the standard streams"),
    ("eprintln!", "the standard streams"),
    ("print!", "the standard streams"),
    ("eprint!", "the standard streams"),
    ("dbg!", "the standard streams"),
    ("SystemTime::now", "the clock (pass `now` in)"),
    ("Instant::now", "the clock (pass `now` in)"),
    ("OffsetDateTime::now", "the clock (pass `now` in)"),
    ("Utc::now", "the clock (pass `now` in)"),
    ("Local::now", "the clock (pass `now` in)"),
    (
        "SystemRandom",
        "the OS random source (pass a `SecureRandom` in)",
    ),
    ("tokio", "an async runtime"),
    ("thread::spawn", "threads"),
    ("std::thread", "threads"),
];

/// `std` modules that must not appear in a grouped import such as `use std::{fs, io};`.
const FORBIDDEN_STD_MODULES: &[&str] = &["fs", "net", "process", "env", "os", "thread"];

/// The core's direct dependencies: all pure (ring's randomness is used only through a
/// `SecureRandom` the caller passes in).
const ALLOWED_DEPENDENCIES: &[&str] = &[
    "base64",
    "chrono",
    "foldhash",
    "hashbrown",
    "smol_str",
    "nom",
    "regex",
    "ring",
    "serde",
    "serde_json",
    "thiserror",
    "toml",
];

/// Crates that do I/O or run a runtime: none may be reached through any dependency either.
const FORBIDDEN_TRANSITIVE: &[&str] = &[
    "axum",
    "hyper",
    "lettre",
    "mio",
    "nix",
    "portable-pty",
    "reqwest",
    "rusqlite",
    "socket2",
    "tokio",
    "tokio-postgres",
];

/// One forbidden use: `file:line: what (why)`.
fn scan(file: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        if line.trim_end() == "#[cfg(test)]" {
            // Skip the attributes after it; an inline test module is skipped to its closing
            // brace (rustfmt puts it alone in column 0). Declared test files are skipped by
            // `test_only_files`.
            while lines
                .peek()
                .is_some_and(|(_, l)| l.starts_with("#[") || l.starts_with("#!["))
            {
                lines.next();
            }
            if lines
                .peek()
                .is_some_and(|(_, l)| l.starts_with("mod ") && l.trim_end().ends_with('{'))
            {
                for (_, l) in lines.by_ref() {
                    if l.trim_end() == "}" {
                        break;
                    }
                }
            }
            continue;
        }
        let code = strip_comment(line);
        for (what, why) in FORBIDDEN {
            if contains_path(code, what) {
                found.push(format!("{file}:{}: `{what}` ({why})", n + 1));
            }
        }
        if let Some(start) = code.find("std::{") {
            let group = &code[start + "std::{".len()..];
            for module in FORBIDDEN_STD_MODULES {
                if group
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == *module)
                {
                    found.push(format!(
                        "{file}:{}: `std::{{{module}, ..}}` (I/O, threads or the environment)",
                        n + 1
                    ));
                }
            }
        }
    }
    found
}

/// The line without a trailing `//` comment (doc comments included). A `//` inside a string
/// literal cuts the line short, which can only hide code after it in that string.
fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(at) => &line[..at],
        None => line,
    }
}

/// Whether `path` occurs in `code` not as the tail of a longer identifier (`my_tokio` or
/// `reprint!` do not count).
fn contains_path(code: &str, path: &str) -> bool {
    code.match_indices(path).any(|(at, _)| {
        code[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// Files that are declared `#[cfg(test)] mod NAME;`: test code, not scanned.
fn test_only_files(path: &Path, text: &str) -> BTreeSet<PathBuf> {
    let dir = match path.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs") => path.parent().unwrap().to_path_buf(),
        _ => path.with_extension(""),
    };
    let mut out = BTreeSet::new();
    let mut test_attr = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line == "#[cfg(test)]" {
            test_attr = true;
        } else if test_attr && line.starts_with("#[") {
            continue;
        } else {
            if test_attr {
                if let Some(name) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
                    out.insert(dir.join(format!("{name}.rs")));
                    out.insert(dir.join(name).join("mod.rs"));
                }
            }
            test_attr = false;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every dependency table of a manifest (normal, build, target-specific) with what it names
/// that is not allowed; dev-dependencies are test code and not checked.
fn manifest_findings(manifest: &str) -> Vec<String> {
    let doc: toml::Table = manifest.parse().unwrap();
    let mut tables = vec![("dependencies".to_string(), doc.get("dependencies"))];
    tables.push(("build-dependencies".into(), doc.get("build-dependencies")));
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        for (cfg, t) in targets {
            tables.push((format!("target.{cfg}.dependencies"), t.get("dependencies")));
            tables.push((
                format!("target.{cfg}.build-dependencies"),
                t.get("build-dependencies"),
            ));
        }
    }
    let mut found = Vec::new();
    for (name, table) in tables {
        let Some(table) = table.and_then(|t| t.as_table()) else {
            continue;
        };
        for (dep, spec) in table {
            let package = spec.get("package").and_then(|p| p.as_str()).unwrap_or(dep);
            if name != "dependencies" || !ALLOWED_DEPENDENCIES.contains(&package) {
                found.push(format!(
                    "Cargo.toml [{name}]: `{package}` is not in the core's allowlist"
                ));
            }
        }
    }
    if doc
        .get("package")
        .and_then(|p| p.get("build"))
        .is_some_and(|b| b.as_bool() != Some(false))
    {
        found.push("Cargo.toml: a build script runs code at build time".into());
    }
    found
}

/// Packages reachable from `root` in a Cargo.lock, by name.
fn reachable(lock: &str, root: &str) -> BTreeSet<String> {
    let doc: toml::Table = lock.parse().unwrap();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in doc["package"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_string();
        let list = package
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    // "name" or "name version" or "name version (source)"
                    .filter_map(|s| s.as_str()?.split(' ').next().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            todo.extend(deps.get(&name).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn core_source_does_no_io_and_reads_no_clock() {
    let src = crate_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "the core's source was not found under {}",
        src.display()
    );
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();
    let test_only: BTreeSet<PathBuf> = texts
        .iter()
        .flat_map(|(p, t)| test_only_files(p, t))
        .collect();
    let mut found = Vec::new();
    for (path, text) in &texts {
        if test_only.contains(path) {
            continue;
        }
        let shown = path.strip_prefix(crate_dir()).unwrap_or(path).display();
        found.extend(scan(&format!("crates/jitsh-core/{shown}"), text));
    }
    assert!(
        found.is_empty(),
        "the pure core must not do I/O or read the clock (take time and randomness as parameters; \
         I/O belongs to the jitsh crate):\n{}",
        found.join("\n")
    );
}

#[test]
fn core_depends_only_on_pure_crates() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let found = manifest_findings(&manifest);
    assert!(found.is_empty(), "{}", found.join("\n"));

    let lock = std::fs::read_to_string(crate_dir().join("../../Cargo.lock")).unwrap();
    let reached = reachable(&lock, "jitsh-core");
    assert!(
        reached.contains("nom") && reached.contains("ring"),
        "jitsh-core's dependencies were not found in Cargo.lock"
    );
    let bad: Vec<_> = FORBIDDEN_TRANSITIVE
        .iter()
        .filter(|c| reached.contains(**c))
        .collect();
    assert!(
        bad.is_empty(),
        "jitsh-core reaches I/O crates through its dependencies: {bad:?}"
    );
}

// ---- the checks themselves catch what they must -------------------------------------------

#[test]
fn scanner_flags_io_clock_and_threads() {
    let sample = "\
use std::fs;
use std::{collections::HashMap, env};
fn f() {
    let t = std::time::Instant::now();
    let n = time::OffsetDateTime::now_utc();
    println!(\"{t:?}\");
    let _ = std::process::Command::new(\"x\");
    std::thread::spawn(|| ());
    let rng = ring::rand::SystemRandom::new();
    let rt = tokio::runtime::Runtime::new();
    let mut out = std::io::stdout();
    let f = File::open(\"p\");
}
";
    let found = scan("x.rs", sample);
    for expected in [
        "x.rs:1: `std::fs`",
        "x.rs:2: `std::{env, ..}`",
        "x.rs:4: `Instant::now`",
        "x.rs:5: `OffsetDateTime::now`",
        "x.rs:6: `println!`",
        "x.rs:7: `std::process`",
        "x.rs:8: `std::thread`",
        "x.rs:8: `thread::spawn`",
        "x.rs:9: `SystemRandom`",
        "x.rs:10: `tokio`",
        "x.rs:11: `std::io::stdout`",
        "x.rs:12: `File::`",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(expected)),
            "{expected} not found in {found:#?}"
        );
    }
    // `print!` is also a suffix of `println!`; each line of the sample has at least one hit.
    let lines: BTreeSet<&str> = found.iter().map(|f| f.split(':').nth(1).unwrap()).collect();
    assert_eq!(lines.len(), 11, "{found:#?}");
}

#[test]
fn scanner_passes_pure_code_comments_and_test_modules() {
    let sample = "\
//! Reads no `std::fs`; `println!` is for the CLI.
use std::collections::HashMap;
use crate::token::VerifiedToken;
pub fn check(now: time::OffsetDateTime) -> bool { // not Instant::now()
    let reprint = 1; let my_tokio = 2; // identifiers that merely end like a forbidden name
    now.unix_timestamp() > reprint + my_tokio
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn timed() {
        let t = std::time::Instant::now();
        eprintln!(\"{:?}\", t.elapsed());
    }
}
";
    assert_eq!(scan("y.rs", sample), Vec::<String>::new());
    // Code after the test module is scanned again.
    let after = format!("{sample}fn late() {{ let _ = std::env::var(\"HOME\"); }}\n");
    let found = scan("y.rs", &after);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("y.rs:18: `std::env`"), "{found:#?}");
}

#[test]
fn declared_test_files_are_recognised() {
    let text = "pub mod walk;\n#[cfg(test)]\n#[allow(clippy::panic)]\nmod tests;\nmod safe;\n";
    let files = test_only_files(Path::new("src/resolve/mod.rs"), text);
    assert!(
        files.contains(Path::new("src/resolve/tests.rs")),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.ends_with("safe.rs")), "{files:?}");
    assert!(!files.iter().any(|f| f.ends_with("walk.rs")), "{files:?}");
}

#[test]
fn manifest_check_refuses_io_crates() {
    let manifest = r#"
[package]
name = "jitsh-core"
[dependencies]
serde = "1"
tokio = { version = "1" }
net = { package = "reqwest", version = "0.12" }
[target.'cfg(unix)'.dependencies]
nix = "0.28"
[dev-dependencies]
tempfile = "3"
"#;
    let found = manifest_findings(manifest);
    assert_eq!(found.len(), 3, "{found:#?}");
    for name in ["`tokio`", "`reqwest`", "`nix`"] {
        assert!(found.iter().any(|f| f.contains(name)), "{name}: {found:#?}");
    }
}

#[test]
fn lock_walk_finds_transitive_io_crates() {
    let lock = r#"
version = 4
[[package]]
name = "jitsh-core"
version = "0.1.0"
dependencies = ["helper"]
[[package]]
name = "helper"
version = "1.0.0"
dependencies = ["tokio 1.0.0"]
[[package]]
name = "tokio"
version = "1.0.0"
"#;
    let reached = reachable(lock, "jitsh-core");
    assert!(reached.contains("tokio"), "{reached:?}");
}
