//! [`Store`] on one SQLite file (`STATE/jitsh.db`): WAL journal, `synchronous = FULL`, schema
//! versioned by `PRAGMA user_version`. Each step is one `BEGIN IMMEDIATE` transaction, so other
//! processes on the same file (the CLI's `user add`, a second service) serialize with it too.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::audit::{AuditEvent, AuditSinkError};

use super::store::{
    blocking_lock, review_event, review_line, Approval, ApproveOutcome, Control, GateBatch, Grant,
    Hook, ListQuery, Lock, NewRequest, Notification, OutboxItem, Quorum, RequestRecord, Review,
    Revocation, Status, Store, StoreError, UnixTime, REVIEW_LINES,
};

/// Schema steps; `user_version` is the number applied. Append only.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    body TEXT NOT NULL,                -- NewRequest as JSON (immutable)
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    pending_expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    decision_comment TEXT
);
CREATE INDEX requests_status ON requests(status, created_at);
CREATE INDEX requests_requester ON requests(requester, created_at);
CREATE TABLE approvals (
    request_id TEXT NOT NULL REFERENCES requests(id),
    approver TEXT NOT NULL,
    comment TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE grants (
    jti TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE REFERENCES requests(id),
    sub TEXT NOT NULL,
    rule TEXT NOT NULL,
    nbf INTEGER NOT NULL,
    exp INTEGER NOT NULL,
    uses INTEGER,
    used INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER,
    revoked_by TEXT
);
CREATE INDEX grants_revoked ON grants(revoked_at);
CREATE TABLE locks (
    scope TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    failed INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox(delivered_at, failed, next_attempt_at);
"#,
    r#"
CREATE TABLE audit_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL               -- AuditEvent as JSON, written by another process
);
"#,
    r#"
CREATE TABLE gate_batches (
    user TEXT NOT NULL,
    batch TEXT NOT NULL,
    events INTEGER NOT NULL,
    sha256 TEXT NOT NULL,             -- of the events as sent, to refuse a reused id
    received_at INTEGER NOT NULL,
    PRIMARY KEY (user, batch)
);
"#,
    r#"
CREATE TABLE gate_sessions (
    session TEXT PRIMARY KEY,         -- a gate session id, owned by the first user to send it
    user TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE request_seals (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    mac TEXT NOT NULL                 -- HMAC-SHA256 over the request, its votes and its grant
);
"#,
    r#"
CREATE TABLE control (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,               -- Control as JSON
    mac TEXT                          -- its seal (HMAC-SHA256), as requests are sealed
);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    session TEXT NOT NULL UNIQUE,
    started_at INTEGER NOT NULL,
    commands INTEGER NOT NULL DEFAULT 0,
    acked_by TEXT,
    acked_at INTEGER,
    ack_comment TEXT
);
CREATE INDEX reviews_open ON reviews(acked_at, id);
CREATE TABLE review_lines (
    review_id INTEGER NOT NULL REFERENCES reviews(id),
    n INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (review_id, n)
);
"#,
];

/// The SQLite store. One connection behind a mutex: SQLite serializes writers anyway, and the
/// async side reaches it only through `spawn_blocking`.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Seals every request with its votes and grant (see [`SqliteStore::open_sealed`]).
    seal: Option<Sealer>,
}

/// The key that seals requests. Derived from the service's signing key, never stored or
/// logged; not `Debug`-printed.
pub struct Sealer(ring::hmac::Key);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Domain of the seal key derivation and of the sealed bytes.
const SEAL_DOMAIN: &[u8] = b"jitsh store seal v1\0";

