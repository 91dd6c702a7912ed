//! `jitsh shell` (an interactive gated session) and `jitsh exec` (one gated line).

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use crate::policy::Effect;
use crate::shell::access::{Access, AccessConfig};
use crate::shell::local_service::LocalService;
use crate::shell::osc::{Marker, Piece, Scanner};
use crate::shell::{self, ShellConfig};

/// Options shared by `shell` and `exec`.
#[derive(Debug, clap::Args)]
pub(crate) struct GateOpts {
    /// Policy folder. Default: `policies` in the settings (/etc/jitsh/config.toml,
    /// ~/.config/jitsh/config.toml), else the demo policies of this build.
    #[arg(
        long,
        value_name = "DIR",
        env = "JITSH_POLICIES",
        hide_env_values = true
    )]
    policies: Option<PathBuf>,
    /// Approval service URL (for `:request`, token pick-up and revocations).
    #[arg(long, value_name = "URL", env = "JITSH_SERVER", hide_env_values = true)]
    server: Option<String>,
    /// Session user (default: $JITSH_USER, else the login name). With an approval service it
    /// must be the user the credential belongs to (default: that user).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Approval token file to use (repeatable).
    #[arg(long = "token", value_name = "FILE")]
    tokens: Vec<PathBuf>,
    /// Public key file of the approval service that signs tokens (repeatable, for key
    /// rotation); usually the service's STATE/signing.pub. Default: the keys `jitsh login`
    /// stored.
    #[arg(long = "trust-key", value_name = "FILE")]
    trust_keys: Vec<PathBuf>,
    /// Clock skew tolerated on token validity, in seconds (at most 300).
    #[arg(long, default_value = super::common::DEFAULT_SKEW_SECS, value_name = "SECONDS",
          value_parser = super::common::parse_skew)]
    skew: u32,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShellArgs {
    #[command(flatten)]
    gate: GateOpts,
    /// Folder for session recordings (default: $JITSH_RECORD_DIR, else
    /// ~/.local/share/jitsh/sessions).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Without --server, jitsh starts an approval service on loopback in a process of its own
    /// (state and its log in $JITSH_STATE or ~/.local/share/jitsh/local-service); this turns
    /// that off, so lines that need approval are simply refused.
    #[arg(long)]
    no_service: bool,
    /// The runspace command (default: jitsh-exsim next to jitsh).
    #[arg(last = true, value_name = "RUNSPACE")]
    runspace: Vec<OsString>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    #[command(flatten)]
    gate: GateOpts,
    /// The runspace command (default: jitsh-exsim next to jitsh).
    #[arg(long, value_name = "PROGRAM")]
    runspace: Option<OsString>,
    /// Folder whose `audit/` log records the decision when no approval service is configured
    /// (default: $JITSH_RECORD_DIR, else ~/.local/share/jitsh/sessions).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// The line to run (words are joined with spaces).
    #[arg(last = true, required = true, value_name = "LINE")]
    line: Vec<String>,
}

pub fn shell(args: ShellArgs) -> ExitCode {
    let runspace = if args.runspace.is_empty() {
        match default_runspace() {
            Ok(r) => r,
            Err(e) => return super::fail(e),
        }
    } else {
        args.runspace
    };
    let Some(record_dir) = record_dir(args.record) else {
        return super::fail("no recording folder: pass `--record DIR` or set JITSH_RECORD_DIR");
    };
    // Lines piped in (`echo Get-Mailbox | jitsh shell`) are gated and run one by one, as `exec`
    // runs them (each decision recorded as exec records it); there is no terminal to edit on or
    // to record.
    if !std::io::stdin().is_terminal() {
        return piped(args.gate, &runspace, record_dir);
    }
    let multiline = runspace.first().is_some_and(is_powershell);
    let runspace = if multiline {
        with_prompt_markers(runspace)
    } else {
        runspace
    };
    let mut access = match access_config(args.gate) {
        Ok(a) => a,
        Err(e) => return super::fail(e),
    };
    // Policies that do not load end the start here, with how to name another folder, rather
    // than a warning about the approval service followed by the same failure.
    if let Err(e) = check_policies(&access) {
        return super::fail(e);
    }
    // Kept alive for the whole session; dropping it stops the service cleanly.
    let _local = if access.server.is_none() && !args.no_service {
        match start_local_service(&mut access) {
            Ok(local) => Some(local),
            Err(e) => {
                // Fail closed but stay useful: without a service, lines that need approval are
                // refused and standing access still works.
                eprintln!(
                    "jitsh: warning: {e}; this session runs without an approval service (lines that need approval are refused; pass --server URL to use a running one)"
                );
                None
            }
        }
    } else {
        None
    };
    if let Err(e) = require_trust(&access) {
        return super::fail(e);
    }
    let spool_dir = _local.as_ref().map(|l| l.state.join("spool"));
    let config = ShellConfig {
        multiline,
        runspace,
        access,
        record_dir,
        spool_dir,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    match rt.block_on(shell::run(config)) {
        Ok(status) => exit_code(status),
        Err(e) => super::fail(e),
    }
}

/// `--record`, else $JITSH_RECORD_DIR, else ~/.local/share/jitsh/sessions.
fn record_dir(arg: Option<PathBuf>) -> Option<PathBuf> {
    arg.or_else(|| std::env::var_os("JITSH_RECORD_DIR").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/jitsh/sessions"))
        })
}

