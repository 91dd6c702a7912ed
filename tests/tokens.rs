//! Approval tokens end to end: the official PASETO v4 vectors, issue/verify, tampering, key
//! rotation, time and subject checks, key files, and the `keygen` / `token inspect` commands.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDate};
use jitsh::policy::ParamConstraints;
use jitsh::token::{
    self, paseto, Claims, PublicKey, SigningKey, TokenError, TrustStore, DEFAULT_SKEW,
};
use proptest::prelude::*;
use serde_json::Value;

/// An instant from RFC 3339 text.
fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    jitsh::rfc3339::parse(text).unwrap()
}

// ---- official vectors ------------------------------------------------------------------------

fn vectors() -> Vec<Value> {
    let text = include_str!("fixtures/paseto-v4.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["tests"].as_array().unwrap().clone()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

/// The public key shared by the v4.public vectors (the expect-fail ones mostly do not carry one).
fn vector_public_key(all: &[Value]) -> Vec<u8> {
    let first = all
        .iter()
        .find(|v| field(v, "name").starts_with("4-S-"))
        .unwrap();
    hex(field(first, "public-key"))
}

#[test]
fn every_v4_public_vector_signs_and_verifies_byte_for_byte() {
    let all = vectors();
    let mut signed = 0;
    let mut verified = 0;
    for v in all.iter().filter(|v| field(v, "name").starts_with("4-S-")) {
        let name = field(v, "name");
        assert_eq!(v["expect-fail"], Value::Bool(false), "{name}");
        let pk = hex(field(v, "public-key"));
        let payload = field(v, "payload").as_bytes();
        let footer = field(v, "footer").as_bytes();
        let implicit = field(v, "implicit-assertion").as_bytes();
        let expected = field(v, "token");
        if !field(v, "secret-key").is_empty() {
            let sk = hex(field(v, "secret-key"));
            assert_eq!(
                sk.len(),
                64,
                "{name}: v4 secret keys are seed || public key"
            );
            let seed: [u8; 32] = sk[..32].try_into().unwrap();
            assert_eq!(sk[32..], pk[..], "{name}");
            let key = SigningKey::from_seed(seed).unwrap();
            assert_eq!(key.public_key().bytes()[..], pk[..], "{name}");
            let token = paseto::sign(&seed, payload, footer, implicit).unwrap();
            assert_eq!(token, expected, "{name}: signing differs");
            signed += 1;
        }
        let message = paseto::verify(&pk, expected, Some(footer), implicit).unwrap();
        assert_eq!(message, payload, "{name}");
        // a wrong implicit assertion or footer must not verify
        assert!(
            paseto::verify(&pk, expected, None, b"other").is_err(),
            "{name}"
        );
        assert_eq!(
            paseto::verify(&pk, expected, Some(b"other"), implicit),
            Err(TokenError::FooterMismatch),
            "{name}"
        );
        verified += 1;
    }
    assert!(
        signed >= 3 && verified >= 3,
        "vectors missing: {signed} signed, {verified} verified"
    );
}

#[test]
fn every_v4_failure_vector_is_refused() {
    let all = vectors();
    let shared_pk = vector_public_key(&all);
    let mut refused = 0;
    for v in all.iter().filter(|v| field(v, "name").starts_with("4-F-")) {
        let name = field(v, "name");
        assert_eq!(v["expect-fail"], Value::Bool(true), "{name}");
        let pk = match field(v, "public-key") {
            "" => shared_pk.clone(),
            text => hex(text),
        };
        let token = field(v, "token");
        let footer = field(v, "footer").as_bytes();
        let implicit = field(v, "implicit-assertion").as_bytes();
        assert!(
            paseto::verify(&pk, token, Some(footer), implicit).is_err(),
            "{name}"
        );
        assert!(
            paseto::verify(&pk, token, None, implicit).is_err(),
            "{name}"
        );
        let trust: TrustStore = [PublicKey::from_bytes(pk.try_into().unwrap())]
            .into_iter()
            .collect();
        assert!(token::verify(token, &trust).is_err(), "{name}");
        refused += 1;
    }
    assert!(refused >= 5, "only {refused} failure vectors");
}

// ---- issue and verify ------------------------------------------------------------------------

fn claims() -> Claims {
    Claims {
        iss: "https://approvals.contoso.test".into(),
        sub: "alice".into(),
        jti: "tok-0001".into(),
        iat: at("2026-11-27T10:00:00Z"),
        nbf: at("2026-11-27T10:00:00Z"),
        exp: at("2026-11-27T11:00:00Z"),
        rule: "mailbox-moves".into(),
        tasks: vec!["New-MoveRequest".into(), "Set-MoveRequest".into()],
        params: Some(
            ParamConstraints::from_json(
                &serde_json::json!({"Identity": {"glob": "*@contoso.com"}}),
            )
            .unwrap(),
        ),
        request: "req-42".into(),
        approvers: vec!["bob".into()],
        uses: Some(3),
        command: None,
        offline: Some(900),
        extra: serde_json::Map::new(),
    }
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_seed([n; 32]).unwrap()
}

fn trust(keys: &[&SigningKey]) -> TrustStore {
    keys.iter().map(|k| k.public_key()).collect()
}

#[test]
fn issue_then_verify_round_trips_the_claims() {
    let k = key(1);
    let token = token::issue(&claims(), &k).unwrap();
    assert!(token.starts_with("v4.public."));
    let v = token::verify(&token, &trust(&[&k])).unwrap();
    assert_eq!(v.claims(), &claims());
    assert_eq!(v.jti(), "tok-0001");
    assert_eq!(v.kid(), k.kid());
    // the footer is exactly {"kid":"..."}
    let footer = token.rsplit('.').next().unwrap();
    let footer = URL_SAFE_NO_PAD.decode(footer).unwrap();
    assert_eq!(footer, format!("{{\"kid\":\"{}\"}}", k.kid()).into_bytes());
    // times are RFC 3339 strings on the wire
    let body = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(2).unwrap())
        .unwrap();
    let payload: Value = serde_json::from_slice(&body[..body.len() - 64]).unwrap();
    assert_eq!(payload["exp"], "2026-11-27T11:00:00Z");
}

/// Re-sign arbitrary payload and footer bytes with `k` (for claims a real issuer would not make).
fn raw_token(k: u8, payload: &[u8], footer: &[u8]) -> String {
    paseto::sign(&[k; 32], payload, footer, b"").unwrap()
}

fn kid_footer(k: &SigningKey) -> Vec<u8> {
    format!("{{\"kid\":\"{}\"}}", k.kid()).into_bytes()
}

#[test]
fn unknown_claims_are_preserved_and_missing_ones_refused() {
    let k = key(1);
    let mut payload = serde_json::to_value(claims()).unwrap();
    payload["future"] = serde_json::json!({"x": 1});
    let token = raw_token(1, payload.to_string().as_bytes(), &kid_footer(&k));
    let v = token::verify(&token, &trust(&[&k])).unwrap();
    assert_eq!(v.claims().extra["future"], serde_json::json!({"x": 1}));

    payload.as_object_mut().unwrap().remove("sub");
    let token = raw_token(1, payload.to_string().as_bytes(), &kid_footer(&k));
    let err = token::verify(&token, &trust(&[&k])).unwrap_err();
    assert!(matches!(err, TokenError::BadClaims(_)), "{err}");

    let mut payload = serde_json::to_value(claims()).unwrap();
    payload["exp"] = Value::from(1_800_000_000);
    let token = raw_token(1, payload.to_string().as_bytes(), &kid_footer(&k));
    assert!(matches!(
        token::verify(&token, &trust(&[&k])),
        Err(TokenError::BadClaims(_))
    ));
}

/// A token's parameter scope is typed: it is parsed and compiled when the token is verified,
/// once, and a scope that does not parse refuses the whole token there, never later per line.
#[test]
fn the_parameter_scope_is_compiled_when_the_token_is_verified() {
    let k = key(1);
    let v = token::verify(&token::issue(&claims(), &k).unwrap(), &trust(&[&k])).unwrap();
    let scope = v.claims().params.as_ref().unwrap();
    assert_eq!(scope.values().len(), 1);
    assert!(scope.values()[0].1.accepts("rob@contoso.com"));
    assert!(!scope.values()[0].1.accepts("rob@fabrikam.com"));
    for bad in [
        serde_json::json!({"Identity": {"regex": "("}}),
        serde_json::json!({"Identity": {"glob": "a", "regex": "b"}}),
        serde_json::json!({"Identity": "rob"}),
        serde_json::json!({"only": "Identity"}),
        serde_json::json!({"-Identity": {"glob": "*"}}),
        serde_json::json!(["Identity"]),
    ] {
        let mut payload = serde_json::to_value(claims()).unwrap();
        payload["params"] = bad.clone();
        let token = raw_token(1, payload.to_string().as_bytes(), &kid_footer(&k));
        assert!(
            matches!(
                token::verify(&token, &trust(&[&k])),
                Err(TokenError::BadClaims(_))
            ),
            "{bad}"
        );
    }
}

/// jitsh tokens carry no audience: a token naming one (in any form) is refused when verified,
/// since no gate would enforce it, and the issuer refuses to sign one.
#[test]
fn a_token_naming_an_audience_is_refused() {
    let k = key(1);
    for aud in [
        serde_json::json!("gate-1"),
        serde_json::json!(["gate-1", "gate-2"]),
        serde_json::json!(""),
        Value::Null,
    ] {
        let mut payload = serde_json::to_value(claims()).unwrap();
        payload["aud"] = aud.clone();
        let token = raw_token(1, payload.to_string().as_bytes(), &kid_footer(&k));
        assert!(
            matches!(
                token::verify(&token, &trust(&[&k])),
                Err(TokenError::BadClaims(_))
            ),
            "{aud}"
        );
        let mut c = claims();
        c.extra.insert("aud".into(), aud);
        assert!(matches!(
            token::issue(&c, &k),
            Err(TokenError::Unissuable(_))
        ));
    }
}

fn flip_body_byte(token: &str, index_from_end: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut body = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    let i = body.len() - 1 - index_from_end;
    body[i] ^= 0x01;
    parts[2] = URL_SAFE_NO_PAD.encode(body);
    parts.join(".")
}

#[test]
fn tampering_with_any_part_is_refused() {
    let a = key(1);
    let b = key(2);
    let store = trust(&[&a, &b]);
    let token = token::issue(&claims(), &a).unwrap();
    assert!(token::verify(&token, &store).is_ok());

    // header
    for header in ["v3.public.", "v4.local.", "V4.public.", "v4.public"] {
        let forged = token.replacen("v4.public.", header, 1);
        assert!(token::verify(&forged, &store).is_err(), "{header}");
    }
    // a payload byte (well inside the claims) and a signature byte
    let payload_flip = flip_body_byte(&token, 64 + 10);
    assert_eq!(
        token::verify(&payload_flip, &store).unwrap_err(),
        TokenError::BadSignature
    );
    let sig_flip = flip_body_byte(&token, 5);
    assert_eq!(
        token::verify(&sig_flip, &store).unwrap_err(),
        TokenError::BadSignature
    );
    // footer kid swapped for another trusted key's: the footer is signed
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}.{}",
        parts[0],
        parts[1],
        parts[2],
        URL_SAFE_NO_PAD.encode(kid_footer(&b))
    );
    assert_eq!(
        token::verify(&swapped, &store).unwrap_err(),
        TokenError::BadSignature
    );
    // footer removed, emptied, or not JSON
    let no_footer = parts[..3].join(".");
    assert_eq!(
        token::verify(&no_footer, &store).unwrap_err(),
        TokenError::NoKid
    );
    assert!(matches!(
        token::verify(&format!("{no_footer}."), &store),
        Err(TokenError::Malformed(_))
    ));
    let not_json = format!("{no_footer}.{}", URL_SAFE_NO_PAD.encode("kid=abc"));
    assert_eq!(
        token::verify(&not_json, &store).unwrap_err(),
        TokenError::NoKid
    );
    // padding and truncation
    assert!(matches!(
        token::verify(&format!("{token}="), &store),
        Err(TokenError::Malformed(_))
    ));
    assert!(token::verify(&token[..token.len() - 1], &store).is_err());
    assert!(matches!(
        token::verify("v4.public.", &store),
        Err(TokenError::Malformed(_))
    ));
    assert!(matches!(
        token::verify("", &store),
        Err(TokenError::WrongHeader)
    ));
}