impl Sealer {
    /// The sealing key for a service whose signing key has `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Sealer {
        let derived = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed),
            SEAL_DOMAIN,
        );
        Sealer(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            derived.as_ref(),
        ))
    }

    /// The sealed bytes: the request id (length-prefixed) and the whole record as JSON.
    fn message(record: &RequestRecord) -> Result<Vec<u8>, StoreError> {
        let mut msg = SEAL_DOMAIN.to_vec();
        msg.extend_from_slice(&(record.new.id.len() as u64).to_be_bytes());
        msg.extend_from_slice(record.new.id.as_bytes());
        serde_json::to_writer(&mut msg, record).map_err(backend)?;
        Ok(msg)
    }

    pub(crate) fn mac(&self, record: &RequestRecord) -> Result<String, StoreError> {
        let tag = ring::hmac::sign(&self.0, &Sealer::message(record)?);
        Ok(crate::audit::chain::hex(tag.as_ref()))
    }

    /// The seal of the elevated access control as stored (`body`, its JSON).
    pub(crate) fn control_mac(&self, body: &str) -> String {
        let mut msg = SEAL_DOMAIN.to_vec();
        msg.extend_from_slice(b"control\0");
        msg.extend_from_slice(body.as_bytes());
        crate::audit::chain::hex(ring::hmac::sign(&self.0, &msg).as_ref())
    }

    pub(crate) fn control_verify(&self, body: &str, stored: &str) -> bool {
        let Some(tag) = crate::audit::chain::hex_decode(stored) else {
            return false;
        };
        let mut msg = SEAL_DOMAIN.to_vec();
        msg.extend_from_slice(b"control\0");
        msg.extend_from_slice(body.as_bytes());
        ring::hmac::verify(&self.0, &msg, &tag).is_ok()
    }

    /// Whether `stored` (hex) is the record's seal, compared in constant time.
    pub(crate) fn verify(&self, record: &RequestRecord, stored: &str) -> Result<bool, StoreError> {
        let Some(tag) = crate::audit::chain::hex_decode(stored) else {
            return Ok(false);
        };
        Ok(ring::hmac::verify(&self.0, &Sealer::message(record)?, &tag).is_ok())
    }
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        migrate(&mut conn)?;
        // Indexes added without a schema step (idempotent): listings page by creation time and
        // id, within a status, a requester, or all requests.
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS requests_created ON requests(created_at, id);
             CREATE INDEX IF NOT EXISTS requests_status_page ON requests(status, created_at, id);
             CREATE INDEX IF NOT EXISTS requests_requester_page ON requests(requester, created_at, id);",
        )
        .map_err(backend)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            seal: None,
        })
    }

    /// Open as the service does: every step seals the requests it changes (request, votes,
    /// grant window and uses, under an HMAC keyed from the signing key), and every read of a
    /// request checks its seal, so a row edited in the database is refused
    /// ([`StoreError::Tampered`]) rather than trusted. Requests written before seals existed
    /// are sealed once, as found, when the store is first opened this way.
    pub fn open_sealed(path: &Path, sealer: Sealer) -> Result<SqliteStore, StoreError> {
        let mut store = SqliteStore::open(path)?;
        store.seal = Some(sealer);
        store.step(|tx| {
            let ids: Vec<String> = tx
                .prepare("SELECT id FROM requests WHERE id NOT IN (SELECT request_id FROM request_seals)")
                .map_err(backend)?
                .query_map([], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            for id in ids {
                store.reseal(tx, &id)?;
            }
            Ok(())
        })?;
        Ok(store)
    }

    /// Requests in the database at `path` whose seal does not match (read only: for
    /// `jitsh audit verify --store`).
    pub fn tampered_requests(path: &Path, sealer: &Sealer) -> Result<Vec<String>, StoreError> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM requests ORDER BY created_at, id")
            .map_err(backend)?
            .query_map([], |r| r.get(0))
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        let has_seals: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'request_seals'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(backend)?
            > 0;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            seal: Some(Sealer(sealer.0.clone())),
        };
        let conn = store.conn()?;
        let mut bad = Vec::new();
        for id in ids {
            let tampered = !has_seals
                || match store.load(&conn, &id) {
                    Ok(_) => false,
                    Err(StoreError::Tampered(_)) => true,
                    // A row that no longer even reads as a request was edited too.
                    Err(StoreError::Backend(_)) => true,
                    Err(e) => return Err(e),
                };
            if tampered {
                bad.push(id);
            }
        }
        Ok(bad)
    }

    /// Recompute the seal of request `id` after a step changed it.
    fn reseal(&self, tx: &Connection, id: &str) -> Result<(), StoreError> {
        let Some(sealer) = &self.seal else {
            return Ok(());
        };
        let mac = sealer.mac(&load_unchecked(tx, id)?)?;
        tx.execute(
            "INSERT INTO request_seals (request_id, mac) VALUES (?1, ?2) ON CONFLICT(request_id) DO UPDATE SET mac = ?2",
            params![id, mac],
        )
        .map_err(backend)?;
        Ok(())
    }

    /// Reseal request `id` after a step changed it, and read it back.
    fn after_change(&self, tx: &Connection, id: &str) -> Result<RequestRecord, StoreError> {
        self.reseal(tx, id)?;
        load_unchecked(tx, id)
    }

    /// `grant` as its sealed request holds it: a grant row changed on its own (window, uses,
    /// revocation) no longer matches the request's seal.
    fn sealed_grant(&self, tx: &Connection, grant: Grant) -> Result<Grant, StoreError> {
        if self.seal.is_none() {
            return Ok(grant);
        }
        let record = self.load(tx, &grant.request_id)?;
        match record.grant {
            Some(g) if g == grant => Ok(g),
            _ => Err(StoreError::Tampered(grant.request_id)),
        }
    }

    /// Request `id`, its seal checked.
    fn load(&self, tx: &Connection, id: &str) -> Result<RequestRecord, StoreError> {
        let record = load_unchecked(tx, id)?;
        let Some(sealer) = &self.seal else {
            return Ok(record);
        };
        let stored: Option<String> = tx
            .query_row(
                "SELECT mac FROM request_seals WHERE request_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        let same = match stored {
            Some(stored) => sealer.verify(&record, &stored)?,
            None => false,
        };
        if !same {
            return Err(StoreError::Tampered(id.to_owned()));
        }
        Ok(record)
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Backend("state connection poisoned".into()))
    }

    /// Run `step` in one immediate transaction; commit only if it returns `Ok`.
    fn step<T>(
        &self,
        step: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = step(&tx)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
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
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", n + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn enqueue(tx: &Transaction<'_>, notes: &[Notification], now: UnixTime) -> Result<(), StoreError> {
    for n in notes {
        tx.execute(
            "INSERT INTO outbox (channel, recipient, subject, body, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![n.channel, n.recipient, n.subject, n.body, now],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// Open or extend the reviews of a system account's batch, in the batch's step: a session's
/// first batch opens its review, its lines are added, and a line after an acknowledgement opens
/// it again (an acknowledgement covers only what was shown). Review events go to the inbox
/// ahead of the batch's own.
fn note_reviews(tx: &Transaction<'_>, batch: &GateBatch, now: UnixTime) -> Result<(), StoreError> {
    let mut sessions: Vec<&str> = batch.events.iter().map(|e| e.subject.as_str()).collect();
    sessions.sort_unstable();
    sessions.dedup();
    for session in sessions {
        let opened = tx
            .execute(
                "INSERT OR IGNORE INTO reviews (account, session, started_at) VALUES (?1, ?2, ?3)",
                params![batch.user, session, now],
            )
            .map_err(backend)?;
        let (id, account, acked): (i64, String, Option<i64>) = tx
            .query_row(
                "SELECT id, account, acked_at FROM reviews WHERE session = ?1",
                params![session],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(backend)?;
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
                "UPDATE reviews SET acked_by = NULL, acked_at = NULL, ack_comment = NULL WHERE id = ?1",
                params![id],
            )
            .map_err(backend)?;
        }
        if opened == 1 || reopened {
            let mut event = review_event("review.open", id, &account, session, now);
            if reopened {
                event.details.insert("reopened".into(), true.into());
            }
            let text = serde_json::to_string(&event).map_err(backend)?;
            tx.execute("INSERT INTO audit_inbox (event) VALUES (?1)", params![text])
                .map_err(backend)?;
        }
        for line in lines {
            let n: i64 = tx
                .query_row(
                    "UPDATE reviews SET commands = commands + 1 WHERE id = ?1 RETURNING commands",
                    params![id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if u64::try_from(n).unwrap_or(u64::MAX) <= REVIEW_LINES {
                tx.execute(
                    "INSERT INTO review_lines (review_id, n, line) VALUES (?1, ?2, ?3)",
                    params![id, n, line],
                )
                .map_err(backend)?;
            }
        }
    }
    Ok(())
}

const REVIEW_COLUMNS: &str =
    "id, account, session, started_at, commands, acked_by, acked_at, ack_comment";

fn review_row(r: &Row<'_>) -> rusqlite::Result<Review> {
    Ok(Review {
        id: r.get(0)?,
        account: r.get(1)?,
        session: r.get(2)?,
        started_at: r.get(3)?,
        commands: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        ran: Vec::new(),
        acked_by: r.get(5)?,
        acked_at: r.get(6)?,
        ack_comment: r.get(7)?,
    })
}

fn load_review(tx: &Connection, id: i64) -> Result<Review, StoreError> {
    let mut review = tx
        .query_row(
            &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ?1"),
            params![id],
            review_row,
        )
        .optional()
        .map_err(backend)?
        .ok_or(StoreError::ReviewNotFound(id))?;
    let mut stmt = tx
        .prepare_cached("SELECT line FROM review_lines WHERE review_id = ?1 ORDER BY n")
        .map_err(backend)?;
    review.ran = stmt
        .query_map(params![id], |r| r.get(0))
        .map_err(backend)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(backend)?;
    Ok(review)
}

fn load_unchecked(tx: &Connection, id: &str) -> Result<RequestRecord, StoreError> {
    let row = tx
        .query_row(
            "SELECT body, status, decided_at, decided_by, decision_comment FROM requests WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let (body, status, decided_at, decided_by, decision_comment) = row;
    let new: NewRequest = serde_json::from_str(&body).map_err(backend)?;
    let status = Status::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("unknown status `{status}` in database")))?;
    let mut stmt = tx
        .prepare_cached(
            "SELECT approver, comment, at FROM approvals WHERE request_id = ?1 ORDER BY at, approver",
        )
        .map_err(backend)?;
    let approvals = stmt
        .query_map(params![id], |r| {
            Ok(Approval {
                approver: r.get(0)?,
                comment: r.get(1)?,
                at: r.get(2)?,
            })
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let grant = tx
        .query_row(
            "SELECT jti, request_id, sub, nbf, exp, uses, used, revoked_at, revoked_by FROM grants WHERE request_id = ?1",
            params![id],
            grant_row,
        )
        .optional()
        .map_err(backend)?;
    Ok(RequestRecord {
        new,
        status,
        approvals,
        decided_at,
        decided_by,
        decision_comment,
        grant,
    })
}

/// The listing statement for `q`. Only the conditions asked for are in it, so SQLite seeks the
/// matching index (status or requester, then creation time and id) from the cursor on, in
/// order, instead of scanning and sorting. Visibility applies before LIMIT: no volume of other
/// people's requests can push a visible one off the page.
fn list_statement(q: &ListQuery) -> Result<(String, Vec<rusqlite::types::Value>), StoreError> {
    use rusqlite::types::Value as Sql;
    let mut sql = String::from("SELECT id FROM requests WHERE 1");
    let mut args: Vec<Sql> = Vec::new();
    if let Some(status) = q.status {
        sql.push_str(" AND status = ?");
        args.push(Sql::Text(status.as_str().to_owned()));
    }
    if let Some(requester) = &q.requester {
        sql.push_str(" AND requester = ?");
        args.push(Sql::Text(requester.clone()));
    }
    if let Some((name, groups)) = &q.viewer {
        sql.push_str(
            " AND (requester = ? COLLATE NOCASE
                   OR EXISTS (SELECT 1 FROM json_each(requests.body, '$.approvers') AS a
                              WHERE lower(a.value) IN (SELECT value FROM json_each(?))))",
        );
        args.push(Sql::Text(name.clone()));
        args.push(Sql::Text(serde_json::to_string(groups).map_err(backend)?));
    }
    if let Some((at, id)) = &q.after {
        sql.push_str(" AND (created_at, id) < (?, ?)");
        args.push(Sql::Integer(*at));
        args.push(Sql::Text(id.clone()));
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    args.push(Sql::Integer(i64::from(q.limit)));
    Ok((sql, args))
}

fn grant_row(r: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        jti: r.get(0)?,
        request_id: r.get(1)?,
        sub: r.get(2)?,
        nbf: r.get(3)?,
        exp: r.get(4)?,
        uses: r.get(5)?,
        used: r.get(6)?,
        revoked_at: r.get(7)?,
        revoked_by: r.get(8)?,
    })
}

fn insert_grant(tx: &Transaction<'_>, g: &Grant, rule: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO grants (jti, request_id, sub, rule, nbf, exp, uses, used) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
        params![g.jti, g.request_id, g.sub, rule, g.nbf, g.exp, g.uses],
    )
    .map_err(backend)?;
    Ok(())
}

fn set_decided(
    tx: &Transaction<'_>,
    id: &str,
    status: Status,
    by: &str,
    comment: Option<&str>,
    at: UnixTime,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE requests SET status = ?2, decided_at = ?3, decided_by = ?4, decision_comment = ?5 WHERE id = ?1",
        params![id, status.as_str(), at, by, comment],
    )
    .map_err(backend)?;
    Ok(())
}

/// The pending request `id`, or why it cannot be decided now.
fn pending(
    store: &SqliteStore,
    tx: &Transaction<'_>,
    id: &str,
    now: UnixTime,
) -> Result<RequestRecord, StoreError> {
    let record = store.load(tx, id)?;
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

fn revocation_row(r: &Row<'_>) -> rusqlite::Result<Revocation> {
    Ok(Revocation {
        jti: r.get(0)?,
        request: r.get(1)?,
        sub: r.get(2)?,
        rule: r.get(3)?,
        revoked_at: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
        exp: r.get(5)?,
    })
}

fn lock_row(r: &Row<'_>) -> rusqlite::Result<Lock> {
    Ok(Lock {
        scope: r.get(0)?,
        reason: r.get(1)?,
        set_by: r.get(2)?,
        set_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

impl Store for SqliteStore {
    fn create_request(
        &self,
        new: &NewRequest,
        auto_grant: Option<&Grant>,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        self.step(|tx| {
            let locks = tx
                .prepare(
                    "SELECT scope, reason, set_by, set_at, expires_at FROM locks WHERE expires_at IS NULL OR expires_at > ?1",
                )
                .and_then(|mut q| {
                    q.query_map(params![new.created_at], lock_row)?
                        .collect::<rusqlite::Result<Vec<Lock>>>()
                })
                .map_err(backend)?;
            if let Some(lock) = blocking_lock(&locks, &new.requester, &new.rule) {
                return Err(StoreError::Locked {
                    scope: lock.scope.clone(),
                    reason: lock.reason.clone(),
                });
            }
            let body = serde_json::to_string(new).map_err(backend)?;
            tx.execute(
                "INSERT INTO requests (id, requester, body, status, created_at, pending_expires_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
                params![new.id, new.requester, body, new.created_at, new.pending_expires_at],
            )
            .map_err(backend)?;
            if let Some(grant) = auto_grant {
                set_decided(tx, &new.id, Status::Approved, "jitsh", Some("auto"), grant.nbf)?;
                insert_grant(tx, grant, &new.rule)?;
            }
            let record = self.after_change(tx, &new.id)?;
            let notes = hook(&record)?;
            enqueue(tx, &notes, new.created_at)?;
            Ok(record)
        })
    }

    fn request(&self, id: &str) -> Result<RequestRecord, StoreError> {
        let conn = self.conn()?;
        self.load(&conn, id)
    }

    fn list_requests(
        &self,
        status: Option<Status>,
        requester: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let conn = self.conn()?;
        let ids: Vec<String> = {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM requests WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR requester = ?2) ORDER BY created_at DESC, rowid DESC LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![status.map(Status::as_str), requester, limit], |r| {
                    r.get(0)
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        ids.iter().map(|id| self.load(&conn, id)).collect()
    }

    fn list_page(&self, q: &ListQuery) -> Result<Vec<RequestRecord>, StoreError> {
        let (sql, args) = list_statement(q)?;
        let conn = self.conn()?;
        let ids: Vec<String> = {
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        ids.iter().map(|id| self.load(&conn, id)).collect()
    }

    fn count_requests(
        &self,
        requester: &str,
        since: UnixTime,
        pending_only: bool,
    ) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let n: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM requests WHERE requester = ?1 AND created_at >= ?2 AND (?3 = 0 OR status = 'pending')",
            )
            .map_err(backend)?
            .query_row(params![requester, since, pending_only], |r| r.get(0))
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn withdraw(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        self.step(|tx| {
            pending(self, tx, id, now)?;
            set_decided(tx, id, Status::Withdrawn, by, None, now)?;
            let record = self.after_change(tx, id)?;
            let notes = hook(&record)?;
            enqueue(tx, &notes, now)?;
            Ok(record)
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
        self.step(|tx| {
            let record = pending(self, tx, id, vote.at)?;
            if record.approvals.iter().any(|a| a.approver == vote.approver) {
                return Err(StoreError::AlreadyApproved {
                    id: id.to_owned(),
                    approver: vote.approver.clone(),
                });
            }
            tx.execute(
                "INSERT INTO approvals (request_id, approver, comment, at) VALUES (?1, ?2, ?3, ?4)",
                params![id, vote.approver, vote.comment, vote.at],
            )
            .map_err(backend)?;
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
            let votes = voters.len();
            let needed = usize::try_from(quorum.needed.max(1)).unwrap_or(usize::MAX);
            let outcome = if votes >= needed {
                set_decided(
                    tx,
                    id,
                    Status::Approved,
                    &vote.approver,
                    vote.comment.as_deref(),
                    vote.at,
                )?;
                insert_grant(tx, grant, &record.new.rule)?;
                ApproveOutcome::Decided {
                    record: self.after_change(tx, id)?,
                }
            } else {
                ApproveOutcome::Recorded {
                    record: self.after_change(tx, id)?,
                }
            };
            let notes = hook(&outcome)?;
            enqueue(tx, &notes, vote.at)?;
            Ok(outcome)
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
        self.step(|tx| {
            pending(self, tx, id, now)?;
            set_decided(tx, id, Status::Denied, by, Some(comment), now)?;
            let record = self.after_change(tx, id)?;
            let notes = hook(&record)?;
            enqueue(tx, &notes, now)?;
            Ok(record)
        })
    }

    fn revoke(
        &self,
        id: &str,
        by: &str,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        self.step(|tx| {
            let record = self.load(tx, id)?;
            if record.status != Status::Approved || record.grant.is_none() {
                return Err(StoreError::AlreadyDecided {
                    id: id.to_owned(),
                    status: record.status.as_str(),
                });
            }
            tx.execute(
                "UPDATE grants SET revoked_at = ?2, revoked_by = ?3 WHERE request_id = ?1",
                params![id, now, by],
            )
            .map_err(backend)?;
            tx.execute(
                "UPDATE requests SET status = 'revoked' WHERE id = ?1",
                params![id],
            )
            .map_err(backend)?;
            let record = self.after_change(tx, id)?;
            let notes = hook(&record)?;
            enqueue(tx, &notes, now)?;
            Ok(record)
        })
    }

    fn grant(&self, jti: &str) -> Result<Grant, StoreError> {
        let conn = self.conn()?;
        let grant = conn
            .query_row(
                "SELECT jti, request_id, sub, nbf, exp, uses, used, revoked_at, revoked_by FROM grants WHERE jti = ?1",
                params![jti],
                grant_row,
            )
            .optional()
            .map_err(backend)?
            .ok_or_else(|| StoreError::GrantNotFound(jti.to_owned()))?;
        self.sealed_grant(&conn, grant)
    }

    fn use_grant(
        &self,
        jti: &str,
        now: UnixTime,
        hook: Hook<'_, Grant>,
    ) -> Result<Grant, StoreError> {
        self.step(|tx| {
            let sql = "SELECT jti, request_id, sub, nbf, exp, uses, used, revoked_at, revoked_by FROM grants WHERE jti = ?1";
            let grant = tx
                .query_row(sql, params![jti], grant_row)
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::GrantNotFound(jti.to_owned()))?;
            let grant = self.sealed_grant(tx, grant)?;
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
                tx.execute(
                    "UPDATE grants SET used = used + 1 WHERE jti = ?1",
                    params![jti],
                )
                .map_err(backend)?;
                self.reseal(tx, &grant.request_id)?;
            }
            let grant = tx
                .query_row(sql, params![jti], grant_row)
                .map_err(backend)?;
            let notes = hook(&grant)?;
            enqueue(tx, &notes, now)?;
            Ok(grant)
        })
    }

    fn expire_pending(
        &self,
        now: UnixTime,
        hook: Hook<'_, RequestRecord>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let ids: Vec<String> = {
            let conn = self.conn()?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM requests WHERE status = 'pending' AND pending_expires_at <= ?1 ORDER BY created_at LIMIT 500",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![now], |r| r.get(0))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        let mut expired = Vec::new();
        for id in ids {
            let record = self.step(|tx| {
                let record = self.load(tx, &id)?;
                if record.status != Status::Pending {
                    return Ok(None);
                }
                tx.execute(
                    "UPDATE requests SET status = 'expired', decided_at = ?2, decided_by = 'jitsh' WHERE id = ?1",
                    params![id, now],
                )
                .map_err(backend)?;
                let record = self.after_change(tx, &id)?;
                let notes = hook(&record)?;
                enqueue(tx, &notes, now)?;
                Ok(Some(record))
            });
            let record = match record {
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

    fn set_lock(&self, lock: &Lock, hook: Hook<'_, Lock>) -> Result<(), StoreError> {
        self.step(|tx| {
            // One lock per scope whatever its case (older rows may differ only in case).
            tx.execute(
                "DELETE FROM locks WHERE scope = ?1 COLLATE NOCASE",
                params![lock.scope],
            )
            .map_err(backend)?;
            tx.execute(
                "INSERT OR REPLACE INTO locks (scope, reason, set_by, set_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![lock.scope, lock.reason, lock.set_by, lock.set_at, lock.expires_at],
            )
            .map_err(backend)?;
            let notes = hook(lock)?;
            enqueue(tx, &notes, lock.set_at)?;
            Ok(())
        })
    }

    fn clear_lock(&self, scope: &str, hook: Hook<'_, Lock>) -> Result<Lock, StoreError> {
        self.step(|tx| {
            let lock = tx
                .query_row(
                    "SELECT scope, reason, set_by, set_at, expires_at FROM locks WHERE scope = ?1 COLLATE NOCASE",
                    params![scope],
                    lock_row,
                )
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::NoLock(scope.to_owned()))?;
            tx.execute(
                "DELETE FROM locks WHERE scope = ?1 COLLATE NOCASE",
                params![scope],
            )
                .map_err(backend)?;
            let notes = hook(&lock)?;
            enqueue(tx, &notes, lock.set_at)?;
            Ok(lock)
        })
    }

    fn active_locks(&self, now: UnixTime) -> Result<Vec<Lock>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT scope, reason, set_by, set_at, expires_at FROM locks WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY scope",
            )
            .map_err(backend)?;
        let rows = stmt.query_map(params![now], lock_row).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn revocations(&self, since: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT jti, request_id, sub, rule, revoked_at, exp FROM grants WHERE (revoked_at IS NOT NULL AND revoked_at >= ?1) OR (uses IS NOT NULL AND used >= uses) ORDER BY revoked_at, jti",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![since], revocation_row)
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn live_grants(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT jti, request_id, sub, rule, revoked_at, exp FROM grants WHERE revoked_at IS NULL AND exp > ?1 ORDER BY jti",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![now], revocation_row)
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn record(&self, hook: Hook<'_, ()>) -> Result<(), StoreError> {
        self.step(|tx| {
            let notes = hook(&())?;
            let now = chrono::Utc::now().timestamp();
            enqueue(tx, &notes, now)
        })
    }

    fn queue_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let text = serde_json::to_string(event).map_err(backend)?;
        self.step(|tx| {
            tx.execute("INSERT INTO audit_inbox (event) VALUES (?1)", params![text])
                .map_err(backend)?;
            Ok(())
        })
    }

    fn queue_gate_batch(&self, batch: &GateBatch, now: UnixTime) -> Result<bool, StoreError> {
        let texts = batch
            .events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        self.step(|tx| {
            let seen = tx
                .query_row(
                    "SELECT sha256 FROM gate_batches WHERE user = ?1 AND batch = ?2",
                    params![batch.user, batch.id],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(backend)?;
            if let Some(sha) = seen {
                return if sha == batch.sha256 {
                    Ok(false)
                } else {
                    Err(StoreError::BatchConflict(batch.id.clone()))
                };
            }
            // A session belongs to the first user who sent events of it: nobody else can add
            // records to it.
            let mut sessions: Vec<&str> = batch.events.iter().map(|e| e.subject.as_str()).collect();
            sessions.sort_unstable();
            sessions.dedup();
            for session in sessions {
                tx.execute(
                    "INSERT OR IGNORE INTO gate_sessions (session, user) VALUES (?1, ?2)",
                    params![session, batch.user.to_ascii_lowercase()],
                )
                .map_err(backend)?;
                let owner: String = tx
                    .query_row(
                        "SELECT user FROM gate_sessions WHERE session = ?1",
                        params![session],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                if !owner.eq_ignore_ascii_case(&batch.user) {
                    return Err(StoreError::SessionNotYours(session.to_owned()));
                }
            }
            if batch.review {
                note_reviews(tx, batch, now)?;
            }
            for text in &texts {
                tx.execute("INSERT INTO audit_inbox (event) VALUES (?1)", params![text])
                    .map_err(backend)?;
            }
            tx.execute(
                "INSERT INTO gate_batches (user, batch, events, sha256, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![batch.user, batch.id, texts.len(), batch.sha256, now],
            )
            .map_err(backend)?;
            Ok(true)
        })
    }

    fn drain_audit(
        &self,
        sink: &mut dyn FnMut(Vec<AuditEvent>) -> Result<(), AuditSinkError>,
    ) -> Result<usize, StoreError> {
        let mut drained = 0;
        loop {
            let n = self.step(|tx| {
                let mut stmt = tx
                    .prepare_cached("SELECT id, event FROM audit_inbox ORDER BY id LIMIT ?1")
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![super::store::DRAIN_CHUNK], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                let Some(&(last, _)) = rows.last() else {
                    return Ok(0);
                };
                let events = rows
                    .iter()
                    .map(|(_, text)| serde_json::from_str::<AuditEvent>(text).map_err(backend))
                    .collect::<Result<Vec<_>, _>>()?;
                let n = events.len();
                sink(events)?;
                tx.execute("DELETE FROM audit_inbox WHERE id <= ?1", params![last])
                    .map_err(backend)?;
                Ok(n)
            })?;
            if n == 0 {
                return Ok(drained);
            }
            drained += n;
        }
    }

    fn control(&self) -> Result<Control, StoreError> {
        let conn = self.conn()?;
        let row: Option<(String, Option<String>)> = conn
            .query_row("SELECT body, mac FROM control WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(backend)?;
        let Some((text, mac)) = row else {
            return Ok(Control::default());
        };
        // A control row the service did not write (its seal does not match) is not used: it
        // could disable approval or name system accounts.
        if let Some(sealer) = &self.seal {
            if !mac.is_some_and(|m| sealer.control_verify(&text, &m)) {
                return Err(StoreError::ControlTampered);
            }
        }
        serde_json::from_str(&text).map_err(backend)
    }

    fn set_control(&self, control: &Control, hook: Hook<'_, Control>) -> Result<(), StoreError> {
        let text = serde_json::to_string(control).map_err(backend)?;
        self.step(|tx| {
            let mac = self.seal.as_ref().map(|s| s.control_mac(&text));
            tx.execute(
                "INSERT INTO control (id, body, mac) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET body = excluded.body, mac = excluded.mac",
                params![text, mac],
            )
            .map_err(backend)?;
            let notes = hook(control)?;
            let now = control.changed.as_ref().map_or(0, |c| c.at);
            enqueue(tx, &notes, now)
        })
    }

    fn reviews(&self, open_only: bool, limit: u32) -> Result<Vec<Review>, StoreError> {
        let conn = self.conn()?;
        let filter = if open_only {
            "WHERE acked_at IS NULL"
        } else {
            ""
        };
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {REVIEW_COLUMNS} FROM reviews {filter} ORDER BY id DESC LIMIT ?1"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![limit], review_row)
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn review(&self, id: i64) -> Result<Review, StoreError> {
        let conn = self.conn()?;
        load_review(&conn, id)
    }

    fn ack_review(
        &self,
        id: i64,
        by: &str,
        comment: Option<&str>,
        at: UnixTime,
        hook: Hook<'_, Review>,
    ) -> Result<Review, StoreError> {
        self.step(|tx| {
            let changed = tx
                .execute(
                    "UPDATE reviews SET acked_by = ?2, acked_at = ?3, ack_comment = ?4 WHERE id = ?1 AND acked_at IS NULL",
                    params![id, by, at, comment],
                )
                .map_err(backend)?;
            let review = load_review(tx, id)?;
            if changed == 0 {
                return Err(StoreError::AlreadyAcked(id));
            }
            let notes = hook(&review)?;
            enqueue(tx, &notes, at)?;
            Ok(review)
        })
    }

    fn due_notifications(&self, now: UnixTime, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, attempts, channel, recipient, subject, body FROM outbox WHERE delivered_at IS NULL AND failed = 0 AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![now, limit], |r| {
                Ok(OutboxItem {
                    id: r.get(0)?,
                    attempts: r.get(1)?,
                    note: Notification {
                        channel: r.get(2)?,
                        recipient: r.get(3)?,
                        subject: r.get(4)?,
                        body: r.get(5)?,
                    },
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn mark_delivered(&self, id: i64, now: UnixTime) -> Result<(), StoreError> {
        self.step(|tx| {
            tx.execute(
                "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1",
                params![id, now],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: UnixTime,
        give_up: bool,
    ) -> Result<(), StoreError> {
        self.step(|tx| {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3, failed = ?4 WHERE id = ?1",
                params![id, error, next_attempt_at, give_up],
            )
            .map_err(backend)?;
            Ok(())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    fn new_request(id: &str, min: u32) -> NewRequest {
        NewRequest {
            id: id.into(),
            requester: "alice".into(),
            target: "New-MoveRequest".into(),
            target_kind: "task".into(),
            tasks: vec!["New-MoveRequest".into()],
            rule: "mailbox-moves".into(),
            mode: "manual".into(),
            approvers: vec!["mbmanagers".into()],
            min_approvals: min,
            reason: "move".into(),
            ticket: None,
            command: None,
            uses: Some(1),
            params: Default::default(),
            grant_params: None,
            duration_secs: 3600,
            created_at: 100,
            pending_expires_at: 1000,
        }
    }

    fn grant(id: &str, at: i64) -> Grant {
        Grant {
            jti: format!("j-{id}"),
            request_id: id.into(),
            sub: "alice".into(),
            nbf: at,
            exp: at + 3600,
            uses: Some(1),
            used: 0,
            revoked_at: None,
            revoked_by: None,
        }
    }

    /// Every voter counts; `needed` votes decide.
    fn all(needed: u32) -> Quorum<'static> {
        Quorum {
            needed,
            counts: &|_| true,
        }
    }

    fn vote(who: &str, at: i64) -> Approval {
        Approval {
            approver: who.into(),
            comment: None,
            at,
        }
    }

    #[test]
    fn listings_seek_an_index_and_never_sort() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let conn = store.conn().unwrap();
        let viewer = Some(("bob".to_owned(), vec!["mbmanagers".to_owned()]));
        let after = Some((1_700_000_000, "r-00".to_owned()));
        let queries = [
            ListQuery {
                status: Some(Status::Pending),
                viewer: viewer.clone(),
                limit: 100,
                ..ListQuery::default()
            },
            ListQuery {
                status: Some(Status::Pending),
                viewer: viewer.clone(),
                after: after.clone(),
                limit: 100,
                ..ListQuery::default()
            },
            ListQuery {
                requester: Some("alice".into()),
                after: after.clone(),
                limit: 100,
                ..ListQuery::default()
            },
            ListQuery {
                viewer,
                after,
                limit: 100,
                ..ListQuery::default()
            },
            ListQuery {
                limit: 500,
                ..ListQuery::default()
            },
        ];
        for q in &queries {
            let (sql, args) = list_statement(q).unwrap();
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            let indexed = plan.contains("requests USING INDEX requests_")
                || plan.contains("requests USING COVERING INDEX requests_");
            assert!(indexed, "{q:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{q:?}: {plan}");
        }
    }

    #[test]
    fn quorum_needs_distinct_approvers_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jitsh.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_request(&new_request("r1", 2), None, &mut |_| Ok(vec![]))
            .unwrap();
        let first = store
            .approve(
                "r1",
                &vote("bob", 200),
                &grant("r1", 200),
                &all(2),
                &mut |_| Ok(vec![]),
            )
            .unwrap();
        assert!(matches!(first, ApproveOutcome::Recorded { .. }));
        let again = store.approve(
            "r1",
            &vote("bob", 201),
            &grant("r1", 201),
            &all(2),
            &mut |_| Ok(vec![]),
        );
        assert!(matches!(again, Err(StoreError::AlreadyApproved { .. })));
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        let second = store
            .approve(
                "r1",
                &vote("dave", 300),
                &grant("r1", 300),
                &all(2),
                &mut |_| Ok(vec![]),
            )
            .unwrap();
        let ApproveOutcome::Decided { record } = second else {
            panic!("quorum of two not reached");
        };
        assert_eq!(record.status, Status::Approved);
        assert_eq!(record.grant.unwrap().nbf, 300);
    }

    #[test]
    fn failing_hook_rolls_the_step_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jitsh.db")).unwrap();
        store
            .create_request(&new_request("r1", 1), None, &mut |_| Ok(vec![]))
            .unwrap();
        let failed = store.approve(
            "r1",
            &vote("bob", 200),
            &grant("r1", 200),
            &all(1),
            &mut |_| {
                Err(crate::audit::AuditSinkError {
                    path: "audit".into(),
                    message: "disk full".into(),
                })
            },
        );
        assert!(matches!(failed, Err(StoreError::Audit(_))));
        let record = store.request("r1").unwrap();
        assert_eq!(record.status, Status::Pending);
        assert!(record.approvals.is_empty());
        assert!(record.grant.is_none());
    }

    #[test]
    fn counted_grant_is_exhausted_after_its_uses() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jitsh.db")).unwrap();
        store
            .create_request(&new_request("r1", 1), Some(&grant("r1", 150)), &mut |_| {
                Ok(vec![])
            })
            .unwrap();
        store.use_grant("j-r1", 200, &mut |_| Ok(vec![])).unwrap();
        let second = store.use_grant("j-r1", 201, &mut |_| Ok(vec![]));
        assert!(matches!(second, Err(StoreError::Exhausted(_))));
    }

    #[test]
    fn queued_audit_events_leave_the_inbox_only_once_appended() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jitsh.db")).unwrap();
        let event = |subject: &str| AuditEvent {
            time: "2026-01-01T00:00:00Z".into(),
            actor: "root".into(),
            action: "user.add".into(),
            subject: subject.into(),
            outcome: "ok".into(),
            details: Default::default(),
        };
        store.queue_audit(&event("a")).unwrap();
        store.queue_audit(&event("b")).unwrap();
        let failed = store.drain_audit(&mut |_| {
            Err(AuditSinkError {
                path: "audit".into(),
                message: "locked".into(),
            })
        });
        assert!(failed.is_err());
        let mut seen = Vec::new();
        let mut calls = 0;
        let n = store
            .drain_audit(&mut |events| {
                calls += 1;
                seen.extend(events.into_iter().map(|e| e.subject));
                Ok(())
            })
            .unwrap();
        // One hand-over (one log sync) for the whole queue.
        assert_eq!(
            (n, seen, calls),
            (2, vec!["a".to_owned(), "b".to_owned()], 1)
        );
        assert_eq!(store.drain_audit(&mut |_| Ok(())).unwrap(), 0);
    }

    #[test]
    fn a_gate_batch_is_queued_once_per_user_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jitsh.db")).unwrap();
        let batch = |user: &str, id: &str, sha: &str, subjects: &[&str]| GateBatch {
            user: user.into(),
            id: id.into(),
            sha256: sha.into(),
            events: subjects
                .iter()
                .map(|s| AuditEvent {
                    time: "2026-01-01T00:00:00Z".into(),
                    actor: user.into(),
                    action: "gate.decision".into(),
                    subject: (*s).into(),
                    outcome: "allow".into(),
                    details: Default::default(),
                })
                .collect(),
            review: false,
        };
        assert!(store
            .queue_gate_batch(&batch("alice", "b1", "x", &["a", "b"]), 1)
            .unwrap());
        assert!(!store
            .queue_gate_batch(&batch("alice", "b1", "x", &["a", "b"]), 2)
            .unwrap());
        assert!(matches!(
            store.queue_gate_batch(&batch("alice", "b1", "y", &["c"]), 3),
            Err(StoreError::BatchConflict(_))
        ));
        assert!(store
            .queue_gate_batch(&batch("bob", "b1", "z", &["d"]), 4)
            .unwrap());
        let mut seen = Vec::new();
        store
            .drain_audit(&mut |events| {
                seen.extend(events.into_iter().map(|e| e.subject));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, ["a", "b", "d"]);
    }

    #[test]
    fn lock_refuses_new_requests_in_scope() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jitsh.db")).unwrap();
        let lock = Lock {
            scope: "user:alice".into(),
            reason: "incident".into(),
            set_by: "root".into(),
            set_at: 50,
            expires_at: None,
        };
        store.set_lock(&lock, &mut |_| Ok(vec![])).unwrap();
        let refused = store.create_request(&new_request("r1", 1), None, &mut |_| Ok(vec![]));
        assert!(matches!(refused, Err(StoreError::Locked { .. })));
        assert!(matches!(store.request("r1"), Err(StoreError::NotFound(_))));
        // The rule's lock, in another case, blocks too; an expired one does not.
        store.clear_lock("user:alice", &mut |_| Ok(vec![])).unwrap();
        let by_rule = Lock {
            scope: "RULE:Mailbox-Moves".into(),
            expires_at: Some(150),
            ..lock
        };
        store.set_lock(&by_rule, &mut |_| Ok(vec![])).unwrap();
        let refused = store.create_request(&new_request("r1", 1), None, &mut |_| Ok(vec![]));
        assert!(
            matches!(&refused, Err(StoreError::Locked { scope, .. }) if scope == "RULE:Mailbox-Moves"),
            "{refused:?}"
        );
        let later = NewRequest {
            created_at: 150,
            ..new_request("r1", 1)
        };
        store
            .create_request(&later, None, &mut |_| Ok(vec![]))
            .unwrap();
    }
}
