//! [`Store`] on PostgreSQL (`jitsh serve --store postgres://…`), so several replicas of the
//! service can share one database.
//!
//! The [`Store`] trait is synchronous and the service calls it only from blocking threads
//! (`spawn_blocking`), so each method drives tokio-postgres on the service's own runtime with
//! `Handle::block_on`. Connections are kept in a small pool and dropped when broken.
//!
//! Every step is one READ COMMITTED transaction that first locks the rows it decides on
//! (`SELECT … FOR UPDATE`): two replicas approving one request serialize on its row, so the
//! second sees the first's vote or decision; a counted use locks its grant row, so a use is
//! spent once. Steps are never retried, because the step's hook has already written its audit
//! record when the commit runs; a serialization-failure retry would write it twice.
//!
//! The schema is versioned in `schema_version` (one row per applied step, append only); steps
//! are applied at start under an advisory lock, so replicas starting together migrate once.
//!
//! The store also holds what replicas must share to be one deployment: the audit chain (each
//! step appends what its hook audits in its own transaction, see [`pg_chain`]), the directory
//! of users (versioned, so replicas cache it safely), the signing key, request seals (as the
//! SQLite store) and gate session owners. Non-locking reads run in one REPEATABLE READ
//! snapshot, so a request, its votes, grant and seal are always read as one committed state.

use std::sync::{Arc, Mutex, OnceLock};

use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Transaction};

use crate::audit::chain::CheckpointSigner;
use crate::audit::{AuditEvent, AuditSigner, AuditSinkError};

use super::directory::{Directory, DirectoryError, Members, User};
use super::pg_chain::{self, Capture};
use super::pg_keys::{self, KeySecret};
use super::sqlite::Sealer;

use super::store::{
    blocking_lock, review_event, review_line, Approval, ApproveOutcome, Control, GateBatch, Grant,
    Hook, ListQuery, Lock, NewRequest, Notification, OutboxItem, Quorum, RequestRecord, Review,
    Revocation, Status, Store, StoreError, UnixTime, REVIEW_LINES,
};

/// Schema steps; the highest `schema_version.version` is the number applied. Append only.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE requests (
    seq BIGSERIAL UNIQUE,
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    pending_expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    decision_comment TEXT
);
CREATE INDEX requests_created ON requests(created_at, id);
CREATE INDEX requests_status_page ON requests(status, created_at, id);
CREATE INDEX requests_requester_page ON requests(requester, created_at, id);
CREATE TABLE approvals (
    request_id TEXT NOT NULL REFERENCES requests(id),
    approver TEXT NOT NULL,
    comment TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE grants (
    jti TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE REFERENCES requests(id),
    sub TEXT NOT NULL,
    rule TEXT NOT NULL,
    nbf BIGINT NOT NULL,
    exp BIGINT NOT NULL,
    uses BIGINT,
    used BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT,
    revoked_by TEXT
);
CREATE INDEX grants_revoked ON grants(revoked_at);
CREATE TABLE locks (
    scope TEXT NOT NULL,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE UNIQUE INDEX locks_scope ON locks(lower(scope));
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    failed BOOLEAN NOT NULL DEFAULT FALSE,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE delivered_at IS NULL AND NOT failed;
CREATE TABLE audit_inbox (
    id BIGSERIAL PRIMARY KEY,
    event TEXT NOT NULL
);
CREATE TABLE gate_batches (
    sender TEXT NOT NULL,
    batch TEXT NOT NULL,
    events BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (sender, batch)
);
"#,
    r#"
CREATE TABLE control (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    mac TEXT
);
CREATE TABLE reviews (
    id BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    session TEXT NOT NULL UNIQUE,
    started_at BIGINT NOT NULL,
    commands BIGINT NOT NULL DEFAULT 0,
    acked_by TEXT,
    acked_at BIGINT,
    ack_comment TEXT
);
CREATE INDEX reviews_open ON reviews(id) WHERE acked_at IS NULL;
CREATE TABLE review_lines (
    review_id BIGINT NOT NULL REFERENCES reviews(id),
    n BIGINT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (review_id, n)
);
"#,
    r#"
CREATE TABLE audit_chain (
    seq BIGINT PRIMARY KEY,
    line TEXT NOT NULL,
    action TEXT NOT NULL
);
CREATE TABLE audit_head (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    since_checkpoint BIGINT NOT NULL,
    sealed_at BIGINT NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, repeat('0', 64), 0, 0);
CREATE TABLE directory_version (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    imported BOOLEAN NOT NULL
);
INSERT INTO directory_version VALUES (1, 0, FALSE);
CREATE TABLE directory_users (
    position BIGSERIAL UNIQUE,
    name TEXT PRIMARY KEY,
    email TEXT,
    person TEXT,
    groups TEXT[] NOT NULL,
    roles TEXT[] NOT NULL,
    credential_sha256 TEXT NOT NULL
);
CREATE UNIQUE INDEX directory_users_name ON directory_users(lower(name));
CREATE TABLE directory_sets (
    kind TEXT NOT NULL CHECK (kind IN ('group', 'role')),
    name TEXT NOT NULL,
    members TEXT[] NOT NULL,
    description TEXT,
    PRIMARY KEY (kind, name)
);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    key_text TEXT NOT NULL,
    public_text TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    current BOOLEAN NOT NULL
);
CREATE UNIQUE INDEX signing_keys_current ON signing_keys(current) WHERE current;
CREATE TABLE request_seals (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    mac TEXT NOT NULL
);
CREATE TABLE gate_sessions (
    session TEXT PRIMARY KEY,
    owner TEXT NOT NULL
);
"#,
];

/// Key of the advisory lock that serializes migrations across replicas ("jitsh" in ASCII).
const MIGRATION_LOCK: i64 = 0x006a_6974_7368;

/// Key of the advisory lock under which the first replica imports its signing key.
const KEYS_LOCK: i64 = 0x006a_6974_6b79;

/// Key of the advisory lock held by the replica sweeping expired requests.
const SWEEP_LOCK: i64 = 0x006a_6974_7377;

/// How long a replica holds the notifications it took for delivery before another may retry
/// them (it died, or delivery hangs).
const OUTBOX_LEASE_SECS: i64 = 120;

/// Connections one replica holds at most (in use or idle), so replicas together stay under
/// the server's `max_connections`.
const MAX_CONNECTIONS: usize = 16;

/// How long a step waits for a free connection before it fails (the service answers 500).
const CONNECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The PostgreSQL store.
pub struct PgStore {
    url: String,
    rt: Handle,
    idle: Mutex<Vec<Client>>,
    slots: Arc<Semaphore>,
    /// Set by [`PgStore::start_audit`]: every step appends what it audits to the chain.
    chain: OnceLock<CheckpointSigner>,
    /// Set by [`PgStore::start_sealing`]: requests are sealed and their seals checked.
    seal: OnceLock<Sealer>,
    /// Encrypts the deployment's signing key in the store ([`super::pg_keys`]).
    key_secret: Option<KeySecret>,
}

/// A connection in use; its slot frees when it is dropped or put back.
struct Conn {
    client: Client,
    _slot: OwnedSemaphorePermit,
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A database error's text with its detail (tokio-postgres's own text is only "db error").
fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Backend(e.to_string()),
    }
}

impl PgStore {
    /// Connect to `url` and apply the schema steps not yet applied. Call from a blocking
    /// thread of the runtime `rt` (never from async code: it blocks).
    pub fn open(url: &str, rt: Handle) -> Result<PgStore, StoreError> {
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        let store = PgStore {
            url: url.to_owned(),
            rt,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            chain: OnceLock::new(),
            seal: OnceLock::new(),
            key_secret: KeySecret::from_env().map_err(|e| StoreError::Backend(e.to_string()))?,
        };
        store.run(async {
            let mut client = store.client().await?;
            let out = migrate(&mut client).await;
            store.put(client);
            out
        })?;
        Ok(store)
    }

    fn run<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(fut)
    }

    async fn client(&self) -> Result<Conn, StoreError> {
        let slot = tokio::time::timeout(CONNECTION_WAIT, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| StoreError::Backend("no free PostgreSQL connection; try again".into()))?
            .map_err(backend)?;
        let idle = self
            .idle
            .lock()
            .map_err(|_| StoreError::Backend("state connection pool poisoned".into()))?
            .pop();
        if let Some(client) = idle {
            if !client.is_closed() {
                return Ok(Conn {
                    client,
                    _slot: slot,
                });
            }
        }
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(|e| StoreError::Backend(format!("could not connect to PostgreSQL: {e}")))?;
        self.rt.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection closed");
            }
        });
        Ok(Conn {
            client,
            _slot: slot,
        })
    }

    /// Keep a working connection for the next step.
    fn put(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn.client);
        }
    }
}

