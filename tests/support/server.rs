//! A real `jitsh serve` on 127.0.0.1 with its own state and policy folders, for tests that
//! drive the service over HTTP, raw TCP and the `jitsh` client commands.

#![allow(dead_code, reason = "not every test binary uses every helper")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helper"
)]

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");

/// A state folder, a policy folder and the users in the directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub policies: PathBuf,
    pub creds: HashMap<String, String>,
}

impl Env {
    /// Folders with `policy` as the only policy file and no users.
    pub fn empty(policy: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(policies.join("exchange.toml"), policy).unwrap();
        Env {
            dir,
            state,
            policies,
            creds: HashMap::new(),
        }
    }

    /// `jitsh user add NAME --state STATE EXTRA...`: the credential is alone on the last line.
    pub fn add_user(&mut self, name: &str, extra: &[&str]) -> String {
        let out = Command::new(JITSH)
            .args(["user", "add", name, "--state"])
            .arg(&self.state)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let cred = stdout.lines().last().unwrap().to_owned();
        assert!(cred.starts_with("jitsh_"), "{stdout}");
        self.creds.insert(name.to_owned(), cred.clone());
        cred
    }

    pub fn cred(&self, name: &str) -> String {
        self.creds[name].clone()
    }

    /// Every record of the audit log, in order.
    pub fn audit(&self) -> Vec<Value> {
        audit_records(&self.state.join("audit"))
    }

    pub fn start(&self, extra: &[&str]) -> Server {
        Server::start(self, extra, None)
    }

    /// Start under `ulimit -n fds`.
    pub fn start_with_fd_limit(&self, fds: u32, extra: &[&str]) -> Server {
        Server::start(self, extra, Some(fds))
    }
}

/// Every complete record of the audit log in `dir`, in order. A running service may be in the
/// middle of appending one: a last line without its newline is that record in flight, not yet in
/// the log, so a poll skips it; every complete line must be a record.
pub fn audit_records(dir: &std::path::Path) -> Vec<Value> {
    let files = jitsh::audit::log::log_files(dir).unwrap_or_default();
    let mut records = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        for (n, line) in complete.lines().enumerate() {
            let record = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not a record: {e}", f.display(), n + 1));
            records.push(record);
        }
    }
    records
}

/// A running `jitsh serve`; killed when dropped.
pub struct Server {
    child: Child,
    /// Its standard input, held open (`serve --exit-with-stdin` stops when it closes).
    pub stdin: Option<std::process::ChildStdin>,
    pub url: String,
    pub addr: String,
    pub http: reqwest::Client,
}

impl Server {
    fn start(env: &Env, extra: &[&str], fds: Option<u32>) -> Server {
        let mut cmd = match fds {
            None => Command::new(JITSH),
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), JITSH]);
                c
            }
        };
        let mut child = cmd
            .arg("serve")
            .arg("--state")
            .arg(&env.state)
            .arg("--policies")
            .arg(&env.policies)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
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
        let addr = url.trim_start_matches("http://").to_owned();
        Server {
            child,
            stdin,
            url,
            addr,
            http: reqwest::Client::new(),
        }
    }

    /// Sends `signal` (`TERM`, `INT`, ...) to the service process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Whether the process has ended within `within`.
    pub fn exits_within(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// One API call; the body parsed as JSON (or kept as a string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        cred: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        api_call(&self.http, &self.url, method, path, cred, body).await
    }

    /// A call with a raw body and a raw `Authorization` header.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        authorization: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    /// A `jitsh` client command against this server with `cred` in JITSH_CREDENTIAL.
    pub async fn jitsh(&self, cred: &str, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (url, cred) = (self.url.clone(), cred.to_owned());
        tokio::task::spawn_blocking(move || {
            Command::new(JITSH)
                .args(&args)
                .env("JITSH_SERVER", url)
                .env("JITSH_CREDENTIAL", cred)
                .env("XDG_CONFIG_HOME", "/nonexistent")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// File a request over the API; returns its id.
    pub async fn file(&self, cred: &str, task: &str, reason: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/v1/requests",
                cred,
                Some(serde_json::json!({ "task": task, "reason": reason, "duration": "30m" })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One API call against `url`, with `cred` as bearer credential (none when empty); the body
/// parsed as JSON, or kept as a string.
pub async fn api_call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    path: &str,
    cred: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, format!("{url}{path}"));
    if !cred.is_empty() {
        req = req.bearer_auth(cred);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    answer(req.send().await.unwrap()).await
}

/// A response's status and body: JSON when it parses, else the text as a string.
async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
