//! `jitsh replay` (play a recording, list its markers) and `jitsh sessions` (list recordings
//! with their gate decisions).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::asciicast::{self, Cast, Control, PlayOptions, SessionSummary};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recording to play: a session as `jitsh sessions` lists it (its id, or its file name
    /// in the recordings folder), or the path of an asciicast v2 file.
    pub file: PathBuf,
    /// Folder of recordings where session ids are looked up (default: $JITSH_RECORD_DIR, else
    /// ~/.local/share/jitsh/sessions).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Playback speed factor (2 plays twice as fast).
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub speed: f64,
    /// Cap every pause at this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub idle_limit: Option<f64>,
    /// Print everything before marker N at once, then play in real time from it.
    #[arg(long, value_name = "N")]
    pub at_marker: Option<usize>,
    /// List the markers (index, time, label) instead of playing.
    #[arg(long)]
    pub markers: bool,
    /// Audit log (files or folder) whose `session.end` records vouch for recordings (default:
    /// the `audit` folder beside the recording, when there is one).
    #[arg(long, value_name = "PATH")]
    pub audit: Vec<PathBuf>,
    /// Play a recording even when it does not match the hash its audit record holds.
    #[arg(long)]
    pub ignore_mismatch: bool,
}

/// Compare the recording with the hash its `session.end` record holds. `Err` when it was
/// changed (or cannot be read); a note on stderr when no record vouches for it.
fn check_recording(args: &Args, file: &Path) -> Result<(), String> {
    let logs = if args.audit.is_empty() {
        let beside = file
            .parent()
            .map(|p| p.join("audit"))
            .filter(|p| p.is_dir());
        beside.into_iter().collect()
    } else {
        args.audit.clone()
    };
    if logs.is_empty() {
        eprintln!(
            "jitsh: note: no audit log given (`--audit PATH`), so `{}` is not checked against \
             its session.end record",
            file.display()
        );
        return Ok(());
    }
    let paths = crate::audit::read::expand_paths(&logs).map_err(|e| e.to_string())?;
    let found = crate::audit::recordings::vouching_for(&paths, file).map_err(|e| e.to_string())?;
    let Some(v) = found else {
        eprintln!(
            "jitsh: note: no session.end record in the audit log vouches for `{}` (a session \
             still running, or one that was killed): it cannot be checked",
            file.display()
        );
        return Ok(());
    };
    let here = crate::audit::recordings::Vouched {
        recording: file.to_path_buf(),
        ..v
    };
    match crate::audit::recordings::check(&here, None) {
        None => Ok(()),
        Some(f) => Err(format!("{} (audit record {})", f.reason, f.at)),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct SessionsArgs {
    /// Folder of recordings (default: $JITSH_RECORD_DIR, else ~/.local/share/jitsh/sessions).
    pub dir: Option<PathBuf>,
    /// Sessions with refused lines first.
    #[arg(long)]
    pub blocked: bool,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> ExitCode {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return super::fail(format!(
            "--speed `{}` must be a positive number",
            args.speed
        ));
    }
    if let Some(limit) = args.idle_limit.filter(|l| !(l.is_finite() && *l > 0.0)) {
        return super::fail(format!(
            "--idle-limit `{limit}` must be a positive number of seconds"
        ));
    }
    let file = match find_recording(&args.file, args.dir.clone().or_else(default_record_dir)) {
        Ok(file) => file,
        Err(message) => return super::fail(message),
    };
    if let Err(message) = check_recording(&args, &file) {
        if !args.ignore_mismatch {
            return super::fail(format!(
                "{message}; not playing it (`--ignore-mismatch` plays it anyway)"
            ));
        }
        eprintln!("jitsh: warning: {message}");
    }
    let cast = match load(&file) {
        Ok(cast) => cast,
        Err(message) => return super::fail(message),
    };
    if let Some(torn) = &cast.torn {
        eprintln!(
            "jitsh: recording `{}` ends in a cut-off line (line {}); playing up to it",
            file.display(),
            torn.line
        );
    }
    if args.markers {
        for m in asciicast::markers(&cast) {
            // Labels come from the file, which anyone may have written: escaped.
            println!(
                "{:>4}  {}  {}",
                m.index,
                clock(m.time_us),
                crate::text::escape(&m.label)
            );
        }
        return ExitCode::SUCCESS;
    }
    let options = PlayOptions {
        speed: args.speed,
        idle_limit: args.idle_limit,
        at_marker: args.at_marker,
    };
    let mut stdout = std::io::stdout().lock();
    let keys = Keys::start();
    let result = match &keys {
        Some(keys) => asciicast::play(&cast, &options, &mut stdout, &mut |d| keys.wait(d)),
        None => asciicast::play(&cast, &options, &mut stdout, &mut |d| {
            std::thread::sleep(d);
            Control::Continue
        }),
    };
    drop(keys);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}

pub fn sessions(args: SessionsArgs) -> ExitCode {
    let dir = match args.dir.or_else(default_record_dir) {
        Some(dir) => dir,
        None => return super::fail("no recordings folder: pass DIR or set JITSH_RECORD_DIR"),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            return super::fail(format!(
                "recordings folder `{}` could not be read: {e}; pass DIR or set JITSH_RECORD_DIR",
                dir.display()
            ))
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cast") && p.is_file())
        .collect();
    files.sort();
    let mut summaries = Vec::new();
    for path in files {
        match load(&path) {
            Ok(cast) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                summaries.push(SessionSummary::of(name, &cast));
            }
            Err(message) => eprintln!("jitsh: skipped: {message}"),
        }
    }
    summaries.sort_by(|a, b| {
        let first = if args.blocked {
            (a.blocked == 0).cmp(&(b.blocked == 0))
        } else {
            std::cmp::Ordering::Equal
        };
        first
            .then(a.started.cmp(&b.started))
            .then(a.file.cmp(&b.file))
    });
    if args.json {
        return match serde_json::to_string(&summaries) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => super::fail(format!("could not write JSON: {e}")),
        };
    }
    // The first column is what `jitsh replay` takes: the session id (the file name without
    // `.cast`), alone in its cell so it can be copied.
    let rows: Vec<[String; 7]> = summaries
        .iter()
        .map(|s| {
            [
                crate::text::escape(s.file.strip_suffix(".cast").unwrap_or(&s.file)).into_owned(),
                s.user
                    .as_deref()
                    .map_or_else(|| "-".into(), |u| crate::text::escape(u).into_owned()),
                s.started.map(started).unwrap_or_else(|| "-".into()),
                clock(s.duration_us),
                s.allowed.to_string(),
                s.blocked.to_string(),
                if s.torn { "cut off" } else { "" }.to_owned(),
            ]
        })
        .collect();
    let header = [
        "SESSION", "USER", "STARTED", "DURATION", "ALLOWED", "REFUSED", "NOTE",
    ]
    .map(str::to_owned);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    ExitCode::SUCCESS
}

/// The recording `arg` names: an existing file, else a session id or file name in `dir`.
fn find_recording(arg: &Path, dir: Option<PathBuf>) -> Result<PathBuf, String> {
    if arg.is_file() {
        return Ok(arg.to_path_buf());
    }
    let bare = arg.components().count() == 1;
    if let Some(dir) = dir.as_ref().filter(|_| bare) {
        let with_ext = {
            let mut name = arg.as_os_str().to_os_string();
            name.push(".cast");
            name
        };
        for candidate in [dir.join(arg), dir.join(with_ext)] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(match dir {
        Some(dir) if bare => format!(
            "no recording `{}`: not a file here, and no such session in `{}` (`jitsh sessions` lists them; --dir DIR looks elsewhere)",
            arg.display(),
            dir.display()
        ),
        _ => format!(
            "recording `{}` could not be read: no such file",
            arg.display()
        ),
    })
}

fn default_record_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("JITSH_RECORD_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share/jitsh/sessions"))
}

