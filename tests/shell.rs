//! `jitsh shell` and `jitsh exec` end to end: the real binary in a real PTY, over the real
//! simulated runspace (`jitsh-exsim`), asserting on the screen, the runspace's state file and
//! the recording.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step fails the test"
)]

mod inputs;
#[path = "support/server.rs"]
mod server;
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");
/// The simulated runspace as jitsh's hidden subcommand (feature `demo-runspace`): the
/// `jitsh-exsim` binary belongs to another package, so this package's tests cannot name it.
const EXSIM: [&str; 2] = [JITSH, "exsim"];

/// The fixture's policy with `mailbox-moves` allowing offline use for an hour: for tests that
/// use a token with no approval service at all.
fn allow_offline(fx: &Fixture) {
    let text = POLICY.replace(
        "max_duration = \"4h\"\n",
        "max_duration = \"4h\"\noffline = \"1h\"\n",
    );
    assert_ne!(text, POLICY);
    std::fs::write(fx.path("policies/test.toml"), text).unwrap();
}

const POLICY: &str = r#"
[defaults]
unmatched = "deny"
dynamic = "deny"

[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*", "Start-Sleep", "Read-Host", "Select-Object", "Format-Table"]

[[rule]]
id = "mailbox-cleanup"
effect = "allow"
tasks = ["Remove-Mailbox"]

[[rule]]
id = "mailbox-moves"
effect = "approval"
tasks = ["New-MoveRequest"]
approval = "manual"
approvers = ["mbmanagers"]
max_duration = "4h"
"#;

/// A temp folder with policies, a recording folder and the runspace's state file.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/test.toml"), POLICY).unwrap();
        Fixture { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("state.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
    fn casts(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path("rec"))
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "cast"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
    fn shell_args(&self) -> Vec<String> {
        vec![
            "shell".into(),
            "--policies".into(),
            self.path("policies").display().to_string(),
            "--user".into(),
            "alice".into(),
            "--record".into(),
            self.path("rec").display().to_string(),
            // Each test says which approval service it wants; none by default.
            "--no-service".into(),
        ]
    }
}

/// `jitsh shell` running in a PTY, its screen output collected by a reader thread.
struct Screen {
    writer: Box<dyn Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Screen {
    fn start(fx: &Fixture, extra: &[&str]) -> Screen {
        Screen::start_env(fx, extra, &[])
    }

    fn start_env(fx: &Fixture, extra: &[&str], env: &[(&str, &str)]) -> Screen {
        let mut cmd = CommandBuilder::new(JITSH);
        cmd.args(fx.shell_args());
        cmd.args(extra);
        if extra.is_empty() {
            if let Some(rs) = test_runspace() {
                cmd.arg("--");
                cmd.arg(rs);
            }
        }
        cmd.env("TERM", "xterm");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let screen = Screen::spawn(fx, cmd, 120);
        screen.wait_for("PS ", 20);
        screen
    }

    /// Run `cmd` (in the fixture's folder, with its runspace state file) in a fresh PTY of
    /// `cols` columns, collecting the screen output on a reader thread.
    fn spawn(fx: &Fixture, mut cmd: CommandBuilder, cols: u16) -> Screen {
        cmd.cwd(fx.dir.path());
        cmd.env("JITSH_EXSIM_STATE", fx.path("state.json"));
        Screen::spawn_as_is(cmd, cols)
    }

    /// Run `cmd` as given (folder and environment) in a fresh PTY of `cols` columns.
    fn spawn_as_is(cmd: CommandBuilder, cols: u16) -> Screen {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Screen {
            writer,
            output,
            child,
            master: pair.master,
        }
    }

    /// Resize the terminal jitsh runs in (its window changed: SIGWINCH).
    fn resize(&self, cols: u16, rows: u16) {
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Type a line at the prompt, wait until the editor shows it, then press Enter. Returns the
    /// screen position just before Enter: whatever comes after is the gate's or the runspace's.
    fn line(&mut self, text: &str) -> usize {
        let before = self.mark();
        self.send(text);
        self.wait_after(before, text, 10);
        let m = self.mark();
        self.send("\r");
        m
    }

    /// Everything shown so far, escape sequences removed.
    fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.output.lock().unwrap()))
    }

    fn mark(&self) -> usize {
        self.text().len()
    }

    fn since(&self, mark: usize) -> String {
        self.text().get(mark..).unwrap_or_default().to_string()
    }

    /// Wait until `needle` appears after `mark`; panics with the screen on timeout.
    fn wait_after(&self, mark: usize, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.since(mark);
            if s.contains(needle) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {needle:?}; screen since mark:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for(&self, needle: &str, secs: u64) -> String {
        self.wait_after(0, needle, secs)
    }

    /// Wait for the next prompt after `mark`.
    fn prompt_after(&self, mark: usize, secs: u64) -> String {
        self.wait_after(mark, "PS C:\\>", secs)
    }

    /// SIGKILL jitsh the moment `needle` shows on the raw screen after byte `from` (a tight
    /// loop on the reader's buffer, so within microseconds of its write, not a poll's 20 ms).
    fn kill_9_when_shown(&mut self, from: usize, needle: &[u8]) {
        let pid = nix::unistd::Pid::from_raw(self.child.process_id().unwrap() as i32);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let shown = {
                let out = self.output.lock().unwrap();
                out.get(from..)
                    .is_some_and(|o| o.windows(needle.len()).any(|w| w == needle))
            };
            if shown {
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never shown:\n{}",
                self.text()
            );
            std::hint::spin_loop();
        }
        self.wait_exit(10);
    }

    fn raw_len(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    fn quit(mut self) -> u32 {
        self.send(":quit\r");
        self.wait_exit(10)
    }

    fn wait_exit(&mut self, secs: u64) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.exit_code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("jitsh did not exit; screen:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A runspace binary to use instead of the default one (set while developing against a
/// runspace built elsewhere).
fn test_runspace() -> Option<String> {
    std::env::var("JITSH_TEST_RUNSPACE")
        .ok()
        .filter(|s| !s.is_empty())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Parse a recording: header, then events; a torn last line is tolerated only when `torn_ok`.
fn parse_cast(path: &Path, torn_ok: bool) -> (serde_json::Value, Vec<(f64, String, String)>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(header["width"].as_u64().unwrap() > 0);
    let all: Vec<&str> = lines.collect();
    let mut events = Vec::new();
    let mut last_time = 0.0;
    for (i, l) in all.iter().enumerate() {
        match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) => {
                let t = v[0].as_f64().unwrap();
                assert!(t >= last_time, "event times go backwards at line {}", i + 2);
                last_time = t;
                events.push((
                    t,
                    v[1].as_str().unwrap().to_string(),
                    v[2].as_str().unwrap().to_string(),
                ));
            }
            Err(e) => {
                assert!(
                    torn_ok && i + 1 == all.len(),
                    "line {} is not an event: {e}",
                    i + 2
                );
            }
        }
    }
    (header, events)
}

/// The text of every event of `kind` (`"i"`, `"o"`) in a parsed recording, joined in order.
fn cast_text(events: &[(f64, String, String)], kind: &str) -> String {
    events
        .iter()
        .filter(|e| e.1 == kind)
        .map(|e| e.2.as_str())
        .collect()
}

fn mailbox_names(state: &serde_json::Value) -> Vec<String> {
    state["mailboxes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn allowed_line_runs_and_its_output_appears() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Get-Mailbox");
    let out = s.prompt_after(m, 20);
    assert!(out.contains("Alice Johnson"), "{out}");
    assert!(out.contains("Frank Miller"), "{out}");
    assert_eq!(s.quit(), 0, ":quit is a normal end");
}

#[test]
fn privileged_line_is_blocked_with_the_request_command_and_nothing_changes() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    let out = s.wait_after(m, ":request New-MoveRequest", 10);
    assert!(out.contains("mailbox-moves"), "{out}");
    // One way to ask, the one that works here (`jitsh request` is for other terminals).
    assert!(!out.contains("jitsh request --task"), "{out}");
    // The runspace never saw it: still at the same prompt, and a harmless line still works.
    let m = s.line("Get-MoveRequest");
    s.prompt_after(m, 20);
    let state = fx.state();
    assert_eq!(state["move_requests"], serde_json::json!([]), "{state}");
    s.quit();
}

#[test]
fn disguised_privileged_lines_are_blocked() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    for line in [
        "& ('New-'+'MoveRequest') -Identity bob -TargetDatabase DB02",
        "Ne`w-MoveRequest -Identity bob -TargetDatabase DB02",
    ] {
        let m = s.line(line);
        let out = s.wait_after(m, "jitsh:", 10);
        assert!(
            out.contains("denied") || out.contains("needs approval"),
            "{out}"
        );
        s.prompt_after(m, 10);
    }
    assert_eq!(fx.state()["move_requests"], serde_json::json!([]));
    s.quit();
}

#[test]
fn confirmation_prompt_answer_n_keeps_the_mailbox() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Remove-Mailbox -Identity carol");
    s.wait_after(m, "[Y] Yes", 10);
    let m = s.mark();
    s.send("N\r");
    s.prompt_after(m, 10);
    assert!(mailbox_names(&fx.state()).contains(&"Carol Diaz".to_string()));
    s.quit();
}

#[test]
fn ctrl_c_reaches_the_runspace_and_interrupts_start_sleep() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Start-Sleep -Seconds 60");
    s.wait_after(m, "Start-Sleep -Seconds 60", 10);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let m = s.mark();
    s.send("\x03");
    s.prompt_after(m, 10);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The session goes on.
    let m = s.line("Get-Mailbox -Identity bob");
    let out = s.prompt_after(m, 10);
    assert!(out.contains("Bob Smith"), "{out}");
    s.quit();
}

#[test]
fn typed_ahead_lines_are_gated_not_passed_through() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Start-Sleep -Seconds 2");
    s.wait_after(m, "Start-Sleep -Seconds 2", 10);
    // Typed while the command runs: must not reach the runspace's next prompt ungated.
    s.send("New-MoveRequest -Identity bob -TargetDatabase DB02\r");
    let out = s.wait_after(m, ":request New-MoveRequest", 15);
    assert!(out.contains("needs approval"), "{out}");
    assert_eq!(fx.state()["move_requests"], serde_json::json!([]));
    s.quit();
}

/// Lines pasted at the prompt in one write: the editor takes keys without waiting on the
/// runtime and hands each line it submits back to be gated, so the keys after a submitted line
/// are never passed on with it: each later line is gated at its own prompt (a denied one, a
/// line after Ctrl-C dropped what was typed before it) or, typed ahead of a command the
/// runspace already runs, is that command's input and never runs (a privileged one after an
/// allowed one).
#[test]
fn lines_pasted_at_the_prompt_are_each_gated() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.mark();
    s.send(
        "Get-Mailbox -Identity alice\rNew-MoveRequest -Identity bob -TargetDatabase DB02\r\
         Remove-Everything\rRemove-Mailbox -Identity carol\x03Get-Mailbox -Identity bob\r",
    );
    let out = s.wait_after(m, "Bob Smith", 20);
    assert!(out.contains("Alice Johnson"), "{out}");
    // The privileged line is typed ahead of a running command. It waits for the prompt and is
    // gated there (`:request`), unless the runspace reports `Get-Mailbox` running before it is
    // done: then it is that command's input, one line as any typed while a command runs, which
    // `Get-Mailbox` never reads and jitsh discards at the prompt. Which one happens is the
    // runspace's timing; in neither does the line run (no move request, below).
    assert!(out.contains("denied"), "{out}");
    s.prompt_after(m, 10);
    let state = fx.state();
    assert_eq!(state["move_requests"], serde_json::json!([]), "{state}");
    assert!(
        mailbox_names(&state).contains(&"Carol Diaz".to_string()),
        "{state}"
    );
    s.quit();
}

