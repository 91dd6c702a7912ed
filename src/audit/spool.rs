//! A gate's audit sink: events are spooled durably on the gate's machine and forwarded, in
//! order, to the approval service (`POST /v1/audit/events`), so nothing is lost while the
//! service is briefly unreachable.
//!
//! Files in the spool folder:
//! - `spool.lock`: `flock`ed by the one process that writes the spool.
//! - `spool.id`: a random id naming this spool, so batch ids never collide across gates.
//! - `spool-OFFSET.jsonl`: the events, one `{"seq": N, "event": {...}}` per line. OFFSET is
//!   the segment's first byte in the spool's lifetime byte stream; appends go to the newest
//!   segment. When everything is forwarded a new, empty segment is started and the old one
//!   deleted (compaction), so offsets only grow.
//! - `spool.cursor`: JSON `{"forwarded", "seq", "inflight"}`, replaced atomically: the offset
//!   up to which the service has accepted events, and the batch being sent.
//!
//! A batch's id is `SPOOLID:START-END` (byte offsets). The range is written to the cursor before
//! the batch is first sent and resent unchanged until the service answers 200, even across
//! restarts, so the service (which takes a repeated id once) logs every event exactly once.
//!
//! A torn last line (crash during an append) is moved to `torn-OFFSET.bin` with a warning. A
//! batch the service refuses for good (400, 403, 409, 413, 422) is moved to
//! `rejected-START-END.jsonl` with an error so later events still flow; everything else
//! (unreachable, 401, 5xx, ...) is retried with backoff from 1 s to 30 s.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, AuditSink, AuditSinkError};

/// Largest spool line; with the batch envelope it stays under the service's 64 KiB body limit.
pub const MAX_LINE: usize = 60 * 1024;
/// Largest request body the forwarder builds.
const MAX_BODY: usize = 63 * 1024;
/// Most events in one batch (the service's limit).
const MAX_EVENTS: usize = 500;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CURSOR_FILE: &str = "spool.cursor";

/// Whether a gate may send events with `action` (session and gate events only).
pub fn gate_action_allowed(action: &str) -> bool {
    crate::audit::decision::gate_outcomes(action).is_some()
}

/// Why the spool could not be opened or emptied.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("audit spool `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit spool `{0}` is in use by another process")]
    Locked(String),
    #[error("audit spool `{path}` is damaged at byte {offset}: {reason}")]
    Damaged {
        path: String,
        offset: u64,
        reason: String,
    },
    #[error("`{0}` is not a service address; use http://HOST:PORT or https://HOST")]
    BadServer(String),
    #[error("the audit forwarder could not start: {0}")]
    Runtime(String),
    #[error("{pending} audit events are not yet delivered to the approval service: {reason}")]
    NotDelivered { pending: usize, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One spool line.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    seq: u64,
    event: AuditEvent,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// Offset up to which the service accepted everything.
    forwarded: u64,
    /// Last seq accepted (so seqs keep growing after compaction).
    seq: u64,
    /// The batch being sent, `[start, end)`.
    inflight: Option<(u64, u64)>,
}

