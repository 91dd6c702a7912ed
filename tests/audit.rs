//! The audit log end to end: real files in temp dirs, the real `jitsh` binary, real sockets.
#![allow(clippy::unwrap_used, reason = "test failures are panics")]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jitsh::audit::chain::{self, ChainHash, FindingKind, Record};
use jitsh::audit::read::{for_each_record, verify_paths};
use jitsh::audit::{
    AuditEvent, AuditLog, AuditLogOptions, AuditSigner, AuditSink, AuditVerifyKey, ForwardTarget,
    SyslogForwarder, VerifyOptions,
};

const SEED: [u8; 32] = [42; 32];

fn signer() -> AuditSigner {
    AuditSigner {
        kid: "svc-1".into(),
        seed: SEED,
    }
}

fn trusted() -> Vec<AuditVerifyKey> {
    vec![signer().verify_key().unwrap()]
}

fn event(action: &str, subject: &str, details: serde_json::Value) -> AuditEvent {
    AuditEvent {
        time: "2026-03-04T05:06:07Z".into(),
        actor: "alice".into(),
        action: action.into(),
        subject: subject.into(),
        outcome: "ok".into(),
        details: details.as_object().cloned().unwrap_or_default(),
    }
}

fn numbered(n: u64) -> AuditEvent {
    event(
        "request.create",
        &format!("q{n}"),
        serde_json::json!({"n": n}),
    )
}

/// A closed, sealed log of `n` events in `dir`; returns its one file.
fn make_log(dir: &Path, n: u64) -> PathBuf {
    let log = AuditLog::open(dir, Some(signer())).unwrap();
    for i in 0..n {
        log.append(numbered(i)).unwrap();
    }
    log.close().unwrap();
    dir.join("audit-000001.jsonl")
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.concat()).unwrap();
}

fn jitsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jitsh"))
        .args(args)
        .output()
        .unwrap()
}

fn trust_file(dir: &Path) -> PathBuf {
    let path = dir.join("signing.pub");
    std::fs::write(&path, signer().verify_key().unwrap().to_text()).unwrap();
    path
}

/// `jitsh audit verify --json`: exit code and the verdict object.
fn verify_cli(files: &[&Path], trust: &Path) -> (i32, serde_json::Value) {
    let mut args = vec![
        "audit",
        "verify",
        "--json",
        "--trust-key",
        trust.to_str().unwrap(),
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = jitsh(&args);
    let verdict = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), verdict)
}

fn assert_bad(verdict: &serde_json::Value, kind: &str, line: u64, seq: Option<u64>) {
    assert_eq!(verdict["status"], "bad", "{verdict}");
    assert_eq!(verdict["kind"], kind, "{verdict}");
    assert_eq!(verdict["line"], line, "{verdict}");
    assert_eq!(verdict["seq"], serde_json::json!(seq), "{verdict}");
}

// ---------------------------------------------------------------------------------------------
// Tampering

#[test]
fn untouched_log_verifies_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 10);
    let trust = trust_file(dir.path());
    let out = jitsh(&[
        "audit",
        "verify",
        file.to_str().unwrap(),
        "--trust-key",
        trust.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // genesis + 10 events + shutdown checkpoint
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "intact: 12 records, 1 checkpoint, last seq 12"
    );
}

#[test]
fn one_changed_byte_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 10);
    let mut ls = lines(&file);
    let pos = ls[5].windows(5).position(|w| w == b"alice").unwrap();
    ls[5][pos] = b'b';
    write_lines(&file, &ls);
    let (code, v) = verify_cli(&[&file], &trust_file(dir.path()));
    assert_eq!(code, 1);
    assert_bad(&v, "altered", 6, Some(6));
}

