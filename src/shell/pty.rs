//! The runspace in a pseudo-terminal, bridged to tokio.
//!
//! Input is written from the session's own task without blocking: a keystroke goes from the
//! terminal to the runspace without a hop through another thread. Input the PTY does not take
//! at once is kept, in order, and written when it becomes writable (a runspace that does not
//! read can never block the session, which must go on reading its output). Output is read on a
//! thread of its own, so reading the next chunk overlaps with recording and showing the last
//! (on two cores, a single loop was measured slower under heavy output); the waiter, which
//! blocks in `waitpid`, has a thread too. The slave end is dropped right after the spawn
//! (otherwise reads never see the hang-up), and the master is dropped last, after the child
//! has been reaped.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;

use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};
use tokio::net::unix::pipe;
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
    /// The master end's input.
    pub io: PtyIo,
    /// The exit status, once: `128 + signal` when a signal killed it.
    pub exited: oneshot::Receiver<i32>,
    pid: Option<u32>,
    slave_path: Option<PathBuf>,
    // Dropped last: closing the master hangs up the runspace.
    master: Box<dyn MasterPty + Send>,
}

/// Non-blocking writes to the PTY master, through a descriptor of its own (a copy of the
/// master's, on the same open file).
pub struct PtyIo {
    tx: pipe::Sender,
    /// Input the PTY has not taken yet, written before anything sent later.
    pending: Vec<u8>,
}

/// The master's descriptor number, to copy it.
struct MasterFd(RawFd);

impl AsRawFd for MasterFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl std::fmt::Debug for Runspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runspace")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PtyIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyIo").finish_non_exhaustive()
    }
}

impl PtyIo {
    /// Non-blocking input to `master`, and a copy of its descriptor for the output reader
    /// (the flag is on the open file, which the copies share: portable-pty does no I/O on it
    /// after this, and the reader waits in `poll`).
    fn new(master: &dyn MasterPty) -> std::io::Result<(PtyIo, filedescriptor::FileDescriptor)> {
        let raw = master
            .as_raw_fd()
            .ok_or_else(|| std::io::Error::other("the PTY has no file descriptor"))?;
        let copy =
            filedescriptor::FileDescriptor::dup(&MasterFd(raw)).map_err(std::io::Error::other)?;
        let flags = nix::fcntl::fcntl(copy.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(copy.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // A PTY master is not a pipe, but writes to it work as on one: tokio's pipe type
        // registers any non-blocking descriptor with the event loop.
        let tx = pipe::Sender::from_owned_fd_unchecked(copy.as_fd().try_clone_to_owned()?)?;
        Ok((
            PtyIo {
                tx,
                pending: Vec::new(),
            },
            copy,
        ))
    }

    /// Writes `bytes` to the runspace's input as far as the PTY takes them now; the rest is kept,
    /// in order, for [`PtyIo::flush`]. Fails when the runspace is gone.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ShellError> {
        self.pending.extend_from_slice(bytes);
        self.write_pending()
    }

    /// Whether input is waiting for the PTY to take it.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Waits until the PTY takes more of the waiting input, and writes it.
    pub async fn flush(&mut self) -> Result<(), ShellError> {
        self.tx.writable().await.map_err(|_| gone())?;
        self.write_pending()
    }

    /// Writes what is waiting, as far as the PTY takes it without blocking.
    fn write_pending(&mut self) -> Result<(), ShellError> {
        while !self.pending.is_empty() {
            match self.tx.try_write(&self.pending) {
                Ok(0) => return Err(gone()),
                Ok(n) => {
                    self.pending.drain(..n.min(self.pending.len()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return Err(gone()),
            }
        }
        Ok(())
    }
}

fn gone() -> ShellError {
    ShellError::Io("the runspace no longer accepts input".into())
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
        // The slave must go now: while we hold it, reads never see the hang-up.
        drop(pair.slave);
        let master = pair.master;
        let pid = child.process_id();
        let slave_path = master.tty_name();
        let (io, mut reader) = PtyIo::new(master.as_ref()).map_err(|e| spawn_err(&e))?;

        // Chunks are up to READ_CHUNK: a few in flight keep the reader ahead of the session
        // without holding megabytes of output in memory.
        let (out_tx, output) = mpsc::channel::<Vec<u8>>(4);
        std::thread::Builder::new()
            .name("jitsh-pty-read".into())
            .spawn(move || {
                let mut buf = vec![0u8; READ_CHUNK];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            // Take what else is already there (the descriptor does not block)
                            // before waking the session: under heavy output, fewer and larger
                            // hand-overs; a keystroke's echo costs one more read.
                            let mut len = n;
                            while let Some(free) = buf.get_mut(len..).filter(|f| !f.is_empty()) {
                                match reader.read(free) {
                                    Ok(more) if more > 0 => len += more,
                                    _ => break,
                                }
                            }
                            let chunk = buf.get(..len).unwrap_or_default().to_vec();
                            if out_tx.blocking_send(chunk).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        // The descriptor is non-blocking (for the input side): wait here.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            let mut fds = [nix::poll::PollFd::new(
                                reader.as_fd(),
                                nix::poll::PollFlags::POLLIN,
                            )];
                            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                                Err(_) => break,
                            }
                        }
                        // EIO is how Linux reports a hung-up PTY: end of output.
                        Err(_) => break,
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
            io,
            exited,
            pid,
            slave_path,
            master,
        })
    }

    /// Write bytes to the runspace's input (see [`PtyIo::send`]).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ShellError> {
        self.io.send(bytes)
    }

    /// Tell the runspace its window changed size.
    pub fn resize(&self, size: (u16, u16)) {
        let _ = self.master.resize(pty_size(size));
    }

    /// Throw away input the runspace has not read yet (keystrokes typed ahead while a command
    /// ran), so they cannot become an ungated command line at the next prompt.
    pub fn discard_unread_input(&mut self) {
        self.io.pending.clear();
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
