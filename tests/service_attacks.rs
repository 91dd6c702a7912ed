//! The approval service attacked by its own users: screen tricks in what approvers read,
//! approvals of something other than what was shown, second accounts, floods, races, locks
//! dodged by case, and the small things (credentials, HEAD, duplicate keys, file modes).
//! Each test is written as the attack and asserts the exact refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "support/server.rs"]
mod server;
#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use server::{Env, Server};
use std::time::{Duration, Instant};
use support::{SmtpReceiver, WebhookReceiver};

const POLICY: &str = r#"
[[rule]]
id = "mailbox-moves"
effect = "approval"
tasks = ["New-MoveRequest"]
approvers = ["mbmanagers"]
requesters = ["exchange-admins"]
max_duration = "4h"

[[rule]]
id = "mailbox-removal"
effect = "approval"
tasks = ["Remove-Mailbox"]
approvers = ["mbmanagers"]
min_approvals = 2
max_duration = "1h"

[[rule]]
id = "forwarding"
effect = "approval"
tasks = ["Set-Mailbox"]
approvers = ["security-team"]
max_duration = "1h"

[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*"]
"#;

/// alice requests; bob and dave approve mailbox changes; sam approves forwarding; root admins.
fn env() -> Env {
    let mut env = Env::empty(POLICY);
    env.add_user(
        "alice",
        &[
            "--groups",
            "exchange-admins",
            "--email",
            "alice@contoso.test",
        ],
    );
    env.add_user(
        "bob",
        &["--groups", "mbmanagers", "--email", "bob@contoso.test"],
    );
    env.add_user(
        "dave",
        &["--groups", "mbmanagers", "--email", "dave@contoso.test"],
    );
    env.add_user(
        "sam",
        &["--groups", "security-team", "--email", "sam@contoso.test"],
    );
    env.add_user("root", &["--roles", "global-admin"]);
    env
}

/// Unsafe characters other than the output's own line breaks.
fn unsafe_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && jitsh::text::is_unsafe(c))
        .collect()
}

