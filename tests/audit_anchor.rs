//! The audit log's head anchored in the service's store: each way of rewriting the log's end by
//! hand (append then restart, cut to a checkpoint, torn cut then restart, replaced log or store)
//! is refused at the next start and named by `jitsh audit verify --store`.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test failures are panics"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jitsh::audit::chain;
use jitsh::audit::read::for_each_record;
use jitsh::audit::{AuditEvent, AuditSink};
use jitsh::service::ports::{self, OpenAuditError, Signer};

fn numbered(n: u64) -> AuditEvent {
    AuditEvent {
        time: "2026-03-04T05:06:07Z".into(),
        actor: "alice".into(),
        action: "request.approve".into(),
        subject: format!("q{n}"),
        outcome: "ok".into(),
        details: serde_json::Map::new(),
    }
}

/// A state folder whose service log holds `n` events and stopped cleanly.
fn state_with_log(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let signer = Signer::load_or_create(&state).unwrap();
    let log = ports::open_audit(&state, &signer).unwrap();
    for i in 0..n {
        log.append(numbered(i)).unwrap();
    }
    log.close().unwrap();
    (dir, state)
}

fn log_file(state: &Path) -> PathBuf {
    state.join("audit").join("audit-000001.jsonl")
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Open the service's log as `jitsh serve` does; the refusal's text when refused.
fn start(state: &Path) -> Result<(), String> {
    let signer = Signer::load_or_create(state).unwrap();
    match ports::open_audit(state, &signer) {
        Ok(log) => {
            log.close().unwrap();
            Ok(())
        }
        Err(OpenAuditError::Other(e)) => Err(e),
        Err(e) => panic!("unexpected: {e}"),
    }
}

fn jitsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jitsh"))
        .args(args)
        .output()
        .unwrap()
}

/// `jitsh audit verify --json --store`: exit code and verdict.
fn verify_with_store(state: &Path) -> (i32, serde_json::Value) {
    let out = jitsh(&[
        "audit",
        "verify",
        "--json",
        "--trust-key",
        state.join("signing.pub").to_str().unwrap(),
        "--store",
        state.to_str().unwrap(),
        state.join("audit").to_str().unwrap(),
    ]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

fn actions(state: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for_each_record(&[log_file(state)], |_, r| out.push(r.unwrap().action)).unwrap();
    out
}

/// Append correctly chained records to the log, as someone without the key can.
fn append_by_hand(state: &Path, events: &[AuditEvent]) {
    let file = log_file(state);
    let mut ls = lines(&file);
    let last = ls.last().unwrap().clone();
    let (rec, mut head) = chain::decode(&last[..last.len() - 1]).unwrap();
    for (i, ev) in events.iter().enumerate() {
        let e = chain::encode(rec.seq + 1 + i as u64, &head, ev).unwrap();
        head = e.hash;
        ls.push(e.line);
    }
    std::fs::write(&file, ls.concat()).unwrap();
}

#[test]
fn records_appended_after_a_clean_stop_are_refused_at_start() {
    for count in [1, 3] {
        let (_dir, state) = state_with_log(4);
        let forged: Vec<AuditEvent> = (0..count).map(|i| numbered(100 + i)).collect();
        append_by_hand(&state, &forged);
        let tampered = std::fs::read(log_file(&state)).unwrap();
        let err = start(&state).unwrap_err();
        assert!(err.contains("appended by hand"), "{err}");
        assert!(err.contains("jitsh audit repair"), "{err}");
        // Refused as found: nothing sealed, nothing set aside.
        assert_eq!(std::fs::read(log_file(&state)).unwrap(), tampered);
        let (code, v) = verify_with_store(&state);
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["kind"], "appended", "{v}");
    }
}

#[test]
fn a_log_cut_back_to_a_checkpoint_is_refused_and_named_by_verify() {
    let (_dir, state) = state_with_log(3);
    // A second run, so the file holds a checkpoint to cut back to (the first run's shutdown).
    let signer = Signer::load_or_create(&state).unwrap();
    let log = ports::open_audit(&state, &signer).unwrap();
    for i in 10..20 {
        log.append(numbered(i)).unwrap();
    }
    log.close().unwrap();
    let file = log_file(&state);
    let all = lines(&file);
    let checkpoints: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            chain::decode(&l[..l.len() - 1]).unwrap().0.action == chain::CHECKPOINT_ACTION
        })
        .map(|(i, _)| i)
        .collect();
    // Cut back to each earlier checkpoint: every one a sealed log on its own.
    for &keep in &checkpoints[..checkpoints.len() - 1] {
        std::fs::write(&file, all[..=keep].concat()).unwrap();
        let err = start(&state).unwrap_err();
        assert!(err.contains("were cut off"), "{err}");
        let (code, v) = verify_with_store(&state);
        assert_eq!((code, &v["kind"]), (1, &serde_json::json!("anchor")), "{v}");
        assert_eq!(v["seq"], serde_json::json!(all.len()), "{v}");
    }
    // The whole log removed, or the store replaced by a fresh one: refused too.
    std::fs::remove_file(&file).unwrap();
    let err = start(&state).unwrap_err();
    assert!(err.contains("records were removed"), "{err}");
    std::fs::write(&file, all.concat()).unwrap();
    start(&state).unwrap();
    std::fs::remove_file(state.join("audit.anchor")).unwrap();
    let err = start(&state).unwrap_err();
    assert!(err.contains("holds no anchor"), "{err}");
}

