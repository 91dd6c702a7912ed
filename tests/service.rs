//! The approval service as a real process on 127.0.0.1, driven over HTTP and through the `jitsh`
//! client commands, with real SMTP and webhook receivers.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "support/server.rs"]
mod server;
mod support;

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use support::{SmtpReceiver, WebhookReceiver};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");

const POLICY: &str = r#"
[roles."Mailbox Import Export"]
tasks = ["New-MailboxExportRequest", "New-MailboxImportRequest"]

[[rule]]
id = "mailbox-moves"
effect = "approval"
tasks = ["Exchange\\New-MoveRequest", "Set-MoveRequest", "role:Mailbox Import Export"]
approval = "manual"
approvers = ["mbmanagers"]
requesters = ["exchange-admins"]
max_duration = "4h"

[[rule]]
id = "mailbox-removal"
effect = "approval"
tasks = ["Remove-Mailbox"]
approval = "manual"
approvers = ["mbmanagers"]
min_approvals = 2
max_duration = "1h"

[[rule]]
id = "stats-auto"
effect = "approval"
tasks = ["Get-MailboxStatistics"]
approval = "auto"
max_duration = "30m"

[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*"]
"#;

/// A state folder, a policy folder and the users in the directory.
struct Env {
    _dir: tempfile::TempDir,
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
        std::fs::write(policies.join("exchange.toml"), POLICY).unwrap();
        let mut env = Env {
            _dir: dir,
            state,
            policies,
            creds: HashMap::new(),
        };
        env.add_user("alice", "exchange-admins", "");
        env.add_user("bob", "mbmanagers", "");
        env.add_user("dave", "mbmanagers", "");
        env.add_user("carol", "helpdesk", "");
        env.add_user("root", "", "global-admin");
        env
    }

    /// `jitsh user add`: the credential is alone on the last line of stdout.
    fn add_user(&mut self, name: &str, groups: &str, roles: &str) -> String {
        let mut cmd = Command::new(JITSH);
        cmd.args(["user", "add", name, "--state"])
            .arg(&self.state)
            .args(["--email", &format!("{name}@contoso.test")]);
        if !groups.is_empty() {
            cmd.args(["--groups", groups]);
        }
        if !roles.is_empty() {
            cmd.args(["--roles", roles]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let cred = stdout.lines().last().unwrap().to_owned();
        assert!(
            cred.starts_with("jitsh_") && !cred.contains(' '),
            "{stdout}"
        );
        self.creds.insert(name.to_owned(), cred.clone());
        cred
    }

    fn cred(&self, name: &str) -> &str {
        &self.creds[name]
    }

    fn start(&self, extra: &[&str]) -> Server {
        Server::start(&self.state, &self.policies, extra)
    }

    /// Every record of the audit log, in order.
    fn audit(&self) -> Vec<Value> {
        server::audit_records(&self.state.join("audit"))
    }

    fn audit_text(&self) -> String {
        self.audit().iter().map(|v| v.to_string()).collect()
    }
}

/// A running `jitsh serve`; killed with SIGKILL when dropped.
struct Server {
    child: Child,
    url: String,
    http: reqwest::Client,
    /// The service's public key, which the client commands trust (as after `jitsh login`).
    trust_key: PathBuf,
}

impl Server {
    fn start(state: &Path, policies: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(JITSH)
            .arg("serve")
            .arg("--state")
            .arg(state)
            .arg("--policies")
            .arg(policies)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
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
        Server {
            child,
            url,
            http: reqwest::Client::new(),
            trust_key: state.join("signing.pub"),
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
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

    async fn raw(&self, method: &str, path: &str, cred: &str, body: Vec<u8>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(cred)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// A `jitsh` client command against this server as `user`.
    async fn jitsh(&self, cred: &str, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (url, cred) = (self.url.clone(), cred.to_owned());
        let trust = self.trust_key.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(JITSH)
                .args(&args)
                .env("JITSH_SERVER", url)
                .env("JITSH_CREDENTIAL", cred)
                .env("JITSH_TRUST_KEY", trust)
                .env("XDG_CONFIG_HOME", "/nonexistent")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// `jitsh request` as `cred`; returns the request id.
    async fn request(&self, cred: &str, task: &str, duration: &str) -> String {
        let out = self
            .jitsh(
                cred,
                &[
                    "request",
                    "--task",
                    task,
                    "--reason",
                    "ticket work",
                    "--for",
                    duration,
                ],
            )
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(id.starts_with("r-"), "{id}");
        id
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn claims(token: &str) -> Value {
    let body = token
        .strip_prefix("v4.public.")
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .unwrap();
    serde_json::from_slice(&raw[..raw.len() - 64]).unwrap()
}

fn unix(rfc: &Value) -> i64 {
    jitsh::rfc3339::parse(rfc.as_str().unwrap())
        .unwrap()
        .timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_approve_token_with_mail_and_webhook() {
    let env = Env::new();
    let smtp = SmtpReceiver::start().await;
    let hook = WebhookReceiver::start(1).await;
    let relay = smtp.addr.to_string();
    let server = env.start(&[
        "--smtp",
        &relay,
        "--mail-from",
        "jitsh@contoso.test",
        "--webhook",
        &hook.url,
    ]);
    let (alice, bob, carol) = (env.cred("alice"), env.cred("bob"), env.cred("carol"));

    let out = server
        .jitsh(
            alice,
            &[
                "request",
                "--task",
                "New-MoveRequest",
                "--reason",
                "move bob's mailbox",
                "--for",
                "1h",
                "--param",
                "Identity=bob@contoso.com",
            ],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    // Approvers get mail; the webhook (which refuses its first post) gets it on retry.
    let mail = smtp.wait_for("bob@contoso.test", &id).await;
    assert!(mail.from.contains("jitsh@contoso.test"));
    assert!(mail.data.contains("move bob's mailbox"));
    assert!(smtp
        .mails()
        .iter()
        .all(|m| !m.to.iter().any(|t| t.contains("alice"))));
    let posted = hook.wait_for(&id).await;
    assert!(posted["text"].as_str().unwrap().contains("New-MoveRequest"));
    assert_eq!(hook.refused(), 1);

    // Nobody decides their own request; only the rule's approver groups decide.
    let own = server.jitsh(alice, &["approve", &id]).await;
    assert_eq!(own.status.code(), Some(1));
    assert!(stderr(&own).contains("self_approval"), "{}", stderr(&own));
    let (status, body) = server
        .call("POST", &format!("/v1/requests/{id}/approve"), alice, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("self_approval"))
    );
    let (status, body) = server
        .call("POST", &format!("/v1/requests/{id}/approve"), carol, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_an_approver"))
    );

    let before = chrono::Utc::now().timestamp();
    let ok = server
        .jitsh(bob, &["approve", &id, "--comment", "ok"])
        .await;
    assert!(ok.status.success(), "{}", stderr(&ok));
    smtp.wait_for("alice@contoso.test", "approved").await;

    let (status, body) = server
        .call("GET", &format!("/v1/requests/{id}/token"), bob, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_requester"))
    );
    let (status, body) = server
        .call("GET", &format!("/v1/requests/{id}/token"), alice, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["rule"], "mailbox-moves");
    assert_eq!(c["request"], id.as_str());
    assert_eq!(c["approvers"], json!(["bob"]));
    assert_eq!(
        c["params"],
        json!({ "Identity": { "one_of": ["bob@contoso.com"] } })
    );
    // The grant's clock starts at approval.
    let (nbf, exp) = (unix(&c["nbf"]), unix(&c["exp"]));
    assert!(nbf >= before && nbf <= before + 5, "nbf {nbf} vs {before}");
    assert_eq!(exp - nbf, 3600);
    // It verifies with the service's published key.
    let public = std::fs::read_to_string(env.state.join("signing.pub")).unwrap();
    let mut trust = jitsh::token::TrustStore::new();
    trust.add(jitsh::token::PublicKey::from_file_text(&public).unwrap());
    let verified = jitsh::token::verify(token, &trust).unwrap();
    assert_eq!(verified.claims().sub, "alice");

    // Secrets never reach mail, webhooks or the audit log.
    let audit = env.audit_text();
    for secret in [token, alice, bob] {
        assert!(!audit.contains(secret));
        assert!(smtp.mails().iter().all(|m| !m.data.contains(secret)));
        assert!(hook.bodies().iter().all(|b| !b.contains(secret)));
    }
    let actions: Vec<String> = env
        .audit()
        .iter()
        .filter(|e| e["subject"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    // The refused attempts above (self-approval, not an approver) are on record too.
    assert_eq!(
        actions,
        [
            "request.create",
            "request.refused",
            "request.refused",
            "request.refused",
            "request.approve",
            "token.issue"
        ]
    );

    // Listing: bob sees it among approved requests; --json is machine-readable.
    let list = server
        .jitsh(bob, &["requests", "--status", "approved", "--json"])
        .await;
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["requests"][0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deny_revoke_lock_and_policy_limits() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob, carol, root) = (
        env.cred("alice"),
        env.cred("bob"),
        env.cred("carol"),
        env.cred("root"),
    );

    // Deny needs a comment, is final, and is audited.
    let id = server.request(alice, "Set-MoveRequest", "30m").await;
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/requests/{id}/deny"),
            bob,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("comment_required"))
    );
    let out = server
        .jitsh(bob, &["deny", &id, "--comment", "no change window"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = server
        .call("POST", &format!("/v1/requests/{id}/approve"), bob, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("already_decided"))
    );
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{id}"), alice, None)
        .await;
    assert_eq!(shown["status"], "denied");
    assert_eq!(shown["comment"], "no change window");

    // Revoke: the requester may drop their own grant; gates see the jti.
    let id = server.request(alice, "New-MoveRequest", "2h").await;
    assert!(server.jitsh(bob, &["approve", &id]).await.status.success());
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{id}"), alice, None)
        .await;
    let jti = shown["grant"]["jti"].as_str().unwrap().to_owned();
    let (status, _) = server
        .call("POST", &format!("/v1/requests/{id}/revoke"), carol, None)
        .await;
    assert_eq!(status, 403);
    let out = server.jitsh(alice, &["revoke", &id]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, revs) = server
        .call("GET", "/v1/revocations?since=0", carol, None)
        .await;
    assert_eq!(status, 200);
    assert!(revs["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["jti"] == jti.as_str()));
    let (status, body) = server
        .call("GET", &format!("/v1/requests/{id}/token"), alice, None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_approved"))
    );

    // Policy limits: duration, requester groups, unknown tasks.
    let long = server
        .jitsh(
            alice,
            &[
                "request",
                "--task",
                "New-MoveRequest",
                "--reason",
                "r",
                "--for",
                "5h",
            ],
        )
        .await;
    assert_eq!(long.status.code(), Some(1));
    assert!(
        stderr(&long).contains("duration_too_long"),
        "{}",
        stderr(&long)
    );
    let body = json!({ "task": "New-MoveRequest", "reason": "r", "duration": "5h" });
    let (status, err) = server.call("POST", "/v1/requests", alice, Some(body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("duration_too_long"))
    );
    let body = json!({ "task": "New-MoveRequest", "reason": "r", "duration": "1h" });
    let (status, err) = server.call("POST", "/v1/requests", carol, Some(body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (403, Some("not_a_requester"))
    );
    let body = json!({ "task": "Get-Mailbox", "reason": "r", "duration": "1h" });
    let (status, err) = server.call("POST", "/v1/requests", alice, Some(body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("no_approval_rule"))
    );
    let body = json!({ "task": "New-MoveRequest", "reason": "  ", "duration": "1h" });
    let (status, err) = server.call("POST", "/v1/requests", alice, Some(body)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("reason_required"))
    );
    let body = json!({ "role": "Mailbox Import Export", "reason": "export", "duration": "1h" });
    let (status, made) = server.call("POST", "/v1/requests", alice, Some(body)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["tasks"],
        json!(["New-MailboxExportRequest", "New-MailboxImportRequest"])
    );

    // Locks: only global admins; while set, new requests are refused and live grants are listed.
    let live = server.request(alice, "New-MoveRequest", "1h").await;
    assert!(server
        .jitsh(bob, &["approve", &live])
        .await
        .status
        .success());
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{live}"), alice, None)
        .await;
    let live_jti = shown["grant"]["jti"].as_str().unwrap().to_owned();
    let refused = server
        .jitsh(bob, &["lock", "user:alice", "--reason", "incident"])
        .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("not_global_admin"));
    let out = server
        .jitsh(
            root,
            &["lock", "user:alice", "--reason", "incident", "--for", "2h"],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let blocked = server
        .jitsh(
            alice,
            &[
                "request",
                "--task",
                "New-MoveRequest",
                "--reason",
                "r",
                "--for",
                "1h",
            ],
        )
        .await;
    assert_eq!(blocked.status.code(), Some(1));
    assert!(stderr(&blocked).contains("locked"), "{}", stderr(&blocked));
    let (_, revs) = server.call("GET", "/v1/revocations", carol, None).await;
    let listed = revs["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["jti"] == live_jti.as_str())
        .cloned();
    // Gates get the token id and its expiry, nothing about its holder, rule or the lock.
    let listed = listed.unwrap();
    assert_eq!(
        listed.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["exp", "jti"]
    );
    assert!(revs.get("locks").is_none(), "{revs}");
    assert!(!revs.to_string().contains("alice"), "{revs}");
    let (status, _) = server
        .call("GET", &format!("/v1/requests/{live}/token"), alice, None)
        .await;
    assert_eq!(status, 409);
    let out = server.jitsh(root, &["lock", "--clear", "user:alice"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    server.request(alice, "New-MoveRequest", "1h").await;
    let actions: Vec<Value> = env.audit().iter().map(|e| e["action"].clone()).collect();
    for a in ["request.deny", "grant.revoke", "lock.set", "lock.clear"] {
        assert!(actions.contains(&json!(a)), "{a} not audited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quorum_auto_approval_and_counted_uses() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob, dave, carol) = (
        env.cred("alice"),
        env.cred("bob"),
        env.cred("dave"),
        env.cred("carol"),
    );

    // min_approvals = 2: two distinct approvers.
    let id = server.request(carol, "Remove-Mailbox", "1h").await;
    let (status, first) = server
        .call("POST", &format!("/v1/requests/{id}/approve"), bob, None)
        .await;
    assert_eq!((status, first["status"].as_str()), (200, Some("pending")));
    let (status, again) = server
        .call("POST", &format!("/v1/requests/{id}/approve"), bob, None)
        .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("already_approved"))
    );
    let (status, done) = server
        .call("POST", &format!("/v1/requests/{id}/approve"), dave, None)
        .await;
    assert_eq!((status, done["status"].as_str()), (200, Some("approved")));
    let (_, tok) = server
        .call("GET", &format!("/v1/requests/{id}/token"), carol, None)
        .await;
    assert_eq!(
        claims(tok["token"].as_str().unwrap())["approvers"],
        json!(["bob", "dave"])
    );

    // auto rules approve at once, still audited.
    let out = server
        .jitsh(
            alice,
            &[
                "request",
                "--task",
                "Get-MailboxStatistics",
                "--reason",
                "sizes",
                "--for",
                "10m",
                "--uses",
                "2",
            ],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (status, tok) = server
        .call("GET", &format!("/v1/requests/{id}/token"), alice, None)
        .await;
    assert_eq!(status, 200, "{tok}");
    assert_eq!(claims(tok["token"].as_str().unwrap())["uses"], 2);
    assert!(env.audit().iter().any(|e| e["action"] == "request.approve"
        && e["actor"] == "jitsh"
        && e["subject"] == id.as_str()));

    // Counted grants: two uses, then 409.
    let jti = tok["jti"].as_str().unwrap();
    let path = format!("/v1/grants/{jti}/use");
    let (status, _) = server.call("POST", &path, bob, None).await;
    assert_eq!(status, 403);
    assert_eq!(
        server.call("POST", &path, alice, None).await.1["remaining"],
        1
    );
    assert_eq!(
        server.call("POST", &path, alice, None).await.1["remaining"],
        0
    );
    let (status, err) = server.call("POST", &path, alice, None).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("uses_exhausted"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_between_request_and_approval_loses_nothing() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let id = server.request(alice, "New-MoveRequest", "1h").await;
    let pending = server.request(alice, "Remove-Mailbox", "1h").await;
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/requests/{pending}/approve"),
            bob,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let key = std::fs::read_to_string(env.state.join("signing.pub")).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.state.join("signing.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    server.kill9();

    let server = env.start(&[]);
    assert_eq!(
        std::fs::read_to_string(env.state.join("signing.pub")).unwrap(),
        key
    );
    let (_, list) = server
        .call("GET", "/v1/requests?status=pending", bob, None)
        .await;
    let ids: Vec<&str> = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&pending.as_str()),
        "{list}"
    );
    // The quorum vote cast before the crash still counts.
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{pending}"), bob, None)
        .await;
    assert_eq!(shown["approvals"][0]["approver"], "bob");
    assert!(server.jitsh(bob, &["approve", &id]).await.status.success());
    let (status, tok) = server
        .call("GET", &format!("/v1/requests/{id}/token"), alice, None)
        .await;
    assert_eq!(status, 200, "{tok}");

    // SIGTERM stops it cleanly, sealing the audit log, which verifies with the service's key.
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    // (The trust-key reader does not take the armoured signing.pub yet: pass the raw key.)
    let public = std::fs::read_to_string(env.state.join("signing.pub")).unwrap();
    let public = jitsh::token::PublicKey::from_file_text(&public).unwrap();
    let trust = env.state.join("audit.trust");
    let b64 = base64::engine::general_purpose::STANDARD.encode(public.bytes());
    std::fs::write(&trust, format!("kid={} {b64}\n", public.kid())).unwrap();
    let verify = Command::new(JITSH)
        .args(["audit", "verify"])
        .arg(env.state.join("audit"))
        .arg("--trust-key")
        .arg(&trust)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        stderr(&verify)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_the_right_status_and_json_shape() {
    let env = Env::new();
    let server = env.start(&["--pending-ttl", "1s"]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let check = |(status, body): (u16, Value), want: u16, code: &str| {
        assert_eq!(status, want, "{body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    };
    check(
        server
            .raw("POST", "/v1/requests", alice, b"{\"task\": ".to_vec())
            .await,
        400,
        "malformed_json",
    );
    check(
        server
            .raw("POST", "/v1/requests", alice, b"[1,2".to_vec())
            .await,
        400,
        "malformed_json",
    );
    check(
        server
            .raw(
                "POST",
                "/v1/requests",
                alice,
                br#"{"task": 7, "reason": "r"}"#.to_vec(),
            )
            .await,
        400,
        "invalid_field",
    );
    check(
        server
            .raw(
                "POST",
                "/v1/requests",
                alice,
                br#"{"task": "x", "uses": -1}"#.to_vec(),
            )
            .await,
        400,
        "invalid_field",
    );
    check(
        server
            .raw(
                "POST",
                "/v1/requests",
                alice,
                br#"{"task": "New-MoveRequest", "reason": "r", "duration": "soon"}"#.to_vec(),
            )
            .await,
        400,
        "invalid_duration",
    );
    let huge = format!("{{\"reason\": \"{}\"}}", "a".repeat(200 * 1024));
    check(
        server
            .raw("POST", "/v1/requests", alice, huge.into_bytes())
            .await,
        413,
        "body_too_large",
    );
    check(
        server.call("GET", "/v1/requests/r-nope", alice, None).await,
        404,
        "not_found",
    );
    check(
        server
            .call("POST", "/v1/requests/r-nope/approve", bob, None)
            .await,
        404,
        "not_found",
    );
    check(
        server.call("POST", "/v1/grants/nope/use", bob, None).await,
        404,
        "not_found",
    );
    check(
        server
            .call("GET", "/v1/requests", "jitsh_not-a-credential", None)
            .await,
        401,
        "unauthenticated",
    );
    check(
        server.call("GET", "/v1/requests", "", None).await,
        401,
        "unauthenticated",
    );
    check(
        server.call("GET", "/v1/nothing-here", alice, None).await,
        404,
        "not_found",
    );
    check(
        server
            .call("GET", "/v1/requests?status=weird", alice, None)
            .await,
        400,
        "invalid_query",
    );
    check(
        server
            .call("GET", "/v1/revocations?since=yesterday", alice, None)
            .await,
        400,
        "invalid_query",
    );

    // A request nobody decides expires, stays queryable, and can no longer be approved.
    let id = server.request(alice, "New-MoveRequest", "1h").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{id}"), alice, None)
        .await;
    assert_eq!(shown["status"], "expired");
    check(
        server
            .call("POST", &format!("/v1/requests/{id}/approve"), bob, None)
            .await,
        409,
        "already_decided",
    );
    assert!(env
        .audit()
        .iter()
        .any(|e| e["action"] == "request.expire" && e["subject"] == id.as_str()));

    let (status, health) = server.call("GET", "/healthz", "", None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, spec) = server.call("GET", "/openapi.json", "", None).await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/v1/requests/{id}/approve"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn eight_concurrent_approvals_make_exactly_one_decision() {
    let mut env = Env::new();
    let approvers: Vec<String> = (1..=8)
        .map(|n| env.add_user(&format!("a{n}"), "mbmanagers", ""))
        .collect();
    let server = std::sync::Arc::new(env.start(&[]));
    let id = server
        .request(env.cred("alice"), "New-MoveRequest", "1h")
        .await;
    let mut tasks = Vec::new();
    for cred in approvers {
        let (server, id) = (std::sync::Arc::clone(&server), id.clone());
        tasks.push(tokio::spawn(async move {
            server
                .call("POST", &format!("/v1/requests/{id}/approve"), &cred, None)
                .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status != 200 {
            assert_eq!(body["error"], "already_decided", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    let (_, shown) = server
        .call(
            "GET",
            &format!("/v1/requests/{id}"),
            env.cred("alice"),
            None,
        )
        .await;
    assert_eq!(shown["approvals"].as_array().unwrap().len(), 1);
    let approvals = env
        .audit()
        .iter()
        .filter(|e| e["action"] == "request.approve")
        .count();
    assert_eq!(approvals, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_global_admins_change_policies_and_users() {
    let mut env = Env::new();
    let server = env.start(&[]);
    // Users added with the CLI while the service runs can sign in at once, and are audited.
    let frank = env.add_user("frank", "helpdesk", "");
    let (status, me) = server.call("GET", "/v1/me", &frank, None).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("frank")));
    let (alice, root) = (env.cred("alice"), env.cred("root"));
    let rule = "[[rule]]\nid = \"transport\"\neffect = \"approval\"\ntasks = [\"New-TransportRule\"]\napprovers = [\"mbmanagers\"]\nmax_duration = \"1h\"\n";
    let put = |cred: &str, file: &str, text: &str| {
        let req = server
            .http
            .put(format!("{}/v1/policies/{file}", server.url))
            .bearer_auth(cred)
            .body(text.to_owned());
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(put(alice, "transport.toml", rule).await.0, 403);
    let (status, err) = put(
        root,
        "transport.toml",
        "[[rule]]\nid = \"mailbox-moves\"\neffect = \"approval\"\ntasks = [\"X\"]\n",
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("policy_invalid")),
        "{err}"
    );
    assert_eq!(put(root, "../escape.toml", rule).await.0, 404);
    assert_eq!(put(root, "transport.toml", rule).await.0, 200);
    assert!(env.policies.join("transport.toml").exists());
    server.request(alice, "New-TransportRule", "1h").await;

    let body = json!({ "name": "erin", "groups": ["mbmanagers"] });
    assert_eq!(
        server
            .call("POST", "/v1/users", alice, Some(body.clone()))
            .await
            .0,
        403
    );
    let (status, made) = server
        .call("POST", "/v1/users", root, Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{made}");
    let erin = made["credential"].as_str().unwrap();
    let (status, me) = server.call("GET", "/v1/me", erin, None).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("erin")));
    assert_eq!(
        server.call("POST", "/v1/users", root, Some(body)).await.0,
        409
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env
        .audit()
        .iter()
        .any(|e| e["action"] == "user.add" && e["subject"] == "frank")
    {
        assert!(Instant::now() < deadline, "user.add of frank never audited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let actions: Vec<Value> = env.audit().iter().map(|e| e["action"].clone()).collect();
    assert!(actions.contains(&json!("policy.change")) && actions.contains(&json!("user.add")));
}

/// Throughput of full request → approve → token cycles over loopback HTTP, one client and
/// then eight concurrent clients.
/// Run: `cargo test --release --test service -- --ignored --nocapture measure_cycles`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measurement, not a check"]
async fn measure_cycles_per_second() {
    let env = Env::new();
    // One requester files every cycle: no per-user allowance for the measurement.
    let server =
        std::sync::Arc::new(env.start(&["--max-requests-per-hour", "0", "--max-pending", "0"]));
    let (alice, bob) = (env.cred("alice").to_owned(), env.cred("bob").to_owned());
    async fn cycle(server: &Server, alice: &str, bob: &str) {
        let body = json!({ "task": "New-MoveRequest", "reason": "bench", "duration": "1h" });
        let (status, made) = server.call("POST", "/v1/requests", alice, Some(body)).await;
        assert_eq!(status, 201);
        let id = made["id"].as_str().unwrap();
        let approve = format!("/v1/requests/{id}/approve");
        assert_eq!(server.call("POST", &approve, bob, None).await.0, 200);
        let token = format!("/v1/requests/{id}/token");
        assert_eq!(server.call("GET", &token, alice, None).await.0, 200);
    }
    let cycles = 200u32;
    let started = Instant::now();
    for _ in 0..cycles {
        cycle(&server, &alice, &bob).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "1 client: {cycles} request→approve→token cycles in {secs:.2}s: {:.1} cycles/s",
        f64::from(cycles) / secs
    );
    let (clients, each) = (8u32, 50u32);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (server, alice, bob) = (std::sync::Arc::clone(&server), alice.clone(), bob.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                cycle(&server, &alice, &bob).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{clients} clients: {} cycles in {secs:.2}s: {:.1} cycles/s",
        clients * each,
        f64::from(clients * each) / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_takes_its_config_file_and_says_when_it_cannot_connect() {
    let env = Env::new();
    let server = env.start(&[]);
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("jitsh")).unwrap();
    std::fs::write(
        config.path().join("jitsh/config.toml"),
        format!(
            "server = \"{}\"\ncredential = \"{}\"\ntrust_keys = [\"{}\"]\n",
            server.url,
            env.cred("alice"),
            env.state.join("signing.pub").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str], server: Option<&str>| {
        let mut cmd = Command::new(JITSH);
        cmd.args(args)
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("JITSH_SERVER")
            .env_remove("JITSH_CREDENTIAL")
            .env_remove("JITSH_TRUST_KEY");
        if let Some(s) = server {
            cmd.args(["--server", s]);
        }
        cmd.output().unwrap()
    };
    let out = run(
        &[
            "request",
            "--task",
            "New-MoveRequest",
            "--reason",
            "r",
            "--for",
            "1h",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = run(&["requests", "--mine", "--json"], None);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["requests"].as_array().unwrap().len(), 1);

    // A flag overrides the file; an unreachable service is a usage/connection error (3).
    let down = run(&["requests"], Some("http://127.0.0.1:1"));
    assert_eq!(down.status.code(), Some(3));
    let message = stderr(&down);
    assert!(message.contains("could not reach the service"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(!message.contains(env.cred("alice")));
}

/// The pinned smoke path end to end: the token an approver's decision produces is honoured by
/// `jitsh check` for its user, task and window only, and no longer once revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gate_honours_an_approved_token_only_in_scope_and_until_revoked() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let id = server.request(alice, "New-MoveRequest", "1h").await;
    let ok = server
        .jitsh(bob, &["approve", &id, "--comment", "ok"])
        .await;
    assert!(ok.status.success(), "{}", stderr(&ok));

    let token_file = env.state.join("alice-move.tok");
    let tf = token_file.to_str().unwrap();
    let fetched = server
        .jitsh(alice, &["token", "fetch", &id, "--out", tf])
        .await;
    assert!(fetched.status.success(), "{}", stderr(&fetched));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let exp = claims(std::fs::read_to_string(&token_file).unwrap().trim())["exp"]
        .as_str()
        .unwrap()
        .to_owned();
    let after_exp = jitsh::rfc3339::parse(&exp).unwrap() + chrono::Duration::minutes(5);
    let after_exp = jitsh::rfc3339::format(after_exp).unwrap();

    let public = env.state.join("signing.pub");
    let policies = env.policies.to_str().unwrap().to_owned();
    let check = |user: &'static str, now: Option<String>, line: &'static str| {
        let mut args = vec![
            "check".to_owned(),
            "--policies".into(),
            policies.clone(),
            "--user".into(),
            user.into(),
            "--token".into(),
            tf.to_owned(),
            "--trust-key".into(),
            public.to_str().unwrap().to_owned(),
        ];
        if let Some(now) = now {
            args.push("--now".into());
            args.push(now);
        }
        args.push(line.into());
        args
    };
    let run = |args: Vec<String>| {
        let server = &server;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = server.jitsh(alice, &refs).await;
            let v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("not JSON: {}", stderr(&out)));
            (out.status.code(), v)
        }
    };
    const MOVE: &str = "New-MoveRequest -Identity rob@contoso.com";

    let (code, v) = run(check("alice", None, MOVE)).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["invocations"][0]["rule"], "mailbox-moves");
    assert!(v["invocations"][0]["token"].is_string(), "{v}");
    // After exp.
    let (code, v) = run(check("alice", Some(after_exp), MOVE)).await;
    assert_eq!(code, Some(1), "{v}");
    // Alice's credential cannot be used to run as someone else.
    let refs: Vec<String> = check("mallory", None, MOVE);
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let out = server.jitsh(alice, &refs).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("credential"), "{}", stderr(&out));
    // Another task.
    let (code, v) = run(check(
        "alice",
        None,
        "Remove-Mailbox -Identity rob@contoso.com",
    ))
    .await;
    assert_eq!(code, Some(1), "{v}");

    // Revoked: a gate that confirms the token with the service refuses it.
    let revoked = server.jitsh(bob, &["revoke", &id]).await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let (code, v) = run(check("alice", None, MOVE)).await;
    assert_eq!(code, Some(1), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("revoked"), "{v}");
}

/// Exact-command approval: the service binds the token to the canonical form of the requested
/// line, so the grant cannot be widened to other arguments; a line that is not one static
/// invocation of the task is refused at request time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exact_command_grant_covers_that_command_only() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let out = server
        .jitsh(
            alice,
            &[
                "request",
                "--task",
                "New-MoveRequest",
                "--reason",
                "move rob",
                "--for",
                "1h",
                "--command",
                "New-MoveRequest -Ident rob@contoso.com -TargetDatabase DB02",
            ],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let ok = server.jitsh(bob, &["approve", &id]).await;
    assert!(ok.status.success(), "{}", stderr(&ok));
    let (status, body) = server
        .call("GET", &format!("/v1/requests/{id}/token"), alice, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        claims(token)["command"],
        "New-MoveRequest -Identity:'rob@contoso.com' -TargetDatabase:'DB02'"
    );
    let token_file = env.state.join("exact.tok");
    std::fs::write(&token_file, token).unwrap();
    let public = env.state.join("signing.pub");
    for (line, want) in [
        (
            "new-moverequest -TargetDatabase DB02 -Identity rob@contoso.com",
            0,
        ),
        (
            "New-MoveRequest -Identity rob@contoso.com -TargetDatabase DB03",
            1,
        ),
        (
            "New-MoveRequest -Identity eve@contoso.com -TargetDatabase DB02",
            1,
        ),
    ] {
        let out = server
            .jitsh(
                alice,
                &[
                    "check",
                    "--policies",
                    env.policies.to_str().unwrap(),
                    "--user",
                    "alice",
                    "--token",
                    token_file.to_str().unwrap(),
                    "--trust-key",
                    public.to_str().unwrap(),
                    line,
                ],
            )
            .await;
        assert_eq!(
            out.status.code(),
            Some(want),
            "{line}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    for bad in [
        "New-MoveRequest -Identity $who -TargetDatabase DB02",
        "Get-Mailbox rob; New-MoveRequest rob",
        "Remove-Mailbox rob",
    ] {
        let (status, body) = server
            .call(
                "POST",
                "/v1/requests",
                alice,
                Some(json!({"task": "New-MoveRequest", "reason": "x", "duration": "1h", "command": bad})),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid_command")),
            "{bad}: {body}"
        );
    }
}

// ---- grants that cannot be stretched or lent (issue 9, items 1-6) ------------------------------

const MOVE_LINE: &str = "New-MoveRequest -Identity rob@contoso.com";

impl Server {
    /// `jitsh` as `cred` with `input` on stdin.
    async fn jitsh_stdin(&self, cred: &str, args: &[&str], input: &str) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (url, cred, input) = (self.url.clone(), cred.to_owned(), input.to_owned());
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut child = Command::new(JITSH)
                .args(&args)
                .env("JITSH_SERVER", url)
                .env("JITSH_CREDENTIAL", cred)
                .env("XDG_CONFIG_HOME", "/nonexistent")
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
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    /// File `args` as `cred`, have `approver` approve it; returns the request id.
    async fn approved(&self, cred: &str, approver: &str, args: &[&str]) -> String {
        let mut all = vec!["request", "--reason", "ticket work"];
        all.extend_from_slice(args);
        let out = self.jitsh(cred, &all).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let ok = self.jitsh(approver, &["approve", &id]).await;
        assert!(ok.status.success(), "{}", stderr(&ok));
        id
    }

    /// Fetch the token of `id` into `STATE/NAME`.
    async fn token_file(&self, env: &Env, cred: &str, id: &str, name: &str) -> String {
        let path = env.state.join(name);
        let path = path.to_str().unwrap().to_owned();
        let out = self
            .jitsh(cred, &["token", "fetch", id, "--out", &path])
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        path
    }
}

impl Env {
    /// `jitsh check` arguments with one token, trusting this service's key.
    fn check_args<'a>(&'a self, token: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "check",
            "--policies",
            self.policies.to_str().unwrap(),
            "--token",
            token,
            "--trust-key",
            self.public(),
        ];
        args.extend_from_slice(extra);
        args
    }

    /// `jitsh exec` arguments running `line` through `/bin/true` (exit 0 only if it ran).
    fn exec_args<'a>(&'a self, token: &'a str, extra: &[&'a str], line: &'a str) -> Vec<&'a str> {
        let mut args = vec![
            "exec",
            "--policies",
            self.policies.to_str().unwrap(),
            "--token",
            token,
            "--trust-key",
            self.public(),
            "--runspace",
            "/bin/true",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", line]);
        args
    }

    fn public(&self) -> &str {
        Box::leak(
            self.state
                .join("signing.pub")
                .to_str()
                .unwrap()
                .to_owned()
                .into_boxed_str(),
        )
    }
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stdout_json(out: &Output) -> Value {
    let v = serde_json::from_slice(&out.stdout);
    assert!(v.is_ok(), "not JSON: {}", stderr(out));
    v.unwrap()
}

/// Item 1: a counted grant is spent at the service by every gate path before it is honoured
/// (check, check --batch, exec), and a used-up grant is on the revocation list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_gate_path_spends_a_counted_grant_before_honouring_it() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let move_args = ["--task", "New-MoveRequest", "--for", "1h", "--uses"];
    let id = server
        .approved(alice, bob, &[&move_args[..], &["3"]].concat())
        .await;
    let tok = server.token_file(&env, alice, &id, "three.tok").await;

    // check: the first line spends use 1 of 3.
    let out = server
        .jitsh(alice, &env.check_args(&tok, &[MOVE_LINE]))
        .await;
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    // check --batch: each allowed line spends one; the grant runs out on the third line.
    let batch = format!(
        "{}\n{}\n{}\n",
        json!({"text": MOVE_LINE, "n": 1}),
        json!({"text": MOVE_LINE, "n": 2}),
        json!({"text": MOVE_LINE, "n": 3})
    );
    let out = server
        .jitsh_stdin(alice, &env.check_args(&tok, &["--batch"]), &batch)
        .await;
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<&str> = lines
        .iter()
        .map(|l| l["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "allow", "approval"], "{lines:?}");
    assert!(
        lines[2]["reason"]
            .as_str()
            .unwrap()
            .contains("no uses left"),
        "{}",
        lines[2]
    );
    // The same grant, five more times: never again.
    for _ in 0..5 {
        let out = server
            .jitsh(alice, &env.check_args(&tok, &[MOVE_LINE]))
            .await;
        assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    }
    // exec: one use, one run; the second is refused before the runspace starts.
    let id = server
        .approved(alice, bob, &[&move_args[..], &["1"]].concat())
        .await;
    let one = server.token_file(&env, alice, &id, "one.tok").await;
    let out = server
        .jitsh(alice, &env.exec_args(&one, &[], MOVE_LINE))
        .await;
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = server
        .jitsh(alice, &env.exec_args(&one, &[], MOVE_LINE))
        .await;
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no uses left"), "{}", stderr(&out));

    // Used-up grants are listed for gates, by token id and expiry only.
    let (_, revs) = server.call("GET", "/v1/revocations", bob, None).await;
    let listed: Vec<&str> = revs["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["jti"].as_str().unwrap())
        .collect();
    for t in [&tok, &one] {
        let jti = claims(std::fs::read_to_string(t).unwrap().trim())["jti"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(listed.contains(&jti.as_str()), "{revs}");
    }
    assert!(!revs.to_string().contains("alice"), "{revs}");
}

/// Item 2: a gate that talks to the service runs as its credential's user; another user's token
/// does not run with someone else's credential, however the user is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_cannot_be_lent_to_another_credential() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob, carol) = (env.cred("alice"), env.cred("bob"), env.cred("carol"));
    let id = server
        .approved(alice, bob, &["--task", "New-MoveRequest", "--for", "1h"])
        .await;
    let tok = server.token_file(&env, alice, &id, "alice.tok").await;
    // The owner's own gate runs it.
    let out = server
        .jitsh(
            alice,
            &env.check_args(&tok, &["--user", "alice", MOVE_LINE]),
        )
        .await;
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    // carol's credential naming alice: refused outright (check and exec), with case games too.
    for user in ["alice", "ALICE", "Alice"] {
        let out = server
            .jitsh(carol, &env.check_args(&tok, &["--user", user, MOVE_LINE]))
            .await;
        assert_eq!(code(&out), Some(3), "{user}: {}", stderr(&out));
        assert!(stderr(&out).contains("credential"), "{}", stderr(&out));
        let out = server
            .jitsh(carol, &env.exec_args(&tok, &["--user", user], MOVE_LINE))
            .await;
        assert_eq!(code(&out), Some(3), "{user}: {}", stderr(&out));
    }
    // carol's credential without --user: the gate runs as carol, and alice's token is not hers.
    let out = server
        .jitsh(carol, &env.check_args(&tok, &[MOVE_LINE]))
        .await;
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    let out = server
        .jitsh(carol, &env.exec_args(&tok, &[], MOVE_LINE))
        .await;
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    // No valid credential at all: nothing to vouch for the user.
    let out = server
        .jitsh(
            "jitsh_not-a-credential",
            &env.check_args(&tok, &["--user", "alice", MOVE_LINE]),
        )
        .await;
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    // And the service itself refuses to confirm a grant for anyone but its holder.
    let jti = claims(std::fs::read_to_string(&tok).unwrap().trim())["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, err) = server
        .call("POST", &format!("/v1/grants/{jti}/use"), carol, None)
        .await;
    assert_eq!((status, err["error"].as_str()), (403, Some("not_holder")));
}

/// Item 4: with a service, revocation and locks take effect on the very next line; without
/// one, a token whose rule does not allow offline use is not honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_and_locks_stop_a_token_on_the_next_line() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob, root) = (env.cred("alice"), env.cred("bob"), env.cred("root"));
    let first = server
        .approved(alice, bob, &["--task", "New-MoveRequest", "--for", "1h"])
        .await;
    let tok = server.token_file(&env, alice, &first, "first.tok").await;
    let second = server
        .approved(alice, bob, &["--task", "Set-MoveRequest", "--for", "1h"])
        .await;
    let tok2 = server.token_file(&env, alice, &second, "second.tok").await;
    let out = server
        .jitsh(alice, &env.check_args(&tok, &[MOVE_LINE]))
        .await;
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = server.jitsh(bob, &["revoke", &first]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // No cache window: the next check and the next exec are refused.
    let out = server
        .jitsh(alice, &env.check_args(&tok, &[MOVE_LINE]))
        .await;
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(
        stdout_json(&out)["reason"]
            .as_str()
            .unwrap()
            .contains("refused token"),
        "{}",
        stdout_json(&out)
    );
    let out = server
        .jitsh(alice, &env.exec_args(&tok, &[], MOVE_LINE))
        .await;
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    // A lock on the user stops the other live grant at once, whatever the name's case.
    let set = "Set-MoveRequest -Identity rob@contoso.com -BatchName b";
    let out = server.jitsh(alice, &env.check_args(&tok2, &[set])).await;
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = server
        .jitsh(
            root,
            &["lock", "user:alice", "--reason", "incident", "--for", "1h"],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.jitsh(alice, &env.check_args(&tok2, &[set])).await;
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(stdout_json(&out)["reason"]
        .as_str()
        .unwrap()
        .contains("locked"));
    let out = server.jitsh(root, &["lock", "--clear", "user:alice"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.jitsh(alice, &env.check_args(&tok2, &[set])).await;
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    // The service goes away: the rule has no `offline`, so its token no longer counts.
    let url = server.url.clone();
    server.kill9();
    let out = Command::new(JITSH)
        .args(env.check_args(&tok2, &["--user", "alice", set]))
        .env("JITSH_SERVER", &url)
        .env("JITSH_CREDENTIAL", alice)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert!(v["reason"].as_str().unwrap().contains("offline"), "{v}");
    // Nor with no service configured at all.
    let out = Command::new(JITSH)
        .args(env.check_args(&tok2, &["--user", "alice", set]))
        .env_remove("JITSH_SERVER")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
}

/// Item 5: a token is signed only for what the rule in force allows. Stored rows edited by
/// hand (a year-long grant, extra tasks, votes removed, more uses) no longer match their
/// request's seal and are refused as tampered; rules tightened after approval leave the grant
/// unsignable (`beyond_policy`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_is_signed_only_for_what_the_rule_allows_now() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob, root) = (env.cred("alice"), env.cred("bob"), env.cred("root"));
    let mv = ["--task", "New-MoveRequest", "--for", "1h"];
    let year = server.approved(alice, bob, &mv).await;
    let tasks = server.approved(alice, bob, &mv).await;
    let votes = server.approved(alice, bob, &mv).await;
    let uses = server
        .approved(alice, bob, &[&mv[..], &["--uses", "1"]].concat())
        .await;
    let sub = server.approved(alice, bob, &mv).await;
    let untouched = server.approved(alice, bob, &mv).await;
    server.terminate();

    let db = rusqlite::Connection::open(env.state.join("jitsh.db")).unwrap();
    db.execute(
        "UPDATE grants SET exp = nbf + 31536000 WHERE request_id = ?1",
        [&year],
    )
    .unwrap();
    let body: String = db
        .query_row("SELECT body FROM requests WHERE id = ?1", [&tasks], |r| {
            r.get(0)
        })
        .unwrap();
    let mut body: Value = serde_json::from_str(&body).unwrap();
    body["tasks"] = json!(["New-MoveRequest", "Remove-Mailbox"]);
    db.execute(
        "UPDATE requests SET body = ?2 WHERE id = ?1",
        [&tasks, &body.to_string()],
    )
    .unwrap();
    db.execute("DELETE FROM approvals WHERE request_id = ?1", [&votes])
        .unwrap();
    db.execute(
        "UPDATE grants SET uses = NULL WHERE request_id = ?1",
        [&uses],
    )
    .unwrap();
    db.execute(
        "UPDATE grants SET sub = 'carol' WHERE request_id = ?1",
        [&sub],
    )
    .unwrap();
    drop(db);

    let server = env.start(&[]);
    for id in [&year, &tasks, &votes, &uses] {
        let (status, err) = server
            .call("GET", &format!("/v1/requests/{id}/token"), alice, None)
            .await;
        assert_eq!(
            (status, err["error"].as_str()),
            (409, Some("tampered")),
            "{err}"
        );
    }
    // The grant now names carol: alice may not fetch it, and carol is not its requester.
    let (status, err) = server
        .call("GET", &format!("/v1/requests/{sub}/token"), alice, None)
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("tampered")),
        "{err}"
    );
    let (status, tok) = server
        .call(
            "GET",
            &format!("/v1/requests/{untouched}/token"),
            alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{tok}");

    // Rules tightened after approval: a shorter max_duration, then other approvers.
    let put = |text: String| {
        let req = server
            .http
            .put(format!("{}/v1/policies/exchange.toml", server.url))
            .bearer_auth(root)
            .body(text);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        put(POLICY.replace("max_duration = \"4h\"", "max_duration = \"30m\"")).await,
        200
    );
    let (status, err) = server
        .call(
            "GET",
            &format!("/v1/requests/{untouched}/token"),
            alice,
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("beyond_policy")),
        "{err}"
    );
    assert_eq!(
        put(POLICY.replace(
            "approvers = [\"mbmanagers\"]\nrequesters",
            "approvers = [\"seniors\"]\nrequesters"
        ))
        .await,
        200
    );
    let (status, err) = server
        .call(
            "GET",
            &format!("/v1/requests/{untouched}/token"),
            alice,
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("beyond_policy")),
        "{err}"
    );
    // The task no longer needs approval at all (now allowed, now denied): nothing to sign.
    assert_eq!(
        put(POLICY.replace("\"Exchange\\\\New-MoveRequest\", ", "")).await,
        200
    );
    let (status, err) = server
        .call(
            "GET",
            &format!("/v1/requests/{untouched}/token"),
            alice,
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("rule_changed")),
        "{err}"
    );
    assert_eq!(put(format!("{POLICY}\n[[rule]]\nid = \"never\"\neffect = \"deny\"\ntasks = [\"New-MoveRequest\"]\n")).await, 200);
    let (status, err) = server
        .call(
            "GET",
            &format!("/v1/requests/{untouched}/token"),
            alice,
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("task_denied")),
        "{err}"
    );
}

/// Item 5: requests that could never become a usable grant, or whose text could mislead an
/// approver, are refused when filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unusable_or_disguised_requests_are_refused_when_filed() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, root) = (env.cred("alice"), env.cred("root"));
    let extra = "[[rule]]\nid = \"other-changes\"\neffect = \"approval\"\ntasks = [\"Set-*\"]\napprovers = [\"mbmanagers\"]\nmax_duration = \"1h\"\n\n[[rule]]\nid = \"never\"\neffect = \"deny\"\ntasks = [\"Set-AdminAuditLogConfig\", \"Set-Mailbox*Permission\"]\n";
    let status = server
        .http
        .put(format!("{}/v1/policies/extra.toml", server.url))
        .bearer_auth(root)
        .body(extra)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let file = |body: Value| server.call("POST", "/v1/requests", alice, Some(body));
    for (task, want) in [
        ("Set-AdminAuditLogConfig", "task_denied"),
        ("set-adminauditlogconfig", "task_denied"),
        ("Set-MailboxFolderPermission", "task_denied"),
        ("Set-NoSuchThing", "unknown_task"),
        ("Set-*", "unknown_task"),
        ("Set-Mail?ox", "unknown_task"),
        // The rule names `Exchange\New-MoveRequest`: another module's command is no task of it.
        ("Whatever\\New-MoveRequest", "unknown_task"),
    ] {
        let (status, err) = file(json!({"task": task, "reason": "r", "duration": "30m"})).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (422, Some(want)),
            "{task}: {err}"
        );
    }
    let ok = json!({"task": "Set-Mailbox", "reason": "r", "duration": "30m"});
    assert_eq!(file(ok.clone()).await.0, 201);
    for (field, text) in [
        ("reason", "move rob\r\x1b[2KGet-Mailbox only"),
        ("reason", "fine\u{202e}xob"),
        ("reason", "bell\x07"),
        ("reason", "line\nbreak"),
        ("reason", "c1\u{9b}2K"),
        ("ticket", "T-1\x1b]0;x\x07"),
        ("task", "Set-Mailbox\u{0}"),
    ] {
        let mut body = ok.clone();
        body[field] = json!(text);
        let (status, err) = file(body).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (422, Some("control_characters")),
            "{field}={text:?}: {err}"
        );
    }
    let mut body = ok.clone();
    body["params"] = json!({"Identity": "rob\r@contoso.com"});
    let (status, err) = file(body).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("control_characters")),
        "{err}"
    );
}

/// Item 6: decisions use the policy in force when they are made: votes of people who are no
/// longer approvers do not count, the new approvers decide, and a changed quorum applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn votes_and_quorum_follow_the_rule_in_force() {
    let mut env = Env::new();
    env.add_user("erin", "seniors", "");
    env.add_user("frank", "seniors", "");
    let server = env.start(&[]);
    let (alice, bob, dave, root) = (
        env.cred("alice"),
        env.cred("bob"),
        env.cred("dave"),
        env.cred("root"),
    );
    let (erin, frank) = (env.cred("erin"), env.cred("frank"));
    let put = |text: String| {
        let req = server
            .http
            .put(format!("{}/v1/policies/exchange.toml", server.url))
            .bearer_auth(root)
            .body(text);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let server_ref = &server;
    let vote = move |id: String, who: String| async move {
        let (status, v) = server_ref
            .call("POST", &format!("/v1/requests/{id}/approve"), &who, None)
            .await;
        (
            status,
            v["status"]
                .as_str()
                .unwrap_or(v["error"].as_str().unwrap_or(""))
                .to_owned(),
        )
    };
    // Remove-Mailbox needs two mbmanagers. bob votes, then the rule moves to seniors.
    let id = server.request(alice, "Remove-Mailbox", "1h").await;
    assert_eq!(vote(id.clone(), bob.into()).await, (200, "pending".into()));
    let seniors = POLICY.replace(
        "tasks = [\"Remove-Mailbox\"]\napproval = \"manual\"\napprovers = [\"mbmanagers\"]",
        "tasks = [\"Remove-Mailbox\"]\napproval = \"manual\"\napprovers = [\"seniors\"]",
    );
    assert_ne!(seniors, POLICY);
    assert_eq!(put(seniors.clone()).await, 200);
    // dave is no longer an approver of the rule; bob's earlier vote no longer counts.
    assert_eq!(
        vote(id.clone(), dave.into()).await,
        (403, "not_an_approver".into())
    );
    assert_eq!(vote(id.clone(), erin.into()).await, (200, "pending".into()));
    assert_eq!(
        vote(id.clone(), frank.into()).await,
        (200, "approved".into())
    );

    // The quorum raised after a vote: the new quorum applies.
    let id = server.request(alice, "Remove-Mailbox", "1h").await;
    assert_eq!(vote(id.clone(), erin.into()).await, (200, "pending".into()));
    assert_eq!(
        put(seniors.replace("min_approvals = 2", "min_approvals = 3")).await,
        200
    );
    assert_eq!(
        vote(id.clone(), frank.into()).await,
        (200, "pending".into())
    );
    // ...and lowered: the next vote decides under it.
    let id2 = server.request(alice, "Remove-Mailbox", "1h").await;
    assert_eq!(
        put(seniors.replace("min_approvals = 2", "min_approvals = 1")).await,
        200
    );
    assert_eq!(
        vote(id2.clone(), erin.into()).await,
        (200, "approved".into())
    );
    // Nothing is decided without a vote: the first request waits for its next one.
    let (status, v) = server
        .call("GET", &format!("/v1/requests/{id}"), alice, None)
        .await;
    assert_eq!((status, v["status"].as_str()), (200, Some("pending")));
    // A token approved under the old approvers is not signed once they are no longer approvers.
    let id3 = server.request(alice, "Remove-Mailbox", "1h").await;
    assert_eq!(
        vote(id3.clone(), erin.into()).await,
        (200, "approved".into())
    );
    assert_eq!(put(POLICY.to_owned()).await, 200);
    let (status, err) = server
        .call("GET", &format!("/v1/requests/{id3}/token"), alice, None)
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("beyond_policy")),
        "{err}"
    );
    // A pending request longer than the rule now allows cannot be approved.
    let id4 = server.request(alice, "Remove-Mailbox", "1h").await;
    assert_eq!(
        put(POLICY.replace("max_duration = \"1h\"", "max_duration = \"30m\"")).await,
        200
    );
    assert_eq!(
        vote(id4.clone(), bob.into()).await,
        (409, "beyond_policy".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_edited_in_the_database_are_refused_at_token_issue_and_audited() {
    let env = Env::new();
    let server = env.start(&[]);
    let alice = env.cred("alice");
    let pending = server.request(alice, "New-MoveRequest", "1h").await;
    let widened = server.request(alice, "Get-MailboxStatistics", "30m").await;
    let retasked = server.request(alice, "Get-MailboxStatistics", "30m").await;
    let voted = server.request(alice, "Remove-Mailbox", "1h").await;
    let untouched = server.request(alice, "Get-MailboxStatistics", "30m").await;

    let db = rusqlite::Connection::open(env.state.join("jitsh.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let now = chrono::Utc::now().timestamp();
    // The issue's edit: a pending request flipped to approved with a one-year grant.
    db.execute(
        "UPDATE requests SET status = 'approved', decided_at = ?2, decided_by = 'bob' WHERE id = ?1",
        rusqlite::params![pending, now],
    )
    .unwrap();
    db.execute(
        "INSERT INTO grants (jti, request_id, sub, rule, nbf, exp, uses, used) VALUES ('forged-jti', ?1, 'alice', 'mailbox-moves', ?2, ?3, NULL, 0)",
        rusqlite::params![pending, now, now + 365 * 86400],
    )
    .unwrap();
    // A real grant's window stretched; a request's tasks rewritten; a vote added.
    db.execute(
        "UPDATE grants SET exp = exp + 31536000 WHERE request_id = ?1",
        rusqlite::params![widened],
    )
    .unwrap();
    db.execute(
        "UPDATE requests SET body = replace(body, 'Get-MailboxStatistics', 'Remove-Mailbox') WHERE id = ?1",
        rusqlite::params![retasked],
    )
    .unwrap();
    db.execute(
        "INSERT INTO approvals (request_id, approver, comment, at) VALUES (?1, 'dave', 'ok', ?2)",
        rusqlite::params![voted, now],
    )
    .unwrap();
    drop(db);

    for id in [&pending, &widened, &retasked] {
        let (status, body) = server
            .call("GET", &format!("/v1/requests/{id}/token"), alice, None)
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("tampered")),
            "{id}: {body}"
        );
    }
    // The edited vote does not count towards the quorum: the request cannot be decided.
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/requests/{voted}/approve"),
            env.cred("bob"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("tampered")),
        "{body}"
    );
    let (status, body) = server
        .call(
            "GET",
            &format!("/v1/requests/{untouched}/token"),
            alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    assert!(server.terminate().success());
    let alarms: Vec<Value> = env
        .audit()
        .into_iter()
        .filter(|r| r["action"] == "store.tampered")
        .collect();
    let subjects: Vec<&str> = alarms
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, [&pending, &widened, &retasked], "{alarms:#?}");

    // `audit verify --store` finds the edits too; the log itself is intact.
    let verify = |store: bool| {
        let mut cmd = Command::new(JITSH);
        cmd.args([
            "audit",
            "verify",
            "--json",
            "--no-recordings",
            "--trust-key",
        ])
        .arg(env.state.join("signing.pub"))
        .arg(env.state.join("audit"));
        if store {
            cmd.arg("--store").arg(&env.state);
        }
        let out = cmd.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    assert_eq!(verify(false).0, Some(0));
    let (code, v) = verify(true);
    assert_eq!((code, &v["kind"]), (Some(1), &json!("store")), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("4 such"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_approvals_failed_logins_and_refused_lock_changes_are_audited() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, carol) = (env.cred("alice"), env.cred("carol"));
    let id = server.request(alice, "New-MoveRequest", "1h").await;
    let approve = format!("/v1/requests/{id}/approve");
    let (status, body) = server.call("POST", &approve, alice, Some(json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("self_approval"))
    );
    let (status, body) = server.call("POST", &approve, carol, Some(json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_an_approver"))
    );
    let (status, _) = server
        .call("GET", "/v1/me", "jitsh_not_a_credential", None)
        .await;
    assert_eq!(status, 401);
    let (status, body) = server
        .call(
            "POST",
            "/v1/locks",
            carol,
            Some(json!({"scope": "all", "reason": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_global_admin"))
    );
    let (status, _) = server
        .call("DELETE", "/v1/locks?scope=all", carol, None)
        .await;
    assert_eq!(status, 403);
    assert!(server.terminate().success());

    let refusals: Vec<(String, String, String)> = env
        .audit()
        .into_iter()
        .filter(|r| r["outcome"] == "refused")
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                // Refused steps carry the error code; failed logins say why.
                r["details"]["error"]
                    .as_str()
                    .or(r["details"]["why"].as_str())
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        ("alice", "request.refused", "self_approval"),
        ("carol", "request.refused", "not_an_approver"),
        ("-", "auth.fail", "unknown credential"),
        ("carol", "lock.refused", "not_global_admin"),
        ("carol", "lock.refused", "not_global_admin"),
    ];
    let got: Vec<(&str, &str, &str)> = refusals
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got, expected);
    // The failed credential itself is never logged.
    assert!(!env.audit_text().contains("jitsh_not_a_credential"));
}

/// A grant's token is signed and audited once, then served again as is; revoking the grant or
/// locking its holder still stops the fetch at once, and a tampered row is refused even though a
/// token was signed for it before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_s_token_is_signed_once_and_served_again_until_revoked() {
    let env = Env::new();
    let server = env.start(&[]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    let mv = ["--task", "New-MoveRequest", "--for", "1h"];
    let id = server.approved(alice, bob, &mv).await;
    let path = format!("/v1/requests/{id}/token");
    let fetch = || server.call("GET", &path, alice, None);
    let (status, first) = fetch().await;
    assert_eq!(status, 200, "{first}");
    for _ in 0..3 {
        let (status, again) = fetch().await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["token"], first["token"], "the same token is served");
    }
    let issues = env
        .audit()
        .iter()
        .filter(|e| e["subject"] == id.as_str() && e["action"] == "token.issue")
        .count();
    assert_eq!(issues, 1, "signed and audited once");

    let revoked = server.jitsh(bob, &["revoke", &id]).await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let (status, err) = fetch().await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("not_approved")),
        "{err}"
    );
}

/// `serve --exit-with-stdin` (how a quick-start shell runs its demo service) stops when its
/// standard input closes, and still stops on each signal while that input stays open: the
/// watcher of the input must not keep the process alive.
#[test]
fn a_service_that_watches_its_stdin_still_stops_on_signals_and_on_close() {
    for how in ["TERM", "INT", "close"] {
        let env = server::Env::empty(POLICY);
        let mut service = env.start(&["--exit-with-stdin"]);
        assert!(
            std::net::TcpStream::connect(&service.addr).is_ok(),
            "{how}: the service listens"
        );
        assert!(
            !service.exits_within(Duration::from_millis(300)),
            "{how}: it runs while its input is open"
        );
        match how {
            "close" => drop(service.stdin.take()),
            signal => service.signal(signal),
        }
        assert!(
            service.exits_within(Duration::from_secs(10)),
            "{how}: the service did not stop"
        );
    }
}
