//! What several subcommands share: loading policies, catalog, trust keys and tokens for a gate,
//! reading lines, the batch protocol, and the user's name.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::catalog::Catalog;
use crate::policy::{self, PolicySet};
use crate::token::{self, PublicKey, TrustStore, VerifiedToken};

/// Everything a gate needs that comes from files, loaded and verified once.
#[derive(Debug)]
pub(crate) struct GateInputs {
    pub policies: PolicySet,
    pub catalog: Catalog,
    pub tokens: Vec<VerifiedToken>,
    pub now: DateTime<Utc>,
}

impl GateInputs {
    /// Load or print one actionable error and return the exit code.
    pub fn load(
        policies: &Path,
        catalogs: &[PathBuf],
        tokens: &[PathBuf],
        trust_keys: &[PathBuf],
        now: Option<&str>,
    ) -> Result<GateInputs, ExitCode> {
        let policies = load_policies(policies)?;
        let catalog = load_catalog(catalogs)?;
        // The flags, else the keys `jitsh login` stored.
        let trust = load_trust(&super::login::trust_key_files(trust_keys))?;
        if !tokens.is_empty() && trust.is_empty() {
            return Err(super::fail(format!(
                "a token can only be honoured with the approval service's public key; {}",
                super::login::no_trusted_key(None)
            )));
        }
        let mut verified = Vec::with_capacity(tokens.len());
        for path in tokens {
            verified.push(load_token(path, &trust).map_err(super::fail)?);
        }
        let now = match now {
            Some(text) => parse_time(text).map_err(super::fail)?,
            None => chrono::Utc::now(),
        };
        Ok(GateInputs {
            policies,
            catalog,
            tokens: verified,
            now,
        })
    }
}

/// Load a policy folder; on error print every `file:line:col: message` with the source line.
pub(crate) fn load_policies(dir: &Path) -> Result<PolicySet, ExitCode> {
    policy::load_dir(dir).map_err(|errors| {
        for e in errors.errors() {
            // `file: message` for a whole folder or file, `file:line:col: message` otherwise.
            eprintln!("{e}");
            if e.line == 0 {
                continue;
            }
            if let Some(src) = std::fs::read_to_string(&e.file).ok().and_then(|text| {
                text.lines()
                    .nth(e.line.saturating_sub(1))
                    .map(str::to_owned)
            }) {
                eprintln!("  | {src}");
                eprintln!("  | {}^", " ".repeat(e.col.saturating_sub(1)));
            }
        }
        eprintln!(
            "jitsh: the policies in `{}` were not loaded (nothing is allowed until they are fixed, or another folder is chosen with --policies DIR, JITSH_POLICIES or `policies` in the settings)",
            dir.display()
        );
        ExitCode::from(super::EXIT_ERROR)
    })
}

pub(crate) fn load_catalog(extra: &[PathBuf]) -> Result<Catalog, ExitCode> {
    let mut catalog = Catalog::builtin().clone();
    for path in extra {
        let text = std::fs::read_to_string(path)
            .map_err(|e| super::fail(format!("cannot read catalog `{}`: {e}", path.display())))?;
        let more = Catalog::from_json(&text)
            .map_err(|e| super::fail(format!("catalog `{}`: {e}", path.display())))?;
        catalog.merge(more);
    }
    Ok(catalog)
}

pub(crate) fn load_trust(paths: &[PathBuf]) -> Result<TrustStore, ExitCode> {
    let mut trust = TrustStore::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| super::fail(format!("cannot read trust key `{}`: {e}", path.display())))?;
        let key = PublicKey::from_file_text(&text)
            .map_err(|e| super::fail(format!("trust key `{}`: {e}", path.display())))?;
        trust.add(key);
    }
    Ok(trust)
}

/// Read and verify one token file: its signature is checked here, once, at load time.
pub(crate) fn load_token(path: &Path, trust: &TrustStore) -> Result<VerifiedToken, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token `{}`: {e}", path.display()))?;
    token::verify(text.trim(), trust).map_err(|e| match e {
        token::TokenError::UnknownKey { .. } => format!(
            "token `{}` was refused: {e}: {}",
            path.display(),
            super::login::KEY_CHANGED_HINT
        ),
        e => format!("token `{}` was refused: {e}", path.display()),
    })
}

/// `--skew SECONDS`, the same for every command that checks tokens: at most
/// [`token::MAX_SKEW`], so no flag stretches a grant past its window by more than a few minutes.
pub(crate) fn parse_skew(text: &str) -> Result<u32, String> {
    let max = token::MAX_SKEW.num_seconds();
    let secs: u64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds from 0 to {max}"))?;
    let secs = u32::try_from(secs).unwrap_or(u32::MAX);
    if i64::from(secs) > max {
        return Err(format!(
            "{secs} s is more clock skew than jitsh tolerates: use at most {max} s (fix the clocks instead)"
        ));
    }
    Ok(secs)
}

