//! The session recording: asciicast v2, written by a thread of its own so a slow disk never
//! stalls the terminal, and flushed after every batch so a killed session still leaves a file
//! that parses up to the kill.
//!
//! Fail closed: a write error is remembered, and [`Recorder::sync`] (called before a privileged
//! line runs) reports it, so no approval-needing line runs unrecorded.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::ShellError;

/// What the header says about the session besides the terminal size.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: String,
    pub user: String,
    pub runspace: String,
    pub cols: u16,
    pub rows: u16,
}

enum Msg {
    Event {
        micros: u64,
        kind: &'static str,
        data: String,
    },
    Sync(oneshot::Sender<bool>),
}

/// Handle to the recording thread.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
    failed: Arc<AtomicBool>,
    start: Instant,
    path: PathBuf,
    utf8: Utf8Decoder,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl Recorder {
    /// Create `dir/<session-id>.cast` (never overwriting) and write the header.
    pub fn create(dir: &Path, info: &SessionInfo) -> Result<Recorder, ShellError> {
        let path = dir.join(format!("{}.cast", info.session_id));
        let io_err = |e: std::io::Error| ShellError::Record(format!("`{}`: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let file = open_private(&path).map_err(io_err)?;
        let mut out = BufWriter::new(file);
        let header = serde_json::json!({
            "version": 2,
            "width": info.cols,
            "height": info.rows,
            "timestamp": time::OffsetDateTime::now_utc().unix_timestamp(),
            "env": {"TERM": std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into())},
            "title": format!("jitsh session {} ({})", info.session_id, info.user),
            "user": info.user,
            "session_id": info.session_id,
            "runspace": info.runspace,
        });
        writeln!(out, "{header}")
            .and_then(|()| out.flush())
            .map_err(io_err)?;

        let failed = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let thread_failed = failed.clone();
        let thread = std::thread::Builder::new()
            .name("jitsh-record".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut next = Some(first);
                    // Write everything queued, then flush once.
                    while let Some(msg) = next {
                        match msg {
                            Msg::Event { micros, kind, data } => {
                                // The time is written from integer microseconds: no float drift.
                                let text = format!(
                                    "[{}, {}, {}]",
                                    format_micros(micros),
                                    serde_json::Value::from(kind),
                                    serde_json::Value::from(data)
                                );
                                if writeln!(out, "{text}").is_err() {
                                    thread_failed.store(true, Ordering::SeqCst);
                                }
                            }
                            Msg::Sync(ack) => {
                                let ok = out.flush().is_ok()
                                    && out.get_ref().sync_data().is_ok()
                                    && !thread_failed.load(Ordering::SeqCst);
                                if !ok {
                                    thread_failed.store(true, Ordering::SeqCst);
                                }
                                let _ = ack.send(ok);
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    if out.flush().is_err() {
                        thread_failed.store(true, Ordering::SeqCst);
                    }
                }
                let _ = out.flush();
            })
            .map_err(|e| ShellError::Record(e.to_string()))?;
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
            failed,
            start: Instant::now(),
            path,
            utf8: Utf8Decoder::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runspace output, decoded incrementally (a character split across reads is kept whole).
    pub fn output(&mut self, bytes: &[u8]) {
        let text = self.utf8.decode(bytes);
        if !text.is_empty() {
            self.event("o", text);
        }
    }

    /// Admin input (never secret input: the caller leaves that out).
    pub fn input(&mut self, bytes: &[u8]) {
        self.event("i", String::from_utf8_lossy(bytes).into_owned());
    }

    pub fn marker(&mut self, label: String) {
        self.event("m", label);
    }

    pub fn resize(&mut self, (cols, rows): (u16, u16)) {
        self.event("r", format!("{cols}x{rows}"));
    }

    /// Wait until everything so far is on disk; false if the recording cannot be written.
    pub async fn sync(&self) -> bool {
        if self.failed.load(Ordering::SeqCst) {
            return false;
        }
        let Some(tx) = &self.tx else { return false };
        let (ack, done) = oneshot::channel();
        if tx.send(Msg::Sync(ack)).is_err() {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Finish the file and return its SHA-256 (hex).
    pub fn finish(mut self) -> Result<String, ShellError> {
        let tail = std::mem::take(&mut self.utf8).finish();
        if !tail.is_empty() {
            self.event("o", tail);
        }
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if self.failed.load(Ordering::SeqCst) {
            return Err(ShellError::Record(format!(
                "`{}` could not be written completely",
                self.path.display()
            )));
        }
        let bytes = std::fs::read(&self.path)
            .map_err(|e| ShellError::Record(format!("`{}`: {e}", self.path.display())))?;
        Ok(hex(
            ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref()
        ))
    }

    fn event(&mut self, kind: &'static str, data: String) {
        let micros = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Event { micros, kind, data }).is_ok());
        if !sent {
            self.failed.store(true, Ordering::SeqCst);
        }
    }
}

fn open_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// `1.5` seconds from 1_500_000 µs; trailing zeros trimmed.
pub fn format_micros(micros: u64) -> String {
    let s = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Turns a byte stream into text without splitting characters across reads; invalid bytes
/// become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    pub fn decode(&mut self, bytes: &[u8]) -> String {
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &data;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{fffd}');
                            rest = bad.get(n..).unwrap_or_default();
                        }
                        None => {
                            // An unfinished character at the end: keep it for the next read.
                            self.pending = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_format_without_float_drift() {
        assert_eq!(format_micros(1_500_000), "1.5");
        assert_eq!(format_micros(0), "0");
        assert_eq!(format_micros(12_000_001), "12.000001");
    }

    #[test]
    fn utf8_split_across_reads_is_kept_whole() {
        let mut d = Utf8Decoder::default();
        let bytes = "h\u{e9}\u{1f600}".as_bytes();
        let mut text = String::new();
        for b in bytes {
            text.push_str(&d.decode(std::slice::from_ref(b)));
        }
        assert_eq!(text, "h\u{e9}\u{1f600}");
        assert_eq!(d.decode(b"\xffa"), "\u{fffd}a");
    }
}