/// Record a decision of `exec` (or of a piped line): to the approval service when one is
/// configured, else to the local chained log in `dir/audit`, exactly as the shell records its
/// lines. `user` is the user the session runs as.
fn audit_exec(
    config: &AccessConfig,
    dir: &std::path::Path,
    session: &str,
    user: &str,
    line: &str,
    what: Recorded<'_>,
) -> Result<(), String> {
    let sink = shell::SessionAudit::open(
        dir,
        None,
        session,
        user,
        config.server.clone().zip(config.credential.clone()),
    )
    .map_err(|e| e.to_string())?;
    let event = match what {
        Recorded::Decision(d) => {
            crate::audit::decision::event(user, session, line, d, "exec", shell::now_rfc3339())
        }
        Recorded::Purview(code) => {
            let outcome = if code == 0 { "ok" } else { "error" };
            let mut ev = shell::event(user, "purview.command", session, outcome);
            ev.details.insert("line".into(), line.into());
            ev.details.insert("via".into(), "exec".into());
            ev
        }
    };
    let appended = sink.append(event).map_err(|e| e.to_string());
    let closed = sink.close();
    appended?;
    closed
}

pub fn exec(args: ExecArgs) -> ExitCode {
    let line = args.line.join(" ");
    let program = match args
        .runspace
        .map(|p| Ok(vec![p]))
        .unwrap_or_else(default_runspace)
    {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let config = match access_config(args.gate) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    if let Err(e) = check_policies(&config).and_then(|()| require_trust(&config)) {
        return super::fail(e);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    let mut access = match Access::load(&config) {
        Ok(access) => access,
        Err(e) => return super::fail(e),
    };
    // With an approval service, the session runs as the credential's user.
    if let Err(e) = rt.block_on(access.bind_identity()) {
        return super::fail(e);
    }
    let Some(dir) = record_dir(args.record) else {
        return super::fail(
            "no folder for the audit log: pass `--record DIR` or set JITSH_RECORD_DIR",
        );
    };
    let session = shell::new_session_id();
    let record = |line: &str, user: &str, what: Recorded<'_>| {
        audit_exec(&config, &dir, &session, user, line, what)
    };
    match gate_and_run(&rt, &mut access, &program, &line, &record) {
        Ok(Gated::Ran(status) | Gated::Refused(status)) => exit_code(status),
        Err(e) => super::fail(e),
    }
}

/// `jitsh shell` with stdin not a terminal: each line is gated and run as `exec` runs it. The
/// first refused line stops the input (later lines may depend on it) with exec's status: 1
/// approval needed, 2 denied, 3 incomplete or not runnable. Otherwise the status is the last
/// line's.
fn piped(gate: GateOpts, program: &[OsString], record_dir: PathBuf) -> ExitCode {
    let config = match access_config(gate) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    if let Err(e) = check_policies(&config).and_then(|()| require_trust(&config)) {
        return super::fail(e);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    let mut access = match Access::load(&config) {
        Ok(access) => access,
        Err(e) => return super::fail(e),
    };
    // With an approval service, the session runs as the credential's user.
    if let Err(e) = rt.block_on(access.bind_identity()) {
        return super::fail(e);
    }
    // One session for the whole input, so its decisions can be found together.
    let session = shell::new_session_id();
    let record = |line: &str, user: &str, what: Recorded<'_>| {
        audit_exec(&config, &record_dir, &session, user, line, what)
    };
    let mut status = 0;
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => return super::fail(format!("input line {} could not be read: {e}", n + 1)),
        };
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if text.starts_with(':') {
            eprintln!("jitsh: input line {}: meta-commands such as `{text}` need an interactive shell; use `jitsh request`, `jitsh requests`, `jitsh tokens`", n + 1);
            return ExitCode::from(3);
        }
        match gate_and_run(&rt, &mut access, program, &line, &record) {
            Ok(Gated::Ran(s)) => status = s,
            Ok(Gated::Refused(s)) => {
                eprintln!(
                    "jitsh: input line {} was refused; the lines after it were not run",
                    n + 1
                );
                return exit_code(s);
            }
            Err(e) => return super::fail(format!("input line {}: {e}", n + 1)),
        }
    }
    exit_code(status)
}