/// Run one step: `$body` sees the open transaction as `$tx` and commits only on `Ok`.
/// What the step's hook audits is appended to the chain in the same transaction.
macro_rules! step {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store = $store;
        let _capture = store.chain.get().map(|_| Capture::start());
        store.run(async {
            let mut client = store.client().await?;
            let out = async {
                let $tx = client.transaction().await.map_err(pg)?;
                let out: Result<_, StoreError> = $body;
                match out {
                    Ok(v) => {
                        pg_chain::flush(&$tx, store.chain.get()).await?;
                        $tx.commit().await.map_err(pg)?;
                        Ok(v)
                    }
                    // Dropping the transaction rolls it back.
                    Err(e) => Err(e),
                }
            }
            .await;
            store.put(client);
            out
        })
    }};
}

/// Read in one snapshot: `$body` sees a REPEATABLE READ, READ ONLY transaction as `$tx`, so
/// a request, its votes, its grant and its seal are read as one committed state (a step
/// committing between two statements would otherwise look like an edited row).
macro_rules! snapshot {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store = $store;
        store.run(async {
            let mut client = store.client().await?;
            let out = async {
                let $tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(pg)?;
                let out: Result<_, StoreError> = $body;
                if out.is_ok() {
                    $tx.commit().await.map_err(pg)?;
                }
                out
            }
            .await;
            store.put(client);
            out
        })
    }};
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg)?;
    let row = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(pg)?;
    let version: i64 = row.try_get(0).map_err(pg)?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version > known {
        return Err(StoreError::Backend(format!(
            "database schema version {version} is newer than this jitsh ({known}); upgrade jitsh"
        )));
    }
    for (n, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.batch_execute(sql).await.map_err(pg)?;
        let applied = i64::try_from(n + 1).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&applied],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}

/// Open or extend the reviews of a system account's batch, in the batch's step (as the SQLite
/// store does: a session's first batch opens its review, a line after an acknowledgement opens
/// it again).
async fn note_reviews(
    tx: &Transaction<'_>,
    batch: &GateBatch,
    now: UnixTime,
) -> Result<(), StoreError> {
    let mut sessions: Vec<&str> = batch.events.iter().map(|e| e.subject.as_str()).collect();
    sessions.sort_unstable();
    sessions.dedup();
    for session in sessions {
        let opened = tx
            .execute(
                "INSERT INTO reviews (account, session, started_at) VALUES ($1, $2, $3) ON CONFLICT (session) DO NOTHING",
                &[&batch.user, &session, &now],
            )
            .await
            .map_err(pg)?;
        let row = tx
            .query_one(
                "SELECT id, account, acked_at FROM reviews WHERE session = $1 FOR UPDATE",
                &[&session],
            )
            .await
            .map_err(pg)?;
        let id: i64 = row.try_get(0).map_err(pg)?;
        let account: String = row.try_get(1).map_err(pg)?;
        let acked: Option<i64> = row.try_get(2).map_err(pg)?;
        // Another account's review is never extended by this sender.
        if !account.eq_ignore_ascii_case(&batch.user) {
            continue;
        }
        let lines: Vec<String> = batch
            .events
            .iter()
            .filter(|e| e.subject == session)
            .filter_map(review_line)
            .collect();
        let reopened = acked.is_some() && !lines.is_empty();
        if reopened {
            tx.execute(
                "UPDATE reviews SET acked_by = NULL, acked_at = NULL, ack_comment = NULL WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(pg)?;
        }
        if opened == 1 || reopened {
            let mut event = review_event("review.open", id, &account, session, now);
            if reopened {
                event.details.insert("reopened".into(), true.into());
            }
            let text = serde_json::to_string(&event).map_err(backend)?;
            tx.execute("INSERT INTO audit_inbox (event) VALUES ($1)", &[&text])
                .await
                .map_err(pg)?;
        }
        for line in lines {
            let row = tx
                .query_one(
                    "UPDATE reviews SET commands = commands + 1 WHERE id = $1 RETURNING commands",
                    &[&id],
                )
                .await
                .map_err(pg)?;
            let n: i64 = row.try_get(0).map_err(pg)?;
            if u64::try_from(n).unwrap_or(u64::MAX) <= REVIEW_LINES {
                tx.execute(
                    "INSERT INTO review_lines (review_id, n, line) VALUES ($1, $2, $3)",
                    &[&id, &n, &line],
                )
                .await
                .map_err(pg)?;
            }
        }
    }
    Ok(())
}

const REVIEW_COLUMNS: &str =
    "id, account, session, started_at, commands, acked_by, acked_at, ack_comment";

fn review_row(r: &Row) -> Result<Review, StoreError> {
    Ok(Review {
        id: r.try_get(0).map_err(pg)?,
        account: r.try_get(1).map_err(pg)?,
        session: r.try_get(2).map_err(pg)?,
        started_at: r.try_get(3).map_err(pg)?,
        commands: u64::try_from(r.try_get::<_, i64>(4).map_err(pg)?).unwrap_or(0),
        ran: Vec::new(),
        acked_by: r.try_get(5).map_err(pg)?,
        acked_at: r.try_get(6).map_err(pg)?,
        ack_comment: r.try_get(7).map_err(pg)?,
    })
}

async fn load_review(
    client: &impl tokio_postgres::GenericClient,
    id: i64,
) -> Result<Review, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(pg)?
        .ok_or(StoreError::ReviewNotFound(id))?;
    let mut review = review_row(&row)?;
    let rows = client
        .query(
            "SELECT line FROM review_lines WHERE review_id = $1 ORDER BY n",
            &[&id],
        )
        .await
        .map_err(pg)?;
    review.ran = rows
        .iter()
        .map(|r| r.try_get(0).map_err(pg))
        .collect::<Result<_, _>>()?;
    Ok(review)
}

fn to_u32(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("count {v} out of range")))
}

async fn enqueue(
    tx: &Transaction<'_>,
    notes: &[Notification],
    now: UnixTime,
) -> Result<(), StoreError> {
    for n in notes {
        tx.execute(
            "INSERT INTO outbox (channel, recipient, subject, body, next_attempt_at) VALUES ($1, $2, $3, $4, $5)",
            &[&n.channel, &n.recipient, &n.subject, &n.body, &now],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

const GRANT_COLUMNS: &str = "jti, request_id, sub, nbf, exp, uses, used, revoked_at, revoked_by";

fn grant_row(r: &Row) -> Result<Grant, StoreError> {
    Ok(Grant {
        jti: r.try_get(0).map_err(pg)?,
        request_id: r.try_get(1).map_err(pg)?,
        sub: r.try_get(2).map_err(pg)?,
        nbf: r.try_get(3).map_err(pg)?,
        exp: r.try_get(4).map_err(pg)?,
        uses: r
            .try_get::<_, Option<i64>>(5)
            .map_err(pg)?
            .map(to_u32)
            .transpose()?,
        used: to_u32(r.try_get(6).map_err(pg)?)?,
        revoked_at: r.try_get(7).map_err(pg)?,
        revoked_by: r.try_get(8).map_err(pg)?,
    })
}

fn lock_row(r: &Row) -> Result<Lock, StoreError> {
    Ok(Lock {
        scope: r.try_get(0).map_err(pg)?,
        reason: r.try_get(1).map_err(pg)?,
        set_by: r.try_get(2).map_err(pg)?,
        set_at: r.try_get(3).map_err(pg)?,
        expires_at: r.try_get(4).map_err(pg)?,
    })
}

fn revocation_row(r: &Row) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        jti: r.try_get(0).map_err(pg)?,
        request: r.try_get(1).map_err(pg)?,
        sub: r.try_get(2).map_err(pg)?,
        rule: r.try_get(3).map_err(pg)?,
        revoked_at: r.try_get::<_, Option<i64>>(4).map_err(pg)?.unwrap_or(0),
        exp: r.try_get(5).map_err(pg)?,
    })
}