#[test]
fn recording_is_valid_asciicast_with_markers_and_no_secret_input() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Get-Mailbox -Identity alice");
    s.prompt_after(m, 10);
    // A window resize reaches the recording as an "r" event.
    s.resize(100, 30);
    std::thread::sleep(Duration::from_millis(300));
    let m = s.line("Remove-Everything");
    s.wait_after(m, "denied", 10);
    let m = s.line("Read-Host -Prompt Password -AsSecureString");
    s.wait_after(m, "Password:", 10);
    let m = s.mark();
    s.send("hunter2-secret\r");
    s.prompt_after(m, 10);
    s.quit();

    let casts = fx.casts();
    assert_eq!(casts.len(), 1);
    let (header, events) = parse_cast(&casts[0], false);
    assert_eq!(
        header["user"].as_str().or(header["jitsh"]["user"].as_str()),
        Some("alice")
    );
    let markers: Vec<&str> = events
        .iter()
        .filter(|e| e.1 == "m")
        .map(|e| e.2.as_str())
        .collect();
    assert!(
        markers
            .iter()
            .any(|m| m.contains("allow") && m.contains("read-only")),
        "{markers:?}"
    );
    assert!(markers.iter().any(|m| m.contains("deny")), "{markers:?}");
    let input = cast_text(&events, "i");
    assert!(input.contains("Get-Mailbox -Identity alice"));
    assert!(!input.contains("hunter2"), "secret input was recorded");
    let output = cast_text(&events, "o");
    assert!(output.contains("Alice Johnson"));
    assert!(!output.contains("hunter2"));

    // The audit log has the session's start, each decision, and its end with the recording's
    // SHA-256.
    let audit: String = std::fs::read_dir(fx.path("rec/audit"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(actions.contains(&"session.start"), "{actions:?}");
    assert!(
        actions.iter().filter(|a| **a == "gate.decision").count() >= 3,
        "{actions:?}"
    );
    let end = records
        .iter()
        .find(|r| r["action"] == "session.end")
        .expect("session.end");
    let cast_bytes = std::fs::read(&casts[0]).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &cast_bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(end["details"]["recording_sha256"], serde_json::json!(hex));
    assert!(
        !audit.contains("hunter2"),
        "secret input reached the audit log"
    );
    let logs: Vec<PathBuf> = std::fs::read_dir(fx.path("rec/audit"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    let verify = Command::new(JITSH)
        .args(["audit", "verify"])
        .args(&logs)
        .arg("--trust-key")
        .arg(fx.path("rec/audit/signing.pub"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // Other players agree.
    let replay = Command::new(JITSH)
        .arg("replay")
        .arg(&casts[0])
        .arg("--speed")
        .arg("100")
        .output();
    match replay {
        Ok(o) if o.status.success() => {
            assert!(String::from_utf8_lossy(&o.stdout).contains("Alice Johnson"))
        }
        Ok(o) => eprintln!(
            "note: `jitsh replay` did not play the recording here: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("jitsh replay: {e}"),
    }
    match Command::new("asciinema").arg("cat").arg(&casts[0]).output() {
        Ok(o) => {
            assert!(
                o.status.success(),
                "asciinema cat failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(String::from_utf8_lossy(&o.stdout).contains("Alice Johnson"));
        }
        Err(_) => inputs::skip(
            "recording_is_valid_asciicast_with_markers_and_no_secret_input",
            "asciinema is not on PATH, `asciinema cat` not tried",
        ),
    }
}

#[test]
fn kill_9_leaves_a_recording_that_parses_up_to_the_kill() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Get-Mailbox");
    s.prompt_after(m, 10);
    // Output is written to the recording as it is shown: it is there while the session waits,
    // with nothing else happening in it.
    std::thread::sleep(Duration::from_millis(100));
    let casts = fx.casts();
    assert_eq!(casts.len(), 1);
    let (_, events) = parse_cast(&casts[0], true);
    assert!(
        events
            .iter()
            .any(|e| e.1 == "o" && e.2.contains("Frank Miller")),
        "the output shown is in the recording while the session waits"
    );
    let pid = s.child.process_id().unwrap();
    Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    s.wait_exit(10);
    let (_, events) = parse_cast(&casts[0], true);
    let output = cast_text(&events, "o");
    assert!(
        output.contains("Frank Miller"),
        "the output before the kill is in the recording"
    );
    assert!(events.iter().any(|e| e.1 == "m"));
}

/// Attack: hide what was typed by killing the gate the moment the runspace has it. Every key
/// is in the recording before the runspace can read it (and at the prompt before its echo is
/// shown), so a kill as soon as the first key's echo shows cannot take any of them out: one key
/// passed to a running command, an answer with Enter, several keys at once, and keys typed at
/// the prompt.
#[test]
fn kill_9_the_moment_a_key_shows_cannot_keep_it_out_of_the_recording() {
    // (keys typed in one write, command to run first; no prompt holds the first key, whose
    // echo the kill waits for)
    let cases: [(&str, Option<&str>); 4] = [
        ("y", Some("Read-Host 'Delete all'")),
        ("Y\r", Some("Read-Host 'Sure'; Get-Mailbox")),
        ("Yes-I-am", Some("Read-Host 'Type the phrase'")),
        ("Remove-Mailbox", None),
    ];
    for (keys, first) in cases {
        let fx = Fixture::new();
        let mut s = Screen::start(&fx, &[]);
        if let Some(cmd) = first {
            let m = s.line(cmd);
            s.wait_after(m, ": ", 10);
        }
        let from = s.raw_len();
        s.send(keys);
        s.kill_9_when_shown(from, &keys.as_bytes()[..1]);
        let casts = fx.casts();
        assert_eq!(casts.len(), 1);
        let (_, events) = parse_cast(&casts[0], true);
        let input = cast_text(&events, "i");
        // Keys are read and acted on as they come: those after the kill may never have been
        // read. Every key shown (echoed by the runspace or the editor) must be recorded.
        let shown = {
            let raw = s.output.lock().unwrap();
            strip_ansi(&String::from_utf8_lossy(
                raw.get(from..).unwrap_or_default(),
            ))
        };
        let prefix = |k: usize| keys.get(..k).unwrap_or_default();
        // (Enter shows as a new line, not as itself: a prefix ending in it is not counted.)
        let echoed = (1..=keys.len())
            .rev()
            .filter(|&k| !prefix(k).ends_with('\r'))
            .find(|&k| shown.contains(prefix(k)))
            .unwrap_or(0);
        let recorded = (1..=keys.len())
            .rev()
            .find(|&k| input.ends_with(prefix(k)))
            .unwrap_or(0);
        assert!(
            echoed >= 1 && recorded >= echoed,
            "{keys:?}: {echoed} keys shown, then the gate killed: the recording's input ends \
             {input:?}"
        );
    }
}

#[test]
fn runspace_exit_status_ends_the_session() {
    let fx = Fixture::new();
    let policy = POLICY.replace(r#""Format-Table"]"#, r#""Format-Table", "exit"]"#);
    std::fs::write(fx.path("policies/test.toml"), policy).unwrap();
    let mut s = Screen::start(&fx, &[]);
    s.line("exit 7");
    assert_eq!(s.wait_exit(10), 7);
}

/// The recording's events so far, read while the session runs (the last line may be torn).
fn cast_events_now(fx: &Fixture) -> Vec<(f64, String, String)> {
    let casts = fx.casts();
    assert_eq!(casts.len(), 1, "one recording: {casts:?}");
    parse_cast(&casts[0], true).1
}

/// While a command runs, keys and output pass through a loop that waits outside the runtime.
/// What the runtime delivers must still reach the session there: a window resize (recorded,
/// and passed to the runspace), and SIGTERM, which ends the session at once, not at the next
/// key or output.
#[test]
fn keys_resizes_and_signals_reach_a_session_while_a_command_runs() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    // Keys typed into a running command reach it, and its answer comes back.
    let m = s.line("Read-Host 'value'");
    s.wait_after(m, "value:", 10);
    let m = s.mark();
    s.send("passed-through");
    s.wait_after(m, "passed-through", 10);
    s.send("\r");
    let out = s.prompt_after(m, 10);
    assert_eq!(
        out.matches("passed-through").count(),
        2,
        "echo and answer:\n{out}"
    );

    let m = s.line("Start-Sleep -Seconds 60");
    s.wait_after(m, "Start-Sleep -Seconds 60", 10);
    std::thread::sleep(Duration::from_millis(300));
    for (cols, rows) in [(100u16, 30u16), (90, 25)] {
        s.resize(cols, rows);
        let want = format!("{cols}x{rows}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cast_events_now(&fx)
            .iter()
            .any(|e| e.1 == "r" && e.2 == want)
        {
            assert!(
                Instant::now() < deadline,
                "the resize to {want} during Start-Sleep was not recorded"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let pid = s.child.process_id().unwrap();
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(s.wait_exit(5), 128 + 15);
    assert!(started.elapsed() < Duration::from_secs(5));
    // It ended the ordinary way: the audit log has the session's end.
    assert!(
        audit_records(&fx)
            .iter()
            .any(|r| r["action"] == "session.end" && r["details"]["status"] == 143),
        "no session.end with status 143"
    );
}

/// The runspace exits while a command it started still holds the terminal open (a background
/// job), so its output does not end: the session still ends with the runspace's status at
/// once, not when that job lets go of the terminal.
#[test]
fn a_runspace_that_exits_while_a_background_job_holds_the_terminal_ends_the_session() {
    let fx = Fixture::new();
    let policy = POLICY.replace(r#""Format-Table"]"#, r#""Format-Table", "Exit-Now"]"#);
    std::fs::write(fx.path("policies/test.toml"), policy).unwrap();
    // A runspace with OSC 133 markers: one prompt, one line, then it runs it (`C`), leaves a
    // job holding the terminal for a minute (in a session of its own, so the runspace's
    // hang-up does not end it), and exits with status 5.
    let script = r#"printf '\033]133;A\007PS C:\\> \033]133;B\007'; read line; printf '\033]133;C\007running\n'; setsid sleep 61 & sleep 1; exit 5"#;
    let mut s = Screen::start(&fx, &["--", "sh", "-c", script]);
    let m = s.line("Exit-Now");
    s.wait_after(m, "running", 10);
    let started = Instant::now();
    assert_eq!(s.wait_exit(10), 5);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the session waited for the background job"
    );
    let _ = Command::new("pkill")
        .args(["-x", "-f", "sleep 61"])
        .status();
}

fn exec(fx: &Fixture, line: &str) -> std::process::Output {
    Command::new(JITSH)
        .arg("exec")
        .arg("--policies")
        .arg(fx.path("policies"))
        .arg("--user")
        .arg("alice")
        .args(
            test_runspace()
                .map(|r| vec!["--runspace".to_string(), r])
                .unwrap_or_default(),
        )
        .arg("--")
        .arg(line)
        .env("JITSH_RECORD_DIR", fx.path("rec"))
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .current_dir(fx.dir.path())
        .output()
        .unwrap()
}

#[test]
fn exec_runs_an_allowed_line_and_refuses_others_with_status() {
    let fx = Fixture::new();
    let ok = exec(&fx, "Get-Mailbox -Identity bob");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains("Bob Smith"), "{out}");
    assert!(!out.contains("PS C:\\>"), "prompts are left out: {out}");

    let approval = exec(&fx, "New-MoveRequest -Identity bob -TargetDatabase DB02");
    assert_eq!(approval.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&approval.stderr);
    // `:request` exists only inside the shell; exec names the command that works here.
    assert!(
        refusal.contains("jitsh request --task New-MoveRequest"),
        "{refusal}"
    );
    assert!(!refusal.contains(":request"), "{refusal}");

    let deny = exec(&fx, "Invoke-Expression 'Remove-Mailbox bob'");
    assert_eq!(deny.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&deny.stderr).contains("denied"));
    assert_eq!(fx.state()["move_requests"], serde_json::json!([]));
}

#[test]
fn exec_passes_on_the_command_status() {
    let fx = Fixture::new();
    let failed = exec(&fx, "Get-Mailbox -Identity nobody-here");
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
}

#[test]
fn real_powershell_session_when_pwsh_is_installed() {
    if Command::new("pwsh").arg("-Version").output().is_err() {
        // pwsh is not installable everywhere CI runs: required only with JITSH_REQUIRE_PWSH=1.
        inputs::skip_unless_required(
            "real_powershell_session_when_pwsh_is_installed",
            "pwsh is not on PATH, the real PowerShell session was not tried",
            "JITSH_REQUIRE_PWSH",
        );
        return;
    }
    let fx = Fixture::new();
    let policy = POLICY.replace(r#""Format-Table"]"#, r#""Format-Table", "Write-Output"]"#);
    std::fs::write(fx.path("policies/test.toml"), policy).unwrap();
    let mut s = Screen::start(&fx, &["--", "pwsh", "-NoLogo", "-NoProfile"]);
    let m = s.line("Write-Output ('gate' + 'd-ok')");
    s.wait_after(m, "gated-ok", 30);
    let m = s.line("Remove-Item -Recurse /tmp/nothing-here");
    s.wait_after(m, "denied", 10);
    s.quit();
}

/// A signing key, its public half on disk, and a token for `alice` covering `New-MoveRequest`
/// under rule `mailbox-moves` until `exp`.
fn issue_token(fx: &Fixture, jti: &str, exp: chrono::DateTime<chrono::Utc>) -> (PathBuf, PathBuf) {
    use jitsh::token::{issue, Claims, SigningKey};
    let key = SigningKey::from_seed([7u8; 32]).unwrap();
    let public = fx.path("signing.pub");
    std::fs::write(&public, key.public_key().to_file_text()).unwrap();
    let now = chrono::Utc::now();
    let claims = Claims {
        iss: "jitsh-test".into(),
        sub: "alice".into(),
        jti: jti.into(),
        iat: now,
        nbf: now - chrono::Duration::seconds(60),
        exp,
        rule: "mailbox-moves".into(),
        tasks: vec!["New-MoveRequest".into()],
        params: None,
        request: "r-1".into(),
        approvers: vec!["bob".into()],
        uses: None,
        command: None,
        offline: Some(3600),
        extra: serde_json::Map::new(),
    };
    let token = fx.path(&format!("{jti}.token"));
    std::fs::write(&token, issue(&claims, &key).unwrap()).unwrap();
    (token, public)
}

fn move_requests(fx: &Fixture) -> usize {
    fx.state()["move_requests"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_valid_token_lets_the_privileged_line_run_until_it_expires() {
    let fx = Fixture::new();
    let issued = Instant::now();
    let exp = chrono::Utc::now() + chrono::Duration::seconds(6);
    allow_offline(&fx);
    let (token, public) = issue_token(&fx, "tok-short", exp);
    let (token, public) = (token.display().to_string(), public.display().to_string());
    let mut s = Screen::start(
        &fx,
        &[
            "--token",
            &token,
            "--trust-key",
            &public,
            "--skew",
            "0",
            "--",
            EXSIM[0],
            EXSIM[1],
        ],
    );
    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    s.prompt_after(m, 10);
    assert_eq!(move_requests(&fx), 1, "the covered line ran");

    let m = s.line(":tokens");
    let out = s.wait_after(m, "tok-short", 10);
    assert!(out.contains("valid"), "{out}");

    // Same session, same token, after its expiry: refused again.
    let left = Duration::from_millis(6500).saturating_sub(issued.elapsed());
    std::thread::sleep(left);
    let m = s.line("New-MoveRequest -Identity carol -TargetDatabase DB02");
    let out = s.wait_after(m, ":request New-MoveRequest", 10);
    assert!(out.contains("no valid token covers it"), "{out}");
    assert_eq!(move_requests(&fx), 1, "the expired token covered nothing");
    s.quit();

    let (_, events) = parse_cast(&fx.casts()[0], false);
    let markers: Vec<&str> = events
        .iter()
        .filter(|e| e.1 == "m")
        .map(|e| e.2.as_str())
        .collect();
    assert!(
        markers
            .iter()
            .any(|m| m.contains("allow") && m.contains("token=tok-short")),
        "{markers:?}"
    );
}

#[test]
fn no_token_is_honoured_while_the_service_cannot_be_reached() {
    let fx = Fixture::new();
    let exp = chrono::Utc::now() + chrono::Duration::hours(1);
    let (token, public) = issue_token(&fx, "tok-long", exp);
    let (token, public) = (token.display().to_string(), public.display().to_string());
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let mut s = Screen::start(
        &fx,
        &[
            "--token",
            &token,
            "--trust-key",
            &public,
            "--server",
            &server,
            "--",
            EXSIM[0],
            EXSIM[1],
        ],
    );
    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    let out = s.wait_after(m, ":request New-MoveRequest", 15);
    assert!(out.contains("could not be reached"), "{out}");
    assert!(out.contains("does not allow offline use"), "{out}");
    assert_eq!(move_requests(&fx), 0);
    // Standing access still works.
    let m = s.line("Get-Mailbox -Identity erin");
    let out = s.prompt_after(m, 10);
    assert!(out.contains("Erin Walsh"), "{out}");
    s.quit();
}

#[test]
fn exec_honours_a_token() {
    let fx = Fixture::new();
    let exp = chrono::Utc::now() + chrono::Duration::hours(1);
    allow_offline(&fx);
    let (token, public) = issue_token(&fx, "tok-exec", exp);
    let out = Command::new(JITSH)
        .arg("exec")
        .arg("--policies")
        .arg(fx.path("policies"))
        .arg("--user")
        .arg("alice")
        .arg("--token")
        .arg(&token)
        .arg("--trust-key")
        .arg(&public)
        .arg("--")
        .arg("New-MoveRequest -Identity bob -TargetDatabase DB02")
        .env("JITSH_RECORD_DIR", fx.path("rec"))
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .current_dir(fx.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(move_requests(&fx), 1);
}

/// `jitsh serve` on a free loopback port over `state` and the fixture's policies; returns the
/// process and its URL once it accepts connections.
fn start_service(fx: &Fixture, state: &Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let service = Command::new(JITSH)
        .args(["serve", "--state"])
        .arg(state)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--policies"])
        .arg(fx.path("policies"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the service did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (service, format!("http://127.0.0.1:{port}"))
}

/// Run a `jitsh` client command against the service as the holder of `credential`.
fn client(server: &str, credential: &str, args: &[&str]) -> std::process::Output {
    Command::new(JITSH)
        .args(args)
        .env("JITSH_SERVER", server)
        .env("JITSH_CREDENTIAL", credential)
        .output()
        .unwrap()
}

/// As [`client`], trusting the signing key of the service in `state` (as after `jitsh login`):
/// `request` and `token fetch` need it.
fn client_trusting(
    state: &Path,
    server: &str,
    credential: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(JITSH)
        .args(args)
        .env("JITSH_SERVER", server)
        .env("JITSH_CREDENTIAL", credential)
        .env("JITSH_TRUST_KEY", state.join("signing.pub"))
        .output()
        .unwrap()
}

/// `jitsh user add`; the credential is alone on the last line.
fn add_user(state: &Path, name: &str, groups: &str) -> String {
    let mut cmd = Command::new(JITSH);
    cmd.args(["user", "add", name, "--state"]).arg(state);
    if !groups.is_empty() {
        cmd.args(["--groups", groups]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .last()
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn a_request_made_in_the_shell_is_used_once_approved_and_stops_when_revoked() {
    let fx = Fixture::new();
    let state = fx.path("state");
    std::fs::create_dir(&state).unwrap();
    let alice = add_user(&state, "alice", "");
    let bob = add_user(&state, "bob", "mbmanagers");
    let (mut service, server) = start_service(&fx, &state);

    let public = state.join("signing.pub").display().to_string();
    // Started by hand: the credential travels in the environment, as in real use.
    let mut cmd = CommandBuilder::new(JITSH);
    cmd.args(fx.shell_args());
    cmd.args(["--server", &server, "--trust-key", &public]);
    cmd.env("JITSH_CREDENTIAL", &alice);
    let mut s = Screen::spawn(&fx, cmd, 160);
    s.wait_for("PS ", 20);

    let m = s.line(":request New-MoveRequest --reason \"move bob to DB02\" --for 1h");
    let out = s.wait_after(m, "sent", 15);
    let id = out
        .split("jitsh: request ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("request id")
        .to_string();

    let approved = client(&server, &bob, &["approve", &id, "--comment", "ok"]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    s.wait_after(m, "its token is now in use", 20);

    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    s.prompt_after(m, 15);
    assert_eq!(
        move_requests(&fx),
        1,
        "the approved request's token covered the line"
    );

    let revoked = client(&server, &bob, &["revoke", &id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // No cache: the very next line is confirmed with the service, and refused.
    let m = s.line("New-MoveRequest -Identity carol -TargetDatabase DB02");
    s.wait_after(m, "refused token", 15);
    assert_eq!(move_requests(&fx), 1, "the revoked token covered nothing");
    s.quit();
    let _ = service.kill();
    let _ = service.wait();
}

#[test]
fn the_runspace_never_sees_the_service_credential() {
    let fx = Fixture::new();
    let show = "echo \"cred=[$JITSH_CREDENTIAL] session=[$JITSH_SESSION]\"";
    // The interactive session (a terminal on stdin).
    let mut cmd = CommandBuilder::new(JITSH);
    cmd.args(fx.shell_args());
    cmd.args(["--", "/bin/sh", "-c", &format!("{show}; sleep 1")]);
    cmd.env("JITSH_CREDENTIAL", "secret-credential-value");
    let mut s = Screen::spawn(&fx, cmd, 120);
    s.wait_for("session=[", 20);
    assert_eq!(s.wait_exit(20), 0);
    let text = s.text();
    assert!(text.contains("cred=[]"), "{text}");
    assert!(
        !text.contains("session=[]"),
        "the session id is passed on: {text}"
    );
    // Piped input runs each line as `exec` does: the runspace does not see it either.
    let out = Command::new(JITSH)
        .args(fx.shell_args())
        .args(["--", "/bin/sh", "-c", show])
        .env("JITSH_CREDENTIAL", "secret-credential-value")
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .current_dir(fx.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"Get-Mailbox\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cred=[]"), "{text}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn incomplete_lines_continue_and_meta_commands_answer() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Get-Mailbox |");
    s.wait_after(m, ">> ", 10);
    let m = s.line("Select-Object Name");
    // jitsh-exsim reads one line at a time: sent line by line, the parts would run ungated.
    s.wait_after(m, "one line at a time", 10);

    let m = s.line(":request New-MoveRequest --reason \"x\" --for 1h");
    s.wait_after(m, "no approval service is configured", 10);
    let m = s.line(":frobnicate");
    s.wait_after(m, "unknown meta-command `frobnicate`", 10);
    let m = s.line(":help");
    s.wait_after(m, ":request TASK --reason TEXT", 10);
    let m = s.line(":status");
    let out = s.wait_after(m, "no tokens held", 10);
    assert!(out.contains("no pending requests"), "{out}");
    assert_eq!(s.quit(), 0);
    // The multi-line refusal left a record and a marker.
    let refused: Vec<serde_json::Value> = audit_records(&fx)
        .into_iter()
        .filter(|r| r["action"] == "gate.decision" && r["details"]["multiline"] == true)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["outcome"], "deny");
    assert_eq!(
        refused[0]["details"]["line"],
        "Get-Mailbox |\nSelect-Object Name"
    );
    assert!(
        cast_markers(&fx)
            .iter()
            .any(|m| m.starts_with("gate: deny multi-line")),
        "{:?}",
        cast_markers(&fx)
    );
}

/// The README's main command: `jitsh shell` with no `--server` starts an approval service
/// in-process; a second terminal approves with the approver credential it wrote; the session
/// picks the token up; the service's audit log holds the workflow and the gate's events.
#[test]
fn without_a_server_the_shell_starts_its_own_approval_service() {
    let fx = Fixture::new();
    let state = fx.path("local-service");
    let mut cmd = CommandBuilder::new(JITSH);
    let args: Vec<String> = fx
        .shell_args()
        .into_iter()
        .filter(|a| a != "--no-service")
        .collect();
    cmd.args(args);
    cmd.env("JITSH_STATE", &state);
    cmd.env_remove("JITSH_SERVER");
    cmd.env_remove("JITSH_CREDENTIAL");
    cmd.env("HOME", fx.dir.path());
    let mut s = Screen::spawn(&fx, cmd, 160);
    let banner = s.wait_for("PS ", 30);
    assert!(
        banner.contains("approval service for this session"),
        "{banner}"
    );
    let server = service_url(&banner);
    let approver = std::fs::read_to_string(state.join("approver.credential"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        !banner.contains(&approver),
        "the approver credential is never printed"
    );

    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    s.wait_after(m, ":request New-MoveRequest", 15);
    assert_eq!(move_requests(&fx), 0);
    let m = s.line(":request New-MoveRequest --reason \"move bob\" --for 1h");
    let out = s.wait_after(m, "sent", 15);
    let id = out
        .split("jitsh: request ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("request id")
        .to_string();
    let approved = client(&server, &approver, &["approve", &id, "--comment", "ok"]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    s.wait_after(m, "its token is now in use", 20);
    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    s.prompt_after(m, 15);
    assert_eq!(move_requests(&fx), 1, "the approved token covered the line");
    assert_eq!(s.quit(), 0);

    // The service stopped cleanly: its log verifies, and the gate's decisions reached it.
    let verify = Command::new(JITSH)
        .args(["audit", "verify"])
        .arg(state.join("audit"))
        .arg("--trust-key")
        .arg(state.join("signing.pub"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let search = Command::new(JITSH)
        .args(["audit", "search", "--json"])
        .arg(state.join("audit"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&search.stdout);
    for action in [
        "request.create",
        "request.approve",
        "token.issue",
        "session.start",
    ] {
        assert!(
            text.contains(action),
            "{action} missing from the service's audit log:\n{text}"
        );
    }
}

/// A counted grant (`--uses 1`) lets exactly one line run: the shell spends the use at the
/// service before sending the line, and the next line is refused.
#[test]
fn a_single_use_grant_runs_one_line_only() {
    let fx = Fixture::new();
    let state = fx.path("state");
    std::fs::create_dir(&state).unwrap();
    let alice = add_user(&state, "alice", "");
    let bob = add_user(&state, "bob", "mbmanagers");
    let (mut service, server) = start_service(&fx, &state);
    let req = client_trusting(
        &state,
        &server,
        &alice,
        &[
            "request",
            "--task",
            "New-MoveRequest",
            "--reason",
            "one move",
            "--for",
            "1h",
            "--uses",
            "1",
        ],
    );
    assert!(
        req.status.success(),
        "{}",
        String::from_utf8_lossy(&req.stderr)
    );
    let id = String::from_utf8_lossy(&req.stdout).trim().to_string();
    let ok = client(&server, &bob, &["approve", &id]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let token = fx.path("one.tok");
    let fetched = client_trusting(
        &state,
        &server,
        &alice,
        &["token", "fetch", &id, "--out", token.to_str().unwrap()],
    );
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );

    let public = state.join("signing.pub").display().to_string();
    let mut s = Screen::start_env(
        &fx,
        &[
            "--server",
            &server,
            "--token",
            token.to_str().unwrap(),
            "--trust-key",
            &public,
        ],
        &[("JITSH_CREDENTIAL", &alice)],
    );
    // Two moves in one line would spend one use twice: refused.
    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02; New-MoveRequest -Identity carol -TargetDatabase DB02");
    s.wait_after(m, "counted grant", 15);
    assert_eq!(move_requests(&fx), 0);
    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    s.prompt_after(m, 15);
    assert_eq!(move_requests(&fx), 1, "the first use ran");
    let m = s.line("New-MoveRequest -Identity carol -TargetDatabase DB02");
    s.wait_after(m, "no uses left", 15);
    assert_eq!(move_requests(&fx), 1, "the grant had no use left");
    s.quit();
    let _ = service.kill();
    let _ = service.wait();
}

/// `cargo run -- shell` builds only `jitsh`: without `jitsh-exsim` beside it, jitsh runs the
/// simulated runspace itself.
#[test]
fn jitsh_alone_still_has_its_simulated_runspace() {
    let fx = Fixture::new();
    let lonely = fx.path("bin");
    std::fs::create_dir(&lonely).unwrap();
    let exe = lonely.join("jitsh");
    std::fs::copy(JITSH, &exe).unwrap();
    let out = Command::new(&exe)
        .args(["exec", "--policies"])
        .arg(fx.path("policies"))
        .args(["--user", "alice", "--", "Get-Mailbox -Identity alice"])
        .current_dir(fx.dir.path())
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .env("JITSH_RECORD_DIR", fx.path("rec"))
        .env_remove("JITSH_SERVER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Alice Johnson"));
}

// ---- the runspace reads a line as incomplete (PowerShell's block mode) ---------------------

/// `jitsh shell` over the simulated runspace in console-host mode with `runspace_args`.
fn console_host_screen(fx: &Fixture, runspace_args: &[&str]) -> Screen {
    let mut extra = vec!["--", EXSIM[0], EXSIM[1], "--console-host"];
    extra.extend_from_slice(runspace_args);
    Screen::start(fx, &extra)
}

/// The gate's audit records of the session.
fn audit_records(fx: &Fixture) -> Vec<serde_json::Value> {
    std::fs::read_dir(fx.path("rec/audit"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Wait for the refusal after `mark`, then for the runspace's prompt after it (keys typed
/// before that prompt are dropped); returns the screen from the refusal on.
fn refused_then_prompt(s: &Screen, mark: usize) -> String {
    let out = s.wait_after(mark, "jitsh: refused", 15);
    let at = mark + out.find("jitsh: refused").unwrap();
    s.prompt_after(at, 15)
}

fn continuation_refusals(fx: &Fixture) -> Vec<serde_json::Value> {
    audit_records(fx)
        .into_iter()
        .filter(|r| r["action"] == "gate.decision" && r["details"]["continuation"] == true)
        .collect()
}

fn cast_markers(fx: &Fixture) -> Vec<String> {
    let casts = fx.casts();
    let (_, events) = parse_cast(&casts[0], false);
    events
        .into_iter()
        .filter(|e| e.1 == "m")
        .map(|e| e.2)
        .collect()
}

/// Spellings the gate reads as plain words and the runspace (through `--read-as`) as the
/// PowerShell text that leaves a line open: the two readers disagree about where the command
/// ends, whatever the gate's parser does with the PowerShell text itself.
const DISAGREEING: &[&str] = &[
    "--read-as",
    "OPENINDEX='x'[",
    "--read-as",
    "OPENPAREN=(",
    "--read-as",
    "PIPEEND=|",
    "--read-as",
    "OREND=||",
    "--read-as",
    "HEREOPEN=@'",
    "--read-as",
    "SUBEXPR=$(",
];

/// Each member: the line jitsh allows and sends (the runspace reads it as incomplete), then
/// what is typed next as more of it: a privileged command, and the empty line that would run
/// the block.
const BLOCK_ATTACKS: &[(&str, &str)] = &[
    // An index opened after a string.
    (
        "Get-Mailbox -Identity bob OPENINDEX",
        "0]; Remove-Mailbox alice -Confirm:$false\r\r",
    ),
    // An unclosed parenthesis.
    (
        "Get-Mailbox -Identity OPENPAREN",
        "'bob'); Remove-Mailbox carol -Confirm:$false\r\r",
    ),
    // A trailing pipe, and a trailing `||`.
    (
        "Get-Mailbox -Identity bob PIPEEND",
        "Remove-Mailbox erin -Confirm:$false\r\r",
    ),
    (
        "Get-Mailbox -Identity bob OREND",
        "New-MoveRequest -Identity bob -TargetDatabase DB02\r\r",
    ),
    // A here-string opener: its lines, its end, then a command.
    (
        "Get-Mailbox -Identity HEREOPEN",
        "bob\r'@; Remove-Mailbox frank -Confirm:$false\r\r",
    ),
    // A subexpression opened in an argument.
    (
        "Get-Mailbox -Identity SUBEXPR",
        "Remove-Mailbox support -Confirm:$false)\r\r",
    ),
];

fn assert_no_block_ran(fx: &Fixture) {
    let names = mailbox_names(&fx.state());
    for victim in [
        "Alice Johnson",
        "Carol Diaz",
        "Erin Walsh",
        "Frank Miller",
        "Support",
    ] {
        assert!(
            names.contains(&victim.to_string()),
            "{victim} was removed: {names:?}"
        );
    }
    assert_eq!(fx.state()["move_requests"], serde_json::json!([]));
}

/// The runspace marks its continuation prompt (as jitsh's PowerShell integration does): each
/// line it reads as incomplete is interrupted and refused at once, and the lines typed with it
/// never reach the runspace.
#[test]
fn a_line_the_runspace_reads_as_incomplete_is_interrupted_and_refused() {
    let fx = Fixture::new();
    let mut args = vec!["--mark-continuation"];
    args.extend_from_slice(DISAGREEING);
    let mut s = console_host_screen(&fx, &args);
    for (line, typed) in BLOCK_ATTACKS {
        // Typed in one go, as a paste or a fast typist would: the line, Enter, and more.
        let m = s.mark();
        s.send(&format!("{line}\r{typed}"));
        let out = refused_then_prompt(&s, m);
        assert!(out.contains("continuation prompt"), "{line}: {out}");
        // The prompt is back and the runspace reads commands again.
        let m = s.line("Get-Mailbox -Identity bob");
        let out = s.prompt_after(m, 10);
        assert!(out.contains("Bob Smith"), "{line}: {out}");
        assert_no_block_ran(&fx);
    }
    assert_eq!(s.quit(), 0);
    assert_no_block_ran(&fx);

    let refusals = continuation_refusals(&fx);
    assert_eq!(refusals.len(), BLOCK_ATTACKS.len(), "{refusals:?}");
    for (r, (line, _)) in refusals.iter().zip(BLOCK_ATTACKS) {
        assert_eq!(r["outcome"], "deny");
        assert_eq!(r["details"]["line"], *line);
        assert!(
            r["details"]["dropped_input_bytes"].as_u64().unwrap() > 0,
            "{r}"
        );
    }
    let markers = cast_markers(&fx);
    assert_eq!(
        markers
            .iter()
            .filter(|m| m.starts_with("gate: deny continuation"))
            .count(),
        BLOCK_ATTACKS.len(),
        "{markers:?}"
    );
}

/// PowerShell's own console host shows a bare `>> ` (no prompt function, no marker): the line
/// is refused because the runspace never says that it runs it, and what is typed meanwhile,
/// however slowly, is held and dropped.
#[test]
fn a_bare_continuation_prompt_gets_no_keystrokes() {
    let fx = Fixture::new();
    let mut s = console_host_screen(&fx, DISAGREEING);
    for (line, typed) in [BLOCK_ATTACKS[0], BLOCK_ATTACKS[2]] {
        let m = s.line(line);
        s.wait_after(m, ">> ", 10);
        std::thread::sleep(Duration::from_millis(300));
        for part in typed.split_inclusive('\r') {
            s.send(part);
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = refused_then_prompt(&s, m);
        assert!(out.contains("no OSC 133;C mark"), "{line}: {out}");
        assert_no_block_ran(&fx);
    }
    // Ctrl-C at the bare `>> ` drops the block and what was typed with it; the empty line
    // after it finds no block to run.
    let m = s.mark();
    s.send(&format!(
        "{}\r0]; Remove-Mailbox alice -Confirm:$false\r",
        BLOCK_ATTACKS[0].0
    ));
    let out = s.wait_after(m, ">> ", 10);
    let at = m + out.find(">> ").unwrap();
    s.send("\x03");
    s.prompt_after(at, 10);
    let m = s.line("");
    s.prompt_after(m, 10);
    let m = s.line("Get-Mailbox -Identity frank");
    let out = s.prompt_after(m, 10);
    assert!(out.contains("Frank Miller"), "{out}");
    assert_eq!(s.quit(), 0);
    assert_no_block_ran(&fx);
    assert_eq!(continuation_refusals(&fx).len(), 2);
}

/// Holding keys until the runspace says it runs the line does not starve a command that runs:
/// an answer typed ahead with the line reaches its confirmation prompt, Ctrl-C interrupts, and
/// complete lines run as before.
#[test]
fn typed_ahead_answers_still_reach_a_running_command_in_console_host_mode() {
    let fx = Fixture::new();
    let mut s = console_host_screen(&fx, &[]);
    let m = s.mark();
    s.send("Remove-Mailbox -Identity carol\rN\r");
    let out = s.wait_after(m, "[Y] Yes", 10);
    s.prompt_after(m + out.find("[Y] Yes").unwrap(), 10);
    assert!(mailbox_names(&fx.state()).contains(&"Carol Diaz".to_string()));
    let m = s.mark();
    s.send("Remove-Mailbox -Identity carol\rY\r");
    let out = s.wait_after(m, "[Y] Yes", 10);
    s.prompt_after(m + out.find("[Y] Yes").unwrap(), 10);
    assert!(!mailbox_names(&fx.state()).contains(&"Carol Diaz".to_string()));

    let m = s.line("Start-Sleep -Seconds 60");
    s.wait_after(m, "Start-Sleep -Seconds 60", 10);
    std::thread::sleep(Duration::from_millis(300));
    let m = s.mark();
    s.send("\x03");
    s.prompt_after(m, 10);
    let m = s.line("Get-Mailbox -Identity erin");
    let out = s.prompt_after(m, 10);
    assert!(out.contains("Erin Walsh"), "{out}");
    assert!(!out.contains("jitsh: refused"), "{out}");
    assert_eq!(s.quit(), 0);
    assert!(continuation_refusals(&fx).is_empty());
}

/// The issue's own example, with no stand-in: an index opened after a string. Whether jitsh's
/// parser reads it as incomplete (then jitsh keeps collecting and refuses the multi-line
/// command for this runspace) or as complete (then the runspace's block mode is refused), the
/// command typed after it never runs.
#[test]
fn an_index_opened_after_a_string_never_lets_the_next_line_run() {
    let fx = Fixture::new();
    let mut s = console_host_screen(&fx, &["--mark-continuation"]);
    for (line, typed) in [
        (
            "Get-Mailbox -Identity \"bob\"[",
            "0]; Remove-Mailbox alice -Confirm:$false\r\r",
        ),
        (
            "Get-Mailbox -Identity 'bob'[0",
            "]; Remove-Mailbox carol -Confirm:$false\r\r",
        ),
    ] {
        let m = s.mark();
        s.send(&format!("{line}\r{typed}"));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = s.since(m);
            if out.contains("jitsh: refused") {
                refused_then_prompt(&s, m);
                break;
            }
            if out.contains("one line at a time") {
                // jitsh read the line as incomplete too and refused the joined command; drop
                // what the editor collected after it and wait until the prompt is back (keys
                // typed while a sent line awaits the runspace's answer are dropped by design).
                let m2 = s.mark();
                s.send("\x03");
                let _ = s.prompt_after(m2, 10);
                std::thread::sleep(Duration::from_millis(500));
                break;
            }
            assert!(Instant::now() < deadline, "{line}: {out}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let m = s.line("Get-Mailbox -Identity bob");
        let out = s.prompt_after(m, 10);
        assert!(out.contains("Bob Smith"), "{line}: {out}");
    }
    assert_eq!(s.quit(), 0);
    assert_no_block_ran(&fx);
}

/// A quick-start shell with the same HOME as one already running: `jitsh shell` started without
/// `--server` and without JITSH_STATE.
/// The URL of the local approval service a quick-start banner names.
fn service_url(banner: &str) -> String {
    banner
        .split("approval service for this session: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("service url")
        .to_string()
}

fn quick_start_shell(fx: &Fixture) -> Screen {
    let mut cmd = CommandBuilder::new(JITSH);
    let args: Vec<String> = fx
        .shell_args()
        .into_iter()
        .filter(|a| a != "--no-service")
        .collect();
    cmd.args(args);
    cmd.env_remove("JITSH_STATE");
    cmd.env_remove("JITSH_SERVER");
    cmd.env_remove("JITSH_CREDENTIAL");
    cmd.env("HOME", fx.dir.path());
    cmd.env("TERM", "xterm");
    let s = Screen::spawn(fx, cmd, 200);
    s.wait_for("PS ", 30);
    s
}

/// The quick start's approval service runs in a process of its own and holds the demo
/// approver's credential: it must not outlive its shell, however the shell ends. Killed with
/// SIGKILL (no clean-up code runs), SIGTERM, SIGHUP (its terminal closed), or `:quit`, the shell
/// leaves no service listening, and its state folder is free for the next quick start.
#[test]
fn the_local_service_ends_with_its_shell_however_the_shell_ends() {
    let fx = Fixture::new();
    for how in ["KILL", "TERM", "HUP", "quit"] {
        let mut s = quick_start_shell(&fx);
        let banner = s.wait_for("PS ", 1);
        let server = service_url(&banner);
        let addr = server.trim_start_matches("http://").to_string();
        assert!(
            std::net::TcpStream::connect(&addr).is_ok(),
            "{how}: the service listens at {addr}"
        );
        // The service process itself holds the folder's lock (its stdout is the locked file),
        // so the lock outlives a killed shell for as long as the service runs.
        let state = fx.path(".local/share/jitsh/local-service");
        let service = Command::new("pgrep")
            .arg("-f")
            .arg(format!("serve --state {}", state.display()))
            .output()
            .unwrap();
        let service = String::from_utf8_lossy(&service.stdout).trim().to_string();
        assert!(
            !service.is_empty() && !service.contains('\n'),
            "{how}: one service: {service:?}"
        );
        assert_eq!(
            std::fs::read_link(format!("/proc/{service}/fd/1")).unwrap(),
            state.join("service.lock"),
            "{how}"
        );
        let pid = s.child.process_id().unwrap();
        match how {
            "KILL" | "TERM" | "HUP" => {
                let signalled = Command::new("kill")
                    .arg(format!("-{how}"))
                    .arg(pid.to_string())
                    .status()
                    .unwrap();
                assert!(signalled.success());
                s.wait_exit(10);
            }
            _ => {
                s.quit();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&addr).is_ok() {
            assert!(
                Instant::now() < deadline,
                "{how}: the service at {addr} still listens after its shell ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Its state folder is free again once the service has stopped (it holds the folder's
        // lock until then, shell or no shell): the next quick start takes the same one.
        let lock = state.join("service.lock");
        while !Command::new("flock")
            .arg("-n")
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "{how}: the service's folder is still locked after its shell ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let next = quick_start_shell(&fx);
        let banner = next.wait_for("PS ", 1);
        assert!(
            banner.contains(&format!("(state in {})", state.display())),
            "{how}: the first folder is free again:\n{banner}"
        );
        assert_eq!(next.quit(), 0);
    }
}

/// Two quick-start shells at once with one HOME: each has its own demo service (the second does
/// not rewrite the first's credentials or audit log), and in both a read-only line runs and
/// `:request` files a request.
#[test]
fn two_quick_start_shells_with_one_home_both_work() {
    let fx = Fixture::new();
    let mut first = quick_start_shell(&fx);
    let mut second = quick_start_shell(&fx);
    for s in [&first, &second] {
        let banner = s.wait_for("PS ", 1);
        assert!(banner.contains("DEMO"), "{banner}");
        assert!(!banner.contains("is in use"), "{banner}");
    }
    let state_of = |s: &Screen| {
        s.wait_for("(state in ", 1)
            .split("(state in ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_default()
            .to_string()
    };
    let (a, b) = (state_of(&first), state_of(&second));
    assert_ne!(a, b, "each quick-start shell keeps its own service state");
    for (n, s) in [&mut first, &mut second].into_iter().enumerate() {
        let m = s.line("Get-Mailbox -Identity alice");
        let out = s.prompt_after(m, 15);
        assert!(out.contains("Alice Johnson"), "shell {n}: {out}");
        let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
        s.wait_after(m, ":request New-MoveRequest", 15);
        let m = s.line(&format!(
            ":request New-MoveRequest --reason \"move bob {n}\" --for 1h"
        ));
        // The shell's own wording, not a bare "401": a random request id can hold those digits.
        let out = s.wait_after(m, "sent", 15);
        assert!(!out.contains("not sent"), "shell {n}: {out}");
        s.wait_after(
            m,
            "sent; its token will be used as soon as it is approved",
            5,
        );
    }
    // The first shell still reaches its own service after the second one started.
    let m = first.line(":status");
    let out = first.wait_after(m, "pending", 10);
    assert!(!out.contains("does not accept this credential"), "{out}");
    assert_eq!(second.quit(), 0);
    assert_eq!(first.quit(), 0);
    assert_eq!(move_requests(&fx), 0);
}

/// The README's quick start, run in the checkout with a fresh HOME, leaves the checkout as it
/// was: the demo service, the simulated organisation and the recordings all live under HOME. The
/// README's example mailbox exists there, so its approved line would run.
#[test]
fn the_quick_start_leaves_the_checkout_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = || {
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(before) = status() else {
        inputs::skip(
            "the_quick_start_leaves_the_checkout_clean",
            "git or the checkout's .git is not available",
        );
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mut cmd = CommandBuilder::new(JITSH);
    cmd.arg("shell");
    cmd.cwd(root);
    for var in [
        "JITSH_STATE",
        "JITSH_SERVER",
        "JITSH_CREDENTIAL",
        "JITSH_EXSIM_STATE",
        "JITSH_RECORD_DIR",
        "JITSH_POLICIES",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home.path());
    cmd.env("TERM", "xterm");
    let mut s = Screen::spawn_as_is(cmd, 200);
    s.wait_for("PS ", 30);
    let m = s.line("Get-Mailbox -Identity rob@contoso.com");
    let out = s.prompt_after(m, 15);
    assert!(out.contains("Rob Turner"), "{out}");
    let m = s.line("New-MoveRequest -Identity rob@contoso.com -TargetDatabase DB02");
    s.wait_after(m, ":request New-MoveRequest", 15);
    assert_eq!(s.quit(), 0);
    assert!(home
        .path()
        .join(".local/share/jitsh/exsim-state.json")
        .is_file());
    assert_eq!(
        status(),
        Some(before),
        "the quick start changed the checkout"
    );
}

/// `jitsh shell` with its input piped: `echo LINE | jitsh shell --policies DIR`.
fn piped_shell(fx: &Fixture, input: &str) -> std::process::Output {
    let mut child = Command::new(JITSH)
        .args(fx.shell_args())
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .current_dir(fx.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Piped input is gated line by line as `exec` gates it: allowed lines run, and the first
/// refused line (approval needed or denied, however it is disguised) stops the input with
/// exec's status, before anything after it runs.
#[test]
fn piped_input_is_gated_and_run_line_by_line() {
    let fx = Fixture::new();
    let out = piped_shell(
        &fx,
        "Get-Mailbox -Identity alice\nGet-Mailbox -Identity bob\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Alice Johnson") && stdout.contains("Bob Smith"),
        "{stdout}"
    );

    for (input, status) in [
        ("New-MoveRequest -Identity bob -TargetDatabase DB02\n", 1),
        (
            "Get-Mailbox bob | Ne`w-MoveRequest -TargetDatabase DB02\n",
            1,
        ),
        ("Invoke-Expression 'Remove-Mailbox carol'\n", 2),
        ("& ('Remove-' + 'Mailbox') carol\n", 2),
    ] {
        let out = piped_shell(
            &fx,
            &format!("Get-Mailbox -Identity alice\n{input}Remove-Mailbox -Identity david\n"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{input}: {stderr}");
        assert!(
            stderr.contains("input line 2 was refused"),
            "{input}: {stderr}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Alice Johnson"),
            "the line before the refusal ran"
        );
        if status == 1 {
            assert!(stderr.contains("jitsh request --task"), "{stderr}");
            assert!(!stderr.contains(":request"), "{stderr}");
        }
    }
    assert_eq!(fx.state()["move_requests"], serde_json::json!([]));
    let names = mailbox_names(&fx.state());
    for kept in ["Carol Diaz", "David Lee"] {
        assert!(
            names.contains(&kept.to_string()),
            "nothing after a refusal ran: {names:?}"
        );
    }

    // Meta-commands need the interactive shell.
    let out = piped_shell(&fx, ":request New-MoveRequest --reason x --for 1h\n");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interactive shell"));
}

/// While the shell owns the terminal, diagnostics (here the in-process service's `-v` lines when
/// a request is filed) go to the log file in the recording folder, never over the prompt;
/// `:status` names the file.
#[test]
fn diagnostics_go_to_the_log_file_not_over_the_prompt() {
    let fx = Fixture::new();
    let mut cmd = CommandBuilder::new(JITSH);
    cmd.arg("-v");
    let args: Vec<String> = fx
        .shell_args()
        .into_iter()
        .filter(|a| a != "--no-service")
        .collect();
    cmd.args(args);
    cmd.env("JITSH_STATE", fx.path("local-service"));
    cmd.env_remove("JITSH_SERVER");
    cmd.env_remove("JITSH_CREDENTIAL");
    cmd.env_remove("RUST_LOG");
    cmd.env("HOME", fx.dir.path());
    cmd.env("TERM", "xterm");
    let mut s = Screen::spawn(&fx, cmd, 200);
    let start = s.wait_for("PS ", 30);
    let m = s.line(":request New-MoveRequest --reason \"move bob\" --for 1h");
    s.wait_after(m, "sent", 15);
    let m = s.line(":status");
    let out = s.wait_after(m, "warnings and diagnostics:", 10);
    let log = fx.path("rec/jitsh.log");
    assert!(out.contains(&log.display().to_string()), "{out}");
    let after_start = s.since(start.len());
    assert!(
        !after_start.contains("request filed") && !after_start.contains(" INFO "),
        "a diagnostic was written over the session:\n{after_start}"
    );
    assert_eq!(s.quit(), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("request sent"), "{text}");
    // The local service runs in a process of its own, with the session's verbosity, and logs
    // to its state folder.
    let service = std::fs::read_to_string(fx.path("local-service/service.log")).unwrap();
    assert!(service.contains("request filed"), "{service}");
    for text in [text, service] {
        assert!(
            !text.contains('\u{1b}'),
            "no colour codes in the file: {text}"
        );
    }
}

/// Issue 9 item 2: a shell that talks to the approval service runs as its credential's user.
/// Another user's credential with `--user alice` (any case) does not start a session as alice,
/// neither does a credential the service does not know; without `--user` the session takes the
/// credential's user, so alice's token is not carol's.
#[test]
fn a_shell_runs_as_its_credentials_user() {
    let fx = Fixture::new();
    let state = fx.path("state");
    std::fs::create_dir(&state).unwrap();
    let alice = add_user(&state, "alice", "");
    let carol = add_user(&state, "carol", "");
    let (mut service, server) = start_service(&fx, &state);
    let shell = |credential: &str, user: &str| {
        let mut args = fx.shell_args();
        if let Some(i) = args.iter().position(|a| a == "alice") {
            args[i] = user.to_string();
        }
        Command::new(JITSH)
            .args(args)
            .args(["--server", &server, "--", "/bin/true"])
            .env("JITSH_CREDENTIAL", credential)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for user in ["alice", "ALICE", "Alice"] {
        let out = shell(&carol, user);
        assert_eq!(out.status.code(), Some(3), "{user}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("credential belongs to"), "{err}");
    }
    let out = shell("jitsh_unknown-credential", "alice");
    assert_eq!(out.status.code(), Some(3));
    // The owner's own credential starts the session.
    let out = shell(&alice, "alice");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = service.kill();
    let _ = service.wait();
}

/// `jitsh audit search` over `files`: exit code and stdout.
fn audit_search(args: &[&str], files: &[&Path]) -> (Option<i32>, String) {
    let out = Command::new(JITSH)
        .args(["audit", "search"])
        .args(args)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn audit_search_sees_the_decisions_of_a_real_shell_session_and_a_real_exec() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Get-Mailbox -Identity bob");
    s.prompt_after(m, 20);
    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    s.wait_after(m, ":request New-MoveRequest", 10);
    s.quit();

    // `jitsh exec` with the approved request's token, recording into the same folder (the
    // token is checked offline: no service confirms its use here).
    allow_offline(&fx);
    let exp = chrono::Utc::now() + chrono::Duration::hours(1);
    let (token, public) = issue_token(&fx, "tok-exec", exp);
    let out = Command::new(JITSH)
        .arg("exec")
        .arg("--policies")
        .arg(fx.path("policies"))
        .arg("--user")
        .arg("alice")
        .arg("--record")
        .arg(fx.path("rec"))
        .arg("--token")
        .arg(&token)
        .arg("--trust-key")
        .arg(&public)
        .arg("--")
        .arg("New-MoveRequest -Identity bob -TargetDatabase DB02")
        .env("JITSH_RECORD_DIR", fx.path("rec"))
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .current_dir(fx.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A refused exec is recorded too.
    let denied = exec_recorded(&fx, "Invoke-Expression 'Remove-Mailbox bob'");
    assert_eq!(denied.status.code(), Some(2));

    // The service's side of the request: its creation and the token it issued.
    let svc = fx.path("svc");
    let log = jitsh::audit::AuditLog::open(&svc, None).unwrap();
    for (action, details) in [
        (
            "request.create",
            serde_json::json!({"task": "New-MoveRequest"}),
        ),
        ("token.issue", serde_json::json!({"token_id": "tok-exec"})),
    ] {
        jitsh::audit::AuditSink::append(
            &log,
            jitsh::audit::AuditEvent {
                time: "2026-01-01T00:00:00Z".into(),
                actor: "bob".into(),
                action: action.into(),
                subject: "r-1".into(),
                outcome: "ok".into(),
                details: details.as_object().cloned().unwrap(),
            },
        )
        .unwrap();
    }
    log.close().unwrap();
    let rec = fx.path("rec/audit");

    // --task finds the shell's decision, with the command's verdict in DETAILS.
    let (code, out) = audit_search(&["--task", "Get-Mailbox"], &[&rec]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Get-Mailbox -Identity bob [Get-Mailbox:read-only:allow]"),
        "{out}"
    );
    let (code, out) = audit_search(&["--decision", "approval"], &[&rec]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("[New-MoveRequest:mailbox-moves:approval]"),
        "{out}"
    );
    let (code, out) = audit_search(&["--decision", "deny"], &[&rec]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Invoke-Expression"), "{out}");

    // --request joins exec's decision (through its token) to the request's records.
    let (code, out) = audit_search(&["--request", "r-1"], &[&svc, &rec]);
    assert_eq!(code, Some(0), "{out}");
    let decision = out
        .lines()
        .position(|l| l.contains("[New-MoveRequest:mailbox-moves:allow]"))
        .unwrap_or_else(|| panic!("{out}"));
    let joined: Vec<&str> = out.lines().skip(decision + 1).take(2).collect();
    assert!(
        joined[0].trim_start().starts_with("> ") && joined[0].contains("request.create"),
        "{out}"
    );
    assert!(joined[1].contains("token.issue"), "{out}");

    // The exec decision says where it came from.
    let (_, json) = audit_search(
        &["--json", "--task", "New-MoveRequest", "--decision", "allow"],
        &[&rec],
    );
    let hit: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(hit["record"]["details"]["via"], "exec", "{json}");
    assert_eq!(
        hit["record"]["details"]["invocations"][0]["token"], "tok-exec",
        "{json}"
    );
}

fn exec_recorded(fx: &Fixture, line: &str) -> std::process::Output {
    Command::new(JITSH)
        .arg("exec")
        .arg("--policies")
        .arg(fx.path("policies"))
        .arg("--user")
        .arg("alice")
        .arg("--record")
        .arg(fx.path("rec"))
        .arg("--")
        .arg(line)
        .env("JITSH_RECORD_DIR", fx.path("rec"))
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .current_dir(fx.dir.path())
        .output()
        .unwrap()
}

#[test]
fn an_edited_or_removed_recording_is_named_by_verify_and_replay() {
    let fx = Fixture::new();
    let mut s = Screen::start(&fx, &[]);
    let m = s.line("Get-Mailbox -Identity bob");
    s.prompt_after(m, 20);
    s.quit();
    let cast = fx.casts().pop().unwrap();
    let audit = fx.path("rec/audit");
    let verify = |extra: &[&str]| {
        let out = Command::new(JITSH)
            .args(["audit", "verify", "--json", "--trust-key"])
            .arg(audit.join("signing.pub"))
            .args(extra)
            .arg(&audit)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let replay = || {
        Command::new(JITSH)
            .args(["replay", "--markers"])
            .arg(&cast)
            .output()
            .unwrap()
    };
    let (code, v) = verify(&[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(replay().status.code(), Some(0));

    let original = std::fs::read(&cast).unwrap();
    // Edits of several kinds: output rewritten in place, a line dropped, bytes appended.
    let text = String::from_utf8(original.clone()).unwrap();
    let rewritten = text.replacen("Bob", "Eve", 1);
    assert_ne!(rewritten, text);
    let mut dropped: Vec<&str> = text.lines().collect();
    dropped.remove(2);
    let dropped = dropped.join("\n") + "\n";
    let appended = text.clone() + "[9.0, \"o\", \"forged\"]\n";
    for edited in [rewritten, dropped, appended] {
        std::fs::write(&cast, &edited).unwrap();
        let (code, v) = verify(&[]);
        assert_eq!(
            (code, &v["kind"]),
            (Some(1), &serde_json::json!("recording")),
            "{v}"
        );
        let out = replay();
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("does not match the hash recorded"), "{err}");
        assert!(out.stdout.is_empty(), "an edited recording is not played");
    }
    // Moved away: missing, unless verify is told where recordings are now.
    let moved = fx.path("moved");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::write(moved.join(cast.file_name().unwrap()), &original).unwrap();
    std::fs::remove_file(&cast).unwrap();
    let (code, v) = verify(&[]);
    assert_eq!(
        (code, &v["kind"]),
        (Some(1), &serde_json::json!("recording")),
        "{v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("missing"), "{v}");
    let (code, v) = verify(&["--recordings", moved.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v}");
}

// Purview's own cmdlets (`*-ElevatedAccess*`), carried out by the gate against a real service.

/// `jitsh exec` as the holder of `credential`, trusting the service in `state`.
fn exec_as(
    fx: &Fixture,
    state: &Path,
    server: &str,
    credential: &str,
    line: &str,
) -> std::process::Output {
    Command::new(JITSH)
        .arg("exec")
        .arg("--policies")
        .arg(fx.path("policies"))
        .args(["--server", server, "--trust-key"])
        .arg(state.join("signing.pub"))
        .args(
            test_runspace()
                .map(|r| vec!["--runspace".to_string(), r])
                .unwrap_or_default(),
        )
        .arg("--")
        .arg(line)
        .env("JITSH_CREDENTIAL", credential)
        // Each decision is spooled here for the service, never in the tester's home.
        .env("JITSH_RECORD_DIR", fx.path("rec"))
        .env("JITSH_EXSIM_STATE", fx.path("state.json"))
        .current_dir(fx.dir.path())
        .output()
        .unwrap()
}

fn out_text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err_text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The RequestId in the first row of a default request table.
fn request_id_from_table(out: &str) -> String {
    out.lines()
        .skip_while(|l| !l.trim_start().starts_with("---------"))
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no request row in:\n{out}"))
        .to_string()
}

/// A service process, stopped when the test ends (also when it fails).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fixture with a running service and users alice (requester), bob (approver) and root
/// (global admin); `None` when the service is not in this build.
fn purview_setup(fx: &Fixture) -> Option<(Running, String, PathBuf, [String; 3])> {
    let state = fx.path("state");
    std::fs::create_dir(&state).unwrap();
    let alice = add_user(&state, "alice", "");
    let bob = add_user(&state, "bob", "mbmanagers");
    let root = add_user(&state, "root", "global-admin");
    let (service, server) = start_service(fx, &state);
    Some((Running(service), server, state, [alice, bob, root]))
}

#[test]
fn purview_request_approve_status_and_the_task_runs_through_exec() {
    let fx = Fixture::new();
    let Some((_service, server, state, [alice, bob, _])) = purview_setup(&fx) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the approval service is not in this build"
        );
        println!("SKIPPED: the approval service is not in this build");
        return;
    };
    let run = |who: &str, line: &str| exec_as(&fx, &state, &server, who, line);

    let made = run(
        &alice,
        "New-ElevatedAccessRequest -Task 'Exchange\\New-MoveRequest' -Reason 'move bob to DB02'",
    );
    assert_eq!(made.status.code(), Some(0), "{}", err_text(&made));
    let table = out_text(&made);
    assert!(
        table.contains("RequestId") && table.contains("RequestStatus"),
        "{table}"
    );
    assert!(table.contains("Pending"), "{table}");
    let id = request_id_from_table(&table);
    // The default duration is 4 hours.
    let shown = run(
        &alice,
        &format!("Get-ElevatedAccessRequest -Identity {id} | Format-List"),
    );
    assert!(
        out_text(&shown).contains("DurationHours  : 4"),
        "{}",
        out_text(&shown)
    );

    // Not yet approved: the task needs approval and nothing runs.
    let early = run(&alice, "New-MoveRequest -Identity bob -TargetDatabase DB02");
    assert_eq!(early.status.code(), Some(1), "{}", err_text(&early));
    assert_eq!(move_requests(&fx), 0);

    // The requester cannot approve her own request: an error record, nothing approved.
    let own = run(
        &alice,
        &format!("Approve-ElevatedAccessRequest -RequestId {id} -Comment ok"),
    );
    assert_eq!(own.status.code(), Some(1));
    let e = err_text(&own);
    assert!(e.starts_with("Approve-ElevatedAccessRequest : "), "{e}");
    assert!(
        e.contains("+ CategoryInfo") && e.contains("+ FullyQualifiedErrorId"),
        "{e}"
    );

    let approved = run(
        &bob,
        &format!("Approve-ElevatedAccessRequest -RequestId {id} -Comment 'ok for tonight'"),
    );
    assert_eq!(approved.status.code(), Some(0), "{}", err_text(&approved));

    let status = run(
        &alice,
        &format!("Get-ElevatedAccessRequest -Identity {id} | Select-Object RequestStatus"),
    );
    assert_eq!(
        out_text(&status),
        "\nRequestStatus\n-------------\nApproved\n\n"
    );
    let filtered = run(&alice, "Get-ElevatedAccessRequest | Where-Object {$_.RequestStatus -eq 'Approved'} | select RequestId");
    assert!(out_text(&filtered).contains(&id), "{}", out_text(&filtered));
    let none = run(
        &alice,
        "Get-ElevatedAccessRequest | ? RequestStatus -EQ Denied",
    );
    assert_eq!(out_text(&none), "");

    let ran = run(&alice, "New-MoveRequest -Identity bob -TargetDatabase DB02");
    assert_eq!(ran.status.code(), Some(0), "{}", err_text(&ran));
    assert_eq!(
        move_requests(&fx),
        1,
        "the approved request covered the task"
    );
}

#[test]
fn purview_lines_mixed_with_runspace_commands_are_refused_whole() {
    let fx = Fixture::new();
    let Some((_service, server, state, [alice, ..])) = purview_setup(&fx) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the approval service is not in this build"
        );
        println!("SKIPPED: the approval service is not in this build");
        return;
    };
    for line in [
        "Get-ElevatedAccessRequest; Remove-Mailbox bob",
        "Remove-Mailbox bob; Get-ElevatedAccessRequest",
        "Get-ElevatedAccessRequest | ForEach-Object { Remove-Mailbox bob }",
        "Get-ElevatedAccessRequest | Where-Object { Remove-Mailbox bob }",
        "Get-Mailbox | Get-ElevatedAccessRequest",
        "New-ElevatedAccessRequest -Task New-MoveRequest -Reason \"$(Remove-Mailbox bob)\"",
    ] {
        let o = exec_as(&fx, &state, &server, &alice, line);
        assert_eq!(o.status.code(), Some(1), "{line}: {}", err_text(&o));
        assert!(
            err_text(&o).contains("FullyQualifiedErrorId"),
            "{line}: {}",
            err_text(&o)
        );
        // The runspace never started (it writes its state file when it does).
        assert!(fx.state().is_null(), "{line}: nothing ran in the runspace");
    }
}

#[test]
fn purview_approval_policy_puts_a_task_behind_approval_without_a_restart() {
    let fx = Fixture::new();
    let Some((_service, server, state, [alice, bob, root])) = purview_setup(&fx) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the approval service is not in this build"
        );
        println!("SKIPPED: the approval service is not in this build");
        return;
    };
    let run = |who: &str, line: &str| exec_as(&fx, &state, &server, who, line);
    let line = "Set-Mailbox -Identity bob -Office B2";
    assert_eq!(run(&alice, line).status.code(), Some(2), "no rule: denied");

    let policy = "New-ElevatedAccessApprovalPolicy -Task 'Exchange\\Set-Mailbox' -ApprovalType Manual -ApproverGroup 'mbmanagers'";
    for who in [&alice, &bob] {
        let o = run(who, policy);
        assert_eq!(
            o.status.code(),
            Some(1),
            "only global admins: {}",
            out_text(&o)
        );
        assert!(
            err_text(&o).contains("not_global_admin"),
            "{}",
            err_text(&o)
        );
    }
    let made = run(&root, policy);
    assert_eq!(made.status.code(), Some(0), "{}", err_text(&made));
    let file = std::fs::read_to_string(fx.path("policies/purview-set-mailbox.toml")).unwrap();
    assert!(
        file.starts_with("# Generated by New-ElevatedAccessApprovalPolicy"),
        "{file}"
    );

    // In force for the very next line, with no restart of anything.
    let o = run(&alice, line);
    assert_eq!(
        o.status.code(),
        Some(1),
        "now behind approval: {}",
        err_text(&o)
    );
    let listed = run(&alice, "Get-ElevatedAccessApprovalPolicy | Where-Object Task -Like 'Set-*' | Format-List Identity,ApprovalType,ApproverGroup");
    assert_eq!(
        out_text(&listed),
        "\nIdentity      : purview-set-mailbox\nApprovalType  : Manual\nApproverGroup : mbmanagers\n\n"
    );
    // The service uses the new rule too: a request for the task names it.
    let asked = run(&alice, "New-ElevatedAccessRequest -Task Set-Mailbox -Reason 'office move' | Select-Object ApprovalPolicy");
    assert!(
        out_text(&asked).contains("purview-set-mailbox"),
        "{}{}",
        out_text(&asked),
        err_text(&asked)
    );

    assert_eq!(
        run(
            &alice,
            "Remove-ElevatedAccessApprovalPolicy -Identity purview-set-mailbox"
        )
        .status
        .code(),
        Some(1)
    );
    let removed = run(
        &root,
        "Remove-ElevatedAccessApprovalPolicy -Identity purview-set-mailbox",
    );
    assert_eq!(removed.status.code(), Some(0), "{}", err_text(&removed));
    assert!(!fx.path("policies/purview-set-mailbox.toml").exists());
    assert_eq!(run(&alice, line).status.code(), Some(2), "denied again");
    // A rule that shares its file with others is not removed by id.
    let shared = run(&root, "Remove-ElevatedAccessApprovalPolicy mailbox-moves");
    assert_eq!(shared.status.code(), Some(1));
    assert!(
        err_text(&shared).contains("policy_shared_file"),
        "{}",
        err_text(&shared)
    );
    // A policy for a task an allow rule covers changes nothing, and says so.
    let shadowed = run(
        &root,
        "New-ElevatedAccessApprovalPolicy -Task Remove-Mailbox -ApprovalType Auto",
    );
    assert_eq!(shadowed.status.code(), Some(0), "{}", err_text(&shadowed));
    assert!(
        out_text(&shadowed)
            .contains("WARNING: `Remove-Mailbox` is also allowed by rule mailbox-cleanup"),
        "{}",
        out_text(&shadowed)
    );
    // The control cmdlets are global admins' only.
    let control = run(&alice, "Disable-ElevatedAccessControl");
    assert_eq!(control.status.code(), Some(1));
    assert!(
        err_text(&control).contains("not_global_admin"),
        "{}",
        err_text(&control)
    );
}

#[test]
fn purview_cmdlets_in_the_shell_request_and_pick_up_the_approval() {
    let fx = Fixture::new();
    let Some((_service, server, state, [alice, bob, root])) = purview_setup(&fx) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the approval service is not in this build"
        );
        println!("SKIPPED: the approval service is not in this build");
        return;
    };
    let public = state.join("signing.pub").display().to_string();
    let mut cmd = CommandBuilder::new(JITSH);
    cmd.args(fx.shell_args());
    cmd.args(["--server", &server, "--trust-key", &public]);
    cmd.env("JITSH_CREDENTIAL", &alice);
    let mut s = Screen::spawn(&fx, cmd, 160);
    s.wait_for("PS ", 20);

    let m = s.line("New-ElevatedAccessRequest -Task 'Exchange\\New-MoveRequest' -Reason 'move bob' -DurationHours 2");
    let out = s.wait_after(m, "Pending", 15);
    let id = request_id_from_table(&out);
    let approved = exec_as(
        &fx,
        &state,
        &server,
        &bob,
        &format!("Approve-ElevatedAccessRequest -RequestId {id} -Comment ok"),
    );
    assert_eq!(approved.status.code(), Some(0), "{}", err_text(&approved));
    s.wait_after(m, "its token is now in use", 20);

    let m = s.line(&format!(
        "Get-ElevatedAccessRequest -Identity {id} | select RequestStatus,DurationHours"
    ));
    let out = s.wait_after(m, "Approved", 15);
    assert!(out.contains("RequestStatus DurationHours"), "{out}");

    let m = s.line("Get-ElevatedAccessRequest; Remove-Mailbox bob");
    s.wait_after(m, "JitshGateOnlyCommand", 15);

    let m = s.line("New-MoveRequest -Identity bob -TargetDatabase DB02");
    s.prompt_after(m, 15);
    assert_eq!(
        move_requests(&fx),
        1,
        "the approved request's token covered the line"
    );
    assert!(
        mailbox_names(&fx.state()).contains(&"Bob Smith".to_string()),
        "the mixed line ran nothing"
    );

    // A policy added while the session runs is in force for its next line.
    let m = s.line("Set-Mailbox -Identity bob -Office B2");
    s.wait_after(m, "denied", 15);
    let made = exec_as(
        &fx,
        &state,
        &server,
        &root,
        "New-ElevatedAccessApprovalPolicy -Task 'Exchange\\Set-Mailbox' -ApprovalType Manual -ApproverGroup mbmanagers",
    );
    assert_eq!(made.status.code(), Some(0), "{}", err_text(&made));
    let m = s.line("Set-Mailbox -Identity bob -Office B2");
    s.wait_after(m, ":request Set-Mailbox", 15);
    // A policy folder that stops loading refuses every line.
    std::fs::write(fx.path("policies/zz-broken.toml"), "[[rule]\n").unwrap();
    let m = s.line("Get-Mailbox -Identity bob");
    s.wait_after(m, "no longer load", 15);
    std::fs::remove_file(fx.path("policies/zz-broken.toml")).unwrap();
    let m = s.line("Get-Mailbox -Identity bob");
    s.wait_after(m, "Bob Smith", 15);
    s.quit();
}

// Purview's elevated access control: the default approver group, system accounts and their
// reviews, and approval control disabled, all against a real service.

/// A rule without approvers: the default approver group (`-AdminGroup`) approves it.
const NO_APPROVERS: &str = r#"
[[rule]]
id = "mailbox-settings"
effect = "approval"
tasks = ["Set-Mailbox"]
max_duration = "4h"
"#;

/// The users of the control tests, by name: alice (requester), bob (mbmanagers), root
/// (global-admin), carol and erin (secops, the admin group), dave (no group), svc (a system
/// account, also in secops) and svc-alt (another account of svc's owner, in secops).
struct ControlEnv {
    _service: Running,
    server: String,
    state: PathBuf,
    creds: std::collections::HashMap<&'static str, String>,
}

impl ControlEnv {
    fn start(fx: &Fixture, serve_extra: &[&str]) -> ControlEnv {
        std::fs::write(fx.path("policies/default.toml"), NO_APPROVERS).unwrap();
        let state = fx.path("state");
        std::fs::create_dir(&state).unwrap();
        let mut creds = std::collections::HashMap::new();
        for (name, args) in [
            ("alice", vec![]),
            ("bob", vec!["--groups", "mbmanagers"]),
            ("root", vec!["--roles", "global-admin"]),
            (
                "carol",
                vec!["--groups", "secops", "--email", "carol@example.test"],
            ),
            ("erin", vec!["--groups", "secops"]),
            ("dave", vec![]),
            (
                "svc",
                vec![
                    "--groups",
                    "secops",
                    "--email",
                    "svc@example.test",
                    "--person",
                    "ops-robot",
                ],
            ),
            (
                "svc-alt",
                vec!["--groups", "secops", "--person", "ops-robot"],
            ),
        ] {
            let out = Command::new(JITSH)
                .args(["user", "add", name, "--state"])
                .arg(&state)
                .args(&args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", err_text(&out));
            let cred = out_text(&out).lines().last().unwrap().trim().to_string();
            creds.insert(name, cred);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(JITSH)
            .args(["serve", "--state"])
            .arg(&state)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--policies"])
            .arg(fx.path("policies"))
            .args(serve_extra)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let service = Running(child);
        // The port accepts before the store is open: wait for an answer.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let health = format!("http://127.0.0.1:{port}/healthz");
        while !rt
            .block_on(reqwest::get(&health))
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "the service did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ControlEnv {
            _service: service,
            server: format!("http://127.0.0.1:{port}"),
            state,
            creds,
        }
    }

    fn cred(&self, who: &str) -> &str {
        &self.creds[who]
    }

    /// `jitsh exec LINE` as `who`.
    fn exec(&self, fx: &Fixture, who: &str, line: &str) -> std::process::Output {
        exec_as(fx, &self.state, &self.server, self.cred(who), line)
    }

    /// A `jitsh` client command as `who`.
    fn client(&self, who: &str, args: &[&str]) -> std::process::Output {
        client(&self.server, self.cred(who), args)
    }

    /// Every complete record of the service's audit log, in order.
    fn audit(&self) -> Vec<serde_json::Value> {
        server::audit_records(&self.state.join("audit"))
    }

    /// Wait until the audit log holds a record that `pred` accepts.
    fn wait_audit(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(r) = self.audit().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(Instant::now() < deadline, "no audit record: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn purview_default_approver_group_approves_rules_without_approvers() {
    let fx = Fixture::new();
    let env = ControlEnv::start(&fx, &[]);
    let line = "Set-Mailbox -Identity bob -ProhibitSendQuota 5GB";
    let ask = "New-ElevatedAccessRequest -Task 'Exchange\\Set-Mailbox' -Reason 'quota'";

    // No default group yet: the policy says nobody can approve, and nobody can.
    let shown = env.exec(
        &fx,
        "alice",
        "Get-ElevatedAccessApprovalPolicy mailbox-settings | Format-List ApproverGroup",
    );
    assert!(
        out_text(&shown).contains("no default approver group is set"),
        "{}{}",
        out_text(&shown),
        err_text(&shown)
    );
    let early = env.exec(&fx, "alice", ask);
    assert_eq!(early.status.code(), Some(0), "{}", err_text(&early));
    let early_id = request_id_from_table(&out_text(&early));
    // A global admin sees every request, and is told why nobody can decide this one.
    let refused = env.exec(
        &fx,
        "root",
        &format!("Approve-ElevatedAccessRequest -RequestId {early_id}"),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        err_text(&refused).contains("no default approver group is set"),
        "{}",
        err_text(&refused)
    );
    let hidden = env.exec(
        &fx,
        "carol",
        &format!("Approve-ElevatedAccessRequest -RequestId {early_id}"),
    );
    assert_eq!(hidden.status.code(), Some(1));

    let enable = "Enable-ElevatedAccessControl -AdminGroup 'secops'";
    // Only global admins set it: an attack from every other kind of user is refused.
    for who in ["alice", "bob", "carol", "svc"] {
        let o = env.exec(&fx, who, enable);
        assert_eq!(o.status.code(), Some(1), "{who}");
        assert!(
            err_text(&o).contains("not_global_admin"),
            "{who}: {}",
            err_text(&o)
        );
    }
    let enabled = env.exec(&fx, "root", enable);
    assert_eq!(enabled.status.code(), Some(0), "{}", err_text(&enabled));
    assert!(
        out_text(&enabled).contains("secops"),
        "{}",
        out_text(&enabled)
    );
    let shown = env.exec(
        &fx,
        "alice",
        "Get-ElevatedAccessApprovalPolicy mailbox-settings | Format-List ApproverGroup",
    );
    assert_eq!(
        out_text(&shown),
        "\nApproverGroup : secops (default)\n\n",
        "{}",
        err_text(&shown)
    );

    let made = env.exec(&fx, "alice", ask);
    assert_eq!(made.status.code(), Some(0), "{}", err_text(&made));
    let id = request_id_from_table(&out_text(&made));
    let listed = env.exec(
        &fx,
        "alice",
        &format!(
            "Get-ElevatedAccessRequest -Identity {id} | Format-List ApproverGroup,RequestStatus"
        ),
    );
    assert_eq!(
        out_text(&listed),
        "\nApproverGroup : secops\nRequestStatus : Pending\n\n"
    );
    // Purview's defaults: 4 hours of access, and 24 hours for someone to decide.
    let times = env.exec(
        &fx,
        "alice",
        &format!("Get-ElevatedAccessRequest -Identity {id} | Format-List DurationHours,CreatedDate,ExpirationTime"),
    );
    let field = |name: &str| {
        out_text(&times)
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim_start().trim_start_matches(':').trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {}", out_text(&times)))
    };
    assert_eq!(field("DurationHours"), "4");
    let rfc = |t: &str| jitsh::rfc3339::parse(t).unwrap();
    assert_eq!(
        rfc(&field("ExpirationTime")) - rfc(&field("CreatedDate")),
        chrono::TimeDelta::hours(24)
    );
    // Not a member of the default group: refused, and nothing changes.
    for who in ["bob", "dave", "alice", "root"] {
        let o = env.exec(
            &fx,
            who,
            &format!("Approve-ElevatedAccessRequest -RequestId {id} -Comment ok"),
        );
        assert_eq!(o.status.code(), Some(1), "{who} must not approve");
    }
    assert_eq!(env.exec(&fx, "alice", line).status.code(), Some(1));
    let approved = env.exec(
        &fx,
        "carol",
        &format!("Approve-ElevatedAccessRequest -RequestId {id} -Comment 'ok'"),
    );
    assert_eq!(approved.status.code(), Some(0), "{}", err_text(&approved));
    let ran = env.exec(&fx, "alice", line);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}{}",
        out_text(&ran),
        err_text(&ran)
    );
    // The request filed before the group was set is decided by it too.
    let late = env.exec(
        &fx,
        "erin",
        &format!("Approve-ElevatedAccessRequest -RequestId {early_id}"),
    );
    assert_eq!(late.status.code(), Some(0), "{}", err_text(&late));
    env.wait_audit("control.enable by root", |r| {
        r["action"] == "control.enable" && r["actor"] == "root"
    });
    env.wait_audit("a refused enable", |r| {
        r["action"] == "control.refused" && r["actor"] == "alice"
    });
}

#[test]
fn purview_system_account_sessions_open_reviews_the_admin_group_acknowledges() {
    let fx = Fixture::new();
    let env = ControlEnv::start(&fx, &[]);
    let enabled = env.exec(
        &fx,
        "root",
        "Enable-ElevatedAccessControl -AdminGroup 'secops' -SystemAccounts @('svc@example.test')",
    );
    assert_eq!(enabled.status.code(), Some(0), "{}", err_text(&enabled));
    assert!(
        out_text(&enabled).contains("svc"),
        "the UPN names the user: {}",
        out_text(&enabled)
    );
    // An account the directory does not know is refused, not kept.
    let unknown = env.exec(
        &fx,
        "root",
        "Enable-ElevatedAccessControl -SystemAccounts 'ghost@example.test'",
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        err_text(&unknown).contains("unknown_account"),
        "{}",
        err_text(&unknown)
    );

    // The system account's line runs with nobody approving: the gate files the request, the
    // service grants it at once, and the token it issues covers the line.
    let line = "New-MoveRequest -Identity bob -TargetDatabase DB02";
    let ran = env.exec(&fx, "svc", line);
    assert_eq!(ran.status.code(), Some(0), "{}", err_text(&ran));
    assert!(
        err_text(&ran).contains("filed as a system account"),
        "{}",
        err_text(&ran)
    );
    assert_eq!(move_requests(&fx), 1);
    // Purview's own way works too: the request is approved as it is made.
    let asked = env.exec(
        &fx,
        "svc",
        "New-ElevatedAccessRequest -Task New-MoveRequest -Reason 'nightly rebalancing'",
    );
    assert_eq!(asked.status.code(), Some(0), "{}", err_text(&asked));
    assert!(
        out_text(&asked).contains("Approved"),
        "{}",
        out_text(&asked)
    );
    // Anyone else still waits for approval.
    let other = env.exec(&fx, "alice", line);
    assert_eq!(other.status.code(), Some(1), "{}", err_text(&other));
    assert_eq!(move_requests(&fx), 1);
    // Deny rules still deny a system account.
    let denied = env.exec(&fx, "svc", "New-Mailbox -Name intruder");
    assert_eq!(denied.status.code(), Some(2), "{}", err_text(&denied));
    env.wait_audit("the grant says why no one approved it", |r| {
        r["action"] == "request.approve" && r["details"]["why"] == "system account"
    });

    // Each of its sessions opened a review; the audit search lists them while open.
    let deadline = Instant::now() + Duration::from_secs(20);
    let reviews = loop {
        let o = env.client("carol", &["review", "list", "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", err_text(&o));
        let v: serde_json::Value = serde_json::from_str(&out_text(&o)).unwrap();
        let items = v["reviews"].as_array().cloned().unwrap_or_default();
        if items.len() >= 3 {
            break items;
        }
        assert!(Instant::now() < deadline, "reviews: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(reviews
        .iter()
        .all(|r| r["account"] == "svc" && r["status"] == "open"));
    let ran_line = reviews
        .iter()
        .find(|r| r["commands"] == 1 && r["session"].is_string())
        .unwrap();
    let shown = env.client("carol", &["review", "show", &ran_line["id"].to_string()]);
    assert_eq!(shown.status.code(), Some(0), "{}", err_text(&shown));
    assert!(out_text(&shown).contains(": "), "{}", out_text(&shown));
    let log = env.state.join("audit");
    let (code, found) = audit_search(&["--unreviewed"], &[&log]);
    assert_eq!(code, Some(0), "{found}");
    assert!(
        found.contains("review.open") && found.contains("gate.decision"),
        "{found}"
    );
    assert!(found.contains("New-MoveRequest"), "{found}");

    // Attacks on the acknowledgement: the account itself (an admin group member), another
    // account of its owner, someone outside the group, a global admin outside the group.
    let first = reviews[0]["id"].to_string();
    for (who, code) in [
        ("svc", "self_review"),
        ("svc-alt", "self_review"),
        ("dave", "not_admin_group"),
        ("root", "not_admin_group"),
    ] {
        let o = env.client(who, &["review", "ack", &first, "--comment", "fine"]);
        assert_eq!(o.status.code(), Some(1), "{who} must not acknowledge");
        assert!(err_text(&o).contains(code), "{who}: {}", err_text(&o));
    }
    env.wait_audit("a refused acknowledgement", |r| {
        r["action"] == "review.refused" && r["actor"] == "svc"
    });
    assert_eq!(
        audit_search(&["--unreviewed"], &[&log]).0,
        Some(0),
        "still open after the refused attempts"
    );

    for r in &reviews {
        let o = env.client(
            "carol",
            &["review", "ack", &r["id"].to_string(), "--comment", "seen"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", err_text(&o));
    }
    let again = env.client("erin", &["review", "ack", &first]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        err_text(&again).contains("already_acknowledged"),
        "{}",
        err_text(&again)
    );
    let open = env.client("carol", &["review", "list"]);
    assert!(
        out_text(&open).contains("no open reviews"),
        "{}",
        out_text(&open)
    );
    env.wait_audit("the acknowledgement", |r| {
        r["action"] == "review.ack" && r["actor"] == "carol"
    });
    // Acknowledged reviews are no longer listed by the search.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, found) = audit_search(&["--unreviewed"], &[&log]);
        if code == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {found}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A user who is not a system account opens no review.
    assert_eq!(
        env.exec(&fx, "alice", "Get-Mailbox -Identity bob")
            .status
            .code(),
        Some(0)
    );
    std::thread::sleep(Duration::from_millis(500));
    let all = env.client("carol", &["review", "list", "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out_text(&all)).unwrap();
    assert!(
        v["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["account"] == "svc"),
        "{v}"
    );
}

#[test]
fn purview_disable_elevated_access_control_grants_at_once_is_shown_audited_and_announced() {
    let fx = Fixture::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let smtp = rt.block_on(support::SmtpReceiver::start());
    let hook = rt.block_on(support::WebhookReceiver::start(0));
    let relay = smtp.addr.to_string();
    let env = ControlEnv::start(&fx, &["--smtp", &relay, "--webhook", &hook.url]);
    let enabled = env.exec(
        &fx,
        "root",
        "Enable-ElevatedAccessControl -AdminGroup secops",
    );
    assert_eq!(enabled.status.code(), Some(0), "{}", err_text(&enabled));

    // Refused for everyone but global admins, and the refusal is audited.
    for who in ["alice", "bob", "carol", "svc"] {
        let o = env.exec(&fx, who, "Disable-ElevatedAccessControl -Force");
        assert_eq!(o.status.code(), Some(1), "{who}");
        assert!(
            err_text(&o).contains("not_global_admin"),
            "{}",
            err_text(&o)
        );
    }
    env.wait_audit("a refused disable", |r| {
        r["action"] == "control.refused" && r["actor"] == "bob"
    });
    let line = "New-MoveRequest -Identity bob -TargetDatabase DB02";
    let ask = "New-ElevatedAccessRequest -Task New-MoveRequest -Reason 'maintenance window'";

    let disabled = env.exec(&fx, "root", "Disable-ElevatedAccessControl");
    assert_eq!(disabled.status.code(), Some(0), "{}", err_text(&disabled));
    assert!(
        out_text(&disabled).contains("False"),
        "{}",
        out_text(&disabled)
    );
    // Announced to the admin group (mail) and on the webhook.
    rt.block_on(smtp.wait_for("carol@example.test", "approval control is DISABLED"));
    rt.block_on(hook.wait_for("disabled elevated access control"));
    env.wait_audit("control.disable", |r| {
        r["action"] == "control.disable" && r["actor"] == "root"
    });

    // The gate still needs a token: the line alone does not run, and the gate says why.
    let o = env.exec(&fx, "alice", line);
    assert_eq!(o.status.code(), Some(1), "{}", err_text(&o));
    assert!(
        err_text(&o).contains("APPROVAL CONTROL IS DISABLED"),
        "{}",
        err_text(&o)
    );
    assert_eq!(move_requests(&fx), 0);

    // In the shell: the banner and :status say it; a request is granted at once and its token
    // lets the line through.
    let public = env.state.join("signing.pub").display().to_string();
    let mut cmd = CommandBuilder::new(JITSH);
    cmd.args(fx.shell_args());
    cmd.args(["--server", &env.server, "--trust-key", &public]);
    cmd.env("JITSH_CREDENTIAL", env.cred("alice"));
    let mut s = Screen::spawn(&fx, cmd, 160);
    s.wait_for("APPROVAL CONTROL IS DISABLED (by root", 20);
    s.wait_for("PS ", 20);
    let m = s.line(":status");
    s.wait_after(m, "APPROVAL CONTROL IS DISABLED", 10);
    let m = s.line(ask);
    s.wait_after(m, "Approved", 15);
    s.wait_after(m, "its token is now in use", 20);
    let m = s.line(line);
    s.prompt_after(m, 15);
    assert_eq!(
        move_requests(&fx),
        1,
        "the granted request's token covered the line"
    );
    env.wait_audit("the grant says approval control was disabled", |r| {
        r["action"] == "request.approve" && r["details"]["why"] == "approval control disabled"
    });

    // Enable restores approval: the session is told, new requests wait, the line is refused.
    let enabled = env.exec(&fx, "root", "Enable-ElevatedAccessControl");
    assert_eq!(enabled.status.code(), Some(0), "{}", err_text(&enabled));
    rt.block_on(hook.wait_for("enabled elevated access control"));
    std::thread::sleep(Duration::from_secs(6));
    let m = s.line("Get-Mailbox -Identity bob");
    s.wait_after(m, "approval control is enabled again", 15);
    // The grant nobody approved ends with the disabled control: its token no longer counts.
    let m = s.line(line);
    s.wait_after(m, "no longer holds", 15);
    assert_eq!(move_requests(&fx), 1, "the line did not run again");
    s.quit();
    let pending = env.exec(&fx, "alice", ask);
    assert_eq!(pending.status.code(), Some(0), "{}", err_text(&pending));
    assert!(
        out_text(&pending).contains("Pending"),
        "{}",
        out_text(&pending)
    );
    let o = env.exec(&fx, "bob", line);
    assert_eq!(o.status.code(), Some(1), "{}", err_text(&o));
    assert!(!err_text(&o).contains("DISABLED"), "{}", err_text(&o));
    // A rule without approvers: its requests are announced to the default approver group.
    let quota = env.exec(
        &fx,
        "alice",
        "New-ElevatedAccessRequest -Task Set-Mailbox -Reason 'quota for bob'",
    );
    assert!(out_text(&quota).contains("Pending"), "{}", err_text(&quota));
    let mail = rt.block_on(smtp.wait_for("carol@example.test", "approval needed"));
    assert!(
        mail.data.contains("rule `mailbox-settings`"),
        "{}",
        mail.data
    );
}

#[test]
fn purview_forged_control_state_grants_nothing() {
    let fx = Fixture::new();
    let env = ControlEnv::start(&fx, &[]);
    let line = "New-MoveRequest -Identity bob -TargetDatabase DB02";
    let ask = "New-ElevatedAccessRequest -Task New-MoveRequest -Reason 'forged'";
    // 1. The control row written into the state database behind the service's back
    // (approval disabled, alice a system account) is not used: nothing is granted.
    let db = rusqlite::Connection::open(env.state.join("jitsh.db")).unwrap();
    let forged =
        r#"{"admin_group":"secops","system_accounts":["alice"],"disabled":{"by":"root","at":1}}"#;
    db.execute(
        "INSERT INTO control (id, body, mac) VALUES (1, ?1, NULL) ON CONFLICT (id) DO UPDATE SET body = ?1",
        [forged],
    )
    .unwrap();
    let o = env.exec(&fx, "alice", ask);
    assert_eq!(o.status.code(), Some(1), "{}", out_text(&o));
    assert!(err_text(&o).contains("tampered"), "{}", err_text(&o));
    assert_eq!(env.exec(&fx, "alice", line).status.code(), Some(1));
    assert_eq!(move_requests(&fx), 0);
    // A global admin sets the control again, and the forged row is gone (audited).
    let reset = env.exec(
        &fx,
        "root",
        "Enable-ElevatedAccessControl -AdminGroup secops",
    );
    assert_eq!(reset.status.code(), Some(0), "{}", err_text(&reset));
    env.wait_audit("the tampered control", |r| {
        r["action"] == "store.tampered" && r["subject"] == "approval-control"
    });
    let o = env.exec(&fx, "alice", ask);
    assert!(out_text(&o).contains("Pending"), "{}", out_text(&o));

    // 2. A gate cannot claim the state: the request body has no such field, and a gate that
    // says it is disabled still needs a token (the line above was refused).
    let post = |who: &str, path: &str, body: &str| -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{}{path}", env.server))
                .bearer_auth(env.cred(who))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    for body in [
        r#"{"task":"New-MoveRequest","reason":"x","duration":"1h","mode":"control-disabled"}"#,
        r#"{"task":"New-MoveRequest","reason":"x","duration":"1h","system_account":true}"#,
    ] {
        let v = post("alice", "/v1/requests", body);
        assert_eq!(v["error"], "invalid_field", "{body}: {v}");
    }
    // 3. Control changes sent straight to the API by non-admins, some with fields naming an
    // admin or the state they want.
    for who in ["alice", "carol", "svc"] {
        for (path, body) in [
            ("/v1/control/disable", r#"{"reason":"x"}"#),
            ("/v1/control/disable", r#"{"by":"root"}"#),
            ("/v1/control/enable", r#"{"system_accounts":["alice"]}"#),
            (
                "/v1/control/enable",
                r#"{"admin_group":"everyone","disabled":null}"#,
            ),
        ] {
            let v = post(who, path, body);
            assert!(
                v["error"] == "not_global_admin" || v["error"] == "invalid_field",
                "{who} {path} {body}: {v}"
            );
        }
    }
    let control = env.client("root", &["review", "list"]);
    assert_eq!(control.status.code(), Some(0), "{}", err_text(&control));
    let v = env.exec(
        &fx,
        "alice",
        "Get-ElevatedAccessRequest | Select-Object RequestStatus",
    );
    assert!(!out_text(&v).contains("Approved"), "{}", out_text(&v));
}
