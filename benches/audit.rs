//! Audit log throughput: durable appends (one thread, and eight threads sharing group commits),
//! without and with the head anchored as the service keeps it, and verification speed over a
//! generated 1,000,000-record log.
//!
//! `cargo bench --bench audit` (set `JITSH_BENCH_RECORDS` to change the verify log size).

#![allow(clippy::unwrap_used, reason = "a benchmark stops on any failure")]

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use jitsh::audit::chain::{self, ChainHash, CheckpointSigner};
use jitsh::audit::read::verify_paths;
use jitsh::audit::{
    AuditEvent, AuditLog, AuditLogOptions, AuditSigner, AuditSink, FileAnchor, VerifyOptions,
};

fn signer() -> AuditSigner {
    AuditSigner {
        kid: "bench".into(),
        seed: [11; 32],
    }
}

fn event(thread: u64, n: u64) -> AuditEvent {
    let details = serde_json::json!({
        "line": "Get-Mailbox -Identity bob | Set-Mailbox -ProhibitSendQuota 5GB",
        "session": format!("s{thread}"),
        "invocations": [{"name": "Set-Mailbox", "rule": "quota", "decision": "allow", "n": n}],
    });
    AuditEvent {
        time: "2026-01-01T00:00:00Z".into(),
        actor: "alice".into(),
        action: "gate.decision".into(),
        subject: format!("s{thread}"),
        outcome: "allow".into(),
        details: details.as_object().cloned().unwrap_or_default(),
    }
}

/// Appends per second, and records per `fdatasync`, with `threads` appenders doing
/// `per_thread` appends each.
fn appends(threads: u64, per_thread: u64, anchored: bool) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let log = if anchored {
        // As the service opens it: the head saved in `audit.anchor` after every sync.
        let anchor = FileAnchor::open(&dir.path().join("audit.anchor")).unwrap();
        AuditLog::open_anchored(
            &dir.path().join("audit"),
            Some(signer()),
            AuditLogOptions::default(),
            Box::new(anchor),
        )
        .unwrap()
    } else {
        AuditLog::open(dir.path(), Some(signer())).unwrap()
    };
    let log = Arc::new(log);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for n in 0..per_thread {
                    log.append(event(t, n)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = log.stats();
    log.close().unwrap();
    (
        (threads * per_thread) as f64 / elapsed,
        stats.records as f64 / stats.syncs as f64,
    )
}

fn main() {
    let records: u64 = std::env::var("JITSH_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);

    let (one, batch) = appends(1, 2000, false);
    println!("append, 1 thread:   {one:.0} appends/s ({batch:.1} records per fdatasync)");
    let (eight, batch) = appends(8, 2000, false);
    println!("append, 8 threads:  {eight:.0} appends/s ({batch:.1} records per fdatasync)");
    let (one, batch) = appends(1, 2000, true);
    println!("anchored, 1 thread:  {one:.0} appends/s ({batch:.1} records per fdatasync)");
    let (eight, batch) = appends(8, 2000, true);
    println!("anchored, 8 threads: {eight:.0} appends/s ({batch:.1} records per fdatasync)");

    // A sealed log written without fsync (the chain is what is measured, not the disk).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit-000001.jsonl");
    let cp = CheckpointSigner::new(&signer()).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let mut head = ChainHash::ZERO;
    let mut seq = 1;
    let mut write = |ev: &AuditEvent, seq: &mut u64, head: &mut ChainHash| {
        let e = chain::encode(*seq, head, ev).unwrap();
        out.write_all(&e.line).unwrap();
        *head = e.hash;
        *seq += 1;
    };
    let start = Instant::now();
    write(
        &chain::genesis_event(Some("bench"), "2026-01-01T00:00:00Z"),
        &mut seq,
        &mut head,
    );
    while seq < records {
        let ev = if seq % 1000 == 0 {
            chain::checkpoint_event(&cp, seq - 1, &head, "2026-01-01T00:00:00Z", "interval")
        } else {
            event(0, seq)
        };
        write(&ev, &mut seq, &mut head);
    }
    let ckpt = chain::checkpoint_event(&cp, seq - 1, &head, "2026-01-01T00:00:00Z", "shutdown");
    write(&ckpt, &mut seq, &mut head);
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "generated {} records ({} MB) in {:.1}s",
        seq - 1,
        size / 1_000_000,
        start.elapsed().as_secs_f64()
    );

    let keys = [signer().verify_key().unwrap()];
    let start = Instant::now();
    let summary = verify_paths(&[path], &keys, VerifyOptions::default())
        .unwrap()
        .unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "verify: {} records, {} checkpoints in {elapsed:.2}s: {:.0} records/s",
        summary.records,
        summary.checkpoints,
        summary.records as f64 / elapsed
    );
}
