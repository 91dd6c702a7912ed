//! Appends a recording to a file as the session runs.
//!
//! Every event is written to the OS with one `write_all` (so the file always ends on an event
//! boundary or a torn last line, never interleaved garbage), markers and the end are
//! `sync_data`'d, so a session that is killed leaves a recording playable up to the kill.
//! The file is created new with mode 0600: recordings hold whatever the runspace printed.
//!
//! A full disk: an event refused for lack of space is cut off again (the file is set back to
//! its last whole event), so the recording stays well formed and a later event can be written
//! once there is space; the caller notes the gap ([`Recorder::broken`] stays false). Any other
//! write failure breaks the recorder for good.

use std::fs::File;
use std::io::{Seek as _, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::utf8::Utf8Decoder;
use super::v2::{encode_event_into, encode_header, EventKind, Header};
use super::AsciicastError;

/// Writes one recording. Output and input have their own UTF-8 decoders, so a multi-byte
/// character split across two reads is written whole.
#[derive(Debug)]
pub struct Recorder {
    file: File,
    path: PathBuf,
    started: Instant,
    output: Utf8Decoder,
    input: Utf8Decoder,
    last_us: u64,
    /// Length up to the last whole event written.
    good_len: u64,
    /// A write failed other than for lack of space: the file's state is unknown.
    broken: bool,
    /// The next line, reused so an event costs no allocation once it has grown.
    line: Vec<u8>,
    /// SHA-256 of everything written so far: the digest is ready at the end without reading
    /// the file back (which would cost memory the size of the recording).
    hash: Digest,
}

/// The running SHA-256 (`ring`'s context has no `Debug`).
struct Digest(ring::digest::Context);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(SHA-256)")
    }
}

impl Recorder {
    /// Create `path` (it must not exist) and write the header.
    pub fn create(path: &Path, header: &Header) -> Result<Self, AsciicastError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|source| io(path, source))?;
        let mut recorder = Recorder {
            file,
            path: path.to_owned(),
            started: Instant::now(),
            output: Utf8Decoder::new(),
            input: Utf8Decoder::new(),
            last_us: 0,
            good_len: 0,
            broken: false,
            line: Vec::new(),
            hash: Digest(ring::digest::Context::new(&ring::digest::SHA256)),
        };
        let head = encode_header(header);
        recorder.line.extend_from_slice(head.as_bytes());
        recorder.write_line()?;
        recorder.sync()?;
        Ok(recorder)
    }

    /// Microseconds since the recorder was created, for callers without their own clock.
    pub fn elapsed_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Bytes the runspace wrote to the terminal.
    pub fn output(&mut self, time_us: u64, bytes: &[u8]) -> Result<(), AsciicastError> {
        let text = self.output.decode(bytes);
        self.event(time_us, EventKind::Output, &text)
    }

    /// Bytes the user typed. Callers must not pass secret input (see the exsim `P` marker).
    pub fn input(&mut self, time_us: u64, bytes: &[u8]) -> Result<(), AsciicastError> {
        let text = self.input.decode(bytes);
        self.event(time_us, EventKind::Input, &text)
    }

    /// A marker (one per gate decision); synced to disk before returning.
    pub fn marker(&mut self, time_us: u64, label: &str) -> Result<(), AsciicastError> {
        let before = self.good_len;
        self.event(time_us, EventKind::Marker, label)?;
        self.sync().inspect_err(|e| self.cut_back(e, before))
    }

    /// Whether a write failed other than for lack of space (nothing more can be written).
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// The terminal was resized.
    pub fn resize(&mut self, time_us: u64, cols: u16, rows: u16) -> Result<(), AsciicastError> {
        self.event(time_us, EventKind::Resize, &format!("{cols}x{rows}"))
    }

    /// Flush unfinished characters and sync the file; returns the SHA-256 (hex) of all the
    /// bytes written, which is the file's as long as nothing else wrote to it.
    pub fn finish(mut self, time_us: u64) -> Result<String, AsciicastError> {
        let out = self.output.finish();
        self.event(time_us, EventKind::Output, &out)?;
        let inp = self.input.finish();
        self.event(time_us, EventKind::Input, &inp)?;
        self.sync()?;
        let digest = self.hash.0.clone().finish();
        Ok(digest
            .as_ref()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                use std::fmt::Write as _;
                let _ = write!(s, "{b:02x}");
                s
            }))
    }

    fn event(&mut self, time_us: u64, kind: EventKind, data: &str) -> Result<(), AsciicastError> {
        if data.is_empty() && kind != EventKind::Marker {
            return Ok(());
        }
        // Players expect non-decreasing times; a caller's clock hiccup must not reorder events.
        let time_us = time_us.max(self.last_us);
        self.last_us = time_us;
        self.line.clear();
        encode_event_into(&mut self.line, time_us, &kind, data);
        self.write_line()
    }

    /// Write `self.line` and a newline with one `write_all`, and hash what was written.
    fn write_line(&mut self) -> Result<(), AsciicastError> {
        if self.broken {
            return Err(io(
                &self.path,
                std::io::Error::other("an earlier write failed"),
            ));
        }
        self.line.push(b'\n');
        let before = self.good_len;
        let written =
            crate::audit::outage::injected().and_then(|()| self.file.write_all(&self.line));
        let len = self.line.len() as u64;
        if written.is_ok() {
            // Only what stays in the file is hashed: a refused line is cut off again below.
            self.hash.0.update(&self.line);
            self.good_len = before.saturating_add(len);
        }
        // A burst of large output must not keep its largest line's buffer for the session.
        if self.line.capacity() > 1 << 20 {
            self.line = Vec::new();
        } else {
            self.line.clear();
        }
        written.map_err(|source| {
            let e = io(&self.path, source);
            self.cut_back(&e, before);
            e
        })
    }

    /// After a failed write: lack of space cuts the file back to `len` (its last whole event
    /// before the failure); anything else, or a failed cut, breaks the recorder.
    fn cut_back(&mut self, e: &AsciicastError, len: u64) {
        let full = matches!(e, AsciicastError::Io { source, .. }
            if crate::audit::outage::is_out_of_space(source));
        // The next write goes where the cut ends (the file is not opened for appending).
        let cut = full
            && self.file.set_len(len).is_ok()
            && self.file.seek(std::io::SeekFrom::Start(len)).is_ok();
        if cut {
            self.good_len = len;
        } else {
            self.broken = true;
        }
    }

    fn sync(&mut self) -> Result<(), AsciicastError> {
        self.file
            .sync_data()
            .map_err(|source| io(&self.path, source))
    }
}

fn io(path: &Path, source: std::io::Error) -> AsciicastError {
    AsciicastError::Io {
        path: path.display().to_string(),
        source,
    }
}