/// The request `id` with its votes and grant; `for_update` locks its row until the step ends.
/// Its seal is not checked: see [`load`].
async fn load_unchecked(
    c: &impl tokio_postgres::GenericClient,
    id: &str,
    for_update: bool,
) -> Result<RequestRecord, StoreError> {
    let sql = if for_update {
        "SELECT body, status, decided_at, decided_by, decision_comment FROM requests WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT body, status, decided_at, decided_by, decision_comment FROM requests WHERE id = $1"
    };
    let row = c
        .query_opt(sql, &[&id])
        .await
        .map_err(pg)?
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let body: String = row.try_get(0).map_err(pg)?;
    let status: String = row.try_get(1).map_err(pg)?;
    let new: NewRequest = serde_json::from_str(&body).map_err(backend)?;
    let status = Status::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("unknown status `{status}` in database")))?;
    let approvals = c
        .query(
            "SELECT approver, comment, at FROM approvals WHERE request_id = $1 ORDER BY at, approver",
            &[&id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            Ok(Approval {
                approver: r.try_get(0).map_err(pg)?,
                comment: r.try_get(1).map_err(pg)?,
                at: r.try_get(2).map_err(pg)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let grant = c
        .query_opt(
            &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE request_id = $1"),
            &[&id],
        )
        .await
        .map_err(pg)?
        .as_ref()
        .map(grant_row)
        .transpose()?;
    Ok(RequestRecord {
        new,
        status,
        approvals,
        decided_at: row.try_get(2).map_err(pg)?,
        decided_by: row.try_get(3).map_err(pg)?,
        decision_comment: row.try_get(4).map_err(pg)?,
        grant,
    })
}

/// Request `id`, its seal checked when the store seals ([`StoreError::Tampered`] when a row
/// of it was changed outside the service).
async fn load(
    c: &impl tokio_postgres::GenericClient,
    seal: Option<&Sealer>,
    id: &str,
    for_update: bool,
) -> Result<RequestRecord, StoreError> {
    let record = load_unchecked(c, id, for_update).await?;
    let Some(sealer) = seal else {
        return Ok(record);
    };
    let stored: Option<String> = c
        .query_opt(
            "SELECT mac FROM request_seals WHERE request_id = $1",
            &[&id],
        )
        .await
        .map_err(pg)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(pg)?;
    let same = match stored {
        Some(stored) => sealer.verify(&record, &stored)?,
        None => false,
    };
    if !same {
        return Err(StoreError::Tampered(id.to_owned()));
    }
    Ok(record)
}

/// Seal request `id` as a step left it, and read it back.
async fn after_change(
    tx: &Transaction<'_>,
    seal: Option<&Sealer>,
    id: &str,
) -> Result<RequestRecord, StoreError> {
    let record = load_unchecked(tx, id, false).await?;
    if let Some(sealer) = seal {
        reseal(tx, sealer, &record).await?;
    }
    Ok(record)
}

async fn reseal(
    tx: &Transaction<'_>,
    sealer: &Sealer,
    record: &RequestRecord,
) -> Result<(), StoreError> {
    let mac = sealer.mac(record)?;
    tx.execute(
        "INSERT INTO request_seals (request_id, mac) VALUES ($1, $2) ON CONFLICT (request_id) DO UPDATE SET mac = EXCLUDED.mac",
        &[&record.new.id, &mac],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// `grant` as its sealed request holds it: a grant row changed on its own (window, uses,
/// revocation) no longer matches the request's seal.
async fn sealed_grant(
    c: &impl tokio_postgres::GenericClient,
    seal: Option<&Sealer>,
    grant: Grant,
) -> Result<Grant, StoreError> {
    if seal.is_none() {
        return Ok(grant);
    }
    let record = load(c, seal, &grant.request_id, false).await?;
    match record.grant {
        Some(g) if g == grant => Ok(g),
        _ => Err(StoreError::Tampered(grant.request_id)),
    }
}

async fn load_all(
    c: &impl tokio_postgres::GenericClient,
    seal: Option<&Sealer>,
    ids: &[String],
) -> Result<Vec<RequestRecord>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(load(c, seal, id, false).await?);
    }
    Ok(out)
}

/// The pending request `id`, locked for this step, or why it cannot be decided now.
async fn pending(
    tx: &Transaction<'_>,
    seal: Option<&Sealer>,
    id: &str,
    now: UnixTime,
) -> Result<RequestRecord, StoreError> {
    let record = load(tx, seal, id, true).await?;
    if record.status != Status::Pending {
        return Err(StoreError::AlreadyDecided {
            id: id.to_owned(),
            status: record.status.as_str(),
        });
    }
    if record.new.pending_expires_at <= now {
        return Err(StoreError::PendingExpired { id: id.to_owned() });
    }
    Ok(record)
}

async fn insert_grant(tx: &Transaction<'_>, g: &Grant, rule: &str) -> Result<(), StoreError> {
    let uses = g.uses.map(i64::from);
    tx.execute(
        "INSERT INTO grants (jti, request_id, sub, rule, nbf, exp, uses, used) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        &[&g.jti, &g.request_id, &g.sub, &rule, &g.nbf, &g.exp, &uses],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

async fn set_decided(
    tx: &Transaction<'_>,
    id: &str,
    status: Status,
    by: &str,
    comment: Option<&str>,
    at: UnixTime,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE requests SET status = $2, decided_at = $3, decided_by = $4, decision_comment = $5 WHERE id = $1",
        &[&id, &status.as_str(), &at, &by, &comment],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

fn ids(rows: &[Row]) -> Result<Vec<String>, StoreError> {
    rows.iter()
        .map(|r| r.try_get::<_, String>(0).map_err(pg))
        .collect()
}

impl Store for PgStore {
    fn create_request(
        &self,
        new: &NewRequest,
        auto_grant: Option<&Grant>,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        step!(self, |tx| {
            async {
                // FOR SHARE: a lock being cleared or replaced is waited for, not skipped.
                let locks = tx
                    .query(
                        "SELECT scope, reason, set_by, set_at, expires_at FROM locks WHERE expires_at IS NULL OR expires_at > $1 FOR SHARE",
                        &[&new.created_at],
                    )
                    .await
                    .map_err(pg)?
                    .iter()
                    .map(lock_row)
                    .collect::<Result<Vec<Lock>, StoreError>>()?;
                if let Some(lock) = blocking_lock(&locks, &new.requester, &new.rule) {
                    return Err(StoreError::Locked {
                        scope: lock.scope.clone(),
                        reason: lock.reason.clone(),
                    });
                }
                let body = serde_json::to_string(new).map_err(backend)?;
                tx.execute(
                    "INSERT INTO requests (id, requester, body, status, created_at, pending_expires_at) VALUES ($1, $2, $3, 'pending', $4, $5)",
                    &[&new.id, &new.requester, &body, &new.created_at, &new.pending_expires_at],
                )
                .await
                .map_err(pg)?;
                if let Some(grant) = auto_grant {
                    set_decided(&tx, &new.id, Status::Approved, "jitsh", Some("auto"), grant.nbf)
                        .await?;
                    insert_grant(&tx, grant, &new.rule).await?;
                }
                let record = after_change(&tx, self.seal.get(), &new.id).await?;
                let notes = hook(&record)?;
                enqueue(&tx, &notes, new.created_at).await?;
                Ok(record)
            }
            .await
        })
    }

    fn request(&self, id: &str) -> Result<RequestRecord, StoreError> {
        snapshot!(self, |tx| load(&tx, self.seal.get(), id, false).await)
    }

    fn list_requests(
        &self,
        status: Option<Status>,
        requester: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let status = status.map(Status::as_str);
        let limit = i64::from(limit);
        snapshot!(self, |tx| {
            async {
                let rows = tx
                    .query(
                        "SELECT id FROM requests WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR requester = $2) ORDER BY created_at DESC, seq DESC LIMIT $3",
                        &[&status, &requester, &limit],
                    )
                    .await
                    .map_err(pg)?;
                load_all(&tx, self.seal.get(), &ids(&rows)?).await
            }
            .await
        })
    }

    fn list_page(&self, q: &ListQuery) -> Result<Vec<RequestRecord>, StoreError> {
        // Only the conditions asked for are in the statement, so the planner can use the
        // matching index; visibility applies before LIMIT.
        let mut sql = String::from("SELECT id FROM requests WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut arg = |sql: &mut String, text: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&text.replace('?', &format!("${}", args.len())));
        };
        if let Some(status) = q.status {
            arg(
                &mut sql,
                " AND status = ?",
                Box::new(status.as_str().to_owned()),
            );
        }
        if let Some(requester) = &q.requester {
            arg(&mut sql, " AND requester = ?", Box::new(requester.clone()));
        }
        if let Some((name, groups)) = &q.viewer {
            arg(
                &mut sql,
                " AND (lower(requester) = lower(?)",
                Box::new(name.clone()),
            );
            arg(
                &mut sql,
                " OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(requests.body::jsonb -> 'approvers') AS a(v) WHERE lower(a.v) = ANY(?)))",
                Box::new(groups.clone()),
            );
        }
        if let Some((at, id)) = &q.after {
            arg(&mut sql, " AND (created_at, id) < (?", Box::new(*at));
            arg(&mut sql, ", ?)", Box::new(id.clone()));
        }
        arg(
            &mut sql,
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            Box::new(i64::from(q.limit)),
        );
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        snapshot!(self, |tx| {
            async {
                let rows = tx.query(&sql, &refs).await.map_err(pg)?;
                load_all(&tx, self.seal.get(), &ids(&rows)?).await
            }
            .await
        })
    }

    fn count_requests(
        &self,
        requester: &str,
        since: UnixTime,
        pending_only: bool,
    ) -> Result<u64, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let out = client
                .query_one(
                    "SELECT COUNT(*) FROM requests WHERE requester = $1 AND created_at >= $2 AND (NOT $3 OR status = 'pending')",
                    &[&requester, &since, &pending_only],
                )
                .await
                .map_err(pg)
                .and_then(|r| r.try_get::<_, i64>(0).map_err(pg));
            self.put(client);
            Ok(u64::try_from(out?).unwrap_or(0))
        })
    }

    fn withdraw(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        step!(self, |tx| {
            async {
                pending(&tx, self.seal.get(), id, now).await?;
                set_decided(&tx, id, Status::Withdrawn, by, None, now).await?;
                let record = after_change(&tx, self.seal.get(), id).await?;
                let notes = hook(&record)?;
                enqueue(&tx, &notes, now).await?;
                Ok(record)
            }
            .await
        })
    }

    fn approve(
        &self,
        id: &str,
        vote: &Approval,
        grant: &Grant,
        quorum: &Quorum<'_>,
        hook: Hook<'_, ApproveOutcome>,
    ) -> Result<ApproveOutcome, StoreError> {
        step!(self, |tx| {
            async {
                // The row lock makes every vote on this request wait for the one before it, so
                // the votes read here are all the votes there are.
                let record = pending(&tx, self.seal.get(), id, vote.at).await?;
                if record.approvals.iter().any(|a| a.approver == vote.approver) {
                    return Err(StoreError::AlreadyApproved {
                        id: id.to_owned(),
                        approver: vote.approver.clone(),
                    });
                }
                tx.execute(
                    "INSERT INTO approvals (request_id, approver, comment, at) VALUES ($1, $2, $3, $4)",
                    &[&id, &vote.approver, &vote.comment, &vote.at],
                )
                .await
                .map_err(pg)?;
                // Earlier votes count only if their voters are still approvers now.
                let mut voters: Vec<String> = record
                    .approvals
                    .iter()
                    .filter(|a| (quorum.counts)(&a.approver))
                    .map(|a| a.approver.to_lowercase())
                    .collect();
                if (quorum.counts)(&vote.approver) {
                    voters.push(vote.approver.to_lowercase());
                }
                voters.sort_unstable();
                voters.dedup();
                let needed = usize::try_from(quorum.needed.max(1)).unwrap_or(usize::MAX);
                let outcome = if voters.len() >= needed {
                    set_decided(
                        &tx,
                        id,
                        Status::Approved,
                        &vote.approver,
                        vote.comment.as_deref(),
                        vote.at,
                    )
                    .await?;
                    insert_grant(&tx, grant, &record.new.rule).await?;
                    ApproveOutcome::Decided {
                        record: after_change(&tx, self.seal.get(), id).await?,
                    }
                } else {
                    ApproveOutcome::Recorded {
                        record: after_change(&tx, self.seal.get(), id).await?,
                    }
                };
                let notes = hook(&outcome)?;
                enqueue(&tx, &notes, vote.at).await?;
                Ok(outcome)
            }
            .await
        })
    }

    fn deny(
        &self,
        id: &str,
        by: &str,
        comment: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        step!(self, |tx| {
            async {
                pending(&tx, self.seal.get(), id, now).await?;
                set_decided(&tx, id, Status::Denied, by, Some(comment), now).await?;
                let record = after_change(&tx, self.seal.get(), id).await?;
                let notes = hook(&record)?;
                enqueue(&tx, &notes, now).await?;
                Ok(record)
            }
            .await
        })
    }

    fn revoke(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        step!(self, |tx| {
            async {
                let record = load(&tx, self.seal.get(), id, true).await?;
                if record.status != Status::Approved || record.grant.is_none() {
                    return Err(StoreError::AlreadyDecided {
                        id: id.to_owned(),
                        status: record.status.as_str(),
                    });
                }
                tx.execute(
                    "UPDATE grants SET revoked_at = $2, revoked_by = $3 WHERE request_id = $1",
                    &[&id, &now, &by],
                )
                .await
                .map_err(pg)?;
                tx.execute(
                    "UPDATE requests SET status = 'revoked' WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(pg)?;
                let record = after_change(&tx, self.seal.get(), id).await?;
                let notes = hook(&record)?;
                enqueue(&tx, &notes, now).await?;
                Ok(record)
            }
            .await
        })
    }

    fn grant(&self, jti: &str) -> Result<Grant, StoreError> {
        snapshot!(self, |tx| {
            async {
                let grant = tx
                    .query_opt(
                        &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE jti = $1"),
                        &[&jti],
                    )
                    .await
                    .map_err(pg)?
                    .as_ref()
                    .map(grant_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::GrantNotFound(jti.to_owned()))?;
                sealed_grant(&tx, self.seal.get(), grant).await
            }
            .await
        })
    }

    fn use_grant(
        &self,
        jti: &str,
        now: UnixTime,
        hook: Hook<'_, Grant>,
    ) -> Result<Grant, StoreError> {
        step!(self, |tx| {
            async {
                // Locked: two uses of one counted grant through two replicas take turns. The
                // request row first, as every step on a request locks it (one lock order, and
                // no other step changes the request's rows or seal while this one reads them).
                let request = tx
                    .query_opt("SELECT request_id FROM grants WHERE jti = $1", &[&jti])
                    .await
                    .map_err(pg)?
                    .ok_or_else(|| StoreError::GrantNotFound(jti.to_owned()))?;
                let request: String = request.try_get(0).map_err(pg)?;
                tx.execute(
                    "SELECT 1 FROM requests WHERE id = $1 FOR UPDATE",
                    &[&request],
                )
                .await
                .map_err(pg)?;
                let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE jti = $1 FOR UPDATE");
                let grant = tx
                    .query_opt(&sql, &[&jti])
                    .await
                    .map_err(pg)?
                    .as_ref()
                    .map(grant_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::GrantNotFound(jti.to_owned()))?;
                let grant = sealed_grant(&tx, self.seal.get(), grant).await?;
                let not_live = |state| StoreError::NotLive {
                    jti: jti.to_owned(),
                    state,
                };
                if grant.revoked_at.is_some() {
                    return Err(not_live("revoked"));
                }
                if now >= grant.exp {
                    return Err(not_live("expired"));
                }
                if now < grant.nbf {
                    return Err(not_live("not yet valid"));
                }
                if let Some(uses) = grant.uses {
                    if grant.used >= uses {
                        return Err(StoreError::Exhausted(jti.to_owned()));
                    }
                    tx.execute("UPDATE grants SET used = used + 1 WHERE jti = $1", &[&jti])
                        .await
                        .map_err(pg)?;
                    after_change(&tx, self.seal.get(), &grant.request_id).await?;
                }
                let row = tx.query_one(&sql, &[&jti]).await.map_err(pg)?;
                let grant = grant_row(&row)?;
                let notes = hook(&grant)?;
                enqueue(&tx, &notes, now).await?;
                Ok(grant)
            }
            .await
        })
    }

    fn expire_pending(
        &self,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        // One sweep at a time across replicas: the others skip this round (a session lock on
        // a connection held for the sweep; it goes with the connection if the replica dies).
        let holder = self.run(async {
            let client = self.client().await?;
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])
                .await
                .map_err(pg)?
                .try_get(0)
                .map_err(pg)?;
            Ok::<_, StoreError>(got.then_some(client))
        })?;
        let Some(holder) = holder else {
            return Ok(Vec::new());
        };
        let out = self.expire_locked(now, hook);
        self.run(async {
            if holder
                .execute("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK])
                .await
                .is_ok()
            {
                self.put(holder);
            }
        });
        out
    }

    fn set_lock(&self, lock: &Lock, hook: Hook<'_, Lock>) -> Result<(), StoreError> {
        step!(self, |tx| {
            async {
                tx.execute(
                    "INSERT INTO locks (scope, reason, set_by, set_at, expires_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (lower(scope)) DO UPDATE SET scope = EXCLUDED.scope, reason = EXCLUDED.reason,
                       set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at, expires_at = EXCLUDED.expires_at",
                    &[&lock.scope, &lock.reason, &lock.set_by, &lock.set_at, &lock.expires_at],
                )
                .await
                .map_err(pg)?;
                let notes = hook(lock)?;
                enqueue(&tx, &notes, lock.set_at).await?;
                Ok(())
            }
            .await
        })
    }

    fn clear_lock(&self, scope: &str, hook: Hook<'_, Lock>) -> Result<Lock, StoreError> {
        step!(self, |tx| {
            async {
                let row = tx
                    .query_opt(
                        "DELETE FROM locks WHERE lower(scope) = lower($1) RETURNING scope, reason, set_by, set_at, expires_at",
                        &[&scope],
                    )
                    .await
                    .map_err(pg)?
                    .ok_or_else(|| StoreError::NoLock(scope.to_owned()))?;
                let lock = lock_row(&row)?;
                let notes = hook(&lock)?;
                enqueue(&tx, &notes, lock.set_at).await?;
                Ok(lock)
            }
            .await
        })
    }

    fn active_locks(&self, now: UnixTime) -> Result<Vec<Lock>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT scope, reason, set_by, set_at, expires_at FROM locks WHERE expires_at IS NULL OR expires_at > $1 ORDER BY scope",
                    &[&now],
                )
                .await
                .map_err(pg);
            self.put(client);
            rows?.iter().map(lock_row).collect()
        })
    }

    fn revocations(&self, since: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT jti, request_id, sub, rule, revoked_at, exp FROM grants WHERE (revoked_at IS NOT NULL AND revoked_at >= $1) OR (uses IS NOT NULL AND used >= uses) ORDER BY revoked_at NULLS FIRST, jti",
                    &[&since],
                )
                .await
                .map_err(pg);
            self.put(client);
            rows?.iter().map(revocation_row).collect()
        })
    }

    fn live_grants(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT jti, request_id, sub, rule, revoked_at, exp FROM grants WHERE revoked_at IS NULL AND exp > $1 ORDER BY jti",
                    &[&now],
                )
                .await
                .map_err(pg);
            self.put(client);
            rows?.iter().map(revocation_row).collect()
        })
    }

    fn record(&self, hook: Hook<'_, ()>) -> Result<(), StoreError> {
        step!(self, |tx| {
            async {
                let notes = hook(&())?;
                let now = chrono::Utc::now().timestamp();
                enqueue(&tx, &notes, now).await
            }
            .await
        })
    }

    fn queue_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let text = serde_json::to_string(event).map_err(backend)?;
        step!(self, |tx| {
            async {
                tx.execute("INSERT INTO audit_inbox (event) VALUES ($1)", &[&text])
                    .await
                    .map_err(pg)?;
                Ok(())
            }
            .await
        })
    }

    fn queue_gate_batch(&self, batch: &GateBatch, now: UnixTime) -> Result<bool, StoreError> {
        let texts = batch
            .events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        let count = i64::try_from(texts.len()).unwrap_or(i64::MAX);
        step!(self, |tx| {
            async {
                // The batch row first: a replica queuing the same batch at once waits here for
                // this step and then finds it.
                let inserted = tx
                    .execute(
                        "INSERT INTO gate_batches (sender, batch, events, sha256, received_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[&batch.user, &batch.id, &count, &batch.sha256, &now],
                    )
                    .await
                    .map_err(pg)?;
                if inserted == 0 {
                    let row = tx
                        .query_one(
                            "SELECT sha256 FROM gate_batches WHERE sender = $1 AND batch = $2",
                            &[&batch.user, &batch.id],
                        )
                        .await
                        .map_err(pg)?;
                    let sha: String = row.try_get(0).map_err(pg)?;
                    return if sha == batch.sha256 {
                        Ok(false)
                    } else {
                        Err(StoreError::BatchConflict(batch.id.clone()))
                    };
                }
                // A session belongs to the first user who sent events of it: nobody else can
                // add records to it. The insert waits for a replica inserting the same session.
                let mut sessions: Vec<&str> =
                    batch.events.iter().map(|e| e.subject.as_str()).collect();
                sessions.sort_unstable();
                sessions.dedup();
                let sender = batch.user.to_ascii_lowercase();
                for session in sessions {
                    tx.execute(
                        "INSERT INTO gate_sessions (session, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&session, &sender],
                    )
                    .await
                    .map_err(pg)?;
                    let owner: String = tx
                        .query_one("SELECT owner FROM gate_sessions WHERE session = $1", &[&session])
                        .await
                        .map_err(pg)?
                        .try_get(0)
                        .map_err(pg)?;
                    if !owner.eq_ignore_ascii_case(&batch.user) {
                        return Err(StoreError::SessionNotYours(session.to_owned()));
                    }
                }
                if batch.review {
                    note_reviews(&tx, batch, now).await?;
                }
                for text in &texts {
                    tx.execute("INSERT INTO audit_inbox (event) VALUES ($1)", &[text])
                        .await
                        .map_err(pg)?;
                }
                Ok(true)
            }
            .await
        })
    }

    fn drain_audit(
        &self,
        sink: &mut dyn FnMut(Vec<AuditEvent>) -> Result<(), AuditSinkError>,
    ) -> Result<usize, StoreError> {
        let chunk = i64::try_from(super::store::DRAIN_CHUNK).unwrap_or(i64::MAX);
        let mut drained = 0;
        loop {
            let n = step!(self, |tx| {
                async {
                    // SKIP LOCKED: each queued event is taken by one replica only; a chunk is
                    // handed over whole (one log sync) and removed in the same step.
                    let rows = tx
                        .query(
                            "SELECT id, event FROM audit_inbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                            &[&chunk],
                        )
                        .await
                        .map_err(pg)?;
                    if rows.is_empty() {
                        return Ok(0usize);
                    }
                    let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
                    let mut events = Vec::with_capacity(rows.len());
                    for row in &rows {
                        ids.push(row.try_get(0).map_err(pg)?);
                        let text: String = row.try_get(1).map_err(pg)?;
                        events.push(serde_json::from_str::<AuditEvent>(&text).map_err(backend)?);
                    }
                    let n = events.len();
                    sink(events)?;
                    tx.execute("DELETE FROM audit_inbox WHERE id = ANY($1)", &[&ids])
                        .await
                        .map_err(pg)?;
                    Ok(n)
                }
                .await
            })?;
            if n == 0 {
                return Ok(drained);
            }
            drained += n;
        }
    }

    fn control(&self) -> Result<Control, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT body, mac FROM control WHERE id = 1", &[])
                .await
                .map_err(pg);
            self.put(client);
            let Some(row) = row? else {
                return Ok(Control::default());
            };
            let text: String = row.try_get(0).map_err(pg)?;
            let mac: Option<String> = row.try_get(1).map_err(pg)?;
            // As on SQLite: a control row the service did not write could disable approval or
            // name system accounts, so it is not used.
            if let Some(sealer) = self.seal.get() {
                if !mac.is_some_and(|m| sealer.control_verify(&text, &m)) {
                    return Err(StoreError::ControlTampered);
                }
            }
            serde_json::from_str(&text).map_err(backend)
        })
    }

    fn set_control(&self, control: &Control, hook: Hook<'_, Control>) -> Result<(), StoreError> {
        let text = serde_json::to_string(control).map_err(backend)?;
        let mac = self.seal.get().map(|s| s.control_mac(&text));
        step!(self, |tx| {
            async {
                tx.execute(
                    "INSERT INTO control (id, body, mac) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, mac = EXCLUDED.mac",
                    &[&text, &mac],
                )
                .await
                .map_err(pg)?;
                let notes = hook(control)?;
                let now = control.changed.as_ref().map_or(0, |c| c.at);
                enqueue(&tx, &notes, now).await
            }
            .await
        })
    }

    fn keeps_directory(&self) -> bool {
        true
    }

    fn directory_version(&self) -> Result<i64, StoreError> {
        self.with_client(|c| {
            Box::pin(async move {
                c.query_one("SELECT version FROM directory_version WHERE id = 1", &[])
                    .await
                    .map_err(pg)?
                    .try_get(0)
                    .map_err(pg)
            })
        })
    }

    fn load_directory(&self) -> Result<(i64, Directory), StoreError> {
        // One snapshot: the version and the rows it names.
        step!(self, |tx| {
            async {
                tx.execute(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    &[],
                )
                .await
                .map_err(pg)?;
                read_directory(&tx).await
            }
            .await
        })
    }

    fn change_directory(
        &self,
        change: &mut dyn FnMut(&mut Directory) -> Result<(), DirectoryError>,
        hook: Hook<'_, ()>,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        step!(self, |tx| {
            async {
                // The version row is the directory's lock: changes through any replica take
                // turns, each on the directory as the one before left it.
                tx.query_one(
                    "SELECT version FROM directory_version WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .await
                .map_err(pg)?;
                let (_, before) = read_directory(&tx).await?;
                let mut after = before.clone();
                change(&mut after)?;
                write_directory(&tx, &before, &after).await?;
                let notes = hook(&())?;
                enqueue(&tx, &notes, now).await
            }
            .await
        })
    }

    fn reviews(&self, open_only: bool, limit: u32) -> Result<Vec<Review>, StoreError> {
        let filter = if open_only {
            "WHERE acked_at IS NULL"
        } else {
            ""
        };
        let limit = i64::from(limit);
        self.run(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {REVIEW_COLUMNS} FROM reviews {filter} ORDER BY id DESC LIMIT $1"
                    ),
                    &[&limit],
                )
                .await
                .map_err(pg);
            self.put(client);
            rows?.iter().map(review_row).collect()
        })
    }

    fn review(&self, id: i64) -> Result<Review, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let review = load_review(&*client, id).await;
            self.put(client);
            review
        })
    }

    fn ack_review(
        &self,
        id: i64,
        by: &str,
        comment: Option<&str>,
        at: UnixTime,
        hook: Hook<'_, Review>,
    ) -> Result<Review, StoreError> {
        step!(self, |tx| {
            async {
                let changed = tx
                    .execute(
                        "UPDATE reviews SET acked_by = $2, acked_at = $3, ack_comment = $4 WHERE id = $1 AND acked_at IS NULL",
                        &[&id, &by, &at, &comment],
                    )
                    .await
                    .map_err(pg)?;
                let review = load_review(&tx, id).await?;
                if changed == 0 {
                    return Err(StoreError::AlreadyAcked(id));
                }
                let notes = hook(&review)?;
                enqueue(&tx, &notes, at).await?;
                Ok(review)
            }
            .await
        })
    }

    fn due_notifications(&self, now: UnixTime, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        let limit = i64::from(limit);
        let lease = now.saturating_add(OUTBOX_LEASE_SECS);
        // Taking an item moves its next attempt past a lease, in the same step: another
        // replica does not see it again unless this one fails to report back in time.
        step!(self, |tx| {
            async {
                let rows = tx
                    .query(
                        "UPDATE outbox SET next_attempt_at = $3 WHERE id IN (
                           SELECT id FROM outbox WHERE delivered_at IS NULL AND NOT failed AND next_attempt_at <= $1
                           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                         RETURNING id, attempts, channel, recipient, subject, body",
                        &[&now, &limit, &lease],
                    )
                    .await
                    .map_err(pg)?;
                let mut items = rows
                    .iter()
                    .map(|r| {
                        Ok(OutboxItem {
                            id: r.try_get(0).map_err(pg)?,
                            attempts: to_u32(r.try_get(1).map_err(pg)?)?,
                            note: Notification {
                                channel: r.try_get(2).map_err(pg)?,
                                recipient: r.try_get(3).map_err(pg)?,
                                subject: r.try_get(4).map_err(pg)?,
                                body: r.try_get(5).map_err(pg)?,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                items.sort_by_key(|i| i.id);
                Ok(items)
            }
            .await
        })
    }

    fn mark_delivered(&self, id: i64, now: UnixTime) -> Result<(), StoreError> {
        step!(self, |tx| {
            async {
                tx.execute(
                    "UPDATE outbox SET delivered_at = $2, attempts = attempts + 1 WHERE id = $1",
                    &[&id, &now],
                )
                .await
                .map_err(pg)?;
                Ok(())
            }
            .await
        })
    }

    fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: UnixTime,
        give_up: bool,
    ) -> Result<(), StoreError> {
        step!(self, |tx| {
            async {
                tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3, failed = $4 WHERE id = $1",
                    &[&id, &error, &next_attempt_at, &give_up],
                )
                .await
                .map_err(pg)?;
                Ok(())
            }
            .await
        })
    }
}

impl PgStore {
    /// Keep the audit record in this database from now on, checkpoints signed with `signer`:
    /// the chain is started if empty and a checkpoint for `reason` is written (`open` for a
    /// replica; [`pg_chain::GENESIS_ONLY`] writes none).
    pub fn start_audit(&self, signer: &AuditSigner, reason: &str) -> Result<(), StoreError> {
        let checkpoints = CheckpointSigner::new(signer)
            .map_err(|e| StoreError::Backend(format!("audit signing key: {e}")))?;
        if self.chain.set(checkpoints).is_err() {
            return Err(StoreError::Backend(
                "the audit chain is already started".into(),
            ));
        }
        self.seal_audit(reason, 0).map(|_| ())
    }

    /// A checkpoint over the chain's head (`reason` `seal`: only when records are unsealed
    /// and the last checkpoint is at least `max_age` seconds old). Whether one was written.
    pub fn seal_audit(&self, reason: &str, max_age: i64) -> Result<bool, StoreError> {
        let Some(signer) = self.chain.get() else {
            return Ok(false);
        };
        let now = chrono::Utc::now().timestamp();
        step!(self, |tx| {
            async { pg_chain::seal(&tx, signer, reason, now, max_age).await }.await
        })
    }

    /// Append `events` in a transaction of their own; returns the last record's seq.
    pub fn append_audit(&self, events: &[AuditEvent]) -> Result<i64, StoreError> {
        let Some(signer) = self.chain.get() else {
            return Err(StoreError::Backend(
                "the PostgreSQL store has no audit chain".into(),
            ));
        };
        let now = chrono::Utc::now().timestamp();
        step!(self, |tx| {
            async { pg_chain::append(&tx, signer, events, now).await }.await
        })
    }

    /// Seal every request from now on (the key derived from the deployment's signing key,
    /// as the SQLite store does) and check the seal on every read; requests written before
    /// (an older jitsh, or `jitsh migrate`) are sealed once, as found.
    pub fn start_sealing(&self, sealer: Sealer) -> Result<(), StoreError> {
        if self.seal.set(sealer).is_err() {
            return Err(StoreError::Backend("requests are already sealed".into()));
        }
        let seal = self.seal.get();
        step!(self, |tx| {
            async {
                let rows = tx
                    .query(
                        "SELECT id FROM requests WHERE id NOT IN (SELECT request_id FROM request_seals) FOR UPDATE",
                        &[],
                    )
                    .await
                    .map_err(pg)?;
                for id in ids(&rows)? {
                    after_change(&tx, seal, &id).await?;
                }
                Ok(())
            }
            .await
        })
    }

    /// The deployment's token and checkpoint signing key: the current key in the store, or
    /// `local` (this replica's key file), imported when the store has none yet. Kept encrypted
    /// with the replicas' key secret when there is one ([`pg_keys`]; a key stored before a
    /// secret was set is encrypted now), else as its key file text. Never logged.
    pub fn deployment_key(
        &self,
        local: &crate::token::SigningKey,
    ) -> Result<crate::token::SigningKey, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let secret = self.key_secret.as_ref();
        let key_err = |e: pg_keys::KeyStoreError| StoreError::Backend(e.to_string());
        step!(self, |tx| {
            async {
                // Replicas starting together import one key.
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&KEYS_LOCK])
                    .await
                    .map_err(pg)?;
                let current = tx
                    .query_opt("SELECT kid, key_text FROM signing_keys WHERE current", &[])
                    .await
                    .map_err(pg)?;
                if let Some(row) = current {
                    let kid: String = row.try_get(0).map_err(pg)?;
                    let stored: String = row.try_get(1).map_err(pg)?;
                    let key = pg_keys::open(&stored, secret).map_err(key_err)?;
                    if key.kid() != kid {
                        return Err(StoreError::Backend(
                            "the stored signing key does not match its key id: the row was changed".into(),
                        ));
                    }
                    if secret.is_some() && !pg_keys::is_sealed(&stored) {
                        let sealed = pg_keys::seal(&key, secret).map_err(key_err)?;
                        tx.execute(
                            "UPDATE signing_keys SET key_text = $2 WHERE kid = $1",
                            &[&kid, &sealed],
                        )
                        .await
                        .map_err(pg)?;
                    }
                    return Ok(key);
                }
                let sealed = pg_keys::seal(local, secret).map_err(key_err)?;
                tx.execute(
                    "INSERT INTO signing_keys (kid, key_text, public_text, added_at, current) VALUES ($1, $2, $3, $4, TRUE)",
                    &[&local.kid(), &sealed, &local.public_key().to_file_text(), &now],
                )
                .await
                .map_err(pg)?;
                pg_keys::open(&sealed, secret).map_err(key_err)
            }
            .await
        })
    }

    /// Whether the deployment's key is kept encrypted (a key secret is configured).
    pub fn encrypts_key(&self) -> bool {
        self.key_secret.is_some()
    }

    /// Start the (empty) audit chain with the records of the file log in `dir`, which must
    /// verify, sealed, with `key` (`jitsh migrate`: the deployment's record then goes on from
    /// the SQLite-era log). Returns how many records were taken over (0: no log there).
    pub fn adopt_file_log(
        &self,
        dir: &std::path::Path,
        key: &crate::audit::AuditVerifyKey,
    ) -> Result<usize, StoreError> {
        let paths = crate::audit::log::log_files(dir).map_err(backend)?;
        if paths.is_empty() {
            return Ok(0);
        }
        let verdict =
            crate::audit::read::verify_paths(&paths, std::slice::from_ref(key), Default::default())
                .map_err(backend)?;
        if let Err(finding) = verdict {
            return Err(StoreError::Backend(format!(
                "the file audit log `{}` does not verify ({finding}); check it with `jitsh audit verify`, or start and stop the service once so it is sealed",
                dir.display()
            )));
        }
        let mut records = Vec::new();
        for path in &paths {
            let text = std::fs::read_to_string(path).map_err(backend)?;
            for line in text.lines().filter(|l| !l.is_empty()) {
                let (record, _) = crate::audit::chain::decode(line.as_bytes()).map_err(backend)?;
                let seq = i64::try_from(record.seq).map_err(backend)?;
                records.push((seq, line.to_owned()));
            }
        }
        let now = chrono::Utc::now().timestamp();
        step!(self, |tx| {
            async { pg_chain::adopt(&tx, &records, now).await }.await
        })
    }

    /// Check request seals with `sealer` on reads, without sealing anything (review tools).
    pub fn check_seals_with(&self, sealer: Sealer) {
        let _ = self.seal.set(sealer);
    }

    /// The deployment's current signing key, if a replica or `jitsh migrate` stored one.
    pub fn current_key(&self) -> Result<Option<crate::token::SigningKey>, StoreError> {
        let text: Option<String> = self.run(async {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT key_text FROM signing_keys WHERE current", &[])
                .await
                .map_err(pg);
            self.put(client);
            row?.map(|r| r.try_get(0)).transpose().map_err(pg)
        })?;
        text.map(|t| {
            pg_keys::open(&t, self.key_secret.as_ref())
                .map_err(|e| StoreError::Backend(e.to_string()))
        })
        .transpose()
    }

    /// Requests whose seal does not match (for `jitsh audit verify postgres://…`); empty when
    /// the store does not seal.
    pub fn tampered_requests(&self) -> Result<Vec<String>, StoreError> {
        let seal = self.seal.get();
        snapshot!(self, |tx| {
            async {
                let c = &tx;
                let rows = c
                    .query("SELECT id FROM requests ORDER BY created_at, id", &[])
                    .await
                    .map_err(pg)?;
                let mut bad = Vec::new();
                for id in ids(&rows)? {
                    match load(c, seal, &id, false).await {
                        Ok(_) => {}
                        // A row that no longer even reads as a request was edited too.
                        Err(StoreError::Tampered(_) | StoreError::Backend(_)) => bad.push(id),
                        Err(e) => return Err(e),
                    }
                }
                Ok(bad)
            }
            .await
        })
    }

    /// Verify the audit chain in the database (see [`pg_chain::verify`]).
    pub fn verify_chain(
        &self,
        keys: &[crate::audit::AuditVerifyKey],
        options: crate::audit::VerifyOptions,
    ) -> Result<pg_chain::Verdict, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let out = pg_chain::verify(&client, keys, options).await;
            self.put(client);
            out
        })
    }

    /// Write the audit chain as log lines (see [`pg_chain::export`]).
    pub fn export_chain(&self, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let n = pg_chain::export(&client, out).await;
            self.put(client);
            n
        })
    }

    /// Run `f` on a connection of the pool (read-only tools: verify, export).
    pub fn with_client<T>(
        &self,
        f: impl for<'c> FnOnce(
            &'c Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, StoreError>> + 'c>,
        >,
    ) -> Result<T, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let out = f(&client).await;
            self.put(client);
            out
        })
    }
}