#[test]
fn a_token_signed_by_another_key_than_its_kid_names_is_refused() {
    let a = key(1);
    let b = key(2);
    let payload = serde_json::to_vec(&claims()).unwrap();
    // signed by `a` but claiming to be from `b`, with only `b` trusted
    let token = raw_token(1, &payload, &kid_footer(&b));
    assert_eq!(
        token::verify(&token, &trust(&[&b])).unwrap_err(),
        TokenError::BadSignature
    );
    // and a token from `a` with only `b` trusted names `a`'s kid
    let token = token::issue(&claims(), &a).unwrap();
    let err = token::verify(&token, &trust(&[&b])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("token signed by unknown key `{}`", a.kid())
    );
    assert!(token::verify(&token, &TrustStore::new()).is_err());
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let old = key(1);
    let new = key(2);
    let old_token = token::issue(&claims(), &old).unwrap();
    let new_token = token::issue(&claims(), &new).unwrap();
    let mut store = trust(&[&old]);
    assert!(token::verify(&old_token, &store).is_ok());
    assert!(matches!(
        token::verify(&new_token, &store),
        Err(TokenError::UnknownKey { .. })
    ));
    assert!(store.add(new.public_key()).is_none());
    assert_eq!(store.len(), 2);
    assert!(token::verify(&old_token, &store).is_ok());
    assert!(token::verify(&new_token, &store).is_ok());
    assert_eq!(store.remove(old.kid()), Some(old.public_key()));
    assert!(matches!(
        token::verify(&old_token, &store),
        Err(TokenError::UnknownKey { .. })
    ));
    assert!(token::verify(&new_token, &store).is_ok());
}