/// What became of a gated line.
#[derive(Debug)]
enum Gated {
    /// The runspace ran it; its status.
    Ran(i32),
    /// The gate refused it: 1 approval needed, 2 denied.
    Refused(i32),
}

/// What a line of exec or piped input left to record.
#[derive(Debug, Clone, Copy)]
enum Recorded<'d> {
    /// The gate's decision, recorded before anything runs.
    Decision(&'d crate::gate::LineDecision),
    /// A Purview cmdlet the gate carried out, with its status (0 done).
    Purview(u8),
}

/// What records a line (the line, the session's user, what to record).
type Record<'a> = dyn Fn(&str, &str, Recorded<'_>) -> Result<(), String> + 'a;

/// Gate one line, record the decision, and, if it is allowed, run it through a fresh runspace;
/// a refusal is printed with the command that asks for access.
fn gate_and_run(
    rt: &tokio::runtime::Runtime,
    access: &mut Access,
    program: &[OsString],
    line: &str,
    record: &Record<'_>,
) -> Result<Gated, String> {
    // Purview's own cmdlets are carried out by the gate; they never reach the runspace. The
    // service audits what they do; the gate records the line and its outcome, as the shell does.
    if let Some(code) = rt.block_on(shell::purview::exec_line(line, access)) {
        record(line, access.user(), Recorded::Purview(code)).map_err(|e| {
            format!("the command ran but could not be recorded in the audit log: {e}")
        })?;
        return Ok(if code == 0 {
            Gated::Ran(0)
        } else {
            Gated::Refused(i32::from(code))
        });
    }
    let mut checked = rt.block_on(access.check(line));
    // A line that needs approval may be covered by a request approved since (Purview's flow:
    // New-ElevatedAccessRequest, approval, then the task): take up those tokens and decide again.
    if checked.decision.decision == Effect::Approval && access.has_service() {
        for notice in rt.block_on(access.adopt_approved()) {
            eprintln!("jitsh: {}", crate::text::escape(&notice));
        }
        checked = rt.block_on(access.check(line));
        // Shown only: with approval control disabled the line still needs its token.
        if checked.decision.decision == Effect::Approval {
            if let Some(notice) = rt.block_on(access.control_notice()) {
                eprintln!("jitsh: {}", crate::text::escape(&notice));
            }
            let filed = rt.block_on(access.request_as_system_account(&checked.decision));
            if !filed.is_empty() {
                for notice in filed {
                    eprintln!("jitsh: {}", crate::text::escape(&notice));
                }
                checked = rt.block_on(access.check(line));
            }
        }
    }
    let d = checked.decision;
    // No record, no run: every decision is audited before anything else happens.
    record(line, access.user(), Recorded::Decision(&d)).map_err(|e| {
        format!("the decision could not be recorded, so the line does not run: {e}")
    })?;
    if d.incomplete {
        return Err(
            "the line is incomplete: finish it (a closing bracket or quote is missing)".into(),
        );
    }
    match d.decision {
        Effect::Allow => {}
        Effect::Approval => {
            eprint!("{}", shell::exec_refusal_message(&d));
            return Ok(Gated::Refused(1));
        }
        Effect::Deny => {
            eprint!("{}", shell::exec_refusal_message(&d));
            return Ok(Gated::Refused(2));
        }
    }
    run_once(program, line).map(Gated::Ran).map_err(|e| {
        format!(
            "the runspace `{}` could not run the line: {e}",
            program
                .iter()
                .map(|p| p.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        )
    })
}

/// Run one line through a fresh runspace over pipes: the line, then end-of-input. Prompts and
/// their markers are left out of the output; the status is the command's (`133;D`), else the
/// runspace's.
fn run_once(program: &[OsString], line: &str) -> std::io::Result<i32> {
    let (cmd, args) = program
        .split_first()
        .ok_or_else(|| std::io::Error::other("no runspace program"))?;
    let mut command = std::process::Command::new(cmd);
    // The runspace runs the admin's code: it never sees the service credential.
    for secret in crate::shell::pty::SECRET_ENV {
        command.env_remove(secret);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A runspace that exits without reading is not an error here: its status tells.
        let _ = stdin.write_all(format!("{line}\n").as_bytes());
    }
    let mut scanner = Scanner::new();
    let mut in_prompt = false;
    let mut command_status = None;
    let mut out = std::io::stdout().lock();
    if let Some(mut stdout) = child.stdout.take() {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for piece in scanner.feed(buf.get(..n).unwrap_or_default()) {
                match piece {
                    Piece::Bytes(b) if !in_prompt => out.write_all(&b)?,
                    Piece::Bytes(_) => {}
                    Piece::Marker(Marker::PromptStart) => in_prompt = true,
                    Piece::Marker(Marker::PromptEnd) => in_prompt = false,
                    Piece::Marker(Marker::CommandDone(s)) => command_status = s.or(command_status),
                    Piece::Marker(_) => {}
                }
            }
        }
        out.write_all(&scanner.finish())?;
        out.flush()?;
    }
    let status = child.wait()?;
    let process = {
        use std::os::unix::process::ExitStatusExt;
        status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1)
    };
    Ok(if process == 0 {
        command_status.unwrap_or(0)
    } else {
        process
    })
}

