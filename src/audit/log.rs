//! The durable audit log writer: hash-chained JSON Lines files in one directory.
//!
//! Files are `audit-000001.jsonl`, `audit-000002.jsonl`, ... (rotated by size; the chain and
//! `seq` continue across files). A lock file (`audit.lock`, `flock`) keeps a second writer out.
//!
//! Durability: [`AuditSink::append`] returns only after the record is written and
//! `fdatasync`ed. Appenders queue their records; one of them at a time takes the writer and
//! writes and syncs everything queued (group commit), so many appending threads share one
//! `fdatasync` instead of queueing for one each, and a lone appender syncs in its own thread
//! with no hand-off to another.
//!
//! Recovery on open: the tail of the last file is read and its last record verified. A torn
//! last record (no line end, or not a record) is copied to `torn-NNNNNN-OFFSET.bin`, the file is
//! truncated to the last good record, and an `audit.torn` record naming the file, offset, length
//! and SHA-256 of the torn bytes is appended. A last record whose hash does not match is not a
//! crash: opening fails. When the log did not end with a checkpoint (unclean stop, or a torn
//! tail), a checkpoint is written at once.
//!
//! A full disk: a write or sync refused for lack of space (`ENOSPC`, `EDQUOT`) fails the batch
//! (every appender in it is told), and the file is cut back to its last synced length at once,
//! so the log is in a known state and holds no record of a refused append. The log is then
//! *unavailable*: one warning tells the operator to free space, [`AuditLog::unavailable`] says
//! so (the service's `/healthz`), and every append, or a probe each second (a thread that
//! exists only during the outage, when no appender holds the writer), tries again. The
//! first write that works sets the cut bytes aside as opening does (`torn-*.bin` and an
//! `audit.torn` record), appends an `audit.resumed` record naming the outage (from, to, why,
//! appends refused) and a checkpoint, and the log goes on without a restart. Any other write or
//! sync failure poisons the log: every later append fails, because after a failed `fsync` the
//! file's state is unknown.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};

use crate::audit::anchor::{self, Anchor, AnchorState, Standing};
use crate::audit::chain::{self, ChainHash, CheckpointSigner};
use crate::audit::keys::AuditSigner;
use crate::audit::outage::{self, Unavailable};
use crate::audit::{AuditEvent, AuditSink, AuditSinkError};

