//! Gate latency and parser throughput, measured (not asserted).
//!
//! `cargo bench --bench check` prints, for 10 / 1,000 / 100,000 rules, the median and p99 time of
//! one `check_line` (parse + resolve + decide) over real Exchange example lines, the time to load
//! each policy set, and the parser's throughput over the whole example corpus.
//! The corpus is read from ../shared/corpus when present; a small built-in sample otherwise.

use std::collections::HashSet;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use jitsh::catalog::Catalog;
use jitsh::gate::{check_line, GateContext};
use jitsh::policy::{synthetic_policy_set, PolicySet, PolicySource};

const FALLBACK: &[&str] = &[
    "Get-Mailbox -Identity rob@contoso.com | Format-List",
    "New-MoveRequest -Identity 'Ayla Kol' -TargetDatabase DB02",
    "Get-Mailbox -ResultSize Unlimited | Where-Object {$_.ArchiveStatus -eq 'Active'} | Select-Object Name",
    "Set-Mailbox -Identity rob -ForwardingSmtpAddress rob@fabrikam.com",
    "Get-MessageTrace -StartDate (Get-Date).AddDays(-7) -EndDate (Get-Date)",
];

fn corpus_lines() -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/exchange-examples.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned))
            .collect(),
        Err(_) => {
            eprintln!(
                "corpus not found at {}: using {} built-in lines",
                path.display(),
                FALLBACK.len()
            );
            FALLBACK.iter().map(|s| s.to_string()).collect()
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let lines = corpus_lines();
    let catalog = Catalog::builtin();
    let revoked = HashSet::new();

    // Parser throughput over the whole corpus.
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let rounds = if quick { 1 } else { 20 };
    let start = Instant::now();
    for _ in 0..rounds {
        for l in &lines {
            let _ = black_box(jitsh::syntax::parse(black_box(l)));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "parser: {} lines, {} bytes, {:.1} MB/s (parse only), {:.1} µs/line",
        lines.len(),
        bytes,
        (bytes * rounds) as f64 / secs / 1e6,
        secs * 1e6 / (lines.len() * rounds) as f64
    );
    let start = Instant::now();
    for _ in 0..rounds {
        for l in &lines {
            let _ = black_box(jitsh::resolve::analyse(black_box(l), catalog));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "parser+resolver: {:.1} MB/s",
        (bytes * rounds) as f64 / secs / 1e6
    );

    for n in [10usize, 1_000, 100_000] {
        let text = synthetic_policy_set(n);
        let start = Instant::now();
        let set = match PolicySet::from_sources(&[PolicySource {
            name: format!("synthetic-{n}.toml"),
            text,
        }]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("synthetic policy set of {n} rules does not load: {e}");
                std::process::exit(1);
            }
        };
        let load = start.elapsed();
        let ctx = GateContext {
            policies: &set,
            catalog,
            user: "alice",
            now: chrono::DateTime::UNIX_EPOCH,
            tokens: &[],
            revoked: &revoked,
            skew: chrono::Duration::seconds(30),
            online: false,
        };
        let reps = if quick { 1 } else { 5 };
        let mut samples = Vec::with_capacity(lines.len() * reps);
        for _ in 0..reps {
            for l in &lines {
                let t = Instant::now();
                let d = check_line(black_box(l), &ctx);
                samples.push(t.elapsed());
                let _ = black_box(d);
            }
        }
        samples.sort();
        // Decision alone, on pre-resolved invocations: the policy engine's share.
        let invs: Vec<_> = lines
            .iter()
            .filter_map(|l| jitsh::resolve::analyse(l, catalog).ok())
            .flatten()
            .collect();
        let mut decide = Vec::with_capacity(invs.len() * reps);
        for _ in 0..reps {
            for inv in &invs {
                let t = Instant::now();
                let d = set.decide(black_box(inv));
                decide.push(t.elapsed());
                let _ = black_box(d);
            }
        }
        decide.sort();
        println!(
            "{n:>7} rules: load {:>8.1} ms | check_line median {:>6.2} µs p99 {:>7.2} µs | decide median {:>5.2} µs p99 {:>5.2} µs ({} lines, {} invocations)",
            load.as_secs_f64() * 1e3,
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
            percentile(&decide, 0.5).as_secs_f64() * 1e6,
            percentile(&decide, 0.99).as_secs_f64() * 1e6,
            lines.len(),
            invs.len(),
        );
    }
}
