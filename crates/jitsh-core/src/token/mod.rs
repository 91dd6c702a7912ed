//! Approval tokens: PASETO v4.public (Ed25519 via `ring`) carrying [`Claims`], signed by the
//! approval service and checked by the gate.
//!
//! A token is `v4.public.<base64url(claims JSON || signature)>.<base64url({"kid":"..."})>`. The
//! footer's kid picks the key from a [`TrustStore`]; keys rotate by adding the new key and
//! removing the old one once its tokens have expired.
//!
//! Checking happens in two steps so a gate pays for the signature once per token, not per line:
//! - [`verify`] (at load time): structure, footer, trusted key, signature, claims JSON. The only
//!   way to get a [`VerifiedToken`].
//! - [`VerifiedToken::check`] (per line): `nbf - skew <= now < exp + skew` and the subject.
//!   User names compare case-insensitively (Unicode lowercase on both sides), as Windows and
//!   Exchange account names do. Scope (`rule`, `tasks`, `params`, `command`, `uses`) is the
//!   gate's job.
//!
//! Key files are a small armoured text format, one file per key:
//!
//! ```text
//! -----BEGIN JITSH ED25519 PRIVATE KEY-----      (or PUBLIC KEY)
//! kid: 0123456789abcdef                          (first 16 hex of SHA-256 of the public key)
//! <standard base64 of the 32-byte seed, or of the 32-byte public key>
//! -----END JITSH ED25519 PRIVATE KEY-----
//! ```
//!
//! Parsing is strict (exact lines, canonical base64, 32 bytes, kid must match the key).
//!
//! Errors never contain token text or key material. This module does no I/O and reads no clock.

mod claims;
mod keys;
pub mod paseto;
mod verify;

pub use claims::Claims;
pub use keys::{kid_of, PublicKey, SigningKey, TrustStore};
pub use verify::{
    issue, peek_unverified, verify, Unverified, VerifiedToken, DEFAULT_SKEW, MAX_SKEW,
};

use chrono::{DateTime, Utc};

/// Why a token or key was refused. Messages are one actionable sentence each.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("token is not a PASETO v4.public token")]
    WrongHeader,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token is longer than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("token footer does not match the expected footer")]
    FooterMismatch,
    #[error("token footer is not JSON with a string `kid`")]
    NoKid,
    #[error("token signed by unknown key `{kid}`")]
    UnknownKey { kid: String },
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
    #[error("token is not valid before {nbf}")]
    NotYetValid { nbf: String },
    #[error("token expired at {exp}")]
    Expired { exp: String },
    #[error("token is for user `{token_user}`, not `{user}`")]
    WrongUser { token_user: String, user: String },
    #[error("claims cannot be issued: {0}")]
    Unissuable(String),
    #[error("key is not a valid Ed25519 key")]
    InvalidKey,
    #[error("key file is not valid: {0}")]
    KeyFile(&'static str),
    #[error("the system random source failed")]
    Random,
}

/// RFC 3339 text for messages; falls back to the debug form if the instant cannot be formatted.
fn show_time(t: DateTime<Utc>) -> String {
    crate::rfc3339::format(t).unwrap_or_else(|| format!("{t}"))
}

/// Fuzzing entry point: run every decoder over arbitrary bytes. Must never panic.
pub fn fuzz_decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = paseto::decode(text);
    let _ = peek_unverified(text);
    let _ = SigningKey::from_file_text(text);
    let _ = PublicKey::from_file_text(text);
    // A store holding one fixed key, so inputs that name its kid reach the signature check.
    if let Ok(key) = SigningKey::from_seed([0x4a; 32]) {
        let trust: TrustStore = [key.public_key()].into_iter().collect();
        if let Ok(verified) = verify(text, &trust) {
            let _ = verified.check(chrono::DateTime::UNIX_EPOCH, DEFAULT_SKEW, "fuzz");
        }
    }
}
