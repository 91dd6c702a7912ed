//! `jitsh serve` (the approval service) and `jitsh user` (its directory of users).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::service::{self, Directory};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// State folder: database, signing key pair, directory, audit log.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stderr).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8750")]
    listen: String,
    /// Policy folder (every `*.toml` in it).
    #[arg(long, value_name = "DIR", default_value = "policies")]
    policies: PathBuf,
    /// Directory of users (default STATE/directory.toml).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
    /// SMTP relay for mail, plain SMTP without TLS (a relay on loopback or a trusted network).
    #[arg(long, value_name = "HOST:PORT")]
    smtp: Option<String>,
    /// Sender address of notification mail.
    #[arg(long, value_name = "ADDR", default_value = "jitsh@localhost")]
    mail_from: String,
    /// URL that receives a JSON POST (`{"text": ...}`) for every request and decision. Chat
    /// webhook URLs are secrets: prefer the environment variable over the command line.
    #[arg(
        long,
        value_name = "URL",
        env = "JITSH_WEBHOOK",
        hide_env_values = true
    )]
    webhook: Option<String>,
    /// Syslog collector (`tcp://HOST:PORT` or `udp://HOST:PORT`) that receives every audit
    /// checkpoint as it is written: a witness of the log's head off this host.
    #[arg(long, value_name = "URL")]
    syslog: Option<crate::audit::ForwardTarget>,
    /// How long a request may wait for a decision before it expires.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = service::parse_duration)]
    pending_ttl: std::time::Duration,
}

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user; prints their credential once, alone on the last line.
    Add(UserAddArgs),
    /// List users and their groups and roles.
    List(UserListArgs),
}

#[derive(Debug, clap::Args)]
struct UserAddArgs {
    /// User name (letters, digits, `.`, `_`, `-`).
    name: String,
    /// Groups, comma-separated (approver groups, requester groups).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Roles, comma-separated (`global-admin`, ...).
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// Mail address for notifications.
    #[arg(long)]
    email: Option<String>,
    /// State folder of the service.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Directory file (default STATE/directory.toml).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct UserListArgs {
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let config = service::Config {
        state: args.state,
        policies: args.policies,
        directory: args.directory,
        smtp: args.smtp,
        mail_from: args.mail_from,
        webhook: args.webhook,
        pending_ttl: args.pending_ttl,
        syslog: args.syslog,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail(format!("could not start the runtime: {e}")),
    };
    let listen = args.listen;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
            service::ServeError::Bind {
                addr: listen.clone(),
                message: e.to_string(),
            }
        })?;
        service::serve(
            &config,
            listener,
            |addr| eprintln!("listening on http://{addr}"),
            shutdown_signal(),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

pub fn user(args: UserArgs) -> ExitCode {
    match args.command {
        UserCommand::Add(a) => user_add(a),
        UserCommand::List(a) => user_list(a),
    }
}

fn user_add(a: UserAddArgs) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&a.state) {
        return super::fail(format!(
            "state folder `{}` could not be created: {e}",
            a.state.display()
        ));
    }
    let path = a
        .directory
        .clone()
        .unwrap_or_else(|| a.state.join("directory.toml"));
    let mut dir = match Directory::load(&path) {
        Ok(d) => d,
        Err(e) => return super::fail(e),
    };
    let credential = match dir.add_user(&a.name, a.email.clone(), a.groups.clone(), a.roles.clone())
    {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    let mut details = serde_json::Map::new();
    details.insert("groups".into(), a.groups.clone().into());
    details.insert("roles".into(), a.roles.clone().into());
    details.insert("via".into(), "cli".into());
    let event = crate::audit::AuditEvent {
        time: service::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()),
        actor: std::env::var("USER").unwrap_or_else(|_| "local".into()),
        action: "user.add".into(),
        subject: a.name.clone(),
        outcome: "ok".into(),
        details,
    };
    // No audit record, no user. While the service runs it holds the audit log; the event then
    // waits durably in the state database and the service appends it.
    if let Err(e) = record_audit(&a.state, event) {
        return super::fail(e);
    }
    if let Err(e) = dir.save(&path) {
        return super::fail(e);
    }
    println!(
        "added user {} (groups: {}; roles: {}) to {}; the credential below is shown only now:",
        a.name,
        list_or_none(&a.groups),
        list_or_none(&a.roles),
        path.display()
    );
    println!("{}", credential.expose());
    ExitCode::SUCCESS
}

fn record_audit(state: &std::path::Path, event: crate::audit::AuditEvent) -> Result<(), String> {
    let signer = service::ports::Signer::load_or_create(state)?;
    match service::ports::open_audit(state, &signer) {
        Ok(log) => {
            crate::audit::AuditSink::append(log.as_ref(), event).map_err(|e| e.to_string())?;
            log.close().map_err(|e| e.to_string())
        }
        Err(service::ports::OpenAuditError::Locked(_)) => {
            let store = service::sqlite::SqliteStore::open(&state.join("jitsh.db"))
                .map_err(|e| e.to_string())?;
            service::Store::queue_audit(&store, &event).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn user_list(a: UserListArgs) -> ExitCode {
    let path = a
        .directory
        .unwrap_or_else(|| a.state.join("directory.toml"));
    match Directory::load(&path) {
        Ok(dir) => {
            for u in &dir.users {
                println!(
                    "{}\t{}\tgroups: {}\troles: {}",
                    u.name,
                    u.email.as_deref().unwrap_or("-"),
                    list_or_none(&u.groups),
                    list_or_none(&u.roles)
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(",")
    }
}
