//! The session's event loop: one `tokio::select!` over the admin's keystrokes, the runspace's
//! output, window-size changes, termination signals, the runspace's exit and the request poll.
//! While a command runs or the admin edits a line, and nothing waits on the runtime, keys and
//! output go through `Session::relay` instead, which waits in `poll(2)` itself as `script(1)`
//! does (the runtime's wake-ups cost a key about 15 µs); a signal or the runspace's exit wakes
//! it through the runspace's wake socket, and it hands back to the `select!` for anything else,
//! a submitted line included (gating it may ask the service).
//!
//! Modes, driven by the runspace's OSC 133 markers:
//! - `Starting` / `Prompt` (before the first prompt, and between `A` and `B`): keystrokes are
//!   held, then given to the editor;
//! - `Editing` (after `B`): jitsh's editor owns the keystrokes; Enter gates the line;
//! - `Sent` (an allowed line was sent): keystrokes are held (only Ctrl-C goes on) until the
//!   runspace says it runs the line (`C`) or is back at its prompt (`A`). A continuation prompt
//!   (`A;k=c`), or neither signal within [`RUN_CONFIRM_WITHIN`], means the runspace reads the
//!   line as incomplete and waits for more code: jitsh interrupts it (Ctrl-C), drops what was
//!   typed meanwhile and refuses (`Cancelled` until the prompt is back);
//! - `Running` (after `C`, until the next `A`): keystrokes pass through.
//!
//! Typed-ahead lines are kept from becoming ungated commands: while a command runs, at most one
//! line of input is passed on until the runspace reacts with output other than the echo; the
//! rest is held and, once the prompt is back, goes through the editor and the gate like any
//! other line. At each prompt jitsh discards input the runspace has not read yet, and if the
//! runspace still runs a command jitsh did not send, the session is audited and ended (see
//! docs/shell.md for the residual race).

use std::io::{Read, Write};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::access::Access;
use super::line::{decode_key, Action, Decoded, Editor, Key};
use super::meta::{self, Meta};
use super::osc::{Marker, Piece, Scanner};
use super::pty::{ReadNow, Runspace};
use super::record::{Recorder, SessionInfo};
use super::term::{window_size, RawMode};
use super::{event, marker_label, refusal_message, SessionAudit, ShellConfig, ShellError};
use crate::policy::Effect;

/// How often pending requests are polled for their token.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// When to explain that no prompt marker has been seen yet.
const NO_PROMPT_HINT_AFTER: Duration = Duration::from_secs(10);

/// Most output bytes handled in one go (read on the loop; a batch from the bulk reader is at
/// most one of its buffers, 64 KiB).
const BATCH_MAX: usize = 256 * 1024;

/// How long to keep reading output after the runspace exited.
const DRAIN_FOR: Duration = Duration::from_millis(500);

/// How long the runspace has, after a line was sent, to say that it runs it (`133;C`) or to
/// show its prompt again. Keystrokes are held meanwhile; without either signal the runspace may
/// be reading more code, and the line is interrupted and refused.
pub(crate) const RUN_CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// How long the runspace has to show its prompt after jitsh interrupted it; then the session
/// ends (the runspace may still be reading code, and no key can safely reach it).
const PROMPT_AFTER_CANCEL_WITHIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Starting,
    Prompt,
    Editing,
    /// A line was sent; waiting for the runspace to run it (`C`) or prompt again (`A`).
    Sent,
    Running,
    /// The runspace was interrupted because it read a line as incomplete; waiting for `A`.
    Cancelled,
}

/// One gated session.
pub struct Session {
    runspace: Runspace,
    access: Access,
    recorder: Recorder,
    /// Where diagnostics go while the session owns the terminal.
    log_path: std::path::PathBuf,
    audit: SessionAudit,
    session_id: String,
    editor: Editor,
    scanner: Scanner,
    mode: Mode,
    prompt: Vec<u8>,
    /// Keystrokes waiting for the editor (typed before the prompt was ready).
    held: Vec<u8>,
    /// Keystroke bytes not yet decoded into a key (an escape sequence split across reads).
    partial_key: Vec<u8>,
    /// While running: a line was passed through and the runspace has not answered yet.
    line_in_flight: bool,
    /// The terminal echo still expected for the line in flight (echo is not a reaction).
    echo: Vec<u8>,
    /// While running: the runspace announced secret input; don't record until a newline.
    secret: bool,
    /// The line last sent to the runspace (for the refusal when it reads it as incomplete).
    sent_line: String,
    /// Continuation prompts expected for the line sent (one per further line of a multi-line
    /// command sent to a runspace that reads it whole); one more is a disagreement.
    continuations_expected: usize,
    /// When the `Sent` or `Cancelled` wait gives up.
    deadline: Option<tokio::time::Instant>,
    /// After a refused continuation: keys typed before the prompt is back are dropped (they
    /// were typed as more of the refused command), not given to the editor.
    dropping: bool,
    audit_failed: bool,
    quit: bool,
    multiline: bool,
    /// Completion words are loaded on the first Tab (the catalog is large; start fast).
    words_loaded: bool,
    /// Shown when the session starts: the elevated access control notice, if any.
    banner: Option<String>,
    stdout: std::io::Stdout,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.session_id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Load policies and tokens, open the recording and audit trail, start the runspace.
    pub async fn start(config: ShellConfig) -> Result<Session, ShellError> {
        let mut access = Access::load(&config.access)?;
        access.bind_identity().await?;
        let banner = access.control_notice().await;
        let session_id = super::new_session_id();
        let size = window_size();
        let runspace_text = config
            .runspace
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let recorder = Recorder::create(
            &config.record_dir,
            &SessionInfo {
                session_id: session_id.clone(),
                user: access.user().to_string(),
                runspace: runspace_text.clone(),
                cols: size.0,
                rows: size.1,
            },
        )?;
        let audit = SessionAudit::open(
            &config.record_dir,
            config.spool_dir.as_deref(),
            &session_id,
            access.user(),
            config
                .access
                .server
                .clone()
                .zip(config.access.credential.clone()),
        )?;
        let mut start = event(access.user(), "session.start", &session_id, "ok");
        start
            .details
            .insert("runspace".into(), runspace_text.into());
        start.details.insert(
            "recording".into(),
            recorder.path().display().to_string().into(),
        );
        audit
            .append(start)
            .map_err(|e| ShellError::Record(e.to_string()))?;
        let runspace = Runspace::spawn(
            &config.runspace,
            size,
            &[("JITSH_SESSION".to_string(), session_id.clone())],
        )?;
        let editor = Editor::new(size.0);
        Ok(Session {
            runspace,
            access,
            recorder,
            log_path: config.record_dir.join("jitsh.log"),
            audit,
            session_id,
            editor,
            scanner: Scanner::new(),
            mode: Mode::Starting,
            prompt: Vec::new(),
            held: Vec::new(),
            partial_key: Vec::new(),
            line_in_flight: false,
            echo: Vec::new(),
            secret: false,
            sent_line: String::new(),
            continuations_expected: 0,
            deadline: None,
            dropping: false,
            audit_failed: false,
            quit: false,
            multiline: config.multiline,
            words_loaded: false,
            banner,
            stdout: std::io::stdout(),
        })
    }

