//! The gate's whole per-line path (parse, resolve, policy decision, token cover) under the
//! shipped policies and the builtin catalog must never panic on any line.
//!
//! Two signature-verified tokens are in play so lines naming privileged tasks also reach the
//! token-cover checks: a broad one (role tasks) and a narrow one (parameter scope and an exact
//! command).
#![no_main]

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use jitsh::catalog::Catalog;
use jitsh::gate::{check_line, GateContext};
use jitsh::policy::{load_dir, PolicySet};
use jitsh::token::{issue, verify, Claims, SigningKey, TrustStore, VerifiedToken};
use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};

struct Fixture {
    policies: PolicySet,
    tokens: Vec<VerifiedToken>,
    revoked: HashSet<String>,
    now: OffsetDateTime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let policies = match load_dir(&dir) {
            Ok(p) => p,
            Err(e) => panic!("shipped policies must load: {e}"),
        };
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let key = match SigningKey::from_seed([0x4a; 32]) {
            Ok(k) => k,
            Err(e) => panic!("fixed seed must make a key: {e}"),
        };
        let trust: TrustStore = [key.public_key()].into_iter().collect();
        let claims = |jti: &str, rule: &str, tasks: &[&str]| Claims {
            iss: "fuzz".into(),
            sub: "alice".into(),
            jti: jti.into(),
            iat: now,
            nbf: now - Duration::minutes(1),
            exp: now + Duration::hours(1),
            rule: rule.into(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            params: None,
            request: "req".into(),
            approvers: vec!["bob".into()],
            uses: None,
            command: None,
            offline: Some(3600),
            extra: Default::default(),
        };
        let broad = claims(
            "t-broad",
            "mailbox-moves",
            &["New-MoveRequest", "Set-MoveRequest"],
        );
        let mut narrow = claims("t-narrow", "mail-forwarding", &["Set-Mailbox"]);
        narrow.params = Some(serde_json::json!({
            "Identity": { "glob": "alice*" },
            "ForwardingSmtpAddress": { "one_of": ["$null"] },
        }));
        narrow.command = Some("Set-Mailbox -Identity alice -ForwardingSmtpAddress $null".into());
        let mut counted = claims("t-counted", "mailbox-removal", &["Remove-Mailbox"]);
        counted.uses = Some(1);
        let revoked_one = claims("t-revoked", "transport-rules", &["New-TransportRule"]);
        let tokens = [broad, narrow, counted, revoked_one]
            .iter()
            .map(|c| {
                let text = match issue(c, &key) {
                    Ok(t) => t,
                    Err(e) => panic!("fixture token must issue: {e}"),
                };
                match verify(&text, &trust) {
                    Ok(v) => v,
                    Err(e) => panic!("fixture token must verify: {e}"),
                }
            })
            .collect();
        Fixture {
            policies,
            tokens,
            revoked: ["t-revoked".to_string()].into_iter().collect(),
            now,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let ctx = GateContext {
        policies: &f.policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: f.now,
        tokens: &f.tokens,
        revoked: &f.revoked,
        skew: Duration::seconds(30),
        online: false,
    };
    let _ = check_line(line, &ctx);
});
