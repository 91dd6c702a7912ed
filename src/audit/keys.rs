//! Checkpoint keys: the service's Ed25519 signing seed and the public keys a reviewer trusts.
//!
//! Pure: keys come in as bytes or text, never from files here. The seed is kept in a
//! redacted-`Debug` type so it never reaches logs.

use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};

/// The service's checkpoint signing key: a key id and a 32-byte Ed25519 seed.
#[derive(Clone)]
pub struct AuditSigner {
    pub kid: String,
    pub seed: [u8; 32],
}

impl AuditSigner {
    /// The checkpoint signer for a service signing key: checkpoints verify with the same
    /// `signing.pub` that gates trust for tokens.
    pub fn from_signing_key(key: &crate::token::SigningKey) -> AuditSigner {
        AuditSigner {
            kid: key.kid().to_owned(),
            seed: key.seed_bytes(),
        }
    }
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner")
            .field("kid", &self.kid)
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl AuditSigner {
    /// The key pair ring signs with; built once per writer.
    pub(crate) fn key_pair(&self) -> Result<Ed25519KeyPair, KeyError> {
        Ed25519KeyPair::from_seed_unchecked(&self.seed).map_err(|_| KeyError::BadSeed)
    }

    /// The public half, for `--trust-key` files and tests.
    pub fn verify_key(&self) -> Result<AuditVerifyKey, KeyError> {
        let pair = self.key_pair()?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(AuditVerifyKey {
            kid: Some(self.kid.clone()),
            public,
        })
    }
}

/// A public key trusted to sign checkpoints. Without a `kid` it is tried for any key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerifyKey {
    pub kid: Option<String>,
    pub public: [u8; 32],
}

impl AuditVerifyKey {
    /// Whether this key may have signed a checkpoint naming `kid`.
    pub fn matches(&self, kid: &str) -> bool {
        self.kid.as_deref().is_none_or(|k| k == kid)
    }

    /// Check an Ed25519 signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(message, signature)
            .is_ok()
    }

    /// `kid=NAME KEY` in the trust-key file format (see [`parse_trust_key`]).
    pub fn to_text(&self) -> String {
        let key = base64::engine::general_purpose::STANDARD.encode(self.public);
        match &self.kid {
            Some(kid) => format!("kid={kid}\n{key}\n"),
            None => format!("{key}\n"),
        }
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the audit signing seed is not a valid Ed25519 seed")]
    BadSeed,
    #[error("trust key file has no public key: expected 32 bytes as hex or base64")]
    NoKey,
    #[error("trust key file has more than one public key")]
    TwoKeys,
    #[error("`{0}` is not a 32-byte public key in hex or base64")]
    BadKey(String),
}

/// Parse a trust-key file: whitespace-separated words, one of them the 32-byte public key as
/// hex or base64 (standard or URL-safe, padded or not), optionally one `kid=NAME`. Lines starting
/// with `#` are comments.
///
/// Kept in one function so the file format can follow the token module's public key files.
pub fn parse_trust_key(text: &str) -> Result<AuditVerifyKey, KeyError> {
    // The service's own public key file (`jitsh keygen`, `STATE/signing.pub`).
    if text.contains("-----BEGIN JITSH ED25519 PUBLIC KEY-----") {
        let key = crate::token::PublicKey::from_file_text(text)
            .map_err(|e| KeyError::BadKey(e.to_string()))?;
        return Ok(AuditVerifyKey {
            kid: Some(key.kid().to_owned()),
            public: *key.bytes(),
        });
    }
    let mut kid = None;
    let mut public = None;
    let words = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace);
    for word in words {
        if let Some(name) = word
            .strip_prefix("kid=")
            .or_else(|| word.strip_prefix("kid:"))
        {
            kid = Some(name.to_owned());
            continue;
        }
        let key = decode_key(word).ok_or_else(|| KeyError::BadKey(shorten(word)))?;
        if public.replace(key).is_some() {
            return Err(KeyError::TwoKeys);
        }
    }
    Ok(AuditVerifyKey {
        kid,
        public: public.ok_or(KeyError::NoKey)?,
    })
}

fn decode_key(word: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = if word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
        crate::audit::chain::hex_decode(word)?
    } else {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(word).ok())?
    };
    bytes.try_into().ok()
}

/// User input echoed in an error, cut to a readable length.
fn shorten(word: &str) -> String {
    let mut out: String = word.chars().take(24).collect();
    if out.len() < word.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    fn signer() -> AuditSigner {
        AuditSigner {
            kid: "k1".into(),
            seed: [7; 32],
        }
    }

    #[test]
    fn debug_redacts_seed() {
        let text = format!("{:?}", signer());
        assert!(text.contains("redacted"));
        assert!(!text.contains("7, 7"));
    }

    #[test]
    fn trust_key_round_trips_in_text_hex_and_base64() {
        let key = signer().verify_key().unwrap();
        assert_eq!(parse_trust_key(&key.to_text()).unwrap(), key);
        let hex = crate::audit::chain::hex(&key.public);
        let parsed = parse_trust_key(&format!("# comment\n{hex}\n")).unwrap();
        assert_eq!(parsed.public, key.public);
        assert_eq!(parsed.kid, None);
        assert!(parsed.matches("anything"));
    }

    #[test]
    fn trust_key_rejects_junk() {
        assert_eq!(parse_trust_key(""), Err(KeyError::NoKey));
        assert!(matches!(parse_trust_key("abcd"), Err(KeyError::BadKey(_))));
        let hex = "00".repeat(32);
        assert_eq!(
            parse_trust_key(&format!("{hex} {hex}")),
            Err(KeyError::TwoKeys)
        );
    }

    #[test]
    fn signature_verifies_only_with_the_right_key() {
        let pair = signer().key_pair().unwrap();
        let sig = pair.sign(b"m");
        let key = signer().verify_key().unwrap();
        assert!(key.verify(b"m", sig.as_ref()));
        assert!(!key.verify(b"n", sig.as_ref()));
    }
}