    /// Run until the runspace exits (or a signal ends the session); returns its exit status.
    pub async fn run(mut self) -> Result<i32, ShellError> {
        let raw = RawMode::enable().map_err(|e| ShellError::Io(e.to_string()))?;
        // From here on a line on stderr would land in the prompt: warnings go to the log file.
        let _log = match super::logfile::redirect_to(&self.log_path) {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!("log file `{}`: {e}", self.log_path.display());
                None
            }
        };
        if let Some(banner) = self.banner.take() {
            let text = crate::text::escape_lines(&format!("jitsh: {banner}"), "\r\n");
            self.write_out(format!("{text}\r\n").as_bytes())?;
        }
        let mut keys = Keys::open();
        let io = |e: std::io::Error| ShellError::Io(e.to_string());
        let mut signals = Signals::listen().map_err(io)?;
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stdin_open = true;
        let no_prompt_hint = tokio::time::sleep(NO_PROMPT_HINT_AFTER);
        tokio::pin!(no_prompt_hint);
        let mut hinted = false;

        // A signal also wakes the pass-through's poll(2), which waits outside the runtime.
        let _signal_wake = SignalWake::register(&self.runspace.wake);

        // The sleep's branch is off without a deadline; any instant will do for it then.
        let idle = tokio::time::Instant::now();
        let status = loop {
            if stdin_open && self.relay_ready(&keys) {
                match self.relay(&mut keys)? {
                    Relayed::Handover => {
                        self.replay_held().await?;
                        continue;
                    }
                    // The runtime has something to deliver: one turn of the loop below.
                    Relayed::Runtime => {}
                    // Gated as `edit` gates a line; `edit` then takes the keys after it in
                    // whatever mode the line leaves (held unless the editor has the prompt).
                    Relayed::Submitted(text, rest) => {
                        self.submit(text).await?;
                        self.edit(rest).await?;
                        continue;
                    }
                    Relayed::KeysEnded => {
                        stdin_open = false;
                        self.quit = true;
                        self.runspace.hang_up();
                        continue;
                    }
                }
            }
            let deadline = self.deadline.unwrap_or(idle);
            tokio::select! {
                chunk = self.runspace.output.recv(BATCH_MAX) => match chunk {
                    Some(bytes) => {
                        self.on_output(&bytes)?;
                        self.runspace.output.recycle(bytes);
                        self.replay_held().await?;
                    }
                    // End of output: the runspace is gone or going; wait for its status.
                    None => break (&mut self.runspace.exited).await.unwrap_or(1),
                },
                flushed = self.runspace.io.flush(), if self.runspace.io.has_pending() => flushed?,
                input = keys.recv(), if stdin_open => match input {
                    Some(bytes) => self.on_input(bytes).await?,
                    // The admin's side is gone: end the session as a hang-up would.
                    None => {
                        stdin_open = false;
                        self.quit = true;
                        self.runspace.hang_up();
                    }
                },
                code = &mut self.runspace.exited => {
                    self.drain().await?;
                    break code.unwrap_or(1);
                }
                () = tokio::time::sleep_until(deadline), if self.deadline.is_some() => {
                    self.on_deadline()?;
                }
                // Off once the first prompt is seen: a timer polled on every turn costs each key.
                () = &mut no_prompt_hint, if !hinted && self.mode == Mode::Starting => {
                    hinted = true;
                    self.write_out(
                        b"\r\njitsh: still waiting for the runspace's first prompt; a runspace \
            must frame its prompt with OSC 133 markers (see docs/shell.md)\r\n",
                    )?;
                }
                sig = signals.recv() => match sig {
                    Sig::Winch => {
                        let size = window_size();
                        self.runspace.resize(size);
                        self.recorder.resize(size);
                        self.editor.set_cols(size.0);
                    }
                    Sig::Term => { self.runspace.hang_up(); break 128 + 15; }
                    Sig::Hup => { self.runspace.hang_up(); break 128 + 1; }
                },
                _ = poll.tick(), if !self.access.pending().is_empty() => {
                    let notices = self.access.poll().await;
                    self.notify(&notices)?;
                }
            }
        };
        drop(raw);
        // `:quit` hangs the runspace up on purpose: that is a normal end, not a failure.
        let status = if self.quit && status == 128 + 1 {
            0
        } else {
            status
        };
        self.end(status)
    }

    /// Whether keys and output can go through [`Session::relay`]: a command runs, or the
    /// editor has the prompt and no held keys wait for it, and nothing waits on the runtime
    /// (no deadline, no input the PTY has not taken, no bulk output).
    fn relay_ready(&self, keys: &Keys) -> bool {
        let mode = match self.mode {
            Mode::Running => true,
            // Held keys go to the editor first, on the runtime (`replay_held`).
            Mode::Editing => self.held.is_empty(),
            _ => false,
        };
        mode && self.deadline.is_none()
            && keys.fd().is_some()
            && !self.runspace.io.has_pending()
            && self.runspace.output.direct_fd().is_some()
    }

    /// While a command runs or the line is edited: keys and output pass through a loop that
    /// waits in `poll(2)` itself, as `script(1)` does. Waking the runtime for each key and its
    /// echo cost about 15 µs a key. Keys at the prompt go to the editor here; a line it submits
    /// is handed back to be gated on the runtime. Returns once the session needs the runtime
    /// again: the mode changed, input or output needs it, a line was submitted, a signal or
    /// the runspace's exit came, or the request poll is due.
    fn relay(&mut self, keys: &mut Keys) -> Result<Relayed, ShellError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        // Woken for something the runtime has not delivered yet: let it deliver first.
        if self.runspace.wake.drain() {
            return Ok(Relayed::Runtime);
        }
        // With requests pending, the runtime polls them every POLL_EVERY, keys or not.
        let until =
            (!self.access.pending().is_empty()).then(|| std::time::Instant::now() + POLL_EVERY);
        loop {
            let timeout = match until {
                None => PollTimeout::NONE,
                Some(t) => match t.checked_duration_since(std::time::Instant::now()) {
                    Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                    None => return Ok(Relayed::Runtime),
                },
            };
            let (Some(tty), Some(master)) = (keys.fd(), self.runspace.output.direct_fd()) else {
                return Ok(Relayed::Handover);
            };
            let mut fds = [
                PollFd::new(master, PollFlags::POLLIN),
                PollFd::new(tty, PollFlags::POLLIN),
                PollFd::new(self.runspace.wake.as_fd(), PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, timeout) {
                Ok(0) => return Ok(Relayed::Runtime),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Ok(Relayed::Runtime),
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            let (output, input, woken) = (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]));
            // Output first: a prompt marker in it ends pass-through before any key is passed.
            if output {
                match self.runspace.output.read_now(BATCH_MAX) {
                    ReadNow::Data(bytes) => {
                        self.on_output(&bytes)?;
                        if self.mode == Mode::Running
                            && !self.line_in_flight
                            && !self.held.is_empty()
                        {
                            self.pass_through(Vec::new())?;
                        }
                    }
                    ReadNow::Nothing => {}
                    // The runtime's loop reads the end of output and waits for the status.
                    ReadNow::Ended => return Ok(Relayed::Handover),
                }
            }
            if woken {
                return Ok(Relayed::Runtime);
            }
            if !self.relay_ready(keys) {
                return Ok(Relayed::Handover);
            }
            if input {
                match keys.read_now() {
                    KeysNow::Data(bytes) if self.mode == Mode::Editing => {
                        if let Some((text, rest)) = self.edit_keys(bytes)? {
                            return Ok(Relayed::Submitted(text, rest));
                        }
                    }
                    KeysNow::Data(bytes) => self.pass_through(bytes)?,
                    KeysNow::Nothing => {}
                    KeysNow::Ended => return Ok(Relayed::KeysEnded),
                }
                if !self.relay_ready(keys) {
                    return Ok(Relayed::Handover);
                }
            }
        }
    }

    fn end(self, status: i32) -> Result<i32, ShellError> {
        let Session {
            recorder,
            audit,
            session_id,
            access,
            ..
        } = self;
        let path = recorder.path().display().to_string();
        let digest = recorder.finish();
        let mut end = event(
            access.user(),
            "session.end",
            &session_id,
            if digest.is_ok() { "ok" } else { "error" },
        );
        end.details.insert("status".into(), status.into());
        end.details.insert("recording".into(), path.into());
        if let Ok(d) = &digest {
            end.details
                .insert("recording_sha256".into(), d.clone().into());
        }
        let logged = audit.append(end);
        let closed = audit.close();
        digest?;
        closed.map_err(ShellError::Record)?;
        logged.map_err(|e| ShellError::Record(e.to_string()))?;
        Ok(status)
    }

    /// Read what is left of the output after the runspace exited.
    async fn drain(&mut self) -> Result<(), ShellError> {
        let deadline = tokio::time::Instant::now() + DRAIN_FOR;
        while let Ok(Some(bytes)) =
            tokio::time::timeout_at(deadline, self.runspace.output.recv(BATCH_MAX)).await
        {
            self.on_output(&bytes)?;
        }
        let tail = self.scanner.finish();
        self.write_out(&tail)?;
        Ok(())
    }

    fn write_out(&mut self, bytes: &[u8]) -> Result<(), ShellError> {
        if bytes.is_empty() {
            return Ok(());
        }
        // Shown first, then recorded (recorded even when showing fails): the admin waits on
        // the terminal, not on the recording.
        let shown = {
            let mut out = self.stdout.lock();
            out.write_all(bytes).and_then(|()| out.flush())
        };
        self.recorder.output(bytes);
        shown.map_err(|e| ShellError::Io(e.to_string()))
    }

    fn on_output(&mut self, chunk: &[u8]) -> Result<(), ShellError> {
        for piece in self.scanner.feed(chunk) {
            match piece {
                Piece::Bytes(bytes) => match self.mode {
                    Mode::Prompt => {
                        self.prompt.extend_from_slice(&bytes);
                        self.write_out(&bytes)?;
                    }
                    Mode::Editing => {
                        // Output while at the prompt (a background job): show it above the line.
                        let mut out = Vec::new();
                        self.editor.leave_for_message(&mut out);
                        out.extend_from_slice(&bytes);
                        if !bytes.ends_with(b"\n") {
                            out.extend_from_slice(b"\r\n");
                        }
                        self.editor.redraw_below(&mut out);
                        self.write_out(&out)?;
                    }
                    Mode::Sent | Mode::Running => {
                        if self.line_in_flight && self.reacts(&bytes) {
                            self.line_in_flight = false;
                        }
                        self.write_out(&bytes)?;
                    }
                    Mode::Starting | Mode::Cancelled => self.write_out(&bytes)?,
                },
                Piece::Marker(
                    Marker::PromptStart
                    | Marker::CommandDone(_)
                    | Marker::OutputStart
                    | Marker::ContinuationPrompt,
                ) if self.mode == Mode::Editing => {
                    // At the prompt jitsh sent nothing, yet the runspace ran or reads a
                    // command: it read input that did not pass the gate. Stop the session.
                    self.bypass_detected()?;
                    return Ok(());
                }
                Piece::Marker(Marker::PromptStart) => {
                    // Between prompts: one short line about warnings that went to the log.
                    if let Some(notice) = super::logfile::take_notice() {
                        self.write_out(format!("{notice}\r\n").as_bytes())?;
                    }
                    // Input typed while the command ran and not yet read is never a command.
                    self.runspace.discard_unread_input();
                    self.mode = Mode::Prompt;
                    self.prompt.clear();
                    self.secret = false;
                    self.deadline = None;
                }
                Piece::Marker(Marker::PromptEnd) => {
                    if self.mode != Mode::Editing {
                        if std::mem::take(&mut self.dropping) {
                            self.drop_held();
                        }
                        self.mode = Mode::Editing;
                        self.deadline = None;
                        self.editor.begin(&self.prompt);
                    }
                }
                Piece::Marker(Marker::OutputStart) => {
                    if self.mode == Mode::Sent {
                        self.mode = Mode::Running;
                        self.deadline = None;
                    }
                }
                Piece::Marker(Marker::ContinuationPrompt) => match self.mode {
                    Mode::Sent if self.continuations_expected > 0 => {
                        self.continuations_expected -= 1;
                    }
                    Mode::Sent | Mode::Running => {
                        self.refuse_continuation(
                            "the runspace showed a continuation prompt: it reads the line as \
                             incomplete and waits for more code",
                        )?;
                    }
                    _ => {}
                },
                Piece::Marker(Marker::SecretInput) => {
                    if self.mode == Mode::Running {
                        self.secret = true;
                    }
                }
                Piece::Marker(Marker::CommandDone(_)) => {}
            }
        }
        Ok(())
    }

    /// The `Sent` or `Cancelled` wait ran out.
    fn on_deadline(&mut self) -> Result<(), ShellError> {
        self.deadline = None;
        match self.mode {
            Mode::Sent => self.refuse_continuation(&format!(
                "the runspace did not say within {} s that it runs the line (no OSC 133;C mark) \
                 and did not return to its prompt: it may be reading more code",
                RUN_CONFIRM_WITHIN.as_secs()
            )),
            Mode::Cancelled => {
                let reason = "the runspace did not return to its prompt after it was interrupted";
                let mut ev = event(self.access.user(), "gate.abort", &self.session_id, "error");
                ev.details.insert("reason".into(), reason.into());
                ev.details
                    .insert("line".into(), self.sent_line.clone().into());
                if self.audit.append(ev).is_err() {
                    self.audit_failed = true;
                }
                self.recorder.marker(format!("gate abort: {reason}"));
                self.write_out(format!("\r\njitsh: {reason}; the session ends\r\n").as_bytes())?;
                self.runspace.hang_up();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The runspace reads the line it was sent as incomplete (or would not say that it runs
    /// it): whatever is typed next would reach it as code that the gate never judged. Interrupt
    /// it as a user would (Ctrl-C drops PowerShell's block), drop the held keys, refuse, and
    /// record the refusal; keys wait for the prompt to come back.
    fn refuse_continuation(&mut self, why: &str) -> Result<(), ShellError> {
        self.runspace.send(&[0x03])?;
        let dropped = self.drop_held();
        self.dropping = true;
        let reason = format!("{why}; it was interrupted, and nothing typed meanwhile was sent");
        let marker = self
            .recorder
            .marker(format!("gate: deny continuation: {why}"));
        let mut ev = event(
            self.access.user(),
            "gate.decision",
            &self.session_id,
            Effect::Deny.as_str(),
        );
        ev.details
            .insert("line".into(), self.sent_line.clone().into());
        ev.details.insert("reason".into(), reason.clone().into());
        ev.details.insert("continuation".into(), true.into());
        ev.details
            .insert("dropped_input_bytes".into(), dropped.into());
        ev.details.insert(
            "recording".into(),
            self.recorder.path().display().to_string().into(),
        );
        ev.details.insert("marker".into(), marker.into());
        if self.audit.append(ev).is_err() {
            self.audit_failed = true;
        }
        self.mode = Mode::Cancelled;
        self.line_in_flight = false;
        self.echo.clear();
        self.secret = false;
        self.deadline = Some(tokio::time::Instant::now() + PROMPT_AFTER_CANCEL_WITHIN);
        self.write_out(
            format!(
                "\r\njitsh: refused: {reason}. Write the command so that it is complete on one \
                 line.\r\n"
            )
            .as_bytes(),
        )
    }

    /// Whether output from the runspace is more than the echo of the line in flight.
    fn reacts(&mut self, chunk: &[u8]) -> bool {
        for &b in chunk {
            if self.echo.first() == Some(&b) {
                self.echo.remove(0);
                continue;
            }
            self.echo.clear();
            return true;
        }
        false
    }

    fn bypass_detected(&mut self) -> Result<(), ShellError> {
        let mut ev = event(self.access.user(), "gate.bypass", &self.session_id, "error");
        ev.details.insert(
            "reason".into(),
            "the runspace ran input that did not pass the gate".into(),
        );
        let _ = self.audit.append(ev);
        self.recorder
            .marker("gate bypass: the runspace ran ungated input".into());
        self.write_out(
            b"\r\njitsh: the runspace ran input that did not pass the gate; the session ends\r\n",
        )?;
        // Hold every key from now on; the session ends.
        self.mode = Mode::Cancelled;
        self.deadline = None;
        self.runspace.hang_up();
        Ok(())
    }

    /// Drop the held keys (typed, never sent: they stay in the recording as input); returns
    /// how many bytes.
    fn drop_held(&mut self) -> usize {
        let mut dropped = std::mem::take(&mut self.held);
        dropped.append(&mut self.partial_key);
        if !dropped.is_empty() {
            self.recorder.input(&dropped);
        }
        dropped.len()
    }

    /// Keys held while the prompt was not ready go to the editor once it is; keys held while
    /// a line was being confirmed go on once the command runs and reacts.
    async fn replay_held(&mut self) -> Result<(), ShellError> {
        if self.held.is_empty() {
            return Ok(());
        }
        match self.mode {
            Mode::Editing => {
                let held = std::mem::take(&mut self.held);
                self.edit(held).await
            }
            Mode::Running if !self.line_in_flight => self.pass_through(Vec::new()),
            _ => Ok(()),
        }
    }

    async fn on_input(&mut self, bytes: Vec<u8>) -> Result<(), ShellError> {
        self.replay_held().await?;
        match self.mode {
            Mode::Starting | Mode::Prompt => {
                // Ctrl-C still interrupts a runspace that is slow to reach its prompt; any
                // other key waits for the editor.
                let mut bytes = bytes;
                if self.mode == Mode::Starting && bytes.contains(&0x03) {
                    self.runspace.send(&[0x03])?;
                    bytes.retain(|&b| b != 0x03);
                }
                self.held.extend_from_slice(&bytes);
                Ok(())
            }
            Mode::Sent => {
                // Not yet known to run: nothing but Ctrl-C may reach the runspace. Ctrl-C also
                // drops what was typed since the line was sent, as it would in a terminal.
                match bytes.iter().rposition(|&b| b == 0x03) {
                    Some(i) => {
                        self.held
                            .extend_from_slice(bytes.get(..i).unwrap_or_default());
                        self.drop_held();
                        self.dropping = true;
                        self.record_input(&[0x03]);
                        self.runspace.send(&[0x03])?;
                        self.held
                            .extend_from_slice(bytes.get(i + 1..).unwrap_or_default());
                    }
                    None => self.held.extend_from_slice(&bytes),
                }
                Ok(())
            }
            Mode::Cancelled => {
                self.held.extend_from_slice(&bytes);
                Ok(())
            }
            Mode::Running => self.pass_through(bytes),
            Mode::Editing => self.edit(bytes).await,
        }
    }

    /// Running: keystrokes go to the runspace, but at most one line until it reacts.
    fn pass_through(&mut self, bytes: Vec<u8>) -> Result<(), ShellError> {
        let mut bytes = bytes;
        // Ctrl-C goes through at once, whatever is held.
        if bytes.contains(&0x03) {
            self.record_input(&[0x03]);
            self.runspace.send(&[0x03])?;
            bytes.retain(|&b| b != 0x03);
        }
        let mut queue = std::mem::take(&mut self.held);
        queue.extend_from_slice(&bytes);
        if self.line_in_flight {
            self.held = queue;
            return Ok(());
        }
        let cut = queue
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .map(|i| i + 1);
        let (now, later) = match cut {
            Some(i) => {
                self.line_in_flight = true;
                let later = queue.split_off(i.min(queue.len()));
                self.echo = queue
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\r' && b != b'\n')
                    .chain(*b"\r\n")
                    .collect();
                (queue, later)
            }
            None => (queue, Vec::new()),
        };
        self.held = later;
        if !now.is_empty() {
            // Recorded before it is sent: a key that reached the runspace is in the recording
            // even if jitsh is killed the moment after (see `kill_9_...` in tests/shell.rs).
            self.record_input(&now);
            self.runspace.send(&now)?;
        }
        Ok(())
    }

    fn record_input(&mut self, bytes: &[u8]) {
        if !self.secret {
            self.recorder.input(bytes);
            return;
        }
        // Secret input: leave it out of the recording up to and including the newline.
        if let Some(i) = bytes.iter().position(|&b| b == b'\r' || b == b'\n') {
            self.secret = false;
            let rest = bytes.get(i + 1..).unwrap_or_default();
            if !rest.is_empty() {
                self.recorder.input(rest);
            }
        }
    }

    /// Editing: decode keys and act on them; bytes after a submitted line are handled in
    /// whatever mode the line left us in.
    async fn edit(&mut self, bytes: Vec<u8>) -> Result<(), ShellError> {
        let mut bytes = bytes;
        while let Some((text, rest)) = self.edit_keys(bytes)? {
            self.submit(text).await?;
            bytes = rest;
        }
        Ok(())
    }

    /// The editor's part of [`Session::edit`], which waits on nothing: keys are recorded, edit
    /// the line and are echoed until one submits it. Returns the submitted line with the bytes
    /// after it (given to [`Session::edit`] again once the line is dealt with), or `None` when
    /// every byte was taken. The pass-through calls it too, so keys at the prompt need not
    /// wake the runtime.
    fn edit_keys(&mut self, bytes: Vec<u8>) -> Result<Option<(String, Vec<u8>)>, ShellError> {
        let mut buf = std::mem::take(&mut self.partial_key);
        buf.extend_from_slice(&bytes);
        let mut pos = 0;
        while pos < buf.len() {
            if self.mode != Mode::Editing {
                let rest = buf.get(pos..).unwrap_or_default().to_vec();
                match self.mode {
                    // Only after `C`; `submit` leaves the mode at `Sent`.
                    Mode::Running => self.pass_through(rest)?,
                    _ => self.held.extend_from_slice(&rest),
                }
                return Ok(None);
            }
            let rest = buf.get(pos..).unwrap_or_default();
            let (key, len) = match decode_key(rest) {
                Decoded::Key(key, len) => (key, len),
                Decoded::Incomplete => {
                    self.partial_key = rest.to_vec();
                    return Ok(None);
                }
            };
            let raw = rest.get(..len).unwrap_or_default().to_vec();
            pos += len;
            if key == Key::Tab && !self.words_loaded {
                self.words_loaded = true;
                self.editor.set_words(self.access.command_names());
            }
            // Recorded before it shows: a key on the screen is in the recording even if jitsh
            // is killed the moment after.
            self.recorder.input(&raw);
            let mut out = Vec::new();
            let action = self.editor.key(key, &mut out);
            self.write_out(&out)?;
            match action {
                Some(Action::Submit(text)) => {
                    return Ok(Some((text, buf.get(pos..).unwrap_or_default().to_vec())))
                }
                Some(Action::Cancel) => {
                    let mut out = Vec::new();
                    self.editor.begin(&self.prompt);
                    self.editor.redraw_below(&mut out);
                    self.write_out(&out)?;
                }
                Some(Action::EndOfFile) => {
                    let mut out = Vec::new();
                    self.editor.leave_for_message(&mut out);
                    out.extend_from_slice(b"jitsh: type :quit to end the session\r\n");
                    self.editor.redraw_below(&mut out);
                    self.write_out(&out)?;
                }
                None => {}
            }
        }
        Ok(None)
    }

    async fn submit(&mut self, text: String) -> Result<(), ShellError> {
        if meta::is_meta(&text) {
            return self.meta(&text).await;
        }
        // Before deciding: pick up tokens of requests approved meanwhile.
        if !self.access.pending().is_empty() {
            let notices = self.access.poll().await;
            self.notify(&notices)?;
        }
        if let Some(change) = self.access.control_change().await {
            self.notify(&[change])?;
        }
        if let Some(plan) = super::purview::recognise(&self.access, &text) {
            return self.purview(&text, plan).await;
        }
        let mut checked = self.access.check(&text).await;
        // A system account's line that waits on approval: its requests are granted at once.
        if checked.decision.decision == Effect::Approval && !checked.decision.incomplete {
            let filed = self
                .access
                .request_as_system_account(&checked.decision)
                .await;
            if !filed.is_empty() {
                self.notify(&filed)?;
                checked = self.access.check(&text).await;
            }
        }
        let decision = checked.decision;
        if decision.incomplete {
            let mut out = Vec::new();
            self.editor.continuation(&mut out);
            return self.write_out(&out);
        }
        if text.contains('\n') && !self.multiline {
            // Refused like any other line: a marker in the recording and a record in the log.
            let reason = "this runspace reads one line at a time; the line was not sent";
            let marker = self
                .recorder
                .marker(format!("gate: deny multi-line: {reason}"));
            let mut ev = crate::audit::decision::event(
                self.access.user(),
                &self.session_id,
                &text,
                &decision,
                "shell",
                super::now_rfc3339(),
            );
            ev.outcome = Effect::Deny.as_str().into();
            ev.details.insert("reason".into(), reason.into());
            ev.details.insert("multiline".into(), true.into());
            ev.details.insert(
                "recording".into(),
                self.recorder.path().display().to_string().into(),
            );
            ev.details.insert("marker".into(), marker.into());
            if self.audit.append(ev).is_err() {
                self.audit_failed = true;
            }
            let mut out = Vec::new();
            self.editor.leave_for_message(&mut out);
            out.extend_from_slice(
                b"jitsh: this runspace reads one line at a time; write the command on one line\r\n",
            );
            self.editor.begin(&self.prompt);
            self.editor.redraw_below(&mut out);
            return self.write_out(&out);
        }
        let marker = self.recorder.marker(marker_label(&decision));
        let mut ev = crate::audit::decision::event(
            self.access.user(),
            &self.session_id,
            &text,
            &decision,
            "shell",
            super::now_rfc3339(),
        );
        // From the audit event to the moment in the recording: `jitsh replay FILE --at-marker N`.
        ev.details.insert(
            "recording".into(),
            self.recorder.path().display().to_string().into(),
        );
        ev.details.insert("marker".into(), marker.into());
        let audited = self.audit.append(ev);
        if audited.is_err() {
            self.audit_failed = true;
        }

        let mut out = Vec::new();
        if decision.decision == Effect::Allow {
            let durable = audited.is_ok() && self.recorder.healthy();
            if checked.privileged && !durable {
                // The log says `allow` but the line does not run (the recording failed): say
                // so in the same log, so it records no action that did not happen.
                if let Ok(seq) = &audited {
                    let mut ev = event(self.access.user(), "gate.abort", &self.session_id, "error");
                    ev.details.insert(
                        "reason".into(),
                        "the session recording cannot be written; the allowed line was not run"
                            .into(),
                    );
                    ev.details.insert("line".into(), text.clone().into());
                    ev.details.insert("decision_seq".into(), (*seq).into());
                    self.audit.append_or_owe(ev);
                }
                self.editor.leave_for_message(&mut out);
                out.extend_from_slice(
                    b"jitsh: refused: the session recording or audit log cannot be written, \
so no privileged line runs; free disk space and run it again (the session resumes by itself)\r\n",
                );
                self.editor.begin(&self.prompt);
                self.editor.redraw_below(&mut out);
                return self.write_out(&out);
            }
            self.editor.erase_for_runspace(&mut out);
            if !durable {
                out.extend_from_slice(
                    b"\r\njitsh: warning: the session recording or audit log cannot be written\r\n",
                );
                out.extend_from_slice(&self.prompt);
            }
            self.write_out(&out)?;
            let mut line: Vec<u8> = text.replace('\n', "\r").into_bytes();
            line.push(b'\r');
            self.mode = Mode::Sent;
            self.deadline = Some(tokio::time::Instant::now() + RUN_CONFIRM_WITHIN);
            self.continuations_expected = text.matches('\n').count();
            self.sent_line = text.clone();
            self.line_in_flight = true;
            self.echo = text.replace('\n', "\r\n").into_bytes();
            self.echo.extend_from_slice(b"\r\n");
            self.runspace.send(&line)?;
            return Ok(());
        }
        self.editor.leave_for_message(&mut out);
        out.extend_from_slice(refusal_message(&decision).as_bytes());
        self.editor.begin(&self.prompt);
        self.editor.redraw_below(&mut out);
        self.write_out(&out)
    }

    /// A Purview cmdlet (`*-ElevatedAccess*`): carried out here, against the approval service,
    /// audited and marked in the recording; nothing reaches the runspace.
    async fn purview(
        &mut self,
        text: &str,
        plan: Result<crate::purview::PurviewLine, crate::purview::PurviewError>,
    ) -> Result<(), ShellError> {
        let outcome = match &plan {
            Ok(line) => super::purview::run(line, &mut self.access).await,
            Err(e) => super::purview::Outcome {
                output: String::new(),
                error: Some(super::purview::refused(text, e)),
            },
        };
        let marker = self.recorder.marker(format!(
            "purview {}",
            if outcome.error.is_some() {
                "error"
            } else {
                "ok"
            }
        ));
        let mut ev = event(
            self.access.user(),
            "purview.command",
            &self.session_id,
            if outcome.error.is_some() {
                "error"
            } else {
                "ok"
            },
        );
        ev.details.insert("line".into(), text.to_string().into());
        if let Some(err) = &outcome.error {
            ev.details.insert("error".into(), err.clone().into());
        }
        ev.details.insert("marker".into(), marker.into());
        if self.audit.append(ev).is_err() {
            self.audit_failed = true;
        }
        let mut out = Vec::new();
        self.editor.leave_for_message(&mut out);
        let mut msg = outcome.output;
        if let Some(err) = outcome.error {
            msg.push_str(&err);
        }
        // The text is already escaped value by value; only the line ends change.
        out.extend_from_slice(msg.replace('\n', "\r\n").as_bytes());
        self.editor.begin(&self.prompt);
        self.editor.redraw_below(&mut out);
        self.write_out(&out)
    }

    async fn meta(&mut self, text: &str) -> Result<(), ShellError> {
        let mut msg = String::new();
        match meta::parse(text) {
            Err(e) => msg.push_str(&format!("jitsh: {e}\n")),
            Ok(Meta::Help) => {
                msg.push_str(meta::HELP);
                msg.push('\n');
            }
            Ok(Meta::Quit) => {
                self.quit = true;
                self.runspace.hang_up();
                let mut out = Vec::new();
                self.editor.leave_for_message(&mut out);
                return self.write_out(&out);
            }
            Ok(Meta::Tokens) => msg.push_str(&self.tokens_text()),
            Ok(Meta::Status) => {
                let notices = self.access.poll().await;
                for n in notices {
                    msg.push_str(&format!("jitsh: {n}\n"));
                }
                if let Some(n) = self.access.control_notice().await {
                    msg.push_str(&format!("jitsh: {n}\n"));
                }
                if self.access.pending().is_empty() {
                    msg.push_str("no pending requests\n");
                }
                for p in self.access.pending() {
                    msg.push_str(&format!("request {}  {}  {}\n", p.id, p.task, p.status));
                }
                msg.push_str(&self.tokens_text());
                if let Some(path) = super::logfile::current() {
                    msg.push_str(&format!("warnings and diagnostics: {}\n", path.display()));
                }
                if self.audit_failed {
                    msg.push_str("warning: the audit log could not be written\n");
                }
            }
            Ok(Meta::Request(spec)) => {
                // The gate's note that it filed a request: about the session, naming the
                // request (the service's own `request.create` is the request's record).
                let mut ev = event(self.access.user(), "gate.request", &self.session_id, "ok");
                ev.details.insert("task".into(), spec.task.clone().into());
                match self.access.request(&spec).await {
                    Ok(id) => {
                        ev.details.insert("request".into(), id.clone().into());
                        msg.push_str(&format!(
                            "jitsh: request {id} for `{}` sent; its token will be used as soon as \
                             it is approved\n",
                            spec.task
                        ));
                    }
                    Err(e) => {
                        ev.outcome = "error".into();
                        msg.push_str(&format!("jitsh: the request was not sent: {e}\n"));
                    }
                }
                if self.audit.append(ev).is_err() {
                    self.audit_failed = true;
                }
                self.recorder.marker(format!("meta request {}", spec.task));
            }
        }
        let mut out = Vec::new();
        self.editor.leave_for_message(&mut out);
        // Messages carry text from the service and the line (task names, errors): every line is
        // escaped so nothing in it can move the cursor or reorder what the terminal draws.
        out.extend_from_slice(crate::text::escape_lines(&msg, "\r\n").as_bytes());
        self.editor.begin(&self.prompt);
        self.editor.redraw_below(&mut out);
        self.write_out(&out)
    }

    fn tokens_text(&self) -> String {
        let lines = self.access.token_lines();
        if lines.is_empty() {
            return "no tokens held\n".into();
        }
        lines.iter().map(|l| format!("token from {l}\n")).collect()
    }

    /// Show notices (a request was approved, ...) without disturbing the line being edited.
    fn notify(&mut self, notices: &[String]) -> Result<(), ShellError> {
        if notices.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        let editing = self.mode == Mode::Editing;
        if editing {
            self.editor.leave_for_message(&mut out);
        } else {
            out.extend_from_slice(b"\r\n");
        }
        for n in notices {
            let n = crate::text::escape_lines(n, "\r\n");
            out.extend_from_slice(format!("jitsh: {n}\r\n").as_bytes());
        }
        if editing {
            self.editor.redraw_below(&mut out);
        }
        self.write_out(&out)
    }
}

/// Why [`Session::relay`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Relayed {
    /// Pass-through is over for now (the mode changed, or input or output needs the runtime).
    Handover,
    /// A signal, the runspace's exit or the request poll: the runtime delivers it.
    Runtime,
    /// The editor submitted a line (to be gated), with the keys typed after it.
    Submitted(String, Vec<u8>),
    /// The admin's terminal is gone.
    KeysEnded,
}

/// The session's signals, written to the runspace's wake socket as well (one byte each), so
/// the pass-through's `poll(2)` wakes for them; the runtime's own handlers still run and
/// deliver them. Unregistered when dropped.
struct SignalWake(Vec<signal_hook::SigId>);

impl SignalWake {
    fn register(wake: &super::pty::Wake) -> SignalWake {
        let mut ids = Vec::new();
        for sig in [
            signal_hook::consts::SIGWINCH,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            match wake
                .writer()
                .and_then(|w| signal_hook::low_level::pipe::register(sig, w))
            {
                Ok(id) => ids.push(id),
                Err(e) => tracing::warn!("signal {sig} will not wake the pass-through: {e}"),
            }
        }
        SignalWake(ids)
    }
}

impl Drop for SignalWake {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// The signals a session acts on.
#[derive(Debug, Clone, Copy)]
enum Sig {
    Winch,
    Term,
    Hup,
}

/// The three signals, watched by a task of their own and handed over through one channel:
/// polled on every turn of the session's loop, three signal streams cost a keystroke more
/// instructions than reading and sending it.
struct Signals {
    rx: mpsc::Receiver<Sig>,
    task: tokio::task::JoinHandle<()>,
}

impl Signals {
    fn listen() -> std::io::Result<Signals> {
        let mut winch = signal(SignalKind::window_change())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    Some(()) = winch.recv() => Sig::Winch,
                    Some(()) = term.recv() => Sig::Term,
                    Some(()) = hup.recv() => Sig::Hup,
                    else => return,
                };
                if tx.send(sig).await.is_err() {
                    return;
                }
            }
        });
        Ok(Signals { rx, task })
    }

    /// The next signal; pending for ever once none can come.
    async fn recv(&mut self) -> Sig {
        match self.rx.recv().await {
            Some(sig) => sig,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The admin's keystrokes.
enum Keys {
    /// The terminal, opened again by its name: an open file of jitsh's own, so reading it
    /// without blocking, on the event loop, leaves the parent shell's stdin as it was. The
    /// buffer is kept: zeroing a fresh one per read was a third of a keystroke's instructions.
    Tty(tokio::net::unix::pipe::Receiver, Box<[u8]>),
    /// Read on a thread of its own where the terminal cannot be opened by name.
    Thread(mpsc::Receiver<Vec<u8>>),
}

impl Keys {
    fn open() -> Keys {
        match open_tty() {
            Ok(rx) => Keys::Tty(rx, vec![0u8; 4096].into_boxed_slice()),
            Err(e) => {
                tracing::debug!("keystrokes are read on a thread: {e}");
                Keys::Thread(stdin_channel())
            }
        }
    }

    /// The terminal's descriptor, when keys are read from it on the session's own thread.
    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match self {
            Keys::Tty(rx, _) => Some(std::os::fd::AsFd::as_fd(rx)),
            Keys::Thread(_) => None,
        }
    }

    /// The keys waiting now, read without the runtime (see [`super::pty::Output::read_now`]
    /// on the runtime's readiness afterwards).
    fn read_now(&mut self) -> KeysNow {
        let Keys::Tty(rx, buf) = self else {
            return KeysNow::Nothing;
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(rx);
        loop {
            match nix::unistd::read(fd, buf) {
                Ok(0) => return KeysNow::Ended,
                Ok(n) => return KeysNow::Data(buf.get(..n).unwrap_or_default().to_vec()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return KeysNow::Nothing,
                Err(_) => return KeysNow::Ended,
            }
        }
    }

    /// The next keystrokes; `None` once the terminal is gone.
    async fn recv(&mut self) -> Option<Vec<u8>> {
        match self {
            Keys::Thread(rx) => rx.recv().await,
            // tokio's `read` clears the readiness after a short read (it took all there was),
            // so no read that finds nothing follows each keystroke.
            Keys::Tty(rx, buf) => loop {
                match rx.read(buf).await {
                    Ok(0) => return None,
                    Ok(n) => return Some(buf.get(..n).unwrap_or_default().to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return None,
                }
            },
        }
    }
}

/// What [`Keys::read_now`] found.
enum KeysNow {
    Data(Vec<u8>),
    Nothing,
    Ended,
}

/// Standard input's terminal, opened again for non-blocking reads.
fn open_tty() -> std::io::Result<tokio::net::unix::pipe::Receiver> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = nix::unistd::ttyname(std::io::stdin())?;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    tokio::net::unix::pipe::Receiver::from_file_unchecked(tty)
}

/// Keystrokes from stdin, read on a thread of its own (a blocking read cannot be cancelled;
/// the thread ends with the process).
fn stdin_channel() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    let _ = std::thread::Builder::new()
        .name("jitsh-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .blocking_send(buf.get(..n).unwrap_or_default().to_vec())
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
    rx
}