#[test]
fn time_and_subject_checks() {
    let k = key(1);
    let v = token::verify(&token::issue(&claims(), &k).unwrap(), &trust(&[&k])).unwrap();
    let zero = Duration::zero();
    let err = v
        .check(at("2026-11-27T09:59:59Z"), zero, "alice")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "token is not valid before 2026-11-27T10:00:00Z"
    );
    assert!(v.check(at("2026-11-27T10:00:00Z"), zero, "alice").is_ok());
    assert!(v
        .check(at("2026-11-27T10:59:59.999Z"), zero, "alice")
        .is_ok());
    let err = v
        .check(at("2026-11-27T11:00:00Z"), zero, "alice")
        .unwrap_err();
    assert_eq!(err.to_string(), "token expired at 2026-11-27T11:00:00Z");
    // within the skew at both ends, and just beyond it
    assert!(v
        .check(at("2026-11-27T09:59:01Z"), DEFAULT_SKEW, "alice")
        .is_ok());
    assert!(v
        .check(at("2026-11-27T09:58:59Z"), DEFAULT_SKEW, "alice")
        .is_err());
    assert!(v
        .check(at("2026-11-27T11:00:59Z"), DEFAULT_SKEW, "alice")
        .is_ok());
    assert!(v
        .check(at("2026-11-27T11:01:00Z"), DEFAULT_SKEW, "alice")
        .is_err());
    // a `now` in another offset is the same instant
    assert!(v
        .check(at("2026-11-27T11:30:00+01:00"), zero, "alice")
        .is_ok());
    // subject: case-insensitive, otherwise exact
    let now = at("2026-11-27T10:30:00Z");
    assert!(v.check(now, zero, "ALICE").is_ok());
    let err = v.check(now, zero, "bob").unwrap_err();
    assert_eq!(err.to_string(), "token is for user `alice`, not `bob`");
    assert!(v.check(now, zero, "alice2").is_err());
    assert!(v.check(now, zero, "").is_err());
    assert!(v.check(now, zero, "contoso\\alice").is_err());
}