/// The PowerShell side of jitsh's shell integration (docs/shell.md shows it laid out):
/// PSReadLine is removed (jitsh does the line editing; PSReadLine would redraw the line itself);
/// `prompt` frames the prompt with OSC 133 markers (`D` with the last status, `A`, the usual
/// `PS path> ` text, `B`) and notes that a prompt was shown; `PSConsoleHostReadLine`, which the
/// console host calls for every line it reads, reads the whole command (more lines while
/// PowerShell's own parser calls it incomplete, each announced by `A;k=c`), writes `C` once
/// the command is complete and will run, and refuses to read at the host's bare `>> ` block-mode
/// prompt (no prompt since the last read): it writes `A;k=s` and returns `$null`, which drops
/// the block as Ctrl-C does.
const PWSH_PROMPT_SETUP: &str = "Remove-Module PSReadLine -ErrorAction SilentlyContinue; \
function global:prompt { $s = if ($?) { 0 } else { 1 }; $e = [char]27; $b = [char]7; \
$global:JitshPrompted = $true; \
\"$e]133;D;$s$b$e]133;A$b\" + \"PS $($executionContext.SessionState.Path.CurrentLocation)> \" + \"$e]133;B$b\" }; \
function global:PSConsoleHostReadLine { $e = [char]27; $b = [char]7; \
if (-not $global:JitshPrompted) { [Console]::Write(\"$e]133;A;k=s$b\"); return $null }; \
$global:JitshPrompted = $false; $text = [Console]::ReadLine(); \
while ($null -ne $text) { $errors = $null; \
$null = [System.Management.Automation.Language.Parser]::ParseInput($text, [ref]$null, [ref]$errors); \
if (-not ($errors | Where-Object IncompleteInput)) { [Console]::Write(\"$e]133;C$b\"); return $text }; \
[Console]::Write(\"$e]133;A;k=c$b>> \"); $more = [Console]::ReadLine(); \
if ($null -eq $more) { break }; $text += \"`n\" + $more }; \
return $null }";

/// Whether the runspace program is PowerShell (`pwsh`, `powershell`).
fn is_powershell(program: &OsString) -> bool {
    let name = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.starts_with("pwsh") || name.starts_with("powershell")
}

