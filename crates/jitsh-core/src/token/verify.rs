//! Issuing and verifying jitsh tokens (claims + kid footer on top of [`super::paseto`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{paseto, show_time, Claims, SigningKey, TokenError, TrustStore};

/// Clock skew a gate tolerates by default at both ends of a token's lifetime; every command
/// that checks a token uses this default.
pub const DEFAULT_SKEW: Duration = Duration::seconds(60);

/// The largest skew any check tolerates: a larger one would stretch a grant past the window its
/// approver gave, so it is refused where it is configured and capped here whatever the caller
/// passes.
pub const MAX_SKEW: Duration = Duration::minutes(5);

/// Claim names [`Claims`] owns; `extra` may not repeat them (that would emit duplicate keys).
const KNOWN_CLAIMS: [&str; 14] = [
    "iss",
    "sub",
    "jti",
    "iat",
    "nbf",
    "exp",
    "rule",
    "tasks",
    "params",
    "request",
    "approvers",
    "uses",
    "command",
    "offline",
];

/// Claims a jitsh token must not carry: `aud` would promise a restriction to one gate that no
/// jitsh gate enforces, so a token naming one is refused rather than honoured more widely than
/// its issuer meant.
const REFUSED_CLAIMS: [&str; 1] = ["aud"];

/// Longest kid echoed back in an error; footers are attacker-controlled text.
const MAX_SHOWN_KID: usize = 64;

#[derive(Serialize, Deserialize)]
struct Footer {
    kid: String,
}

/// Sign `claims` with `key`; the footer is `{"kid":"<key's kid>"}`.
pub fn issue(claims: &Claims, key: &SigningKey) -> Result<String, TokenError> {
    if let Some(name) = claims
        .extra
        .keys()
        .find(|k| KNOWN_CLAIMS.contains(&k.as_str()))
    {
        return Err(TokenError::Unissuable(format!(
            "extra claim `{name}` repeats a standard claim"
        )));
    }
    if let Some(name) = claims
        .extra
        .keys()
        .find(|k| REFUSED_CLAIMS.contains(&k.as_str()))
    {
        return Err(TokenError::Unissuable(format!(
            "claim `{name}` is not part of jitsh tokens"
        )));
    }
    if claims.exp <= claims.nbf {
        return Err(TokenError::Unissuable(
            "`exp` is not after `nbf`, so the token would never be valid".to_owned(),
        ));
    }
    let message = serde_json::to_vec(claims).map_err(|e| TokenError::Unissuable(e.to_string()))?;
    let footer = serde_json::to_vec(&Footer {
        kid: key.kid().to_owned(),
    })
    .map_err(|e| TokenError::Unissuable(e.to_string()))?;
    Ok(paseto::sign_with(key.pair(), &message, &footer, b""))
}

/// A token whose signature, key and claims have been checked. Only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    claims: Claims,
    kid: String,
}

/// Verify a token's structure, footer kid, signature (with a key from `trust`) and claims JSON.
/// Time and subject are checked per line with [`VerifiedToken::check`].
pub fn verify(token: &str, trust: &TrustStore) -> Result<VerifiedToken, TokenError> {
    let decoded = paseto::decode(token)?;
    let kid = footer_kid(&decoded.footer)?;
    let key = trust.get(&kid).ok_or_else(|| TokenError::UnknownKey {
        kid: shown_kid(&kid),
    })?;
    paseto::verify_decoded(key.bytes(), &decoded, b"")?;
    let claims = parse_claims(&decoded.message)?;
    if let Some(name) = claims
        .extra
        .keys()
        .find(|k| REFUSED_CLAIMS.contains(&k.as_str()))
    {
        return Err(TokenError::BadClaims(format!(
            "claim `{name}` restricts the token in a way jitsh gates do not enforce"
        )));
    }
    Ok(VerifiedToken { claims, kid })
}

impl VerifiedToken {
    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The token id.
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }

    /// The kid of the key that signed it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Per-line checks: [`VerifiedToken::check_time`] and [`VerifiedToken::check_user`].
    pub fn check(&self, now: DateTime<Utc>, skew: Duration, user: &str) -> Result<(), TokenError> {
        self.check_time(now, skew)?;
        self.check_user(user)
    }

    /// `nbf - skew <= now < exp + skew`; a negative skew counts as zero and one over
    /// [`MAX_SKEW`] counts as [`MAX_SKEW`].
    pub fn check_time(&self, now: DateTime<Utc>, skew: Duration) -> Result<(), TokenError> {
        let skew = skew.clamp(Duration::zero(), MAX_SKEW);
        // An overflowing bound lies beyond every representable instant, so it cannot refuse.
        if let Some(start) = self.claims.nbf.checked_sub_signed(skew) {
            if now < start {
                return Err(TokenError::NotYetValid {
                    nbf: show_time(self.claims.nbf),
                });
            }
        }
        if let Some(end) = self.claims.exp.checked_add_signed(skew) {
            if now >= end {
                return Err(TokenError::Expired {
                    exp: show_time(self.claims.exp),
                });
            }
        }
        Ok(())
    }

    /// The token's subject is `user`, compared case-insensitively.
    pub fn check_user(&self, user: &str) -> Result<(), TokenError> {
        if same_user(&self.claims.sub, user) {
            Ok(())
        } else {
            Err(TokenError::WrongUser {
                token_user: self.claims.sub.clone(),
                user: user.to_owned(),
            })
        }
    }
}

