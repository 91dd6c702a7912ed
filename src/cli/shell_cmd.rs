//! `jitsh shell` (an interactive gated session) and `jitsh exec` (one gated line).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use crate::policy::Effect;
use crate::shell::access::{Access, AccessConfig};
use crate::shell::local_service::LocalService;
use crate::shell::osc::{Marker, Piece, Scanner};
use crate::shell::{self, ShellConfig};

/// Options shared by `shell` and `exec`.
#[derive(Debug, clap::Args)]
pub struct GateOpts {
    /// Policy folder.
    #[arg(
        long,
        value_name = "DIR",
        env = "JITSH_POLICIES",
        default_value = "policies"
    )]
    policies: PathBuf,
    /// Approval service URL (for `:request`, token pick-up and revocations).
    #[arg(long, value_name = "URL", env = "JITSH_SERVER")]
    server: Option<String>,
    /// Session user (default: $JITSH_USER, else the login name).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Approval token file to use (repeatable).
    #[arg(long = "token", value_name = "FILE")]
    tokens: Vec<PathBuf>,
    /// Public key file of the approval service that signs tokens (repeatable, for key
    /// rotation); usually the service's STATE/signing.pub.
    #[arg(long = "trust-key", value_name = "FILE")]
    trust_keys: Vec<PathBuf>,
    /// Clock skew tolerated on token validity, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    skew: u32,
}

#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    #[command(flatten)]
    gate: GateOpts,
    /// Folder for session recordings (default: $JITSH_RECORD_DIR, else
    /// ~/.local/share/jitsh/sessions).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Without --server, jitsh starts an approval service in-process on loopback (state in
    /// $JITSH_STATE or ~/.local/share/jitsh/local-service); this turns that off, so lines that
    /// need approval are simply refused.
    #[arg(long)]
    no_service: bool,
    /// The runspace command (default: jitsh-exsim next to jitsh).
    #[arg(last = true, value_name = "RUNSPACE")]
    runspace: Vec<OsString>,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
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
    let multiline = runspace.first().is_some_and(is_powershell);
    let runspace = if multiline {
        with_prompt_markers(runspace)
    } else {
        runspace
    };
    let mut access = access_config(args.gate);
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
    let config = ShellConfig {
        multiline,
        runspace,
        access,
        record_dir,
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

/// Record `exec`'s decision: to the approval service when one is configured, else to the
/// local chained log, exactly as the shell records its lines.
fn audit_exec(
    config: &AccessConfig,
    record: Option<PathBuf>,
    line: &str,
    decision: &crate::gate::LineDecision,
) -> Result<(), String> {
    let dir = record_dir(record)
        .ok_or("no folder for the audit log: pass `--record DIR` or set JITSH_RECORD_DIR")?;
    let session = shell::new_session_id();
    let sink = shell::SessionAudit::open(
        &dir,
        &session,
        &config.user,
        config.server.clone().zip(config.credential.clone()),
    )
    .map_err(|e| e.to_string())?;
    let event = crate::audit::decision::event(
        &config.user,
        &session,
        line,
        decision,
        "exec",
        shell::now_rfc3339(),
    );
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
    let config = access_config(args.gate);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    let checked = match Access::load(&config) {
        Ok(mut access) => rt.block_on(access.check(&line)),
        Err(e) => return super::fail(e),
    };
    let d = checked.decision;
    // No record, no run: every decision is audited before anything else happens.
    if let Err(e) = audit_exec(&config, args.record, &line, &d) {
        return super::fail(format!(
            "the decision could not be recorded, so the line does not run: {e}"
        ));
    }
    if d.incomplete {
        return super::fail(
            "the line is incomplete: finish it (a closing bracket or quote is missing)",
        );
    }
    match d.decision {
        Effect::Allow => {}
        Effect::Approval => {
            eprint!("{}", shell::refusal_message(&d).replace("\r\n", "\n"));
            return ExitCode::from(1);
        }
        Effect::Deny => {
            eprint!("{}", shell::refusal_message(&d).replace("\r\n", "\n"));
            return ExitCode::from(2);
        }
    }
    match run_once(&program, &line) {
        Ok(status) => exit_code(status),
        Err(e) => super::fail(format!(
            "the runspace `{}` could not run the line: {e}",
            program
                .iter()
                .map(|p| p.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        )),
    }
}

/// Run one line through a fresh runspace over pipes: the line, then end-of-input. Prompts and
/// their markers are left out of the output; the status is the command's (`133;D`), else the
/// runspace's.
fn run_once(program: &[OsString], line: &str) -> std::io::Result<i32> {
    let (cmd, args) = program
        .split_first()
        .ok_or_else(|| std::io::Error::other("no runspace program"))?;
    let mut child = std::process::Command::new(cmd)
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

/// Start the in-process approval service and point the session at it.
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

fn access_config(gate: GateOpts) -> AccessConfig {
    let file = super::common::client_config();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    AccessConfig {
        policies_dir: gate.policies,
        user: super::common::user_name(gate.user.as_deref()),
        token_files: gate.tokens,
        trust_keys: gate.trust_keys,
        skew: std::time::Duration::from_secs(u64::from(gate.skew)),
        server: gate.server.or(file.server),
        credential: env("JITSH_CREDENTIAL").or(file.credential),
    }
}

/// The simulated Exchange runspace: the `jitsh-exsim` binary beside jitsh, else jitsh itself
/// running it (`jitsh exsim`, hidden), so `cargo run -- shell` works without building both.
fn default_runspace() -> Result<Vec<OsString>, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("the jitsh executable could not be located: {e}"))?;
    let sim = exe.with_file_name("jitsh-exsim");
    if sim.exists() {
        Ok(vec![sim.into_os_string()])
    } else {
        Ok(vec![exe.into_os_string(), "exsim".into()])
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("the async runtime could not start: {e}"))
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status.clamp(0, 255)).unwrap_or(1))
}
