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
pub enum NetError {
    #[error("`{0}` is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("`{url}` is plain HTTP to a host that is not loopback, so the credential and tokens would cross the network unencrypted; use https:// (the service's --tls-cert), or set JITSH_INSECURE_HTTP=1 if a trusted network or proxy protects the path")]
    Cleartext { url: String },
    #[error("CA file `{path}`: {message}")]
    Ca { path: String, message: String },
    #[error("the HTTP client could not be set up: {0}")]
    Client(String),
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
pub fn configure(transport: Transport) {
    let _ = TRANSPORT.set(transport);
}

fn transport() -> Transport {
    TRANSPORT.get().cloned().unwrap_or_else(|| Transport {
        ca: None,
        insecure_http: insecure_from_env(),
    })
}

/// The CA file clients trust instead of the system's, if one is set.
pub fn configured_ca() -> Option<PathBuf> {
    transport().ca
}

/// A client error with its causes (a TLS failure says why the certificate was refused), without
/// the URL, which the caller names itself.
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(cause) = source {
        let shown = cause.to_string();
        // hyper and rustls repeat their cause in their own message; show each text once.
        if !shown.is_empty() && !last.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        last = shown;
        source = cause.source();
    }
    if text.contains("certificate") {
        text.push_str(
            " (the service's TLS certificate is not trusted here: give the CA that issued it with --ca FILE, or check the URL)",
        );
    }
    text
}

/// `JITSH_INSECURE_HTTP=1` (or `true`, `yes`).
pub fn insecure_from_env() -> bool {
    std::env::var("JITSH_INSECURE_HTTP")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// A client for the approval service at `base` (whole calls limited to `timeout`, connecting to
/// `connect`), after checking that the URL may carry a credential.
pub fn client_for(
    base: &str,
    timeout: Duration,
    connect: Duration,
) -> Result<reqwest::Client, NetError> {
    let t = transport();
    check_url(base, t.insecure_http)?;
    build(timeout, connect, &t)
}

/// Refuse URLs whose traffic would cross a network in clear text.
pub fn check_url(url: &str, insecure_http: bool) -> Result<(), NetError> {
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

fn build(timeout: Duration, connect: Duration, t: &Transport) -> Result<reqwest::Client, NetError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect)
        // A redirect could move the credential to another URL or down to plain HTTP.
        .redirect(reqwest::redirect::Policy::none())
        .https_only(false);
    if let Some(path) = &t.ca {
        builder = builder.tls_built_in_root_certs(false);
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
                    build(Duration::from_secs(1), Duration::from_secs(1), &t),
                    Err(NetError::Ca { .. })
                ),
                "{}",
                path.display()
            );
        }
    }
}