#[test]
fn deleted_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 10);
    let mut ls = lines(&file);
    ls.remove(4); // seq 5
    write_lines(&file, &ls);
    let (code, v) = verify_cli(&[&file], &trust_file(dir.path()));
    assert_eq!(code, 1);
    assert_bad(&v, "removed", 5, Some(6));
    assert!(
        v["reason"].as_str().unwrap().contains("seq 5 is missing"),
        "{v}"
    );
}

#[test]
fn swapped_records_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 10);
    let mut ls = lines(&file);
    ls.swap(3, 4);
    write_lines(&file, &ls);
    let (code, v) = verify_cli(&[&file], &trust_file(dir.path()));
    assert_eq!(code, 1);
    assert_bad(&v, "reordered", 4, Some(5));
}

#[test]
fn forged_appended_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 10);
    let mut ls = lines(&file);
    let last = ls.last().unwrap();
    let (rec, head) = chain::decode(&last[..last.len() - 1]).unwrap();
    // A valid chain link, made without the signing key.
    let forged = chain::encode(rec.seq + 1, &head, &numbered(99)).unwrap();
    ls.push(forged.line.clone());
    write_lines(&file, &ls);
    let trust = trust_file(dir.path());
    let (code, v) = verify_cli(&[&file], &trust);
    assert_eq!(code, 1);
    // The log had stopped cleanly: a record after the shutdown checkpoint is never an unclean
    // stop.
    assert_bad(&v, "appended", 13, Some(13));

    // Sealing the log with a checkpoint from another key does not help.
    ls.pop();
    let other = AuditSigner {
        kid: "svc-1".into(),
        seed: [1; 32],
    };
    let cp = chain::CheckpointSigner::new(&other).unwrap();
    let ckpt = chain::checkpoint_event(&cp, 12, &head, "2026-03-04T05:06:08Z", "open");
    let sealed = chain::encode(13, &head, &ckpt).unwrap();
    ls.push(sealed.line.clone());
    ls.push(chain::encode(14, &sealed.hash, &numbered(99)).unwrap().line);
    write_lines(&file, &ls);
    let (code, v) = verify_cli(&[&file], &trust);
    assert_eq!(code, 1);
    assert_bad(&v, "forged", 13, Some(13));
}

#[test]
fn inserted_record_with_recomputed_chain_fails_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 5);
    let ls = lines(&file);
    let decoded: Vec<(Record, ChainHash)> = ls
        .iter()
        .map(|l| chain::decode(&l[..l.len() - 1]).unwrap())
        .collect();
    // Insert a record after seq 3 and renumber/rehash everything after it.
    let mut out = ls[..3].to_vec();
    let mut head = decoded[2].1;
    let mut events: Vec<AuditEvent> = vec![event("grant.revoke", "q0", serde_json::json!({}))];
    events.extend(decoded[3..].iter().map(|(r, _)| r.event()));
    for (seq, mut ev) in (4u64..).zip(events) {
        if ev.action == chain::CHECKPOINT_ACTION {
            ev.details.insert("head_seq".into(), (seq - 1).into());
            ev.details.insert("head_hash".into(), head.to_hex().into());
        }
        let e = chain::encode(seq, &head, &ev).unwrap();
        head = e.hash;
        out.push(e.line);
    }
    write_lines(&file, &out);
    let (code, v) = verify_cli(&[&file], &trust_file(dir.path()));
    assert_eq!(code, 1);
    assert_bad(&v, "forged", 8, Some(8));
    assert!(v["reason"].as_str().unwrap().contains("from seq 1"), "{v}");
}

#[test]
fn truncated_record_is_reported_torn() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 10);
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 40).unwrap();
    let (code, v) = verify_cli(&[&file], &trust_file(dir.path()));
    assert_eq!(code, 1);
    assert_bad(&v, "torn", 12, None);
}

