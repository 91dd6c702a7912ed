//! The log's head kept outside its files, so cutting, extending or rewriting the log is found
//! when the writer opens it and by `jitsh audit verify --store`.
//!
//! The writer saves the head (last seq and hash) after every `fdatasync`, before any appender
//! is answered: every acknowledged record is anchored. On a clean stop it saves the shutdown
//! checkpoint with `clean` set, so anything after it is tampering. The service keeps its anchor
//! in a small file in its state folder ([`FileAnchor`], [`STATE_FILE`]). Its own file, not
//! `jitsh.db`: every workflow step appends to the log while it holds `jitsh.db`'s write lock, so
//! the writer could not save there before answering, and a database commit per sync would
//! halve the log's rate. The order still holds what matters: a step commits only after its
//! record is synced and anchored.
//!
//! [`check`] compares a log's head with an anchor (pure); the writer refuses to open a log that
//! is behind or diverges, and `jitsh audit repair` re-anchors one after a human has looked.

use std::path::Path;
use std::sync::Mutex;

use crate::audit::chain::ChainHash;

/// The anchor file's name in the service's state folder.
pub(crate) const STATE_FILE: &str = "audit.anchor";

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

/// Size of one slot of an anchor file.
const SLOT: usize = 128;
const MAGIC: &[u8; 8] = b"JANCHOR1";

/// The anchor in a small file of two 128-byte slots, written alternately with `pwrite` and no
/// sync of its own. Each slot holds magic, seq, hash, the clean flag and a SHA-256 of those; the
/// valid slot with the highest seq is the anchor. A process crash loses nothing (the bytes are
/// in the page cache); a power loss can only leave an older valid slot (the log was synced
/// first), which opens as [`Standing::Unanchored`]. A write torn by a power loss spoils only the
/// slot being written.
#[derive(Debug)]
pub struct FileAnchor {
    file: std::fs::File,
    path: std::path::PathBuf,
    /// The slot the next save writes (never the one holding the newest anchor), and its
    /// generation (one more than the newest slot's).
    next: Mutex<(u64, u64)>,
}

impl FileAnchor {
    pub fn open(path: &Path) -> Result<FileAnchor, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("audit anchor `{}`: {e}", path.display()))?;
        let anchor = FileAnchor {
            file,
            path: path.to_path_buf(),
            next: Mutex::new((0, 1)),
        };
        if let Some((slot, gen, _)) = anchor.newest_slot()? {
            *anchor.lock() = (1 - slot, gen.saturating_add(1));
        }
        Ok(anchor)
    }

    /// The anchor in the file at `path`, read without writing (for `jitsh audit verify
    /// --store`); `None` when there is no such file.
    pub fn read(path: &Path) -> Result<Option<AnchorState>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("audit anchor `{}`: {e}", path.display())),
        };
        newest(&bytes, path).map(|n| n.map(|(_, _, s)| s))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, u64)> {
        self.next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn newest_slot(&self) -> Result<Option<(u64, u64, AnchorState)>, String> {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0u8; 2 * SLOT];
        let mut read = 0;
        while read < bytes.len() {
            let n = self
                .file
                .read_at(bytes.get_mut(read..).unwrap_or_default(), read as u64)
                .map_err(|e| format!("audit anchor `{}`: {e}", self.path.display()))?;
            if n == 0 {
                break;
            }
            read += n;
        }
        bytes.truncate(read);
        newest(&bytes, &self.path)
    }
}

/// The valid slot written last (highest generation): slot, generation, anchor. An empty file has
/// none; a file with bytes but no valid slot was damaged, which is an error.
fn newest(bytes: &[u8], path: &Path) -> Result<Option<(u64, u64, AnchorState)>, String> {
    let mut best: Option<(u64, u64, AnchorState)> = None;
    for slot in 0..2u64 {
        let start = usize::try_from(slot).unwrap_or(0) * SLOT;
        let Some(raw) = bytes.get(start..start + SLOT) else {
            continue;
        };
        if let Some((gen, state)) = decode_slot(raw) {
            if best.as_ref().is_none_or(|(_, g, _)| gen > *g) {
                best = Some((slot, gen, state));
            }
        }
    }
    if best.is_none() && bytes.iter().any(|&b| b != 0) {
        return Err(format!(
            "audit anchor `{}` is damaged (no valid slot)",
            path.display()
        ));
    }
    Ok(best)
}

fn encode_slot(gen: u64, state: &AnchorState) -> [u8; SLOT] {
    let mut out = [0u8; SLOT];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&state.seq.to_be_bytes());
    out[16..48].copy_from_slice(&state.hash.0);
    out[48] = u8::from(state.clean);
    out[56..64].copy_from_slice(&gen.to_be_bytes());
    let sum = crate::audit::chain::sha256(&[&out[..96]]);
    out[96..].copy_from_slice(&sum);
    out
}

fn decode_slot(raw: &[u8]) -> Option<(u64, AnchorState)> {
    let body = raw.get(..96)?;
    if raw.get(..8)? != MAGIC || raw.get(96..)? != crate::audit::chain::sha256(&[body]) {
        return None;
    }
    let seq = u64::from_be_bytes(raw.get(8..16)?.try_into().ok()?);
    let hash = ChainHash(raw.get(16..48)?.try_into().ok()?);
    let clean = *raw.get(48)? != 0;
    let gen = u64::from_be_bytes(raw.get(56..64)?.try_into().ok()?);
    Some((gen, AnchorState { seq, hash, clean }))
}

impl Anchor for FileAnchor {
    fn load(&self) -> Result<Option<AnchorState>, String> {
        Ok(self.newest_slot()?.map(|(_, _, s)| s))
    }

    fn save(&self, state: &AnchorState) -> Result<(), String> {
        use std::os::unix::fs::FileExt;
        let mut next = self.lock();
        let (slot, gen) = *next;
        self.file
            .write_all_at(&encode_slot(gen, state), slot * SLOT as u64)
            .map_err(|e| {
                format!(
                    "audit anchor `{}` could not be saved: {e}",
                    self.path.display()
                )
            })?;
        *next = (1 - slot, gen.saturating_add(1));
        Ok(())
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
    fn file_anchor_round_trips_and_survives_a_spoiled_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.anchor");
        let anchor = FileAnchor::open(&path).unwrap();
        assert_eq!(anchor.load().unwrap(), None);
        anchor.save(&a(9, 3, true)).unwrap();
        anchor.save(&a(10, 4, false)).unwrap();
        drop(anchor);
        assert_eq!(FileAnchor::read(&path).unwrap(), Some(a(10, 4, false)));
        let anchor = FileAnchor::open(&path).unwrap();
        assert_eq!(anchor.load().unwrap(), Some(a(10, 4, false)));
        anchor.save(&a(11, 5, false)).unwrap();
        // The same head saved again (a clean stop right after a sync): the later save wins.
        anchor.save(&a(11, 5, true)).unwrap();
        assert_eq!(anchor.load().unwrap(), Some(a(11, 5, true)));
        drop(anchor);
        // A torn write spoils one slot: the other, older anchor stands.
        let mut bytes = std::fs::read(&path).unwrap();
        let newest = if bytes[48] == 1 { 0 } else { SLOT };
        bytes[newest + 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(FileAnchor::read(&path).unwrap(), Some(a(11, 5, false)));
        // Both spoiled: damaged, never read as "no anchor".
        bytes[(SLOT - newest) + 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(FileAnchor::read(&path).is_err());
        assert!(FileAnchor::open(&path).is_err());
    }
}
