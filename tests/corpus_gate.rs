//! The real Exchange corpus through the whole gate under the shipped policies: no example is
//! classed dynamic except the ones listed, with their reasons, in
//! tests/fixtures/corpus-dynamic.txt (`id<TAB>reason`). The list is checked both ways, so a
//! resolver change that makes a harmless example dynamic, or that stops seeing real dynamic code,
//! fails here. Skips (and says so) when ../shared/corpus is not beside the checkout.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly"
)]

mod inputs;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use jitsh::catalog::Catalog;
use jitsh::gate::{check_line, GateContext};
use jitsh::policy::load_dir;

#[test]
fn only_listed_examples_are_dynamic_under_shipped_policies() {
    let Some(path) = inputs::corpus_or_skip(
        "exchange-examples.jsonl",
        "only_listed_examples_are_dynamic_under_shipped_policies",
    ) else {
        return;
    };
    let policies = match load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")) {
        Ok(p) => p,
        Err(e) => panic!("shipped policies must load: {e}"),
    };
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies: &policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: time::OffsetDateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: time::Duration::seconds(30),
        online: false,
    };
    let listed_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus-dynamic.txt"),
    )
    .unwrap_or_default();
    let listed: BTreeMap<String, String> = listed_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, why)| (id.to_string(), why.to_string()))
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut found = BTreeMap::new();
    let mut total = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let (Some(id), Some(src)) = (v["id"].as_str(), v["text"].as_str()) else {
            continue;
        };
        total += 1;
        let d = check_line(src, &ctx);
        if let Some(inv) = d.invocations.iter().find(|i| i.dynamic) {
            found.insert(
                id.to_string(),
                format!("{}: {}", inv.as_written, inv.reason),
            );
        }
    }
    let unexpected: Vec<String> = found
        .iter()
        .filter(|(id, _)| !listed.contains_key(*id))
        .map(|(id, why)| format!("{id}\t{why}"))
        .collect();
    let stale: Vec<&String> = listed
        .keys()
        .filter(|id| !found.contains_key(*id))
        .collect();
    eprintln!(
        "{} of {total} examples are dynamic (all listed with reasons)",
        found.len()
    );
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "dynamic examples not in tests/fixtures/corpus-dynamic.txt:\n{}\nlisted but no longer dynamic: {stale:?}",
        unexpected.join("\n")
    );
}
