//! The admin's terminal: raw mode for the session, restored on every way out.
//!
//! [`RawMode`] restores the saved settings on `Drop`; a panic hook restores them too (a panic
//! in another thread does not unwind through the guard), and the proxy turns SIGTERM and SIGHUP
//! into an orderly end of the loop so the guard runs.

use std::io::IsTerminal;
use std::sync::{Mutex, Once};

use nix::sys::termios::{self, SetArg, Termios};

/// Settings to put back, shared with the panic hook.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Raw mode on stdin while alive.
#[derive(Debug)]
pub(crate) struct RawMode {
    _private: (),
}

impl RawMode {
    /// Switch stdin to raw mode. Returns `Ok(None)` when stdin is not a terminal (tests, pipes):
    /// then there is nothing to change or restore.
    pub fn enable() -> Result<Option<RawMode>, nix::Error> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let original = termios::tcgetattr(&stdin)?;
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        if let Ok(mut saved) = SAVED.lock() {
            *saved = Some(original);
        }
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        termios::tcsetattr(&stdin, SetArg::TCSADRAIN, &raw)?;
        Ok(Some(RawMode { _private: () }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Put the saved settings back (idempotent).
fn restore() {
    let saved = match SAVED.lock() {
        Ok(mut saved) => saved.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(original) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &original);
    }
}

/// The admin's window size (columns, rows), or 80x24 when stdout is not a terminal.
pub(crate) fn window_size() -> (u16, u16) {
    match terminal_size::terminal_size_of(std::io::stdout()) {
        Some((terminal_size::Width(c), terminal_size::Height(r))) if c > 0 && r > 0 => (c, r),
        _ => (80, 24),
    }
}
