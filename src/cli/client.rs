//! Client commands for the approval service: `request`, `requests`, `approve`, `deny`, `revoke`,
//! `lock`, and `token fetch` (through [`token_fetch`]).
//!
//! The server and credential come from `--server`/`--credential`, else `JITSH_SERVER` /
//! `JITSH_CREDENTIAL`, else `~/.config/jitsh/config.toml` (`server = "..."`,
//! `credential = "..."`). Exit status: 0 success, 1 the service refused, 3 usage or connection.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

/// Exit status when the service answered with a refusal.
const EXIT_REFUSED: u8 = 1;

/// Where the service is and who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Service URL, e.g. http://127.0.0.1:8750 [env: JITSH_SERVER]
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Credential from `jitsh user add` [env: JITSH_CREDENTIAL]
    #[arg(long, value_name = "CREDENTIAL")]
    credential: Option<String>,
    /// Print the service's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// Task (cmdlet) to ask for.
    #[arg(long, required_unless_present = "role", conflicts_with = "role")]
    task: Option<String>,
    /// Policy role (a named set of tasks) to ask for.
    #[arg(long)]
    role: Option<String>,
    /// Why the access is needed (shown to approvers and audited).
    #[arg(long)]
    reason: String,
    /// How long the grant should last once approved, e.g. 1h or 30m.
    #[arg(long = "for", value_name = "DURATION")]
    duration: String,
    /// Pin a parameter value: the grant covers only this value (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Grant only this exact command line.
    #[arg(long, value_name = "LINE")]
    command: Option<String>,
    /// Number of uses the grant allows.
    #[arg(long, value_name = "N")]
    uses: Option<u32>,
    /// Change or incident ticket reference.
    #[arg(long, value_name = "T")]
    ticket: Option<String>,
    /// Use this rule when several cover the task.
    #[arg(long, value_name = "ID")]
    rule: Option<String>,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub struct RequestsArgs {
    /// Only pending requests.
    #[arg(long, conflicts_with = "status")]
    pending: bool,
    /// Only requests of one status (pending, approved, denied, expired, revoked).
    #[arg(long)]
    status: Option<String>,
    /// Only my own requests.
    #[arg(long)]
    mine: bool,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// Request id.
    id: String,
    /// Note for the record.
    #[arg(long)]
    comment: Option<String>,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub struct DenyArgs {
    /// Request id.
    id: String,
    /// Why (sent to the requester).
    #[arg(long)]
    comment: String,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Request id whose grant ends now.
    id: String,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// `user:NAME`, `rule:ID` or `all`.
    #[arg(value_name = "SCOPE", required_unless_present = "clear")]
    scope: Option<String>,
    /// Remove the lock on SCOPE instead.
    #[arg(long, value_name = "SCOPE", conflicts_with_all = ["scope", "reason", "duration"])]
    clear: Option<String>,
    /// Why (audited).
    #[arg(long, required_unless_present = "clear")]
    reason: Option<String>,
    /// Lift the lock automatically after this long (default: until cleared).
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
    #[command(flatten)]
    conn: Connection,
}

pub fn request(a: RequestArgs) -> ExitCode {
    // The token this request may become is useless without the service's key: say so now.
    if let Err(code) = trusted(a.conn.server.as_deref()) {
        return code;
    }
    let mut params = serde_json::Map::new();
    for p in &a.params {
        match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                params.insert(k.trim().trim_start_matches('-').to_owned(), v.into());
            }
            _ => {
                return super::fail(format!(
                    "`--param {p}` must be NAME=VALUE, e.g. `--param Identity=bob@contoso.com`"
                ))
            }
        }
    }
    let mut body = serde_json::Map::new();
    body.insert("reason".into(), a.reason.clone().into());
    body.insert("duration".into(), a.duration.clone().into());
    let optional = [
        ("task", a.task.clone().map(Value::from)),
        ("role", a.role.clone().map(Value::from)),
        ("command", a.command.clone().map(Value::from)),
        ("uses", a.uses.map(Value::from)),
        ("ticket", a.ticket.clone().map(Value::from)),
        ("rule", a.rule.clone().map(Value::from)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            body.insert(key.into(), value);
        }
    }
    if !params.is_empty() {
        body.insert("params".into(), Value::Object(params));
    }
    let body = Value::Object(body);
    run(
        &a.conn,
        reqwest::Method::POST,
        "/v1/requests",
        Some(body),
        |v| {
            let id = str_of(v, "id");
            if str_of(v, "status") == "approved" {
                eprintln!("approved at once by rule `{}`; fetch the token with `jitsh token fetch {id} --out FILE`", str_of(v, "rule"));
            } else {
                eprintln!(
                    "waiting for approval by {} under rule `{}`",
                    list(v.get("approvers")),
                    str_of(v, "rule")
                );
            }
            println!("{id}");
        },
    )
}

