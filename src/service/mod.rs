//! The approval service (`jitsh serve`): requests for privileged tasks, approvals by the rule's
//! approver groups, signed time-bounded grant tokens, revocations and locks for gates, all
//! audited and all durable.
//!
//! Layout: [`store`] (the durable-state trait), [`sqlite`] and [`postgres`] (its
//! implementations; on PostgreSQL [`pg_chain`] keeps the deployment's audit chain and
//! [`pg_keys`] its encrypted signing key),
//! [`directory`] (users and credentials), [`workflow`] (the rules of the game), [`http`] (the
//! REST API, documented in `openapi.json`), [`listen`] (the accept loop: timeouts and a
//! connection cap), [`notify`] (outbox delivery), [`ports`] (what the service needs from
//! policies, tokens and the audit log).
//!
//! Invariants: every state change is one store transaction whose audit record is written before
//! the commit (no audit, no action); secrets (credentials, tokens, keys) never reach logs,
//! mail, webhooks or the audit log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod directory;
pub mod error;
pub mod gate_events;
pub mod http;
pub mod listen;
pub(crate) mod notify;
pub mod pg_chain;
pub mod pg_keys;
pub mod ports;
pub mod postgres;
pub mod sqlite;
pub mod store;
pub mod tls;
pub mod ui;
pub mod workflow;

pub use directory::{Directory, Principal};
pub use error::ApiError;
pub use store::Store;
pub use workflow::Service;

/// How to run the service.
#[derive(Debug, Clone)]
pub struct Config {
    pub state: PathBuf,
    pub policies: PathBuf,
    /// Default `STATE/directory.toml`.
    pub directory: Option<PathBuf>,
    pub smtp: Option<String>,
    pub mail_from: String,
    pub webhook: Option<String>,
    pub pending_ttl: Duration,
    /// Syslog collector that witnesses every audit checkpoint (`tcp://HOST:PORT`).
    pub syslog: Option<crate::audit::ForwardTarget>,
    /// Serve HTTPS with these settings ([`tls::server_config`]); plain HTTP when `None`.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub limits: Limits,
    /// A `postgres://` URL: keep state in that database (shared by replicas) instead of
    /// `STATE/jitsh.db`.
    pub store: Option<String>,
}

/// What one client or one user may take of the service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub connections: listen::ConnLimits,
    pub requests: workflow::RequestLimits,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("state folder `{path}` could not be created: {message}")]
    State { path: String, message: String },
    #[error("{0}")]
    Setup(String),
    #[error("could not listen on `{addr}`: {message}")]
    Bind { addr: String, message: String },
    #[error("server failed: {0}")]
    Server(String),
}

/// Open state, keys, policies and directory, ready to serve.
pub fn open(config: &Config) -> Result<(Arc<Service>, Arc<dyn Store>), ServeError> {
    open_parts(config).map(|(service, store, _)| (service, store))
}