impl PgStore {
    /// [`Store::expire_pending`] under the sweep lock.
    fn expire_locked(
        &self,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let due: Vec<String> = self.run(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id FROM requests WHERE status = 'pending' AND pending_expires_at <= $1 ORDER BY created_at LIMIT 500",
                    &[&now],
                )
                .await
                .map_err(pg);
            self.put(client);
            ids(&rows?)
        })?;
        let mut expired = Vec::new();
        for id in due {
            // Locked and re-checked: a replica sweeping at the same time skips what this one
            // expired, and a vote that got in first wins.
            let record = match step!(self, |tx| {
                async {
                    let record = load(&tx, self.seal.get(), &id, true).await?;
                    if record.status != Status::Pending {
                        return Ok(None);
                    }
                    tx.execute(
                        "UPDATE requests SET status = 'expired', decided_at = $2, decided_by = 'jitsh' WHERE id = $1",
                        &[&id, &now],
                    )
                    .await
                    .map_err(pg)?;
                    let record = after_change(&tx, self.seal.get(), &id).await?;
                    let notes = hook(&record)?;
                    enqueue(&tx, &notes, now).await?;
                    Ok(Some(record))
                }
                .await
            }) {
                // An edited request is never acted on, and must not hold up the others.
                Err(StoreError::Tampered(id)) => {
                    tracing::error!(request = %id, "not expiring a request edited outside the service");
                    None
                }
                other => other?,
            };
            expired.extend(record);
        }
        Ok(expired)
    }
}

