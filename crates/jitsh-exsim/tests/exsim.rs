//! The simulated runspace as a real process: piped stdin for the cmdlets and the state file,
//! and a real PTY for the prompt markers, Ctrl-C and secret input.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EXSIM: &str = env!("CARGO_BIN_EXE_jitsh-exsim");
const PROMPT_END: &str = "\x1b]133;B\x07";
const COMMAND_RUNS: &str = "\x1b]133;C\x07";

/// Run the runspace over `input` with a fresh state in `dir`; returns (stdout, exit status).
fn run(dir: &Path, input: &str) -> (String, i32) {
    let mut child = Command::new(EXSIM)
        .arg("--state")
        .arg(dir.join("state.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

fn state(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap()
}

fn mailbox_names(dir: &Path) -> Vec<String> {
    state(dir)["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The statuses reported by `ESC ] 133 ; D ; n BEL` markers, in order.
fn statuses(out: &str) -> Vec<u8> {
    out.split("\x1b]133;D;")
        .skip(1)
        .map(|rest| rest.as_bytes()[0] - b'0')
        .collect()
}

#[test]
fn get_mailbox_prints_a_table_between_prompt_markers() {
    let dir = tempfile::tempdir().unwrap();
    let (out, code) = run(dir.path(), "Get-Mailbox\n");
    assert_eq!(code, 0);
    assert!(
        out.starts_with("\x1b]133;A\x07PS C:\\> \x1b]133;B\x07"),
        "{out:?}"
    );
    assert!(out.contains("\nName          Alias         Database ProhibitSendQuota\n----          -----         -------- -----------------\n"), "{out}");
    assert!(
        out.contains("\nBob Smith     bob           DB01     Unlimited\n"),
        "{out}"
    );
    assert!(
        out.ends_with("\x1b]133;D;0\x07\x1b]133;A\x07PS C:\\> \x1b]133;B\x07"),
        "{out:?}"
    );
    assert_eq!(mailbox_names(dir.path()).len(), 9);
}

#[test]
fn set_mailbox_changes_the_state_file_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(
        dir.path(),
        "set-mailbox -Identity:bob -ForwardingSmtpAddress 'x@fabrikam.com' -DeliverTo $true -DisplayName \"Robert Smith\"\n\
         Get-Mailbox bob | Format-List DisplayName,ForwardingSmtpAddress\n\
         Search-AdminAuditLog -Cmdlets Set-Mailbox | Select-Object -ExpandProperty ObjectModified\n",
    );
    assert_eq!(statuses(&out), [0, 0, 0], "{out}");
    let s = state(dir.path());
    let bob = s["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["alias"] == "bob")
        .unwrap();
    assert_eq!(bob["forwarding_smtp_address"], "x@fabrikam.com");
    assert_eq!(bob["deliver_to_mailbox_and_forward"], true);
    assert_eq!(bob["display_name"], "Robert Smith");
    assert!(
        out.contains(
            "DisplayName           : Robert Smith\nForwardingSmtpAddress : smtp:x@fabrikam.com\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\x1b]133;B\x07\x1b]133;C\x07Bob Smith\n"),
        "{out}"
    );
    // Clearing with $null.
    let (_, _) = run(dir.path(), "Set-Mailbox bob -ForwardingSmtpAddress $null\n");
    let s = state(dir.path());
    let bob = s["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["alias"] == "bob")
        .unwrap();
    assert!(bob["forwarding_smtp_address"].is_null());
}

#[test]
fn new_move_request_creates_a_queued_request() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(dir.path(), "New-MoveRequest -Identity alice -TargetDatabase DB02 -BatchName b1\nNew-MoveRequest alice -TargetDatabase DB02\nGet-MoveRequest | ft DisplayName,Status\n");
    assert_eq!(statuses(&out), [0, 1, 0], "{out}");
    assert!(out.contains("already has a move request"), "{out}");
    let s = state(dir.path());
    let requests = s["move_requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["identity"], "Alice Johnson");
    assert_eq!(requests[0]["target_database"], "DB02");
    assert_eq!(requests[0]["status"], "Queued");
    assert!(out.contains("Alice Johnson Queued"), "{out}");
}

#[test]
fn remove_mailbox_asks_and_respects_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(dir.path(), "Remove-Mailbox carol\nN\n");
    assert!(out.contains(
        "Confirm\nAre you sure you want to perform this action?\nRemoving mailbox \"Carol Diaz\".\n[Y] Yes  [A] Yes to All  [N] No  [L] No to All  [?] Help (default is \"Y\"): "
    ), "{out}");
    assert!(mailbox_names(dir.path()).contains(&"Carol Diaz".to_owned()));

    let (_, _) = run(dir.path(), "Remove-Mailbox carol\nY\n");
    assert!(!mailbox_names(dir.path()).contains(&"Carol Diaz".to_owned()));

    let (out, _) = run(
        dir.path(),
        "Remove-Mailbox -Identity david -Confirm:$false\nGet-Mailbox david\n",
    );
    assert!(!out.contains("Are you sure"), "{out}");
    assert!(!mailbox_names(dir.path()).contains(&"David Lee".to_owned()));
    assert_eq!(statuses(&out), [0, 1], "{out}");
    assert!(out.contains("couldn't be found"), "{out}");

    // End of input at the question means no.
    let (_, _) = run(dir.path(), "Remove-Mailbox erin");
    assert!(mailbox_names(dir.path()).contains(&"Erin Walsh".to_owned()));
}

#[test]
fn unknown_cmdlets_and_bad_parameters_report_status_one() {
    let dir = tempfile::tempdir().unwrap();
    let (out, code) = run(dir.path(), "Get-Mailboxx\nGet-Mailbox -Nope x\nGet-Date\n");
    assert_eq!(code, 0);
    assert_eq!(statuses(&out), [1, 1, 0], "{out}");
    assert!(
        out.contains(
            "Get-Mailboxx: The term 'Get-Mailboxx' is not recognized as a name of a cmdlet"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "Get-Mailbox: A parameter cannot be found that matches parameter name 'Nope'."
        ),
        "{out}"
    );
}

#[test]
fn pipelines_filter_select_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(
        dir.path(),
        "Get-Mailbox | Where-Object { $_.Database -eq 'db02' -and $_.Name -like '*e*' } | Select-Object Name,Database\n\
         Get-Mailbox -ResultSize 3 | Measure-Object\n",
    );
    assert!(out.contains("\nName         Database\n----         --------\nDavid Lee    DB02\nErin Walsh   DB02\nFrank Miller DB02\n\n"), "{out}");
    assert!(out.contains("Count    : 3\n"), "{out}");
}

#[test]
fn transport_rules_permissions_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(
        dir.path(),
        "New-TransportRule 'Bcc legal' -SentTo frank@contoso.com -BlindCopyTo legal@contoso.com\n\
         Add-MailboxPermission -Identity frank -User CONTOSO\\erin -AccessRights FullAccess -InheritanceType All\n\
         Remove-MailboxPermission frank -User carol -AccessRights FullAccess -Confirm:$false\n\
         New-MailboxExportRequest -Mailbox frank -FilePath \\\\ex01\\pst\\frank.pst\n\
         Remove-TransportRule 'External disclaimer' -Confirm:$false\n",
    );
    assert_eq!(statuses(&out), [0, 0, 0, 0, 0], "{out}");
    let s = state(dir.path());
    let rules: Vec<&str> = s["transport_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["Bcc legal"]);
    let frank: Vec<&str> = s["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["identity"] == "Frank Miller")
        .map(|p| p["user"].as_str().unwrap())
        .collect();
    assert_eq!(frank, ["CONTOSO\\erin"]);
    assert_eq!(
        s["export_requests"][0]["file_path"],
        "\\\\ex01\\pst\\frank.pst"
    );
    assert_eq!(s["admin_audit_log"].as_array().unwrap().len(), 5);
}

#[test]
fn exit_ends_with_its_status_and_eof_with_zero() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(dir.path(), "exit 7\nGet-Mailbox\n").1, 7);
    assert_eq!(run(dir.path(), "Get-Date").1, 0);
    let (out, code) = run(dir.path(), "exit\n");
    assert_eq!((code, out.contains("D;")), (0, false));
}

// ---- through a real PTY ------------------------------------------------------------------

struct Pty {
    writer: Box<dyn Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Pty {
    fn spawn(state: PathBuf) -> Pty {
        Pty::spawn_with(state, &[])
    }

    fn spawn_with(state: PathBuf, args: &[&str]) -> Pty {
        use portable_pty::{native_pty_system, CommandBuilder, PtySize};
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 30,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(EXSIM);
        cmd.arg("--state");
        cmd.arg(state);
        cmd.args(args);
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let writer = pair.master.take_writer().unwrap();
        Pty {
            writer,
            output,
            child,
            _master: pair.master,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Wait until `needle` has appeared `times` times; returns how long that took.
    fn wait_for(&self, needle: &str, times: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        while self.text().matches(needle).count() < times {
            assert!(
                start.elapsed() < limit,
                "waited {limit:?} for {needle:?} x{times}; got {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }
}

#[test]
fn ctrl_c_interrupts_the_running_command_not_the_runspace() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(dir.path().join("state.json"));
    pty.wait_for(PROMPT_END, 1, Duration::from_secs(20));
    pty.send(b"Start-Sleep -Seconds 30\r");
    pty.wait_for("Start-Sleep -Seconds 30", 1, Duration::from_secs(5));
    // Let the line reach the runspace and the sleep begin.
    std::thread::sleep(Duration::from_millis(300));
    pty.send(&[0x03]);
    let took = pty.wait_for(PROMPT_END, 2, Duration::from_secs(5));
    assert!(
        took < Duration::from_secs(3),
        "prompt came back after {took:?}"
    );
    assert!(pty.text().contains("\x1b]133;D;1\x07"), "{:?}", pty.text());
    // Still alive and working.
    pty.send(b"Get-Mailbox support\r");
    pty.wait_for(PROMPT_END, 3, Duration::from_secs(5));
    assert!(
        pty.text().contains("Support support DB02"),
        "{:?}",
        pty.text()
    );
    pty.send(b"exit\r");
    let status = pty.child.wait().unwrap();
    assert_eq!(status.exit_code(), 0);
}

#[test]
fn secret_input_is_marked_and_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(dir.path().join("state.json"));
    pty.wait_for(PROMPT_END, 1, Duration::from_secs(20));
    pty.send(b"Read-Host -AsSecureString 'Password'\r");
    pty.wait_for("\x1b]133;P\x07Password: ", 1, Duration::from_secs(5));
    pty.send(b"hunter2-secret\r");
    pty.wait_for(PROMPT_END, 2, Duration::from_secs(5));
    pty.send(b"Write-Host visible-again\r");
    pty.wait_for(PROMPT_END, 3, Duration::from_secs(5));
    let text = pty.text();
    assert!(!text.contains("hunter2"), "{text:?}");
    assert!(text.contains("System.Security.SecureString"), "{text:?}");
    // Echo is back on after the secret line.
    assert!(text.contains("Write-Host visible-again"), "{text:?}");
    pty.send(b"exit 3\r");
    assert_eq!(pty.child.wait().unwrap().exit_code(), 3);
}

#[test]
fn ctrl_c_at_a_confirmation_cancels_the_command_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn(dir.path().join("state.json"));
    pty.wait_for(PROMPT_END, 1, Duration::from_secs(20));
    pty.send(b"Remove-Mailbox alice\r");
    pty.wait_for("(default is \"Y\"): ", 1, Duration::from_secs(5));
    pty.send(&[0x03]);
    pty.wait_for(PROMPT_END, 2, Duration::from_secs(3));
    assert!(pty.text().contains("\x1b]133;D;1\x07"), "{:?}", pty.text());
    pty.send(b"exit\r");
    assert_eq!(pty.child.wait().unwrap().exit_code(), 0);
    assert!(mailbox_names(dir.path()).contains(&"Alice Johnson".to_owned()));
}

/// `--console-host` reads like PowerShell's console host: an incomplete line starts block mode
/// (a bare `>> `, no prompt markers, nothing runs), each further line joins the block, an empty
/// line runs it; Ctrl-C drops a block.
#[test]
fn console_host_mode_keeps_reading_code_at_a_bare_continuation_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn_with(dir.path().join("state.json"), &["--console-host"]);
    pty.wait_for(PROMPT_END, 1, Duration::from_secs(20));
    pty.send(b"Get-Mailbox \"bob\"[\r");
    pty.wait_for(">> ", 1, Duration::from_secs(5));
    pty.send(b"0]; Remove-Mailbox alice -Confirm:$false\r");
    pty.wait_for(">> ", 2, Duration::from_secs(5));
    let text = pty.text();
    assert_eq!(text.matches(PROMPT_END).count(), 1, "{text:?}");
    assert!(!text.contains(COMMAND_RUNS), "nothing ran yet: {text:?}");
    assert!(!text.contains("\x1b]133;A;k=c"), "a bare `>> `: {text:?}");
    assert!(mailbox_names(dir.path()).contains(&"Alice Johnson".to_owned()));
    // The empty line runs the block, the typed line with it.
    pty.send(b"\r");
    pty.wait_for(PROMPT_END, 2, Duration::from_secs(5));
    assert!(!mailbox_names(dir.path()).contains(&"Alice Johnson".to_owned()));

    // Ctrl-C drops a block: nothing of it runs.
    pty.send(b"Get-Mailbox bob |\r");
    pty.wait_for(">> ", 3, Duration::from_secs(5));
    pty.send(b"Remove-Mailbox bob -Confirm:$false\r");
    pty.wait_for(">> ", 4, Duration::from_secs(5));
    pty.send(&[0x03]);
    pty.wait_for(PROMPT_END, 3, Duration::from_secs(5));
    pty.send(b"\r");
    pty.wait_for(PROMPT_END, 4, Duration::from_secs(5));
    assert!(mailbox_names(dir.path()).contains(&"Bob Smith".to_owned()));
    pty.send(b"exit\r");
    assert_eq!(pty.child.wait().unwrap().exit_code(), 0);
}

#[test]
fn console_host_mode_can_mark_its_continuation_prompt_and_read_words_differently() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = Pty::spawn_with(
        dir.path().join("state.json"),
        &[
            "--console-host",
            "--mark-continuation",
            "--read-as",
            "HERE=@'",
        ],
    );
    pty.wait_for(PROMPT_END, 1, Duration::from_secs(20));
    pty.send(b"Get-Mailbox HERE\r");
    pty.wait_for("\x1b]133;A;k=c\x07>> ", 1, Duration::from_secs(5));
    pty.send(b"'@\r");
    // The here-string closed: the block is complete only after the empty line.
    pty.wait_for("\x1b]133;A;k=c\x07>> ", 2, Duration::from_secs(5));
    pty.send(b"\r");
    pty.wait_for(COMMAND_RUNS, 1, Duration::from_secs(5));
    pty.wait_for(PROMPT_END, 2, Duration::from_secs(5));
    pty.send(b"exit\r");
    assert_eq!(pty.child.wait().unwrap().exit_code(), 0);
}

#[test]
fn a_corrupt_state_file_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), "{not json").unwrap();
    let out = Command::new(EXSIM)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("jitsh-exsim: state file `")
            && stderr.contains("is not valid runspace state"),
        "{stderr}"
    );
    // The state file is only ever replaced whole: no temp files are left behind.
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        "Set-Mailbox bob -DisplayName B\nSet-Mailbox bob -DisplayName C\n",
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.json"]);
}

#[test]
fn large_output_writes_exactly_the_size_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(dir.path(), "Get-LargeOutput -Megabytes 3\n");
    let body = out
        .split(COMMAND_RUNS)
        .nth(1)
        .unwrap()
        .split("\x1b]133;D;")
        .next()
        .unwrap();
    assert_eq!(body.len(), 3 * 1024 * 1024);
    assert!(body.starts_with("00000001 Received  user01@contoso.com") && body.ends_with('\n'));
    assert_eq!(statuses(&out), [0]);
}
