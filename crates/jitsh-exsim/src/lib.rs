//! `jitsh-exsim`: a simulated Exchange Management runspace for demos and tests.
//!
//! It behaves like an interactive PowerShell session on a line-buffered stdin (when stdin is a
//! terminal, the PTY line discipline does echo and editing; the runspace never uses raw mode):
//! it reads a line, runs it against a demo organisation (contoso.com) kept in a JSON state file,
//! prints PowerShell-style tables, lists, errors and confirmation prompts, and prompts again.
//!
//! # Shell integration markers (the gate parses these)
//!
//! Unless `--no-marker` is given, the prompt is framed by OSC 133 sequences (`ESC` = 0x1b,
//! `BEL` = 0x07):
//!
//! | bytes | when |
//! | --- | --- |
//! | `ESC ] 133 ; D ; <status> BEL` | a submitted line finished; `<status>` is `0` or `1` (any error, unknown command, interrupted) |
//! | `ESC ] 133 ; A BEL` | the prompt starts |
//! | `PS C:\> ` | the prompt text |
//! | `ESC ] 133 ; B BEL` | the prompt ended; the runspace is reading a command line |
//! | `ESC ] 133 ; C BEL` | the line just read runs now (before its first output) |
//! | `ESC ] 133 ; A ; k=c BEL` | with `--mark-continuation`: before the `>> ` continuation prompt |
//! | `ESC ] 133 ; P BEL` | jitsh extension: the next input line is secret (a password) — do not record or log it; echo is off until that newline |
//!
//! The first prompt has no `D`. Every line read at the prompt, including an empty one, is
//! followed by one `C` (it runs) and exactly one `D`. Confirmation prompts (`[Y] Yes  [A] Yes
//! to All ...`) are not framed: the gate sees the runspace is busy because no `B` has arrived.
//!
//! # Console-host mode (`--console-host`)
//!
//! Reads input the way PowerShell's console host does (`ConsoleHost.cs`, its input loop): a
//! line PowerShell reads as incomplete ([`complete::incomplete`]) starts *block mode*: the host
//! writes a bare `>> ` (no prompt function, so no prompt markers), adds every further non-empty
//! line to the block without running anything, and runs the whole block on an empty line (if
//! it is still incomplete, block mode goes on). Ctrl-C at any prompt drops the block. An empty
//! line at the normal prompt just prompts again (no `C`). Only a line that runs gets `C`.
//!
//! # Exit and interruption
//!
//! `exit` (status 0), `exit N`, or end of input end the runspace. SIGINT (Ctrl-C) stops the
//! running command (e.g. `Start-Sleep`, `Get-LargeOutput`) and returns to the prompt with
//! status 1; the runspace itself keeps running. Ctrl-C at the prompt is ignored (the terminal
//! has already discarded the half-typed line); Ctrl-C at a confirmation or `Read-Host` cancels
//! the command at once.

mod cmdlets;
pub mod complete;
pub mod format;
pub mod lang;
mod session;
pub mod state;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

pub use cmdlets::cmdlet_names;
use session::{LineResult, Session};
pub use state::{State, StateFile};

/// Sent before the prompt text.
pub const MARK_PROMPT_START: &str = "\x1b]133;A\x07";
/// Sent after the prompt text: the runspace is now reading a command line.
pub const MARK_PROMPT_END: &str = "\x1b]133;B\x07";
/// Sent before a secret prompt (jitsh extension): the next input line must not be recorded.
pub const MARK_SECRET_INPUT: &str = "\x1b]133;P\x07";
/// Sent when the line just read starts running.
pub const MARK_COMMAND_RUNS: &str = "\x1b]133;C\x07";
/// Sent before the continuation prompt with `--mark-continuation`.
pub const MARK_CONTINUATION: &str = "\x1b]133;A;k=c\x07";
/// PowerShell's block-mode prompt.
pub const CONTINUATION_PROMPT: &str = ">> ";
/// The prompt text.
pub const PROMPT: &str = "PS C:\\> ";

/// `ESC ] 133 ; D ; <status> BEL`: the previous line finished with `status`.
pub fn mark_command_done(status: u8) -> String {
    format!("\x1b]133;D;{status}\x07")
}

/// Longest input line accepted; the rest of a longer line is dropped.
const MAX_LINE: u64 = 1 << 20;

