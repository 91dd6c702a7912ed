//! How jitsh's clients reach the approval service: one place that builds every HTTP client, so
//! each of them verifies the service's TLS certificate the same way and none sends a credential
//! in clear text across a network.
//!
//! Trust roots: the system's CA certificates, or only the certificates in the file given with
//! `--ca FILE` (also `JITSH_CA`, or `ca = "FILE"` in the client settings), for a service whose
//! certificate comes from a private CA. Plain `http://` is accepted only for a loopback host,
//! unless `JITSH_INSECURE_HTTP=1` (or `insecure_http = true` in the client settings) says a
//! network path is trusted.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Largest CA file read (a system bundle is about 200 KiB).
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// Why no client could be built for a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NetError {
    #[error("`{0}` is not an http:// or https:// URL{hint}", hint = url_hint(.0))]
    BadUrl(String),
    #[error("`{url}` is plain HTTP to a host that is not loopback, so the credential and tokens would cross the network unencrypted; use https:// (the service's --tls-cert), or set JITSH_INSECURE_HTTP=1 if a trusted network or proxy protects the path")]
    Cleartext { url: String },
    #[error("CA file `{path}`: {message}")]
    Ca { path: String, message: String },
    #[error("the HTTP client could not be set up: {0}")]
    Client(String),
}

/// Why a service URL was not accepted, in words: most often the scheme is missing.
fn url_hint(url: &str) -> String {
    if !url.contains("://") {
        format!(": it has no scheme; write `https://{url}` (or `http://{url}` on loopback)")
    } else if url.chars().any(char::is_whitespace) {
        ": it contains a space".to_owned()
    } else {
        String::new()
    }
}

/// Transport settings of this process, set once by the command line before any client is built.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// Trust only the CA certificates in this PEM file instead of the system's.
    pub ca: Option<PathBuf>,
    /// Allow `http://` to hosts that are not loopback.
    pub insecure_http: bool,
}

static TRANSPORT: OnceLock<Transport> = OnceLock::new();

/// Set the process's transport settings; the first call wins (the CLI calls it once at start).
pub(crate) fn configure(transport: Transport) {
    let _ = TRANSPORT.set(transport);
}

fn transport() -> Transport {
    TRANSPORT.get().cloned().unwrap_or_else(|| Transport {
        ca: None,
        insecure_http: insecure_from_env(),
    })
}

/// The CA file clients trust instead of the system's, if one is set.
pub(crate) fn configured_ca() -> Option<PathBuf> {
    transport().ca
}

/// A client error as a person can act on it (connection refused, the host name unknown, a TLS
/// failure and why, no answer in time), without the URL, which the caller names itself.
pub fn describe(e: &reqwest::Error) -> String {
    // The whole chain of causes, each text once (hyper and rustls repeat their cause).
    let mut chain: Vec<String> = Vec::new();
    let mut refused = false;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        let shown = cause.to_string();
        if !shown.is_empty() && !chain.iter().any(|c| c.contains(&shown)) {
            chain.push(shown);
        }
        source = cause.source();
    }
    let all = chain.join(": ");
    let lower = all.to_ascii_lowercase();
    describe_causes(e.is_timeout(), e.is_connect(), refused, &all, &lower)
}

fn describe_causes(timeout: bool, connect: bool, refused: bool, all: &str, lower: &str) -> String {
    if timeout {
        return "no answer in time (the service is slow or a firewall drops the traffic)".into();
    }
    if refused || lower.contains("connection refused") {
        return "connection refused: nothing listens at that host and port (is the service running, and is the port right?)".into();
    }
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        return "the host name could not be resolved (check the spelling of the URL)".into();
    }
    if lower.contains("certificate") {
        return format!(
            "TLS failure: {all} (the service's TLS certificate is not trusted here: give the CA that issued it with --ca FILE, or check the URL)"
        );
    }
    if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        return "TLS failure: the server did not answer with TLS (is it plain http://?)".into();
    }
    if lower.contains("tls") || lower.contains("handshake") || lower.contains("alert") {
        return format!("TLS failure: {all}");
    }
    if lower.contains("header value") {
        return "the credential holds characters a credential never has (a space or line break?): check JITSH_CREDENTIAL, --credential, or `credential` in ~/.config/jitsh/config.toml".into();
    }
    let head = if connect {
        "could not connect"
    } else {
        "the request failed"
    };
    if all.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {all}")
    }
}

/// A credential is printable ASCII without spaces; anything else (a pasted line break, a quote)
/// would be refused by the HTTP layer with a message about headers, so say what to fix here.
pub(crate) fn check_credential(credential: &str) -> Result<(), String> {
    if !credential.is_empty() && credential.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    Err("the credential is empty or holds characters a credential never has (a space or line break?): check JITSH_CREDENTIAL, --credential, or `credential` in ~/.config/jitsh/config.toml".into())
}

/// What to tell a person whose credential the service did not accept (HTTP 401).
pub(crate) const UNKNOWN_CREDENTIAL: &str = "the service does not accept this credential: check JITSH_CREDENTIAL (or --credential, or `credential` in ~/.config/jitsh/config.toml); `jitsh user add` prints a user's credential";

