//! The runspace in a pseudo-terminal, bridged to tokio.
//!
//! Input is written from the session's own task without blocking: a keystroke goes from the
//! terminal to the runspace without a hop through another thread. Input the PTY does not take
//! at once is kept, in order, and written when it becomes writable (a runspace that does not
//! read can never block the session, which must go on reading its output).
//!
//! Output is read on the session's loop too, so a keystroke's echo reaches the terminal
//! without waking another thread ([`Output::read_now`] when the loop waits in `poll(2)` itself
//! while a command runs; the runspace's [`Wake`] socket is readable once it has exited). A
//! burst of output (64 KiB within a few milliseconds) is handed to a reader thread instead, so
//! reading the next chunk overlaps with recording and showing the last (on two cores a single
//! loop was measured at about 0.66x `script`'s throughput under heavy output); once output
//! pauses, the thread hands reading back. Exactly one of the two reads at any time, so output
//! stays in order. The waiter, which blocks in `waitpid`, has a thread too. The slave end is
//! dropped right after the spawn (otherwise reads never see the hang-up), and the master is
//! dropped last, after the child has been reaped.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};
use tokio::io::AsyncReadExt as _;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use super::ShellError;

/// Environment variables never passed to the runspace.
pub(crate) const SECRET_ENV: &[&str] = &["JITSH_CREDENTIAL"];

/// Read size for the runspace's output.
const READ_CHUNK: usize = 64 * 1024;

/// A running runspace.
pub struct Runspace {
    /// The runspace's output.
    pub output: Output,
    /// The master end's input.
    pub io: PtyIo,
    /// The exit status, once: `128 + signal` when a signal killed it.
    pub exited: oneshot::Receiver<i32>,
    /// Readable once the runspace has exited (the waiter writes a byte after the status), so
    /// a loop waiting in `poll(2)` outside the runtime wakes for it too.
    pub wake: Wake,
    pid: Option<u32>,
    slave_path: Option<PathBuf>,
    // Dropped last: closing the master hangs up the runspace.
    master: Box<dyn MasterPty + Send>,
}

/// Non-blocking writes to the PTY master, through a descriptor of its own (a copy of the
/// master's, on the same open file).
pub struct PtyIo {
    /// Written directly. Registered with the event loop for good, the master's write side woke
    /// the loop once more after every keystroke it took (one more loop turn per key).
    file: std::fs::File,
    /// The registration, held only while input waits for the PTY to take it.
    waiter: Option<pipe::Sender>,
    /// Input the PTY has not taken yet, written before anything sent later.
    pending: Vec<u8>,
}

/// The runspace's output, read on the session's own loop: a keystroke's echo reaches the
/// terminal without waking another thread.
pub struct Output {
    /// The master registered with the event loop, while the loop reads it.
    rx: Option<pipe::Receiver>,
    /// The master taken off the event loop while the bulk reader reads it (otherwise every
    /// write of a burst would wake the loop for nothing).
    parked: Option<OwnedFd>,
    buf: Vec<u8>,
    ended: bool,
    /// A burst of output is being read by the bulk reader thread, not by the loop.
    bulk: bool,
    /// Starts the bulk reader (it reads until output pauses, then hands back).
    go: std::sync::mpsc::Sender<()>,
    chunks: mpsc::Receiver<Bulk>,
    /// Buffers the bulk reader filled, handed back once shown and recorded: it fills them
    /// again instead of allocating one per chunk that another thread frees.
    spares: std::sync::mpsc::Sender<Vec<u8>>,
    /// The last batch came from the bulk reader (its buffers go back there).
    from_bulk: bool,
    /// A chunk taken from the bulk reader that did not fit the last batch: the next one.
    held: Option<Vec<u8>>,
    /// Buffers the bulk reader has allocated in all.
    reader_buffers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes read directly in the current burst, and when the last of them came.
    burst: usize,
    /// Bursts handed to the bulk reader so far.
    bursts: usize,
    last: std::time::Instant,
}

