//! Cost of loading a token (`verify`: decode, kid lookup, Ed25519, claims JSON) and of the
//! per-line `check`.
#![allow(clippy::unwrap_used, reason = "benchmark setup")]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jitsh::token::{self, Claims, SigningKey, TrustStore, DEFAULT_SKEW};

/// An instant from RFC 3339 text.
fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    jitsh::rfc3339::parse(text).unwrap()
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_seed([7; 32]).unwrap();
    let claims = Claims {
        iss: "https://approvals.contoso.test".into(),
        sub: "alice".into(),
        jti: "tok-0001".into(),
        iat: at("2026-11-27T10:00:00Z"),
        nbf: at("2026-11-27T10:00:00Z"),
        exp: at("2026-11-27T11:00:00Z"),
        rule: "mailbox-moves".into(),
        tasks: vec!["New-MoveRequest".into(), "Set-MoveRequest".into()],
        params: Some(
            jitsh::policy::ParamConstraints::from_json(
                &serde_json::json!({"Identity": {"glob": "*@contoso.com"}}),
            )
            .unwrap(),
        ),
        request: "req-42".into(),
        approvers: vec!["bob".into()],
        uses: None,
        command: None,
        offline: Some(3600),
        extra: serde_json::Map::new(),
    };
    let trust: TrustStore = [key.public_key()].into_iter().collect();
    let text = token::issue(&claims, &key).unwrap();
    c.bench_function("token verify", |b| {
        b.iter(|| token::verify(black_box(&text), black_box(&trust)).unwrap())
    });
    let verified = token::verify(&text, &trust).unwrap();
    let now = at("2026-11-27T10:30:00Z");
    c.bench_function("token check", |b| {
        b.iter(|| {
            verified
                .check(black_box(now), DEFAULT_SKEW, black_box("Alice"))
                .unwrap()
        })
    });
    c.bench_function("token issue", |b| {
        b.iter(|| token::issue(black_box(&claims), &key).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
