//! The session recording: asciicast v2 through [`crate::asciicast::Recorder`], driven by a
//! thread of its own so a slow disk never stalls the terminal. The recorder writes every event
//! to the OS at once and syncs markers, so a killed session still leaves a file that parses up
//! to the kill.
//!
//! Fail closed: a write error is remembered, and [`Recorder::sync`] (awaited before a
//! privileged line runs) reports it, so no approval-needing line runs unrecorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

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

#[derive(Debug)]
enum Msg {
    Output(u64, Vec<u8>),
    Input(u64, Vec<u8>),
    Marker(u64, String),
    Resize(u64, u16, u16),
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
        let mut rec = asciicast::Recorder::create(&path, &header)
            .map_err(|e| ShellError::Record(e.to_string()))?;

        let failed = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let thread_failed = failed.clone();
        let thread = std::thread::Builder::new()
            .name("jitsh-record".into())
            .spawn(move || {
                let mut last_us = 0;
                while let Some(msg) = rx.blocking_recv() {
                    let written = match msg {
                        Msg::Output(t, b) => {
                            last_us = t;
                            rec.output(t, &b)
                        }
                        Msg::Input(t, b) => {
                            last_us = t;
                            rec.input(t, &b)
                        }
                        Msg::Marker(t, label) => {
                            last_us = t;
                            rec.marker(t, &label)
                        }
                        Msg::Resize(t, c, r) => {
                            last_us = t;
                            rec.resize(t, c, r)
                        }
                        Msg::Sync(ack) => {
                            // Every event before this one was written in order; markers are
                            // synced by the recorder itself.
                            let _ = ack.send(!thread_failed.load(Ordering::SeqCst));
                            Ok(())
                        }
                    };
                    if written.is_err() {
                        thread_failed.store(true, Ordering::SeqCst);
                    }
                }
                if rec.finish(last_us).is_err() {
                    thread_failed.store(true, Ordering::SeqCst);
                }
            })
            .map_err(|e| ShellError::Record(e.to_string()))?;
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
            failed,
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
        self.send(Msg::Output(t, bytes.to_vec()));
    }

    /// Admin input (never secret input: the caller leaves that out).
    pub fn input(&mut self, bytes: &[u8]) {
        let t = self.now_us();
        self.send(Msg::Input(t, bytes.to_vec()));
    }

    pub fn marker(&mut self, label: String) {
        let t = self.now_us();
        self.send(Msg::Marker(t, label));
    }

    pub fn resize(&mut self, (cols, rows): (u16, u16)) {
        let t = self.now_us();
        self.send(Msg::Resize(t, cols, rows));
    }

    /// Wait until everything so far is written; false if the recording cannot be written.
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
        Ok(hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref()))
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn send(&mut self, msg: Msg) {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if !sent {
            self.failed.store(true, Ordering::SeqCst);
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