/// The read end of a socket pair that other parts of the process write a byte to when the
/// session's loop must look at something the runtime delivers (the runspace's exit, a signal).
#[derive(Debug)]
pub struct Wake {
    rx: std::os::unix::net::UnixStream,
    tx: std::os::unix::net::UnixStream,
}

impl Wake {
    fn new() -> std::io::Result<Wake> {
        let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Wake { rx, tx })
    }

    /// Another write end (a signal handler owns one per signal).
    pub fn writer(&self) -> std::io::Result<std::os::unix::net::UnixStream> {
        self.tx.try_clone()
    }

    /// The read end, to wait on.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// Reads every byte waiting; whether there was any.
    pub fn drain(&self) -> bool {
        use std::io::Read as _;
        let mut buf = [0u8; 64];
        let mut any = false;
        loop {
            match (&self.rx).read(&mut buf) {
                Ok(n) if n > 0 => any = true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => return any,
            }
        }
    }
}

/// What [`Output::read_now`] found.
#[derive(Debug)]
pub enum ReadNow {
    /// Output, maybe with the end of output right after it.
    Data(Vec<u8>),
    /// Nothing is waiting.
    Nothing,
    /// The end of output (the runspace hung up).
    Ended,
}

/// What the bulk reader hands over.
enum Bulk {
    Data(Vec<u8>),
    /// Output paused: the loop reads again.
    Idle,
    End,
}

/// Output read directly within this long of the previous read counts as one burst.
const BURST_GAP: std::time::Duration = std::time::Duration::from_millis(5);

/// A burst this large goes to the bulk reader.
const BULK_AT: usize = 64 * 1024;