/// `JITSH_INSECURE_HTTP=1` (or `true`, `yes`).
pub(crate) fn insecure_from_env() -> bool {
    std::env::var("JITSH_INSECURE_HTTP")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// A client for the approval service at `base` (whole calls limited to `timeout`, connecting to
/// `connect`), after checking that the URL may carry a credential.
pub(crate) fn client_for(
    base: &str,
    timeout: Duration,
    connect: Duration,
) -> Result<reqwest::Client, NetError> {
    let t = transport();
    check_url(base, t.insecure_http)?;
    // Plain HTTP (loopback, or allowed by configuration) never reaches TLS, since redirects are
    // refused: the system's roots, whose parsing was most of a gated shell's start-up (34 of
    // its 43 million instructions), are left unloaded. Should such a client meet TLS, it
    // trusts nothing.
    let tls = reqwest::Url::parse(base).map_or(true, |u| u.scheme() != "http");
    build(timeout, connect, &t, tls)
}

/// Refuse URLs whose traffic would cross a network in clear text.
pub(crate) fn check_url(url: &str, insecure_http: bool) -> Result<(), NetError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| NetError::BadUrl(url.to_owned()))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if insecure_http || is_loopback(&parsed) => Ok(()),
        "http" => Err(NetError::Cleartext {
            url: url.to_owned(),
        }),
        _ => Err(NetError::BadUrl(url.to_owned())),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn build(
    timeout: Duration,
    connect: Duration,
    t: &Transport,
    tls: bool,
) -> Result<reqwest::Client, NetError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect)
        // A redirect could move the credential to another URL or down to plain HTTP.
        .redirect(reqwest::redirect::Policy::none())
        .https_only(false);
    if t.ca.is_some() || !tls {
        builder = builder.tls_built_in_root_certs(false);
    }
    if let Some(path) = &t.ca {
        for cert in read_ca(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| NetError::Client(e.to_string()))
}

/// The certificates of a PEM file; at least one is required.
fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, NetError> {
    let err = |message: String| NetError::Ca {
        path: path.display().to_string(),
        message,
    };
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CA_FILE + 1), &mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(err(format!("larger than {} MiB", MAX_CA_FILE >> 20)));
    }
    let certs = reqwest::Certificate::from_pem_bundle(&bytes)
        .map_err(|_| err("not PEM certificates (-----BEGIN CERTIFICATE-----)".into()))?;
    if certs.is_empty() {
        return Err(err(
            "holds no certificate (-----BEGIN CERTIFICATE-----)".into()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn client_errors_read_as_what_happened() {
        let refused = describe_causes(false, true, true, "tcp connect error", "tcp connect error");
        assert!(refused.starts_with("connection refused"), "{refused}");
        let dns = "dns error: failed to lookup address information";
        assert!(describe_causes(false, true, false, dns, dns)
            .contains("host name could not be resolved"));
        let tls = "invalid peer certificate: UnknownIssuer";
        let text = describe_causes(false, true, false, tls, &tls.to_ascii_lowercase());
        assert!(
            text.starts_with("TLS failure") && text.contains("--ca FILE"),
            "{text}"
        );
        let plain = "received corrupt message of type InvalidContentType";
        let text = describe_causes(false, true, false, plain, &plain.to_ascii_lowercase());
        assert!(text.contains("did not answer with TLS"), "{text}");
        let header = "failed to parse header value";
        let text = describe_causes(false, false, false, header, header);
        assert!(
            text.contains("JITSH_CREDENTIAL") && !text.contains("header"),
            "{text}"
        );
        assert!(describe_causes(true, false, false, "", "").starts_with("no answer in time"));
        for bad in ["", "abc def", "abc\n", "ab\u{e9}"] {
            let e = check_credential(bad).unwrap_err();
            assert!(e.contains("JITSH_CREDENTIAL"), "{e}");
        }
        assert!(check_credential("jitsh_0123abc-_.").is_ok());
        let bad = NetError::BadUrl("localhost:8443".into()).to_string();
        assert!(
            bad.contains("no scheme") && bad.contains("https://localhost:8443"),
            "{bad}"
        );
    }

    #[test]
    fn cleartext_is_refused_off_loopback() {
        for url in [
            "http://10.0.0.5:8750",
            "http://jitsh.contoso.test",
            "http://0.0.0.0:8750",
            "http://[fe80::1]:8750",
            "http://localhost.contoso.test:8750",
            "http://127.0.0.1@jitsh.contoso.test",
            "http://[::ffff:10.0.0.5]",
        ] {
            assert_eq!(
                check_url(url, false),
                Err(NetError::Cleartext { url: url.into() }),
                "{url}"
            );
            assert_eq!(check_url(url, true), Ok(()), "{url}");
        }
        for url in [
            "http://127.0.0.1:8750",
            "http://127.3.4.5",
            "http://[::1]:8750",
            "http://localhost:8750",
            "http://LOCALHOST",
            "https://jitsh.contoso.test",
            "https://10.0.0.5:8750",
        ] {
            assert_eq!(check_url(url, false), Ok(()), "{url}");
        }
        for url in [
            "ftp://x",
            "jitsh.contoso.test:8750",
            "",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                check_url(url, true),
                Err(NetError::BadUrl(url.into())),
                "{url}"
            );
        }
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for path in [&empty, &junk, &dir.path().join("missing.pem")] {
            let t = Transport {
                ca: Some(path.clone()),
                insecure_http: false,
            };
            assert!(
                matches!(
                    build(Duration::from_secs(1), Duration::from_secs(1), &t, true),
                    Err(NetError::Ca { .. })
                ),
                "{}",
                path.display()
            );
        }
    }
}