/// [`open`], with the PostgreSQL store when the service runs on one (it seals the audit chain).
fn open_parts(config: &Config) -> Result<Opened, ServeError> {
    // Policies first: a service that cannot load them must not leave a database and keys behind.
    let policies = ports::load_policies(&config.policies).map_err(ServeError::Setup)?;
    std::fs::create_dir_all(&config.state).map_err(|e| ServeError::State {
        path: config.state.display().to_string(),
        message: e.to_string(),
    })?;
    let state_err = |e: std::io::Error| ServeError::State {
        path: config.state.display().to_string(),
        message: e.to_string(),
    };
    // The signing key first: the store seals each request with a key derived from it.
    let signer = ports::Signer::load_or_create(&config.state).map_err(ServeError::Setup)?;
    let (signer, store, audit, pg): Backing = match &config.store {
        Some(url) => {
            let pg = open_postgres(url)?;
            crate::atomic_write::write(
                &config.state.join(POSTGRES_MARKER),
                b"postgres\n",
                crate::atomic_write::Mode::Public,
            )
            .map_err(state_err)?;
            // One key for the deployment, kept in the store: the first replica's key is
            // imported, every replica signs tokens and checkpoints with it.
            let directory_file = config
                .directory
                .clone()
                .unwrap_or_else(|| config.state.join("directory.toml"));
            let (deployment, audit) =
                join_postgres(&pg, &signer, &directory_file, "open").map_err(ServeError::Setup)?;
            adopt_key(&config.state, &signer, deployment.key())?;
            if !pg.encrypts_key() {
                tracing::warn!(
                    "the deployment's signing key is kept unencrypted in PostgreSQL: whoever can read the database can sign tokens and audit checkpoints; set {} to a file holding a secret every replica shares",
                    pg_keys::KEY_SECRET_ENV
                );
            }
            let signer = deployment;
            pg.start_sealing(signer.store_sealer())
                .map_err(|e| ServeError::Setup(format!("PostgreSQL store: {e}")))?;
            if config.syslog.is_some() {
                tracing::warn!("--syslog witnesses the file audit log only; the PostgreSQL chain is not forwarded");
            }
            let audit: Arc<dyn crate::audit::AuditSink> = audit;
            let store: Arc<dyn Store> = Arc::clone(&pg) as Arc<dyn Store>;
            (signer, store, audit, Some(pg))
        }
        None => {
            match std::fs::remove_file(config.state.join(POSTGRES_MARKER)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(state_err(e)),
                _ => {}
            }
            let store = open_sqlite(config, &signer)?;
            let audit: Arc<dyn crate::audit::AuditSink> =
                ports::open_audit_witnessed(&config.state, &signer, config.syslog.as_ref())
                    .map_err(|e| match e {
                        ports::OpenAuditError::Locked(path) => ServeError::Setup(format!(
                            "audit log `{path}` is in use: is another `jitsh serve` running on this state folder?"
                        )),
                        other => ServeError::Setup(other.to_string()),
                    })?;
            (signer, store, audit, None)
        }
    };
    let service = Service::new(workflow::Parts {
        store: Arc::clone(&store),
        policies: Arc::new(policies),
        policies_dir: config.policies.clone(),
        directory_path: config
            .directory
            .clone()
            .unwrap_or_else(|| config.state.join("directory.toml")),
        signer,
        audit,
        issuer: "jitsh".to_owned(),
        pending_ttl: config.pending_ttl,
        email: config.smtp.is_some(),
        webhook: config.webhook.is_some(),
        limits: config.limits.requests,
    })
    .map_err(ServeError::Setup)?;
    Ok((Arc::new(service), store, pg))
}

type Opened = (Arc<Service>, Arc<dyn Store>, Option<Arc<postgres::PgStore>>);

/// The signing key, store and audit sink a service runs on (and the PostgreSQL store, if so).
type Backing = (
    ports::Signer,
    Arc<dyn Store>,
    Arc<dyn crate::audit::AuditSink>,
    Option<Arc<postgres::PgStore>>,
);

/// Join the deployment on `pg`, as a replica (`reason` `open`) or a tool appending to it
/// ([`pg_chain::GENESIS_ONLY`]): its signing key (this state folder's `local` key is imported
/// when the store has none yet), its audit chain, and its directory (the file
/// `directory_file` is imported once, when the store's directory never was).
pub fn join_postgres(
    pg: &Arc<postgres::PgStore>,
    local: &ports::Signer,
    directory_file: &std::path::Path,
    reason: &str,
) -> Result<(ports::Signer, Arc<pg_chain::PgAudit>), String> {
    let key = pg
        .deployment_key(local.key())
        .map_err(|e| format!("PostgreSQL store: {e}"))?;
    let signer = ports::Signer::from_key(key);
    pg.start_audit(&signer.audit_signer(), reason)
        .map_err(|e| format!("PostgreSQL audit chain: {e}"))?;
    let audit = Arc::new(pg_chain::PgAudit::new(Arc::clone(pg)));
    let file = Directory::load(directory_file).map_err(|e| e.to_string())?;
    let sink: &dyn crate::audit::AuditSink = audit.as_ref();
    let imported = pg
        .import_directory(&file, &mut |n| {
            let mut details = serde_json::Map::new();
            details.insert("users".into(), (*n).into());
            details.insert("from".into(), directory_file.display().to_string().into());
            sink.append(crate::audit::AuditEvent {
                time: rfc3339(chrono::Utc::now().timestamp()),
                actor: "jitsh".into(),
                action: "directory.import".into(),
                subject: "directory".into(),
                outcome: "ok".into(),
                details,
            })?;
            Ok(Vec::new())
        })
        .map_err(|e| format!("PostgreSQL directory: {e}"))?;
    if let Some(n) = imported {
        tracing::info!(users = n, file = %directory_file.display(), "directory imported into the PostgreSQL store");
    }
    Ok((signer, audit))
}