/// The default `--skew`, in seconds (as clap wants it).
pub(crate) const DEFAULT_SKEW_SECS: &str = "60";

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    crate::rfc3339::parse(text)
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time (e.g. 2026-11-27T10:00:00Z)"))
}

/// The session's user, the same for every subcommand: the flag or JITSH_USER (clap folds the
/// variable into the flag where it is declared), else the passwd name of the process's user id,
/// else `$USER`.
pub(crate) fn user_name(flag: Option<&str>) -> String {
    if let Some(u) = flag.filter(|u| !u.is_empty()) {
        return u.to_string();
    }
    if let Ok(u) = std::env::var("JITSH_USER") {
        if !u.is_empty() {
            return u;
        }
    }
    login_name()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether the user was named (flag or JITSH_USER) rather than taken from the login.
pub(crate) fn user_explicit(flag: Option<&str>) -> bool {
    flag.is_some_and(|u| !u.is_empty()) || std::env::var("JITSH_USER").is_ok_and(|u| !u.is_empty())
}

/// The passwd name of the real user id (read from /proc and /etc/passwd: no unsafe calls).
fn login_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// The settings every command reads (`server = "..."`, `credential = "..."`,
/// `policies = "DIR"`): `/etc/jitsh/config.toml`, then `~/.config/jitsh/config.toml` over it;
/// environment and flags come first. `jitsh login` writes `server`,
/// `trust_keys` (the service's signing keys it stored) and `ca`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ClientConfig {
    pub server: Option<String>,
    pub credential: Option<String>,
    /// PEM file of the CA certificates the service's TLS certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Allow plain `http://` to hosts that are not loopback.
    pub insecure_http: Option<bool>,
    /// Public key files of the service's token signing keys (written by `jitsh login`).
    #[serde(default)]
    pub trust_keys: Vec<PathBuf>,
    /// The policy folder of the gate commands (`check`, `shell`, `exec`, `policy lint`) and of
    /// `serve`.
    pub policies: Option<PathBuf>,
}

/// `$XDG_CONFIG_HOME/jitsh/config.toml`, else `~/.config/jitsh/config.toml`.
pub(crate) fn config_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("jitsh").join("config.toml")
}

/// The system-wide settings file: `$JITSH_SYSTEM_CONFIG` (for tests and unusual layouts), else
/// `/etc/jitsh/config.toml`.
pub(crate) fn system_config_path() -> PathBuf {
    std::env::var_os("JITSH_SYSTEM_CONFIG")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/etc/jitsh/config.toml"), PathBuf::from)
}