#[test]
fn wrong_or_missing_trust_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 3);
    let other = dir.path().join("other.pub");
    let key = AuditSigner {
        kid: "svc-1".into(),
        seed: [5; 32],
    }
    .verify_key()
    .unwrap();
    std::fs::write(&other, key.to_text()).unwrap();
    let (code, v) = verify_cli(&[&file], &other);
    assert_eq!(code, 1);
    assert_eq!(v["kind"], "forged");

    let out = jitsh(&["audit", "verify", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--trust-key"));
}

// ---------------------------------------------------------------------------------------------
// Crash, group commit, rotation

/// The log folder of the writer process the SIGKILL test starts (see [`appender_process`]).
const APPEND_DIR: &str = "JITSH_TEST_APPEND_DIR";

/// The writer the SIGKILL test kills: four threads append to the log in `$JITSH_TEST_APPEND_DIR`
/// (checkpoints signed with [`SEED`], kid `bench`) until the process is killed. Started by
/// `sigkilled_writer_leaves_a_verifiable_prefix_and_reopening_seals_it` as this test binary
/// with only this test selected; on its own it has nothing to write to.
#[test]
#[ignore = "the writer process of sigkilled_writer_leaves_a_verifiable_prefix_and_reopening_seals_it"]
fn appender_process() {
    let Some(dir) = std::env::var_os(APPEND_DIR) else {
        panic!("{APPEND_DIR} is not set: this runs only as the SIGKILL test's writer process");
    };
    let signer = AuditSigner {
        kid: "bench".into(),
        seed: SEED,
    };
    let log = Arc::new(AuditLog::open(Path::new(&dir), Some(signer)).unwrap());
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let mut details = serde_json::Map::new();
                    details.insert("thread".into(), t.into());
                    details.insert("n".into(), i.into());
                    log.append(AuditEvent {
                        time: "2026-01-01T00:00:00Z".into(),
                        actor: "bench".into(),
                        action: "bench.append".into(),
                        subject: format!("t{t}"),
                        outcome: "ok".into(),
                        details,
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn sigkilled_writer_leaves_a_verifiable_prefix_and_reopening_seals_it() {
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("log");
    // The writer is this test binary running `appender_process` (a real process to SIGKILL).
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "appender_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env(APPEND_DIR, &logdir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let file = logdir.join("audit-000001.jsonl");
    let start = Instant::now();
    while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < 100_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the writer wrote too little"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let keys = [AuditVerifyKey {
        kid: Some("bench".into()),
        ..signer().verify_key().unwrap()
    }];

    // Every complete record verifies; the end is either torn or not yet sealed.
    let finding = verify_paths(std::slice::from_ref(&file), &keys, VerifyOptions::default())
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(finding.kind, FindingKind::Torn | FindingKind::Unsealed),
        "{finding}"
    );
    let complete = verify_paths(
        std::slice::from_ref(&file),
        &keys,
        VerifyOptions {
            allow_unsealed: true,
        },
    )
    .unwrap();
    if finding.kind == FindingKind::Unsealed {
        assert!(complete.is_ok(), "{complete:?}");
        // SIGKILL rarely lands inside one write(2); cut the last record as a crash mid-write
        // would have left it.
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 30)
            .unwrap();
    }
    let total = lines(&file).len() as u64;
    let torn_bytes = lines(&file).pop().unwrap();
    assert!(!torn_bytes.ends_with(b"\n"));
    let finding = verify_paths(
        std::slice::from_ref(&file),
        &keys,
        VerifyOptions {
            allow_unsealed: true,
        },
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(
        (finding.kind, finding.at.line),
        (FindingKind::Torn, total),
        "{finding}"
    );

    // Reopen: the torn bytes are set aside, an audit.torn record and a checkpoint seal it.
    let bench_signer = AuditSigner {
        kid: "bench".into(),
        seed: SEED,
    };
    let log = AuditLog::open(&logdir, Some(bench_signer)).unwrap();
    let seq = log.append(numbered(1)).unwrap();
    log.close().unwrap();
    let summary = verify_paths(std::slice::from_ref(&file), &keys, VerifyOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(summary.last_seq, seq + 1);
    assert_eq!(summary.torn_sealed.len(), 1);
    let torn_offset: u64 = lines(&file)[..total as usize - 1]
        .iter()
        .map(|l| l.len() as u64)
        .sum();
    let side = logdir.join(format!("torn-000001-{torn_offset}.bin"));
    assert_eq!(std::fs::read(&side).unwrap(), torn_bytes);
    let mut torn_record = None;
    for_each_record(std::slice::from_ref(&file), |_, r| {
        let r = r.unwrap();
        if r.action == chain::TORN_ACTION {
            torn_record = Some(r);
        }
    })
    .unwrap();
    let torn_record = torn_record.unwrap();
    assert_eq!(torn_record.details["offset"], torn_offset);
    assert_eq!(torn_record.details["length"], torn_bytes.len() as u64);
}

#[test]
fn group_commit_keeps_every_append_once_and_in_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path(), Some(signer())).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| {
                        let ev = event(
                            "gate.decision",
                            &format!("t{t}"),
                            serde_json::json!({"i": i}),
                        );
                        log.append(ev).unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let stats = log.stats();
    log.close().unwrap();
    // Every record was synced; how many per sync depends on the disk, so only the sum is fixed.
    assert!(
        stats.syncs >= 1 && stats.syncs <= stats.records,
        "{stats:?}"
    );
    assert!(stats.records >= 4001, "{stats:?}");
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 4000);

    let file = dir.path().join("audit-000001.jsonl");
    let summary = verify_paths(
        std::slice::from_ref(&file),
        &trusted(),
        VerifyOptions::default(),
    )
    .unwrap()
    .unwrap();
    // genesis + 4000 + interval checkpoints (every 1000 records) + shutdown checkpoint
    assert_eq!(summary.records, 4000 + 1 + summary.checkpoints);
    assert!(summary.checkpoints >= 4, "{summary:?}");
    let mut seen = std::collections::HashMap::new();
    for_each_record(&[file], |_, r| {
        let r = r.unwrap();
        if r.action == "gate.decision" {
            *seen
                .entry((r.subject.clone(), r.details["i"].as_u64().unwrap()))
                .or_insert(0) += 1;
            assert!(seqs.binary_search(&r.seq).is_ok());
        }
    })
    .unwrap();
    assert_eq!(seen.len(), 4000);
    assert!(seen.values().all(|&n| n == 1));
}

