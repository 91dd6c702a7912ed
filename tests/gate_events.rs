//! A gate's audit events reach the approval service: spooled while it is down, forwarded in
//! order once it is up, logged exactly once in its chained audit log; a real `jitsh serve` on
//! 127.0.0.1 and real spool files.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jitsh::audit::spool::{SpoolError, SpoolingSink};
use jitsh::audit::{AuditEvent, AuditSink};
use serde_json::{json, Value};

#[path = "support/server.rs"]
mod server;

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");

const POLICY: &str = r#"
[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*"]

[[rule]]
id = "moves"
effect = "approval"
tasks = ["New-MoveRequest"]
approval = "auto"
max_duration = "4h"
"#;

/// A state folder, a policy folder, users and a spool folder.
struct Env {
    dir: tempfile::TempDir,
    state: PathBuf,
    policies: PathBuf,
    creds: HashMap<String, String>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(policies.join("p.toml"), POLICY).unwrap();
        let mut env = Env {
            dir,
            state,
            policies,
            creds: HashMap::new(),
        };
        env.add_user("alice");
        env.add_user("bob");
        env
    }

    fn add_user(&mut self, name: &str) {
        let out = Command::new(JITSH)
            .args(["user", "add", name, "--state"])
            .arg(&self.state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let cred = stdout.lines().last().unwrap().to_owned();
        self.creds.insert(name.to_owned(), cred);
    }

    fn cred(&self, name: &str) -> String {
        self.creds[name].clone()
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    fn start(&self, listen: &str) -> Server {
        Server::start(&self.state, &self.policies, listen)
    }

    /// Every complete record of the service's audit log, in order.
    fn audit(&self) -> Vec<Value> {
        server::audit_records(&self.state.join("audit"))
    }

    /// Records of gate events (`session.*`, `gate.*`).
    fn gate_records(&self) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter(|r| {
                let a = r["action"].as_str().unwrap_or_default();
                a.starts_with("session.") || a.starts_with("gate.")
            })
            .collect()
    }

    /// Wait (up to 30 s) until the log holds `n` gate records: accepted events are durable in
    /// the service's inbox at once and reach the log moments later.
    fn wait_gate_records(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.gate_records().len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{:#?}",
                self.gate_records()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Anything else queued (a duplicate would be) reaches the log within a sweep (1 s).
        std::thread::sleep(Duration::from_millis(1500));
    }

    /// `jitsh audit verify STATE/audit --trust-key STATE/signing.pub` (service stopped).
    fn verify(&self) {
        let out = Command::new(JITSH)
            .args(["audit", "verify"])
            .arg(self.state.join("audit"))
            .arg("--trust-key")
            .arg(self.state.join("signing.pub"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A running `jitsh serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(state: &Path, policies: &Path, listen: &str) -> Server {
        let mut child = Command::new(JITSH)
            .arg("serve")
            .arg("--state")
            .arg(state)
            .arg("--policies")
            .arg(policies)
            .args(["--listen", listen])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                } else {
                    eprintln!("[serve] {line}");
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("service did not start");
        Server { child, url }
    }

    /// SIGTERM: a clean stop seals the audit log with a checkpoint.
    fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        assert!(self.child.wait().unwrap().success());
    }

    async fn post(&self, cred: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/audit/events", self.url))
            .bearer_auth(cred)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(actor: &str, action: &str, subject: &str) -> AuditEvent {
    AuditEvent {
        time: "2026-11-27T10:00:00Z".into(),
        actor: actor.into(),
        action: action.into(),
        subject: subject.into(),
        outcome: if action.starts_with("session.") {
            "ok"
        } else {
            "allow"
        }
        .into(),
        details: json!({ "line": format!("Get-Mailbox {subject}") })
            .as_object()
            .cloned()
            .unwrap(),
    }
}

/// A free port on 127.0.0.1 (so the sink knows the URL before the service starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn subjects(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["subject"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn events_spooled_while_the_service_is_down_arrive_once_in_order_across_a_crash() {
    let env = Env::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let alice = env.cred("alice");

    // Service down: appends succeed (durably spooled), nothing is delivered.
    let sink = SpoolingSink::open(&env.spool(), url.clone(), alice.clone()).unwrap();
    assert_eq!(
        sink.append(event("alice", "session.start", "e1")).unwrap(),
        1
    );
    for s in ["e2", "e3"] {
        sink.append(event("alice", "gate.decision", s)).unwrap();
    }
    assert_eq!(sink.pending(), 3);
    let err = sink.flush(Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(err, SpoolError::NotDelivered { pending: 3, .. }),
        "{err}"
    );
    // Killed mid-stream: dropped without a flush, then opened again.
    drop(sink);
    let sink = SpoolingSink::open(&env.spool(), url.clone(), alice.clone()).unwrap();
    assert_eq!(sink.pending(), 3);
    assert_eq!(
        sink.append(event("alice", "gate.decision", "e4")).unwrap(),
        4
    );
    sink.append(event("alice", "session.end", "e5")).unwrap();

    let server = env.start(&format!("127.0.0.1:{port}"));
    sink.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(sink.pending(), 0);
    // More events while the service is up go out too; the spool was compacted.
    sink.append(event("alice", "gate.decision", "e6")).unwrap();
    sink.flush(Duration::from_secs(30)).unwrap();
    drop(sink);
    let segments: Vec<String> = std::fs::read_dir(env.spool())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("spool-") && n.ends_with(".jsonl"))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let segment = env.spool().join(&segments[0]);
    assert_eq!(std::fs::metadata(segment).unwrap().len(), 0);
    // Reopened after everything was delivered: nothing is sent again.
    let sink = SpoolingSink::open(&env.spool(), url, alice).unwrap();
    assert_eq!(sink.pending(), 0);
    sink.flush(Duration::from_secs(5)).unwrap();
    drop(sink);
    env.wait_gate_records(6);
    server.terminate();

    env.verify();
    let records = env.gate_records();
    assert_eq!(
        subjects(&records),
        ["e1", "e2", "e3", "e4", "e5", "e6"],
        "{records:#?}"
    );
    for r in &records {
        assert_eq!(r["actor"], "alice");
        assert_eq!(r["details"]["received_by"], "service");
        assert!(r["details"]["gate_batch"].as_str().unwrap().contains(':'));
        assert_eq!(
            r["details"]["line"],
            format!("Get-Mailbox {}", r["subject"].as_str().unwrap())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_takes_only_own_gate_events_and_each_batch_once() {
    let env = Env::new();
    let server = env.start("127.0.0.1:0");
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let ev = |actor: &str, action: &str, subject: &str| {
        serde_json::to_value(event(actor, action, subject)).unwrap()
    };

    // A gate cannot write in someone else's name: refused whole, nothing logged.
    let (status, body) = server
        .post(
            &alice,
            json!({ "batch": "f1", "events": [ev("alice", "gate.decision", "ok-but-with"), ev("bob", "gate.decision", "forged")] }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_your_event"))
    );
    // Only session and gate events.
    let (status, body) = server
        .post(
            &alice,
            json!({ "batch": "w1", "events": [ev("alice", "request.approve", "wrong")] }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("action_not_allowed"))
    );
    let (status, _) = server
        .post(&alice, json!({ "batch": "e0", "events": [] }))
        .await;
    assert_eq!(status, 422);
    let many: Vec<Value> = (0..501)
        .map(|_| json!({"time": "2026-11-27T10:00:00Z", "actor": "alice", "action": "gate.x", "subject": "", "outcome": ""}))
        .collect();
    let (status, body) = server
        .post(&alice, json!({ "batch": "m1", "events": many }))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_event_count"))
    );
    // The largest batch (500 events, under the 64 KiB body limit) is taken whole.
    let full: Vec<Value> = (0..500)
        .map(|i| json!({"time": "2026-11-27T10:00:00Z", "actor": "alice", "action": "gate.decision", "subject": format!("f{i}"), "outcome": "allow"}))
        .collect();
    let started = std::time::Instant::now();
    let (status, body) = server
        .post(&alice, json!({ "batch": "full", "events": full }))
        .await;
    assert_eq!((status, &body["accepted"]), (200, &json!(500)), "{body}");
    eprintln!("500-event batch accepted in {:?}", started.elapsed());
    let (status, _) = server
        .post(
            "jitsh_wrong",
            json!({ "batch": "x", "events": [ev("alice", "gate.decision", "x")] }),
        )
        .await;
    assert_eq!(status, 401);

    // The same batch twice (a retry after a lost answer) is logged once.
    let batch = json!({ "batch": "b1", "events": [ev("alice", "session.start", "r1"), ev("alice", "gate.decision", "r2")] });
    let (status, body) = server.post(&alice, batch.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "accepted": 2, "duplicate": false }));
    let (status, body) = server.post(&alice, batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "accepted": 2, "duplicate": true }));
    // A reused id with other events is a client bug, not a retry.
    let (status, body) = server
        .post(
            &alice,
            json!({ "batch": "b1", "events": [ev("alice", "gate.decision", "r3")] }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("batch_conflict"))
    );
    // Batch ids are per user: bob's `b1` is his own.
    let (status, body) = server
        .post(
            &bob,
            json!({ "batch": "b1", "events": [ev("bob", "gate.decision", "r4")] }),
        )
        .await;
    assert_eq!((status, &body["duplicate"]), (200, &json!(false)));

    let spec: Value = reqwest::get(format!("{}/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/v1/audit/events"]["post"].is_object());
    env.wait_gate_records(503);
    server.terminate();
    env.verify();
    let records = env.gate_records();
    let (bulk, records): (Vec<Value>, Vec<Value>) = records
        .into_iter()
        .partition(|r| r["subject"].as_str().unwrap_or_default().starts_with('f'));
    assert_eq!(bulk.len(), 500);
    assert_eq!(subjects(&records), ["r1", "r2", "r4"], "{records:#?}");
    assert_eq!(records[2]["actor"], "bob");
    assert!(records
        .iter()
        .all(|r| r["details"]["received_by"] == "service"));
}

#[test]
fn a_batch_refused_for_good_is_kept_aside_and_later_events_still_flow() {
    let env = Env::new();
    let server = env.start("127.0.0.1:0");
    // Bob's credential, alice's event: the service refuses it (403) every time.
    let sink = SpoolingSink::open(&env.spool(), server.url.clone(), env.cred("bob")).unwrap();
    sink.append(event("alice", "gate.decision", "forged"))
        .unwrap();
    sink.flush(Duration::from_secs(30)).unwrap();
    sink.append(event("bob", "gate.decision", "own")).unwrap();
    sink.flush(Duration::from_secs(30)).unwrap();
    drop(sink);
    let rejected: Vec<PathBuf> = std::fs::read_dir(env.spool())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("rejected-"))
        .collect();
    assert_eq!(rejected.len(), 1);
    assert!(std::fs::read_to_string(&rejected[0])
        .unwrap()
        .contains("forged"));
    env.wait_gate_records(1);
    server.terminate();
    env.verify();
    assert_eq!(subjects(&env.gate_records()), ["own"]);
}

/// A TCP proxy in front of the service that, while `lose` is set, lets requests through but
/// drops the service's answers (the connection closes after the service has acted).
struct LossyProxy {
    url: String,
    lose: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl LossyProxy {
    fn start(upstream: &str) -> LossyProxy {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::Ordering;
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let lose = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = std::sync::Arc::clone(&lose);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                });
                let (mut s_in, mut c_out) = (server, client);
                let flag = std::sync::Arc::clone(&flag);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if flag.load(Ordering::SeqCst) {
                            let _ = c_out.shutdown(std::net::Shutdown::Both);
                            let _ = s_in.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        LossyProxy { url, lose }
    }

    fn deliver_answers(&self) {
        self.lose.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_batch_resent_after_a_lost_answer_is_logged_once_even_across_a_restart() {
    let env = Env::new();
    let server = env.start("127.0.0.1:0");
    let proxy = LossyProxy::start(&server.url);
    let alice = env.cred("alice");
    let sink = SpoolingSink::open(&env.spool(), proxy.url.clone(), alice.clone()).unwrap();
    for s in ["e1", "e2", "e3"] {
        sink.append(event("alice", "gate.decision", s)).unwrap();
    }
    // The service takes the first batch (and its resends) but no answer comes back.
    assert!(sink.flush(Duration::from_millis(1500)).is_err());
    assert_eq!(sink.pending(), 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while env.gate_records().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the service never took a batch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(sink);
    // After a restart a new event is spooled before the resend: the batch in flight must not
    // grow, or its id would change and the service would log its events twice.
    let sink = SpoolingSink::open(&env.spool(), proxy.url.clone(), alice).unwrap();
    sink.append(event("alice", "gate.decision", "e4")).unwrap();
    proxy.deliver_answers();
    sink.flush(Duration::from_secs(30)).unwrap();
    drop(sink);
    env.wait_gate_records(4);
    server.terminate();
    env.verify();
    let records = env.gate_records();
    assert_eq!(subjects(&records), ["e1", "e2", "e3", "e4"], "{records:#?}");
}

impl Server {
    async fn call(&self, cred: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => client.get(url),
            _ => client.post(url).json(&body),
        };
        let resp = req.bearer_auth(cred).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_gate_events_never_reach_the_log_or_another_users_request() {
    let env = Env::new();
    let server = env.start("127.0.0.1:0");
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    // Bob's request, approved at once by its rule, and alice's own.
    let mut grants = HashMap::new();
    let mut requests = HashMap::new();
    for (who, cred) in [("bob", &bob), ("alice", &alice)] {
        let (status, body) = server
            .call(
                cred,
                "POST",
                "/v1/requests",
                json!({"task": "New-MoveRequest", "reason": "ticket 1", "duration": "1h"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let (_, shown) = server
            .call(cred, "GET", &format!("/v1/requests/{id}"), Value::Null)
            .await;
        let jti = shown["grant"]["jti"]
            .as_str()
            .unwrap_or_else(|| panic!("{shown}"));
        grants.insert(who, jti.to_owned());
        requests.insert(who, id);
    }
    let with = |action: &str, outcome: &str, details: Value| {
        let mut e = serde_json::to_value(event("alice", action, "s-alice")).unwrap();
        e["outcome"] = json!(outcome);
        e["details"] = details;
        e
    };
    let refused = [
        // The issue's forgery: an approval note joined to bob's request.
        (
            with(
                "gate.decision",
                "allow",
                json!({"line": "approved by CAB-1234", "request": requests["bob"]}),
            ),
            403,
            "not_your_request",
        ),
        // The same through bob's token, at the top or in an invocation.
        (
            with("gate.decision", "allow", json!({"token_id": grants["bob"]})),
            403,
            "not_your_request",
        ),
        (
            with(
                "gate.decision",
                "allow",
                json!({"invocations": [{"name": "New-MoveRequest", "token": grants["bob"]}]}),
            ),
            403,
            "not_your_request",
        ),
        (
            with("gate.request", "ok", json!({"request": "r-does-not-exist"})),
            403,
            "not_your_request",
        ),
        // Service actions are never a gate's to write.
        (
            with("request.approve", "approved", json!({})),
            422,
            "action_not_allowed",
        ),
        (
            with("request.local", "ok", json!({})),
            422,
            "action_not_allowed",
        ),
        (
            with("token.issue", "ok", json!({})),
            422,
            "action_not_allowed",
        ),
        (
            with("grant.revoke", "ok", json!({})),
            422,
            "action_not_allowed",
        ),
        (
            with("audit.checkpoint", "ok", json!({})),
            422,
            "action_not_allowed",
        ),
        // Each action has its outcomes.
        (
            with("gate.decision", "approved", json!({})),
            422,
            "invalid_outcome",
        ),
        (
            with("session.start", "allow", json!({})),
            422,
            "invalid_outcome",
        ),
        // A Purview line the gate carried out is `ok` or `error`, never a decision.
        (
            with("purview.command", "allow", json!({})),
            422,
            "invalid_outcome",
        ),
        (
            with("purview.command", "approved", json!({})),
            422,
            "invalid_outcome",
        ),
        (
            with("gate.decision", "allow", json!({"request": 7})),
            422,
            "invalid_details",
        ),
    ];
    for (n, (e, status, code)) in refused.into_iter().enumerate() {
        let (got, body) = server
            .post(
                &alice,
                json!({"batch": format!("forged-{n}"), "events": [e]}),
            )
            .await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{n}: {body}"
        );
    }

    // Her own request and token may be named; the time is the service's.
    let own = with(
        "gate.decision",
        "allow",
        json!({"request": requests["alice"], "invocations": [{"name": "New-MoveRequest", "token": grants["alice"]}]}),
    );
    let mut own_time = own.clone();
    own_time["time"] = json!("1999-01-01T00:00:00Z");
    let (status, body) = server
        .post(&alice, json!({"batch": "own", "events": [own_time]}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Her session is hers: bob cannot add records to it, even in his own name.
    let mut intruder = serde_json::to_value(event("bob", "gate.decision", "s-alice")).unwrap();
    intruder["details"] = json!({"line": "approved by CAB-1234"});
    let (status, body) = server
        .post(&bob, json!({"batch": "intrude", "events": [intruder]}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_your_session")),
        "{body}"
    );
    env.wait_gate_records(1);
    server.terminate();
    env.verify();
    let records = env.gate_records();
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!(r["details"]["sent_time"], "1999-01-01T00:00:00Z");
    assert!(r["time"].as_str().unwrap() > "2026", "{r}");
    assert!(env
        .audit()
        .iter()
        .all(|r| !r.to_string().contains("CAB-1234")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_caller_flooding_the_log_is_slowed_and_others_are_not() {
    let env = Env::new();
    let server = env.start("127.0.0.1:0");
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let batch = |who: &str, n: usize| -> Value {
        let events: Vec<Value> = (0..500)
            .map(|i| json!({"time": "2026-11-27T10:00:00Z", "actor": who, "action": "gate.decision", "subject": format!("{who}-s{n}-{i}"), "outcome": "deny"}))
            .collect();
        json!({"batch": format!("{who}-{n}"), "events": events})
    };
    let mut limited = None;
    for n in 0..20 {
        let (status, body) = server.post(&alice, batch("alice", n)).await;
        if status == 429 {
            assert_eq!(body["error"], "rate_limited", "{body}");
            limited = Some(n);
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let n = limited.expect("never rate limited");
    assert!((10..=11).contains(&n), "limited at batch {n}");
    let (status, body) = server.post(&bob, batch("bob", 0)).await;
    assert_eq!(status, 200, "{body}");
    drop(server);
}
