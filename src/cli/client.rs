//! Client commands for the approval service: `request`, `requests`, `approve`, `deny`,
//! `withdraw`, `revoke`, `lock`, `review`, and `token fetch` (through [`token_fetch`]).
//!
//! The server comes from `--server`, else `JITSH_SERVER`, else `~/.config/jitsh/config.toml`
//! (`server = "..."`); the credential from `--credential-file FILE`, else `JITSH_CREDENTIAL`,
//! else the same file (`credential = "..."`). A credential is never taken from the command line,
//! where every local user sees it (`ps`). Exit status: 0 success, 1 the service refused, 3 usage
//! or connection.
//!
//! Everything the service returns that people wrote (reasons, comments, task names) is shown
//! through [`crate::text::escape`]. `approve` and `deny` first fetch and restate the request,
//! then send the digest of what they showed; the service refuses if it differs.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::api::{ApiClient, CallError, Timeouts};
use crate::text::escape;

/// Exit status when the service answered with a refusal.
const EXIT_REFUSED: u8 = 1;

/// Where the service is and who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Service URL, e.g. http://127.0.0.1:8750 [env: JITSH_SERVER]
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// File holding the credential from `jitsh user add` [env: JITSH_CREDENTIAL]
    #[arg(long, value_name = "FILE")]
    credential_file: Option<std::path::PathBuf>,
    /// Refused: a credential on the command line is visible to every local user.
    #[arg(long, value_name = "CREDENTIAL", hide = true)]
    credential: Option<String>,
    /// Print the service's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RequestArgs {
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
pub(crate) struct RequestsArgs {
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
pub(crate) struct ApproveArgs {
    /// Request id.
    id: String,
    /// Note for the record.
    #[arg(long)]
    comment: Option<String>,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DenyArgs {
    /// Request id.
    id: String,
    /// Why (sent to the requester).
    #[arg(long)]
    comment: String,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub(crate) struct WithdrawArgs {
    /// Id of your pending request.
    id: String,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RevokeArgs {
    /// Request id whose grant ends now.
    id: String,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LockArgs {
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
            let id = shown(v, "id");
            if str_of(v, "status") == "approved" {
                eprintln!("approved at once by rule `{}`; fetch the token with `jitsh token fetch {id} --out FILE`", shown(v, "rule"));
            } else {
                eprintln!(
                    "waiting for approval by {} under rule `{}`",
                    list(v.get("approvers")),
                    shown(v, "rule")
                );
            }
            println!("{id}");
        },
    )
}

/// Most pages `jitsh requests` follows (500 requests each).
const MAX_PAGES: usize = 100;

pub fn requests(a: RequestsArgs) -> ExitCode {
    let mut query = vec!["limit=500".to_owned()];
    if a.pending {
        query.push("status=pending".to_owned());
    }
    if let Some(s) = &a.status {
        query.push(format!("status={}", urlencode(s)));
    }
    if a.mine {
        query.push("mine=true".to_owned());
    }
    let base = format!("/v1/requests?{}", query.join("&"));
    // Every page, following `next_cursor`, so nothing pending is ever left off.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let path = match &cursor {
            None => base.clone(),
            Some(c) => format!("{base}&cursor={}", urlencode(c)),
        };
        let page = match call(&a.conn, reqwest::Method::GET, &path, None) {
            Ok(v) => v,
            Err(e) => return report(e),
        };
        if let Some(items) = page.get("requests").and_then(Value::as_array) {
            all.extend(items.iter().cloned());
        }
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    if a.conn.json {
        println!("{}", json!({ "requests": all }));
        return ExitCode::SUCCESS;
    }
    if all.is_empty() {
        println!("no requests");
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<22} {:<9} {:<12} {:<28} {:<7} REASON",
        "ID", "STATUS", "REQUESTER", "TASK", "FOR"
    );
    for r in &all {
        let target = r
            .get("task")
            .and_then(Value::as_str)
            .or_else(|| r.get("role").and_then(Value::as_str))
            .unwrap_or("");
        println!(
            "{:<22} {:<9} {:<12} {:<28} {:<7} {}",
            shown(r, "id"),
            shown(r, "status"),
            shown(r, "requester"),
            escape(target),
            shown(r, "duration"),
            shown(r, "reason")
        );
    }
    if cursor.is_some() {
        eprintln!("jitsh: more than {MAX_PAGES} pages; narrow the listing with --status or --mine");
    }
    ExitCode::SUCCESS
}

pub fn approve(a: ApproveArgs) -> ExitCode {
    let digest = match restate(&a.conn, &a.id) {
        Ok(d) => d,
        Err(e) => return report(e),
    };
    let body = json!({ "comment": a.comment, "digest": digest });
    let path = format!("/v1/requests/{}/approve", urlencode(&a.id));
    run(&a.conn, reqwest::Method::POST, &path, Some(body), |v| {
        if str_of(v, "status") == "approved" {
            let exp = v
                .get("grant")
                .and_then(|g| g.get("exp"))
                .and_then(Value::as_str)
                .unwrap_or("");
            println!(
                "approved {} (grant valid until {})",
                shown(v, "id"),
                escape(exp)
            );
        } else {
            let have = v
                .get("approvals")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            println!(
                "approval recorded for {} ({have} of {} needed)",
                shown(v, "id"),
                v.get("min_approvals").and_then(Value::as_u64).unwrap_or(1)
            );
        }
    })
}

pub fn deny(a: DenyArgs) -> ExitCode {
    let digest = match restate(&a.conn, &a.id) {
        Ok(d) => d,
        Err(e) => return report(e),
    };
    let body = json!({ "comment": a.comment, "digest": digest });
    let path = format!("/v1/requests/{}/deny", urlencode(&a.id));
    run(&a.conn, reqwest::Method::POST, &path, Some(body), |v| {
        println!("denied {}", shown(v, "id"));
    })
}

/// Fetch the request, show everything an approver decides on (on stderr, escaped), and return
/// the digest of what was shown.
fn restate(conn: &Connection, id: &str) -> Result<String, ClientError> {
    let path = format!("/v1/requests/{}", urlencode(id));
    let v = call(conn, reqwest::Method::GET, &path, None)?;
    eprint!("{}", restatement(&v));
    Ok(crate::service::workflow::request_digest(&v))
}

/// The request as an approver reads it; one escaped value per line.
fn restatement(v: &Value) -> String {
    let text = |key: &str| match v.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(escape(s).into_owned()),
        Some(other) => Some(escape(&other.to_string()).into_owned()),
    };
    let or = |key: &str, none: &str| text(key).unwrap_or_else(|| none.to_owned());
    let target = match (text("task"), text("role")) {
        (Some(t), _) => format!("task {t}"),
        (None, Some(r)) => format!("role {r} (tasks {})", or("tasks", "?")),
        (None, None) => "?".to_owned(),
    };
    let params = v
        .get("params")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .map_or_else(
            || "any parameters the rule allows".to_owned(),
            |m| {
                m.iter()
                    .map(|(k, val)| {
                        let val = val.as_str().map_or_else(|| val.to_string(), str::to_owned);
                        format!("{}={}", escape(k), escape(&val))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
    format!(
        "request    {} ({})\nrequester  {}\nasks for   {target}\nrule       {}\nscope      {params}\nconstraint {}\ncommand    {}\nuses       {}\nduration   {}\nreason     {}\nticket     {}\n",
        or("id", "?"),
        or("status", "?"),
        or("requester", "?"),
        or("rule", "?"),
        or("grant_params", "none"),
        or("command", "any"),
        or("uses", "unlimited"),
        or("duration", "?"),
        or("reason", ""),
        or("ticket", "none"),
    )
}

pub fn withdraw(a: WithdrawArgs) -> ExitCode {
    let path = format!("/v1/requests/{}/withdraw", urlencode(&a.id));
    run(
        &a.conn,
        reqwest::Method::POST,
        &path,
        Some(json!({})),
        |v| println!("withdrew {}", shown(v, "id")),
    )
}

pub fn revoke(a: RevokeArgs) -> ExitCode {
    let path = format!("/v1/requests/{}/revoke", urlencode(&a.id));
    run(
        &a.conn,
        reqwest::Method::POST,
        &path,
        Some(json!({})),
        |v| {
            println!("revoked {}", shown(v, "id"));
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
            Some(t) => println!("locked {} until {}", escape(&scope), escape(t)),
            None => println!("locked {} until cleared", escape(&scope)),
        },
    )
}

/// `jitsh review`: the reviews of system accounts' sessions.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    command: ReviewCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReviewCommand {
    /// Reviews still open (or all of them with --all).
    List {
        /// Acknowledged reviews too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// One review with what ran in its session.
    Show {
        /// Review id.
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Acknowledge a review (a member of the admin group, never the account itself).
    Ack {
        /// Review id.
        id: String,
        /// Note for the record.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
}

pub fn review(a: ReviewArgs) -> ExitCode {
    match a.command {
        ReviewCommand::List { all, conn } => {
            let path = if all {
                "/v1/reviews?status=all"
            } else {
                "/v1/reviews"
            };
            run(&conn, reqwest::Method::GET, path, None, |v| {
                let items = v
                    .get("reviews")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if items.is_empty() {
                    println!("no {}reviews", if all { "" } else { "open " });
                }
                for r in &items {
                    println!("{}", review_line(r));
                }
            })
        }
        ReviewCommand::Show { id, conn } => {
            let path = format!("/v1/reviews/{}", urlencode(&id));
            run(&conn, reqwest::Method::GET, &path, None, |v| {
                println!("{}", review_line(v));
                if let Some(by) = v.get("acked_by").and_then(Value::as_str) {
                    println!(
                        "acknowledged by {} at {}{}",
                        escape(by),
                        shown(v, "acked_at"),
                        v.get("comment")
                            .and_then(Value::as_str)
                            .map(|c| format!(": {}", escape(c)))
                            .unwrap_or_default()
                    );
                }
                for line in v
                    .get("ran")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    println!("  {}", escape(line));
                }
            })
        }
        ReviewCommand::Ack { id, comment, conn } => {
            let path = format!("/v1/reviews/{}/ack", urlencode(&id));
            run(
                &conn,
                reqwest::Method::POST,
                &path,
                Some(json!({ "comment": comment })),
                |v| {
                    println!(
                        "acknowledged review {}",
                        v.get("id").unwrap_or(&Value::Null)
                    )
                },
            )
        }
    }
}

/// `ID  STATUS  ACCOUNT  session SESSION  started START  N command(s)`.
fn review_line(r: &Value) -> String {
    format!(
        "{}  {}  {}  session {}  started {}  {} command(s)",
        r.get("id").unwrap_or(&Value::Null),
        shown(r, "status"),
        shown(r, "account"),
        shown(r, "session"),
        shown(r, "started_at"),
        r.get("commands").and_then(Value::as_u64).unwrap_or(0)
    )
}

/// `jitsh token fetch ID --out FILE`: write the signed token of an approved request to `out`
/// (mode 0600). `server`/`credential_file` fall back like every client command.
pub(crate) fn token_fetch(
    server: Option<String>,
    credential_file: Option<std::path::PathBuf>,
    id: &str,
    out: &Path,
) -> ExitCode {
    let conn = Connection {
        server,
        credential_file,
        credential: None,
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
                "wrote the token of {} to {} (valid until {})",
                escape(id),
                out.display(),
                shown(v, "exp")
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
    #[error("no credential configured; pass `--credential-file FILE`, set JITSH_CREDENTIAL, or write `credential = \"...\"` in {0}")]
    NoCredential(String),
    #[error("a credential on the command line is visible to every local user (`ps`); put it in a file for `--credential-file FILE`, or in JITSH_CREDENTIAL")]
    CredentialOnCommandLine,
    #[error("credential file `{path}` could not be read: {message}")]
    CredentialFile { path: String, message: String },
    #[error("could not reach the service at `{server}`: {message}; check that it runs and the URL is right")]
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
    if conn.credential.is_some() {
        return Err(ClientError::CredentialOnCommandLine);
    }
    let from_file = match &conn.credential_file {
        None => None,
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map(|t| t.trim().to_owned())
                .map_err(|e| ClientError::CredentialFile {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?,
        ),
    };
    let credential = from_file
        .filter(|c| !c.is_empty())
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
        Err(e) => report(e),
    }
}

/// Say why a command got no answer, with the matching exit status.
fn report(e: ClientError) -> ExitCode {
    match e {
        e @ ClientError::Refused { .. } => {
            eprintln!("jitsh: the service refused: {}", escape(&e.to_string()));
            ExitCode::from(EXIT_REFUSED)
        }
        e => super::fail(e),
    }
}

fn call(
    conn: &Connection,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let (server, credential) = resolve(conn)?;
    ApiClient::new(&server, Some(credential), Timeouts::COMMAND)
        .and_then(|client| client.call_blocking(method, path, body.as_ref()))
        .map_err(|e| match e {
            CallError::Unreachable { server, message } => ClientError::Connect { server, message },
            CallError::Refused { code, message, .. } => ClientError::Refused { code, message },
            e => ClientError::Other(e.to_string()),
        })
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A string field of an answer, escaped for the terminal.
fn shown(v: &Value, key: &str) -> String {
    escape(str_of(v, key)).into_owned()
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
        .map(|s| escape(&s).into_owned())
        .unwrap_or_else(|| "an approver".into())
}

/// Percent-encode a path or query component.
fn urlencode(s: &str) -> String {
    crate::api::segment(s)
}