pub fn requests(a: RequestsArgs) -> ExitCode {
    let mut query = Vec::new();
    if a.pending {
        query.push("status=pending".to_owned());
    }
    if let Some(s) = &a.status {
        query.push(format!("status={}", urlencode(s)));
    }
    if a.mine {
        query.push("mine=true".to_owned());
    }
    let path = if query.is_empty() {
        "/v1/requests".to_owned()
    } else {
        format!("/v1/requests?{}", query.join("&"))
    };
    run(&a.conn, reqwest::Method::GET, &path, None, |v| {
        let items = v.get("requests").and_then(Value::as_array);
        let items = items.map(Vec::as_slice).unwrap_or_default();
        if items.is_empty() {
            println!("no requests");
            return;
        }
        println!(
            "{:<22} {:<9} {:<12} {:<28} {:<7} REASON",
            "ID", "STATUS", "REQUESTER", "TASK", "FOR"
        );
        for r in items {
            let target = r
                .get("task")
                .and_then(Value::as_str)
                .or_else(|| r.get("role").and_then(Value::as_str))
                .unwrap_or("");
            println!(
                "{:<22} {:<9} {:<12} {:<28} {:<7} {}",
                str_of(r, "id"),
                str_of(r, "status"),
                str_of(r, "requester"),
                target,
                str_of(r, "duration"),
                str_of(r, "reason")
            );
        }
    })
}

pub fn approve(a: ApproveArgs) -> ExitCode {
    let body = json!({ "comment": a.comment });
    let path = format!("/v1/requests/{}/approve", urlencode(&a.id));
    run(&a.conn, reqwest::Method::POST, &path, Some(body), |v| {
        if str_of(v, "status") == "approved" {
            let exp = v
                .get("grant")
                .and_then(|g| g.get("exp"))
                .and_then(Value::as_str)
                .unwrap_or("");
            println!("approved {} (grant valid until {exp})", str_of(v, "id"));
        } else {
            let have = v
                .get("approvals")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            println!(
                "approval recorded for {} ({have} of {} needed)",
                str_of(v, "id"),
                v.get("min_approvals").and_then(Value::as_u64).unwrap_or(1)
            );
        }
    })
}

pub fn deny(a: DenyArgs) -> ExitCode {
    let body = json!({ "comment": a.comment });
    let path = format!("/v1/requests/{}/deny", urlencode(&a.id));
    run(&a.conn, reqwest::Method::POST, &path, Some(body), |v| {
        println!("denied {}", str_of(v, "id"));
    })
}

pub fn revoke(a: RevokeArgs) -> ExitCode {
    let path = format!("/v1/requests/{}/revoke", urlencode(&a.id));
    run(
        &a.conn,
        reqwest::Method::POST,
        &path,
        Some(json!({})),
        |v| {
            println!("revoked {}", str_of(v, "id"));
        },
    )
}

pub fn lock(a: LockArgs) -> ExitCode {
    if let Some(scope) = &a.clear {
        return run(
            &a.conn,
            reqwest::Method::DELETE,
            "/v1/locks",
            Some(json!({ "scope": scope })),
            |_| println!("cleared the lock on {scope}"),
        );
    }
    let scope = a.scope.clone().unwrap_or_default();
    let body = json!({ "scope": scope, "reason": a.reason, "expires": a.duration });
    run(
        &a.conn,
        reqwest::Method::POST,
        "/v1/locks",
        Some(body),
        |v| match v.get("expires_at").and_then(Value::as_str) {
            Some(t) => println!("locked {scope} until {t}"),
            None => println!("locked {scope} until cleared"),
        },
    )
}