/// The directory as stored, with its version.
async fn read_directory(tx: &Transaction<'_>) -> Result<(i64, Directory), StoreError> {
    let version: i64 = tx
        .query_one("SELECT version FROM directory_version WHERE id = 1", &[])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    let mut dir = Directory::default();
    for r in tx
        .query(
            "SELECT name, email, person, groups, roles, credential_sha256 FROM directory_users ORDER BY position",
            &[],
        )
        .await
        .map_err(pg)?
    {
        dir.users.push(User {
            name: r.try_get(0).map_err(pg)?,
            email: r.try_get(1).map_err(pg)?,
            person: r.try_get(2).map_err(pg)?,
            groups: r.try_get(3).map_err(pg)?,
            roles: r.try_get(4).map_err(pg)?,
            credential_sha256: r.try_get(5).map_err(pg)?,
        });
    }
    for r in tx
        .query(
            "SELECT kind, name, members, description FROM directory_sets",
            &[],
        )
        .await
        .map_err(pg)?
    {
        let kind: String = r.try_get(0).map_err(pg)?;
        let members = Members {
            members: r.try_get(2).map_err(pg)?,
            description: r.try_get(3).map_err(pg)?,
        };
        let name: String = r.try_get(1).map_err(pg)?;
        match kind.as_str() {
            "role" => dir.roles.insert(name, members),
            _ => dir.groups.insert(name, members),
        };
    }
    Ok((version, dir))
}

