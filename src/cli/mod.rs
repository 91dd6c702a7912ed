//! Command-line front end. Each subcommand lives in its own file and exposes `Args` (clap) and
//! `run(Args) -> ExitCode`; this file only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit_cmd;
mod check;
mod client;
mod common;
mod login;
mod migrate;
mod parse;
mod policy_cmd;
mod replay;
mod serve;
mod shell_cmd;
mod token_cmd;

/// Exit status shared by every subcommand for errors (usage, load, I/O).
pub(crate) const EXIT_ERROR: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "jitsh",
    version,
    about = "Zero standing privileges for administrators' shells",
    long_about = "jitsh stands between an administrator and a management runspace (PowerShell with \
Exchange cmdlets is the reference). Every line is parsed, every command invocation in it is checked \
against task-level policies, and a privileged task runs only while a signed, time-bounded approval \
token covers it. Requests, approvals and decisions are audited; sessions are recorded."
)]
struct Cli {
    /// Diagnostics on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Trust only the CA certificates in this PEM file (instead of the system's) for the
    /// approval service's TLS certificate; also `ca = "FILE"` in the client settings.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "JITSH_CA",
        hide_env_values = true
    )]
    ca: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide whether a line may run (JSON on stdout; exit 0 allow, 1 approval needed, 2 deny).
    Check(check::Args),
    /// Show every command invocation in a line as JSON.
    Parse(parse::Args),
    /// Work with policy folders (lint).
    Policy(policy_cmd::Args),
    /// Write a new Ed25519 signing key pair.
    Keygen(token_cmd::KeygenArgs),
    /// Inspect or fetch approval tokens.
    Token(token_cmd::TokenArgs),
    /// Run the approval service.
    Serve(serve::Args),
    /// Manage the service's directory of users.
    User(serve::UserArgs),
    /// Move the service's state from its SQLite file into a new PostgreSQL store.
    Migrate(migrate::Args),
    /// Trust an approval service: show its signing-key fingerprints and, once confirmed, store
    /// its URL and keys in ~/.config/jitsh for the other commands.
    Login(login::Args),
    /// Ask for access to a privileged task.
    Request(client::RequestArgs),
    /// List requests.
    Requests(client::RequestsArgs),
    /// Approve a pending request: shows it first, and approves only what was shown.
    Approve(client::ApproveArgs),
    /// Deny a pending request: shows it first, and denies only what was shown.
    Deny(client::DenyArgs),
    /// Take back your own pending request.
    Withdraw(client::WithdrawArgs),
    /// Revoke an approved grant before it expires.
    Revoke(client::RevokeArgs),
    /// Lock a user, a rule or everything: new requests are refused and live grants stop working.
    Lock(client::LockArgs),
    /// List, show and acknowledge the reviews of system accounts' sessions.
    Review(client::ReviewArgs),
    /// Start a gated shell over a management runspace.
    Shell(shell_cmd::ShellArgs),
    /// Run one gated line through a fresh runspace.
    Exec(shell_cmd::ExecArgs),
    /// Play a session recording.
    Replay(replay::Args),
    /// List session recordings.
    Sessions(replay::SessionsArgs),
    /// Verify, search and export the audit log.
    Audit(audit_cmd::Args),
    /// The simulated Exchange runspace (what `jitsh-exsim` runs).
    #[cfg(feature = "demo-runspace")]
    #[command(hide = true)]
    Exsim(jitsh_exsim::Args),
}

impl Command {
    fn uses_client_settings(&self) -> bool {
        !matches!(
            self,
            Command::Parse(_)
                | Command::Policy(_)
                | Command::Keygen(_)
                | Command::Serve(_)
                | Command::User(_)
                | Command::Migrate(_)
                | Command::Replay(_)
                | Command::Sessions(_)
                | Command::Audit(_)
        ) && !self.is_runspace()
    }

    #[cfg(feature = "demo-runspace")]
    fn is_runspace(&self) -> bool {
        matches!(self, Command::Exsim(_))
    }

    #[cfg(not(feature = "demo-runspace"))]
    fn is_runspace(&self) -> bool {
        false
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; every other argument error is a usage error.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.verbose);
    // Commands that may talk to an approval service need the settings file intact: it names
    // the CA and the signing keys they trust.
    let settings = match common::client_config_checked() {
        Ok(s) => s,
        Err(e) if cli.command.uses_client_settings() => return fail(e),
        Err(_) => common::ClientConfig::default(),
    };
    crate::net::configure(crate::net::Transport {
        ca: cli.ca.or(settings.ca),
        insecure_http: crate::net::insecure_from_env() || settings.insecure_http.unwrap_or(false),
    });
    match cli.command {
        Command::Check(a) => check::run(a),
        Command::Parse(a) => parse::run(a),
        Command::Policy(a) => policy_cmd::run(a),
        Command::Keygen(a) => token_cmd::keygen(a),
        Command::Token(a) => token_cmd::run(a),
        Command::Serve(a) => serve::run(a),
        Command::User(a) => serve::user(a),
        Command::Migrate(a) => migrate::run(a),
        Command::Login(a) => login::run(a),
        Command::Request(a) => client::request(a),
        Command::Requests(a) => client::requests(a),
        Command::Approve(a) => client::approve(a),
        Command::Deny(a) => client::deny(a),
        Command::Withdraw(a) => client::withdraw(a),
        Command::Revoke(a) => client::revoke(a),
        Command::Lock(a) => client::lock(a),
        Command::Review(a) => client::review(a),
        Command::Shell(a) => shell_cmd::shell(a),
        Command::Exec(a) => shell_cmd::exec(a),
        Command::Replay(a) => replay::run(a),
        Command::Sessions(a) => replay::sessions(a),
        Command::Audit(a) => audit_cmd::run(a),
        #[cfg(feature = "demo-runspace")]
        Command::Exsim(a) => jitsh_exsim::run_args(a),
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal; an interactive shell moves diagnostics to a log file.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::shell::logfile::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Print one actionable sentence on stderr and return the error exit status. Messages quote
/// input (names, paths, answers from the service): escaped for the terminal.
pub(crate) fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("jitsh: {}", crate::text::escape(&message.to_string()));
    ExitCode::from(EXIT_ERROR)
}
