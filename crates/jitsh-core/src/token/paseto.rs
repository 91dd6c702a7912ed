//! PASETO v4.public: pre-authentication encoding, Ed25519 signing and verification.
//!
//! Only `v4.public` exists here: the header is fixed, so there is no algorithm negotiation to get
//! wrong. Decoding is strict: base64url without padding and with canonical trailing bits, a
//! signature of exactly 64 bytes, and no empty footer segment (an empty footer is encoded by
//! leaving the segment out, so `v4.public.X.` is refused rather than read two ways).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};

use super::TokenError;

/// The only header jitsh accepts.
pub const HEADER: &str = "v4.public.";

/// Length of an Ed25519 signature.
const SIG_LEN: usize = 64;

/// Upper bound on a token's text: far above any real grant, low enough that a hostile file cannot
/// make verification allocate without limit.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The parts of a structurally valid `v4.public` token; nothing in it is authenticated yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The signed message (the claims, for jitsh tokens).
    pub message: Vec<u8>,
    /// The Ed25519 signature over the PAE of header, message, footer and implicit assertion.
    pub signature: [u8; SIG_LEN],
    /// The footer bytes (empty when the token has none).
    pub footer: Vec<u8>,
}

/// Pre-authentication encoding (PASETO spec, "PAE"): the piece count, then each piece prefixed by
/// its length, all as 64-bit little-endian with the top bit cleared.
pub fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let total: usize = pieces.iter().map(|p| p.len() + 8).sum::<usize>() + 8;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

fn le64(n: usize) -> [u8; 8] {
    // usize is at most 64 bits on every supported target; clearing the top bit is the spec's rule.
    ((n as u64) & (u64::MAX >> 1)).to_le_bytes()
}

/// Sign `message` as a `v4.public` token with the key pair derived from a 32-byte Ed25519 seed.
pub fn sign(
    seed: &[u8; 32],
    message: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> Result<String, TokenError> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| TokenError::InvalidKey)?;
    Ok(sign_with(&pair, message, footer, implicit))
}

/// Sign `message` as a `v4.public` token with an already derived key pair.
pub(crate) fn sign_with(
    pair: &Ed25519KeyPair,
    message: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> String {
    let m2 = pae(&[HEADER.as_bytes(), message, footer, implicit]);
    let sig = pair.sign(&m2);
    let mut body = Vec::with_capacity(message.len() + SIG_LEN);
    body.extend_from_slice(message);
    body.extend_from_slice(sig.as_ref());
    let mut token = String::with_capacity(HEADER.len() + (body.len() + footer.len()) * 4 / 3 + 8);
    token.push_str(HEADER);
    URL_SAFE_NO_PAD.encode_string(&body, &mut token);
    if !footer.is_empty() {
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(footer, &mut token);
    }
    token
}

/// Split and decode a token without checking its signature.
pub fn decode(token: &str) -> Result<Decoded, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge {
            limit: MAX_TOKEN_LEN,
        });
    }
    let rest = token.strip_prefix(HEADER).ok_or(TokenError::WrongHeader)?;
    let mut parts = rest.split('.');
    let body_text = parts.next().unwrap_or_default();
    let footer_text = parts.next();
    if parts.next().is_some() {
        return Err(TokenError::Malformed("too many `.`-separated parts"));
    }
    let body = URL_SAFE_NO_PAD
        .decode(body_text)
        .map_err(|_| TokenError::Malformed("the payload is not canonical base64url"))?;
    let footer = match footer_text {
        None => Vec::new(),
        Some("") => return Err(TokenError::Malformed("the footer segment is empty")),
        Some(text) => URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| TokenError::Malformed("the footer is not canonical base64url"))?,
    };
    let split = body
        .len()
        .checked_sub(SIG_LEN)
        .ok_or(TokenError::Malformed(
            "the payload is shorter than a signature",
        ))?;
    let (message, sig) = body.split_at(split);
    let signature: [u8; SIG_LEN] = sig
        .try_into()
        .map_err(|_| TokenError::Malformed("the payload is shorter than a signature"))?;
    Ok(Decoded {
        message: message.to_vec(),
        signature,
        footer,
    })
}

/// Check a decoded token's signature with a 32-byte Ed25519 public key.
pub fn verify_decoded(
    public_key: &[u8],
    decoded: &Decoded,
    implicit: &[u8],
) -> Result<(), TokenError> {
    let m2 = pae(&[
        HEADER.as_bytes(),
        &decoded.message,
        &decoded.footer,
        implicit,
    ]);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&m2, &decoded.signature)
        .map_err(|_| TokenError::BadSignature)
}

/// Verify a token and return its message (PASETO's `Verify`). When `expected_footer` is given the
/// token's footer must equal it (compared in constant time, as the spec asks).
pub fn verify(
    public_key: &[u8],
    token: &str,
    expected_footer: Option<&[u8]>,
    implicit: &[u8],
) -> Result<Vec<u8>, TokenError> {
    let decoded = decode(token)?;
    if let Some(expected) = expected_footer {
        if !constant_time_eq(expected, &decoded.footer) {
            return Err(TokenError::FooterMismatch);
        }
    }
    verify_decoded(public_key, &decoded, implicit)?;
    Ok(decoded.message)
}

/// Equality whose time depends only on the lengths (the spec asks for it on footers; lengths are
/// public anyway).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_examples() {
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
    }

    #[test]
    fn decode_refuses_structural_damage() {
        let seed = [7u8; 32];
        let token = sign(&seed, b"{}", b"f", b"").unwrap();
        assert!(decode(&token).is_ok());
        assert!(matches!(
            decode(&format!("{token}.")),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            decode(&format!("{token}.AA")),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            decode(&token.replace("v4.public.", "v4.local.")),
            Err(TokenError::WrongHeader)
        ));
        assert!(matches!(
            decode("v4.public.AAAA"),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            decode("v4.public."),
            Err(TokenError::Malformed(_))
        ));
        let no_footer = sign(&seed, b"{}", b"", b"").unwrap();
        assert_eq!(no_footer.matches('.').count(), 2);
        assert!(matches!(
            decode(&format!("{no_footer}=")),
            Err(TokenError::Malformed(_))
        ));
    }
}
