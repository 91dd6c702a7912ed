//! The log's head kept outside its files, so cutting, extending or rewriting the log is found
//! when the writer opens it and by `jitsh audit verify --store`.
//!
//! The writer saves the head (last seq and hash) after every `fdatasync`, before any appender
//! is answered: every acknowledged record is anchored. On a clean stop it saves the shutdown
//! checkpoint with `clean` set, so anything after it is tampering. The service keeps its anchor
//! in a small database in its state folder ([`SqliteAnchor`], [`STATE_FILE`]). Its own file, not
//! `jitsh.db`: every workflow step appends to the log while it holds `jitsh.db`'s write lock, so
//! the writer could not save there before answering. The order still holds what matters: a
//! step commits only after its record is synced and anchored.
//!
//! [`check`] compares a log's head with an anchor (pure); the writer refuses to open a log that
//! is behind or diverges, and `jitsh audit repair` re-anchors one after a human has looked.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::audit::chain::ChainHash;

/// The anchor database's name in the service's state folder.
pub const STATE_FILE: &str = "audit-anchor.db";

/// The anchored head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorState {
    pub seq: u64,
    pub hash: ChainHash,
    /// The head is the checkpoint of a clean shutdown: nothing may follow it except the signed
    /// checkpoint of the next start.
    pub clean: bool,
}

/// Where the head is kept. Implementations must be durable against a process crash once
/// `save` returns.
pub trait Anchor: Send + std::fmt::Debug {
    fn load(&self) -> Result<Option<AnchorState>, String>;
    fn save(&self, state: &AnchorState) -> Result<(), String>;
}

/// How a log's head stands against its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Log and anchor agree (or both are empty).
    Matches,
    /// The log goes on after the anchored head, which was not a clean shutdown: records from
    /// `from` to `to` were written but never acknowledged (a crash between the sync and the
    /// anchor's save, or a power loss). They are kept and noted.
    Unanchored { from: u64, to: u64 },
    /// The log does not match: refuse to write. The reason names what was found.
    Mismatch(String),
}

/// Compare the log's last good record (`last`) with the anchor. `hash_at(seq)` finds the hash of
/// an earlier record of the log (only asked when the log goes on past the anchor).
pub fn check(
    anchor: Option<&AnchorState>,
    last: Option<(u64, ChainHash)>,
    hash_at: impl FnOnce(u64) -> Result<Option<ChainHash>, String>,
) -> Result<Standing, String> {
    let (a, (seq, hash)) = match (anchor, last) {
        (None, None) => return Ok(Standing::Matches),
        (None, Some((seq, _))) => {
            return Ok(Standing::Mismatch(format!(
                "the log has records (up to seq {seq}) but the store holds no anchor for it: \
                 the store was replaced or the log does not belong to it"
            )))
        }
        (Some(a), None) => {
            return Ok(Standing::Mismatch(format!(
                "the log is empty or missing but the store anchored seq {}: records were removed",
                a.seq
            )))
        }
        (Some(a), Some(last)) => (a, last),
    };
    if seq < a.seq {
        return Ok(Standing::Mismatch(format!(
            "the log ends at seq {seq} but the store anchored seq {}: records {}..={} were cut off",
            a.seq,
            seq.saturating_add(1),
            a.seq
        )));
    }
    if seq == a.seq {
        if hash != a.hash {
            return Ok(Standing::Mismatch(format!(
                "seq {seq} has hash {hash} but the store anchored {}: the log was rewritten",
                a.hash
            )));
        }
        return Ok(Standing::Matches);
    }
    match hash_at(a.seq)? {
        Some(h) if h == a.hash => {}
        Some(h) => {
            return Ok(Standing::Mismatch(format!(
                "seq {} has hash {h} but the store anchored {}: the log was rewritten",
                a.seq, a.hash
            )))
        }
        None => {
            return Ok(Standing::Mismatch(format!(
                "the anchored seq {} is not in the log's last file: the log was rewritten",
                a.seq
            )))
        }
    }
    if a.clean {
        return Ok(Standing::Mismatch(format!(
            "records {}..={seq} follow the checkpoint of a clean shutdown (seq {}): they were \
             appended by hand",
            a.seq.saturating_add(1),
            a.seq
        )));
    }
    Ok(Standing::Unanchored {
        from: a.seq.saturating_add(1),
        to: seq,
    })
}

/// The anchor in an SQLite file (table `audit_anchor`, one row).
#[derive(Debug)]
pub struct SqliteAnchor {
    conn: Mutex<Connection>,
}

