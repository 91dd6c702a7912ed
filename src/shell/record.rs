//! The session recording: asciicast v2 through [`crate::asciicast::Recorder`].
//!
//! Events are written in the proxy's own flow, as they happen: the recorder hands every event
//! to the OS at once and syncs markers, so a killed session still leaves a file that parses up
//! to the kill, and a slow disk slows the session down instead of queueing without bound.
//!
//! Fail closed: a write error is remembered and [`Recorder::healthy`] reports it; the proxy
//! asks before a privileged line runs, so no approval-needing line runs unrecorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::ShellError;
use crate::asciicast::{self, Header, JitshInfo};

/// What the header says about the session besides the terminal size.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: String,
    pub user: String,
    pub runspace: String,
    pub cols: u16,
    pub rows: u16,
}

/// One session's recording.
#[derive(Debug)]
pub struct Recorder {
    /// Markers written so far.
    markers: usize,
    rec: asciicast::Recorder,
    failed: bool,
    start: Instant,
    path: PathBuf,
}

impl Recorder {
    /// Create `dir/<session-id>.cast` (never overwriting) and write the header.
    pub fn create(dir: &Path, info: &SessionInfo) -> Result<Recorder, ShellError> {
        let path = dir.join(format!("{}.cast", info.session_id));
        std::fs::create_dir_all(dir)
            .map_err(|e| ShellError::Record(format!("`{}`: {e}", dir.display())))?;
        let mut env = BTreeMap::new();
        if let Ok(term) = std::env::var("TERM") {
            env.insert("TERM".to_string(), term);
        }
        let header = Header {
            width: info.cols,
            height: info.rows,
            timestamp: Some(time::OffsetDateTime::now_utc().unix_timestamp()),
            idle_time_limit: None,
            command: Some(info.runspace.clone()),
            title: Some(format!("jitsh session {} ({})", info.session_id, info.user)),
            env,
            jitsh: Some(JitshInfo {
                user: Some(info.user.clone()),
                session: Some(info.session_id.clone()),
                runspace: Some(info.runspace.clone()),
            }),
        };
        let rec = asciicast::Recorder::create(&path, &header)
            .map_err(|e| ShellError::Record(e.to_string()))?;
        Ok(Recorder {
            rec,
            markers: 0,
            failed: false,
            start: Instant::now(),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runspace output as shown to the admin.
    pub fn output(&mut self, bytes: &[u8]) {
        let t = self.now_us();
        let r = self.rec.output(t, bytes);
        self.note(r.is_ok());
    }

    /// Admin input (never secret input: the caller leaves that out).
    pub fn input(&mut self, bytes: &[u8]) {
        let t = self.now_us();
        let r = self.rec.input(t, bytes);
        self.note(r.is_ok());
    }

    /// A marker, synced to disk before this returns. Returns its 1-based number in the
    /// recording, as `jitsh replay --at-marker N` counts.
    pub fn marker(&mut self, label: String) -> usize {
        self.markers += 1;
        let t = self.now_us();
        let r = self.rec.marker(t, &label);
        self.note(r.is_ok());
        self.markers
    }

    pub fn resize(&mut self, (cols, rows): (u16, u16)) {
        let t = self.now_us();
        let r = self.rec.resize(t, cols, rows);
        self.note(r.is_ok());
    }

    /// Whether every event so far was written.
    pub fn healthy(&self) -> bool {
        !self.failed
    }

    /// Finish the file and return its SHA-256 (hex).
    pub fn finish(self) -> Result<String, ShellError> {
        let t = self.now_us();
        let finished = self.rec.finish(t);
        match finished {
            Ok(digest) if !self.failed => Ok(digest),
            _ => Err(ShellError::Record(format!(
                "`{}` could not be written completely",
                self.path.display()
            ))),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn note(&mut self, ok: bool) {
        if !ok {
            self.failed = true;
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
