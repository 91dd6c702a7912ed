//! The runspace in a pseudo-terminal, bridged to tokio.
//!
//! portable-pty does blocking I/O, so the reader, the writer and the waiter each run on a
//! thread of their own and talk to the proxy through channels. The slave end is dropped right
//! after the spawn (otherwise the reader never sees end-of-file), the writer is taken once, and
//! the master is dropped last, after the child has been reaped.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;

use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};
use tokio::sync::{mpsc, oneshot};

use super::ShellError;

/// Environment variables never passed to the runspace.
pub(crate) const SECRET_ENV: &[&str] = &["JITSH_CREDENTIAL"];

/// Read size for the runspace's output.
const READ_CHUNK: usize = 64 * 1024;

/// A running runspace.
pub struct Runspace {
    /// Output chunks, in order; closed at end-of-file.
    pub output: mpsc::Receiver<Vec<u8>>,
    /// The exit status, once: `128 + signal` when a signal killed it.
    pub exited: oneshot::Receiver<i32>,
    input: mpsc::UnboundedSender<Vec<u8>>,
    pid: Option<u32>,
    slave_path: Option<PathBuf>,
    // Dropped last: closing the master hangs up the runspace.
    master: Box<dyn MasterPty + Send>,
}

impl std::fmt::Debug for Runspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runspace")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Runspace {
    /// Start `argv` in a new PTY of `size` (columns, rows), with `env` added to its environment.
    pub fn spawn(
        argv: &[OsString],
        size: (u16, u16),
        env: &[(String, String)],
    ) -> Result<Runspace, ShellError> {
        let Some(program) = argv.first() else {
            return Err(ShellError::Spawn("no runspace command was given".into()));
        };
        let spawn_err = |e: &dyn std::fmt::Display| {
            ShellError::Spawn(format!("`{}`: {e}", program.to_string_lossy()))
        };
        let pair = native_pty_system()
            .openpty(pty_size(size))
            .map_err(|e| spawn_err(&e))?;
        let mut cmd = CommandBuilder::from_argv(argv.to_vec());
        if let Ok(dir) = std::env::current_dir() {
            cmd.cwd(dir);
        }
        // The admin's service credential is not the runspace's business: commands run there
        // must not be able to read it.
        for secret in SECRET_ENV {
            cmd.env_remove(secret);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = pair.slave.spawn_command(cmd).map_err(|e| spawn_err(&e))?;
        // The slave must go now: while we hold it, the reader never sees end-of-file.
        drop(pair.slave);
        let master = pair.master;
        let pid = child.process_id();
        let slave_path = master.tty_name();

        let mut reader = master.try_clone_reader().map_err(|e| spawn_err(&e))?;
        let mut writer = master.take_writer().map_err(|e| spawn_err(&e))?;

        let (out_tx, output) = mpsc::channel::<Vec<u8>>(64);
        std::thread::Builder::new()
            .name("jitsh-pty-read".into())
            .spawn(move || {
                let mut buf = vec![0u8; READ_CHUNK];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let chunk = buf.get(..n).unwrap_or_default().to_vec();
                            if out_tx.blocking_send(chunk).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        // EIO is how Linux reports a hung-up PTY: end of output.
                        Err(_) => break,
                    }
                }
            })
            .map_err(|e| spawn_err(&e))?;

        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("jitsh-pty-write".into())
            .spawn(move || {
                while let Some(bytes) = in_rx.blocking_recv() {
                    if writer
                        .write_all(&bytes)
                        .and_then(|()| writer.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .map_err(|e| spawn_err(&e))?;

        let (exit_tx, exited) = oneshot::channel();
        std::thread::Builder::new()
            .name("jitsh-pty-wait".into())
            .spawn(move || {
                let code = match pid.and_then(|p| i32::try_from(p).ok()) {
                    // Reap with waitpid ourselves: it tells a signal death apart (128+signal).
                    Some(pid) => wait_for(nix::unistd::Pid::from_raw(pid)),
                    None => match child.wait() {
                        Ok(status) => i32::try_from(status.exit_code()).unwrap_or(1),
                        Err(_) => 1,
                    },
                };
                let _ = exit_tx.send(code);
            })
            .map_err(|e| spawn_err(&e))?;

        Ok(Runspace {
            output,
            exited,
            input: in_tx,
            pid,
            slave_path,
            master,
        })
    }

    /// Queue bytes for the runspace's input. Fails when the writer has stopped (runspace gone).
    pub fn send(&self, bytes: Vec<u8>) -> Result<(), ShellError> {
        self.input
            .send(bytes)
            .map_err(|_| ShellError::Io("the runspace no longer accepts input".into()))
    }

    /// Tell the runspace its window changed size.
    pub fn resize(&self, size: (u16, u16)) {
        let _ = self.master.resize(pty_size(size));
    }

    /// Throw away input the runspace has not read yet (keystrokes typed ahead while a command
    /// ran), so they cannot become an ungated command line at the next prompt.
    pub fn discard_unread_input(&self) {
        if let Some(path) = &self.slave_path {
            if let Ok(tty) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                let _ = nix::sys::termios::tcflush(&tty, nix::sys::termios::FlushArg::TCIFLUSH);
            }
        }
    }

    /// Ask the runspace to end (SIGHUP, as a terminal closing would).
    pub fn hang_up(&self) {
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGHUP,
            );
        }
    }

    /// The runspace's process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// Wait for `pid` to end: its exit code, or 128 + the signal that killed it.
fn wait_for(pid: nix::unistd::Pid) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 1,
        }
    }
}

fn pty_size((cols, rows): (u16, u16)) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}
