//! A full disk under the state folder: the service (a real `jitsh serve` on a 3 MiB tmpfs)
//! refuses every action with a clear error, its audit log and store agree record by record,
//! `/healthz` reports the degraded state, and once space is freed it resumes without a
//! restart and records the outage; the log verifies.
//!
//! Where a filesystem cannot be mounted (not root, or no `CAP_SYS_ADMIN`), the same writes are
//! made to fail with `ENOSPC` at the same call sites (`JITSH_FAULT_FULL_DISK`) and the test says
//! so; under `CI=true` the mount must work. `JITSH_TEST_NO_MOUNT=1` takes the fallback anyway.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[path = "inputs/mod.rs"]
mod inputs;
#[path = "support/server.rs"]
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");
const FAULT_ENV: &str = jitsh::audit::outage::FAULT_ENV;

const POLICY: &str = r#"
[[rule]]
id = "mailbox-moves"
effect = "approval"
tasks = ["New-MoveRequest"]
approval = "manual"
approvers = ["mbmanagers"]
requesters = ["exchange-admins"]
max_duration = "4h"
"#;

/// How the disk is made full.
enum Full {
    /// A tmpfs of this size mounted on the folder; filled for real.
    Tmpfs(PathBuf),
    /// Writes fail with ENOSPC while this file exists.
    Injected(PathBuf),
}

impl Full {
    /// Mount a `size` tmpfs on `dir`, or fall back to an injected error (a failure under CI).
    fn on(dir: &Path, size: &str, flag: PathBuf, test: &str) -> Full {
        std::fs::create_dir_all(dir).unwrap();
        // Set to test the fallback on a host where mounting works.
        let out = if std::env::var_os("JITSH_TEST_NO_MOUNT").is_some() {
            Err(std::io::Error::other("JITSH_TEST_NO_MOUNT is set"))
        } else {
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(dir)
                .output()
        };
        match out {
            Ok(o) if o.status.success() => Full::Tmpfs(dir.to_owned()),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    !inputs::in_ci(),
                    "{test}: a {size} tmpfs could not be mounted on `{}`: {why} (CI=true runs as \
                     root and must test a real full filesystem)",
                    dir.display()
                );
                eprintln!(
                    "NOTE: {test}: mounting a tmpfs is not permitted here ({why}); faking a full \
                     disk with an injected ENOSPC at the same write call sites ({FAULT_ENV})"
                );
                Full::Injected(flag)
            }
        }
    }

    fn real(&self) -> bool {
        matches!(self, Full::Tmpfs(_))
    }

    /// Leave only `room` bytes free (tmpfs), returning the filler; nothing when injected.
    fn leave_room(&self, room: u64) -> Option<PathBuf> {
        let Full::Tmpfs(dir) = self else { return None };
        let filler = dir.join("filler.bin");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0x5a; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling `{}`: {e}", filler.display()),
            }
        }
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(room)).unwrap();
        Some(filler)
    }

    /// Make writes fail now: fill what is left (tmpfs), or raise the flag.
    fn fill(&self) {
        match self {
            Full::Tmpfs(dir) => {
                let mut f = std::fs::File::create(dir.join("filler-rest.bin")).unwrap();
                let chunk = vec![0x5a; 4096];
                while f.write(&chunk).is_ok_and(|n| n > 0) {}
            }
            Full::Injected(flag) => {
                std::fs::write(flag, b"full").unwrap();
            }
        }
    }

    /// Give the space back.
    fn free(&self) {
        match self {
            Full::Tmpfs(dir) => {
                for name in ["filler.bin", "filler-rest.bin"] {
                    let _ = std::fs::remove_file(dir.join(name));
                }
            }
            Full::Injected(flag) => {
                let _ = std::fs::remove_file(flag);
            }
        }
    }
}

impl Drop for Full {
    fn drop(&mut self) {
        if let Full::Tmpfs(dir) = self {
            // Lazily: a process of a failed test may still hold a file there.
            let _ = Command::new("umount").arg("-l").arg(&*dir).status();
        }
    }
}

