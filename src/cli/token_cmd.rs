//! `jitsh keygen` and `jitsh token inspect`: key files on disk and a readable view of a token.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::atomic_write::{self, Mode};
use crate::token::{self, Claims, PublicKey, SigningKey, TrustStore};

/// File names `keygen` writes in its output folder (pinned by SPEC section 6).
const PRIVATE_FILE: &str = "signing.key";
const PUBLIC_FILE: &str = "signing.pub";

/// Upper bound on a token or key file read from disk.
const MAX_FILE: u64 = 1024 * 1024;

#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// Folder to write signing.key (mode 0600) and signing.pub into; created if missing.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace an existing key pair (tokens signed by the old key stop verifying).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Show a token's claims and whether it verifies (exit 0 valid, 1 not valid, 3 usage error).
    Inspect(InspectArgs),
    /// Fetch the signed token of an approved request.
    Fetch(FetchArgs),
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The token file.
    file: PathBuf,
    /// A trusted public key file (repeatable; default: the keys `jitsh login` stored); without
    /// one the signature cannot be checked.
    #[arg(long = "trust-key", value_name = "FILE")]
    trust_keys: Vec<PathBuf>,
    /// Check the validity window at this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,
    /// Check that the token is for this user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Clock skew tolerated at both ends of the validity window, in seconds (at most 300).
    #[arg(long, value_name = "SECONDS", default_value = super::common::DEFAULT_SKEW_SECS,
          value_parser = super::common::parse_skew)]
    skew: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct FetchArgs {
    /// Request id (as printed by `jitsh request`).
    id: String,
    /// Where to write the token (created 0600; the token is a bearer credential).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Approval service URL.
    #[arg(long, env = "JITSH_SERVER", value_name = "URL", hide_env_values = true)]
    server: Option<String>,
    /// File holding the API credential (printed once by `jitsh user add`); else
    /// JITSH_CREDENTIAL. Never on the command line, where every local user sees it.
    #[arg(long, value_name = "FILE")]
    credential_file: Option<PathBuf>,
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    crate::rfc3339::parse(text).ok_or_else(|| format!("`{text}` is not an RFC 3339 time"))
}

pub fn keygen(args: KeygenArgs) -> ExitCode {
    match write_key_pair(&args.out, args.force) {
        Ok(kid) => {
            println!(
                "wrote {} (private signing key, owner-only) and {} (public key: give it to gates as --trust-key)\nkey id: {kid}",
                args.out.join(PRIVATE_FILE).display(),
                args.out.join(PUBLIC_FILE).display()
            );
            ExitCode::SUCCESS
        }
        Err(message) => super::fail(message),
    }
}

pub fn run(args: TokenArgs) -> ExitCode {
    match args.command {
        TokenCommand::Inspect(a) => inspect(a),
        TokenCommand::Fetch(a) => {
            super::client::token_fetch(a.server, a.credential_file, &a.id, &a.out)
        }
    }
}

/// Write a fresh key pair; returns its kid. Without `force` an existing file is never replaced,
/// and the private key is never visible with a mode wider than 0600.
fn write_key_pair(dir: &Path, force: bool) -> Result<String, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let private_path = dir.join(PRIVATE_FILE);
    let public_path = dir.join(PUBLIC_FILE);
    if !force {
        for path in [&private_path, &public_path] {
            if path.symlink_metadata().is_ok() {
                return Err(format!(
                    "`{}` already exists; pass --force to replace the key pair",
                    path.display()
                ));
            }
        }
    }
    let key = SigningKey::generate(&ring::rand::SystemRandom::new()).map_err(|e| e.to_string())?;
    write_atomic(
        &private_path,
        key.to_file_text().as_bytes(),
        Mode::Private,
        force,
    )?;
    write_atomic(
        &public_path,
        key.public_key().to_file_text().as_bytes(),
        Mode::Public,
        force,
    )?;
    Ok(key.kid().to_owned())
}

/// Write through the atomic writer: replace when allowed, otherwise create only (a concurrent
/// writer is never overwritten).
fn write_atomic(path: &Path, contents: &[u8], mode: Mode, replace: bool) -> Result<(), String> {
    if replace {
        atomic_write::write(path, contents, mode)
    } else {
        atomic_write::write_new(path, contents, mode)
    }
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "`{}` already exists; pass --force to replace the key pair",
            path.display()
        ),
        _ => format!("cannot write `{}`: {e}", path.display()),
    })
}

fn read_text(path: &Path, what: &str) -> Result<String, String> {
    let file =
        File::open(path).map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE + 1), &mut text)
        .map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!(
            "{what} `{}` is larger than {MAX_FILE} bytes",
            path.display()
        ));
    }
    Ok(text)
}

/// The outcome of one check in `token inspect`.
enum Outcome {
    Ok,
    Failed(String),
    NotChecked(&'static str),
}

impl Outcome {
    fn passed(&self) -> bool {
        !matches!(self, Outcome::Failed(_))
    }