/// The bulk reader hands back after output paused this long.
const BULK_IDLE_MS: u16 = 50;

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("bulk", &self.bulk)
            .field("ended", &self.ended)
            .field(
                "reader_buffers",
                &self
                    .reader_buffers
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Everything the runspace has written that is waiting now, up to about `max` bytes, once
    /// there is some; `None` at the end of output. Cancel-safe: bytes are read only when they
    /// are returned.
    pub async fn recv(&mut self, max: usize) -> Option<Vec<u8>> {
        loop {
            if self.ended {
                return None;
            }
            self.from_bulk = self.bulk;
            if self.bulk {
                let next = match self.held.take() {
                    Some(bytes) => Some(Bulk::Data(bytes)),
                    None => self.chunks.recv().await,
                };
                match next {
                    Some(Bulk::Data(mut bytes)) => {
                        while bytes.len() < max {
                            match self.chunks.try_recv() {
                                // Merged only into room the batch already has: a buffer
                                // never grows, so those in circulation stay READ_CHUNK.
                                Ok(Bulk::Data(more))
                                    if more.len() > bytes.capacity() - bytes.len() =>
                                {
                                    self.held = Some(more);
                                    break;
                                }
                                Ok(Bulk::Data(more)) => {
                                    bytes.extend_from_slice(&more);
                                    let _ = self.spares.send(more);
                                }
                                Ok(Bulk::Idle) => {
                                    self.end_bulk();
                                    break;
                                }
                                Ok(Bulk::End) => {
                                    self.ended = true;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        return Some(bytes);
                    }
                    Some(Bulk::Idle) => {
                        self.end_bulk();
                        continue;
                    }
                    Some(Bulk::End) | None => {
                        self.ended = true;
                        return None;
                    }
                }
            }
            let Some((bytes, ended)) = self.read_direct(max).await else {
                continue;
            };
            self.ended = ended;
            if bytes.is_empty() {
                return None;
            }
            self.count_burst(bytes.len());
            return Some(bytes);
        }
    }

    /// Bytes read directly: a burst large enough goes to the bulk reader from here on.
    fn count_burst(&mut self, len: usize) {
        let now = std::time::Instant::now();
        if now.duration_since(self.last) > BURST_GAP {
            self.burst = 0;
        }
        self.last = now;
        self.burst += len;
        if !self.ended && self.burst >= BULK_AT {
            self.start_bulk();
        }
    }

    /// The master's descriptor while output is read directly (not by the bulk reader, and
    /// not ended): for a loop that waits in `poll(2)` and then calls [`Output::read_now`].
    pub fn direct_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        if self.bulk || self.ended || self.held.is_some() {
            return None;
        }
        self.rx.as_ref().map(AsFd::as_fd)
    }

    /// What is waiting now, up to about `max` bytes, read without the runtime (a plain
    /// non-blocking read). The runtime's own readiness for the master may then be stale; it
    /// only ever errs towards one read that finds nothing, since the kernel reports every new
    /// arrival to its edge-triggered wait.
    pub fn read_now(&mut self, max: usize) -> ReadNow {
        // While the bulk reader reads, the master is parked off the loop: nothing to read here.
        if self.bulk {
            return ReadNow::Nothing;
        }
        let fd = match &self.rx {
            Some(rx) if !self.ended => rx.as_raw_fd(),
            _ => return ReadNow::Ended,
        };
        let mut out = Vec::new();
        loop {
            match nix::unistd::read(fd, &mut self.buf) {
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(n) => {
                    out.extend_from_slice(self.buf.get(..n).unwrap_or_default());
                    if out.len() >= max || n < self.buf.len() {
                        break;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                // EIO is how Linux reports a hung-up PTY: end of output.
                Err(_) => {
                    self.ended = true;
                    break;
                }
            }
        }
        if out.is_empty() {
            return if self.ended {
                ReadNow::Ended
            } else {
                ReadNow::Nothing
            };
        }
        self.count_burst(out.len());
        ReadNow::Data(out)
    }

    /// Takes back the last batch [`Output::recv`] returned, once it has been used: a batch the
    /// bulk reader filled goes back to it to be filled again. Only those: the buffers in
    /// circulation are the few the reader had to allocate, however long the session.
    pub fn recycle(&mut self, batch: Vec<u8>) {
        if self.from_bulk {
            let _ = self.spares.send(batch);
        }
    }

    /// Hands reading to the bulk reader, taking the master off the event loop meanwhile.
    fn start_bulk(&mut self) {
        let Some(rx) = self.rx.take() else {
            return;
        };
        match rx.into_nonblocking_fd() {
            Ok(fd) if self.go.send(()).is_ok() => {
                self.parked = Some(fd);
                self.bulk = true;
                self.burst = 0;
                self.bursts += 1;
            }
            // The bulk reader is gone: keep reading here.
            Ok(fd) => self.rx = pipe::Receiver::from_owned_fd_unchecked(fd).ok(),
            Err(_) => self.ended = true,
        }
    }

    /// Takes reading back from the bulk reader once it found output paused.
    fn end_bulk(&mut self) {
        self.bulk = false;
        match self
            .parked
            .take()
            .map(pipe::Receiver::from_owned_fd_unchecked)
        {
            Some(Ok(rx)) => self.rx = Some(rx),
            // Without the event loop the master cannot be read here: leave it to the reader.
            _ => {
                if self.go.send(()).is_ok() {
                    self.bulk = true;
                } else {
                    self.ended = true;
                }
            }
        }
    }

    /// What is waiting, read on the loop, and whether output ended; `None` when the
    /// readiness was stale.
    async fn read_direct(&mut self, max: usize) -> Option<(Vec<u8>, bool)> {
        let Some(rx) = &mut self.rx else {
            return Some((Vec::new(), true));
        };
        // The first read waits for output. When it is short it took all there was, and tokio's
        // `read` then clears the readiness itself: the read that would find nothing is not made
        // before the loop sleeps (a system call saved on every echo).
        let mut out = match rx.read(&mut self.buf).await {
            Ok(0) => return Some((Vec::new(), true)),
            Ok(n) => self.buf.get(..n).unwrap_or_default().to_vec(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return None,
            // EIO is how Linux reports a hung-up PTY: end of output.
            Err(_) => return Some((Vec::new(), true)),
        };
        if out.len() < self.buf.len() || out.len() >= max {
            return Some((out, false));
        }
        loop {
            match rx.try_read(&mut self.buf) {
                Ok(0) => return Some((out, true)),
                Ok(n) => {
                    out.extend_from_slice(self.buf.get(..n).unwrap_or_default());
                    // A short read took all there was: hand it over now, and let the read
                    // that finds nothing more come after it is shown.
                    if out.len() >= max || n < self.buf.len() {
                        return Some((out, false));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return (!out.is_empty()).then_some((out, false));
                }
                // EIO is how Linux reports a hung-up PTY: end of output.
                Err(_) => return Some((out, true)),
            }
        }
    }
}

/// The bulk reader: waits for the loop to hand it a burst, reads until output pauses for
/// [`BULK_IDLE_MS`] (then hands back) or ends. Exactly one of the two reads at any time, so
/// output stays in order.
fn bulk_reader(
    mut reader: std::fs::File,
    go: std::sync::mpsc::Receiver<()>,
    tx: mpsc::Sender<Bulk>,
    spares: std::sync::mpsc::Receiver<Vec<u8>>,
    allocated: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::Read as _;
    let mut buf = vec![0u8; READ_CHUNK];
    while go.recv().is_ok() {
        loop {
            match reader.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Bulk::End);
                    return;
                }
                Ok(n) => {
                    // Take what else is already there before handing over: fewer, larger
                    // chunks under heavy output.
                    let mut len = n;
                    while let Some(free) = buf.get_mut(len..).filter(|f| !f.is_empty()) {
                        match reader.read(free) {
                            Ok(more) if more > 0 => len += more,
                            _ => break,
                        }
                    }
                    // A buffer handed back, else a new one: a few circulate for the session.
                    let mut chunk = spares.try_recv().unwrap_or_else(|_| {
                        allocated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Vec::with_capacity(READ_CHUNK)
                    });
                    chunk.clear();
                    chunk.extend_from_slice(buf.get(..len).unwrap_or_default());
                    if tx.blocking_send(Bulk::Data(chunk)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut fds = [nix::poll::PollFd::new(
                        reader.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(BULK_IDLE_MS)) {
                        Ok(0) => {
                            if tx.blocking_send(Bulk::Idle).is_err() {
                                return;
                            }
                            break;
                        }
                        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                        Err(_) => {
                            let _ = tx.blocking_send(Bulk::End);
                            return;
                        }
                    }
                }
                // EIO is how Linux reports a hung-up PTY: end of output.
                Err(_) => {
                    let _ = tx.blocking_send(Bulk::End);
                    return;
                }
            }
        }
    }
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
        let file = std::fs::File::from(copy.as_fd().try_clone_to_owned()?);
        Ok((
            PtyIo {
                file,
                waiter: None,
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
        if let Some(waiter) = &self.waiter {
            waiter.writable().await.map_err(|_| gone())?;
        }
        self.write_pending()
    }

    /// Writes what is waiting, as far as the PTY takes it without blocking; registers the
    /// write side with the event loop when the PTY is full, and drops it once nothing waits.
    fn write_pending(&mut self) -> Result<(), ShellError> {
        use std::io::Write as _;
        while !self.pending.is_empty() {
            // Through the registration while there is one, so its readiness is cleared when
            // the PTY is full again.
            let wrote = match &self.waiter {
                Some(waiter) => waiter.try_write(&self.pending),
                None => (&self.file).write(&self.pending),
            };
            match wrote {
                Ok(0) => return Err(gone()),
                Ok(n) => {
                    self.pending.drain(..n.min(self.pending.len()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.waiter.is_none() {
                        // A PTY master is not a pipe, but writes to it work as on one: tokio's
                        // pipe type registers any non-blocking descriptor with the event loop.
                        let fd = self.file.as_fd().try_clone_to_owned().map_err(|_| gone())?;
                        self.waiter =
                            Some(pipe::Sender::from_owned_fd_unchecked(fd).map_err(|_| gone())?);
                    }
                    return Ok(());
                }
                Err(_) => return Err(gone()),
            }
        }
        self.waiter = None;
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
        let (io, reader) = PtyIo::new(master.as_ref()).map_err(|e| spawn_err(&e))?;

        let owned = |r: &filedescriptor::FileDescriptor| r.as_fd().try_clone_to_owned();
        let bulk = std::fs::File::from(owned(&reader).map_err(|e| spawn_err(&e))?);
        let direct = owned(&reader).map_err(|e| spawn_err(&e))?;
        drop(reader);
        let (go, go_rx) = std::sync::mpsc::channel();
        // Chunks are up to READ_CHUNK: a few in flight keep the bulk reader ahead of the
        // session without holding megabytes of output in memory.
        let (chunk_tx, chunks) = mpsc::channel(4);
        let (spares, spares_rx) = std::sync::mpsc::channel();
        let reader_buffers = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let allocated = reader_buffers.clone();
        std::thread::Builder::new()
            .name("jitsh-pty-read".into())
            .spawn(move || bulk_reader(bulk, go_rx, chunk_tx, spares_rx, allocated))
            .map_err(|e| spawn_err(&e))?;
        let output = Output {
            rx: Some(pipe::Receiver::from_owned_fd_unchecked(direct).map_err(|e| spawn_err(&e))?),
            parked: None,
            buf: vec![0u8; READ_CHUNK],
            ended: false,
            bulk: false,
            go,
            chunks,
            spares,
            from_bulk: false,
            held: None,
            reader_buffers,
            burst: 0,
            bursts: 0,
            last: std::time::Instant::now(),
        };

        let (exit_tx, exited) = oneshot::channel();
        let wake = Wake::new().map_err(|e| spawn_err(&e))?;
        let exit_wake = wake.writer().map_err(|e| spawn_err(&e))?;
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
                let _ = std::io::Write::write(&mut (&exit_wake), &[1]);
            })
            .map_err(|e| spawn_err(&e))?;

        Ok(Runspace {
            output,
            io,
            exited,
            wake,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `sh -c script` in a PTY and reads its output to the end, as the session does:
    /// the text, in how many chunks it came, and the runspace.
    async fn read_all(script: &str) -> (String, usize, Runspace) {
        let argv: Vec<OsString> = ["sh", "-c", script].iter().map(OsString::from).collect();
        let mut rs = Runspace::spawn(&argv, (80, 24), &[]).expect("sh runs in a PTY");
        let (mut got, mut chunks) = (Vec::new(), 0usize);
        let read = async {
            while let Some(bytes) = rs.output.recv(256 * 1024).await {
                got.extend_from_slice(&bytes);
                chunks += 1;
                rs.output.recycle(bytes);
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), read)
            .await
            .expect("output ends");
        (String::from_utf8(got).expect("ASCII output"), chunks, rs)
    }

    fn lines(from: u32, to: u32) -> String {
        (from..=to).map(|i| format!("{i}\n")).collect()
    }

    fn assert_same(got: &str, want: &str, chunks: usize) {
        assert!(
            got == want,
            "{} bytes in {chunks} chunks, want {}; first difference at {:?}",
            got.len(),
            want.len(),
            got.bytes().zip(want.bytes()).position(|(a, b)| a != b)
        );
    }

    /// Output read by the loop and by the bulk reader, handed back and forth across bursts
    /// and pauses, arrives whole and in order: a lost or reordered chunk could drop the prompt
    /// marker that ends pass-through.
    #[tokio::test(flavor = "current_thread")]
    async fn bursts_and_pauses_reach_the_session_whole_and_in_order() {
        let (got, chunks, rs) = read_all(
            "stty -onlcr; seq 1 40000; sleep 0.3; echo one; sleep 0.3; echo two; \
             sleep 0.2; seq 40001 90000; sleep 0.3; echo end",
        )
        .await;
        let want = format!("{}one\ntwo\n{}end\n", lines(1, 40000), lines(40001, 90000));
        assert_same(&got, &want, chunks);
        assert!(
            rs.output.bursts >= 2,
            "both bursts went to the bulk reader ({} did)",
            rs.output.bursts
        );
        assert!(!rs.output.bulk, "the loop reads again after a pause");
    }

    /// A runspace that ends in the middle of a burst: the bulk reader's last chunks and the
    /// end of output still arrive, in order, and the exit status is the runspace's.
    #[tokio::test(flavor = "current_thread")]
    async fn output_that_ends_during_a_burst_arrives_whole_with_the_status() {
        let (got, chunks, mut rs) = read_all("stty -onlcr; seq 1 120000; exit 3").await;
        assert_same(&got, &lines(1, 120_000), chunks);
        assert!(rs.output.bursts >= 1, "the burst went to the bulk reader");
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), &mut rs.exited)
            .await
            .expect("the runspace is reaped");
        assert_eq!(status.ok(), Some(3));
    }

    /// A long burst goes through a few buffers that the bulk reader fills again once the
    /// session has used them, however much output there is (one allocated per chunk and freed
    /// on the other thread, they left the shell at 66 MiB resident after 200 MB under
    /// mimalloc); nothing is lost or reordered on the way.
    #[tokio::test(flavor = "current_thread")]
    async fn a_long_burst_reuses_the_bulk_readers_buffers() {
        let (got, chunks, rs) = read_all("stty -onlcr; seq 1 600000").await;
        assert_same(&got, &lines(1, 600_000), chunks);
        let allocated = rs
            .output
            .reader_buffers
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            chunks >= 40,
            "{chunks} batches: too few to show reuse ({} bytes)",
            got.len()
        );
        assert!(
            (1..=8).contains(&allocated),
            "the bulk reader allocated {allocated} buffers for {chunks} batches"
        );
    }

    /// Input the PTY cannot take at once (the runspace is not reading) is kept, written as
    /// the PTY takes it, whole and in order, and the write side waits on the event loop only
    /// while input is kept.
    #[tokio::test(flavor = "current_thread")]
    async fn input_the_pty_cannot_take_yet_arrives_whole_and_in_order() {
        let size = 256 * 1024;
        let argv: Vec<OsString> = [
            "sh",
            "-c",
            &format!("stty raw -echo; echo ready; sleep 1; head -c {size} | sha256sum"),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut rs = Runspace::spawn(&argv, (80, 24), &[]).expect("sh runs in a PTY");
        let limit = std::time::Duration::from_secs(60);
        let mut got = Vec::new();
        tokio::time::timeout(limit, async {
            while !String::from_utf8_lossy(&got).contains("ready") {
                let bytes = rs.output.recv(65536).await.expect("output before the end");
                got.extend_from_slice(&bytes);
            }
        })
        .await
        .expect("the runspace is ready");
        assert!(rs.io.waiter.is_none(), "nothing waits yet");

        let data: Vec<u8> = (0..size).map(|i| b"abcdefghij"[i % 10]).collect();
        rs.send(&data).expect("the runspace is there");
        assert!(rs.io.has_pending(), "the PTY took all {size} bytes at once");
        assert!(rs.io.waiter.is_some(), "a full PTY waits on the event loop");
        tokio::time::timeout(limit, async {
            while rs.io.has_pending() {
                rs.io.flush().await.expect("the runspace reads its input");
            }
        })
        .await
        .expect("the PTY takes the input");
        assert!(
            rs.io.waiter.is_none(),
            "nothing waits once the input is taken"
        );

        let mut out = Vec::new();
        tokio::time::timeout(limit, async {
            while let Some(bytes) = rs.output.recv(65536).await {
                out.extend_from_slice(&bytes);
            }
        })
        .await
        .expect("output ends");
        let digest = ring::digest::digest(&ring::digest::SHA256, &data);
        let want: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains(&want), "runspace read another input: {out}");
    }
}
