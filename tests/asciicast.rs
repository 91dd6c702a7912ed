//! Recordings end to end: the writer's files read back, by jitsh and by `asciinema`, a file cut
//! mid-event still plays, `jitsh replay --at-marker/--markers` and `jitsh sessions`.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

mod inputs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jitsh::asciicast::{decode, EventKind, Header, JitshInfo, Recorder};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/casts")
        .join(name)
}

fn header(user: &str, timestamp: i64) -> Header {
    Header {
        width: 100,
        height: 30,
        timestamp: Some(timestamp),
        title: Some(format!("{user} on jitsh-exsim")),
        env: [
            ("SHELL".to_owned(), "jitsh".to_owned()),
            ("TERM".to_owned(), "xterm-256color".to_owned()),
        ]
        .into(),
        jitsh: Some(JitshInfo {
            user: Some(user.to_owned()),
            session: Some(format!("s-{user}")),
            runspace: Some("jitsh-exsim".into()),
        }),
        ..Header::default()
    }
}

fn jitsh(args: &[&str]) -> Output {
    let out = Command::new(JITSH).args(args).output().unwrap();
    assert!(
        out.status.success() || !out.stderr.is_empty(),
        "silent failure: {out:?}"
    );
    out
}

/// A recording with a split multi-byte character, every event kind, and the given markers.
fn record(path: &Path, user: &str, timestamp: i64, markers: &[&str]) {
    let mut rec = Recorder::create(path, &header(user, timestamp)).unwrap();
    rec.output(10_000, "PS C:\\> ".as_bytes()).unwrap();
    let mut t = 1_000_000;
    for (i, label) in markers.iter().enumerate() {
        rec.input(t, format!("line {i}\r").as_bytes()).unwrap();
        rec.marker(t + 100, label).unwrap();
        // "café ✓" with both multi-byte characters cut across reads.
        let bytes = format!("café ✓ {i}\r\n").into_bytes();
        rec.output(t + 200, &bytes[..4]).unwrap();
        rec.output(t + 300, &bytes[4..9]).unwrap();
        rec.output(t + 400, &bytes[9..]).unwrap();
        t += 1_000_000;
    }
    rec.resize(t, 120, 40).unwrap();
    rec.finish(t + 1).unwrap();
}

#[test]
fn the_writer_round_trips_through_the_decoder_and_joins_split_characters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.cast");
    record(
        &path,
        "alice",
        1_795_000_000,
        &["gate: allow rule=read-only line=1"],
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let cast = decode(&text).unwrap();
    assert_eq!(cast.header, header("alice", 1_795_000_000));
    assert_eq!(cast.torn, None);
    let outputs: String = cast
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Output)
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(outputs, "PS C:\\> café ✓ 0\r\n");
    assert!(!outputs.contains('\u{fffd}'));
    // The "é" waited for its second byte: the first chunk is written as "caf".
    let first = cast
        .events
        .iter()
        .find(|e| e.kind == EventKind::Output && e.time_us == 1_000_200)
        .unwrap();
    assert_eq!(first.data, "caf");
    let kinds: Vec<&str> = cast.events.iter().map(|e| e.kind.code()).collect();
    assert_eq!(kinds, ["o", "i", "m", "o", "o", "o", "r"]);
    assert_eq!(cast.events.last().unwrap().data, "120x40");
    // Times are written from integer microseconds.
    assert!(
        text.contains("\n[1.0001, \"m\", \"gate: allow rule=read-only line=1\"]\n"),
        "{text}"
    );
    assert!(
        Recorder::create(&path, &header("x", 0)).is_err(),
        "an existing recording must not be overwritten"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn asciinema_reads_the_writer_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.cast");
    record(
        &path,
        "alice",
        1_795_000_000,
        &[
            "gate: allow rule=read-only line=1",
            "{\"decision\":\"deny\"}",
        ],
    );
    let out = match Command::new("asciinema").arg("cat").arg(&path).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            inputs::skip(
                "asciinema_reads_the_writer_output",
                "asciinema is not on PATH (pip install asciinema)",
            );
            return;
        }
        Err(e) => panic!("asciinema could not run: {e}"),
    };
    assert!(
        out.status.success(),
        "asciinema cat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "PS C:\\> café ✓ 0\r\ncafé ✓ 1\r\n"
    );
}

