//! The deployment's signing key as the PostgreSQL store keeps it: encrypted with a secret the
//! replicas hold outside the database (the file named by `JITSH_KEY_SECRET_FILE`), so reading
//! the database is not enough to sign tokens or to re-sign an edited audit chain.
//!
//! Stored form: `enc:v1:KID:SALT:NONCE:CIPHERTEXT` (base64url), AES-256-GCM under a key derived
//! from the secret with PBKDF2-HMAC-SHA256 (a fresh salt per key), the kid as associated data.
//! Without a secret the key is kept as its key file text (the service warns at start).

use std::num::NonZeroU32;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::SecureRandom as _;

use crate::token::SigningKey;

/// The environment variable naming the file with the key secret.
pub const KEY_SECRET_ENV: &str = "JITSH_KEY_SECRET_FILE";

const PREFIX: &str = "enc:v1:";
const ITERATIONS: u32 = 100_000;
/// Shortest secret accepted (bytes, after trimming surrounding whitespace).
const MIN_SECRET: usize = 16;

/// Why the stored key could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error(
        "the deployment's signing key in the store is encrypted: set {KEY_SECRET_ENV} to the file holding the replicas' key secret"
    )]
    NeedSecret,
    #[error(
        "the deployment's signing key in the store could not be decrypted: the secret in {KEY_SECRET_ENV} is not the one it was stored with, or the row was changed"
    )]
    WrongSecret,
    #[error("the key secret file `{path}`: {message}")]
    SecretFile { path: String, message: String },
    #[error("the deployment's signing key in the store cannot be read: {0}")]
    Unreadable(String),
    #[error("no randomness available to encrypt the signing key")]
    Random,
}

/// The secret the replicas share, never shown.
pub struct KeySecret(Vec<u8>);

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(<redacted>)")
    }
}

impl KeySecret {
    /// The secret in the file `JITSH_KEY_SECRET_FILE` names, if it is set.
    pub fn from_env() -> Result<Option<KeySecret>, KeyStoreError> {
        let Some(path) = std::env::var_os(KEY_SECRET_ENV).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let err = |message: String| KeyStoreError::SecretFile {
            path: std::path::Path::new(&path).display().to_string(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
        let secret = bytes.trim_ascii();
        if secret.len() < MIN_SECRET {
            return Err(err(format!(
                "it holds {} bytes; a key secret needs at least {MIN_SECRET} (e.g. `head -c 32 /dev/urandom | base64`)",
                secret.len()
            )));
        }
        Ok(Some(KeySecret(secret.to_vec())))
    }

    fn cipher(&self, salt: &[u8]) -> Result<LessSafeKey, KeyStoreError> {
        let mut key = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(ITERATIONS).ok_or(KeyStoreError::Random)?,
            salt,
            &self.0,
            &mut key,
        );
        let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| KeyStoreError::Random)?;
        Ok(LessSafeKey::new(unbound))
    }
}

/// `key` as the store keeps it: encrypted when there is a secret.
pub fn seal(key: &SigningKey, secret: Option<&KeySecret>) -> Result<String, KeyStoreError> {
    let Some(secret) = secret else {
        return Ok(key.to_file_text());
    };
    let rng = ring::rand::SystemRandom::new();
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut salt).map_err(|_| KeyStoreError::Random)?;
    rng.fill(&mut nonce).map_err(|_| KeyStoreError::Random)?;
    let mut data = key.to_file_text().into_bytes();
    secret
        .cipher(&salt)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(key.kid().as_bytes()),
            &mut data,
        )
        .map_err(|_| KeyStoreError::Random)?;
    Ok(format!(
        "{PREFIX}{}:{}:{}:{}",
        key.kid(),
        B64.encode(salt),
        B64.encode(nonce),
        B64.encode(&data)
    ))
}

/// Whether `stored` is encrypted.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The key from its stored form.
pub fn open(stored: &str, secret: Option<&KeySecret>) -> Result<SigningKey, KeyStoreError> {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return SigningKey::from_file_text(stored)
            .map_err(|e| KeyStoreError::Unreadable(e.to_string()));
    };
    let secret = secret.ok_or(KeyStoreError::NeedSecret)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let [kid, salt, nonce, data] = parts.as_slice() else {
        return Err(KeyStoreError::Unreadable("not an encrypted key".into()));
    };
    let decode = |t: &str| {
        B64.decode(t)
            .map_err(|_| KeyStoreError::Unreadable("not an encrypted key".into()))
    };
    let salt = decode(salt)?;
    let nonce: [u8; NONCE_LEN] = decode(nonce)?
        .try_into()
        .map_err(|_| KeyStoreError::Unreadable("bad nonce".into()))?;
    let mut data = decode(data)?;
    let plain = secret
        .cipher(&salt)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut data,
        )
        .map_err(|_| KeyStoreError::WrongSecret)?;
    let text = std::str::from_utf8(plain).map_err(|_| KeyStoreError::WrongSecret)?;
    let key =
        SigningKey::from_file_text(text).map_err(|e| KeyStoreError::Unreadable(e.to_string()))?;
    if key.kid() != *kid {
        return Err(KeyStoreError::WrongSecret);
    }
    Ok(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_hides_the_seed() {
        let key = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let secret = KeySecret(b"0123456789abcdef-one".to_vec());
        let stored = seal(&key, Some(&secret)).unwrap();
        assert!(is_sealed(&stored));
        let seed_line = key.to_file_text().lines().nth(2).unwrap().to_owned();
        assert!(!stored.contains(&seed_line));
        assert_eq!(open(&stored, Some(&secret)).unwrap().kid(), key.kid());
        let other = KeySecret(b"0123456789abcdef-two".to_vec());
        assert!(matches!(
            open(&stored, Some(&other)),
            Err(KeyStoreError::WrongSecret)
        ));
        assert!(matches!(
            open(&stored, None),
            Err(KeyStoreError::NeedSecret)
        ));
        // The kid is bound: another key's kid in front of this ciphertext does not open.
        let swapped = stored.replacen(key.kid(), "0000000000000000", 1);
        assert!(open(&swapped, Some(&secret)).is_err());
        // Without a secret the key file text is kept, and opens as such.
        let plain = seal(&key, None).unwrap();
        assert!(!is_sealed(&plain));
        assert_eq!(open(&plain, Some(&secret)).unwrap().kid(), key.kid());
    }
}
