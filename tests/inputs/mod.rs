//! Inputs some tests need from outside the repository (the Exchange corpus, `asciinema`, `pwsh`),
//! and the one way a test says it did not run because one is missing.
//!
//! Under `CI=true` a missing input is a failure, so a skipped test never looks like a pass there.
//! Otherwise the test prints `SKIPPED: reason` and, when `JITSH_SKIP_FILE` names a file, appends
//! the reason to it (`.ci/run` counts those lines).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file of the Exchange corpus, which sits in `../shared/corpus` beside the checkout.
pub fn corpus_file(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(name);
    path.is_file().then_some(path)
}

/// The corpus file `name`, or a skip (a failure under `CI=true`) naming what is missing.
pub fn corpus_or_skip(name: &str, test: &str) -> Option<PathBuf> {
    let found = corpus_file(name);
    if found.is_none() {
        skip(
            test,
            &format!("../shared/corpus/{name} is not beside the checkout"),
        );
    }
    found
}

/// Whether this run is CI (`CI=true`), where missing inputs fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Report that `test` did not run because of `reason`; panics under `CI=true`.
pub fn skip(test: &str, reason: &str) {
    assert!(
        !in_ci(),
        "{test}: {reason} (CI=true: a missing test input is a failure)"
    );
    record(test, reason);
}

/// Report a skip for an input CI cannot always provide (real PowerShell): it fails only when
/// the environment variable `require` is `1`.
pub fn skip_unless_required(test: &str, reason: &str, require: &str) {
    assert!(
        std::env::var(require).map_or(true, |v| v != "1"),
        "{test}: {reason} ({require}=1: this input is required)"
    );
    record(test, reason);
}

fn record(test: &str, reason: &str) {
    eprintln!("SKIPPED: {test}: {reason}");
    if let Some(path) = std::env::var_os("JITSH_SKIP_FILE") {
        // One short line per write, so concurrent tests do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(format!("{test}: {reason}\n").as_bytes());
        }
    }
}