/// `jitsh token fetch ID --out FILE`: write the signed token of an approved request to `out`
/// (mode 0600). `server`/`credential` fall back like every client command.
pub fn token_fetch(
    server: Option<String>,
    credential: Option<String>,
    id: &str,
    out: &Path,
) -> ExitCode {
    let conn = Connection {
        server,
        credential,
        json: false,
    };
    let trust = match trusted(conn.server.as_deref()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let path = format!("/v1/requests/{}/token", urlencode(id));
    let mut written: Result<(), String> = Ok(());
    let code = run(&conn, reqwest::Method::GET, &path, None, |v| {
        let Some(token) = v.get("token").and_then(Value::as_str) else {
            written = Err("the service answered without a token".into());
            return;
        };
        // Only a token a gate of ours will honour is worth keeping.
        if let Some(Err(e)) = trust.as_ref().map(|t| crate::token::verify(token, t)) {
            written = Err(match e {
                crate::token::TokenError::UnknownKey { .. } => format!(
                    "the token from the service was refused: {e}: {}",
                    super::login::KEY_CHANGED_HINT
                ),
                e => format!("the token from the service was refused: {e}"),
            });
            return;
        }
        written =
            crate::service::directory::write_private_atomic(out, format!("{token}\n").as_bytes())
                .map_err(|e| format!("token file `{}` could not be written: {e}", out.display()));
        if written.is_ok() {
            println!(
                "wrote the token of {id} to {} (valid until {})",
                out.display(),
                str_of(v, "exp")
            );
        }
    });
    match written {
        Err(e) => super::fail(e),
        Ok(()) => code,
    }
}

/// The service signing keys this user trusts (`JITSH_TRUST_KEY`, else what `jitsh login`
/// stored). None yet is not an error here (the smoke path runs these commands with only the
/// server and credential set), but it is said at once, not when a gate refuses the token.
fn trusted(server: Option<&str>) -> Result<Option<crate::token::TrustStore>, ExitCode> {
    let trust = super::common::load_trust(&super::login::trust_key_files(&[]))?;
    if trust.is_empty() {
        eprintln!("jitsh: warning: {}", super::login::no_trusted_key(server));
        return Ok(None);
    }
    Ok(Some(trust))
}

/// Everything that keeps a command from getting an answer.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("no service configured; pass `--server URL`, set JITSH_SERVER, or write `server = \"URL\"` in {0}")]
    NoServer(String),
    #[error("no credential configured; pass `--credential`, set JITSH_CREDENTIAL, or write `credential = \"...\"` in {0}")]
    NoCredential(String),
    #[error("could not reach the service at `{server}`: {message}")]
    Connect { server: String, message: String },
    #[error("{message} ({code})")]
    Refused { code: String, message: String },
    #[error("{0}")]
    Other(String),
}

fn resolve(conn: &Connection) -> Result<(String, String), ClientError> {
    let path = super::common::config_path();
    let file = super::common::client_config();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let shown = path.display().to_string();
    let server = conn
        .server
        .clone()
        .or_else(|| env("JITSH_SERVER"))
        .or(file.server)
        .ok_or_else(|| ClientError::NoServer(shown.clone()))?;
    let credential = conn
        .credential
        .clone()
        .or_else(|| env("JITSH_CREDENTIAL"))
        .or(file.credential)
        .ok_or(ClientError::NoCredential(shown))?;
    Ok((server.trim_end_matches('/').to_owned(), credential))
}

/// Call the service and hand a successful answer to `show` (or print it with `--json`).
fn run(
    conn: &Connection,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    show: impl FnOnce(&Value),
) -> ExitCode {
    match call(conn, method, path, body) {
        Ok(v) => {
            if conn.json {
                println!("{v}");
            } else {
                show(&v);
            }
            ExitCode::SUCCESS
        }
        Err(e @ ClientError::Refused { .. }) => {
            eprintln!("jitsh: the service refused: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e) => super::fail(e),
    }
}

fn call(
    conn: &Connection,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let (server, credential) = resolve(conn)?;
    crate::net::check_credential(&credential).map_err(ClientError::Other)?;
    let url = format!("{server}{path}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Other(format!("could not start the runtime: {e}")))?;
    runtime.block_on(async move {
        let client =
            crate::net::client_for(&server, Duration::from_secs(30), Duration::from_secs(10))
                .map_err(|e| ClientError::Other(e.to_string()))?;
        let mut req = client.request(method, &url).bearer_auth(&credential);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().await.map_err(|e| ClientError::Connect {
            server: server.clone(),
            message: crate::net::describe(&e),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ClientError::Connect {
            server: server.clone(),
            message: e.without_url().to_string(),
        })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else if status == reqwest::StatusCode::UNAUTHORIZED {
            Err(ClientError::Other(
                crate::net::UNKNOWN_CREDENTIAL.to_owned(),
            ))
        } else {
            Err(ClientError::Refused {
                code: value
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("http_error")
                    .to_owned(),
                message: value
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("the service answered {status}")),
            })
        }
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "an approver".into())
}

/// Percent-encode a path or query component.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
