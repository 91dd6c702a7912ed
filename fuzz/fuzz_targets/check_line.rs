//! The gate's whole per-line path (parse, resolve, policy decision, token cover) under the
//! shipped policies and the builtin catalog must never panic on any line
//! (`jitsh::gate::fuzz_check_line`, which `tests/fuzz_corpus.rs` also replays the saved corpus
//! through).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use jitsh::policy::{load_dir, PolicySet};
use libfuzzer_sys::fuzz_target;

fn policies() -> &'static PolicySet {
    static POLICIES: OnceLock<PolicySet> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        match load_dir(&dir) {
            Ok(p) => p,
            Err(e) => panic!("shipped policies must load: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| jitsh::gate::fuzz_check_line(data, policies()));