/// Appenders racing `close`: every append that returned a seq is in the sealed log exactly
/// once, every other one was refused (never silently dropped), and after close all are refused.
#[test]
fn appends_racing_close_are_written_or_refused_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path(), Some(signer())).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut ok = Vec::new();
                for i in 0..400 {
                    let evs = vec![
                        event(
                            "gate.decision",
                            &format!("t{t}"),
                            serde_json::json!({"i": i}),
                        ),
                        event(
                            "gate.decision",
                            &format!("t{t}"),
                            serde_json::json!({"i": -i}),
                        ),
                    ];
                    match log.append_all(evs) {
                        Ok(seqs) => ok.extend(seqs),
                        Err(e) => {
                            assert!(e.to_string().contains("closed"), "{e}");
                            break;
                        }
                    }
                }
                ok
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(30));
    log.close().unwrap();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(log.append(numbered(1)).is_err(), "closed means closed");
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "no seq given twice");
    let file = dir.path().join("audit-000001.jsonl");
    let mut found = Vec::new();
    for_each_record(std::slice::from_ref(&file), |_, r| {
        let r = r.unwrap();
        if r.action == "gate.decision" {
            found.push(r.seq);
        }
    })
    .unwrap();
    assert_eq!(
        found, seqs,
        "exactly the acknowledged appends are in the log"
    );
    verify_paths(&[file], &trusted(), VerifyOptions::default())
        .unwrap()
        .unwrap();
}