/// Most appends written behind one `fdatasync`.
const MAX_BATCH: usize = 4096;
/// First read of a file's tail; doubled until a whole line fits.
const TAIL_CHUNK: u64 = 64 * 1024;
/// How often an unavailable log tries to write again when nothing is appended.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Receives each synced checkpoint line (without its newline): an off-host witness such as
/// [`crate::audit::transport::witness::SyslogWitness`]. Must not block the writer.
pub trait Witness: Send + std::fmt::Debug {
    fn checkpoint(&self, line: &[u8]);
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct AuditLogOptions {
    /// A checkpoint after this many records since the last one.
    pub checkpoint_every: u64,
    /// Rotate to a new file before a record would take the file past this size (checked
    /// between batches: one batch is written whole to one file, which it may take past it).
    pub max_file_bytes: u64,
}

impl Default for AuditLogOptions {
    fn default() -> Self {
        AuditLogOptions {
            checkpoint_every: 1000,
            max_file_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log `{0}` is in use by another process")]
    Locked(String),
    #[error("audit log `{path}` was tampered with at byte {offset}: {reason}; run `jitsh audit verify` on it")]
    Tampered {
        path: String,
        offset: u64,
        reason: String,
    },
    #[error("audit signing key cannot be used: {0}")]
    Key(#[from] crate::audit::keys::KeyError),
    #[error("audit record could not be encoded: {0}")]
    Encode(#[from] chain::ChainError),
    #[error("audit log `{path}` stopped after an earlier write failure: {message}")]
    Poisoned { path: String, message: String },
    #[error("audit log `{0}` is closed")]
    Closed(String),
    #[error(
        "audit log `{path}` does not match the head its store anchored: {reason}. Nothing was \
         written. Check it with `jitsh audit verify {path} --store STATE`; once a \
         person has reviewed what changed, `jitsh audit repair --state STATE` re-anchors it \
         (the repair is recorded in the log)"
    )]
    Anchor { path: String, reason: String },
    #[error("audit log `{path}`: {message}")]
    AnchorStore { path: String, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// An open audit log. Share it (`Arc<AuditLog>`) between producers; it is an [`AuditSink`].
#[derive(Debug)]
pub struct AuditLog {
    core: Arc<Core>,
}

/// What the log's appenders (and, during an outage, its probe) share.
#[derive(Debug)]
struct Core {
    dir: PathBuf,
    shared: Mutex<Shared>,
    /// Signalled whenever a batch is done (results posted, writer handed back) and on close.
    turn: Condvar,
    stats: Arc<Counters>,
    health: Health,
}

/// Set by the writer while the disk is full.
type Health = Arc<Mutex<Option<Unavailable>>>;

/// What appenders share, under [`Core::shared`].
#[derive(Debug)]
struct Shared {
    /// The writer, when no appender is writing with it (and the log is open); boxed, so the
    /// shared state stays small.
    writer: Option<Box<Writer>>,
    /// An appender (or the probe) has taken the writer and is writing a batch.
    writing: bool,
    /// Closed: new appends are refused.
    closed: bool,
    /// A write or sync failed other than for lack of space: every later append fails (the
    /// file's state is unknown).
    poisoned: Option<String>,
    /// Records waiting for the next batch, by ticket.
    queue: Vec<(u64, AuditEvent)>,
    /// Outcomes not yet collected by their appenders, by ticket.
    done: HashMap<u64, Result<u64, String>>,
    next_ticket: u64,
    /// The thread retrying each second while the disk is full (see [`Core::probe`]); none
    /// otherwise.
    probe: Option<JoinHandle<()>>,
}

impl Shared {
    /// Ends a batch: posts `results`; `poison` (or an earlier poisoning) fails everything
    /// still queued. A full disk does not poison: what is queued is the next retry.
    fn settle(&mut self, results: Vec<(u64, Result<u64, String>)>, poison: Option<String>) {
        if let Some(message) = poison {
            self.poisoned.get_or_insert(message);
        }
        for (ticket, r) in results {
            self.done.insert(ticket, r);
        }
        if let Some(message) = self.poisoned.clone() {
            for (ticket, _) in self.queue.drain(..) {
                self.done.insert(ticket, Err(message.clone()));
            }
        }
    }
}

/// What the writer has done since the log was opened (not counting what opening wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditStats {
    /// Records written (events and the log's own checkpoints).
    pub records: u64,
    /// `fdatasync` calls; `records / syncs` is the average group-commit batch.
    pub syncs: u64,
}

#[derive(Debug, Default)]
struct Counters {
    records: AtomicU64,
    syncs: AtomicU64,
}

/// Whether opening checks the anchor or adopts the log's head after a review.
#[derive(Debug)]
enum Mode {
    Normal,
    Repair {
        actor: String,
        found: Arc<Mutex<Option<String>>>,
    },
}

impl AuditLog {
    /// Open (or create) the log in `dir` with default options. Without a signer no
    /// checkpoints are written, so the log can never verify as sealed.
    pub fn open(dir: &Path, signer: Option<AuditSigner>) -> Result<AuditLog, AuditError> {
        AuditLog::open_with(dir, signer, AuditLogOptions::default())
    }

    pub fn open_with(
        dir: &Path,
        signer: Option<AuditSigner>,
        options: AuditLogOptions,
    ) -> Result<AuditLog, AuditError> {
        AuditLog::start(dir, signer, options, None, None, Mode::Normal)
    }

    /// Open the log anchored in `anchor`: refused when the log is behind the anchored head,
    /// diverges from it, or goes on after a clean shutdown ([`AuditError::Anchor`]).
    pub fn open_anchored(
        dir: &Path,
        signer: Option<AuditSigner>,
        options: AuditLogOptions,
        anchor: Box<dyn Anchor>,
    ) -> Result<AuditLog, AuditError> {
        AuditLog::start(dir, signer, options, Some(anchor), None, Mode::Normal)
    }

    /// [`AuditLog::open_anchored`], with every synced checkpoint also handed to `witness`
    /// (a collector off the host).
    pub fn open_witnessed(
        dir: &Path,
        signer: Option<AuditSigner>,
        options: AuditLogOptions,
        anchor: Box<dyn Anchor>,
        witness: Box<dyn Witness>,
    ) -> Result<AuditLog, AuditError> {
        AuditLog::start(
            dir,
            signer,
            options,
            Some(anchor),
            Some(witness),
            Mode::Normal,
        )
    }

    /// Re-anchor a log that no longer matches its anchor, after a person has reviewed it: an
    /// `audit.repair` record naming the old anchor and the log's head is written, then a
    /// checkpoint, and the log is closed. Returns what the anchor said before (`None`: it
    /// matched, nothing to repair, nothing written).
    pub fn repair(
        dir: &Path,
        signer: Option<AuditSigner>,
        anchor: Box<dyn Anchor>,
        actor: &str,
    ) -> Result<Option<String>, AuditError> {
        let repaired = Arc::new(Mutex::new(None));
        let mode = Mode::Repair {
            actor: actor.to_owned(),
            found: Arc::clone(&repaired),
        };
        let log = AuditLog::start(
            dir,
            signer,
            AuditLogOptions::default(),
            Some(anchor),
            None,
            mode,
        )?;
        log.close()?;
        let found = repaired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(found)
    }

    fn start(
        dir: &Path,
        signer: Option<AuditSigner>,
        options: AuditLogOptions,
        anchor: Option<Box<dyn Anchor>>,
        witness: Option<Box<dyn Witness>>,
        mode: Mode,
    ) -> Result<AuditLog, AuditError> {
        let stats = Arc::new(Counters::default());
        let health = Health::default();
        let mut writer = Writer::open(dir, signer.as_ref(), options, anchor, witness, mode)?;
        writer.stats = Arc::clone(&stats);
        writer.health = Arc::clone(&health);
        Ok(AuditLog {
            core: Arc::new(Core {
                dir: dir.to_path_buf(),
                shared: Mutex::new(Shared {
                    writer: Some(Box::new(writer)),
                    writing: false,
                    closed: false,
                    poisoned: None,
                    queue: Vec::new(),
                    done: HashMap::new(),
                    next_ticket: 0,
                    probe: None,
                }),
                turn: Condvar::new(),
                stats,
                health,
            }),
        })
    }

    /// Why appends fail now (the disk is full), while they do. Only reads: the probe (see
    /// [`Core::probe`]) does the retrying, so `/healthz` never waits on the disk.
    pub fn unavailable(&self) -> Option<Unavailable> {
        self.core
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records and syncs so far (for metrics and measurements).
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            records: self.core.stats.records.load(Ordering::Relaxed),
            syncs: self.core.stats.syncs.load(Ordering::Relaxed),
        }
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.core.dir
    }

    /// Write the shutdown checkpoint and stop. Appends after this fail; appends already
    /// queued are written first.
    pub fn close(&self) -> Result<(), AuditError> {
        let core = &self.core;
        let mut g = core.lock();
        let first_close = !g.closed;
        g.closed = true;
        let writer = loop {
            if g.writing {
                g = core.wait(g);
            } else if !g.queue.is_empty() {
                g = core.write_queued(g);
            } else {
                break g.writer.take();
            }
        };
        let poisoned = g.poisoned.clone();
        let probe = g.probe.take();
        // Wakes the probe, which sees the log closed and ends.
        core.turn.notify_all();
        drop(g);
        if let Some(probe) = probe {
            if probe.join().is_err() {
                tracing::error!("the audit log's full-disk probe stopped unexpectedly");
            }
        }
        let poisoned_err = |message| AuditError::Poisoned {
            path: core.dir.display().to_string(),
            message,
        };
        let Some(mut writer) = writer else {
            // Closed before, or the writer was lost with a panicking batch (see `Leader`):
            // that is said once, by the first close.
            return match poisoned {
                Some(message) if first_close => Err(poisoned_err(message)),
                _ => Ok(()),
            };
        };
        match poisoned {
            Some(message) => Err(poisoned_err(message)),
            None => writer.shut_down(),
        }
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The state stays consistent across a panic elsewhere (see `Leader`).
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Shared>) -> MutexGuard<'a, Shared> {
        self.turn.wait(g).unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `events` and wait until they are written and synced, writing them (with whatever
    /// else is queued) in this thread when no other appender is writing.
    fn submit(self: &Arc<Self>, events: Vec<AuditEvent>) -> Result<Vec<u64>, AuditSinkError> {
        let mut g = self.lock();
        if g.closed {
            return Err(self.sink_error("the log is closed"));
        }
        if let Some(message) = &g.poisoned {
            return Err(self.sink_error(message.clone()));
        }
        let first = g.next_ticket;
        for event in events {
            let t = g.next_ticket;
            g.queue.push((t, event));
            g.next_ticket = t.saturating_add(1);
        }
        let mine = first..g.next_ticket;
        loop {
            if mine.clone().all(|t| g.done.contains_key(&t)) {
                break;
            }
            let queued = g.queue.iter().any(|(t, _)| mine.contains(t));
            g = if queued && !g.writing {
                self.write_queued(g)
            } else {
                // Ours are in the batch another appender is writing, or wait their turn.
                self.wait(g)
            };
        }
        let mut seqs = Vec::with_capacity(mine.clone().count());
        let mut failure = None;
        for t in mine {
            match g.done.remove(&t) {
                Some(Ok(seq)) => seqs.push(seq),
                Some(Err(message)) => failure = Some(message),
                None => failure = Some("the record's outcome was lost".to_string()),
            }
        }
        drop(g);
        match failure {
            Some(message) => Err(self.sink_error(message)),
            None => Ok(seqs),
        }
    }

    /// Take the writer and write up to [`MAX_BATCH`] queued records (none: the probe's
    /// retry) with one sync, without holding the lock; post the outcomes and wake the waiting
    /// appenders. The caller holds the lock and no one is writing.
    fn write_queued<'a>(
        self: &'a Arc<Self>,
        mut g: MutexGuard<'a, Shared>,
    ) -> MutexGuard<'a, Shared> {
        let Some(mut writer) = g.writer.take() else {
            // The writer was lost (see `Leader`): nothing queued can be written.
            g.settle(
                Vec::new(),
                Some("the audit writer stopped unexpectedly".to_string()),
            );
            self.turn.notify_all();
            return g;
        };
        if g.poisoned.is_some() {
            g.writer = Some(writer);
            g.settle(Vec::new(), None);
            self.turn.notify_all();
            return g;
        }
        let take = g.queue.len().min(MAX_BATCH);
        let batch: Vec<(u64, AuditEvent)> = g.queue.drain(..take).collect();
        g.writing = true;
        drop(g);
        // Tickets are handed out and drained in order: a batch's form a range.
        let tickets = match (batch.first(), batch.last()) {
            (Some((first, _)), Some((last, _))) => *first..last.saturating_add(1),
            _ => 0..0,
        };
        let leader = Leader {
            core: self,
            tickets,
        };
        // After a full disk every batch first retries the recovery (a no-op otherwise).
        let written = writer.recover().and_then(|()| writer.write_batch(&batch));
        let (results, poison) = match written {
            Ok(seqs) => (
                batch
                    .iter()
                    .map(|(t, _)| *t)
                    .zip(seqs.into_iter().map(Ok))
                    .collect(),
                None,
            ),
            Err(e) => {
                let (message, poison) = match writer.fail(e, batch.len() as u64) {
                    Ok(advice) => (advice, None),
                    Err(message) => (message.clone(), Some(message)),
                };
                (
                    batch
                        .iter()
                        .map(|(t, _)| (*t, Err(message.clone())))
                        .collect(),
                    poison,
                )
            }
        };
        let outage = writer.outage.is_some();
        std::mem::forget(leader);
        let mut g = self.lock();
        g.settle(results, poison);
        g.writer = Some(writer);
        g.writing = false;
        if outage && g.probe.is_none() && !g.closed && g.poisoned.is_none() {
            g.probe = self.start_probe();
        }
        self.turn.notify_all();
        g
    }

    fn start_probe(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        let core = Arc::clone(self);
        std::thread::Builder::new()
            .name("jitsh-audit-probe".into())
            .spawn(move || core.probe())
            .inspect_err(|e| {
                tracing::warn!(
                    "audit log `{}`: no thread to retry each second ({e}); appends still retry",
                    self.dir.display()
                );
            })
            .ok()
    }

    /// While the disk is full and nothing is appended, retry each second, so the log (and
    /// `/healthz`) comes back without waiting for an append. A thread that lives only during
    /// an outage rather than a permanent one (appends sync in their own threads) or a retry
    /// inside [`AuditLog::unavailable`] (called from async handlers, which must not wait on a
    /// disk). A round is skipped while an appender holds the writer: its batch is a retry.
    /// Ends once the log can be written, is closed or poisoned.
    fn probe(self: Arc<Self>) {
        let mut g = self.lock();
        loop {
            let due = Instant::now() + PROBE_EVERY;
            while !g.closed {
                let left = due.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                g = self
                    .turn
                    .wait_timeout(g, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if g.writing {
                continue;
            }
            let over = g.closed
                || g.poisoned.is_some()
                || g.writer.as_ref().is_none_or(|w| w.outage.is_none());
            if over {
                // Close may have taken the handle already; otherwise this detaches it.
                g.probe = None;
                return;
            }
            g = self.write_queued(g);
        }
    }

    fn sink_error(&self, message: impl Into<String>) -> AuditSinkError {
        AuditSinkError {
            path: self.dir.display().to_string(),
            message: message.into(),
        }
    }
}

impl AuditSink for AuditLog {
    fn unavailable(&self) -> Option<Unavailable> {
        AuditLog::unavailable(self)
    }

    fn append_all(&self, events: Vec<AuditEvent>) -> Result<Vec<u64>, AuditSinkError> {
        // All queued before any is written: they go out as one batch.
        self.core.submit(events)
    }

    fn append(&self, event: AuditEvent) -> Result<u64, AuditSinkError> {
        self.core
            .submit(vec![event])?
            .first()
            .copied()
            .ok_or_else(|| self.core.sink_error("the record's outcome was lost"))
    }
}

/// Held by the thread writing a batch: if it panics mid-batch, the writer is lost with it, so
/// the log is poisoned, the batch's appenders are told and the waiting ones woken to fail,
/// never to wait forever. Forgotten once the batch is done.
struct Leader<'a> {
    core: &'a Core,
    /// The batch's tickets (a range: forgetting the guard leaks nothing).
    tickets: std::ops::Range<u64>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let message = "the audit writer stopped unexpectedly".to_string();
        let lost = self
            .tickets
            .clone()
            .map(|t| (t, Err(message.clone())))
            .collect();
        let mut g = self.core.lock();
        g.writing = false;
        g.settle(lost, Some(message));
        self.core.turn.notify_all();
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!("closing the audit log failed: {e}");
        }
    }
}

/// Paths of the log files in `dir`, oldest first.
pub fn log_files(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    Ok(numbered_files(dir)?.into_iter().map(|(_, p)| p).collect())
}

fn numbered_files(dir: &Path) -> Result<Vec<(u32, PathBuf)>, AuditError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(no) = name.to_str().and_then(file_number) else {
            continue;
        };
        files.push((no, entry.path()));
    }
    files.sort();
    Ok(files)
}