#[derive(Debug)]
struct Segment {
    base: u64,
    path: PathBuf,
    len: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

#[derive(Debug)]
struct State {
    /// Oldest first; the last one takes appends.
    segments: Vec<Segment>,
    file: File,
    next_seq: u64,
    cursor: Cursor,
    /// Events not yet accepted by the service.
    pending: usize,
    /// After a failed write the file's state is unknown: refuse every later append.
    poisoned: Option<String>,
    last_error: Option<String>,
    /// Callers waiting in `flush`: retry without the long backoff.
    flushing: usize,
    /// Set by `flush` to cut the current backoff short.
    kick: bool,
    stop: bool,
}

struct Shared {
    dir: PathBuf,
    id: String,
    url: String,
    state: Mutex<State>,
    changed: Condvar,
    _lock: Flock<File>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("dir", &self.dir)
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An [`AuditSink`] that spools events durably and forwards them to the approval service.
#[derive(Debug)]
pub struct SpoolingSink {
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl SpoolingSink {
    /// Open (or create) the spool in `spool_dir` and start forwarding what it holds to
    /// `server` (the service's base URL) with `credential`.
    pub fn open(
        spool_dir: &Path,
        server: String,
        credential: String,
    ) -> Result<SpoolingSink, SpoolError> {
        let url = format!("{}/v1/audit/events", server.trim_end_matches('/'));
        if !reqwest::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(SpoolError::BadServer(server));
        }
        // Refuses clear text off loopback before anything is written.
        let timeouts = crate::api::Timeouts {
            call: REQUEST_TIMEOUT,
            connect: CONNECT_TIMEOUT,
        };
        let client = crate::api::ApiClient::new(&server, Some(credential), timeouts)
            .map_err(|e| SpoolError::Runtime(e.to_string()))?;
        std::fs::create_dir_all(spool_dir).map_err(io_err(spool_dir))?;
        let lock_path = spool_dir.join("spool.lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .mode(0o600)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| SpoolError::Locked(spool_dir.display().to_string()))?;
        let id = spool_id(spool_dir)?;
        let state = open_state(spool_dir)?;
        let shared = Arc::new(Shared {
            dir: spool_dir.to_path_buf(),
            id,
            url,
            state: Mutex::new(state),
            changed: Condvar::new(),
            _lock: lock,
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SpoolError::Runtime(e.to_string()))?;
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("jitsh-audit-forward".into())
            .spawn(move || forward_loop(&worker_shared, &runtime, &client, stop_rx))
            .map_err(|e| SpoolError::Runtime(e.to_string()))?;
        Ok(SpoolingSink {
            shared,
            stop,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Events spooled and not yet accepted by the service.
    pub fn pending(&self) -> usize {
        self.shared.lock().pending
    }

    /// The last forwarding failure, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().last_error.clone()
    }

    /// Try to deliver everything now (at session end); waits up to `timeout`. What is not
    /// delivered stays spooled and goes out at the next start.
    pub fn flush(&self, timeout: Duration) -> Result<(), SpoolError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        state.flushing += 1;
        state.kick = true;
        self.shared.changed.notify_all();
        while state.pending > 0 && !state.stop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.flushing = state.flushing.saturating_sub(1);
        if state.pending == 0 {
            return Ok(());
        }
        Err(SpoolError::NotDelivered {
            pending: state.pending,
            reason: state
                .last_error
                .clone()
                .unwrap_or_else(|| "the service did not answer in time".into()),
        })
    }

    fn sink_error(&self, message: impl Into<String>) -> AuditSinkError {
        AuditSinkError {
            path: self.shared.dir.display().to_string(),
            message: message.into(),
        }
    }
}

impl AuditSink for SpoolingSink {
    fn append(&self, event: AuditEvent) -> Result<u64, AuditSinkError> {
        if !gate_action_allowed(&event.action) {
            return Err(self.sink_error(format!(
                "action `{}` is not a gate event (session.start, session.end, gate.decision, \
                 gate.request, gate.abort, gate.bypass)",
                event.action
            )));
        }
        let mut state = self.shared.lock();
        if let Some(message) = &state.poisoned {
            return Err(self.sink_error(format!("stopped after an earlier failure: {message}")));
        }
        let seq = state.next_seq;
        let mut line = serde_json::to_vec(&Line { seq, event })
            .map_err(|e| self.sink_error(format!("the event could not be encoded: {e}")))?;
        line.push(b'\n');
        if line.len() > MAX_LINE {
            return Err(self.sink_error(format!(
                "the event is {} bytes; at most {MAX_LINE} can be forwarded",
                line.len()
            )));
        }
        let written = state
            .file
            .write_all(&line)
            .and_then(|()| state.file.sync_data());
        if let Err(e) = written {
            let message = e.to_string();
            state.poisoned = Some(message.clone());
            return Err(self.sink_error(message));
        }
        if let Some(last) = state.segments.last_mut() {
            last.len += line.len() as u64;
        }
        state.next_seq = seq.saturating_add(1);
        state.pending += 1;
        self.shared.changed.notify_all();
        Ok(seq)
    }
}

impl Drop for SpoolingSink {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        let _ = self.stop.send(true);
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = worker {
            if handle.join().is_err() {
                tracing::error!("the audit forwarder stopped unexpectedly");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Opening

fn spool_id(dir: &Path) -> Result<String, SpoolError> {
    let path = dir.join("spool.id");
    match std::fs::read_to_string(&path) {
        Ok(text) if valid_id(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(SpoolError::Damaged {
                path: path.display().to_string(),
                offset: 0,
                reason: "not a spool id".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    let mut bytes = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| SpoolError::Runtime("no randomness available".into()))?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_atomic(&path, format!("{id}\n").as_bytes())?;
    Ok(id)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn segment_name(base: u64) -> String {
    format!("spool-{base:020}.jsonl")
}

fn segment_base(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("spool-")?.strip_suffix(".jsonl")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn open_state(dir: &Path) -> Result<State, SpoolError> {
    let cursor_path = dir.join(CURSOR_FILE);
    let saved: Option<Cursor> = match std::fs::read(&cursor_path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|e| SpoolError::Damaged {
                path: cursor_path.display().to_string(),
                offset: 0,
                reason: e.to_string(),
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&cursor_path)(e)),
    };
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let Some(base) = entry.file_name().to_str().and_then(segment_base) else {
            continue;
        };
        let path = entry.path();
        let len = entry.metadata().map_err(io_err(&path))?.len();
        segments.push(Segment { base, path, len });
    }
    segments.sort_by_key(|s| s.base);
    let mut cursor = saved.unwrap_or_else(|| Cursor {
        forwarded: segments.first().map_or(0, |s| s.base),
        ..Cursor::default()
    });
    // Fully forwarded older segments are left over from a compaction cut short.
    let newest = segments.len().saturating_sub(1);
    let mut keep = Vec::new();
    for (i, s) in segments.into_iter().enumerate() {
        if i < newest && s.end() <= cursor.forwarded {
            std::fs::remove_file(&s.path).map_err(io_err(&s.path))?;
        } else {
            keep.push(s);
        }
    }
    let mut segments = keep;
    if let Some(last) = segments.last_mut() {
        trim_torn(dir, last)?;
    }
    if let Some(first) = segments.first() {
        if cursor.forwarded < first.base {
            tracing::warn!(
                "audit spool `{}` starts after its cursor; forwarding from byte {}",
                dir.display(),
                first.base
            );
            cursor.forwarded = first.base;
        }
    }
    // Never append below the cursor: those bytes would count as already forwarded.
    if segments.last().is_none_or(|s| s.end() < cursor.forwarded) {
        if !segments.is_empty() {
            tracing::warn!(
                "audit spool `{}` is shorter than its cursor; starting a new segment",
                dir.display()
            );
        }
        let path = dir.join(segment_name(cursor.forwarded));
        OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(dir)?;
        segments.push(Segment {
            base: cursor.forwarded,
            path,
            len: 0,
        });
    }
    let mut pending = 0usize;
    let mut last_seq = cursor.seq;
    for s in &segments {
        let data = std::fs::read(&s.path).map_err(io_err(&s.path))?;
        let mut at = 0usize;
        for raw in data.split_inclusive(|&b| b == b'\n') {
            let line: Line = serde_json::from_slice(raw).map_err(|e| SpoolError::Damaged {
                path: s.path.display().to_string(),
                offset: at as u64,
                reason: e.to_string(),
            })?;
            last_seq = last_seq.max(line.seq);
            if s.base + at as u64 >= cursor.forwarded {
                pending += 1;
            }
            at += raw.len();
        }
    }
    if let Some((start, end)) = cursor.inflight {
        if start != cursor.forwarded || !is_line_end(&segments, end) {
            cursor.inflight = None;
        }
    }
    let newest = segments.last().ok_or_else(|| SpoolError::Damaged {
        path: dir.display().to_string(),
        offset: 0,
        reason: "no spool segment".into(),
    })?;
    let file = OpenOptions::new()
        .append(true)
        .open(&newest.path)
        .map_err(io_err(&newest.path))?;
    Ok(State {
        segments,
        file,
        next_seq: last_seq.saturating_add(1),
        cursor,
        pending,
        poisoned: None,
        last_error: None,
        flushing: 0,
        kick: false,
        stop: false,
    })
}

/// Whether `offset` is the end of a line (or a segment) inside the spool.
fn is_line_end(segments: &[Segment], offset: u64) -> bool {
    let Some(s) = segments
        .iter()
        .find(|s| s.base < offset && offset <= s.end())
    else {
        return false;
    };
    let mut byte = [0u8; 1];
    File::open(&s.path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(offset - s.base - 1))?;
            f.read_exact(&mut byte)
        })
        .is_ok()
        && byte[0] == b'\n'
}

/// Cut a torn last line off `segment` (unterminated, or terminated but not a spool line when
/// nothing follows it: one interrupted append tears once), keeping it in a side file.
fn trim_torn(dir: &Path, segment: &mut Segment) -> Result<(), SpoolError> {
    let data = std::fs::read(&segment.path).map_err(io_err(&segment.path))?;
    let mut good = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if good == data.len() {
        let body = data.get(..good.saturating_sub(1)).unwrap_or_default();
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let last = data.get(start..good).unwrap_or_default();
        if !last.is_empty() && serde_json::from_slice::<Line>(last).is_err() {
            good = start;
        }
    }
    let Some(torn) = data.get(good..).filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let offset = segment.base.saturating_add(good as u64);
    let mut side = dir.join(format!("torn-{offset}.bin"));
    let mut n = 1;
    while side.exists() {
        n += 1;
        side = dir.join(format!("torn-{offset}-{n}.bin"));
    }
    tracing::warn!(
        "audit spool `{}` ends in a torn line at byte {offset} ({} bytes); saved to `{}`",
        segment.path.display(),
        torn.len(),
        side.display()
    );
    write_atomic(&side, torn)?;
    let file = OpenOptions::new()
        .write(true)
        .open(&segment.path)
        .map_err(io_err(&segment.path))?;
    file.set_len(good as u64).map_err(io_err(&segment.path))?;
    file.sync_all().map_err(io_err(&segment.path))?;
    segment.len = good as u64;
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    crate::atomic_write::write(path, bytes, crate::atomic_write::Mode::Private)
        .map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

// ---------------------------------------------------------------------------------------------
// Forwarding

/// A batch read from the spool.
#[derive(Debug)]
struct Batch {
    start: u64,
    end: u64,
    last_seq: u64,
    events: Vec<AuditEvent>,
    raw: Vec<u8>,
}

/// What the service said.
#[derive(Debug)]
enum Outcome {
    Accepted,
    /// Refused for good: keep it aside and go on.
    Rejected(String),
    Retry(String),
    Stopped,
}

fn forward_loop(
    shared: &Shared,
    runtime: &tokio::runtime::Runtime,
    client: &crate::api::ApiClient,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let batch = {
            let mut state = shared.lock();
            while state.pending == 0 && !state.stop {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
            match next_batch(shared, &mut state) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("audit spool cannot be read: {e}");
                    state.last_error = Some(e.to_string());
                    None
                }
            }
        };
        let outcome = match &batch {
            Some(b) => runtime.block_on(send(shared, client, b, &mut stop)),
            None => Outcome::Retry("the spool could not be read".into()),
        };
        let mut state = shared.lock();
        let done = match (outcome, batch) {
            (Outcome::Stopped, _) => return,
            (Outcome::Accepted, Some(b)) => {
                state.last_error = None;
                Some(b)
            }
            (Outcome::Rejected(reason), Some(b)) => {
                let side = shared
                    .dir
                    .join(format!("rejected-{}-{}.jsonl", b.start, b.end));
                tracing::error!(
                    "the approval service refused audit batch {}-{} for good ({reason}); kept in `{}`",
                    b.start,
                    b.end,
                    side.display()
                );
                match write_atomic(&side, &b.raw) {
                    Ok(()) => {
                        state.last_error = Some(reason);
                        Some(b)
                    }
                    Err(e) => {
                        state.last_error = Some(e.to_string());
                        None
                    }
                }
            }
            (Outcome::Retry(reason), _) | (Outcome::Rejected(reason), None) => {
                tracing::warn!(
                    "audit events not forwarded yet ({reason}); retrying in {backoff:?}"
                );
                state.last_error = Some(reason);
                None
            }
            (Outcome::Accepted, None) => None,
        };
        match done {
            Some(b) => {
                if let Err(e) = mark_forwarded(shared, &mut state, &b) {
                    tracing::error!("audit spool cursor cannot be saved: {e}");
                    state.last_error = Some(e.to_string());
                    drop(wait_backoff(shared, state, backoff));
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                backoff = FIRST_BACKOFF;
                shared.changed.notify_all();
            }
            None => {
                let wait = if state.flushing > 0 {
                    backoff.min(Duration::from_millis(200))
                } else {
                    backoff
                };
                let state = wait_backoff(shared, state, wait);
                if state.stop {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Sleep `wait`, cut short by `flush` or `stop`.
fn wait_backoff<'a>(
    shared: &'a Shared,
    mut state: MutexGuard<'a, State>,
    wait: Duration,
) -> MutexGuard<'a, State> {
    let deadline = Instant::now() + wait;
    state.kick = false;
    while !state.kick && !state.stop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        state = shared
            .changed
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    state
}

/// The batch to send next: the one in flight, or a new one (recorded in the cursor first).
fn next_batch(shared: &Shared, state: &mut State) -> Result<Option<Batch>, SpoolError> {
    let start = state.cursor.forwarded;
    let Some(segment) = state
        .segments
        .iter()
        .find(|s| s.base <= start && start < s.end())
    else {
        return Ok(None);
    };
    let limit = match state.cursor.inflight {
        Some((s, e)) if s == start && e <= segment.end() => Some(e),
        _ => None,
    };
    let available = segment.end() - start;
    let want = limit.map_or(available.min(MAX_BODY as u64), |e| e - start);
    let mut data = vec![0u8; usize::try_from(want).unwrap_or(MAX_BODY)];
    let mut file = File::open(&segment.path).map_err(io_err(&segment.path))?;
    file.seek(SeekFrom::Start(start - segment.base))
        .map_err(io_err(&segment.path))?;
    file.read_exact(&mut data).map_err(io_err(&segment.path))?;
    let mut events = Vec::new();
    let mut size = 0usize;
    let mut used = 0usize;
    let mut last_seq = state.cursor.seq;
    for raw in data.split_inclusive(|&b| b == b'\n') {
        if raw.last() != Some(&b'\n') {
            break;
        }
        if limit.is_none() && (events.len() >= MAX_EVENTS || size + raw.len() > MAX_BODY - 256) {
            break;
        }
        let line: Line = serde_json::from_slice(raw).map_err(|e| SpoolError::Damaged {
            path: segment.path.display().to_string(),
            offset: start - segment.base + used as u64,
            reason: e.to_string(),
        })?;
        last_seq = line.seq;
        events.push(line.event);
        size += raw.len() + 1;
        used += raw.len();
    }
    if events.is_empty() {
        return Ok(None);
    }
    let end = start + used as u64;
    if limit.is_none() {
        state.cursor.inflight = Some((start, end));
        save_cursor(&shared.dir, &state.cursor)?;
    }
    data.truncate(used);
    Ok(Some(Batch {
        start,
        end,
        last_seq,
        events,
        raw: data,
    }))
}

async fn send(
    shared: &Shared,
    client: &crate::api::ApiClient,
    batch: &Batch,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Outcome {
    let body = serde_json::json!({
        "events": batch.events,
        "batch": format!("{}:{}-{}", shared.id, batch.start, batch.end),
    });
    let request = client.call(reqwest::Method::POST, "/v1/audit/events", Some(&body));
    let answer = tokio::select! {
        r = request => r,
        _ = stop.wait_for(|s| *s) => return Outcome::Stopped,
    };
    match answer {
        Ok(_) => Outcome::Accepted,
        Err(crate::api::CallError::Unreachable { message, .. }) => {
            Outcome::Retry(format!("`{}` is unreachable: {message}", shared.url))
        }
        // Refused for good: kept aside, never resent. Anything else may pass on a retry.
        Err(crate::api::CallError::Refused {
            status: status @ (400 | 403 | 409 | 413 | 422),
            message,
            ..
        }) => Outcome::Rejected(format!("{status}: {message}")),
        Err(e) => Outcome::Retry(format!("the service did not take the batch: {e}")),
    }
}

/// Record `batch` as accepted; compact when everything is.
fn mark_forwarded(shared: &Shared, state: &mut State, batch: &Batch) -> Result<(), SpoolError> {
    let cursor = Cursor {
        forwarded: batch.end,
        seq: batch.last_seq,
        inflight: None,
    };
    // Memory follows the disk: if the save fails the batch stays in flight and is resent.
    save_cursor(&shared.dir, &cursor)?;
    state.cursor = cursor;
    state.pending = state.pending.saturating_sub(batch.events.len());
    // Older segments left over from an interrupted compaction go once the cursor passes them.
    let forwarded = state.cursor.forwarded;
    while state.segments.len() > 1 && state.segments.first().is_some_and(|s| s.end() <= forwarded) {
        let old = state.segments.remove(0);
        std::fs::remove_file(&old.path).map_err(io_err(&old.path))?;
    }
    let fully = state
        .segments
        .last()
        .is_some_and(|s| s.len > 0 && s.end() == forwarded);
    if !fully || state.segments.len() != 1 {
        return Ok(());
    }
    // Start an empty segment at the cursor, then drop the forwarded one.
    let base = batch.end;
    let path = shared.dir.join(segment_name(base));
    let file = OpenOptions::new()
        .create(true)
        .mode(0o600)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    sync_dir(&shared.dir)?;
    let old = std::mem::replace(&mut state.segments, vec![Segment { base, path, len: 0 }]);
    state.file = file;
    for s in old {
        std::fs::remove_file(&s.path).map_err(io_err(&s.path))?;
    }
    sync_dir(&shared.dir)
}

fn save_cursor(dir: &Path, cursor: &Cursor) -> Result<(), SpoolError> {
    let bytes = serde_json::to_vec(cursor).map_err(|e| SpoolError::Damaged {
        path: dir.join(CURSOR_FILE).display().to_string(),
        offset: 0,
        reason: e.to_string(),
    })?;
    write_atomic(&dir.join(CURSOR_FILE), &bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    fn event(n: u32) -> AuditEvent {
        AuditEvent {
            time: "2026-01-02T03:04:05Z".into(),
            actor: "alice".into(),
            action: "gate.decision".into(),
            subject: format!("s{n}"),
            outcome: "allow".into(),
            details: serde_json::Map::new(),
        }
    }

    #[test]
    fn gate_actions_only() {
        for ok in [
            "session.start",
            "session.end",
            "gate.decision",
            "gate.bypass",
            "gate.request",
        ] {
            assert!(gate_action_allowed(ok), "{ok}");
        }
        for bad in [
            "request.approve",
            "request.local",
            "user.add",
            "gate.",
            "session",
            "gate.a b",
            "",
        ] {
            assert!(!gate_action_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn spool_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let sink = SpoolingSink::open(dir.path(), "http://127.0.0.1:9".into(), "c".into()).unwrap();
        sink.append(event(1)).unwrap();
        drop(sink);
        let mut files = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let meta = entry.unwrap().metadata().unwrap();
            if meta.is_file() {
                assert_eq!(meta.permissions().mode() & 0o077, 0);
                files += 1;
            }
        }
        assert!(files >= 2, "{files}");
    }

    #[test]
    fn torn_tail_is_set_aside_and_seqs_continue() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on port 9 of 127.0.0.1: every send fails and everything stays.
        let url = "http://127.0.0.1:9".to_owned();
        let sink = SpoolingSink::open(dir.path(), url.clone(), "c".into()).unwrap();
        assert_eq!(sink.append(event(1)).unwrap(), 1);
        assert_eq!(sink.append(event(2)).unwrap(), 2);
        drop(sink);
        let segment = dir.path().join(segment_name(0));
        let mut f = OpenOptions::new().append(true).open(&segment).unwrap();
        f.write_all(b"{\"seq\":3,\"ev").unwrap();
        drop(f);
        let sink = SpoolingSink::open(dir.path(), url, "c".into()).unwrap();
        assert_eq!(sink.pending(), 2);
        assert_eq!(sink.append(event(3)).unwrap(), 3);
        let torn: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("torn-"))
            .collect();
        assert_eq!(torn.len(), 1, "{torn:?}");
        assert_eq!(
            std::fs::read(dir.path().join(&torn[0])).unwrap(),
            b"{\"seq\":3,\"ev"
        );
        let text = std::fs::read_to_string(&segment).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(sink.flush(Duration::from_millis(100)).is_err());
    }

    #[test]
    fn a_terminated_but_broken_last_line_is_torn_too() {
        let dir = tempfile::tempdir().unwrap();
        let url = "http://127.0.0.1:9".to_owned();
        let sink = SpoolingSink::open(dir.path(), url.clone(), "c".into()).unwrap();
        sink.append(event(1)).unwrap();
        drop(sink);
        let segment = dir.path().join(segment_name(0));
        let good = std::fs::metadata(&segment).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&segment).unwrap();
        f.write_all(b"\0\0\0\n").unwrap();
        drop(f);
        let sink = SpoolingSink::open(dir.path(), url, "c".into()).unwrap();
        assert_eq!(sink.pending(), 1);
        assert_eq!(sink.append(event(2)).unwrap(), 2);
        assert_eq!(
            std::fs::read(dir.path().join(format!("torn-{good}.bin"))).unwrap(),
            b"\0\0\0\n"
        );
    }

    #[test]
    fn second_writer_is_locked_out_and_oversized_events_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = "http://127.0.0.1:9".to_owned();
        let sink = SpoolingSink::open(dir.path(), url.clone(), "c".into()).unwrap();
        assert!(matches!(
            SpoolingSink::open(dir.path(), url, "c".into()),
            Err(SpoolError::Locked(_))
        ));
        assert!(matches!(
            SpoolingSink::open(&dir.path().join("x"), "127.0.0.1:9".into(), "c".into()),
            Err(SpoolError::BadServer(_))
        ));
        let mut big = event(1);
        big.details
            .insert("line".into(), serde_json::json!("x".repeat(MAX_LINE)));
        assert!(sink.append(big).is_err());
        let mut other = event(2);
        other.action = "request.approve".into();
        assert!(sink.append(other).is_err());
        assert_eq!(sink.pending(), 0);
    }
}
