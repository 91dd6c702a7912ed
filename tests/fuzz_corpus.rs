//! Replays the committed fuzz seed corpora (`fuzz/corpus/<target>`, written by `fuzz/seed.sh`)
//! through the same entry functions the cargo-fuzz targets call, so every `cargo test` runs
//! them: the parser's print round trip, the token decoders and the gate's whole per-line path.
//! A crash file kept under `fuzz/artifacts/<target>/` is replayed too.

#![allow(clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};

use jitsh::policy::load_dir;

/// The files of `fuzz/corpus/<target>` and `fuzz/artifacts/<target>`, sorted.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("artifacts").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() {
                let data = std::fs::read(&p).expect("read seed");
                out.push((p, data));
            }
        }
    }
    out.sort();
    out
}

/// Runs `f` on every input of `target`; a panic names the file.
fn replay(target: &str, min: usize, f: impl Fn(&[u8])) {
    let all = inputs(target);
    assert!(
        all.len() >= min,
        "fuzz/corpus/{target} holds {} files, expected at least {min}: run fuzz/seed.sh",
        all.len()
    );
    for (path, data) in &all {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(data)));
        if let Err(e) = outcome {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} fails: {msg}", path.display());
        }
    }
}

#[test]
fn parse_corpus_round_trips() {
    replay("parse", 200, jitsh::syntax::fuzz_parse);
}

#[test]
fn token_decode_corpus_never_panics() {
    replay("token_decode", 50, jitsh::token::fuzz_decode);
}

#[test]
fn check_line_corpus_never_panics() {
    let policies = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .expect("shipped policies load");
    replay("check_line", 200, |data| {
        jitsh::gate::fuzz_check_line(data, &policies)
    });
}
