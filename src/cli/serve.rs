//! `jitsh serve` (the approval service) and `jitsh user` (its directory of users).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::service::{self, Directory};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// State folder: database, signing key pair, directory, audit log.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stderr). An
    /// address other than loopback needs --tls-cert and --tls-key (or --insecure-http).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8750")]
    listen: String,
    /// Serve HTTPS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (only behind a proxy that terminates
    /// TLS, or on a network you trust with credentials and tokens in clear text).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_http: bool,
    /// Keep requests, grants, locks and the outbox in this PostgreSQL database
    /// (`postgres://USER@HOST:PORT/DB`) instead of STATE/jitsh.db; several replicas may share
    /// it. Contains a password if the URL does: prefer the environment variable.
    #[arg(long, value_name = "URL", env = "JITSH_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Policy folder (every `*.toml` in it). Default: `policies` in the settings
    /// (/etc/jitsh/config.toml, ~/.config/jitsh/config.toml).
    #[arg(
        long,
        value_name = "DIR",
        env = "JITSH_POLICIES",
        hide_env_values = true
    )]
    policies: Option<PathBuf>,
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
    /// A client must send a request's headers within this time.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = service::parse_duration)]
    header_timeout: std::time::Duration,
    /// Close a connection when no bytes moved for this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = service::parse_duration)]
    idle_timeout: std::time::Duration,
    /// Open connections at most (lowered to fit the descriptor limit); when full, the oldest
    /// connection with no request in progress is closed.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Requests one user may file per hour (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 60)]
    max_requests_per_hour: u32,
    /// Requests one user may have pending at once (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 20)]
    max_pending: u32,
    /// Stop (cleanly) when standard input reaches its end: the demo service a `jitsh shell`
    /// session starts in a process of its own ends with that shell, however the shell ends.
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UserArgs {
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
    /// Who this account belongs to, when the email does not tell: two accounts of one person
    /// never approve each other's requests nor count twice toward a quorum.
    #[arg(long, value_name = "KEY")]
    person: Option<String>,
    /// State folder of the service.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Directory file (default STATE/directory.toml).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
    /// The PostgreSQL store of a service running on STATE (its `--store`): the audit event
    /// waits there for the service.
    #[arg(long, value_name = "URL", env = "JITSH_STORE", hide_env_values = true)]
    store: Option<String>,
}

#[derive(Debug, clap::Args)]
struct UserListArgs {
    /// State folder of the service.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Directory file (default STATE/directory.toml).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
    /// The PostgreSQL store of the service (its `--store`): list the directory kept there.
    #[arg(long, value_name = "URL", env = "JITSH_STORE", hide_env_values = true)]
    store: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    // A service never falls back to demo policies: its folder is always named.
    let policies = match super::common::policy_dir(args.policies.clone(), false) {
        Ok(dir) => dir,
        Err(e) => return super::fail(e),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match service::tls::server_config(cert, key) {
            Ok(c) => {
                warn_if_shared(key);
                Some(c)
            }
            Err(e) => return super::fail(e),
        },
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = service::Config {
        state: args.state,
        policies,
        directory: args.directory,
        smtp: args.smtp,
        mail_from: args.mail_from,
        webhook: args.webhook,
        pending_ttl: args.pending_ttl,
        syslog: args.syslog,
        tls,
        store: args.store,
        limits: service::Limits {
            connections: service::listen::ConnLimits {
                header_timeout: args.header_timeout,
                idle_timeout: args.idle_timeout,
                max_connections: args.max_connections,
            },
            requests: service::workflow::RequestLimits {
                per_hour: args.max_requests_per_hour,
                pending: args.max_pending,
            },
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail(format!("could not start the runtime: {e}")),
    };
    let listen = args.listen;
    let insecure_http = args.insecure_http;
    let exit_with_stdin = args.exit_with_stdin;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
            service::ServeError::Bind {
                addr: listen.clone(),
                message: e.to_string(),
            }
        })?;
        // The address actually bound decides (a host name may resolve anywhere).
        let bound = listener
            .local_addr()
            .map_err(|e| service::ServeError::Server(e.to_string()))?;
        if config.tls.is_none() && !insecure_http && !bound.ip().is_loopback() {
            return Err(service::ServeError::Setup(cleartext_refusal(&listen)));
        }
        service::serve(
            &config,
            listener,
            |addr| {
                announce_keys(&config.state);
                // One write: a reader of the log never sees the line without its address.
                let line = format!("listening on {scheme}://{addr}\n");
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
            },
            async move {
                if exit_with_stdin {
                    tokio::select! {
                        () = shutdown_signal() => {}
                        () = stdin_closed() => tracing::info!("standard input closed"),
                    }
                } else {
                    shutdown_signal().await;
                }
            },
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}

/// The TLS private key should be readable by the service's account only.
fn warn_if_shared(key: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(key) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "jitsh: warning: the TLS key `{}` is readable by other users (mode {mode:o}); `chmod 600` it",
                key.display()
            );
        }
    }
}

/// Why `serve` will not speak plain HTTP on a network address, and what to do instead.
fn cleartext_refusal(listen: &str) -> String {
    format!(
        "refusing to serve plain HTTP on `{listen}`, which is not a loopback address, because credentials and tokens would cross the network unencrypted: pass --tls-cert FILE --tls-key FILE, or --insecure-http if a TLS proxy in front of jitsh protects the path"
    )
}

/// Print the signing key's fingerprint, which users compare when they run `jitsh login`.
fn announce_keys(state: &std::path::Path) {
    // The service has just loaded (or made) this key; read it the same way.
    if let Ok(signer) = service::ports::Signer::load_or_create(state) {
        let key = signer.public_key();
        eprintln!(
            "token signing key {} (SHA-256 {}): users check this when they run `jitsh login`",
            key.kid(),
            key.fingerprint()
        );
    }
}