fn file_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn file_name(no: u32) -> String {
    format!("audit-{no:06}.jsonl")
}

fn now_rfc3339() -> String {
    crate::rfc3339::format(chrono::Utc::now()).unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Write `bytes` to `path` (private, replacing an earlier attempt) durably.
fn write_aside(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    outage::injected().map_err(io_err(path))?;
    crate::atomic_write::write(path, bytes, crate::atomic_write::Mode::Private)
        .map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

// ---------------------------------------------------------------------------------------------
// The writer's state

#[derive(Debug)]
struct Writer {
    dir: PathBuf,
    _lock: Flock<File>,
    file: File,
    path: PathBuf,
    file_no: u32,
    file_len: u64,
    next_seq: u64,
    head: ChainHash,
    since_checkpoint: u64,
    signer: Option<CheckpointSigner>,
    options: AuditLogOptions,
    /// Encoded, not yet written records.
    buf: Vec<u8>,
    stats: Arc<Counters>,
    anchor: Option<Box<dyn Anchor>>,
    witness: Option<Box<dyn Witness>>,
    /// Checkpoint lines in `buf`, for the witness once they are synced.
    witnessed: Vec<Vec<u8>>,
    /// Head, next seq and records since the last checkpoint as of the last sync: what a
    /// failed write goes back to.
    synced: (ChainHash, u64, u64),
    /// Set while writes fail for lack of space.
    outage: Option<Outage>,
    health: Health,
}

/// A full disk: since when, why, and what a failed write left behind (cut off the file).
#[derive(Debug)]
struct Outage {
    since: String,
    reason: String,
    /// Bytes of the first failed write that reached the file, and where they were.
    cut: Vec<u8>,
    cut_file_no: u32,
    cut_offset: u64,
    /// Appends refused meanwhile.
    refused: u64,
}

/// The last good record of a file, and what follows it if torn.
#[derive(Debug)]
struct Tail {
    /// Seq, hash and action of the last good record, if the file has one.
    last: Option<(u64, ChainHash, String)>,
    /// Offset of the end of the last good record.
    good_len: u64,
    /// Bytes after it that are not a complete record.
    torn: Option<Vec<u8>>,
}

impl Writer {
    fn open(
        dir: &Path,
        signer: Option<&AuditSigner>,
        options: AuditLogOptions,
        anchor: Option<Box<dyn Anchor>>,
        witness: Option<Box<dyn Witness>>,
        mode: Mode,
    ) -> Result<Writer, AuditError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("audit.lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .mode(0o600)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| AuditError::Locked(dir.display().to_string()))?;
        let signer = signer.map(CheckpointSigner::new).transpose()?;
        let files = numbered_files(dir)?;

        let Some((file_no, path)) = files.last().cloned() else {
            let standing = stand(dir, anchor.as_deref(), None, &files)?;
            let note = judge(dir, standing, &mode)?;
            let mut writer = Writer::create(dir, lock, signer, options, anchor, witness)?;
            if let Some(event) = note {
                writer.stage(&event)?;
                writer.stage_checkpoint("open")?;
                writer.commit()?;
            }
            return Ok(writer);
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let tail = read_tail(&mut file, &path)?;
        let mut last = tail.last.clone();
        if last.is_none() {
            // Nothing good in the last file (crash right after rotating): the head is in the
            // file before it, which must end cleanly.
            if let Some((_, prev_path)) = files.iter().rev().nth(1) {
                let mut prev = File::open(prev_path).map_err(io_err(prev_path))?;
                let prev_tail = read_tail(&mut prev, prev_path)?;
                if prev_tail.torn.is_some() {
                    return Err(AuditError::Tampered {
                        path: prev_path.display().to_string(),
                        offset: prev_tail.good_len,
                        reason: "a rotated file ends in an incomplete record".into(),
                    });
                }
                last = prev_tail.last;
            }
        }
        // Before anything is changed (torn bytes set aside, records added): a log cut back,
        // rewritten or extended by hand is refused as found.
        let standing = stand(
            dir,
            anchor.as_deref(),
            last.as_ref().map(|(seq, hash, _)| (*seq, *hash)),
            &files,
        )?;
        let note = judge(dir, standing, &mode)?;
        let file_len = tail.good_len;
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            _lock: lock,
            file,
            path,
            file_no,
            file_len,
            next_seq: 1,
            head: ChainHash::ZERO,
            since_checkpoint: 0,
            signer,
            options,
            buf: Vec::new(),
            stats: Arc::default(),
            anchor,
            witness,
            witnessed: Vec::new(),
            synced: (ChainHash::ZERO, 1, 0),
            outage: None,
            health: Health::default(),
        };
        if let Some(torn) = &tail.torn {
            writer.set_torn_aside(torn)?;
        }
        match last {
            None => {
                // Not even a genesis survived: start the chain, then note the torn bytes.
                writer.stage(&chain::genesis_event(writer.kid(), &now_rfc3339()))?;
                if let Some(torn) = &tail.torn {
                    writer.stage_torn(torn)?;
                }
            }
            Some((seq, hash, action)) => {
                writer.next_seq = seq.saturating_add(1);
                writer.head = hash;
                if let Some(torn) = &tail.torn {
                    writer.stage_torn(torn)?;
                }
                if action != chain::CHECKPOINT_ACTION || tail.torn.is_some() {
                    tracing::warn!(
                        "audit log `{}` did not end with a checkpoint (unclean stop); sealing it",
                        writer.dir.display()
                    );
                }
            }
        }
        if let Some(event) = note {
            writer.stage(&event)?;
        }
        // Every start is sealed by a signed checkpoint: records found after a shutdown
        // checkpoint without one were not written by a writer holding the key.
        writer.stage_checkpoint("open")?;
        writer.commit()?;
        Ok(writer)
    }

    fn create(
        dir: &Path,
        lock: Flock<File>,
        signer: Option<CheckpointSigner>,
        options: AuditLogOptions,
        anchor: Option<Box<dyn Anchor>>,
        witness: Option<Box<dyn Witness>>,
    ) -> Result<Writer, AuditError> {
        let path = dir.join(file_name(1));
        let file = OpenOptions::new()
            .create_new(true)
            .mode(0o600)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(dir)?;
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            _lock: lock,
            file,
            path,
            file_no: 1,
            file_len: 0,
            next_seq: 1,
            head: ChainHash::ZERO,
            since_checkpoint: 0,
            signer,
            options,
            buf: Vec::new(),
            stats: Arc::default(),
            anchor,
            witness,
            witnessed: Vec::new(),
            synced: (ChainHash::ZERO, 1, 0),
            outage: None,
            health: Health::default(),
        };
        writer.stage(&chain::genesis_event(writer.kid(), &now_rfc3339()))?;
        writer.commit()?;
        Ok(writer)
    }

    fn kid(&self) -> Option<&str> {
        self.signer.as_ref().map(CheckpointSigner::kid)
    }

    /// The shutdown checkpoint (with a signer), synced and anchored as a clean stop; after a
    /// full disk, the outage is recorded first.
    fn shut_down(&mut self) -> Result<(), AuditError> {
        self.recover()?;
        if self.signer.is_some() {
            self.stage_checkpoint("shutdown")?;
            self.commit()?;
            return self.save_anchor(true);
        }
        self.commit()
    }

    /// A write failed. Out of space: cut the file back to its last synced length (known
    /// state, no record of a refused append), note the outage, and answer with what to do
    /// (`Ok`). Anything else, or when cutting back fails: the message that poisons the log.
    fn fail(&mut self, e: AuditError, refused: u64) -> Result<String, String> {
        self.buf.clear();
        self.witnessed.clear();
        (self.head, self.next_seq, self.since_checkpoint) = self.synced;
        let message = e.to_string();
        let full = matches!(&e, AuditError::Io { source, .. } if outage::is_out_of_space(source));
        if !full {
            tracing::error!("audit log write failed: {e}");
            return Err(message);
        }
        let cut = match self.cut_back() {
            Ok(cut) => cut,
            Err(e2) => {
                tracing::error!("audit log write failed: {e}; cutting it back failed too: {e2}");
                return Err(format!("{message}; cutting it back failed too: {e2}"));
            }
        };
        let outage = self.outage.get_or_insert_with(|| Outage {
            since: now_rfc3339(),
            reason: match &e {
                AuditError::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            },
            cut,
            cut_file_no: self.file_no,
            cut_offset: self.file_len,
            refused: 0,
        });
        outage.refused = outage.refused.saturating_add(refused);
        let unavailable = Unavailable {
            dir: self.dir.display().to_string(),
            since: outage.since.clone(),
            reason: outage.reason.clone(),
        };
        let advice = unavailable.advice();
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if health.is_none() {
            // The one line for the operator; retries stay quiet.
            tracing::warn!("{advice}");
            *health = Some(unavailable);
        }
        Ok(advice)
    }

    /// Cut the current file back to its last synced length; the bytes cut off.
    fn cut_back(&mut self) -> Result<Vec<u8>, AuditError> {
        use std::os::unix::fs::FileExt as _;
        let len = self.file.metadata().map_err(io_err(&self.path))?.len();
        let extra = len.saturating_sub(self.file_len);
        if extra == 0 {
            return Ok(Vec::new());
        }
        let mut cut = vec![0; usize::try_from(extra).unwrap_or(0)];
        self.file
            .read_exact_at(&mut cut, self.file_len)
            .map_err(io_err(&self.path))?;
        self.file
            .set_len(self.file_len)
            .map_err(io_err(&self.path))?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        Ok(cut)
    }

    /// After a full disk, the first write that works: set aside what the failed write left,
    /// record the outage and seal it with a checkpoint. Nothing to do when writing works.
    fn recover(&mut self) -> Result<(), AuditError> {
        let Some(outage) = self.outage.take() else {
            return Ok(());
        };
        let to = now_rfc3339();
        if let Err(e) = self.write_resumed(&outage, &to) {
            self.outage = Some(outage);
            return Err(e);
        }
        tracing::warn!(
            "audit log `{}` can be written again; it was unavailable from {} to {to} ({} appends \
             refused), recorded in the log",
            self.dir.display(),
            outage.since,
            outage.refused
        );
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    fn write_resumed(&mut self, outage: &Outage, to: &str) -> Result<(), AuditError> {
        if !outage.cut.is_empty() {
            let name = torn_name(outage.cut_file_no, outage.cut_offset);
            write_aside(&self.dir.join(&name), &outage.cut)?;
            let event = chain::torn_event(
                to,
                &file_name(outage.cut_file_no),
                outage.cut_offset,
                &outage.cut,
                &name,
            );
            self.stage(&event)?;
        }
        let mut details = serde_json::Map::new();
        details.insert("from".into(), outage.since.clone().into());
        details.insert("to".into(), to.into());
        details.insert("reason".into(), outage.reason.clone().into());
        details.insert("refused".into(), outage.refused.into());
        self.stage(&chain::self_event(chain::RESUMED_ACTION, to, details))?;
        self.stage_checkpoint("resume")?;
        self.commit()
    }

    /// Write a batch durably; the seqs given to its events, in order.
    fn write_batch(&mut self, batch: &[(u64, AuditEvent)]) -> Result<Vec<u64>, AuditError> {
        let mut seqs = Vec::with_capacity(batch.len());
        for (_, event) in batch {
            seqs.push(self.stage(event)?);
            if self.signer.is_some() && self.since_checkpoint >= self.options.checkpoint_every {
                self.stage_checkpoint("interval")?;
            }
        }
        self.commit()?;
        Ok(seqs)
    }

    /// Encode one record into the buffer (rotating first if it would not fit).
    fn stage(&mut self, event: &AuditEvent) -> Result<u64, AuditError> {
        let seq = self.next_seq;
        let encoded = chain::encode(seq, &self.head, event)?;
        let size = self.file_len + self.buf.len() as u64;
        // Only between batches: rotating commits what is staged, and a batch that then failed
        // would leave records its appenders were told are not written.
        if self.buf.is_empty()
            && size > 0
            && size + encoded.line.len() as u64 > self.options.max_file_bytes
        {
            self.rotate()?;
            // The chain head moved (rotation checkpoint): encode again.
            return self.stage(event);
        }
        self.buf.extend_from_slice(&encoded.line);
        self.head = encoded.hash;
        self.next_seq = seq.saturating_add(1);
        self.since_checkpoint += 1;
        Ok(seq)
    }

    fn stage_checkpoint(&mut self, reason: &str) -> Result<(), AuditError> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let event = chain::checkpoint_event(
            signer,
            self.next_seq.saturating_sub(1),
            &self.head,
            &now_rfc3339(),
            reason,
        );
        // A checkpoint never triggers rotation (it belongs at the end of its file).
        let encoded = chain::encode(self.next_seq, &self.head, &event)?;
        if self.witness.is_some() {
            let line = encoded.line.strip_suffix(b"\n").unwrap_or(&encoded.line);
            self.witnessed.push(line.to_vec());
        }
        self.buf.extend_from_slice(&encoded.line);
        self.head = encoded.hash;
        self.next_seq = self.next_seq.saturating_add(1);
        self.since_checkpoint = 0;
        Ok(())
    }

    fn stage_torn(&mut self, torn: &[u8]) -> Result<(), AuditError> {
        let offset = self.file_len;
        let event = chain::torn_event(
            &now_rfc3339(),
            &file_name(self.file_no),
            offset,
            torn,
            &torn_name(self.file_no, offset),
        );
        self.stage(&event).map(|_| ())
    }

    /// Copy torn bytes aside durably, then cut them off the file.
    fn set_torn_aside(&mut self, torn: &[u8]) -> Result<(), AuditError> {
        let offset = self.file_len;
        let side = self.dir.join(torn_name(self.file_no, offset));
        tracing::warn!(
            "audit log `{}` ends in a torn record at byte {offset} ({} bytes); saved to `{}`",
            self.path.display(),
            torn.len(),
            side.display()
        );
        write_aside(&side, torn)?;
        self.file.set_len(offset).map_err(io_err(&self.path))?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        Ok(())
    }

    /// Write the buffer and `fdatasync`.
    fn commit(&mut self) -> Result<(), AuditError> {
        if self.buf.is_empty() {
            self.synced = (self.head, self.next_seq, self.since_checkpoint);
            return Ok(());
        }
        outage::injected().map_err(io_err(&self.path))?;
        self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        let records = self.buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.stats.records.fetch_add(records, Ordering::Relaxed);
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.file_len += self.buf.len() as u64;
        self.buf.clear();
        self.synced = (self.head, self.next_seq, self.since_checkpoint);
        self.save_anchor(false)?;
        if let Some(witness) = &self.witness {
            for line in self.witnessed.drain(..) {
                witness.checkpoint(&line);
            }
        }
        Ok(())
    }

    /// Anchor the head outside the log, before any appender hears of its records.
    fn save_anchor(&self, clean: bool) -> Result<(), AuditError> {
        let Some(anchor) = &self.anchor else {
            return Ok(());
        };
        let state = AnchorState {
            seq: self.next_seq.saturating_sub(1),
            hash: self.head,
            clean,
        };
        anchor
            .save(&state)
            .map_err(|message| AuditError::AnchorStore {
                path: self.dir.display().to_string(),
                message,
            })
    }

    /// Seal the current file with a checkpoint, write it out and start the next file.
    fn rotate(&mut self) -> Result<(), AuditError> {
        self.stage_checkpoint("rotate")?;
        self.commit()?;
        let no = self.file_no.saturating_add(1);
        let path = self.dir.join(file_name(no));
        let file = OpenOptions::new()
            .create_new(true)
            .mode(0o600)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.path = path;
        self.file_no = no;
        self.file_len = 0;
        Ok(())
    }
}

/// Where the log's head (`last`) stands against its anchor; no anchor: nothing to compare.
fn stand(
    dir: &Path,
    anchor: Option<&dyn Anchor>,
    last: Option<(u64, ChainHash)>,
    files: &[(u32, PathBuf)],
) -> Result<Option<Standing>, AuditError> {
    let Some(anchor) = anchor else {
        return Ok(None);
    };
    let store_err = |message: String| AuditError::AnchorStore {
        path: dir.display().to_string(),
        message,
    };
    let state = anchor.load().map_err(store_err)?;
    anchor::check(state.as_ref(), last, |seq| hash_at(files, seq))
        .map(Some)
        .map_err(store_err)
}

/// What opening does about the standing: refuse, or the record to write before the open
/// checkpoint (unanchored records found, or a repair).
fn judge(
    dir: &Path,
    standing: Option<Standing>,
    mode: &Mode,
) -> Result<Option<AuditEvent>, AuditError> {
    let time = now_rfc3339();
    let mut details = serde_json::Map::new();
    match (standing, mode) {
        (None | Some(Standing::Matches), _) => Ok(None),
        (Some(Standing::Mismatch(reason)), Mode::Normal) => Err(AuditError::Anchor {
            path: dir.display().to_string(),
            reason,
        }),
        (Some(Standing::Mismatch(reason)), Mode::Repair { actor, found }) => {
            tracing::warn!("re-anchoring audit log `{}`: {reason}", dir.display());
            details.insert("found".into(), reason.clone().into());
            *found.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
            Ok(Some(AuditEvent {
                time,
                actor: actor.clone(),
                action: chain::REPAIR_ACTION.into(),
                subject: chain::SELF_SUBJECT.into(),
                outcome: "ok".into(),
                details,
            }))
        }
        (Some(Standing::Unanchored { from, to }), _) => {
            tracing::warn!(
                "audit log `{}`: records {from}..={to} were written but never acknowledged \
                 (the writer stopped before anchoring them); keeping them, noted",
                dir.display()
            );
            details.insert("from".into(), from.into());
            details.insert("to".into(), to.into());
            Ok(Some(chain::self_event(
                chain::UNANCHORED_ACTION,
                &time,
                details,
            )))
        }
    }
}

/// The hash of record `seq`, searched from the newest file back.
fn hash_at(files: &[(u32, PathBuf)], seq: u64) -> Result<Option<ChainHash>, String> {
    for (_, path) in files.iter().rev() {
        let mut first_seq = None;
        let mut found = None;
        crate::audit::read::for_each_record(std::slice::from_ref(path), |_, r| {
            if let Ok(r) = r {
                first_seq.get_or_insert(r.seq);
                if r.seq == seq {
                    found = ChainHash::from_hex(&r.hash);
                }
            }
        })
        .map_err(|e| e.to_string())?;
        if found.is_some() {
            return Ok(found);
        }
        if first_seq.is_some_and(|first| first <= seq) {
            return Ok(None);
        }
    }
    Ok(None)
}

fn torn_name(file_no: u32, offset: u64) -> String {
    format!("torn-{file_no:06}-{offset}.bin")
}

/// Find the last good record of a file and any torn bytes after it.
fn read_tail(file: &mut File, path: &Path) -> Result<Tail, AuditError> {
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut chunk = TAIL_CHUNK.min(len);
    loop {
        let start = len - chunk;
        let mut data = Vec::with_capacity(usize::try_from(chunk).unwrap_or(0));
        file.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
        Read::by_ref(file)
            .take(chunk)
            .read_to_end(&mut data)
            .map_err(io_err(path))?;
        if let Some(tail) = scan_tail(&data, start, start == 0, path)? {
            return Ok(tail);
        }
        // The last line starts before this chunk: read more.
        chunk = chunk.saturating_mul(2).min(len);
    }
}

/// Split `data` (the file from `base` to its end) into the last good record and a torn rest.
/// `None` when the chunk does not reach the start of the lines it needs.
fn scan_tail(data: &[u8], base: u64, whole: bool, path: &Path) -> Result<Option<Tail>, AuditError> {
    // Unterminated bytes at the end are torn.
    let content_end = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if content_end == 0 && !whole {
        return Ok(None);
    }
    let mut torn: Option<Vec<u8>> = data
        .get(content_end..)
        .filter(|t| !t.is_empty())
        .map(<[u8]>::to_vec);
    let mut good_end = content_end;
    let mut tried_torn_line = false;
    loop {
        let Some(body) = good_end.checked_sub(1).and_then(|e| data.get(..e)) else {
            // Empty (or everything torn).
            return Ok(Some(Tail {
                last: None,
                good_len: base + good_end as u64,
                torn,
            }));
        };
        let line_start = match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if whole => 0,
            None => return Ok(None),
        };
        let line = body.get(line_start..).unwrap_or_default();
        match chain::decode(line) {
            Ok((record, hash)) => {
                return Ok(Some(Tail {
                    last: Some((record.seq, hash, record.action)),
                    good_len: base + good_end as u64,
                    torn,
                }));
            }
            // A terminated line that is not a record at all is a torn write only when nothing
            // unterminated follows it (one write can tear once).
            Err(e) if e.is_malformed() && torn.is_none() && !tried_torn_line => {
                tried_torn_line = true;
                torn = data.get(line_start..good_end).map(<[u8]>::to_vec);
                good_end = line_start;
            }
            Err(e) => {
                return Err(AuditError::Tampered {
                    path: path.display().to_string(),
                    offset: base + line_start as u64,
                    reason: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    fn event(n: u32) -> AuditEvent {
        AuditEvent {
            time: "2026-01-02T03:04:05Z".into(),
            actor: "alice".into(),
            action: "request.create".into(),
            subject: format!("r{n}"),
            outcome: "ok".into(),
            details: serde_json::Map::new(),
        }
    }

    #[test]
    fn log_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None).unwrap();
        log.append(event(1)).unwrap();
        drop(log);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let meta = entry.unwrap().metadata().unwrap();
            assert_eq!(meta.permissions().mode() & 0o077, 0);
        }
    }

    #[test]
    fn second_writer_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None).unwrap();
        assert!(matches!(
            AuditLog::open(dir.path(), None),
            Err(AuditError::Locked(_))
        ));
        assert_eq!(log.append(event(1)).unwrap(), 2);
        log.close().unwrap();
        assert!(log.append(event(2)).is_err());
    }

    #[test]
    fn reopen_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let signer = AuditSigner {
            kid: "k".into(),
            seed: [3; 32],
        };
        let log = AuditLog::open(dir.path(), Some(signer.clone())).unwrap();
        assert_eq!(log.append(event(1)).unwrap(), 2);
        drop(log); // seq 3: shutdown checkpoint
        let log = AuditLog::open(dir.path(), Some(signer)).unwrap();
        // seq 4: the checkpoint every start writes
        assert_eq!(log.append(event(2)).unwrap(), 5);
    }

    #[test]
    fn a_batch_handed_over_whole_costs_one_sync() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None).unwrap();
        let before = log.stats();
        let seqs = log.append_all((0..500).map(event).collect()).unwrap();
        assert_eq!(seqs.first().copied(), Some(2));
        assert_eq!(seqs.last().copied(), Some(501));
        let after = log.stats();
        assert_eq!(after.records - before.records, 500);
        // The writer may wake while the first events are still being queued; never one each.
        assert!(after.syncs - before.syncs <= 10, "{after:?}");
    }

    /// Notes which thread hands each synced checkpoint on, and panics once told to.
    #[derive(Debug, Default)]
    struct Spy {
        threads: Arc<Mutex<Vec<std::thread::ThreadId>>>,
        panic: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Witness for Spy {
        fn checkpoint(&self, _line: &[u8]) {
            assert!(!self.panic.load(Ordering::SeqCst), "the witness broke");
            self.threads
                .lock()
                .unwrap()
                .push(std::thread::current().id());
        }
    }

    /// A log whose every append is sealed by a checkpoint, witnessed by `spy`.
    fn spied(dir: &Path, spy: Spy) -> AuditLog {
        let anchor = crate::audit::FileAnchor::open(&dir.join("audit.anchor")).unwrap();
        let signer = AuditSigner {
            kid: "k".into(),
            seed: [5; 32],
        };
        let options = AuditLogOptions {
            checkpoint_every: 1,
            ..AuditLogOptions::default()
        };
        AuditLog::open_witnessed(
            &dir.join("audit"),
            Some(signer),
            options,
            Box::new(anchor),
            Box::new(spy),
        )
        .unwrap()
    }

    #[test]
    fn a_lone_appender_writes_and_syncs_in_its_own_thread() {
        let dir = tempfile::tempdir().unwrap();
        let spy = Spy::default();
        let threads = Arc::clone(&spy.threads);
        let log = spied(dir.path(), spy);
        threads.lock().unwrap().clear();
        let before = log.stats();
        for n in 0..5 {
            log.append(event(n)).unwrap();
        }
        let after = log.stats();
        assert_eq!(after.syncs - before.syncs, 5, "{after:?}");
        let seen = threads.lock().unwrap().clone();
        assert_eq!(seen.len(), 5);
        assert!(
            seen.iter().all(|&t| t == std::thread::current().id()),
            "written by another thread: {seen:?}"
        );
    }

    #[test]
    fn a_panic_mid_batch_poisons_the_log_and_wakes_every_appender() {
        let dir = tempfile::tempdir().unwrap();
        let spy = Spy::default();
        let panic = Arc::clone(&spy.panic);
        let log = Arc::new(spied(dir.path(), spy));
        log.append(event(0)).unwrap();
        panic.store(true, Ordering::SeqCst);
        let appenders: Vec<_> = (1..=6)
            .map(|n| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || log.append_all(vec![event(n), event(n + 100)]))
            })
            .collect();
        let mut panicked = 0;
        for appender in appenders {
            match appender.join() {
                Err(_) => panicked += 1,
                Ok(Err(e)) => assert!(e.to_string().contains("stopped unexpectedly"), "{e}"),
                Ok(Ok(seqs)) => panic!("acknowledged after the writer was lost: {seqs:?}"),
            }
        }
        assert!(panicked >= 1);
        // The writer is gone: later appends fail at once, and close says why, once.
        assert!(log.append(event(99)).is_err());
        assert!(matches!(log.close(), Err(AuditError::Poisoned { .. })));
        assert!(log.close().is_ok());
    }

    #[test]
    fn altered_last_record_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(AuditLog::open(dir.path(), None).unwrap());
        let path = dir.path().join(file_name(1));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("jitsh-audit/1", "jitsh-audit/2")).unwrap();
        assert!(matches!(
            AuditLog::open(dir.path(), None),
            Err(AuditError::Tampered { offset: 0, .. })
        ));
    }
}