#[test]
fn errors_never_contain_token_text() {
    let k = key(1);
    let token = token::issue(&claims(), &k).unwrap();
    let body = token.split('.').nth(2).unwrap();
    let cases = [
        token::verify(&flip_body_byte(&token, 3), &trust(&[&k])).unwrap_err(),
        token::verify(&token, &TrustStore::new()).unwrap_err(),
        token::verify(&format!("{token}="), &trust(&[&k])).unwrap_err(),
        token::verify(&token.replacen("v4", "v2", 1), &trust(&[&k])).unwrap_err(),
    ];
    for err in cases {
        let text = err.to_string();
        assert!(!text.contains(&body[..16]), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}

#[test]
fn an_unknown_kid_is_shown_escaped_and_bounded() {
    let payload = serde_json::to_vec(&claims()).unwrap();
    let footer =
        serde_json::json!({"kid": format!("evil\u{1b}[2J{}", "x".repeat(500))}).to_string();
    let token = raw_token(1, &payload, footer.as_bytes());
    let text = token::verify(&token, &trust(&[&key(1)]))
        .unwrap_err()
        .to_string();
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.len() < 120, "{text}");
}

// ---- key files -------------------------------------------------------------------------------

#[test]
fn key_files_round_trip() {
    let k = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    let text = k.to_file_text();
    assert!(text.starts_with("-----BEGIN JITSH ED25519 PRIVATE KEY-----\nkid: "));
    let back = SigningKey::from_file_text(&text).unwrap();
    assert_eq!(back.kid(), k.kid());
    assert_eq!(back.public_key(), k.public_key());
    let pub_text = k.public_key().to_file_text();
    assert_eq!(
        PublicKey::from_file_text(&pub_text).unwrap(),
        k.public_key()
    );
    // the reloaded key signs tokens the original's public key verifies
    let token = token::issue(&claims(), &back).unwrap();
    assert!(token::verify(&token, &trust(&[&k])).is_ok());
}

#[test]
fn malformed_key_files_are_refused_with_a_reason() {
    let k = key(5);
    let good = k.to_file_text();
    let good_pub = k.public_key().to_file_text();
    let lines: Vec<&str> = good.lines().collect();
    let other_kid = key(6).kid().to_owned();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "does not start"),
        ("hello".into(), "does not start"),
        (good_pub.clone(), "it is a public key"),
        (good.replace(lines[2], "!!!!"), "not canonical base64"),
        (
            good.replace(lines[2], &lines[2][..lines[2].len() - 1]),
            "not canonical base64",
        ),
        (good.replace(lines[2], "AAAA"), "not 32 bytes"),
        (
            good.replace(lines[1], &format!("kid: {other_kid}")),
            "does not match",
        ),
        (good.replace(lines[1], "kid:"), "second line"),
        (good.replace("\nkid: ", "\nKID: "), "second line"),
        (format!("{good}extra\n"), "after the footer"),
        (format!("{good}\n"), "after the footer"),
        (good.replace(lines[3], ""), "footer line"),
        (lines[..3].join("\n"), "footer line"),
        (format!(" {good}"), "does not start"),
        (
            good.replace(lines[2], &format!("{} ", lines[2])),
            "not canonical base64",
        ),
    ];
    for (text, want) in cases {
        let err = SigningKey::from_file_text(&text).unwrap_err().to_string();
        assert!(err.starts_with("key file is not valid: "), "{err}");
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!err.contains(lines[2]), "{err}");
    }
    let err = PublicKey::from_file_text(&good).unwrap_err().to_string();
    assert!(err.contains("it is a private key"), "{err}");
    assert!(PublicKey::from_file_text(&good_pub.replace("PUBLIC", "PRIVATE")).is_err());
}

