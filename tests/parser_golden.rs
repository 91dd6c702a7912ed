//! Golden tests: every `tests/fixtures/parse/NAME.ps1` is run through
//! `jitsh::resolve::parse_report` (the `jitsh parse` output); the result must equal `NAME.json`.
//! A `.ps1` without a `.json` must fail to parse. `JITSH_BLESS=1` rewrites existing `.json` files
//! (create an empty `.json` first to add a new golden).

use std::path::{Path, PathBuf};

use jitsh::resolve::{parse_report, Catalog};

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
    assert!(all.len() >= 40, "expected at least 40 fixtures, found {}", all.len());
    for ps1 in all {
        let text = std::fs::read_to_string(&ps1).expect("read fixture");
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let report = parse_report(text, Catalog::builtin());
        let json_path = ps1.with_extension("json");
        let name = ps1.file_stem().unwrap_or_default().to_string_lossy().to_string();
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
            failures.push(format!("{name}: output differs\n--- expected\n{expected}\n--- actual\n{rendered}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