/// A running `jitsh serve`, its stderr kept; killed when dropped.
struct Service {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Service {
    fn start(state: &Path, policies: &Path, fault: Option<&Path>) -> Service {
        let mut cmd = Command::new(JITSH);
        cmd.arg("serve")
            .arg("--state")
            .arg(state)
            .arg("--policies")
            .arg(policies)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--max-requests-per-hour", "0", "--max-pending", "0"])
            .env_remove(FAULT_ENV)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(flag) = fault {
            cmd.env(FAULT_ENV, flag);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("service did not start");
        Service {
            child,
            url,
            log,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        cred: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        server::api_call(&self.http, &self.url, method, path, cred, body).await
    }

    /// SIGTERM, and wait for the clean stop (the shutdown checkpoint).
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "service stopped with {status}");
    }

    /// Wait until `n` warnings containing `needle` were logged (the reader thread may lag);
    /// how many there are, and the whole log.
    fn wait_log(&self, needle: &str, n: usize) -> (usize, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log.lock().unwrap().join("\n");
            let found = log
                .lines()
                .filter(|l| l.contains(" WARN ") && l.contains(needle))
                .count();
            if found >= n {
                return (found, log);
            }
            assert!(
                Instant::now() < deadline,
                "{found} warnings with {needle:?}, not {n}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn add_user(state: &Path, name: &str, groups: &str) -> String {
    let out = Command::new(JITSH)
        .args(["user", "add", name, "--groups", groups, "--state"])
        .arg(state)
        .env_remove(FAULT_ENV)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

/// Every record of the service's log, in order.
fn audit_records(state: &Path) -> Vec<Value> {
    jitsh::audit::log::log_files(&state.join("audit"))
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn stored_requests(state: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open_with_flags(
        state.join("jitsh.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn.prepare("SELECT id FROM requests").unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    ids
}

/// Log and store agree record by record: every `request.create` record not followed by an
/// `audit.abandoned` naming it has a stored request, every stored request has its record, and
/// every abandonment names a create record whose request is not stored.
fn assert_log_matches_store(state: &Path, acknowledged: &BTreeSet<String>) -> Vec<Value> {
    let records = audit_records(state);
    let stored = stored_requests(state);
    let creates: BTreeMap<u64, String> = records
        .iter()
        .filter(|r| r["action"] == "request.create")
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut withdrawn = BTreeSet::new();
    for r in records.iter().filter(|r| r["action"] == "audit.abandoned") {
        let seq = r["details"]["seq"].as_u64().unwrap();
        let subject = creates
            .get(&seq)
            .unwrap_or_else(|| panic!("abandonment {r} names no request.create record"));
        assert_eq!(r["subject"].as_str(), Some(subject.as_str()), "{r}");
        assert!(!stored.contains(subject), "abandoned {subject} is stored");
        assert!(r["seq"].as_u64().unwrap() > seq, "{r}");
        withdrawn.insert(seq);
    }
    let effective: BTreeSet<String> = creates
        .iter()
        .filter(|(seq, _)| !withdrawn.contains(seq))
        .map(|(_, id)| id.clone())
        .collect();
    let claimed = creates.len() - withdrawn.len();
    assert_eq!(claimed, effective.len(), "a request was recorded twice");
    assert_eq!(effective, stored, "log and store disagree");
    assert_eq!(
        &stored, acknowledged,
        "acknowledged requests and the store disagree"
    );
    eprintln!(
        "{} request.create records, {} abandoned, {} stored, {} acknowledged",
        creates.len(),
        withdrawn.len(),
        stored.len(),
        acknowledged.len()
    );
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_refuses_on_a_full_disk_keeps_log_and_store_in_step_and_recovers_without_restart() {
    let test = "service_on_a_full_disk";
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("exchange.toml"), POLICY).unwrap();
    let full = Full::on(&state, "3m", dir.path().join("full.flag"), test);
    let alice = add_user(&state, "alice", "exchange-admins");
    let fault = match &full {
        Full::Injected(flag) => Some(flag.as_path()),
        Full::Tmpfs(_) => None,
    };
    let service = Service::start(&state, &policies, fault);

    // Room for some requests, then none.
    let filler = full.leave_room(1024 * 1024);
    let mut acknowledged = BTreeSet::new();
    let mut refusals: Vec<(u16, Value)> = Vec::new();
    let mut audit_refusals = 0;
    let mut topped = false;
    for i in 0..4000 {
        if !full.real() && i == 40 {
            full.fill();
        }
        if full.real() && !topped && filler.is_some() && refusals.len() == 5 {
            // Whatever fails first, fill the last bytes too so both the store and the log do.
            full.fill();
            topped = true;
        }
        let body = json!({ "task": "New-MoveRequest", "duration": "30m",
            "reason": format!("move mailbox {i} to the new database before the weekend") });
        let (status, body) = service
            .call("POST", "/v1/requests", &alice, Some(body))
            .await;
        if status == 201 {
            assert!(
                refusals.is_empty() || full.real(),
                "accepted after a refusal: {body}"
            );
            acknowledged.insert(body["id"].as_str().unwrap().to_owned());
            continue;
        }
        if body["error"] == "audit_unavailable" {
            audit_refusals += 1;
        }
        refusals.push((status, body));
        if audit_refusals >= 3 {
            break;
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "nothing was filed before the disk filled"
    );
    assert!(
        audit_refusals >= 3,
        "the audit log never became unavailable: {refusals:?}"
    );
    for (status, body) in &refusals {
        let code = body["error"].as_str().unwrap_or_default();
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(*status, 503, "{body}");
        assert!(
            (code == "audit_unavailable" && message.contains("audit log"))
                || (code == "store_unavailable" && message.contains("out of disk space")),
            "not a clear full-disk refusal: {body}"
        );
    }
    eprintln!(
        "{test}: {} acknowledged, {} refused ({audit_refusals} audit_unavailable), {}",
        acknowledged.len(),
        refusals.len(),
        if full.real() {
            "3 MiB tmpfs"
        } else {
            "injected ENOSPC"
        }
    );

    // Degraded while full; the operator is told what to do, once.
    let (status, health) = service.call("GET", "/healthz", "", None).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["error"], "audit_unavailable", "{health}");
    assert!(
        !health.to_string().contains(&state.display().to_string()),
        "{health}"
    );
    let (_, operator) = service.wait_log("free space on its filesystem", 1);
    assert!(
        operator.contains(&state.join("audit").display().to_string()),
        "{operator}"
    );
    // Still refused while full, and the log still agrees with the store.
    let (status, body) = service
        .call(
            "POST",
            "/v1/requests",
            &alice,
            Some(json!({ "task": "New-MoveRequest",
            "duration": "30m", "reason": "still full" })),
        )
        .await;
    assert_eq!(status, 503, "{body}");

    // Space comes back: the service resumes by itself.
    full.free();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, health) = service.call("GET", "/healthz", "", None).await;
        if status == 200 {
            assert_eq!(health["status"], "ok");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still degraded after space was freed: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = service
        .call(
            "POST",
            "/v1/requests",
            &alice,
            Some(json!({ "task": "New-MoveRequest",
            "duration": "30m", "reason": "after the disk was freed" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    acknowledged.insert(body["id"].as_str().unwrap().to_owned());

    let records = assert_log_matches_store(&state, &acknowledged);
    // Each outage (a real disk may free a page and fill again) is told to the operator once,
    // and recorded once when it ends, sealed by a checkpoint.
    let resumed: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r["action"] == "audit.resumed")
        .map(|(i, _)| i)
        .collect();
    assert!(!resumed.is_empty(), "no audit.resumed record");
    let mut refused = 0;
    for &at in &resumed {
        let details = &records[at]["details"];
        assert!(details["from"].as_str().unwrap() <= details["to"].as_str().unwrap());
        refused += details["refused"].as_u64().unwrap();
        assert_eq!(records[at + 1]["action"], "audit.checkpoint");
        assert_eq!(records[at + 1]["details"]["reason"], "resume");
    }
    assert!(refused >= 3, "{refused} appends refused");
    for needle in ["free space on its filesystem", "can be written again"] {
        let (found, log) = service.wait_log(needle, resumed.len());
        assert_eq!(found, resumed.len(), "one {needle:?} per outage:\n{log}");
    }

    // A clean stop; the whole log verifies against its key and anchor.
    service.stop();
    let out = Command::new(JITSH)
        .args(["audit", "verify"])
        .arg(state.join("audit"))
        .arg("--trust-key")
        .arg(state.join("signing.pub"))
        .arg("--store")
        .arg(&state)
        .env_remove(FAULT_ENV)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Store and log still agree after the shutdown checkpoint.
    assert_log_matches_store(&state, &acknowledged);
}

// ---------------------------------------------------------------------------------------------
// The shell: its local audit log and its recording on a full disk.

const SHELL_POLICY: &str = r#"
[defaults]
unmatched = "deny"
dynamic = "deny"

[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*"]

[[rule]]
id = "mailbox-moves"
effect = "approval"
tasks = ["New-MoveRequest"]
approval = "manual"
approvers = ["mbmanagers"]
max_duration = "4h"
offline = "1h"
"#;

/// `jitsh shell` in a real PTY, its screen collected by a reader thread.
struct Screen {
    writer: Box<dyn std::io::Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Screen {
    fn spawn(cmd: portable_pty::CommandBuilder) -> Screen {
        use std::io::Read as _;
        let pair = portable_pty::native_pty_system()
            .openpty(portable_pty::PtySize {
                rows: 40,
                cols: 160,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
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
            _master: pair.master,
        }
    }

    fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.output.lock().unwrap()))
    }

    fn wait_after(&self, mark: usize, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.text().get(mark..).unwrap_or_default().to_owned();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; screen since mark:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Type `line`, press Enter, and return what the session showed up to the next prompt.
    fn run(&mut self, line: &str) -> String {
        let before = self.text().len();
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        self.wait_after(before, line);
        let mark = self.text().len();
        self.writer.write_all(b"\r").unwrap();
        self.writer.flush().unwrap();
        self.wait_after(mark, "PS C:\\>")
    }

    fn quit(mut self) {
        self.writer.write_all(b":quit\r").unwrap();
        self.writer.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "jitsh did not exit:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
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

/// An offline token for `New-MoveRequest` and the key that verifies it.
fn offline_token(dir: &Path) -> (PathBuf, PathBuf) {
    use jitsh::token::{issue, Claims, SigningKey};
    let key = SigningKey::from_seed([7u8; 32]).unwrap();
    let public = dir.join("signing.pub");
    std::fs::write(&public, key.public_key().to_file_text()).unwrap();
    let now = chrono::Utc::now();
    let claims = Claims {
        iss: "jitsh-test".into(),
        sub: "alice".into(),
        jti: "tok-disk".into(),
        iat: now,
        nbf: now - chrono::TimeDelta::seconds(60),
        exp: now + chrono::TimeDelta::hours(1),
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
    let token = dir.join("tok.token");
    std::fs::write(&token, issue(&claims, &key).unwrap()).unwrap();
    (token, public)
}

fn move_requests(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("state.json")).unwrap_or_default();
    let state: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    state["move_requests"].as_array().map_or(0, Vec::len)
}

#[test]
fn shell_refuses_privileged_lines_on_a_full_disk_and_resumes_by_itself() {
    let test = "shell_on_a_full_disk";
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("policies")).unwrap();
    std::fs::write(root.join("policies/test.toml"), SHELL_POLICY).unwrap();
    let rec = root.join("rec");
    let full = Full::on(&rec, "3m", root.join("full.flag"), test);
    let (token, public) = offline_token(root);

    let mut cmd = portable_pty::CommandBuilder::new(JITSH);
    cmd.arg("shell");
    cmd.args(["--user", "alice", "--no-service", "--policies"]);
    cmd.arg(root.join("policies"));
    cmd.arg("--record");
    cmd.arg(&rec);
    cmd.arg("--token");
    cmd.arg(&token);
    cmd.arg("--trust-key");
    cmd.arg(&public);
    // The simulated runspace through jitsh itself: `jitsh-exsim` belongs to another package.
    cmd.args(["--", env!("CARGO_BIN_EXE_jitsh"), "exsim"]);
    cmd.cwd(root);
    cmd.env("TERM", "xterm");
    cmd.env("JITSH_EXSIM_STATE", root.join("state.json"));
    cmd.env_remove(FAULT_ENV);
    if let Full::Injected(flag) = &full {
        cmd.env(FAULT_ENV, flag);
    }
    let mut s = Screen::spawn(cmd);
    s.wait_after(0, "PS C:\\>");
    // The runspace takes one move request per mailbox: a fresh one each time.
    let mut mailboxes = [
        ("bob", "DB02"),
        ("carol", "DB02"),
        ("rob", "DB02"),
        ("alice", "DB02"),
        ("david", "DB01"),
        ("erin", "DB01"),
        ("frank", "DB01"),
    ]
    .into_iter();
    let mut privileged = || {
        let (who, db) = mailboxes.next().expect("out of mailboxes");
        format!("New-MoveRequest -Identity {who} -TargetDatabase {db}")
    };
    let out = s.run(&privileged());
    assert!(!out.contains("refused"), "{out}");
    assert_eq!(move_requests(root), 1, "the covered line ran");

    // The disk fills: privileged lines are refused. On a tmpfs the files' last pages may still
    // take a few records, so the line is tried until it is refused.
    let _filler = full.leave_room(0);
    full.fill();
    let mut ran_while_filling = 0;
    let refusal = loop {
        let out = s.run(&privileged());
        if out.contains("jitsh: refused") {
            break out;
        }
        ran_while_filling += 1;
        assert!(
            full.real() && ran_while_filling < 4,
            "never refused on a full disk: {out}"
        );
    };
    assert!(
        refusal.contains("cannot be written") && refusal.contains("resumes by itself"),
        "{refusal}"
    );
    // Still full: refused until the local audit log has failed too (on a tmpfs its last page
    // takes a few more records), which `:status` reports.
    let spare = "New-MoveRequest -Identity support -TargetDatabase DB01";
    let mut tries = 0;
    loop {
        let out = s.run(spare);
        assert!(out.contains("jitsh: refused"), "still full: {out}");
        if s.run(":status")
            .contains("the audit log could not be written")
        {
            break;
        }
        tries += 1;
        assert!(
            tries < 30,
            "the local audit log never failed:\n{}",
            s.text()
        );
    }
    assert_eq!(
        move_requests(root),
        1 + ran_while_filling,
        "a refused line ran"
    );
    // Read-only lines still run (with a warning).
    let out = s.run("Get-Mailbox");
    assert!(!out.contains("jitsh: refused"), "{out}");

    // Space comes back: the same session runs privileged lines again.
    full.free();
    let out = s.run(&privileged());
    assert!(!out.contains("refused"), "{out}");
    assert_eq!(
        move_requests(root),
        2 + ran_while_filling,
        "runs again once space is back: {}",
        s.text()
    );
    s.quit();

    // The recording marks its gap, then goes on with the next decision.
    let cast = std::fs::read_dir(&rec)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "cast"))
        .unwrap();
    let text = std::fs::read_to_string(&cast).unwrap();
    let markers: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v[1] == "m")
        .map(|v| v[2].as_str().unwrap().to_owned())
        .collect();
    let gap = markers
        .iter()
        .position(|m| m.starts_with("recording gap: "))
        .unwrap_or_else(|| panic!("no gap marker: {markers:?}"));
    assert!(
        markers[gap].contains("not recorded (the disk was full)"),
        "{markers:?}"
    );
    assert!(
        markers[gap + 1..].iter().any(|m| m.contains("allow")),
        "{markers:?}"
    );

    // The local log records the outage and verifies, recording included.
    let local = rec.join("audit");
    let records: Vec<Value> = jitsh::audit::log::log_files(&local)
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect();
    assert!(
        records.iter().any(|r| r["action"] == "audit.resumed"),
        "no audit.resumed record"
    );
    // Every allowed move either ran or is followed by its `gate.abort`.
    let allowed = records
        .iter()
        .filter(|r| {
            r["action"] == "gate.decision"
                && r["outcome"] == "allow"
                && r["details"]["line"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("New-MoveRequest"))
        })
        .count();
    let aborted = records
        .iter()
        .filter(|r| r["action"] == "gate.abort" && r["details"]["decision_seq"].is_u64())
        .count();
    eprintln!("{test}: {allowed} allowed moves recorded, {aborted} recorded as not run");
    assert_eq!(
        allowed - aborted,
        2 + ran_while_filling,
        "the log's allowed-and-not-aborted lines are the lines that ran"
    );
    let out = Command::new(JITSH)
        .args(["audit", "verify"])
        .arg(&local)
        .arg("--trust-key")
        .arg(local.join("signing.pub"))
        .env_remove(FAULT_ENV)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// A gate's spool (events waiting for the service) on a full disk.

#[test]
fn spool_refuses_on_a_full_disk_without_stopping_and_keeps_every_event_once() {
    use jitsh::audit::spool::SpoolingSink;
    use jitsh::audit::{AuditEvent, AuditSink as _};
    let test = "spool_on_a_full_disk";
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let full = Full::on(&spool, "1m", dir.path().join("full.flag"), test);
    if let Full::Injected(flag) = &full {
        // This test writes in this process; the others name the switch for each child.
        std::env::set_var(FAULT_ENV, flag);
    }
    // Nothing listens on port 9: every event stays spooled.
    let sink = SpoolingSink::open(&spool, "http://127.0.0.1:9".into(), "c".into()).unwrap();
    let event = |n: u64| {
        let mut details = serde_json::Map::new();
        details.insert(
            "line".into(),
            format!("Get-Mailbox -Identity user{n:06}").into(),
        );
        AuditEvent {
            time: "2026-01-02T03:04:05Z".into(),
            actor: "alice".into(),
            action: "gate.decision".into(),
            subject: "session-1".into(),
            outcome: "allow".into(),
            details,
        }
    };
    let _filler = full.leave_room(32 * 1024);
    let mut spooled = 0;
    let refusal = loop {
        if !full.real() && spooled == 20 {
            full.fill();
        }
        match sink.append(event(spooled + 1)) {
            Ok(seq) => {
                spooled += 1;
                assert_eq!(seq, spooled);
            }
            Err(e) => break e.to_string(),
        }
        assert!(spooled < 100_000, "the spool never filled");
    };
    assert!(spooled > 0, "nothing was spooled before the disk filled");
    assert!(refusal.contains("free space in"), "{refusal}");
    for n in 0..3 {
        assert!(sink.append(event(1000 + n)).is_err(), "appended while full");
    }
    assert_eq!(sink.pending(), usize::try_from(spooled).unwrap());

    // Space comes back: the same spool takes events again, numbering on without a gap.
    full.free();
    assert_eq!(sink.append(event(spooled + 1)).unwrap(), spooled + 1);
    drop(sink);
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(&spool).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("spool-") && name.ends_with(".jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("`{name}` holds a broken line {line:?}: {e}"));
                seqs.push(v["seq"].as_u64().unwrap());
            }
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=spooled + 1).collect::<Vec<u64>>());
    eprintln!("{test}: {spooled} events spooled before the disk filled, all kept once");
}

// ---------------------------------------------------------------------------------------------
// The audit log alone: nothing appends after the disk filled, yet it comes back by itself.

#[test]
fn an_idle_audit_log_resumes_by_itself_once_space_is_back() {
    use jitsh::audit::{AuditEvent, AuditLog, AuditSigner, AuditSink as _};
    let test = "idle_audit_log_resumes";
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    let full = Full::on(&audit, "1m", dir.path().join("full.flag"), test);
    if !full.real() {
        // The injected switch is read once per process, and the spool test owns it here.
        inputs::skip(test, "no tmpfs could be mounted for the audit log");
        return;
    }
    let signer = AuditSigner {
        kid: "k".into(),
        seed: [9; 32],
    };
    let log = AuditLog::open(&audit, Some(signer)).unwrap();
    let event = |n: u64| AuditEvent {
        time: "2026-01-02T03:04:05Z".into(),
        actor: "alice".into(),
        action: "gate.decision".into(),
        subject: format!("line {n}"),
        outcome: "allow".into(),
        details: serde_json::Map::new(),
    };
    let _filler = full.leave_room(16 * 1024);
    let mut appended = 0;
    let refusal = loop {
        match log.append(event(appended)) {
            Ok(_) => appended += 1,
            Err(e) => break e.to_string(),
        }
        assert!(appended < 100_000, "the log never filled");
    };
    assert!(refusal.contains("free space"), "{refusal}");
    assert!(log.unavailable().is_some(), "not unavailable while full");

    // Nothing is appended from here on: the probe retries each second.
    full.free();
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.unavailable().is_some() {
        assert!(
            Instant::now() < deadline,
            "still unavailable 10 s after space was freed, with no append"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let records: Vec<Value> = jitsh::audit::log::log_files(&audit)
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect();
    let at = records
        .iter()
        .position(|r| r["action"] == "audit.resumed")
        .unwrap_or_else(|| panic!("no audit.resumed record: {records:?}"));
    assert_eq!(records[at]["details"]["refused"], 1, "{}", records[at]);
    assert_eq!(records[at + 1]["action"], "audit.checkpoint");
    assert_eq!(records[at + 1]["details"]["reason"], "resume");
    // Every acknowledged append is in the log, once.
    let events = records
        .iter()
        .filter(|r| r["action"] == "gate.decision")
        .count();
    assert_eq!(events, usize::try_from(appended).unwrap());
    log.close().unwrap();
}
