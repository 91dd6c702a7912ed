//! Ed25519 keys, their text files, and the trust store that maps key ids to public keys.
//!
//! A key id (kid) is the first 16 hex digits of the SHA-256 of the 32-byte public key, so it is
//! derived, never chosen: a key file whose `kid:` line disagrees with its key is refused.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use super::TokenError;

const PRIVATE_BEGIN: &str = "-----BEGIN JITSH ED25519 PRIVATE KEY-----";
const PRIVATE_END: &str = "-----END JITSH ED25519 PRIVATE KEY-----";
const PUBLIC_BEGIN: &str = "-----BEGIN JITSH ED25519 PUBLIC KEY-----";
const PUBLIC_END: &str = "-----END JITSH ED25519 PUBLIC KEY-----";

/// Derive the key id of a public key.
pub fn kid_of(public_key: &[u8; 32]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    digest
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An Ed25519 private key (the 32-byte seed) with its key id.
///
/// `Debug` shows only the kid; the seed is overwritten when the key is dropped (best effort: the
/// compiler may have copied it, and `ring` keeps the expanded key in `pair`, which it does not
/// wipe). The key pair is built once here: deriving it costs about as much as a signature.
pub struct SigningKey {
    kid: String,
    seed: [u8; 32],
    public: [u8; 32],
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// A fresh key from the system's secure random source.
    pub fn generate(rng: &dyn SecureRandom) -> Result<SigningKey, TokenError> {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed).map_err(|_| TokenError::Random)?;
        let key = SigningKey::from_seed(seed);
        wipe(&mut seed);
        key
    }

    /// The key for a given 32-byte Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Result<SigningKey, TokenError> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| TokenError::InvalidKey)?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| TokenError::InvalidKey)?;
        Ok(SigningKey {
            kid: kid_of(&public),
            seed,
            public,
            pair,
        })
    }

    /// The seed, for the audit log's checkpoint signer (same key). Never printed.
    pub fn seed_bytes(&self) -> [u8; 32] {
        self.seed
    }

    /// The key id, as written in token footers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            bytes: self.public,
        }
    }

    /// The seed, for the service store's sealing key (derived from the same key). Never printed.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The key pair, derived once when the key was made.
    pub(crate) fn pair(&self) -> &Ed25519KeyPair {
        &self.pair
    }

    /// The private key file text:
    ///
    /// ```text
    /// -----BEGIN JITSH ED25519 PRIVATE KEY-----
    /// kid: 0123456789abcdef
    /// <standard base64 of the 32-byte seed>
    /// -----END JITSH ED25519 PRIVATE KEY-----
    /// ```
    pub fn to_file_text(&self) -> String {
        let body = STANDARD.encode(self.seed);
        format!(
            "{PRIVATE_BEGIN}\nkid: {}\n{body}\n{PRIVATE_END}\n",
            self.kid
        )
    }

    /// Parse [`SigningKey::to_file_text`]'s format (LF or CRLF line ends, nothing else around it).
    pub fn from_file_text(text: &str) -> Result<SigningKey, TokenError> {
        let (kid, mut seed) = parse_armor(text, PRIVATE_BEGIN, PRIVATE_END)?;
        let key = SigningKey::from_seed(seed);
        wipe(&mut seed);
        let key = key?;
        if key.kid != kid {
            return Err(TokenError::KeyFile(
                "its `kid:` line does not match the key",
            ));
        }
        Ok(key)
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        wipe(&mut self.seed);
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Overwrite secret bytes; `black_box` keeps the stores from being optimised away as dead.
fn wipe(bytes: &mut [u8; 32]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// An Ed25519 public key with its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kid: String,
    bytes: [u8; 32],
}

impl PublicKey {
    /// A public key from its 32 bytes; the kid is derived. The bytes are checked when a signature
    /// is verified (`ring` refuses keys that are not valid curve points).
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey {
            kid: kid_of(&bytes),
            bytes,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 32 raw key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The SHA-256 of the 32 key bytes in lowercase hex (64 digits): what a person compares
    /// before trusting the key (the kid is its first 16 digits).
    pub fn fingerprint(&self) -> String {
        ring::digest::digest(&ring::digest::SHA256, &self.bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The public key file text: as the private key file, with `PUBLIC` in the armour lines and
    /// the 32-byte public key as the body.
    pub fn to_file_text(&self) -> String {
        let body = STANDARD.encode(self.bytes);
        format!("{PUBLIC_BEGIN}\nkid: {}\n{body}\n{PUBLIC_END}\n", self.kid)
    }

    /// Parse [`PublicKey::to_file_text`]'s format.
    pub fn from_file_text(text: &str) -> Result<PublicKey, TokenError> {
        let (kid, bytes) = parse_armor(text, PUBLIC_BEGIN, PUBLIC_END)?;
        let key = PublicKey::from_bytes(bytes);
        if key.kid != kid {
            return Err(TokenError::KeyFile(
                "its `kid:` line does not match the key",
            ));
        }
        Ok(key)
    }
}

/// Strict reader for the four-line armoured format shared by both key files.
fn parse_armor(text: &str, begin: &str, end: &str) -> Result<(String, [u8; 32]), TokenError> {
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    if first != begin {
        let other = if begin == PRIVATE_BEGIN {
            PUBLIC_BEGIN
        } else {
            PRIVATE_BEGIN
        };
        return Err(TokenError::KeyFile(if first == other {
            if begin == PRIVATE_BEGIN {
                "it is a public key, a private key is needed here"
            } else {
                "it is a private key, a public key is needed here"
            }
        } else {
            "it does not start with a jitsh Ed25519 key header"
        }));
    }
    let kid = lines
        .next()
        .and_then(|l| l.strip_prefix("kid: "))
        .ok_or(TokenError::KeyFile("its second line is not `kid: ...`"))?;
    let body = lines
        .next()
        .ok_or(TokenError::KeyFile("it has no key line"))?;
    let decoded = STANDARD
        .decode(body)
        .map_err(|_| TokenError::KeyFile("its key line is not canonical base64"))?;
    let bytes: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| TokenError::KeyFile("its key is not 32 bytes"))?;
    if lines.next() != Some(end) {
        return Err(TokenError::KeyFile(
            "it does not end with the matching footer line",
        ));
    }
    if lines.next().is_some() {
        return Err(TokenError::KeyFile("it has text after the footer line"));
    }
    Ok((kid.to_owned(), bytes))
}

/// The public keys a gate trusts, by kid. Rotation: add the new key, keep the old one until the
/// tokens it signed have expired, then remove it.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: BTreeMap<String, PublicKey>,
}

impl TrustStore {
    /// An empty store (trusts nothing).
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Trust `key`; returns the key it replaced, if its kid was already present.
    pub fn add(&mut self, key: PublicKey) -> Option<PublicKey> {
        self.keys.insert(key.kid.clone(), key)
    }

    /// Stop trusting the key with this kid; returns it if it was present.
    pub fn remove(&mut self, kid: &str) -> Option<PublicKey> {
        self.keys.remove(kid)
    }

    /// The key with this kid.
    pub fn get(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.get(kid)
    }

    /// The trusted kids, sorted.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<PublicKey> for TrustStore {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> TrustStore {
        let mut store = TrustStore::new();
        for key in iter {
            store.add(key);
        }
        store
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_seed() {
        let key = SigningKey::from_seed([0xab; 32]).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, format!("SigningKey {{ kid: {:?}, .. }}", key.kid()));
        assert!(!shown.contains(&STANDARD.encode([0xab; 32])));
    }

    #[test]
    fn kid_is_sixteen_hex_digits_of_the_public_key_hash() {
        let key = SigningKey::from_seed([1; 32]).unwrap();
        assert_eq!(key.kid().len(), 16);
        assert!(key.kid().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(key.kid(), kid_of(key.public_key().bytes()));
        assert_ne!(key.kid(), SigningKey::from_seed([2; 32]).unwrap().kid());
    }

    #[test]
    fn fingerprint_is_the_full_hash_the_kid_starts_with() {
        let key = SigningKey::from_seed([4; 32]).unwrap().public_key();
        let fp = key.fingerprint();
        assert_eq!(fp.len(), 64);
        assert!(fp.starts_with(key.kid()));
        assert_ne!(
            fp,
            SigningKey::from_seed([5; 32])
                .unwrap()
                .public_key()
                .fingerprint()
        );
    }

    #[test]
    fn crlf_files_parse() {
        let key = SigningKey::from_seed([3; 32]).unwrap();
        let crlf = key.public_key().to_file_text().replace('\n', "\r\n");
        assert_eq!(PublicKey::from_file_text(&crlf).unwrap(), key.public_key());
    }
}