/// Why the runspace could not start or keep its state.
#[derive(Debug, thiserror::Error)]
pub enum ExsimError {
    #[error("state file `{path}` could not be read or written: {source}")]
    StateIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state file `{path}` is not valid runspace state: {message}")]
    StateFormat { path: String, message: String },
    #[error("could not install the Ctrl-C handler: {0}")]
    Signal(String),
    #[error("terminal i/o failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Command-line arguments of `jitsh-exsim`.
#[derive(Debug, Parser)]
#[command(
    name = "jitsh-exsim",
    about = "A simulated Exchange Management runspace (PowerShell-like)"
)]
pub struct Args {
    /// State file (default: $JITSH_EXSIM_STATE, else exsim-state.json in $JITSH_STATE or
    /// ~/.local/share/jitsh); created with a demo organisation when missing.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Do not write OSC 133 prompt markers.
    #[arg(long)]
    no_marker: bool,
    /// Read input as PowerShell's console host does: a line PowerShell reads as incomplete
    /// starts block mode (a bare `>> ` prompt; further lines are added; an empty line runs the
    /// block; Ctrl-C drops it).
    #[arg(long)]
    console_host: bool,
    /// With --console-host: write `ESC]133;A;k=c BEL` before `>> `, as jitsh's PowerShell
    /// integration announces a continuation read.
    #[arg(long, requires = "console_host")]
    mark_continuation: bool,
    /// For testing: read WORD in every input line as TEXT (WORD=TEXT, repeatable). Stands in
    /// for a spelling that the gate and PowerShell read differently.
    #[arg(long = "read-as", value_name = "WORD=TEXT", value_parser = parse_read_as)]
    read_as: Vec<(String, String)>,
}

fn parse_read_as(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((word, text)) if !word.is_empty() => Ok((word.to_string(), text.to_string())),
        _ => Err(format!("`{s}` is not WORD=TEXT")),
    }
}

/// How the input loop reads lines.
#[derive(Debug, Clone, Default)]
struct Reading {
    console_host: bool,
    read_as: Vec<(String, String)>,
}

impl Reading {
    fn rewrite(&self, line: String) -> String {
        self.read_as
            .iter()
            .fold(line, |line, (word, text)| line.replace(word.as_str(), text))
    }
}

/// Entry point of the `jitsh-exsim` binary.
pub fn main() -> ExitCode {
    run_args(Args::parse())
}

/// The runspace with parsed arguments (also reached as the hidden `jitsh exsim`).
pub fn run_args(args: Args) -> ExitCode {
    let Some(path) = args
        .state
        .or_else(|| std::env::var_os("JITSH_EXSIM_STATE").map(PathBuf::from))
        .or_else(default_state_file)
    else {
        eprintln!("jitsh-exsim: no state file: pass --state FILE or set JITSH_EXSIM_STATE or HOME");
        return ExitCode::from(3);
    };
    // The state folder may not exist yet on a first run.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("jitsh-exsim: cannot create `{}`: {e}", dir.display());
            return ExitCode::from(3);
        }
    }
    let reading = Reading {
        console_host: args.console_host,
        read_as: args.read_as,
    };
    let mut term = Term::stdio(!args.no_marker);
    term.mark_continuation = args.mark_continuation;
    match run(StateFile::new(path), term, &reading) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("jitsh-exsim: {e}");
            ExitCode::from(3)
        }
    }
}

/// The simulator's state lives with jitsh's other state, never in the current folder (a demo
/// started from a checkout must not change it).
fn default_state_file() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    nonempty("JITSH_STATE")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".local/share/jitsh")))
        .map(|dir| dir.join("exsim-state.json"))
}

/// The read-eval-print loop. Returns the exit status.
fn run(file: StateFile, term: Term, reading: &Reading) -> Result<u8, ExsimError> {
    let state = file.load_or_seed()?;
    let interrupt = Interrupt::install()?;
    let mut session = Session::new(state, file, term, interrupt);
    if reading.console_host {
        return console_host(&mut session, reading);
    }
    let mut last: Option<u8> = None;
    loop {
        session.term.prompt(last)?;
        // Ctrl-C at the prompt is ignored: the terminal already discarded the typed text.
        let Input::Line(line) = session.term.read_line(None)? else {
            return Ok(0);
        };
        let line = reading.rewrite(line);
        session.start_line()?;
        match session.run_line(&line)? {
            LineResult::Done { ok } => last = Some(u8::from(!ok)),
            LineResult::Exit(code) => return Ok(code),
        }
    }
}