/// Store what changed from `before` to `after` and move the version on.
async fn write_directory(
    tx: &Transaction<'_>,
    before: &Directory,
    after: &Directory,
) -> Result<(), StoreError> {
    if before == after {
        return Ok(());
    }
    for user in &before.users {
        if !after.users.iter().any(|u| u.name == user.name) {
            tx.execute("DELETE FROM directory_users WHERE name = $1", &[&user.name])
                .await
                .map_err(pg)?;
        }
    }
    for user in &after.users {
        if before.users.contains(user) {
            continue;
        }
        tx.execute(
            "INSERT INTO directory_users (name, email, person, groups, roles, credential_sha256) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET email = EXCLUDED.email, person = EXCLUDED.person, groups = EXCLUDED.groups,
               roles = EXCLUDED.roles, credential_sha256 = EXCLUDED.credential_sha256",
            &[&user.name, &user.email, &user.person, &user.groups, &user.roles, &user.credential_sha256],
        )
        .await
        .map_err(pg)?;
    }
    if before.groups != after.groups || before.roles != after.roles {
        tx.execute("DELETE FROM directory_sets", &[])
            .await
            .map_err(pg)?;
        for (kind, sets) in [("group", &after.groups), ("role", &after.roles)] {
            for (name, m) in sets {
                tx.execute(
                    "INSERT INTO directory_sets (kind, name, members, description) VALUES ($1, $2, $3, $4)",
                    &[&kind, name, &m.members, &m.description],
                )
                .await
                .map_err(pg)?;
            }
        }
    }
    tx.execute(
        "UPDATE directory_version SET version = version + 1 WHERE id = 1",
        &[],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

impl PgStore {
    /// Bring the directory file `file` into the store, once per deployment (the first
    /// replica, or `jitsh migrate`): later starts find it imported and leave the file alone.
    /// Returns how many users were imported (`None`: imported before).
    pub fn import_directory(
        &self,
        file: &Directory,
        hook: Hook<'_, usize>,
    ) -> Result<Option<usize>, StoreError> {
        let now = chrono::Utc::now().timestamp();
        step!(self, |tx| {
            async {
                let imported: bool = tx
                    .query_one(
                        "SELECT imported FROM directory_version WHERE id = 1 FOR UPDATE",
                        &[],
                    )
                    .await
                    .map_err(pg)?
                    .try_get(0)
                    .map_err(pg)?;
                if imported {
                    return Ok(None);
                }
                let (_, before) = read_directory(&tx).await?;
                // Users already added through the store stay; the file's others join them.
                let mut after = before.clone();
                let mut added = 0;
                for user in &file.users {
                    if !after
                        .users
                        .iter()
                        .any(|u| u.name.eq_ignore_ascii_case(&user.name))
                    {
                        after.users.push(user.clone());
                        added += 1;
                    }
                }
                for (name, m) in &file.groups {
                    after
                        .groups
                        .entry(name.clone())
                        .or_insert_with(|| m.clone());
                }
                for (name, m) in &file.roles {
                    after.roles.entry(name.clone()).or_insert_with(|| m.clone());
                }
                write_directory(&tx, &before, &after).await?;
                tx.execute(
                    "UPDATE directory_version SET imported = TRUE WHERE id = 1",
                    &[],
                )
                .await
                .map_err(pg)?;
                let notes = hook(&added)?;
                enqueue(&tx, &notes, now).await?;
                Ok(Some(added))
            }
            .await
        })
    }
}

/// How a copied column is typed in PostgreSQL.
#[derive(Clone, Copy)]
enum Col {
    Text,
    Int,
    /// An SQLite 0/1 integer.
    Bool,
}

/// What `jitsh migrate` copies: SQLite table and columns, PostgreSQL table and columns.
const COPIED: &[(&str, &str, &str, &[Col])] = {
    use Col::{Bool, Int, Text};
    &[
        (
            "SELECT id, requester, body, status, created_at, pending_expires_at, decided_at, decided_by, decision_comment FROM requests ORDER BY rowid",
            "requests",
            "id, requester, body, status, created_at, pending_expires_at, decided_at, decided_by, decision_comment",
            &[Text, Text, Text, Text, Int, Int, Int, Text, Text],
        ),
        (
            "SELECT request_id, approver, comment, at FROM approvals",
            "approvals",
            "request_id, approver, comment, at",
            &[Text, Text, Text, Int],
        ),
        (
            "SELECT jti, request_id, sub, rule, nbf, exp, uses, used, revoked_at, revoked_by FROM grants",
            "grants",
            "jti, request_id, sub, rule, nbf, exp, uses, used, revoked_at, revoked_by",
            &[Text, Text, Text, Text, Int, Int, Int, Int, Int, Text],
        ),
        (
            "SELECT scope, reason, set_by, set_at, expires_at FROM locks",
            "locks",
            "scope, reason, set_by, set_at, expires_at",
            &[Text, Text, Text, Int, Int],
        ),
        (
            "SELECT channel, recipient, subject, body, attempts, next_attempt_at, delivered_at, failed, last_error FROM outbox ORDER BY id",
            "outbox",
            "channel, recipient, subject, body, attempts, next_attempt_at, delivered_at, failed, last_error",
            &[Text, Text, Text, Text, Int, Int, Int, Bool, Text],
        ),
        (
            "SELECT event FROM audit_inbox ORDER BY id",
            "audit_inbox",
            "event",
            &[Text],
        ),
        (
            "SELECT id, body, mac FROM control",
            "control",
            "id, body, mac",
            &[Int, Text, Text],
        ),
        (
            "SELECT id, account, session, started_at, commands, acked_by, acked_at, ack_comment FROM reviews ORDER BY id",
            "reviews",
            "id, account, session, started_at, commands, acked_by, acked_at, ack_comment",
            &[Int, Text, Text, Int, Int, Text, Int, Text],
        ),
        (
            "SELECT review_id, n, line FROM review_lines",
            "review_lines",
            "review_id, n, line",
            &[Int, Int, Text],
        ),
        (
            "SELECT user, batch, events, sha256, received_at FROM gate_batches",
            "gate_batches",
            "sender, batch, events, sha256, received_at",
            &[Text, Text, Int, Text, Int],
        ),
        // Seals made with the same key: an edit made before the move is still found after.
        (
            "SELECT request_id, mac FROM request_seals",
            "request_seals",
            "request_id, mac",
            &[Text, Text],
        ),
        (
            "SELECT session, user FROM gate_sessions",
            "gate_sessions",
            "session, owner",
            &[Text, Text],
        ),
    ]
};

type Copied = Vec<Vec<Box<dyn ToSql + Sync + Send>>>;

/// Every row of one SQLite table, typed for PostgreSQL.
fn read_table(conn: &rusqlite::Connection, sql: &str, cols: &[Col]) -> Result<Copied, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut out: Copied = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(cols.len());
        for (i, col) in cols.iter().enumerate() {
            values.push(match col {
                Col::Text => Box::new(row.get::<_, Option<String>>(i).map_err(backend)?),
                Col::Int => Box::new(row.get::<_, Option<i64>>(i).map_err(backend)?),
                Col::Bool => Box::new(
                    row.get::<_, Option<i64>>(i)
                        .map_err(backend)?
                        .map(|v| v != 0),
                ),
            });
        }
        out.push(values);
    }
    Ok(out)
}