#[test]
fn rotated_files_chain_across_and_must_all_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditLogOptions {
        checkpoint_every: 1000,
        max_file_bytes: 4096,
    };
    let log = AuditLog::open_with(dir.path(), Some(signer()), options).unwrap();
    for i in 0..100 {
        log.append(numbered(i)).unwrap();
    }
    log.close().unwrap();
    let files = jitsh::audit::log::log_files(dir.path()).unwrap();
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 4096 + 600);
    }
    // The first record of file 2 continues the chain of file 1.
    let last1 = lines(&files[0]).pop().unwrap();
    let first2 = lines(&files[1]).remove(0);
    let (r1, h1) = chain::decode(&last1[..last1.len() - 1]).unwrap();
    let (r2, _) = chain::decode(&first2[..first2.len() - 1]).unwrap();
    assert_eq!(
        (r2.seq, r2.prev.as_str()),
        (r1.seq + 1, h1.to_hex().as_str())
    );

    let trust = trust_file(dir.path());
    let out = jitsh(&[
        "audit",
        "verify",
        dir.path().to_str().unwrap(),
        "--trust-key",
        trust.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("intact: "));

    // A missing middle file is a removal at the first record of the next one.
    let given: Vec<&Path> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, f)| f.as_path())
        .collect();
    let (code, v) = verify_cli(&given, &trust);
    assert_eq!(code, 1);
    assert_eq!(v["kind"], "removed");
    assert_eq!(v["file"], files[2].display().to_string());
    assert_eq!(v["line"], 1);
    // Without the first file there is no genesis.
    let (code, v) = verify_cli(&[files[1].as_path()], &trust);
    assert_eq!(code, 1);
    assert_eq!(v["kind"], "removed");
}

// ---------------------------------------------------------------------------------------------
// Search and export

fn request_story(dir: &Path) -> PathBuf {
    let log = AuditLog::open(dir, Some(signer())).unwrap();
    let evs = [
        event(
            "request.create",
            "q1",
            serde_json::json!({"task": "mailbox-export", "params": {"Mailbox": "bob"}}),
        ),
        event("request.create", "q2", serde_json::json!({"task": "other"})),
        event(
            "request.approve",
            "q1",
            serde_json::json!({"comment": "ok"}),
        ),
        event(
            "token.issue",
            "q1",
            serde_json::json!({"token_id": "tok-1", "request": "q1"}),
        ),
        AuditEvent {
            outcome: "allow".into(),
            ..event(
                "gate.decision",
                "sess-9",
                serde_json::json!({"line": "New-MailboxExportRequest -Mailbox bob", "session": "sess-9",
                    "token_id": "tok-1", "marker": 3, "invocations": [{"name": "New-MailboxExportRequest",
                    "params": {"Mailbox": "bob"}, "rule": "export-own", "decision": "allow", "token": "tok-1"}]}),
            )
        },
        AuditEvent {
            outcome: "deny".into(),
            ..event(
                "gate.decision",
                "sess-9",
                serde_json::json!({"line": "Remove-Mailbox x", "session": "sess-9", "invocations": [
                    {"name": "Remove-Mailbox", "params": {"Identity": "x"}, "rule": "no-remove", "decision": "deny"}]}),
            )
        },
    ];
    for e in evs {
        log.append(e).unwrap();
    }
    log.close().unwrap();
    dir.join("audit-000001.jsonl")
}

