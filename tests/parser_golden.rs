//! Golden tests: every `tests/fixtures/parse/NAME.ps1` is run through
//! `jitsh::resolve::parse_report` (the `jitsh parse` output); the result must equal `NAME.json`.
//! A `.ps1` without a `.json` must fail to parse. `JITSH_BLESS=1` rewrites existing `.json` files
//! (create an empty `.json` first to add a new golden).

#![allow(clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

mod inputs;

use std::path::{Path, PathBuf};

use jitsh::catalog::Catalog;
use jitsh::resolve::parse_report;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parse");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ps1"))
        .collect();
    out.sort();
    out
}

#[test]
fn parse_goldens() {
    let bless = std::env::var("JITSH_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let all = fixtures();
    assert!(
        all.len() >= 40,
        "expected at least 40 fixtures, found {}",
        all.len()
    );
    for ps1 in all {
        let text = std::fs::read_to_string(&ps1).expect("read fixture");
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let report = parse_report(text, Catalog::builtin());
        let json_path = ps1.with_extension("json");
        let name = ps1
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !json_path.exists() {
            if report["error"].is_null() {
                failures.push(format!("{name}: expected a parse error, got {report}"));
            }
            continue;
        }
        let rendered = serde_json::to_string_pretty(&report).expect("json") + "\n";
        if bless {
            std::fs::write(&json_path, &rendered).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&json_path).expect("read golden");
        if expected != rendered {
            failures.push(format!(
                "{name}: output differs\n--- expected\n{expected}\n--- actual\n{rendered}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Known failures (examples that do not parse, or do not yield their cmdlet's invocation):
/// `ID<TAB>reason` lines; `#` starts a comment line.
fn known_failures() -> Vec<(String, String)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus-known-failures.txt");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once('\t').unwrap_or((l, ""));
            (id.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

/// Whether `name` occurs in `text` as a whole command word (not as part of a longer name).
fn mentions(text: &str, name: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let needle = name.to_ascii_lowercase();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    lower.match_indices(&needle).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + needle.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[test]
fn corpus_examples_parse_and_name_their_cmdlet() {
    let Some(path) = inputs::corpus_or_skip(
        "exchange-examples.jsonl",
        "corpus_examples_parse_and_name_their_cmdlet",
    ) else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("read corpus");
    let known = known_failures();
    for (id, reason) in &known {
        assert!(!reason.is_empty(), "known failure `{id}` needs a reason");
    }
    let catalog = Catalog::builtin();
    let mut total = 0usize;
    let mut failed: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let mut unnamed = 0usize;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("corpus line");
        let (Some(id), Some(cmdlet), Some(src)) =
            (v["id"].as_str(), v["cmdlet"].as_str(), v["text"].as_str())
        else {
            continue;
        };
        total += 1;
        ids.insert(id.to_string());
        match jitsh::resolve::analyse(src, catalog) {
            Err(e) => {
                failed.push(id.to_string());
                if !known.iter().any(|(k, _)| k == id) {
                    problems.push(format!(
                        "{id}: does not parse ({e}) and is not a known failure"
                    ));
                }
            }
            Ok(invs) => {
                // Known to the catalog: the canonical casing must come out exactly.
                let named = match catalog.command(cmdlet) {
                    Some(m) => invs.iter().any(|i| i.name == m.name),
                    None => invs.iter().any(|i| i.name.eq_ignore_ascii_case(cmdlet)),
                };
                let is_known = known.iter().any(|(k, _)| k == id);
                if mentions(src, cmdlet) && !named {
                    unnamed += 1;
                    if !is_known {
                        let names: Vec<&str> = invs.iter().map(|i| i.name.as_str()).collect();
                        problems.push(format!(
                            "{id}: no invocation of `{cmdlet}` (found {names:?})"
                        ));
                    }
                } else if is_known {
                    problems.push(format!(
                        "{id}: passes now; remove it from corpus-known-failures.txt"
                    ));
                }
            }
        }
    }
    for (id, _) in &known {
        if !ids.contains(id) {
            problems.push(format!(
                "{id}: listed as a known failure but not in the corpus"
            ));
        }
    }
    let parsed = total - failed.len();
    let yielded = parsed - unnamed;
    println!("corpus: {parsed}/{total} examples parse");
    println!(
        "corpus: {yielded}/{total} examples ({:.2}%) yield their own cmdlet",
        yielded as f64 * 100.0 / total as f64
    );
    assert!(total > 0);
    assert!(parsed * 100 >= total * 99, "only {parsed}/{total} parse");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A rough measurement (run with `--nocapture`; use `--release` or `cargo bench --bench parse`
/// for real numbers): parse and parse+resolve throughput over the whole corpus.
#[test]
fn corpus_throughput() {
    let Some(path) = inputs::corpus_or_skip("exchange-examples.jsonl", "corpus_throughput") else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("read corpus");
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let catalog = Catalog::builtin();
    let _ = jitsh::resolve::analyse("Get-Mailbox", catalog); // warm the catalog index
    let start = std::time::Instant::now();
    for l in &lines {
        let _ = std::hint::black_box(jitsh::syntax::parse(l));
    }
    let parse = start.elapsed();
    let start = std::time::Instant::now();
    for l in &lines {
        let _ = std::hint::black_box(jitsh::resolve::analyse(l, catalog));
    }
    let both = start.elapsed();
    let mb = bytes as f64 / 1e6;
    println!(
        "corpus {mb:.2} MB in {} lines: parse {:.1} MB/s, parse+resolve {:.1} MB/s",
        lines.len(),
        mb / parse.as_secs_f64(),
        mb / both.as_secs_f64()
    );
}