impl PgStore {
    /// Copy the SQLite store at `path` (brought to the current schema first) into this
    /// database, in one transaction; refused unless this database has no requests yet.
    /// Returns the rows copied per table.
    pub fn import_sqlite(
        &self,
        path: &std::path::Path,
    ) -> Result<Vec<(&'static str, usize)>, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Backend(format!(
                "no SQLite store at `{}`",
                path.display()
            )));
        }
        // Migrates the file to this jitsh's schema, so the columns read below exist.
        drop(super::sqlite::SqliteStore::open(path)?);
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(backend)?;
        let tables = COPIED
            .iter()
            .map(|(sql, table, columns, cols)| {
                Ok((*table, *columns, read_table(&conn, sql, cols)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        step!(self, |tx| {
            async {
                // Whole tables at once: a half-filled or in-use database is not merged into.
                tx.execute("LOCK TABLE requests IN EXCLUSIVE MODE", &[])
                    .await
                    .map_err(pg)?;
                let row = tx
                    .query_one(
                        "SELECT (SELECT COUNT(*) FROM requests) + (SELECT COUNT(*) FROM locks)
                              + (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM audit_inbox)
                              + (SELECT COUNT(*) FROM gate_batches)",
                        &[],
                    )
                    .await
                    .map_err(pg)?;
                let existing: i64 = row.try_get(0).map_err(pg)?;
                if existing > 0 {
                    return Err(StoreError::Backend(format!(
                        "the PostgreSQL store is not empty ({existing} rows); migrate into a new database"
                    )));
                }
                let mut counts = Vec::new();
                for (table, columns, rows) in &tables {
                    let marks = (1..=columns.split(',').count())
                        .map(|n| format!("${n}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let stmt = tx
                        .prepare(&format!("INSERT INTO {table} ({columns}) VALUES ({marks})"))
                        .await
                        .map_err(pg)?;
                    for row in rows {
                        let refs: Vec<&(dyn ToSql + Sync)> = row
                            .iter()
                            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                            .collect();
                        tx.execute(&stmt, &refs).await.map_err(pg)?;
                    }
                    counts.push((*table, rows.len()));
                }
                // Review ids were copied as they were: new ones continue after them.
                tx.execute(
                    "SELECT setval(pg_get_serial_sequence('reviews', 'id'), GREATEST((SELECT MAX(id) FROM reviews), 1))",
                    &[],
                )
                .await
                .map_err(pg)?;
                Ok(counts)
            }
            .await
        })
    }
}