/// User names compare case-insensitively, like Windows account names.
fn same_user(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// A token decoded without any signature check, for display only (`jitsh token inspect` shows
/// what a refused token claims). Nothing in it may be trusted.
#[derive(Debug, Clone)]
pub struct Unverified {
    /// The footer's kid, if the footer has one.
    pub kid: Option<String>,
    /// The claims, if the payload is valid claims JSON.
    pub claims: Result<Claims, TokenError>,
}

/// Decode a token's footer and claims without checking the signature (display only).
pub fn peek_unverified(token: &str) -> Result<Unverified, TokenError> {
    let decoded = paseto::decode(token)?;
    Ok(Unverified {
        kid: footer_kid(&decoded.footer).ok().map(|k| shown_kid(&k)),
        claims: parse_claims(&decoded.message),
    })
}

fn footer_kid(footer: &[u8]) -> Result<String, TokenError> {
    serde_json::from_slice::<Footer>(footer)
        .map(|f| f.kid)
        .map_err(|_| TokenError::NoKid)
}

fn parse_claims(message: &[u8]) -> Result<Claims, TokenError> {
    serde_json::from_slice(message).map_err(|e| TokenError::BadClaims(e.to_string()))
}

/// A kid made safe to print: control characters escaped, length bounded.
fn shown_kid(kid: &str) -> String {
    let mut shown: String = kid.escape_debug().take(MAX_SHOWN_KID).collect();
    if kid.escape_debug().nth(MAX_SHOWN_KID).is_some() {
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// An instant from RFC 3339 text.
    fn at(text: &str) -> DateTime<Utc> {
        crate::rfc3339::parse(text).unwrap()
    }

    fn claims() -> Claims {
        Claims {
            iss: "jitsh".into(),
            sub: "Alice".into(),
            jti: "t1".into(),
            iat: at("2026-11-27T10:00:00Z"),
            nbf: at("2026-11-27T10:00:00Z"),
            exp: at("2026-11-27T11:00:00Z"),
            rule: "mailbox-moves".into(),
            tasks: vec!["New-MoveRequest".into()],
            params: None,
            request: "r1".into(),
            approvers: vec!["bob".into()],
            uses: None,
            command: None,
            offline: None,
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn check_bounds_are_half_open_with_skew() {
        let key = SigningKey::from_seed([9; 32]).unwrap();
        let trust: TrustStore = [key.public_key()].into_iter().collect();
        let t = verify(&issue(&claims(), &key).unwrap(), &trust).unwrap();
        let zero = Duration::zero();
        assert!(t.check(at("2026-11-27T10:00:00Z"), zero, "alice").is_ok());
        assert!(matches!(
            t.check(at("2026-11-27T11:00:00Z"), zero, "alice"),
            Err(TokenError::Expired { .. })
        ));
        assert!(t
            .check(at("2026-11-27T11:00:59Z"), DEFAULT_SKEW, "alice")
            .is_ok());
        assert!(t
            .check(at("2026-11-27T11:01:00Z"), DEFAULT_SKEW, "alice")
            .is_err());
        assert!(t.check(at("2026-11-27T09:59:59Z"), zero, "alice").is_err());
        // negative skew is zero, not a narrower window that hides a bug elsewhere
        assert!(t
            .check(at("2026-11-27T10:00:00Z"), Duration::seconds(-5), "alice")
            .is_ok());
        // a huge skew is capped, never a way to run an expired token
        assert!(matches!(
            t.check(chrono::DateTime::UNIX_EPOCH, Duration::MAX, "alice"),
            Err(TokenError::NotYetValid { .. })
        ));
        assert!(matches!(
            t.check(at("2026-11-28T11:00:00Z"), Duration::days(1), "alice"),
            Err(TokenError::Expired { .. })
        ));
        assert!(t
            .check(at("2026-11-27T11:04:59Z"), Duration::days(1), "alice")
            .is_ok());
    }

    #[test]
    fn issue_refuses_duplicate_claim_names_and_empty_lifetimes() {
        let key = SigningKey::from_seed([9; 32]).unwrap();
        let mut c = claims();
        c.extra.insert("sub".into(), serde_json::json!("mallory"));
        assert!(matches!(issue(&c, &key), Err(TokenError::Unissuable(_))));
        let mut c = claims();
        c.exp = c.nbf;
        assert!(matches!(issue(&c, &key), Err(TokenError::Unissuable(_))));
    }

    #[test]
    fn shown_kid_escapes_and_bounds() {
        assert_eq!(shown_kid("a\nb"), "a\\nb");
        assert_eq!(shown_kid(&"x".repeat(100)).len(), MAX_SHOWN_KID + 3);
    }
}