/// Make the state folder's key files the deployment's key when the store holds another one
/// (this replica's own key is kept beside them as `signing.key.KID`), so `signing.pub` is
/// what gates and `jitsh audit verify` should trust.
fn adopt_key(
    state: &std::path::Path,
    local: &ports::Signer,
    key: &crate::token::SigningKey,
) -> Result<(), ServeError> {
    if local.kid() == key.kid() {
        return Ok(());
    }
    let err = |e: std::io::Error| ServeError::State {
        path: state.display().to_string(),
        message: e.to_string(),
    };
    for name in ["signing.key", "signing.pub"] {
        let from = state.join(name);
        if from.exists() {
            std::fs::rename(&from, state.join(format!("{name}.{}", local.kid()))).map_err(err)?;
        }
    }
    directory::write_private_atomic(&state.join("signing.key"), key.to_file_text().as_bytes())
        .map_err(err)?;
    std::fs::write(state.join("signing.pub"), key.public_key().to_file_text()).map_err(err)?;
    tracing::warn!(
        kid = key.kid(),
        replaced = local.kid(),
        "the PostgreSQL store holds the deployment's signing key; this state folder's key was set aside"
    );
    Ok(())
}

/// The SQLite file `STATE/jitsh.db`, private to the service's account.
fn open_sqlite(config: &Config, signer: &ports::Signer) -> Result<Arc<dyn Store>, ServeError> {
    let db = config.state.join("jitsh.db");
    private_file(&db).map_err(|e| ServeError::State {
        path: config.state.display().to_string(),
        message: e.to_string(),
    })?;
    // Journal files left by an older version keep their mode until SQLite recreates them.
    for suffix in ["-wal", "-shm"] {
        let journal = config.state.join(format!("jitsh.db{suffix}"));
        if journal.exists() {
            private_file(&journal).map_err(|e| ServeError::State {
                path: journal.display().to_string(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(Arc::new(
        sqlite::SqliteStore::open_sealed(&db, signer.store_sealer())
            .map_err(|e| ServeError::Setup(e.to_string()))?,
    ))
}

/// Written in STATE by a service on PostgreSQL, so `jitsh user add` on that state folder does
/// not queue its audit event in the SQLite file the service never reads.
pub(crate) const POSTGRES_MARKER: &str = "store-is-postgres";

/// A PostgreSQL database; needs a blocking thread of a Tokio runtime (see [`serve`]).
fn open_postgres(url: &str) -> Result<Arc<postgres::PgStore>, ServeError> {
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(ServeError::Setup(format!(
            "--store takes a `postgres://` URL, not `{}`",
            url.split(':').next().unwrap_or_default()
        )));
    }
    let rt = tokio::runtime::Handle::try_current().map_err(|_| {
        ServeError::Setup("the PostgreSQL store needs the service's runtime".into())
    })?;
    let store = postgres::PgStore::open(url, rt)
        .map_err(|e| ServeError::Setup(format!("PostgreSQL store: {e}")))?;
    Ok(Arc::new(store))
}

/// Serve on `listener` until `shutdown` resolves; then finish in-flight requests and stop the
/// background workers.
pub async fn serve(
    config: &Config,
    listener: tokio::net::TcpListener,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // On a blocking thread: opening a store does I/O (and the PostgreSQL store blocks on the
    // runtime, which async code must not do).
    let (service, store, pg) = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_parts(&config))
            .await
            .map_err(|e| ServeError::Setup(e.to_string()))??
    };
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Server(e.to_string()))?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let channels = notify::Channels {
        smtp: config.smtp.clone(),
        mail_from: config.mail_from.clone(),
        webhook: config.webhook.clone(),
    };
    let outbox = tokio::spawn(notify::run(
        Arc::clone(&store),
        channels,
        Arc::clone(&wake),
        stop_rx.clone(),
    ));
    let sweeper = tokio::spawn(sweep(Arc::clone(&service), pg.clone(), stop_rx));
    // The web UI marks its session cookie `Secure` under TLS and reads the audit log it shows
    // (the PostgreSQL chain on a replica).
    let app = http::router(http::AppState::new(service, wake)).layer(axum::Extension(ui::Site {
        tls: config.tls.is_some(),
        state: Some(config.state.clone()),
        chain: pg.clone(),
    }));
    match &config.tls {
        None => {
            ready(addr);
            listen::run(
                listener,
                app,
                config.limits.connections,
                shutdown,
                http::REQUEST_TIMEOUT,
            )
            .await;
        }
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, addr, Arc::clone(tls));
            ready(addr);
            listen::run(
                listen::FromListener(listener),
                app,
                config.limits.connections,
                shutdown,
                http::REQUEST_TIMEOUT,
            )
            .await;
        }
    }
    let result: Result<(), ServeError> = Ok(());
    let _ = stop_tx.send(true);
    let _ = outbox.await;
    let _ = sweeper.await;
    // A clean stop seals what this replica and the others appended since the last checkpoint.
    if let Some(pg) = pg {
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || pg.seal_audit("stop", 0)).await {
            tracing::error!(error = %e, "the audit chain could not be sealed at stop");
        }
    }
    result
}

