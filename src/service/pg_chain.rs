//! The deployment's one audit record in PostgreSQL: the `jitsh-audit/1` hash chain (same
//! records, same hashing, same signed checkpoints as the file log, see [`crate::audit::chain`])
//! kept in `audit_chain`, one row per record holding its exact line.
//!
//! Appends are part of the store step they record: the service's audit sink on PostgreSQL
//! ([`PgAudit`]) does not write when a step is running on its thread; it hands the event to
//! the step ([`Capture`]), which appends it in its own transaction just before the commit.
//! Appends serialise on the chain head row (`audit_head`, locked `FOR UPDATE`), taken last so
//! the lock is held only for the inserts and the commit. A step that rolls back leaves no
//! record; a record is never written for a step that did not happen.

use std::cell::RefCell;
use std::sync::Arc;

use tokio_postgres::Transaction;

use crate::audit::chain::{self, ChainHash, CheckpointSigner};
use crate::audit::{AuditEvent, AuditSink, AuditSinkError};

use super::postgres::PgStore;
use super::store::{StoreError, UnixTime};

/// A checkpoint after this many records since the last one (as the file log).
pub const CHECKPOINT_EVERY: i64 = 1000;

/// The `reason` of [`seal`] that only starts an empty chain (a tool appending to it).
pub const GENESIS_ONLY: &str = "genesis";

/// How the chain is named in messages and verification findings.
pub const CHAIN_NAME: &str = "postgres:audit_chain";

thread_local! {
    /// Events audited by the step running on this thread, not yet appended.
    static CAPTURED: RefCell<Option<Vec<AuditEvent>>> = const { RefCell::new(None) };
}

/// While alive, audit events appended through [`PgAudit`] on this thread wait for the step
/// (which runs on this thread: `block_on` polls it here) to append them in its transaction.
pub(crate) struct Capture {
    outer: Option<Vec<AuditEvent>>,
}

impl Capture {
    pub(crate) fn start() -> Capture {
        let outer = CAPTURED.with(|c| c.borrow_mut().replace(Vec::new()));
        Capture { outer }
    }

    /// The events audited so far (taken: a second call returns only newer ones).
    pub(crate) fn take() -> Vec<AuditEvent> {
        CAPTURED.with(|c| {
            c.borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let outer = self.outer.take();
        CAPTURED.with(|c| *c.borrow_mut() = outer);
    }
}

/// Hand `events` to the running step, or give them back when no step runs on this thread.
fn capture(events: Vec<AuditEvent>) -> Option<Vec<AuditEvent>> {
    CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(queue) => {
            queue.extend(events);
            None
        }
        None => Some(events),
    })
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Backend(e.to_string()),
    }
}

fn encode_err(e: chain::ChainError) -> StoreError {
    StoreError::Audit(AuditSinkError {
        path: CHAIN_NAME.into(),
        message: e.to_string(),
    })
}

/// The chain head, locked until the transaction ends.
struct Head {
    seq: i64,
    hash: ChainHash,
    since_checkpoint: i64,
    sealed_at: i64,
}