/// One settings file; `None` when it does not exist. Relative paths in it are taken from its
/// own folder, never from the current directory.
fn read_settings(path: &Path) -> Result<Option<ClientConfig>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "the settings file `{}` could not be read: {e}",
                path.display()
            ))
        }
    };
    let mut c: ClientConfig = toml::from_str(&text).map_err(|e| {
        format!(
            "the settings file `{}` is not valid ({}); fix it, or remove it and run `jitsh login` again",
            path.display(),
            e.message()
        )
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let anchor = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    c.ca = c.ca.map(anchor);
    c.policies = c.policies.map(anchor);
    c.trust_keys = c.trust_keys.into_iter().map(anchor).collect();
    Ok(Some(c))
}

/// `over`'s settings where it has them, `under`'s otherwise.
fn layered(under: ClientConfig, over: ClientConfig) -> ClientConfig {
    ClientConfig {
        server: over.server.or(under.server),
        credential: over.credential.or(under.credential),
        ca: over.ca.or(under.ca),
        insecure_http: over.insecure_http.or(under.insecure_http),
        trust_keys: if over.trust_keys.is_empty() {
            under.trust_keys
        } else {
            over.trust_keys
        },
        policies: over.policies.or(under.policies),
    }
}

/// The settings: `/etc/jitsh/config.toml`, then the user's file over it (flags and environment
/// come first, where each command reads them). An error only when a file exists and is not
/// valid (a broken file must not silently drop the CA and keys it names).
pub(crate) fn client_config_checked() -> Result<ClientConfig, String> {
    let system = read_settings(&system_config_path())?.unwrap_or_default();
    let user = read_settings(&config_path())?.unwrap_or_default();
    Ok(layered(system, user))
}

/// The settings, leaving out a file that is missing, unreadable or not valid.
pub(crate) fn client_config() -> ClientConfig {
    let system = read_settings(&system_config_path())
        .ok()
        .flatten()
        .unwrap_or_default();
    let user = read_settings(&config_path())
        .ok()
        .flatten()
        .unwrap_or_default();
    layered(system, user)
}

/// The policy folder: `--policies` or JITSH_POLICIES (clap folds the variable into the flag),
/// else `policies` in the settings files, else (for trying jitsh from a checkout) the policies
/// bundled with this build, which is announced. Never a folder relative to wherever the command
/// happens to run, unless the user named one.
pub(crate) fn policy_dir(flag: Option<PathBuf>, bundled: bool) -> Result<PathBuf, String> {
    if let Some(path) = flag {
        return Ok(path);
    }
    if let Some(path) = client_config().policies {
        return Ok(path);
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    if bundled && shipped.is_dir() {
        eprintln!(
            "jitsh: no policy folder configured; using the demo policies of this build in `{}` (choose one with --policies DIR)",
            shipped.display()
        );
        return Ok(shipped);
    }
    Err(NO_POLICY_DIR.to_owned())
}

/// How to name a policy folder, said whenever none is configured or the one named fails.
pub(crate) const NO_POLICY_DIR: &str = "no policy folder is configured: pass --policies DIR, set JITSH_POLICIES, or write `policies = \"DIR\"` in ~/.config/jitsh/config.toml or /etc/jitsh/config.toml";

/// `check` and `parse` write an object's keys sorted at every level, as they always have:
/// serde_json's map keeps insertion order, so the fields added after the decision or report
/// (a warning, a batch line's own fields) are sorted in here.
pub(crate) fn machine_json(mut v: Value) -> Value {
    v.sort_all_objects();
    v
}

/// The batch protocol (SPEC §3): one JSON object per stdin line, `decide` on its `text`, the
/// other fields echoed back, an `"error"` object for a malformed line, and the batch goes on.
pub(crate) fn run_batch(decide: impl Fn(&str) -> Value) -> ExitCode {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut input = stdin.lock();
    let mut raw = Vec::new();
    let mut number = 0usize;
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return super::fail(format!("cannot read stdin: {e}")),
        }
        number += 1;
        if raw.last() == Some(&b'\n') {
            raw.pop();
            if raw.last() == Some(&b'\r') {
                raw.pop();
            }
        }
        // Bytes are read as they come: a line that is not UTF-8 is one bad line, answered
        // with an error object, never the end of the batch.
        let result = match std::str::from_utf8(&raw) {
            Err(e) => json!({
                "error": format!(
                    "input line {number} is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                )
            }),
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => batch_result(line, &decide),
        };
        if writeln!(out, "{}", machine_json(result)).is_err() {
            // Broken pipe: the reader went away; stop quietly like other Unix filters.
            return ExitCode::SUCCESS;
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// The output object for one batch line that is valid UTF-8.
fn batch_result(line: &str, decide: &impl Fn(&str) -> Value) -> Value {
    match batch_text(line) {
        Ok((text, echo)) => {
            let mut v = decide(&text);
            echo_fields(&mut v, echo);
            v
        }
        Err(v) => v,
    }
}

/// The whole of stdin as one line (a trailing newline removed).
pub(crate) fn read_stdin() -> Result<String, ExitCode> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| super::fail(format!("cannot read the line from stdin: {e}")))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// One batch input line: its `text` and the other fields to echo back, or the error object to
/// print in its place.
fn batch_text(line: &str) -> Result<(String, Map<String, Value>), Value> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| json!({"error": format!("input line is not JSON: {e}")}))?;
    let Value::Object(mut obj) = value else {
        return Err(json!({"error": "input line is not a JSON object with a string field `text`"}));
    };
    match obj.remove("text") {
        Some(Value::String(text)) => Ok((text, obj)),
        Some(_) => {
            obj.insert("error".into(), json!("field `text` must be a string"));
            Err(Value::Object(obj))
        }
        None => {
            obj.insert("error".into(), json!("missing string field `text`"));
            Err(Value::Object(obj))
        }
    }
}

/// Copy the input's other fields into the output object, without overwriting the output's own.
fn echo_fields(out: &mut Value, echo: Map<String, Value>) {
    if let Some(obj) = out.as_object_mut() {
        for (k, v) in echo {
            obj.entry(k).or_insert(v);
        }
    }
}

/// `--platform` as written on the command line.
pub(crate) fn parse_platform(text: &str) -> Result<crate::catalog::Platform, String> {
    crate::catalog::Platform::parse(text)
        .ok_or_else(|| format!("`{text}` is not a platform: use `windows`, `unix` or `unknown`"))
}

/// `1 record`, `2 records`: a count with its noun.
pub(crate) fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn one_skew_default_and_a_bound_for_every_command() {
        let default = parse_skew(DEFAULT_SKEW_SECS).unwrap();
        assert_eq!(i64::from(default), token::DEFAULT_SKEW.num_seconds());
        assert_eq!(parse_skew("300"), Ok(300));
        for too_much in ["301", "3600", "86400", "4294967295"] {
            assert!(parse_skew(too_much).is_err(), "{too_much}");
        }
        assert!(parse_skew("-1").is_err());
        assert!(parse_skew("1e9").is_err());
    }
}