    fn text(&self) -> String {
        match self {
            Outcome::Ok => "ok".to_owned(),
            Outcome::Failed(m) => format!("FAILED: {m}"),
            Outcome::NotChecked(why) => format!("not checked ({why})"),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Outcome::Ok => json!({"ok": true}),
            Outcome::Failed(m) => json!({"ok": false, "error": m}),
            Outcome::NotChecked(why) => json!({"ok": null, "skipped": why}),
        }
    }
}

fn inspect(args: InspectArgs) -> ExitCode {
    let text = match read_text(&args.file, "token file") {
        Ok(t) => t,
        Err(m) => return super::fail(m),
    };
    let token_text = text.trim();
    let mut trust = TrustStore::new();
    // The flags, else the keys `jitsh login` stored.
    for path in &super::login::trust_key_files(&args.trust_keys) {
        match read_text(path, "key file").and_then(|t| {
            PublicKey::from_file_text(&t).map_err(|e| format!("`{}`: {e}", path.display()))
        }) {
            Ok(key) => {
                trust.add(key);
            }
            Err(m) => return super::fail(m),
        }
    }
    let now = args.now.unwrap_or_else(Utc::now);
    let skew = Duration::seconds(i64::from(args.skew));

    let verified = if trust.is_empty() {
        Err(Outcome::NotChecked(
            "no --trust-key given and no key stored by `jitsh login`",
        ))
    } else {
        token::verify(token_text, &trust).map_err(|e| Outcome::Failed(e.to_string()))
    };
    let (signature, time_check, user_check, claims, kid) = match &verified {
        Ok(v) => {
            let time = match v.check_time(now, skew) {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::Failed(e.to_string()),
            };
            let user = match &args.user {
                None => Outcome::NotChecked("no --user given"),
                Some(u) => match v.check_user(u) {
                    Ok(()) => Outcome::Ok,
                    Err(e) => Outcome::Failed(e.to_string()),
                },
            };
            (
                Outcome::Ok,
                time,
                user,
                Some(v.claims().clone()),
                Some(v.kid().to_owned()),
            )
        }
        Err(outcome) => {
            let peeked = token::peek_unverified(token_text);
            // A token that does not even decode says so, trusted keys or not.
            let signature = match (outcome, &peeked) {
                (Outcome::Failed(m), _) => Outcome::Failed(m.clone()),
                (_, Err(e)) => Outcome::Failed(e.to_string()),
                (Outcome::NotChecked(w), Ok(_)) => Outcome::NotChecked(w),
                (Outcome::Ok, Ok(_)) => Outcome::Ok,
            };
            let (claims, kid) = match peeked {
                Ok(p) => (p.claims.ok(), p.kid),
                Err(_) => (None, None),
            };
            (
                signature,
                Outcome::NotChecked("signature not verified"),
                Outcome::NotChecked("signature not verified"),
                claims,
                kid,
            )
        }
    };
    let valid = verified.is_ok() && time_check.passed() && user_check.passed();
    if args.json {
        let out = json!({
            "valid": valid,
            "verified": verified.is_ok(),
            "kid": kid,
            "signature": signature.json(),
            "time": time_check.json(),
            "user": user_check.json(),
            "now": crate::rfc3339::format(now),
            "claims": claims.as_ref().and_then(|c| serde_json::to_value(c).ok()),
        });
        println!("{out}");
    } else {
        print_human(claims.as_ref(), kid.as_deref(), verified.is_ok());
        println!("signature  {}", signature.text());
        println!("time       {}", time_check.text());
        println!("user       {}", user_check.text());
        println!("verdict    {}", if valid { "valid" } else { "NOT VALID" });
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_human(claims: Option<&Claims>, kid: Option<&str>, verified: bool) {
    let Some(c) = claims else {
        println!("claims     (token cannot be decoded)");
        return;
    };
    let when = |t: DateTime<Utc>| crate::rfc3339::format(t).unwrap_or_else(|| t.to_string());
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| clean(i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !verified {
        println!("(claims below are UNVERIFIED: the signature was not accepted)");
    }
    println!("token      {}", clean(&c.jti));
    println!("key id     {}", clean(kid.unwrap_or("(none)")));
    println!("issuer     {}", clean(&c.iss));
    println!("subject    {}", clean(&c.sub));
    println!("rule       {}", clean(&c.rule));
    println!("tasks      {}", list(&c.tasks));
    if let Some(p) = &c.params {
        println!("params     {}", clean(&p.to_json().to_string()));
    }
    println!("request    {}", clean(&c.request));
    println!("approvers  {}", list(&c.approvers));
    println!("issued     {}", when(c.iat));
    println!("valid      {} until {}", when(c.nbf), when(c.exp));
    if let Some(u) = c.uses {
        println!("uses       {u}");
    }
    if let Some(cmd) = &c.command {
        println!("command    {}", clean(cmd));
    }
    if let Some(secs) = c.offline {
        println!("offline    {secs} s after issue");
    }
    for (name, value) in &c.extra {
        println!("{:<10} {value}", clean(name));
    }
}

/// Claim text is escaped before it reaches a terminal: an unverified token is anyone's text, and
/// control characters could rewrite the screen.
fn clean(text: &str) -> String {
    crate::text::escape(text).into_owned()
}