/// Read and decode a recording; a character cut by a kill becomes U+FFFD, never an error.
fn load(path: &Path) -> Result<Cast, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("recording `{}` could not be read: {e}", path.display()))?;
    asciicast::decode(&String::from_utf8_lossy(&bytes))
        .map_err(|e| format!("recording `{}`: {e}", path.display()))
}

/// `MM:SS.mmm`, or `H:MM:SS` past an hour.
fn clock(time_us: u64) -> String {
    let secs = time_us / 1_000_000;
    let ms = (time_us % 1_000_000) / 1000;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{:02}:{:02}.{ms:03}", secs / 60, secs % 60)
    }
}

fn started(unix: i64) -> String {
    // Years past 9999 would print with a sign; the raw seconds say more then.
    crate::rfc3339::from_unix(unix)
        .filter(|t| (0..=9999).contains(&chrono::Datelike::year(t)))
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// Keyboard control while playing on a terminal: space pauses/resumes, `]` jumps to the next
/// marker, `q` (or Ctrl-C) quits. The terminal is put in non-canonical, no-echo mode and
/// restored on drop.
struct Keys {
    rx: Receiver<u8>,
    saved: nix::sys::termios::Termios,
}

impl Keys {
    fn start() -> Option<Keys> {
        use nix::sys::termios::{
            tcgetattr, tcsetattr, LocalFlags, SetArg, SpecialCharacterIndices,
        };
        use std::io::IsTerminal;
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut keys = saved.clone();
        keys.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
        keys.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        keys.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        tcsetattr(&stdin, SetArg::TCSANOW, &keys).ok()?;
        let (tx, rx) = std::sync::mpsc::channel();
        // The reader thread ends with the process; it only forwards bytes.
        std::thread::spawn(move || {
            use std::io::Read;
            let mut byte = [0u8; 1];
            while let Ok(1) = std::io::stdin().read(&mut byte) {
                if tx.send(byte[0]).is_err() {
                    break;
                }
            }
        });
        Some(Keys { rx, saved })
    }

    fn wait(&self, delay: Duration) -> Control {
        let mut paused = false;
        loop {
            let key = if paused {
                self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                self.rx.recv_timeout(delay)
            };
            match key {
                Err(RecvTimeoutError::Timeout) => return Control::Continue,
                // No keyboard any more: play on without control.
                Err(RecvTimeoutError::Disconnected) => {
                    if !paused {
                        std::thread::sleep(delay);
                    }
                    return Control::Continue;
                }
                Ok(b'q' | 0x03) => return Control::Quit,
                Ok(b']') => return Control::NextMarker,
                Ok(b' ') => {
                    if paused {
                        return Control::Continue;
                    }
                    paused = true;
                }
                Ok(_) => {}
            }
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys")
    }
}