/// Add the prompt setup to a PowerShell command line unless it already runs a command.
fn with_prompt_markers(mut argv: Vec<OsString>) -> Vec<OsString> {
    let runs_something = argv.iter().skip(1).any(|a| {
        let a = a.to_string_lossy().to_ascii_lowercase();
        matches!(
            a.as_str(),
            "-c" | "-f" | "-file" | "-e" | "-ec" | "-encodedcommand" | "-cwa"
        ) || a.starts_with("-com")
    });
    if !runs_something {
        argv.push("-NoExit".into());
        argv.push("-Command".into());
        argv.push(PWSH_PROMPT_SETUP.into());
    }
    argv
}

/// Start the local approval service and point the session at it.
fn start_local_service(access: &mut AccessConfig) -> Result<LocalService, String> {
    let policies = crate::policy::load_dir(&access.policies_dir).map_err(|errors| {
        format!(
            "the policies in `{}` were not loaded: {}",
            access.policies_dir.display(),
            errors.to_string().replace('\n', "; ")
        )
    })?;
    let local = LocalService::start(&access.policies_dir, &policies, &access.user)
        .map_err(|e| e.to_string())?;
    eprint!("{}", local.banner());
    access.server = Some(local.url.clone());
    access.credential = Some(local.credential.clone());
    access.trust_keys.push(local.trust_key());
    Ok(local)
}

/// A session that talks to an approval service must be able to verify its tokens; say so at
/// start, not after a request has been approved. Token files given without a trusted key are an
/// error; with none given, standing access still works (the pinned smoke path runs `exec
/// --server URL` alone), so the session starts and says at once that no token can count.
fn require_trust(access: &AccessConfig) -> Result<(), String> {
    match &access.server {
        Some(server) if access.trust_keys.is_empty() => {
            if access.token_files.is_empty() {
                eprintln!(
                    "jitsh: warning: {}; until then only standing access runs",
                    super::login::no_trusted_key(Some(server))
                );
                Ok(())
            } else {
                Err(super::login::no_trusted_key(Some(server)))
            }
        }
        _ => Ok(()),
    }
}

/// The policies load, or the reason why not with how to choose another folder.
fn check_policies(access: &AccessConfig) -> Result<(), String> {
    crate::policy::load_dir(&access.policies_dir)
        .map(|_| ())
        .map_err(|errors| {
            format!(
                "the policies in `{}` were not loaded: {}; choose another folder with --policies DIR, JITSH_POLICIES or `policies` in the settings",
                access.policies_dir.display(),
                errors.to_string().replace('\n', "; ")
            )
        })
}

fn access_config(gate: GateOpts) -> Result<AccessConfig, String> {
    let file = super::common::client_config();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let policies = super::common::policy_dir(gate.policies, true)?;
    Ok(AccessConfig {
        policies_dir: policies,
        user: super::common::user_name(gate.user.as_deref()),
        user_explicit: super::common::user_explicit(gate.user.as_deref()),
        token_files: gate.tokens,
        trust_keys: super::login::trust_key_files(&gate.trust_keys),
        skew: std::time::Duration::from_secs(u64::from(gate.skew)),
        server: gate.server.or(file.server),
        credential: env("JITSH_CREDENTIAL").or(file.credential),
    })
}

/// The simulated Exchange runspace: the `jitsh-exsim` binary beside jitsh, else jitsh itself
/// running it (`jitsh exsim`, hidden; feature `demo-runspace`, on by default), so
/// `cargo run -- shell` works without building both.
fn default_runspace() -> Result<Vec<OsString>, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("the jitsh executable could not be located: {e}"))?;
    let sim = exe.with_file_name("jitsh-exsim");
    if sim.exists() {
        Ok(vec![sim.into_os_string()])
    } else if cfg!(feature = "demo-runspace") {
        Ok(vec![exe.into_os_string(), "exsim".into()])
    } else {
        Err(format!(
            "no runspace given and `{}` does not exist (this jitsh is built without the simulated one): name the runspace (`jitsh shell -- pwsh -NoLogo`, `jitsh exec --runspace pwsh -- LINE`)",
            sim.display()
        ))
    }
}

/// One thread runs the session and waits for its events itself: a keystroke and its echo wake
/// only that thread (with a multi-threaded runtime a worker owns the event loop and wakes the
/// session's thread for each event). Heavy output has a reader thread of its own (see
/// `shell::pty`).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the async runtime could not start: {e}"))
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status.clamp(0, 255)).unwrap_or(1))
}
