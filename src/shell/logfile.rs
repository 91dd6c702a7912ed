//! Where diagnostics go. Normally stderr; while an interactive session owns the terminal they
//! go to a log file instead, since a line written to stderr would land in the middle of the
//! prompt or of the line being edited. The session then shows at most one short notice between
//! prompts (`:status` names the file).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The open log file and its path, while a session is interactive.
static FILE: Mutex<Option<(File, PathBuf)>> = Mutex::new(None);
/// Warnings written to the file since the last notice.
static UNSEEN: AtomicUsize = AtomicUsize::new(0);

fn file() -> MutexGuard<'static, Option<(File, PathBuf)>> {
    FILE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `tracing` writer: the log file while one is set, else stderr.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut guard = file();
        match guard.as_mut() {
            Some((f, _)) => {
                // Colour codes are for terminals; the file gets the plain text. A line the file
                // cannot take (a full disk) is dropped: reported, it would land in the prompt.
                let _ = f.write_all(&strip_ansi(buf));
                Ok(buf.len())
            }
            None => {
                drop(guard);
                std::io::stderr().write(buf)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match file().as_mut() {
            Some((f, _)) => f.flush(),
            None => std::io::stderr().flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LogWriter {
        if *meta.level() <= tracing::Level::WARN && file().is_some() {
            UNSEEN.fetch_add(1, Ordering::Relaxed);
        }
        LogWriter
    }
}

/// Send diagnostics to `path` (appended, owner-only) until the returned guard is dropped.
pub(crate) fn redirect_to(path: &Path) -> std::io::Result<Redirect> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?
    };
    *file() = Some((f, path.to_path_buf()));
    UNSEEN.store(0, Ordering::Relaxed);
    Ok(Redirect { _private: () })
}

/// Diagnostics go back to stderr when this is dropped.
#[derive(Debug)]
pub(crate) struct Redirect {
    _private: (),
}

impl Drop for Redirect {
    fn drop(&mut self) {
        *file() = None;
    }
}

/// The log file diagnostics go to now, if any.
pub fn current() -> Option<PathBuf> {
    file().as_ref().map(|(_, p)| p.clone())
}

/// One short line about warnings logged since the last call, if there were any.
pub(crate) fn take_notice() -> Option<String> {
    let n = UNSEEN.swap(0, Ordering::Relaxed);
    let path = current()?;
    (n > 0).then(|| {
        let what = if n == 1 {
            "1 warning".to_owned()
        } else {
            format!("{n} warnings")
        };
        format!("jitsh: {what} in {} (:status)", path.display())
    })
}

/// `text` without ANSI CSI sequences (`ESC [ ... final`).
fn strip_ansi(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b == 0x1b && text.get(i + 1) == Some(&b'[') {
            i += 2;
            while let Some(&c) = text.get(i) {
                i += 1;
                if (0x40..=0x7e).contains(&c) {
                    break;
                }
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_stay_out_of_the_file() {
        assert_eq!(
            strip_ansi(b"\x1b[33m WARN\x1b[0m jitsh: x\n"),
            b" WARN jitsh: x\n"
        );
        assert_eq!(strip_ansi(b"\x1b["), b"");
    }

    #[test]
    fn warnings_go_to_the_file_while_redirected_and_are_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jitsh.log");
        let guard = redirect_to(&path).unwrap();
        let meta_writer = LogWriter;
        for _ in 0..2 {
            UNSEEN.fetch_add(1, Ordering::Relaxed);
            let mut w = meta_writer;
            w.write_all(b"\x1b[33mWARN\x1b[0m spool unreachable\n")
                .unwrap();
        }
        assert_eq!(current().as_deref(), Some(path.as_path()));
        let notice = take_notice().unwrap();
        assert!(
            notice.contains("2 warnings") && notice.contains(":status"),
            "{notice}"
        );
        assert_eq!(take_notice(), None, "one notice per batch of warnings");
        drop(guard);
        assert_eq!(current(), None);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "WARN spool unreachable\nWARN spool unreachable\n"
        );
    }
}