/// How old the last checkpoint of the PostgreSQL chain may get while records wait after it.
const SEAL_AFTER_SECS: i64 = 10;

/// Create `path` empty with mode 0600 if it does not exist, and narrow it to 0600 if it does.
/// SQLite gives its `-wal` and `-shm` files the database file's mode, so they follow.
pub(crate) fn private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Append audit events queued by other processes and expire pending requests whose time ran
/// out, often enough for short TTLs.
async fn sweep(
    service: Arc<Service>,
    pg: Option<Arc<postgres::PgStore>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // Every second at most: queued audit events (from `jitsh user add` while serving) should
    // not wait long, and both queries are cheap index lookups.
    let every =
        (service.pending_ttl() / 4).clamp(Duration::from_millis(250), Duration::from_secs(1));
    loop {
        // Withdrawals of abandoned actions first: until they are written, nothing else is.
        let s = Arc::clone(&service);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.settle()).await {
            tracing::debug!(error = %e, "abandoned actions still wait for the audit log");
        }
        let s = Arc::clone(&service);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.drain_audit()).await {
            tracing::error!(error = %e, "queued audit events could not be appended; will retry");
        }
        let s = Arc::clone(&service);
        match tokio::task::spawn_blocking(move || s.expire(chrono::Utc::now())).await {
            Ok(Ok(0)) | Err(_) => {}
            Ok(Ok(n)) => tracing::info!(expired = n, "pending requests expired"),
            Ok(Err(e)) => tracing::error!(error = %e, "expiry sweep failed; will retry"),
        }
        // Records of the shared chain are sealed within seconds, by whichever replica sees
        // them first (the head row lock lets one write the checkpoint).
        if let Some(pg) = &pg {
            let pg = Arc::clone(pg);
            if let Ok(Err(e)) =
                tokio::task::spawn_blocking(move || pg.seal_audit("seal", SEAL_AFTER_SECS)).await
            {
                tracing::error!(error = %e, "the audit chain could not be sealed; will retry");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Parse `1h`, `30m`, `90s`, `1h30m`, `1d` (the policy files' duration form).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::policy::parse_duration(text.trim())
}

/// The shortest form [`parse_duration`] reads back.
pub(crate) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let mut out = String::new();
    for (unit, name) in [(3600, 'h'), (60, 'm'), (1, 's')] {
        let n = (s / unit) % if unit == 3600 { u64::MAX } else { 60 };
        if n > 0 {
            out.push_str(&format!("{n}{name}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(t: store::UnixTime) -> String {
    crate::rfc3339::from_unix(t)
        .and_then(crate::rfc3339::format)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_and_reject_nonsense() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        for bad in ["", "1", "h", "0h", "1x", "-1h", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