#[test]
fn a_recording_cut_mid_event_plays_up_to_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.cast");
    let full = std::fs::read(fixture("gated-session.cast")).unwrap();
    // Cut inside the last output event, as a SIGKILL between two writes of one line would.
    let cut = full.len() - 8;
    std::fs::write(&path, &full[..cut]).unwrap();
    let out = jitsh(&["replay", "--speed", "1000", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.ends_with("jitsh: refused by rule no-external-forwarding\r\nPS C:\\> "),
        "{stdout:?}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("ends in a cut-off line (line 14)"),
        "{stderr}"
    );

    // The torn-tail fixture (cut inside an event's time) also plays.
    let out = jitsh(&[
        "replay",
        "--speed",
        "1000",
        fixture("torn.cast").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("refused by rule"));
}

#[test]
fn a_corrupt_middle_line_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.cast");
    let text = std::fs::read_to_string(fixture("gated-session.cast"))
        .unwrap()
        .replacen("[1.2, \"i\"", "[1.2 \"i\"", 1);
    std::fs::write(&path, text).unwrap();
    let out = jitsh(&["replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 3: not an asciicast v2 event"),
        "{stderr}"
    );
}

#[test]
fn replay_lists_markers_and_starts_at_one() {
    let path = fixture("gated-session.cast");
    let out = jitsh(&["replay", "--markers", path.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "   1  00:01.200  gate: allow rule=read-only line=1\n   \
         2  00:04.500  {\"decision\":\"deny\",\"rule\":\"no-external-forwarding\",\"line\":2}\n   \
         3  00:07.250  gate: allow rule=builtin line=3\n"
    );

    // From marker 3 (7.25s) only 50ms of real time remain; everything before prints at once.
    let started = Instant::now();
    let out = jitsh(&["replay", "--at-marker", "3", path.to_str().unwrap()]);
    let took = started.elapsed();
    assert!(out.status.success(), "{out:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("\u{1b}]133;A\u{7}PS C:\\> ") && stdout.ends_with("exit\r\n"),
        "{stdout:?}"
    );

    // Marker 2 (4.5s) leaves 2.8s of pauses; an idle limit of 0.1s caps them.
    let started = Instant::now();
    let out = jitsh(&[
        "replay",
        "--at-marker",
        "2",
        "--idle-limit",
        "0.1",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(started.elapsed() < Duration::from_secs(2));

    // Real timing is honoured: from marker 2 (4.5002s) the output pauses are 0.0998s, 0.01s and
    // 2.69s (the resize and input events are not output): 1.4s at double speed.
    let started = Instant::now();
    let out = jitsh(&[
        "replay",
        "--at-marker",
        "2",
        "--speed",
        "2",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        started.elapsed() >= Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );

    let out = jitsh(&["replay", "--speed", "0", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--speed `0` must be a positive number"));

    let out = jitsh(&["replay", "--at-marker", "9", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("marker 9 does not exist; the recording has 3 markers"));
}

#[test]
fn sessions_lists_users_and_counts_decisions() {
    let dir = tempfile::tempdir().unwrap();
    record(
        &dir.path().join("1-alice.cast"),
        "alice",
        1_795_000_000,
        &["gate: allow rule=a line=1", "gate: allow rule=a line=2"],
    );
    record(
        &dir.path().join("2-bob.cast"),
        "bob",
        1_795_000_100,
        &[
            "gate: allow rule=a line=1",
            r#"{"decision":"deny","rule":"x"}"#,
            "approval-blocked task=move",
        ],
    );
    std::fs::copy(fixture("torn.cast"), dir.path().join("0-torn.cast")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a recording").unwrap();
    let d = dir.path().to_str().unwrap();

    let out = jitsh(&["sessions", d, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(String, u64, u64, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user"].as_str().unwrap().to_owned(),
                s["allowed"].as_u64().unwrap(),
                s["blocked"].as_u64().unwrap(),
                s["torn"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("alice".into(), 2, 1, true),
            ("alice".into(), 2, 0, false),
            ("bob".into(), 1, 2, false)
        ],
        "by start time, then file name"
    );

    let out = jitsh(&["sessions", d, "--blocked"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("SESSION  USER") && lines[0].ends_with("ALLOWED  REFUSED  NOTE"),
        "{table}"
    );
    assert!(lines[1].starts_with("0-torn   alice"), "{table}");
    assert!(
        lines[1].ends_with("00:07.250  2        1        cut off"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("2-bob ") && lines[2].ends_with("1        2"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("1-alice ") && lines[3].contains("2026-11-18 11:06:40Z"),
        "{table}"
    );
    assert_eq!(lines.len(), 4);

    // What `sessions` prints in its first column is what `replay` opens, from any folder; the
    // file name and a path work too.
    let elsewhere = tempfile::tempdir().unwrap();
    for line in &lines[1..] {
        let id = line.split_whitespace().next().unwrap();
        for name in [id.to_owned(), format!("{id}.cast")] {
            let out = Command::new(JITSH)
                .args(["replay", "--markers", &name])
                .env("JITSH_RECORD_DIR", d)
                .current_dir(elsewhere.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: {out:?}");
            let out = Command::new(JITSH)
                .args(["replay", "--markers", "--dir", d, &name])
                .env_remove("JITSH_RECORD_DIR")
                .current_dir(elsewhere.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "--dir {name}: {out:?}");
        }
    }
    let out = Command::new(JITSH)
        .args(["replay", "--markers", "no-such-session"])
        .env("JITSH_RECORD_DIR", d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("jitsh sessions"), "{err}");

    let out = Command::new(JITSH)
        .args(["sessions"])
        .env("JITSH_RECORD_DIR", d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout,
        jitsh(&["sessions", d]).stdout,
        "JITSH_RECORD_DIR is the default folder"
    );
    let out = jitsh(&["sessions", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be read"));
}

/// Set in the child process of the kill test: the recording it writes until killed.
const CHILD_ENV: &str = "JITSH_TEST_RECORDER_CHILD";

#[test]
fn a_recorder_killed_mid_session_leaves_a_playable_file() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        // Child: record forever, as a session would, until the parent SIGKILLs us.
        let mut rec =
            Recorder::create(Path::new(&path), &header("mallory", 1_795_000_000)).unwrap();
        for i in 0u64.. {
            rec.output(i * 1000, format!("output {i} ✓\r\n").as_bytes())
                .unwrap();
            if i % 10 == 0 {
                rec.marker(i * 1000 + 1, &format!("gate: allow rule=r line={i}"))
                    .unwrap();
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.cast");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_recorder_killed_mid_session_leaves_a_playable_file",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_to_string(&path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 200
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the child did not record"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let cast = decode(&String::from_utf8_lossy(&std::fs::read(&path).unwrap())).unwrap();
    let outputs: Vec<&str> = cast
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Output)
        .map(|e| e.data.as_str())
        .collect();
    assert!(outputs.len() >= 150, "{} outputs", outputs.len());
    for (i, data) in outputs.iter().enumerate() {
        assert_eq!(
            *data,
            format!("output {i} ✓\r\n"),
            "events are complete and in order"
        );
    }
    let out = jitsh(&["replay", "--speed", "1000", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("output 0 ✓\r\noutput 1 ✓\r\n"));
}