impl SqliteAnchor {
    pub fn open(db: &Path) -> Result<SqliteAnchor, String> {
        let err = |e: rusqlite::Error| format!("audit anchor in `{}`: {e}", db.display());
        let conn = Connection::open(db).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // A WAL commit without its own sync survives a process crash; after a power loss the
        // anchor can only be behind the (already synced) log, which opens as `Unanchored`.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS audit_anchor (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                seq INTEGER NOT NULL,
                hash TEXT NOT NULL,
                clean INTEGER NOT NULL
            )",
        )
        .map_err(err)?;
        Ok(SqliteAnchor {
            conn: Mutex::new(conn),
        })
    }

    /// The anchor in `db`, read without writing (for `jitsh audit verify --store`).
    pub fn read(db: &Path) -> Result<Option<AnchorState>, String> {
        let err = |e: rusqlite::Error| format!("store `{}`: {e}", db.display());
        let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(err)?;
        let has_table: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_anchor'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        if !has_table {
            return Ok(None);
        }
        SqliteAnchor {
            conn: Mutex::new(conn),
        }
        .load()
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Anchor for SqliteAnchor {
    fn load(&self) -> Result<Option<AnchorState>, String> {
        let row: Option<(i64, String, i64)> = self
            .conn()
            .query_row(
                "SELECT seq, hash, clean FROM audit_anchor WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| format!("audit anchor could not be read: {e}"))?;
        let Some((seq, hash, clean)) = row else {
            return Ok(None);
        };
        let seq = u64::try_from(seq).map_err(|_| "audit anchor has a negative seq".to_owned())?;
        let hash = ChainHash::from_hex(&hash)
            .ok_or_else(|| "audit anchor hash is not 64 hex digits".to_owned())?;
        Ok(Some(AnchorState {
            seq,
            hash,
            clean: clean != 0,
        }))
    }

    fn save(&self, state: &AnchorState) -> Result<(), String> {
        let seq = i64::try_from(state.seq).map_err(|_| "audit seq out of range".to_owned())?;
        self.conn()
            .execute(
                "INSERT INTO audit_anchor (id, seq, hash, clean) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET seq = ?1, hash = ?2, clean = ?3",
                params![seq, state.hash.to_hex(), i64::from(state.clean)],
            )
            .map(|_| ())
            .map_err(|e| format!("audit anchor could not be saved: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    fn h(n: u8) -> ChainHash {
        ChainHash([n; 32])
    }

    fn a(seq: u64, n: u8, clean: bool) -> AnchorState {
        AnchorState {
            seq,
            hash: h(n),
            clean,
        }
    }

    fn no_lookup(_: u64) -> Result<Option<ChainHash>, String> {
        panic!("no lookup expected")
    }

    #[test]
    fn equal_heads_match_and_each_kind_of_difference_is_told() {
        assert_eq!(check(None, None, no_lookup).unwrap(), Standing::Matches);
        let same = check(Some(&a(5, 1, true)), Some((5, h(1))), no_lookup).unwrap();
        assert_eq!(same, Standing::Matches);
        for (anchor, last) in [
            (None, Some((3, h(1)))),
            (Some(a(5, 1, false)), None),
            (Some(a(5, 1, false)), Some((4, h(1)))),
            (Some(a(5, 1, false)), Some((5, h(2)))),
        ] {
            let s = check(anchor.as_ref(), last, no_lookup).unwrap();
            assert!(
                matches!(s, Standing::Mismatch(_)),
                "{anchor:?} {last:?}: {s:?}"
            );
        }
    }

    #[test]
    fn records_after_the_anchor_are_tampering_after_a_clean_stop_only() {
        let found = |_| Ok(Some(h(1)));
        let s = check(Some(&a(5, 1, true)), Some((7, h(9))), found).unwrap();
        assert!(matches!(s, Standing::Mismatch(ref r) if r.contains("appended by hand")));
        let s = check(Some(&a(5, 1, false)), Some((7, h(9))), found).unwrap();
        assert_eq!(s, Standing::Unanchored { from: 6, to: 7 });
        let other = |_| Ok(Some(h(2)));
        let s = check(Some(&a(5, 1, false)), Some((7, h(9))), other).unwrap();
        assert!(matches!(s, Standing::Mismatch(ref r) if r.contains("rewritten")));
    }

    #[test]
    fn sqlite_anchor_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("jitsh.db");
        let anchor = SqliteAnchor::open(&db).unwrap();
        assert_eq!(anchor.load().unwrap(), None);
        anchor.save(&a(9, 3, true)).unwrap();
        anchor.save(&a(10, 4, false)).unwrap();
        drop(anchor);
        assert_eq!(
            SqliteAnchor::open(&db).unwrap().load().unwrap(),
            Some(a(10, 4, false))
        );
    }
}