/// The input loop of PowerShell's console host (`ConsoleHost.cs`, `InputLoop.Run`): block mode
/// on incomplete input, a bare `>> ` without calling the prompt function, an empty line runs
/// the block, Ctrl-C (a null line) drops it.
fn console_host(session: &mut Session, reading: &Reading) -> Result<u8, ExsimError> {
    let mut last: Option<u8> = None;
    let mut block: Option<String> = None;
    loop {
        // Counted before the prompt is shown: a Ctrl-C sent as soon as the prompt appears
        // may be counted before this thread reads the count after writing it, and would be lost.
        let interrupt = session.interrupt.clone();
        let seen = interrupt.count();
        if block.is_some() {
            session.term.continuation_prompt()?;
        } else {
            session.term.prompt(last)?;
        }
        let stop = move || interrupt.count() != seen;
        let line = match session.term.read_line(Some(&stop))? {
            Input::Line(line) => reading.rewrite(line),
            Input::Interrupted => {
                session.term.write("\n")?;
                block = None;
                continue;
            }
            Input::Eof => return Ok(0),
        };
        let text = if line.trim().is_empty() {
            match block.take() {
                Some(text) => text,
                None => continue,
            }
        } else if let Some(text) = block.as_mut() {
            text.push('\n');
            text.push_str(&line);
            continue;
        } else {
            line
        };
        if complete::incomplete(&text) {
            block = Some(text);
            continue;
        }
        session.start_line()?;
        match session.run_line(&one_line(&text))? {
            LineResult::Done { ok } => last = Some(u8::from(!ok)),
            LineResult::Exit(code) => return Ok(code),
        }
    }
}