#[test]
fn search_joins_decisions_to_their_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = request_story(dir.path());
    let f = file.to_str().unwrap();
    let out = jitsh(&["audit", "search", "--decision", "allow", "--json", f]);
    assert_eq!(out.status.code(), Some(0));
    let hits: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["record"]["details"]["token_id"], "tok-1");
    let related: Vec<&str> = hits[0]["related"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        related,
        ["request.create", "request.approve", "token.issue"]
    );

    let out = jitsh(&["audit", "search", "--param", "identity=X", "--json", f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("no-remove"));

    let out = jitsh(&["audit", "search", "--session", "sess-9", f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("SEQ"), "{text}");
    assert!(
        text.contains("New-MailboxExportRequest:export-own:allow"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  > ") && l.contains("token.issue")),
        "{text}"
    );

    let out = jitsh(&["audit", "search", "--user", "nobody", f]);
    assert_eq!(out.status.code(), Some(1));
    let out = jitsh(&["audit", "search", "--decision", "maybe", f]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn export_writes_cef_and_rfc5424() {
    let dir = tempfile::tempdir().unwrap();
    let file = request_story(dir.path());
    let f = file.to_str().unwrap();
    let out = jitsh(&["audit", "export", "--format", "cef", f]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 8);
    let deny = text.lines().find(|l| l.contains("Remove-Mailbox")).unwrap();
    assert!(
        deny.starts_with(&format!(
            "CEF:0|jitsh|jitsh|{}|gate.decision|gate.decision|7|",
            env!("CARGO_PKG_VERSION")
        )),
        "{deny}"
    );
    let out = jitsh(&["audit", "export", "--format", "syslog", f]);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        assert_rfc5424(line);
    }
    let out = jitsh(&["audit", "export", "--format", "jsonl", f]);
    assert_eq!(out.stdout, std::fs::read(&file).unwrap());
}

/// `<PRI>1 TIMESTAMP HOST jitsh - MSGID [jitsh@32473 seq=".." ...] BOM{json}`; returns seq.
fn assert_rfc5424(line: &str) -> u64 {
    let re = regex::Regex::new(
        r#"^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z) [!-~]{1,255} jitsh - [!-~]{1,32} \[jitsh@32473 seq="(\d+)"( [a-z_]+="(\\["\\\]]|[^"\\\]])*")*\] \x{feff}(\{.*\})$"#,
    )
    .unwrap();
    let caps = re
        .captures(line)
        .unwrap_or_else(|| unreachable!("not RFC 5424: {line}"));
    let pri: u32 = caps[1].parse().unwrap();
    assert_eq!(pri / 8, 13, "facility log audit");
    let _: serde_json::Value = serde_json::from_str(&caps[7]).unwrap();
    caps[4].parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Forwarding

/// Read octet-counted frames (RFC 6587) from one connection until it closes or `n` arrive.
fn read_frames(stream: std::net::TcpStream, n: usize) -> Vec<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut out = Vec::new();
    while out.len() < n {
        let mut len = Vec::new();
        if reader.read_until(b' ', &mut len).unwrap() == 0 {
            break;
        }
        let len: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
        let mut msg = vec![0; len];
        reader.read_exact(&mut msg).unwrap();
        out.push(String::from_utf8(msg).unwrap());
    }
    out
}

fn records_of(file: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    for_each_record(&[file.to_path_buf()], |_, r| out.push(r.unwrap())).unwrap();
    out
}

#[test]
fn forwarder_spools_while_the_collector_is_down_and_delivers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(&dir.path().join("log"), 6); // 8 records
    let records = records_of(&file);
    let state = dir.path().join("state");

    // A port with nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = ForwardTarget::Tcp(format!("127.0.0.1:{port}"));
    let mut fwd = SyslogForwarder::open(target.clone(), &state).unwrap();
    let err = fwd.forward(&records[..5]).unwrap_err();
    assert!(err.to_string().contains("5 records stay spooled"), "{err}");
    assert_eq!(fwd.pending().unwrap(), 5);
    assert_eq!(fwd.cursor(), None);

    // The collector comes up: the spool goes out in order, then new records follow.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert_eq!(fwd.flush().unwrap(), 5);
    assert_eq!(fwd.pending().unwrap(), 0);
    let (conn, _) = listener.accept().unwrap();
    let first = read_frames(conn.try_clone().unwrap(), 5);
    // Spooling the same records again sends nothing twice.
    assert_eq!(fwd.forward(&records[..7]).unwrap(), 2);
    let second = read_frames(conn, 2);
    let seqs: Vec<u64> = first
        .iter()
        .chain(&second)
        .map(|m| assert_rfc5424(m))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        std::fs::read_to_string(state.join("audit-forward.cursor")).unwrap(),
        "7\n"
    );

    // The collector restarts: the closed connection is noticed and replaced, nothing is lost.
    drop(listener);
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(fwd.forward(&records).unwrap(), 1);
    let (conn, _) = listener.accept().unwrap();
    let third = read_frames(conn, 1);
    assert_eq!(assert_rfc5424(&third[0]), 8);

    // A new forwarder (as after a restart of jitsh) resumes from the cursor.
    drop(fwd);
    let mut fwd = SyslogForwarder::open(target, &state).unwrap();
    assert_eq!(fwd.cursor(), Some(8));
    assert_eq!(fwd.forward(&records).unwrap(), 0);
}

#[test]
fn forward_command_sends_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("log");
    make_log(&logdir, 3); // 5 records
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = format!("tcp://{}", listener.local_addr().unwrap());
    let collector = std::thread::spawn(move || {
        let mut all = Vec::new();
        for _ in 0..2 {
            let (conn, _) = listener.accept().unwrap();
            all.extend(read_frames(conn, usize::MAX));
        }
        all
    });
    let out = jitsh(&["audit", "forward", "--to", &to, logdir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("delivered 5 records"));
    // More events, then forward again: only the new ones go out.
    let log = AuditLog::open(&logdir, Some(signer())).unwrap();
    log.append(numbered(50)).unwrap();
    log.close().unwrap();
    let out = jitsh(&["audit", "forward", "--to", &to, logdir.to_str().unwrap()]);
    // 6 is the checkpoint every start writes, 7 the event, 8 the shutdown checkpoint.
    assert!(String::from_utf8_lossy(&out.stdout).contains("delivered 3 records"));
    let seqs: Vec<u64> = collector
        .join()
        .unwrap()
        .iter()
        .map(|m| assert_rfc5424(m))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7, 8]);
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit")
        .join(name)
}