#[test]
fn a_torn_cut_then_restart_never_reuses_sequence_numbers() {
    let (_dir, state) = state_with_log(6);
    let file = log_file(&state);
    let all = lines(&file);
    // Cut in the middle of records before the end: it looks like a crash mid-write.
    for at in [3, all.len() - 2] {
        let mut cut = all[..at].concat();
        cut.extend_from_slice(&all[at][..all[at].len() / 2]);
        std::fs::write(&file, &cut).unwrap();
        let err = start(&state).unwrap_err();
        assert!(err.contains("were cut off"), "{err}");
        // Nothing was set aside, truncated or appended: the evidence stays as found.
        assert_eq!(std::fs::read(&file).unwrap(), cut);
        assert!(!std::fs::read_dir(state.join("audit")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("torn-")));
    }
    // A real torn write (after the last anchored record) is still recovered as before.
    let mut torn = all.concat();
    torn.extend_from_slice(b"{\"seq\":99,\"ti");
    std::fs::write(&file, &torn).unwrap();
    start(&state).unwrap();
    let acts = actions(&state);
    assert_eq!(acts[all.len()], chain::TORN_ACTION, "{acts:?}");
}

#[test]
fn repair_is_deliberate_recorded_and_lets_the_service_start() {
    let (_dir, state) = state_with_log(5);
    let file = log_file(&state);
    let all = lines(&file);
    std::fs::write(&file, all[..4].concat()).unwrap();
    assert!(start(&state).is_err());
    let out = jitsh(&["audit", "repair", "--state", state.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cut off"));
    let acts = actions(&state);
    assert_eq!(acts[4], chain::REPAIR_ACTION, "{acts:?}");
    start(&state).unwrap();
    let (code, v) = verify_with_store(&state);
    assert_eq!(code, 0, "{v}");
    // Nothing to repair now.
    let out = jitsh(&["audit", "repair", "--state", state.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to repair"));
}

#[test]
fn records_written_but_never_anchored_after_a_crash_are_kept_and_noted() {
    let (_dir, state) = state_with_log(2);
    // A crash after the sync and before the anchor's save: the store's head is behind and not
    // clean.
    let file = log_file(&state);
    let all = lines(&file);
    let before_last = &all[all.len() - 2];
    let (rec, head) = chain::decode(&before_last[..before_last.len() - 1]).unwrap();
    let anchor = jitsh::audit::FileAnchor::open(&state.join("audit.anchor")).unwrap();
    jitsh::audit::Anchor::save(
        &anchor,
        &jitsh::audit::AnchorState {
            seq: rec.seq,
            hash: head,
            clean: false,
        },
    )
    .unwrap();
    drop(anchor);
    let out = jitsh(&[
        "audit",
        "verify",
        "--trust-key",
        state.join("signing.pub").to_str().unwrap(),
        "--store",
        state.to_str().unwrap(),
        state.join("audit").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let n = all.len();
    assert!(
        text.contains(&format!("records {n}..={n} are past the head")),
        "{text}"
    );
    start(&state).unwrap();
    let acts = actions(&state);
    assert_eq!(
        &acts[n..n + 2],
        [chain::UNANCHORED_ACTION, chain::CHECKPOINT_ACTION]
    );
}

/// Everything a collector on `listener` receives over one connection, until it closes.
fn collect(listener: std::net::TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        use std::io::Read as _;
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut all = Vec::new();
        let _ = conn.read_to_end(&mut all);
        String::from_utf8(all).unwrap()
    })
}

#[test]
fn every_checkpoint_is_sent_to_the_syslog_witness() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let signer = Signer::load_or_create(&state).unwrap();
    for run in 0..2 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = jitsh::audit::ForwardTarget::Tcp(listener.local_addr().unwrap().to_string());
        let got = collect(listener);
        let log = ports::open_audit_witnessed(&state, &signer, Some(&target)).unwrap();
        for i in 0..3 {
            log.append(numbered(i)).unwrap();
        }
        log.close().unwrap();
        drop(log);
        let received = got.join().unwrap();
        let checkpoints: Vec<jitsh::audit::chain::Record> = {
            let mut out = Vec::new();
            for_each_record(&[log_file(&state)], |_, r| {
                let r = r.unwrap();
                if r.action == chain::CHECKPOINT_ACTION {
                    out.push(r);
                }
            })
            .unwrap();
            out
        };
        // A new log's first run writes only its shutdown checkpoint; later runs also the one
        // every start writes. Each reached the collector, with its seq and hash.
        let this_run = &checkpoints[if run == 0 { 0 } else { 1 }..];
        assert_eq!(this_run.len(), run + 1);
        assert_eq!(
            received.matches(" - audit.checkpoint [").count(),
            run + 1,
            "{received}"
        );
        for c in this_run {
            assert!(
                received.contains(&format!("seq=\"{}\"", c.seq)),
                "{received}"
            );
            assert!(
                received.contains(&format!("hash=\"{}\"", c.hash)),
                "{received}"
            );
        }
    }
}