fn assert_refused(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"], code, "{}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// Put a request straight into the store, as an older version or a bypassed check would have
/// left it: the display paths must be safe whatever the data holds.
fn plant_request(env: &Env, id: &str, task: &str, rule: &str, reason: &str) {
    use jitsh::service::store::{NewRequest, Store as _};
    let store = jitsh::service::sqlite::SqliteStore::open(&env.state.join("jitsh.db")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let new = NewRequest {
        id: id.into(),
        requester: "alice".into(),
        target: task.into(),
        target_kind: "task".into(),
        tasks: vec![task.into()],
        rule: rule.into(),
        mode: "manual".into(),
        approvers: vec!["mbmanagers".into()],
        min_approvals: 1,
        reason: reason.into(),
        ticket: Some("CHG\u{202e}1".into()),
        command: None,
        uses: None,
        params: serde_json::Map::new(),
        grant_params: None,
        duration_secs: 1800,
        created_at: now,
        pending_expires_at: now + 3600,
    };
    store
        .create_request(&new, None, &mut |_| Ok(Vec::new()))
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 7. What approvers see

/// Carriage returns, cursor movements, erase-line, C1 CSI, DEL, bidi overrides and isolates,
/// zero-width characters: the reason tries to draw a harmless line over `Remove-Mailbox`.
const SCREEN_TRICKS: &str =
    "cleanup\r\x1b[2K\x1b[1A\u{9b}2KGet-Mailbox\x7f \u{202e}xob\u{2066}\u{200b}\u{feff}\u{2028}end";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_characters_never_reach_an_approvers_terminal() {
    let env = env();
    plant_request(
        &env,
        "r-00000000000000000007",
        "Remove-Mailbox",
        "mailbox-removal",
        SCREEN_TRICKS,
    );
    let server = env.start(&[]);
    let bob = env.cred("bob");

    // The listing table: the request shows as what it is, every trick visible as an escape.
    let list = server.jitsh(&bob, &["requests", "--pending"]).await;
    assert!(list.status.success());
    let table = String::from_utf8(list.stdout).unwrap();
    assert_eq!(unsafe_chars(&table), Vec::<char>::new(), "{table:?}");
    assert!(table.contains("Remove-Mailbox"), "{table}");
    assert!(table.contains("cleanup\\r\\u{1b}[2K"), "{table}");
    assert!(
        table.contains("\\u{202e}xob\\u{2066}\\u{200b}\\u{feff}"),
        "{table}"
    );

    // `approve` restates the request before acting, escaped, and the approval goes through.
    let out = server
        .jitsh(&bob, &["approve", "r-00000000000000000007"])
        .await;
    let restated = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{restated}");
    assert_eq!(unsafe_chars(&restated), Vec::<char>::new(), "{restated:?}");
    for shown in [
        "requester  alice",
        "asks for   task Remove-Mailbox",
        "rule       mailbox-removal",
        "duration   30m",
        "reason     cleanup\\r\\u{1b}[2K",
        "ticket     CHG\\u{202e}1",
    ] {
        assert!(restated.contains(shown), "missing {shown:?} in {restated}");
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The rule in force now asks for two approvers, so the vote is recorded (issue-time and
    // decision-time checks follow the policy in force, not the stored request).
    assert!(
        stdout.starts_with("approval recorded for r-00000000000000000007"),
        "{stdout}"
    );

    // `audit search` shows the same events escaped.
    let search = std::process::Command::new(server::JITSH)
        .args(["audit", "search", "--request", "r-00000000000000000007"])
        .arg(env.state.join("audit"))
        .output()
        .unwrap();
    let text = String::from_utf8(search.stdout).unwrap();
    assert!(text.contains("request.approve"), "{text}");
    assert_eq!(unsafe_chars(&text), Vec::<char>::new(), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mail_and_webhook_text_carry_no_control_characters() {
    let env = env();
    let smtp = SmtpReceiver::start().await;
    let hook = WebhookReceiver::start(0).await;
    let relay = smtp.addr.to_string();
    let server = env.start(&["--smtp", &relay, "--webhook", &hook.url]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));
    // Requests carrying such characters are refused when filed; what still reaches mail and
    // webhooks (a denial's comment here, rows written before that check) is escaped on the way
    // out. Bidi, zero-width and separator characters are not even controls to most filters.
    let tricks = "move \u{202e}moc.live\u{202c} now\u{200b}\u{2066}x\u{2069}\u{2028}y T\u{200f}1";
    let (status, body) = server
        .call(
            "POST",
            "/v1/requests",
            &alice,
            Some(json!({ "task": "New-MoveRequest", "reason": tricks, "duration": "1h" })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let id = server.file(&alice, "New-MoveRequest", "move rob").await;
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/requests/{id}/deny"),
            &bob,
            Some(json!({ "comment": tricks })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mail = smtp.wait_for("alice@contoso.test", "moc.live").await;
    let posted = hook.wait_for("moc.live").await;
    let text = posted["text"].as_str().unwrap();
    assert_eq!(unsafe_chars(text), Vec::<char>::new(), "{text:?}");
    assert!(text.contains("\\u{202e}moc.live\\u{202c}"), "{text}");
    // Mail bodies end lines with CRLF; nothing else unsafe may be in them.
    let body_text = mail.data.replace("\r\n", "");
    assert_eq!(
        unsafe_chars(&body_text),
        Vec::<char>::new(),
        "{body_text:?}"
    );
    assert!(body_text.contains("\\u{202e}moc.live"), "{body_text}");
    assert!(body_text.contains("T\\u{200f}1"), "{body_text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_is_bound_to_the_request_as_it_was_shown() {
    let env = env();
    let server = env.start(&[]);
    let (alice, bob, dave) = (env.cred("alice"), env.cred("bob"), env.cred("dave"));
    let move_id = server.file(&alice, "New-MoveRequest", "move rob").await;
    let removal = server.file(&alice, "Remove-Mailbox", "remove rob").await;
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{move_id}"), &bob, None)
        .await;
    let digest = jitsh::service::workflow::request_digest(&shown);
    // The client's digest over what it displayed is the service's own.
    assert_eq!(shown["digest"], digest.as_str());

    // What the approver saw differs from what is stored: another request's digest, a reason
    // or a task altered on screen, a duration shortened on screen, garbage.
    let (_, other) = server
        .call("GET", &format!("/v1/requests/{removal}"), &bob, None)
        .await;
    let altered = |field: &str, value: Value| {
        let mut v = shown.clone();
        v[field] = value;
        jitsh::service::workflow::request_digest(&v)
    };
    let wrong = [
        jitsh::service::workflow::request_digest(&other),
        altered("reason", json!("move rob (harmless)")),
        altered("task", json!("Get-Mailbox")),
        altered("duration", json!("5m")),
        altered("params", json!({ "Identity": "rob@contoso.com" })),
        "00".repeat(32),
    ];
    for digest in &wrong {
        for verb in ["approve", "deny"] {
            assert_refused(
                server
                    .call(
                        "POST",
                        &format!("/v1/requests/{move_id}/{verb}"),
                        &bob,
                        Some(json!({ "comment": "ok", "digest": digest })),
                    )
                    .await,
                409,
                "request_mismatch",
            );
        }
    }
    let (_, after) = server
        .call("GET", &format!("/v1/requests/{move_id}"), &bob, None)
        .await;
    assert_eq!(after["status"], "pending");
    assert_eq!(after["approvals"], json!([]));

    // The digest of what was shown is accepted.
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/requests/{move_id}/approve"),
            &bob,
            Some(json!({ "digest": digest })),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));

    // The pinned smoke path still works: `jitsh deny ID --comment` restates, then decides.
    let out = server
        .jitsh(&dave, &["deny", &removal, "--comment", "not today"])
        .await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("asks for   task Remove-Mailbox"), "{err}");
    assert!(err.contains("reason     remove rob"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 8. People, not accounts

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_second_account_of_the_same_person_neither_approves_nor_counts_twice() {
    let mut env = env();
    // alice's second account is an approver; bob has two more accounts, one by email (other
    // case and spaces), one by an explicit person key.
    env.add_user(
        "alice-admin",
        &["--groups", "mbmanagers", "--email", " Alice@Contoso.TEST"],
    );
    env.add_user(
        "bob2",
        &["--groups", "mbmanagers", "--email", "BOB@contoso.test"],
    );
    env.add_user(
        "robert",
        &["--groups", "mbmanagers", "--person", "bob@contoso.test"],
    );
    let server = env.start(&[]);
    let alice = env.cred("alice");

    let moves = server.file(&alice, "New-MoveRequest", "move rob").await;
    let approve = |id: String, who: String| {
        let server = &server;
        async move {
            server
                .call("POST", &format!("/v1/requests/{id}/approve"), &who, None)
                .await
        }
    };
    assert_refused(
        approve(moves.clone(), env.cred("alice-admin")).await,
        403,
        "self_approval",
    );

    // A quorum of two: bob, then bob's other accounts, one after the other.
    let removal = server.file(&alice, "Remove-Mailbox", "remove rob").await;
    let (status, _) = approve(removal.clone(), env.cred("bob")).await;
    assert_eq!(status, 200);
    for second in ["bob2", "robert"] {
        assert_refused(
            approve(removal.clone(), env.cred(second)).await,
            409,
            "already_approved",
        );
    }
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{removal}"), &alice, None)
        .await;
    assert_eq!(shown["status"], "pending");
    let (status, body) = approve(removal.clone(), env.cred("dave")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));

    // All of bob's accounts at once, racing: one vote counts, the quorum is not reached.
    let racing = server.file(&alice, "Remove-Mailbox", "remove jo").await;
    let votes = futures_util_join_all(
        ["bob", "bob2", "robert"]
            .iter()
            .map(|w| approve(racing.clone(), env.cred(w)))
            .collect(),
    )
    .await;
    let ok = votes.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{votes:?}");
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{racing}"), &alice, None)
        .await;
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["approvals"].as_array().unwrap().len(), 1);

    // A requester who left the directory cannot be told apart from an approver any more: their
    // pending request can be denied, not approved.
    let path = env.state.join("directory.toml");
    let mut dir = jitsh::service::Directory::load(&path).unwrap();
    dir.users.retain(|u| u.name != "alice");
    dir.save(&path).unwrap();
    assert_refused(
        approve(racing.clone(), env.cred("dave")).await,
        409,
        "requester_unknown",
    );
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/requests/{racing}/deny"),
            &env.cred("dave"),
            Some(json!({ "comment": "requester left" })),
        )
        .await;
    assert_eq!(status, 200);
}

/// Poll `futures` together in this task until all are done (the HTTP calls overlap), without
/// a futures crate.
async fn futures_util_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.unwrap()).collect()
}

// ---------------------------------------------------------------------------------------------
// 12. Locks

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn locks_hold_whatever_the_case_and_stop_approvals_too() {
    let env = env();
    let server = env.start(&[]);
    let (alice, bob, dave, root) = (
        env.cred("alice"),
        env.cred("bob"),
        env.cred("dave"),
        env.cred("root"),
    );
    let lock = |scope: &str, expires: Option<&str>| {
        let body = json!({ "scope": scope, "reason": "incident", "expires": expires });
        let server = &server;
        let root = root.clone();
        async move { server.call("POST", "/v1/locks", &root, Some(body)).await }
    };
    let clear = |scope: &str| {
        let server = &server;
        let root = root.clone();
        let body = json!({ "scope": scope });
        async move { server.call("DELETE", "/v1/locks", &root, Some(body)).await }
    };
    let file = |task: &str| {
        let server = &server;
        let alice = alice.clone();
        let body = json!({ "task": task, "reason": "work", "duration": "30m" });
        async move {
            server
                .call("POST", "/v1/requests", &alice, Some(body))
                .await
        }
    };

    // Case never dodges a lock, on users or rules; the lock is stored in one form.
    for (scope, task) in [
        ("user:ALICE", "New-MoveRequest"),
        ("user:Alice", "Remove-Mailbox"),
        ("rule:MAILBOX-MOVES", "New-MoveRequest"),
    ] {
        let (status, body) = lock(scope, None).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["scope"], scope.to_ascii_lowercase());
        assert_refused(file(task).await, 422, "locked");
        let (status, _) = clear(&scope.to_ascii_uppercase()).await;
        assert_eq!(status, 200);
        let (status, _) = file(task).await;
        assert_eq!(status, 201);
    }

    // Locks stop approvals: on the requester, on the approver, on the rule.
    let id = server.file(&alice, "New-MoveRequest", "move rob").await;
    let approve = |who: String| {
        let server = &server;
        let id = id.clone();
        async move {
            server
                .call("POST", &format!("/v1/requests/{id}/approve"), &who, None)
                .await
        }
    };
    for (scope, approver) in [
        ("user:ALICE", bob.clone()),
        ("user:BOB", bob.clone()),
        ("rule:mailbox-moves", dave.clone()),
        ("all", dave.clone()),
    ] {
        assert_eq!(lock(scope, None).await.0, 201);
        assert_refused(approve(approver).await, 422, "locked");
        assert_eq!(clear(scope).await.0, 200);
    }
    let (status, body) = approve(bob.clone()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));

    // A lock that would already be over is refused, not silently accepted.
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    let past = jitsh::rfc3339::format(past).unwrap();
    for expires in [past.as_str(), "2000-01-01T00:00:00Z"] {
        assert_refused(lock("user:alice", Some(expires)).await, 422, "lock_expired");
    }
    let (_, locks) = server.call("GET", "/v1/locks", &root, None).await;
    assert_eq!(locks["locks"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// 13. Small ones

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_authentications_are_audited_and_throttled_per_source() {
    let env = env();
    let server = env.start(&[]);
    let alice = env.cred("alice");
    let guesses: Vec<String> = (0..10).map(|i| format!("jitsh_guess{i}")).collect();
    for (i, guess) in guesses.iter().enumerate() {
        let got = if i % 2 == 0 {
            server.call("GET", "/v1/me", guess, None).await
        } else {
            server
                .raw("GET", "/v1/me", "Basic YWxpY2U6eA==", Vec::new())
                .await
        };
        assert_refused(got, 401, "unauthenticated");
    }
    // The limit is reached: every attempt from this source is refused for a while, even with a
    // good credential, so guessing cannot go on.
    assert_refused(
        server.call("GET", "/v1/me", "jitsh_guess-more", None).await,
        429,
        "too_many_failures",
    );
    assert_refused(
        server.call("GET", "/v1/me", &alice, None).await,
        429,
        "too_many_failures",
    );
    // Audited (without the guesses), and the flood beyond the limit does not grow the log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = env.audit();
    let fails: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "auth.fail")
        .collect();
    assert_eq!(fails.len(), 10, "{fails:?}");
    assert!(fails.iter().all(|e| e["subject"] == "127.0.0.1"));
    let text: String = audit.iter().map(Value::to_string).collect();
    assert!(guesses.iter().all(|g| !text.contains(g.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_holes_stay_closed() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = env();
    // State files an older version left readable by everyone are narrowed at start.
    for name in ["jitsh.db", "jitsh.db-wal"] {
        let path = env.state.join(name);
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = env.start(&[]);
    let (alice, bob) = (env.cred("alice"), env.cred("bob"));

    // The Bearer scheme is case-insensitive (RFC 7235); other schemes are not credentials.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, me) = server
            .raw("GET", "/v1/me", &format!("{scheme} {alice}"), Vec::new())
            .await;
        assert_eq!((status, me["name"].as_str()), (200, Some("alice")));
    }

    // Duplicate keys are ambiguous: refused at any depth, in every body.
    let dupes: [(&str, &str); 4] = [
        (
            "/v1/requests",
            r#"{"task":"New-MoveRequest","task":"Get-Mailbox","reason":"r","duration":"1h"}"#,
        ),
        (
            "/v1/requests",
            r#"{"task":"New-MoveRequest","reason":"r","duration":"1h","params":{"Identity":"a","Identity":"b"}}"#,
        ),
        (
            "/v1/requests",
            r#"{"task":"New-MoveRequest","reason":"r","reason":"s","duration":"1h"}"#,
        ),
        (
            "/v1/locks",
            r#"{"scope":"all","scope":"user:x","reason":"r"}"#,
        ),
    ];
    for (path, body) in dupes {
        assert_refused(
            server
                .raw(
                    "POST",
                    path,
                    &format!("Bearer {alice}"),
                    body.as_bytes().to_vec(),
                )
                .await,
            400,
            "duplicate_key",
        );
    }

    // A requester withdraws a pending request: audited, final, theirs only.
    let id = server.file(&alice, "New-MoveRequest", "move rob").await;
    let withdraw = format!("/v1/requests/{id}/withdraw");
    assert_refused(
        server.call("POST", &withdraw, &bob, None).await,
        403,
        "not_requester",
    );
    let out = server.jitsh(&alice, &["withdraw", &id]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, shown) = server
        .call("GET", &format!("/v1/requests/{id}"), &alice, None)
        .await;
    assert_eq!(shown["status"], "withdrawn");
    assert_refused(
        server.call("POST", &withdraw, &alice, None).await,
        409,
        "already_decided",
    );
    assert_refused(
        server
            .call("POST", &format!("/v1/requests/{id}/approve"), &bob, None)
            .await,
        409,
        "already_decided",
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(env
        .audit()
        .iter()
        .any(|e| e["action"] == "request.withdraw" && e["subject"] == id.as_str()));

    // HEAD never signs a token nor writes an audit record.
    let approved = server.file(&alice, "New-MoveRequest", "move jo").await;
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/requests/{approved}/approve"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let before = env.audit().len();
    for path in [
        format!("/v1/requests/{approved}/token"),
        format!("/v1/requests/{approved}"),
        "/v1/requests".to_owned(),
        "/v1/revocations".to_owned(),
    ] {
        let (status, _) = server.call("HEAD", &path, &alice, None).await;
        assert_eq!(status, 405, "{path}");
    }
    let (status, _) = server.call("HEAD", "/healthz", "", None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(env.audit()[before..]
        .iter()
        .all(|e| e["action"] != "token.issue"));

    // No credential on the command line; a file or the environment instead.
    let refused = std::process::Command::new(server::JITSH)
        .args(["requests", "--server", &server.url, "--credential", &alice])
        .env_remove("JITSH_CREDENTIAL")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--credential-file"));
    let file = env.dir.path().join("alice.credential");
    std::fs::write(&file, format!("{alice}\n")).unwrap();
    let listed = std::process::Command::new(server::JITSH)
        .args([
            "requests",
            "--mine",
            "--server",
            &server.url,
            "--credential-file",
        ])
        .arg(&file)
        .env_remove("JITSH_CREDENTIAL")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&approved));

    // The database, its journal, the audit log and the directory are private to the service.
    let mut checked = 0;
    let audit_dir = env.state.join("audit");
    for dir in [&env.state, &audit_dir] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let public = entry.path().extension().is_some_and(|x| x == "pub");
            if meta.is_file() && !public {
                let mode = meta.permissions().mode() & 0o777;
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", entry.path().display());
                checked += 1;
            }
        }
    }
    assert!(env.state.join("jitsh.db-wal").exists());
    assert!(checked >= 6, "{checked}");
}

// ---------------------------------------------------------------------------------------------
// 9. Timeouts and a connection cap

/// `/healthz` answers within `within`, on a fresh connection.
async fn healthy(server: &Server, within: Duration) -> bool {
    let client = reqwest::Client::builder()
        .timeout(within)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    match client.get(format!("{}/healthz", server.url)).send().await {
        Ok(r) => r.status() == 200,
        Err(_) => false,
    }
}

/// Seconds until the server closes `stream` (a read returns end of file or an error).
async fn closed_after(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt as _;
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_half_sent_requests_do_not_hold_the_service() {
    use tokio::io::AsyncWriteExt as _;
    let env = env();
    // Far fewer descriptors than attacking connections.
    let mut server =
        env.start_with_fd_limit(256, &["--header-timeout", "2s", "--idle-timeout", "4s"]);
    // Half stop inside their headers; half send whole headers (with a good credential, so the
    // body is awaited) and a tenth of the body they announce.
    let alice = env.cred("alice");
    let half_body = format!(
        "POST /v1/requests HTTP/1.1\r\nHost: jitsh\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"task\": \"New-"
    );
    let mut held = Vec::new();
    for i in 0..2000 {
        let Ok(mut s) = tokio::net::TcpStream::connect(&server.addr).await else {
            continue;
        };
        let partial: &[u8] = if i % 2 == 0 {
            b"GET /healthz HTTP/1.1\r\nHost: jitsh\r\nX-Slow: "
        } else {
            half_body.as_bytes()
        };
        let _ = s.write_all(partial).await;
        held.push(s);
        if i % 250 == 249 {
            assert!(
                healthy(&server, Duration::from_secs(3)).await,
                "/healthz stopped answering after {} half-sent requests",
                i + 1
            );
        }
    }
    assert!(
        held.len() >= 1900,
        "only {} connections were made",
        held.len()
    );
    assert!(healthy(&server, Duration::from_secs(3)).await);

    // A half-sent request is cut off by the header timeout, not left open.
    let mut slow = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    slow.write_all(b"POST /v1/requests HTTP/1.1\r\nHost: jitsh\r\n")
        .await
        .unwrap();
    let after = closed_after(&mut slow, Duration::from_secs(8)).await;
    assert!(
        after.is_some_and(|d| d >= Duration::from_millis(1500)),
        "closed after {after:?}"
    );
    // So is a connection that sends nothing at all after a finished request.
    let mut idle = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: jitsh\r\n\r\n")
        .await
        .unwrap();
    let after = closed_after(&mut idle, Duration::from_secs(8)).await;
    assert!(after.is_some(), "an idle connection stayed open");
    drop(held);
    assert!(server.alive());
    assert!(healthy(&server, Duration::from_secs(3)).await);
}

// ---------------------------------------------------------------------------------------------
// 10. Listings and floods

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_junk_requests_hides_nothing_from_approvers_and_slows_nothing() {
    let mut env = env();
    env.add_user("mallory", &["--email", "mallory@contoso.test"]);
    let server = env.start(&["--max-requests-per-hour", "0", "--max-pending", "0"]);
    let (alice, bob, mallory, sam) = (
        env.cred("alice"),
        env.cred("bob"),
        env.cred("mallory"),
        env.cred("sam"),
    );
    // alice's request first, then 510 of mallory's for a rule bob does not approve.
    let wanted = server.file(&alice, "New-MoveRequest", "move rob").await;
    for i in 0..510 {
        server
            .file(&mallory, "Set-Mailbox", &format!("junk {i}"))
            .await;
    }

    // The approver's first page has alice's request: filtering happens before the page is cut.
    let (status, page) = server
        .call("GET", "/v1/requests?status=pending", &bob, None)
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [wanted.as_str()]);
    assert_eq!(page["next_cursor"], Value::Null);
    let listed = server.jitsh(&bob, &["requests", "--pending"]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&wanted));

    // The junk's own approver pages through all of it with the cursor, each item once.
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/requests?status=pending&limit=200".to_owned(),
            Some(c) => format!("/v1/requests?status=pending&limit=200&cursor={c}"),
        };
        let (status, page) = server.call("GET", &path, &sam, None).await;
        assert_eq!(status, 200, "{page}");
        for r in page["requests"].as_array().unwrap() {
            assert!(seen.insert(r["id"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 510);
    assert!(!seen.contains(&wanted));
    assert_refused(
        server
            .call("GET", "/v1/requests?cursor=nonsense", &sam, None)
            .await,
        400,
        "invalid_cursor",
    );

    // Filing stays fast while approvers list over and over.
    let listing = {
        let (url, sam) = (server.url.clone(), sam.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..40 {
                let _ = http
                    .get(format!("{url}/v1/requests?status=pending&limit=500"))
                    .bearer_auth(&sam)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await;
            }
        })
    };
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let start = Instant::now();
        server
            .file(&alice, "New-MoveRequest", &format!("move {i}"))
            .await;
        slowest = slowest.max(start.elapsed());
    }
    listing.await.unwrap();
    eprintln!("slowest filing while listing: {slowest:?}");
    assert!(
        slowest < Duration::from_millis(750),
        "slowest filing took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_cannot_flood_approvers_with_requests_or_mail() {
    let mut env = env();
    env.add_user("mallory", &["--email", "mallory@contoso.test"]);
    let smtp = SmtpReceiver::start().await;
    let relay = smtp.addr.to_string();
    let server = env.start(&[
        "--smtp",
        &relay,
        "--max-requests-per-hour",
        "8",
        "--max-pending",
        "5",
    ]);
    let (mallory, alice) = (env.cred("mallory"), env.cred("alice"));
    let body = |i: usize| json!({ "task": "Set-Mailbox", "reason": format!("junk {i}"), "duration": "1h" });
    let mut filed = Vec::new();
    for i in 0..5 {
        let (status, r) = server
            .call("POST", "/v1/requests", &mallory, Some(body(i)))
            .await;
        assert_eq!(status, 201, "{r}");
        filed.push(r["id"].as_str().unwrap().to_owned());
    }
    // Five pending: the sixth waits until one is decided or withdrawn.
    assert_refused(
        server
            .call("POST", "/v1/requests", &mallory, Some(body(5)))
            .await,
        429,
        "too_many_pending",
    );
    for id in &filed[..3] {
        let (status, _) = server
            .call(
                "POST",
                &format!("/v1/requests/{id}/withdraw"),
                &mallory,
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    for i in 5..8 {
        let (status, r) = server
            .call("POST", "/v1/requests", &mallory, Some(body(i)))
            .await;
        assert_eq!(status, 201, "{r}");
    }
    // Eight in the hour: the ninth is refused whatever is pending.
    for id in &filed[3..] {
        server
            .call(
                "POST",
                &format!("/v1/requests/{id}/withdraw"),
                &mallory,
                None,
            )
            .await;
    }
    assert_refused(
        server
            .call("POST", "/v1/requests", &mallory, Some(body(8)))
            .await,
        429,
        "rate_limited",
    );
    // Others are not held back by mallory's allowance.
    server.file(&alice, "New-MoveRequest", "move rob").await;
    // The approver got one mail per accepted request, no more.
    smtp.wait_for("sam@contoso.test", "junk 7").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_sam = smtp
        .mails()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains("sam@")) && m.data.contains("approval needed"))
        .count();
    assert_eq!(to_sam, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_filings_cannot_together_pass_the_pending_limit() {
    let mut env = env();
    env.add_user("mallory", &[]);
    let server = env.start(&["--max-pending", "5"]);
    let mallory = env.cred("mallory");
    let results = futures_util_join_all(
        (0..16)
            .map(|i| {
                let server = &server;
                let body = json!({ "task": "Set-Mailbox", "reason": format!("junk {i}"), "duration": "1h" });
                let mallory = mallory.clone();
                async move { server.call("POST", "/v1/requests", &mallory, Some(body)).await }
            })
            .collect(),
    )
    .await;
    let accepted = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(accepted, 5, "{results:?}");
    assert!(results
        .iter()
        .all(|(s, b)| *s == 201 || (*s == 429 && b["error"] == "too_many_pending")));
}

// ---------------------------------------------------------------------------------------------
// 11. Directory writes

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_user_additions_from_the_cli_and_the_api_lose_nothing() {
    let env = env();
    let server = env.start(&[]);
    let root = env.cred("root");
    let state = env.state.clone();
    let cli: Vec<_> = (0..20)
        .map(|i| {
            let state = state.clone();
            std::thread::spawn(move || {
                let out = std::process::Command::new(server::JITSH)
                    .args([
                        "user",
                        "add",
                        &format!("cli{i}"),
                        "--groups",
                        "helpdesk",
                        "--state",
                    ])
                    .arg(&state)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let cred = String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .last()
                    .unwrap()
                    .to_owned();
                (format!("cli{i}"), cred)
            })
        })
        .collect();
    let api = futures_util_join_all(
        (0..20)
            .map(|i| {
                let server = &server;
                let root = root.clone();
                async move {
                    let (status, body) = server
                        .call(
                            "POST",
                            "/v1/users",
                            &root,
                            Some(json!({ "name": format!("api{i}"), "groups": ["helpdesk"] })),
                        )
                        .await;
                    assert_eq!(status, 201, "{body}");
                    (
                        format!("api{i}"),
                        body["credential"].as_str().unwrap().to_owned(),
                    )
                }
            })
            .collect(),
    )
    .await;
    let mut added: Vec<(String, String)> = cli.into_iter().map(|t| t.join().unwrap()).collect();
    added.extend(api);
    assert_eq!(added.len(), 40);

    let dir = jitsh::service::Directory::load(&env.state.join("directory.toml")).unwrap();
    for (name, cred) in &added {
        assert!(dir.user(name).is_some(), "{name} was lost");
        let (status, me) = server.call("GET", "/v1/me", cred, None).await;
        assert_eq!((status, me["name"].as_str()), (200, Some(name.as_str())));
    }
    assert_eq!(dir.users.len(), 45);
}

/// The elevated access control and reviews attacked through the API: control changes by
/// everyone but global admins, acknowledgements by the reviewed account, its other account,
/// people outside the admin group, twice, and review ids that are not ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_and_reviews_refuse_everyone_but_who_may() {
    let mut env = env();
    env.add_user("svc", &["--groups", "secops", "--person", "robot"]);
    env.add_user("svc2", &["--groups", "secops", "--person", "robot"]);
    env.add_user("carol", &["--groups", "secops"]);
    let server = env.start(&[]);
    let enable = json!({"admin_group": "secops", "system_accounts": ["svc"]});
    for who in ["alice", "bob", "sam", "svc", "carol"] {
        for (path, body) in [
            ("/v1/control/enable", enable.clone()),
            ("/v1/control/disable", json!({})),
            ("/v1/control/disable", json!({"reason": "maintenance"})),
        ] {
            let got = server.call("POST", path, &env.cred(who), Some(body)).await;
            assert_refused(got, 403, "not_global_admin");
        }
    }
    // Nothing changed, and every attempt is on record.
    let (_, control) = server
        .call("GET", "/v1/control", &env.cred("alice"), None)
        .await;
    assert_eq!(control["approval_control"], "enabled", "{control}");
    assert!(control["admin_group"].is_null(), "{control}");
    // Nobody but global admins and the admin group learns who the system accounts are.
    assert!(control.get("system_accounts").is_none(), "{control}");
    let (status, v) = server
        .call(
            "POST",
            "/v1/control/enable",
            &env.cred("root"),
            Some(enable),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // A second disable says it already is.
    let root = env.cred("root");
    assert_eq!(
        server
            .call("POST", "/v1/control/disable", &root, Some(json!({})))
            .await
            .0,
        200
    );
    assert_refused(
        server
            .call("POST", "/v1/control/disable", &root, Some(json!({})))
            .await,
        409,
        "already_disabled",
    );
    // A system account's session: one review.
    let batch = json!({"batch": "b1", "events": [{"time": "2026-01-01T00:00:00Z",
        "actor": "svc", "action": "gate.decision", "subject": "s-1", "outcome": "allow",
        "details": {"line": "Get-Mailbox"}}]});
    let (status, v) = server
        .call("POST", "/v1/audit/events", &env.cred("svc"), Some(batch))
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, list) = server
        .call("GET", "/v1/reviews", &env.cred("carol"), None)
        .await;
    let id = list["reviews"][0]["id"].as_i64().unwrap();
    let ack = format!("/v1/reviews/{id}/ack");
    for (who, status, code) in [
        ("svc", 403, "self_review"),
        ("svc2", 403, "self_review"),
        ("alice", 403, "not_admin_group"),
        ("bob", 403, "not_admin_group"),
        ("root", 403, "not_admin_group"),
    ] {
        let got = server
            .call("POST", &ack, &env.cred(who), Some(json!({"comment": "ok"})))
            .await;
        assert_refused(got, status, code);
    }
    for who in ["alice", "bob"] {
        assert_refused(
            server
                .call("GET", "/v1/reviews", &env.cred(who), None)
                .await,
            403,
            "not_admin_group",
        );
    }
    // Fields the acknowledgement does not take are refused, not ignored.
    assert_refused(
        server
            .call(
                "POST",
                &ack,
                &env.cred("carol"),
                Some(json!({"comment": "ok", "acked_by": "root"})),
            )
            .await,
        400,
        "invalid_field",
    );
    for bad in [
        "0",
        "-1",
        "abc",
        "1%3B1",
        "99999999999999999999999",
        "%2E%2E",
    ] {
        let got = server
            .call(
                "POST",
                &format!("/v1/reviews/{bad}/ack"),
                &env.cred("carol"),
                Some(json!({})),
            )
            .await;
        assert_refused(got, 404, "not_found");
    }
    let got = server
        .call(
            "POST",
            &ack,
            &env.cred("carol"),
            Some(json!({"comment": "seen"})),
        )
        .await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["acked_by"], "carol");
    assert_refused(
        server
            .call("POST", &ack, &env.cred("carol"), Some(json!({})))
            .await,
        409,
        "already_acknowledged",
    );
    let refusals = env
        .audit()
        .iter()
        .filter(|r| r["action"] == "review.refused" || r["action"] == "control.refused")
        .count();
    assert_eq!(refusals, 5 * 3 + 5, "every refused change is audited");
}

/// A policy folder anyone could change (a world-writable file or folder, a world-writable file
/// planted beside the others) is refused by the service when it changes policies exactly as the gate
/// refuses it: one reader, one set of checks. Nothing is written while it is unsafe.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_folder_others_can_change_is_refused_by_service_and_gate_alike() {
    use std::os::unix::fs::PermissionsExt;
    let env = env();
    let server = env.start(&[]);
    let root = env.cred("root");
    let extra = "[[rule]]\nid = \"extra\"\neffect = \"deny\"\ntasks = [\"Add-Type\"]\n";
    let put = |file: &'static str| {
        let req = server
            .http
            .put(format!("{}/v1/policies/{file}", server.url))
            .bearer_auth(&root)
            .body(extra);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let gate = || {
        let out = std::process::Command::new(server::JITSH)
            .args(["check", "--policies"])
            .arg(&env.policies)
            .arg("Get-Mailbox")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mode = |path: &std::path::Path, bits: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).unwrap()
    };
    let file = env.policies.join("exchange.toml");
    let planted = env.policies.join("planted.toml");

    // (attack, make it, undo it, the refusal's words)
    type Step<'a> = Box<dyn Fn() + 'a>;
    let attacks: Vec<(&str, Step, Step, &str)> = vec![
        (
            "a world-writable policy file",
            Box::new(|| mode(&file, 0o666)),
            Box::new(|| mode(&file, 0o644)),
            "policy file is writable by every user",
        ),
        (
            "a world-writable policy folder",
            Box::new(|| mode(&env.policies, 0o777)),
            Box::new(|| mode(&env.policies, 0o755)),
            "policy folder is writable by every user",
        ),
        (
            "a world-writable file planted beside the others",
            Box::new(|| {
                std::fs::write(&planted, extra).unwrap();
                mode(&planted, 0o666);
            }),
            Box::new(|| std::fs::remove_file(&planted).unwrap()),
            "policy file is writable by every user",
        ),
    ];
    for (attack, make, undo, why) in &attacks {
        make();
        let (code, stderr) = gate();
        assert_eq!(code, Some(3), "{attack}: the gate must refuse: {stderr}");
        assert!(stderr.contains(why), "{attack}: {stderr}");
        let (status, body) = put("extra.toml").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("policy_folder_unsafe")),
            "{attack}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{attack}: {body}"
        );
        let (status, body) = server
            .call("DELETE", "/v1/policies/exchange.toml", &root, None)
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("policy_folder_unsafe")),
            "{attack}: {body}"
        );
        assert!(!env.policies.join("extra.toml").exists(), "{attack}");
        assert!(file.exists(), "{attack}");
        undo();
    }

    // Safe again: both accept, and the change goes through.
    assert_eq!(gate().0, Some(0));
    let (status, body) = put("extra.toml").await;
    assert_eq!(status, 200, "{body}");
    assert!(env.policies.join("extra.toml").exists());
}