#[test]
fn fixtures_verify_as_expected() {
    let key =
        jitsh::audit::parse_trust_key(&std::fs::read_to_string(fixture("signing.pub")).unwrap())
            .unwrap();
    let verdict = |name: &str| {
        verify_paths(
            &[fixture(name)],
            std::slice::from_ref(&key),
            VerifyOptions::default(),
        )
        .unwrap()
    };
    let good = verdict("good.jsonl").unwrap();
    assert_eq!((good.records, good.checkpoints), (7, 1));
    let tampered = verdict("tampered.jsonl").unwrap_err();
    assert_eq!((tampered.kind, tampered.at.line), (FindingKind::Altered, 4));
    let torn = verdict("torn.jsonl").unwrap_err();
    assert_eq!((torn.kind, torn.at.line), (FindingKind::Torn, 7));
}

/// Rewrites the fixtures after a format change: `cargo test --test audit -- --ignored`.
#[test]
#[ignore = "regenerates tests/fixtures/audit"]
fn regenerate_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let file = make_log(dir.path(), 5);
    let out = fixture("");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("signing.pub"),
        signer().verify_key().unwrap().to_text(),
    )
    .unwrap();
    let ls = lines(&file);
    write_lines(&out.join("good.jsonl"), &ls);
    let mut tampered = ls.clone();
    let text = String::from_utf8(tampered[3].clone())
        .unwrap()
        .replace("alice", "alicf");
    tampered[3] = text.into_bytes();
    write_lines(&out.join("tampered.jsonl"), &tampered);
    let mut torn = ls;
    let last = torn.last_mut().unwrap();
    last.truncate(last.len() / 2);
    write_lines(&out.join("torn.jsonl"), &torn);
}