async fn lock_head(tx: &Transaction<'_>) -> Result<Head, StoreError> {
    let row = tx
        .query_one(
            "SELECT seq, hash, since_checkpoint, sealed_at FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(pg)?;
    let hash: String = row.try_get(1).map_err(pg)?;
    Ok(Head {
        seq: row.try_get(0).map_err(pg)?,
        hash: ChainHash::from_hex(&hash).ok_or_else(|| {
            StoreError::Backend("the audit chain head is not a hash: the table was edited".into())
        })?,
        since_checkpoint: row.try_get(2).map_err(pg)?,
        sealed_at: row.try_get(3).map_err(pg)?,
    })
}

async fn insert(
    tx: &Transaction<'_>,
    head: &mut Head,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    let seq = head.seq + 1;
    let encoded =
        chain::encode(u64::try_from(seq).unwrap_or(0), &head.hash, event).map_err(encode_err)?;
    let line = std::str::from_utf8(&encoded.line)
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .trim_end_matches('\n');
    tx.execute(
        "INSERT INTO audit_chain (seq, line, action) VALUES ($1, $2, $3)",
        &[&seq, &line, &event.action],
    )
    .await
    .map_err(pg)?;
    head.seq = seq;
    head.hash = encoded.hash;
    head.since_checkpoint += 1;
    Ok(())
}

async fn checkpoint(
    tx: &Transaction<'_>,
    head: &mut Head,
    signer: &CheckpointSigner,
    reason: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    let head_seq = u64::try_from(head.seq).unwrap_or(0);
    let event = chain::checkpoint_event(signer, head_seq, &head.hash, &super::rfc3339(now), reason);
    insert(tx, head, &event).await?;
    head.since_checkpoint = 0;
    head.sealed_at = now;
    Ok(())
}

async fn store_head(tx: &Transaction<'_>, head: &Head) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE audit_head SET seq = $1, hash = $2, since_checkpoint = $3, sealed_at = $4 WHERE id = 1",
        &[&head.seq, &head.hash.to_hex(), &head.since_checkpoint, &head.sealed_at],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Append `events` to the chain in `tx` (a checkpoint after every [`CHECKPOINT_EVERY`]).
pub(crate) async fn append(
    tx: &Transaction<'_>,
    signer: &CheckpointSigner,
    events: &[AuditEvent],
    now: UnixTime,
) -> Result<i64, StoreError> {
    let mut head = lock_head(tx).await?;
    for event in events {
        insert(tx, &mut head, event).await?;
        if head.since_checkpoint >= CHECKPOINT_EVERY {
            checkpoint(tx, &mut head, signer, "interval", now).await?;
        }
    }
    store_head(tx, &head).await?;
    Ok(head.seq)
}

/// Start the chain if it is empty (genesis naming the key), then a checkpoint for `reason`
/// when records are unsealed (`open` and `stop` always write one; `seal` only when the last
/// checkpoint is older than `max_age` seconds). Returns whether a checkpoint was written.
pub(crate) async fn seal(
    tx: &Transaction<'_>,
    signer: &CheckpointSigner,
    reason: &str,
    now: UnixTime,
    max_age: i64,
) -> Result<bool, StoreError> {
    if reason == "seal" {
        // The sweeper asks every second: look before taking the lock every append waits for.
        let row = tx
            .query_one(
                "SELECT seq, since_checkpoint, sealed_at FROM audit_head WHERE id = 1",
                &[],
            )
            .await
            .map_err(pg)?;
        let (seq, since, sealed_at): (i64, i64, i64) = (
            row.try_get(0).map_err(pg)?,
            row.try_get(1).map_err(pg)?,
            row.try_get(2).map_err(pg)?,
        );
        if seq > 0 && (since == 0 || now.saturating_sub(sealed_at) < max_age) {
            return Ok(false);
        }
    }
    let mut head = lock_head(tx).await?;
    let started = head.seq == 0;
    if started {
        let genesis = chain::genesis_event(Some(signer.kid()), &super::rfc3339(now));
        insert(tx, &mut head, &genesis).await?;
    }
    let due = match reason {
        "seal" => head.since_checkpoint > 0 && now.saturating_sub(head.sealed_at) >= max_age,
        GENESIS_ONLY => false,
        _ => true,
    };
    if due {
        checkpoint(tx, &mut head, signer, reason, now).await?;
    }
    if started || due {
        store_head(tx, &head).await?;
    }
    Ok(due)
}

/// Take over a file log's records (`(seq, line)`, verified by the caller, in order) as the
/// start of an empty chain, so the deployment's record goes on from the file log's head.
pub(crate) async fn adopt(
    tx: &Transaction<'_>,
    records: &[(i64, String)],
    now: UnixTime,
) -> Result<usize, StoreError> {
    let mut head = lock_head(tx).await?;
    if head.seq != 0 {
        return Err(StoreError::Backend(
            "the PostgreSQL audit chain is not empty; migrate into a new database".into(),
        ));
    }
    for (seq, line) in records {
        let (record, hash) = chain::decode(line.as_bytes()).map_err(encode_err)?;
        if *seq != head.seq + 1 {
            return Err(StoreError::Backend(format!(
                "the file audit log skips from seq {} to {seq}",
                head.seq
            )));
        }
        tx.execute(
            "INSERT INTO audit_chain (seq, line, action) VALUES ($1, $2, $3)",
            &[seq, line, &record.action],
        )
        .await
        .map_err(pg)?;
        head.seq = *seq;
        head.hash = hash;
        head.since_checkpoint = if record.action == chain::CHECKPOINT_ACTION {
            0
        } else {
            head.since_checkpoint + 1
        };
    }
    head.sealed_at = now;
    store_head(tx, &head).await?;
    Ok(records.len())
}

/// Append events from a step's transaction, if any were audited in it.
pub(crate) async fn flush(
    tx: &Transaction<'_>,
    signer: Option<&CheckpointSigner>,
) -> Result<(), StoreError> {
    let events = Capture::take();
    if events.is_empty() {
        return Ok(());
    }
    let Some(signer) = signer else {
        return Err(StoreError::Backend(
            "audit events reached a PostgreSQL store without its audit chain".into(),
        ));
    };
    let now = chrono::Utc::now().timestamp();
    append(tx, signer, &events, now).await.map(|_| ())
}

/// The service's audit sink on PostgreSQL: each event goes into the chain in the transaction
/// of the store step that audits it, or in a transaction of its own when no step runs (a
/// refusal).
#[derive(Debug)]
pub struct PgAudit {
    store: Arc<PgStore>,
}

impl PgAudit {
    pub fn new(store: Arc<PgStore>) -> PgAudit {
        PgAudit { store }
    }
}

impl AuditSink for PgAudit {
    fn commits_with_store(&self) -> bool {
        true
    }

    fn append(&self, event: AuditEvent) -> Result<u64, AuditSinkError> {
        self.append_all(vec![event])
            .map(|seqs| seqs.last().copied().unwrap_or(0))
    }

    /// Inside a step the records get their seq at the commit: the seqs returned are 0.
    fn append_all(&self, events: Vec<AuditEvent>) -> Result<Vec<u64>, AuditSinkError> {
        let n = events.len();
        match capture(events) {
            None => Ok(vec![0; n]),
            Some(events) => {
                let last = self
                    .store
                    .append_audit(&events)
                    .map_err(|e| AuditSinkError {
                        path: CHAIN_NAME.into(),
                        message: e.to_string(),
                    })?;
                let last = u64::try_from(last).unwrap_or(0);
                let first = (last + 1).saturating_sub(n as u64);
                Ok((first..=last).collect())
            }
        }
    }
}

/// What verifying the chain in the database found.
#[derive(Debug)]
pub enum Verdict {
    Intact(crate::audit::Summary),
    Bad(crate::audit::Finding),
}

/// Verify the chain in the database at `url` with `keys` (every record, in seq order, as
/// `jitsh audit verify` checks a file; the finding names `postgres:audit_chain:SEQ`).
pub async fn verify(
    client: &tokio_postgres::Client,
    keys: &[crate::audit::AuditVerifyKey],
    options: crate::audit::VerifyOptions,
) -> Result<Verdict, StoreError> {
    let mut verifier = chain::Verifier::new(keys, options);
    let mut after = 0i64;
    let mut line_no = 0u64;
    loop {
        let rows = client
            .query(
                "SELECT seq, line FROM audit_chain WHERE seq > $1 ORDER BY seq LIMIT 10000",
                &[&after],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            after = row.try_get(0).map_err(pg)?;
            let line: String = row.try_get(1).map_err(pg)?;
            line_no += 1;
            let at = chain::Location {
                file: CHAIN_NAME.into(),
                line: line_no,
            };
            if let Err(f) = verifier.push(at, line.as_bytes(), true) {
                return Ok(Verdict::Bad(f));
            }
        }
    }
    Ok(match verifier.finish() {
        Ok(s) => Verdict::Intact(s),
        Err(f) => Verdict::Bad(f),
    })
}

/// Write every record up to the head as log lines (the file format `jitsh audit verify`
/// reads), in seq order.
pub async fn export(
    client: &tokio_postgres::Client,
    out: &mut dyn std::io::Write,
) -> Result<u64, StoreError> {
    let head: i64 = client
        .query_one("SELECT seq FROM audit_head WHERE id = 1", &[])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    let mut after = 0i64;
    let mut written = 0u64;
    while after < head {
        let rows = client
            .query(
                "SELECT seq, line FROM audit_chain WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT 10000",
                &[&after, &head],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            after = row.try_get(0).map_err(pg)?;
            let line: String = row.try_get(1).map_err(pg)?;
            writeln!(out, "{line}").map_err(|e| StoreError::Backend(e.to_string()))?;
            written += 1;
        }
    }
    Ok(written)
}