/// Standard input at its end (or unreadable): what was given is discarded. The blocking read
/// runs on a thread of its own, outside the runtime: tokio's stdin reads on a blocking task
/// that cannot be cancelled, and the runtime would wait for it at shutdown, so a SIGTERM
/// with stdin still open would never end the process.
async fn stdin_closed() {
    let (done, closed) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("jitsh-stdin".into())
        .spawn(move || {
            use std::io::Read as _;
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 64];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Err(e) if e.kind() != std::io::ErrorKind::Interrupted => break,
                    _ => {}
                }
            }
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = closed.await;
        }
        // Without the watcher the service would never stop on its own: stop now.
        Err(e) => tracing::warn!("cannot watch standard input ({e}); stopping"),
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
    let mut details = serde_json::Map::new();
    details.insert("groups".into(), a.groups.clone().into());
    details.insert("roles".into(), a.roles.clone().into());
    details.insert("via".into(), "cli".into());
    if let Some(p) = &a.person {
        details.insert("person".into(), p.clone().into());
    }
    let event = crate::audit::AuditEvent {
        time: service::rfc3339(chrono::Utc::now().timestamp()),
        actor: std::env::var("USER").unwrap_or_else(|_| "local".into()),
        action: "user.add".into(),
        subject: a.name.clone(),
        outcome: "ok".into(),
        details,
    };
    // With the PostgreSQL store the directory lives there: one step adds the user and
    // appends the audit record, and every replica sees the user at once.
    if let Some(url) = a.store.as_deref() {
        return match add_in_postgres(url, &a, &path, event) {
            Ok(credential) => {
                println!(
                    "added user {} (groups: {}; roles: {}) to the PostgreSQL store; the credential below is shown only now:",
                    a.name,
                    list_or_none(&a.groups),
                    list_or_none(&a.roles),
                );
                println!("{}", credential.expose());
                ExitCode::SUCCESS
            }
            Err(e) => super::fail(e),
        };
    }
    // A service on PostgreSQL reads neither this file nor this folder's audit log.
    if a.state.join(service::POSTGRES_MARKER).exists() {
        return super::fail(
            "the service on this state folder keeps its directory in PostgreSQL: pass its --store URL (or JITSH_STORE)",
        );
    }
    // Under the directory's write lock, on the file as it is now (the service and other
    // `user add` runs write it too). No audit record, no user: while the service runs it holds
    // the audit log; the event then waits durably in the state database and the service
    // appends it.
    let added = Directory::update(&path, |dir| {
        let credential =
            dir.add_user(&a.name, a.email.clone(), a.groups.clone(), a.roles.clone())?;
        dir.set_person(&a.name, a.person.clone());
        record_audit(&a.state, event).map_err(service::directory::DirectoryError::Refused)?;
        Ok::<_, service::directory::DirectoryError>(credential)
    });
    let credential = match added {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
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

/// The PostgreSQL store at `url`, on a runtime of its own (kept alive with it).
pub(super) fn open_postgres(
    url: &str,
) -> Result<
    (
        tokio::runtime::Runtime,
        std::sync::Arc<service::postgres::PgStore>,
    ),
    String,
> {
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err("--store takes a `postgres://` URL".into());
    }
    // The store blocks on a runtime that drives its connections, from a thread outside it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    let store = service::postgres::PgStore::open(url, rt.handle().clone())
        .map_err(|e| format!("PostgreSQL store: {e}"))?;
    Ok((rt, std::sync::Arc::new(store)))
}

/// Add the user to the directory in the PostgreSQL store, audited in the same step.
fn add_in_postgres(
    url: &str,
    a: &UserAddArgs,
    directory_file: &std::path::Path,
    event: crate::audit::AuditEvent,
) -> Result<service::directory::Credential, String> {
    let (_rt, pg) = open_postgres(url)?;
    let local = service::ports::Signer::load_or_create(&a.state)?;
    let (_, audit) =
        service::join_postgres(&pg, &local, directory_file, service::pg_chain::GENESIS_ONLY)?;
    let mut credential = None;
    service::Store::change_directory(
        pg.as_ref(),
        &mut |dir| {
            let c = dir.add_user(&a.name, a.email.clone(), a.groups.clone(), a.roles.clone())?;
            dir.set_person(&a.name, a.person.clone());
            credential = Some(c);
            Ok(())
        },
        &mut |()| {
            crate::audit::AuditSink::append(audit.as_ref(), event.clone())?;
            Ok(Vec::new())
        },
    )
    .map_err(|e| e.to_string())?;
    credential.ok_or_else(|| "the user was not added".to_owned())
}

fn user_list(a: UserListArgs) -> ExitCode {
    let path = a
        .directory
        .unwrap_or_else(|| a.state.join("directory.toml"));
    let loaded = match a.store.as_deref() {
        Some(url) => open_postgres(url).and_then(|(_rt, pg)| {
            service::Store::load_directory(pg.as_ref())
                .map(|(_, dir)| dir)
                .map_err(|e| e.to_string())
        }),
        None => Directory::load(&path).map_err(|e| e.to_string()),
    };
    match loaded {
        Ok(dir) => {
            for u in &dir.users {
                // The file is hand-editable: every field escaped for the terminal.
                let esc = |t: &str| crate::text::escape(t).into_owned();
                println!(
                    "{}\t{}\tperson: {}\tgroups: {}\troles: {}",
                    esc(&u.name),
                    esc(u.email.as_deref().unwrap_or("-")),
                    esc(&service::directory::person_key(u)),
                    esc(&list_or_none(&u.groups)),
                    esc(&list_or_none(&u.roles))
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
