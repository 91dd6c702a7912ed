//! Parse and resolve throughput over the Exchange example corpus.
//!
//! `cargo bench --bench parse` (needs ../shared/corpus or /work/shared/corpus).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jitsh::catalog::Catalog;

fn corpus_lines() -> Vec<String> {
    let near =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/exchange-examples.jsonl");
    let path = [
        near,
        PathBuf::from("/work/shared/corpus/exchange-examples.jsonl"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    let Some(path) = path else { return Vec::new() };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = corpus_lines();
    if lines.is_empty() {
        eprintln!("corpus not found; nothing to measure");
        return;
    }
    let bytes: usize = lines.iter().map(String::len).sum();
    let catalog = Catalog::builtin();
    let mut group = c.benchmark_group("corpus");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for l in &lines {
                let _ = std::hint::black_box(jitsh::syntax::parse(l));
            }
        })
    });
    group.bench_function("parse+resolve", |b| {
        b.iter(|| {
            for l in &lines {
                let _ = std::hint::black_box(jitsh::resolve::analyse(l, catalog));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