/// A block for the one-line engine: a line break continues a line that ends with `|` or `,`
/// (or an open bracket) and separates statements otherwise.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            let joins = out
                .trim_end()
                .ends_with(['|', ',', '(', '{', '[', '`', '&']);
            out.push_str(if joins { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}

/// Counts SIGINTs. A command is interrupted when the count moves while it runs; signals that
/// arrive at the prompt (the kernel already discarded the half-typed line) are ignored.
#[derive(Debug, Clone)]
pub struct Interrupt {
    count: Arc<AtomicU64>,
}

impl Interrupt {
    /// Route SIGINT to a counter (on a small signal thread) instead of killing the process.
    fn install() -> Result<Self, ExsimError> {
        let count = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&count);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("sigint".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    use tokio::signal::unix::{signal, SignalKind};
                    let mut sigint = match signal(SignalKind::interrupt()) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while sigint.recv().await.is_some() {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            })
            .map_err(|e| ExsimError::Signal(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Interrupt { count }),
            Ok(Err(e)) => Err(ExsimError::Signal(e)),
            Err(e) => Err(ExsimError::Signal(e.to_string())),
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// The runspace's terminal: line input, output, markers.
pub struct Term {
    /// Lines from the stdin reader thread; `None` is end of input.
    lines: Receiver<std::io::Result<Option<String>>>,
    /// Set once end of input (or a read error) was seen.
    ended: bool,
    out: Box<dyn Write>,
    markers: bool,
    /// Errors in red, as PowerShell prints them on a terminal.
    color: bool,
    /// Input is a terminal: echo can be switched off for secrets.
    input_tty: bool,
    /// Announce continuation prompts with a marker (`--mark-continuation`).
    mark_continuation: bool,
}

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Term")
            .field("markers", &self.markers)
            .field("color", &self.color)
            .finish()
    }
}

impl Term {
    fn stdio(markers: bool) -> Self {
        use std::io::IsTerminal;
        Term {
            lines: spawn_line_reader(),
            ended: false,
            out: Box::new(std::io::stdout().lock()),
            markers,
            color: std::io::stdout().is_terminal(),
            input_tty: std::io::stdin().is_terminal(),
            mark_continuation: false,
        }
    }

    /// The line just read runs now.
    fn command_runs(&mut self) -> std::io::Result<()> {
        if self.markers {
            self.out.write_all(MARK_COMMAND_RUNS.as_bytes())?;
            self.out.flush()?;
        }
        Ok(())
    }

    /// Block mode's prompt: PowerShell writes a bare `>> ` and calls no prompt function.
    fn continuation_prompt(&mut self) -> std::io::Result<()> {
        if self.markers && self.mark_continuation {
            self.out.write_all(MARK_CONTINUATION.as_bytes())?;
        }
        self.out.write_all(CONTINUATION_PROMPT.as_bytes())?;
        self.out.flush()
    }

    fn prompt(&mut self, last: Option<u8>) -> std::io::Result<()> {
        self.discard_typed_ahead();
        if self.markers {
            if let Some(status) = last {
                self.out.write_all(mark_command_done(status).as_bytes())?;
            }
            self.out.write_all(MARK_PROMPT_START.as_bytes())?;
            self.out.write_all(PROMPT.as_bytes())?;
            self.out.write_all(MARK_PROMPT_END.as_bytes())?;
        } else {
            self.out.write_all(PROMPT.as_bytes())?;
        }
        self.out.flush()
    }

    /// Like PowerShell's console host, drop input typed while the last command ran and that it
    /// did not read, before showing the prompt: only what is typed at the prompt is a command.
    /// (A gate in front of this runspace relies on it: it judges lines typed at the prompt.)
    /// Piped input (scripts, tests) is a queue of commands and is kept.
    fn discard_typed_ahead(&mut self) {
        if !self.input_tty || self.ended {
            return;
        }
        let _ = nix::sys::termios::tcflush(std::io::stdin(), nix::sys::termios::FlushArg::TCIFLUSH);
        loop {
            match self.lines.try_recv() {
                Ok(Ok(Some(_))) => {}
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                // End of input typed ahead still ends the session.
                Ok(Ok(None)) | Ok(Err(_)) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.ended = true;
                    break;
                }
            }
        }
    }

    /// The next input line, without its line ending. With `interrupted`, gives up as soon as
    /// it returns true (Ctrl-C while a cmdlet waits for an answer).
    fn read_line(&mut self, interrupted: Option<&dyn Fn() -> bool>) -> std::io::Result<Input> {
        if self.ended {
            return Ok(Input::Eof);
        }
        loop {
            let next = match interrupted {
                None => self
                    .lines
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(stop) => {
                    if stop() {
                        return Ok(Input::Interrupted);
                    }
                    self.lines.recv_timeout(Duration::from_millis(20))
                }
            };
            match next {
                Ok(Ok(Some(line))) => return Ok(Input::Line(line)),
                Ok(Ok(None)) | Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    return Ok(Input::Eof);
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Read a secret line: echo off first (so nothing typed after the prompt appears can be
    /// echoed), then the marker and prompt; echo is restored even on error.
    fn read_secret(
        &mut self,
        prompt: &str,
        interrupted: &dyn Fn() -> bool,
    ) -> std::io::Result<Input> {
        let line = {
            let _guard = if self.input_tty { EchoOff::new() } else { None };
            if self.markers {
                self.out.write_all(MARK_SECRET_INPUT.as_bytes())?;
            }
            self.out.write_all(prompt.as_bytes())?;
            self.out.flush()?;
            self.read_line(Some(interrupted))?
        };
        // The user's Enter was not echoed.
        self.out.write_all(b"\n")?;
        Ok(line)
    }

    fn write(&mut self, text: &str) -> std::io::Result<()> {
        self.out.write_all(text.as_bytes())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn error(&mut self, text: &str) -> std::io::Result<()> {
        let text = if self.color {
            format!("\x1b[31;1m{text}\x1b[0m\n")
        } else {
            format!("{text}\n")
        };
        self.out.write_all(text.as_bytes())
    }

    fn warning(&mut self, text: &str) -> std::io::Result<()> {
        let text = if self.color {
            format!("\x1b[33;1mWARNING: {text}\x1b[0m\n")
        } else {
            format!("WARNING: {text}\n")
        };
        self.out.write_all(text.as_bytes())
    }
}

/// What waiting for a line produced.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Line(String),
    Eof,
    Interrupted,
}

/// Read stdin lines on a thread so a waiting cmdlet can notice Ctrl-C without a line arriving.
/// The channel has no buffer: the thread reads at most one line ahead of the runspace.
fn spawn_line_reader() -> Receiver<std::io::Result<Option<String>>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(0);
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut input = std::io::stdin().lock();
            loop {
                let line = read_one_line(&mut input);
                let done = !matches!(line, Ok(Some(_)));
                if tx.send(line).is_err() || done {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        // Without a reader the runspace sees a read error at its first prompt.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let _ = tx.send(Err(e));
        return rx;
    }
    rx
}

/// One line without its line ending; `None` at end of input. An overlong line is cut at
/// [`MAX_LINE`] and its rest dropped rather than run as a command.
fn read_one_line(input: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = std::io::Read::take(&mut *input, MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && n as u64 == MAX_LINE {
        let mut sink = Vec::new();
        input.read_until(b'\n', &mut sink)?;
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Echo switched off on stdin; restored on drop.
struct EchoOff {
    saved: nix::sys::termios::Termios,
}

impl EchoOff {
    fn new() -> Option<Self> {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).ok()?;
        Some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}