// ---- the binary: keygen and token inspect ----------------------------------------------------

fn jitsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jitsh"))
        .args(args)
        .env_remove("RUST_LOG")
        // Keys a `jitsh login` on this machine stored must not stand in for --trust-key.
        .env_remove("JITSH_TRUST_KEY")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn keygen(dir: &Path) -> Output {
    jitsh(&["keygen", "--out", dir.to_str().unwrap()])
}

/// The key id from keygen's report (`key id: KID`), after checking that it names both files.
fn keygen_kid(out: &Output, dir: &Path) -> String {
    let report = text(&out.stdout);
    for file in ["signing.key", "signing.pub"] {
        assert!(
            report.contains(&dir.join(file).display().to_string()),
            "{report}"
        );
    }
    let kid = report.lines().find_map(|l| l.strip_prefix("key id: "));
    assert!(kid.is_some(), "no key id in {report}");
    kid.unwrap_or_default().trim().to_owned()
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let out = keygen(&dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kid = keygen_kid(&out, &dir);
    let private = std::fs::read_to_string(dir.join("signing.key")).unwrap();
    let public = std::fs::read_to_string(dir.join("signing.pub")).unwrap();
    let sk = SigningKey::from_file_text(&private).unwrap();
    assert_eq!(sk.kid(), kid);
    assert_eq!(PublicKey::from_file_text(&public).unwrap(), sk.public_key());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // a second run refuses and leaves the key alone
    let again = keygen(&dir);
    assert_eq!(again.status.code(), Some(3));
    assert!(
        text(&again.stderr).contains("already exists; pass --force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("signing.key")).unwrap(),
        private
    );
    // no temporary files left behind
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    // --force replaces the pair
    let forced = jitsh(&["keygen", "--out", dir.to_str().unwrap(), "--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    let new_kid = keygen_kid(&forced, &dir);
    assert_ne!(new_kid, kid);
    let reloaded =
        SigningKey::from_file_text(&std::fs::read_to_string(dir.join("signing.key")).unwrap())
            .unwrap();
    assert_eq!(reloaded.kid(), new_kid);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}

#[test]
fn token_inspect_reports_validity_with_its_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(keygen(dir).status.success());
    let sk = SigningKey::from_file_text(&std::fs::read_to_string(dir.join("signing.key")).unwrap())
        .unwrap();
    let token_path = dir.join("grant.token");
    std::fs::write(
        &token_path,
        format!("{}\n", token::issue(&claims(), &sk).unwrap()),
    )
    .unwrap();
    let tok = token_path.to_str().unwrap();
    let pubkey = dir.join("signing.pub");
    let pubkey = pubkey.to_str().unwrap();

    let ok = jitsh(&[
        "token",
        "inspect",
        tok,
        "--trust-key",
        pubkey,
        "--now",
        "2026-11-27T10:30:00Z",
        "--user",
        "Alice",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    let shown = text(&ok.stdout);
    assert!(
        shown.contains("mailbox-moves") && shown.contains("verdict    valid"),
        "{shown}"
    );

    let json = jitsh(&[
        "token",
        "inspect",
        tok,
        "--trust-key",
        pubkey,
        "--now",
        "2026-11-27T11:30:00Z",
        "--json",
    ]);
    assert_eq!(json.status.code(), Some(1));
    let report: Value = serde_json::from_str(&text(&json.stdout)).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["verified"], true);
    assert_eq!(
        report["time"]["error"],
        "token expired at 2026-11-27T11:00:00Z"
    );
    assert_eq!(report["claims"]["sub"], "alice");
    assert_eq!(report["kid"], sk.kid());

    let wrong_user = jitsh(&[
        "token",
        "inspect",
        tok,
        "--trust-key",
        pubkey,
        "--now",
        "2026-11-27T10:30:00Z",
        "--user",
        "bob",
    ]);
    assert_eq!(wrong_user.status.code(), Some(1));
    assert!(text(&wrong_user.stdout).contains("token is for user `alice`, not `bob`"));

    // without a trusted key the claims are shown, marked unverified, and the token is not valid
    let untrusted = jitsh(&["token", "inspect", tok, "--now", "2026-11-27T10:30:00Z"]);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(text(&untrusted.stdout).contains("UNVERIFIED"));

    // claim text is escaped before it reaches a terminal
    let mut hostile = claims();
    hostile.sub = "mallory\u{1b}]0;owned\u{7}".into();
    let hostile_path = dir.join("hostile.token");
    std::fs::write(&hostile_path, token::issue(&hostile, &key(9)).unwrap()).unwrap();
    let shown = jitsh(&["token", "inspect", hostile_path.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(1));
    let shown = text(&shown.stdout);
    assert!(shown.contains("mallory\\u{1b}]0;owned"), "{shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown}"
    );

    // a trusted key that did not sign it
    let other = tmp.path().join("other");
    assert!(keygen(&other).status.success());
    let other_pub = other.join("signing.pub");
    let refused = jitsh(&[
        "token",
        "inspect",
        tok,
        "--trust-key",
        other_pub.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let report: Value = serde_json::from_str(&text(&refused.stdout)).unwrap();
    assert_eq!(
        report["signature"]["error"],
        format!("token signed by unknown key `{}`", sk.kid())
    );

    // usage errors: missing token file, a private key given as a trust key
    let missing = jitsh(&["token", "inspect", dir.join("nope").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(3));
    let private = dir.join("signing.key");
    let wrong_kind = jitsh(&[
        "token",
        "inspect",
        tok,
        "--trust-key",
        private.to_str().unwrap(),
    ]);
    assert_eq!(wrong_kind.status.code(), Some(3));
    assert!(text(&wrong_kind.stderr).contains("it is a private key"));
    assert!(!text(&wrong_kind.stderr).contains(
        &std::fs::read_to_string(&private)
            .unwrap()
            .lines()
            .nth(2)
            .unwrap()
            .to_owned()
    ));
}

// ---- robustness ------------------------------------------------------------------------------

fn valid_token() -> (String, TrustStore) {
    let k = key(1);
    (token::issue(&claims(), &k).unwrap(), trust(&[&k]))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics_on_arbitrary_text(s in "\\PC*", t in "v4\\.public\\.[A-Za-z0-9_.=-]{0,200}") {
        let (_, store) = valid_token();
        prop_assert!(token::verify(&s, &store).is_err());
        prop_assert!(token::verify(&t, &store).is_err());
        token::fuzz_decode(s.as_bytes());
        token::fuzz_decode(t.as_bytes());
    }

    #[test]
    fn any_mutation_of_a_valid_token_is_refused(
        pos in any::<prop::sample::Index>(),
        replacement in prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=".to_vec()),
        kind in 0u8..3,
    ) {
        let (token, store) = valid_token();
        let mut bytes = token.clone().into_bytes();
        let i = pos.index(bytes.len());
        match kind {
            0 => bytes[i] = replacement,
            1 => bytes.insert(i, replacement),
            _ => { bytes.remove(i); }
        }
        let mutated = String::from_utf8(bytes).unwrap();
        let result = token::verify(&mutated, &store);
        if mutated == token {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(result.is_err(), "accepted a mutation at {}", i);
        }
    }
}

#[test]
fn check_is_total_over_extreme_instants() {
    let (token, store) = valid_token();
    let v = token::verify(&token, &store).unwrap();
    for now in [
        DateTime::UNIX_EPOCH,
        NaiveDate::from_ymd_opt(-9999, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
        at("9999-12-31T23:59:59Z"),
    ] {
        for skew in [Duration::zero(), Duration::MAX, Duration::MIN] {
            let _ = v.check(now, skew, "alice");
        }
    }
}
