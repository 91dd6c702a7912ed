//! The session recording: asciicast v2 through [`crate::asciicast::Recorder`].
//!
//! Events are written in the proxy's own flow, as they happen: the recorder hands every event
//! to the OS at once and syncs markers, so a killed session still leaves a file that parses up
//! to the kill, and a slow disk slows the session down instead of queueing without bound.
//!
//! Fail closed: a write error is remembered and [`Recorder::healthy`] reports it; the proxy
//! asks before a privileged line runs, so no approval-needing line runs unrecorded.
//!
//! A full disk opens a gap instead of ending the recording: events are dropped (and counted)
//! while writes fail for lack of space, and the first write that works again is a marker
//! saying how many events from when to when were not recorded. Until then the recorder is not
//! healthy, so privileged lines are refused; after it, they run again.

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
    /// A write failed other than for lack of space: nothing more is recorded.
    failed: bool,
    /// Writes fail for lack of space.
    gap: Option<Gap>,
    start: Instant,
    path: PathBuf,
}

/// Events not recorded while the disk was full.
#[derive(Debug, Clone, Copy)]
struct Gap {
    from_us: u64,
    dropped: u64,
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
            timestamp: Some(chrono::Utc::now().timestamp()),
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
            gap: None,
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
        if self.resume(t) {
            let r = self.rec.output(t, bytes);
            self.note(r, t);
        } else {
            self.dropped();
        }
    }

    /// Admin input (never secret input: the caller leaves that out).
    pub fn input(&mut self, bytes: &[u8]) {
        let t = self.now_us();
        if self.resume(t) {
            let r = self.rec.input(t, bytes);
            self.note(r, t);
        } else {
            self.dropped();
        }
    }

    /// A marker, synced to disk before this returns. Returns its 1-based number in the
    /// recording, as `jitsh replay --at-marker N` counts (the number it would have had when it
    /// could not be written).
    pub fn marker(&mut self, label: String) -> usize {
        let t = self.now_us();
        if self.resume(t) {
            let r = self.rec.marker(t, &label);
            if r.is_ok() {
                self.markers += 1;
                return self.markers;
            }
            self.note(r, t);
        } else {
            self.dropped();
        }
        self.markers + 1
    }

    pub fn resize(&mut self, (cols, rows): (u16, u16)) {
        let t = self.now_us();
        if self.resume(t) {
            let r = self.rec.resize(t, cols, rows);
            self.note(r, t);
        } else {
            self.dropped();
        }
    }

    /// Whether everything so far was recorded, or a gap is closed by its marker: after a full
    /// disk this tries to write that marker, so the session resumes by itself.
    pub fn healthy(&mut self) -> bool {
        let t = self.now_us();
        self.resume(t) && !self.failed
    }

    /// Finish the file and return its SHA-256 (hex).
    pub fn finish(mut self) -> Result<String, ShellError> {
        let t = self.now_us();
        let closed = self.resume(t);
        let finished = self.rec.finish(t);
        match finished {
            Ok(digest) if !self.failed && closed => Ok(digest),
            _ => Err(ShellError::Record(format!(
                "`{}` could not be written completely",
                self.path.display()
            ))),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// An event not even tried because the gap is still open.
    fn dropped(&mut self) {
        if let Some(gap) = &mut self.gap {
            gap.dropped += 1;
        }
    }

    /// After a write: a failure for lack of space opens (or widens) a gap, any other ends
    /// the recording.
    fn note(&mut self, r: Result<(), crate::asciicast::AsciicastError>, t: u64) {
        let Err(e) = r else { return };
        if self.rec.broken() {
            self.failed = true;
            return;
        }
        match &mut self.gap {
            Some(gap) => gap.dropped += 1,
            None => {
                tracing::warn!(
                    "recording `{}` cannot be written ({e}); privileged lines are refused until \
                     space is freed on its filesystem",
                    self.path.display()
                );
                self.gap = Some(Gap {
                    from_us: t,
                    dropped: 1,
                });
            }
        }
    }

    /// Close an open gap with its marker. False while that cannot be written (the event at
    /// hand is then dropped: see [`Recorder::dropped`]) or the recording has failed for good.
    fn resume(&mut self, t: u64) -> bool {
        if self.failed {
            return false;
        }
        let Some(gap) = self.gap else {
            return true;
        };
        let label = format!(
            "recording gap: {} events from {:.3}s to {:.3}s were not recorded (the disk was full)",
            gap.dropped,
            gap.from_us as f64 / 1e6,
            t as f64 / 1e6
        );
        match self.rec.marker(t, &label) {
            Ok(()) => {
                self.markers += 1;
                self.gap = None;
                tracing::warn!(
                    "recording `{}` is written again; its gap is marked",
                    self.path.display()
                );
                true
            }
            Err(_) => {
                self.failed |= self.rec.broken();
                false
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
