//! Policy engine cost: `decide()` at 10 / 1,000 / 100,000 rules (it should not grow with the
//! number of rules) and loading 100,000 rules.
//!
//! `cargo bench --bench policy -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::panic, reason = "a bench with a broken fixture must stop")]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jitsh::invocation::{Invocation, Param, ParamValue, TaskKind};
use jitsh::policy::{synthetic_policy_set, PolicySet, PolicySource};
use jitsh::span::Span;

fn invocation(name: &str, params: &[(&str, &str)]) -> Invocation {
    Invocation {
        name: name.into(),
        module: None,
        as_written: name.into(),
        span: Span::new(0, name.len()),
        depth: 0,
        dynamic: None,
        params: params
            .iter()
            .map(|(n, v)| Param {
                name: (*n).into(),
                as_written: format!("-{n}").into(),
                value: ParamValue::Static((*v).into()),
                resolved: true,
            })
            .collect(),
        params_uncertain: None,
        pipeline_input: false,
        kind: TaskKind::Command,
        pipeline_params: Vec::new(),
    }
}

fn load(text: &str) -> PolicySet {
    match PolicySet::from_sources(&[PolicySource::new("synthetic.toml", text)]) {
        Ok(s) => s,
        Err(e) => panic!("synthetic policy does not load: {e}"),
    }
}

fn decide(c: &mut Criterion) {
    let invocations = [
        // an exact rule with params constraints (r3: Remove-Noun3, params.only + glob)
        invocation(
            "Remove-Noun3",
            &[("Identity", "bob@contoso.com"), ("DisplayName", "Bob")],
        ),
        // a prefix glob (r0: Get-*)
        invocation("Get-MailboxStatistics", &[("Identity", "bob")]),
        // nothing matches
        invocation("Unknown-Command", &[]),
    ];
    let mut group = c.benchmark_group("decide");
    for n in [10usize, 1_000, 100_000] {
        let set = load(&synthetic_policy_set(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| {
                for inv in &invocations {
                    let _ = black_box(set.decide(black_box(inv)));
                }
            })
        });
    }
    group.finish();
}

fn load_100k(c: &mut Criterion) {
    let text = synthetic_policy_set(100_000);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("100000", |b| b.iter(|| load(black_box(&text))));
    group.finish();
}

criterion_group!(benches, decide, load_100k);
criterion_main!(benches);
