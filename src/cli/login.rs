//! `jitsh login`: trust on first contact with an approval service, and the stored trust every
//! gate and client command uses afterwards.
//!
//! Login fetches the service's token signing keys (`GET /v1/keys`), shows each key's id and
//! SHA-256 fingerprint (computed here from the key bytes, never taken from the answer), and after
//! the user confirms (or `--yes` with the expected `--fingerprint`) stores one public key file per
//! key in `~/.config/jitsh/keys/` (0644) and `server`, `trust_keys` and `ca` in
//! `~/.config/jitsh/config.toml` (0600: it may also hold a credential).
//!
//! Trusted keys come from `--trust-key FILE` where a command has it, else `JITSH_TRUST_KEY`
//! (paths separated by `:`), else the config file.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::token::PublicKey;

/// Most keys a service may present (current plus a few being rotated).
const MAX_KEYS: usize = 16;
/// Largest `/v1/keys` answer read.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The approval service, e.g. https://jitsh.contoso.test:8750 (plain http:// only on
    /// loopback). The TLS certificate is checked against the system's CAs, or --ca FILE.
    #[arg(long, value_name = "URL", env = "JITSH_SERVER", hide_env_values = true)]
    server: String,
    /// SHA-256 fingerprint of a signing key to trust, as `jitsh serve` prints it (64 hex
    /// digits; repeatable). Keys the service presents that are not listed are not trusted.
    #[arg(long = "fingerprint", value_name = "SHA256")]
    fingerprints: Vec<String>,
    /// Trust the keys given with --fingerprint without asking.
    #[arg(long, requires = "fingerprints")]
    yes: bool,
}

/// Why login stopped. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
enum LoginError {
    #[error("could not reach the service at `{server}`: {message}")]
    Connect { server: String, message: String },
    #[error("the service at `{server}` did not answer with its signing keys ({message}); is this a jitsh approval service?")]
    BadAnswer { server: String, message: String },
    #[error("`{0}` is not a SHA-256 fingerprint (64 hex digits, as `jitsh serve` prints it)")]
    BadFingerprint(String),
    #[error("the service at `{server}` does not present a signing key with fingerprint {wanted} (it presents {presented}): it is not the service you expect, or its key changed; ask its operator before trusting anything")]
    Mismatch {
        server: String,
        wanted: String,
        presented: String,
    },
    #[error("nothing was trusted: confirm the fingerprint interactively, or pass --fingerprint SHA256 --yes after checking it with the service's operator")]
    NotConfirmed,
    #[error("{0}")]
    Store(String),
}

pub fn run(args: Args) -> ExitCode {
    match login(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}

fn login(args: &Args) -> Result<(), LoginError> {
    let server = args.server.trim_end_matches('/').to_owned();
    let wanted = args
        .fingerprints
        .iter()
        .map(|f| normalize_fingerprint(f).ok_or_else(|| LoginError::BadFingerprint(f.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let presented = fetch_keys(&server)?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "The approval service at {server} signs tokens with:");
    for key in &presented {
        let _ = writeln!(err, "  key {}  SHA-256 {}", key.kid(), key.fingerprint());
    }
    let before = stored_keys();
    let changed = !before.is_empty() && before.iter().any(|k| !presented.contains(k));
    if changed {
        let old: Vec<&str> = before.iter().map(PublicKey::kid).collect();
        let _ = writeln!(
            err,
            "WARNING: this is not the key you trusted before ({}): the service's key was rotated, or this is not the same service. Trust it only after its operator confirms the fingerprint.",
            old.join(", ")
        );
    }
    let chosen: Vec<PublicKey> = if wanted.is_empty() {
        presented.clone()
    } else {
        for w in &wanted {
            if !presented.iter().any(|k| &k.fingerprint() == w) {
                return Err(LoginError::Mismatch {
                    server,
                    wanted: w.clone(),
                    presented: presented
                        .iter()
                        .map(|k| format!("{} ({})", k.fingerprint(), k.kid()))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        presented
            .iter()
            .filter(|k| wanted.contains(&k.fingerprint()))
            .cloned()
            .collect()
    };
    if !args.yes && !confirm(&mut err)? {
        return Err(LoginError::NotConfirmed);
    }
    drop(err);
    let config = store(&server, &chosen, crate::net::configured_ca()).map_err(LoginError::Store)?;
    let kids: Vec<&str> = chosen.iter().map(PublicKey::kid).collect();
    eprintln!(
        "trusted signing key {} of {server}; saved in {} (shell, exec, check, token fetch and token inspect use it)",
        kids.join(", "),
        config.display()
    );
    Ok(())
}

/// Ask on the terminal; without one there is nobody to ask.
fn confirm(err: &mut impl std::io::Write) -> Result<bool, LoginError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(LoginError::NotConfirmed);
    }
    let _ = write!(
        err,
        "Compare the fingerprint with the one the service's operator gave you. Trust this service? [y/N] "
    );
    let _ = err.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|_| LoginError::NotConfirmed)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `ab:CD 01...`, `sha256:abcd...` or plain hex, to 64 lowercase hex digits.
fn normalize_fingerprint(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .strip_prefix("sha256:")
        .or_else(|| t.strip_prefix("SHA256:"))
        .or_else(|| t.strip_prefix("SHA-256:"))
        .unwrap_or(t);
    let hex: String = t
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// The keys the service presents, each parsed and re-derived here.
fn fetch_keys(server: &str) -> Result<Vec<PublicKey>, LoginError> {
    let connect = |message: String| LoginError::Connect {
        server: server.to_owned(),
        message,
    };
    let bad = |message: String| LoginError::BadAnswer {
        server: server.to_owned(),
        message,
    };
    let timeouts = crate::api::Timeouts {
        call: Duration::from_secs(10),
        connect: Duration::from_secs(10),
    };
    let client =
        crate::api::ApiClient::new(server, None, timeouts).map_err(|e| connect(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| connect(format!("could not start the runtime: {e}")))?;
    // A few keys are a few hundred bytes; whoever answers is not trusted yet.
    let body: Value = runtime
        .block_on(client.get_capped("/v1/keys", MAX_ANSWER))
        .map_err(|e| match e {
            crate::api::CallError::Unreachable { message, .. } => connect(message),
            crate::api::CallError::BadAnswer { message, .. } => bad(message),
            e => bad(format!("it answered: {e}")),
        })?;
    if body.is_null() {
        return Err(bad("the answer is not JSON".into()));
    }
    let items = body
        .get("keys")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty() && a.len() <= MAX_KEYS)
        .ok_or_else(|| bad(format!("no `keys` list of 1 to {MAX_KEYS} keys")))?;
    let mut keys: Vec<PublicKey> = Vec::with_capacity(items.len());
    for item in items {
        let text = item
            .get("public_key")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a key has no `public_key` text".into()))?;
        let key = PublicKey::from_file_text(text).map_err(|e| bad(e.to_string()))?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The keys named in the settings (what a previous login stored); unreadable files are skipped
/// here, and refused where the keys are used.
fn stored_keys() -> Vec<PublicKey> {
    config_trust_keys()
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| PublicKey::from_file_text(&t).ok())
        .collect()
}

/// `trust_keys` of the settings file, relative paths taken from its folder.
fn config_trust_keys() -> Vec<PathBuf> {
    let path = super::common::config_path();
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    super::common::client_config()
        .trust_keys
        .into_iter()
        .map(|p| if p.is_relative() { base.join(p) } else { p })
        .collect()
}

/// The public key files to trust: `flags` when given, else `JITSH_TRUST_KEY`, else what
/// `jitsh login` stored.
pub(crate) fn trust_key_files(flags: &[PathBuf]) -> Vec<PathBuf> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    if let Some(v) = std::env::var_os("JITSH_TRUST_KEY").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&v).collect();
    }
    config_trust_keys()
}

/// The error for a command that talks to a service none of whose keys is trusted.
pub(crate) fn no_trusted_key(server: Option<&str>) -> String {
    format!(
        "no signing key of the approval service is trusted, so no token it issues could be used: run `jitsh login --server {}` once (or pass --trust-key FILE, the service's STATE/signing.pub)",
        server.unwrap_or("URL")
    )
}

/// The hint added where a token's key is not trusted.
pub(crate) const KEY_CHANGED_HINT: &str = "the service's signing key changed, or the token comes from another service; check the new fingerprint with its operator and run `jitsh login` again";

/// Write the key files and the settings; returns the settings file's path.
fn store(server: &str, keys: &[PublicKey], ca: Option<PathBuf>) -> Result<PathBuf, String> {
    let config = super::common::config_path();
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let key_dir = dir.join("keys");
    std::fs::create_dir_all(&key_dir)
        .map_err(|e| format!("`{}` could not be created: {e}", key_dir.display()))?;
    let mut table: toml::Table = match std::fs::read_to_string(&config) {
        Ok(text) => text.parse().map_err(|e| {
            format!(
                "`{}` is not valid TOML, so it was left alone ({e}); fix or remove it and log in again",
                config.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(format!("`{}` could not be read: {e}", config.display())),
    };
    let old = config_trust_keys();
    let mut files = Vec::with_capacity(keys.len());
    for key in keys {
        let path = key_dir.join(format!("{}.pub", key.kid()));
        write_public(&path, key.to_file_text().as_bytes())
            .map_err(|e| format!("key file `{}` could not be written: {e}", path.display()))?;
        files.push(path);
    }
    table.insert("server".into(), server.into());
    table.insert(
        "trust_keys".into(),
        toml::Value::Array(
            files
                .iter()
                .map(|p| toml::Value::String(p.display().to_string()))
                .collect(),
        ),
    );
    if let Some(ca) = ca {
        let ca = std::path::absolute(&ca).unwrap_or(ca);
        table.insert("ca".into(), ca.display().to_string().into());
    }
    let text = toml::to_string(&table).map_err(|e| e.to_string())?;
    crate::service::directory::write_private_atomic(&config, text.as_bytes())
        .map_err(|e| format!("`{}` could not be written: {e}", config.display()))?;
    // Keys this login no longer trusts: remove the files an earlier login wrote.
    for path in old {
        if path.parent() == Some(key_dir.as_path()) && !files.contains(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(config)
}

/// Write a public file (0644) through a temporary file and a rename.
fn write_public(path: &Path, data: &[u8]) -> std::io::Result<()> {
    crate::atomic_write::write(path, data, crate::atomic_write::Mode::Public)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_in_the_usual_spellings_and_nothing_else() {
        let hex = "ab".repeat(32);
        for text in [
            hex.clone(),
            hex.to_uppercase(),
            format!("sha256:{hex}"),
            format!("SHA-256:{hex}"),
            "AB:".repeat(31) + "AB",
        ] {
            assert_eq!(normalize_fingerprint(&text), Some(hex.clone()), "{text}");
        }
        for text in [
            "",
            "ab",
            &"ab".repeat(33),
            &"zz".repeat(32),
            &"ab".repeat(16),
        ] {
            assert_eq!(normalize_fingerprint(text), None, "{text}");
        }
    }
}
