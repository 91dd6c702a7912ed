//! The admin center (`/ui`) of a real `jitsh serve`, driven over HTTP as a browser would:
//! sign-in and sessions, CSRF and cross-site refusals, who sees which request, decisions bound
//! to what the page showed, and escaping of what requesters write.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "support/server.rs"]
mod server;

use serde_json::Value;
use server::{Env, Server};

const POLICY: &str = r#"
[[rule]]
id = "mailbox-removal"
effect = "approval"
tasks = ["Remove-Mailbox", "Set-Mailbox"]
approval = "manual"
approvers = ["mbmanagers"]
max_duration = "4h"

[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-*"]
"#;

fn env() -> Env {
    let mut env = Env::empty(POLICY);
    env.add_user("alice", &["--groups", "exchange-admins"]);
    env.add_user("bob", &["--groups", "mbmanagers"]);
    env.add_user("dave", &["--groups", "mbmanagers"]);
    env.add_user("carol", &["--groups", "helpdesk"]);
    env
}

/// A browser without redirects or a cookie jar: each test sees every answer.
struct Browser {
    http: reqwest::Client,
    url: String,
    cookie: Option<String>,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden field `name` on the page.
    fn field(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self.body.find(&marker).expect(name) + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            url: server.url.clone(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("jitsh_ui={c}")),
            None => req,
        };
        let resp = req.send().await.unwrap();
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.url)).form(form))
            .await
    }

    async fn sign_in(server: &Server, cred: &str) -> Browser {
        let mut b = Browser::new(server);
        let a = b.post("/ui/signin", &[("credential", cred)]).await;
        assert_eq!(a.status, 303, "{}", a.body);
        let set = a.headers.get("set-cookie").unwrap().to_str().unwrap();
        let value = set
            .strip_prefix("jitsh_ui=")
            .and_then(|v| v.split(';').next())
            .unwrap();
        b.cookie = Some(value.to_owned());
        b
    }

    /// The CSRF token of this session, read from a page.
    async fn csrf(&self) -> String {
        let a = self.get("/ui/requests").await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.field("csrf")
    }

    async fn file(&self, task: &str, reason: &str) -> Answer {
        let csrf = self.csrf().await;
        self.post(
            "/ui/requests",
            &[
                ("csrf", &csrf),
                ("task", task),
                ("params", "Identity=kim@contoso.test"),
                ("duration", "1h"),
                ("reason", reason),
                ("command", ""),
                ("uses", ""),
                ("ticket", "CHG-1"),
            ],
        )
        .await
    }
}

/// The requests of `cred`'s user through the API.
async fn api_requests(server: &Server, cred: &str) -> Vec<Value> {
    let (status, v) = server
        .call("GET", "/v1/requests?mine=true", cred, None)
        .await;
    assert_eq!(status, 200, "{v}");
    v["requests"].as_array().unwrap().clone()
}

async fn status_of(server: &Server, cred: &str, id: &str) -> String {
    let (_, v) = server
        .call("GET", &format!("/v1/requests/{id}"), cred, None)
        .await;
    v["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_gives_a_strict_http_only_session_and_pages_need_it() {
    let env = env();
    let server = env.start(&[]);
    let anon = Browser::new(&server);
    for path in ["/ui/", "/ui/approvals", "/ui/requests"] {
        let a = anon.get(path).await;
        assert_eq!((a.status, a.location()), (303, "/ui/signin"), "{path}");
    }
    let a = anon.get("/ui/signin").await;
    assert_eq!(a.status, 200);
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert!(!a.body.contains("<script"), "no script on the sign-in page");
    assert!(a.body.contains(r#"<label for="credential">"#));

    let a = anon
        .post("/ui/signin", &[("credential", &env.cred("alice"))])
        .await;
    assert_eq!((a.status, a.location()), (303, "/ui/approvals"));
    let cookie = a.headers["set-cookie"].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age="] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        !cookie.contains(&env.cred("alice")),
        "the credential is not the cookie"
    );

    // A made-up session is no session.
    let mut forged = Browser::new(&server);
    forged.cookie = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    assert_eq!(forged.get("/ui/approvals").await.status, 303);

    // Signing out ends the session on the server, not only in the browser.
    let alice = Browser::sign_in(&server, &env.cred("alice")).await;
    let csrf = alice.csrf().await;
    let a = alice.post("/ui/signout", &[("csrf", &csrf)]).await;
    assert_eq!((a.status, a.location()), (303, "/ui/signin"));
    assert_eq!(alice.get("/ui/requests").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_sign_ins_are_audited_and_throttled() {
    let env = env();
    let server = env.start(&[]);
    let b = Browser::new(&server);
    for bad in ["jitsh_wrong", "", "x"] {
        let a = b.post("/ui/signin", &[("credential", bad)]).await;
        assert_eq!(a.status, 401, "{bad}: {}", a.body);
        assert!(a.headers.get("set-cookie").is_none());
    }
    let fails = env
        .audit()
        .iter()
        .filter(|r| r["action"] == "auth.fail")
        .count();
    assert_eq!(fails, 3, "each failed sign-in is audited");
    for _ in 0..7 {
        b.post("/ui/signin", &[("credential", "jitsh_wrong")]).await;
    }
    // The limit holds for the right credential too, and for the API from the same address.
    let a = b
        .post("/ui/signin", &[("credential", &env.cred("alice"))])
        .await;
    assert_eq!(a.status, 429, "{}", a.body);
    let (status, _) = server.call("GET", "/v1/me", &env.cred("alice"), None).await;
    assert_eq!(status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_filed_in_the_browser_is_approved_by_another_approver_only() {
    let env = env();
    let server = env.start(&[]);
    let alice = Browser::sign_in(&server, &env.cred("alice")).await;
    let a = alice.file("Remove-Mailbox", "leaver <b>kim</b>").await;
    assert_eq!(
        (a.status, a.location()),
        (303, "/ui/requests"),
        "{}",
        a.body
    );
    let mine = api_requests(&server, &env.cred("alice")).await;
    assert_eq!(mine.len(), 1);
    let id = mine[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(mine[0]["params"]["Identity"], "kim@contoso.test");
    assert_eq!(mine[0]["ticket"], "CHG-1");
    let page = alice.get("/ui/requests").await;
    assert!(page.body.contains(&id) && page.body.contains("pending"));
    assert!(
        page.body.contains("leaver &lt;b&gt;kim&lt;/b&gt;"),
        "reason escaped"
    );

    // Not an approver: the helpdesk sees nothing to decide; nor does the requester.
    for (who, browser) in [
        ("carol", Browser::sign_in(&server, &env.cred("carol")).await),
        ("alice", Browser::sign_in(&server, &env.cred("alice")).await),
    ] {
        let page = browser.get("/ui/approvals").await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains(&id), "{who} sees {id}");
    }
    // Carol posting a decision anyway is refused by the workflow.
    let carol = Browser::sign_in(&server, &env.cred("carol")).await;
    let csrf = carol.csrf().await;
    let a = carol
        .post(
            &format!("/ui/requests/{id}/decide"),
            &[("csrf", &csrf), ("action", "approve"), ("digest", "00")],
        )
        .await;
    assert_ne!(a.status, 303);
    assert_eq!(status_of(&server, &env.cred("alice"), &id).await, "pending");

    let bob = Browser::sign_in(&server, &env.cred("bob")).await;
    let page = bob.get("/ui/approvals").await;
    assert!(page.body.contains(&id), "{}", page.body);
    assert!(page.body.contains("leaver &lt;b&gt;kim&lt;/b&gt;"));
    assert!(page.body.contains("kim@contoso.test"));
    let (csrf, digest) = (page.field("csrf"), page.field("digest"));
    let a = bob
        .post(
            &format!("/ui/requests/{id}/decide"),
            &[
                ("csrf", &csrf),
                ("digest", &digest),
                ("action", "approve"),
                ("comment", "ok"),
            ],
        )
        .await;
    assert_eq!(
        (a.status, a.location()),
        (303, "/ui/approvals"),
        "{}",
        a.body
    );
    assert_eq!(
        status_of(&server, &env.cred("alice"), &id).await,
        "approved"
    );

    // Dave, another approver, may revoke the live grant.
    let dave = Browser::sign_in(&server, &env.cred("dave")).await;
    let page = dave.get("/ui/approvals").await;
    assert!(page.body.contains(&format!("/ui/requests/{id}/revoke")));
    let a = dave
        .post(
            &format!("/ui/requests/{id}/revoke"),
            &[("csrf", &page.field("csrf"))],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(status_of(&server, &env.cred("alice"), &id).await, "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_changes_without_this_sessions_csrf_token_or_from_another_site_are_refused() {
    let env = env();
    let server = env.start(&[]);
    let alice = Browser::sign_in(&server, &env.cred("alice")).await;
    assert_eq!(alice.file("Set-Mailbox", "quota").await.status, 303);
    let id = api_requests(&server, &env.cred("alice")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = Browser::sign_in(&server, &env.cred("bob")).await;
    let page = bob.get("/ui/approvals").await;
    let (csrf, digest) = (page.field("csrf"), page.field("digest"));
    let alice_csrf = alice.csrf().await;
    let decide = format!("/ui/requests/{id}/decide");

    // No token, an empty one, a wrong one, another session's: each refused, nothing decided.
    for token in [None, Some(""), Some("AAAA"), Some(alice_csrf.as_str())] {
        let mut form = vec![("digest", digest.as_str()), ("action", "approve")];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let a = bob.post(&decide, &form).await;
        assert_eq!(a.status, 403, "{token:?}: {}", a.body);
    }
    // Every kind of state change checks it.
    for (browser, path) in [
        (&alice, format!("/ui/requests/{id}/withdraw")),
        (&bob, format!("/ui/requests/{id}/revoke")),
        (&alice, "/ui/requests".to_owned()),
        (&alice, "/ui/signout".to_owned()),
    ] {
        let a = browser.post(&path, &[("csrf", "forged")]).await;
        assert_eq!(a.status, 403, "{path}");
    }
    // The right token from a page of another site.
    let a = bob
        .send(
            bob.http
                .post(format!("{}{decide}", bob.url))
                .header("origin", "https://evil.example")
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("digest", digest.as_str()),
                    ("action", "approve"),
                ]),
        )
        .await;
    assert_eq!(a.status, 403);
    // No session at all: sent to sign in.
    let anon = Browser::new(&server);
    let a = anon
        .post(&decide, &[("csrf", &csrf), ("action", "approve")])
        .await;
    assert_eq!((a.status, a.location()), (303, "/ui/signin"));
    assert_eq!(status_of(&server, &env.cred("alice"), &id).await, "pending");
    // Still signed in after the refusals.
    assert_eq!(alice.get("/ui/requests").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_applies_only_to_the_request_the_page_showed() {
    let env = env();
    let server = env.start(&[]);
    let alice = Browser::sign_in(&server, &env.cred("alice")).await;
    assert_eq!(alice.file("Remove-Mailbox", "leaver").await.status, 303);
    let id = api_requests(&server, &env.cred("alice")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = Browser::sign_in(&server, &env.cred("bob")).await;
    let csrf = bob.get("/ui/approvals").await.field("csrf");
    let decide = format!("/ui/requests/{id}/decide");
    // Without the digest, or with another one: nothing decided.
    let a = bob
        .post(&decide, &[("csrf", &csrf), ("action", "approve")])
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = bob
        .post(
            &decide,
            &[
                ("csrf", &csrf),
                ("action", "deny"),
                ("comment", "no"),
                ("digest", &"0".repeat(64)),
            ],
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.body);
    // An unknown action decides nothing.
    let digest = bob.get("/ui/approvals").await.field("digest");
    let a = bob
        .post(
            &decide,
            &[
                ("csrf", &csrf),
                ("action", "approve-all"),
                ("digest", &digest),
            ],
        )
        .await;
    assert_eq!(a.status, 400);
    // A denial needs a comment.
    let a = bob
        .post(
            &decide,
            &[("csrf", &csrf), ("action", "deny"), ("digest", &digest)],
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(status_of(&server, &env.cred("alice"), &id).await, "pending");
    // The requester withdraws it.
    let csrf = alice.csrf().await;
    let a = alice
        .post(&format!("/ui/requests/{id}/withdraw"), &[("csrf", &csrf)])
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        status_of(&server, &env.cred("alice"), &id).await,
        "withdrawn"
    );
    // Nobody else can withdraw: bob's attempt on a fresh request is refused.
    assert_eq!(alice.file("Remove-Mailbox", "again").await.status, 303);
    let id = api_requests(&server, &env.cred("alice")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = bob
        .post(
            &format!("/ui/requests/{id}/withdraw"),
            &[("csrf", &csrf_of(&bob).await)],
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
}

async fn csrf_of(b: &Browser) -> String {
    b.csrf().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn form_mistakes_are_explained_not_filed() {
    let env = env();
    let server = env.start(&[]);
    let alice = Browser::sign_in(&server, &env.cred("alice")).await;
    let csrf = alice.csrf().await;
    for (form, expect) in [
        (
            vec![("task", ""), ("duration", "1h"), ("reason", "r")],
            "Name a task",
        ),
        (
            vec![
                ("task", "Set-Mailbox"),
                ("duration", "1h"),
                ("reason", "r"),
                ("params", "Identity"),
            ],
            "Name=Value",
        ),
        (
            vec![
                ("task", "Set-Mailbox"),
                ("duration", "1h"),
                ("reason", "r"),
                ("uses", "many"),
            ],
            "whole number",
        ),
        (
            vec![("task", "Set-Mailbox"), ("duration", "1h"), ("reason", "")],
            "reason",
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let a = alice.post("/ui/requests", &form).await;
        assert!(a.status >= 400, "{form:?}");
        assert!(a.body.contains(expect), "{expect}: {}", a.body);
    }
    assert!(api_requests(&server, &env.cred("alice")).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_policies_locks_and_users_are_for_global_admins_only() {
    let mut env = env();
    env.add_user("root", &["--roles", "global-admin"]);
    let server = env.start(&[]);
    let alice = Browser::sign_in(&server, &env.cred("alice")).await;
    assert_eq!(
        alice
            .file("Remove-Mailbox", "leaver <script>alert(1)</script>")
            .await
            .status,
        303
    );
    let id = api_requests(&server, &env.cred("alice")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pages = ["/ui/audit", "/ui/policies", "/ui/locks", "/ui/users"];
    for who in ["alice", "bob"] {
        let b = Browser::sign_in(&server, &env.cred(who)).await;
        for path in pages {
            let a = b.get(path).await;
            assert_eq!(a.status, 403, "{who} {path}");
        }
        assert!(!b.get("/ui/approvals").await.body.contains("/ui/audit"));
    }
    let anon = Browser::new(&server);
    for path in pages {
        assert_eq!(anon.get(path).await.status, 303, "{path}");
    }

    let root = Browser::sign_in(&server, &env.cred("root")).await;
    assert!(root.get("/ui/approvals").await.body.contains("/ui/audit"));
    let a = root.get(&format!("/ui/audit?request={id}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("intact:"), "{}", a.body);
    assert!(a.body.contains("request.create"), "{}", a.body);
    assert!(!a.body.contains("<script>alert"), "details escaped");
    assert!(a.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // A filter matching nothing shows nothing; a bad filter value is explained.
    let a = root.get("/ui/audit?user=nobody").await;
    assert!(a.body.contains("0 records match") && !a.body.contains("request.create"));
    let a = root.get("/ui/audit?decision=maybe").await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("allow, approval or deny"), "{}", a.body);
    let a = root.get("/ui/audit?since=yesterday").await;
    assert_eq!(a.status, 400);

    let a = root.get("/ui/policies").await;
    assert!(a.body.contains("mailbox-removal") && a.body.contains("mbmanagers"));
    let a = root.get("/ui/locks").await;
    assert!(a.body.contains("No locks"), "{}", a.body);
    let a = root.get("/ui/users").await;
    for name in ["alice", "bob", "carol", "root"] {
        assert!(a.body.contains(name), "{name}");
    }
    assert!(!a.body.contains(&env.cred("alice")));
}

/// A gated session of alice as her gate forwards it, and its recording copied to the service;
/// with the id of alice's request its refused line names (a gate may name only its user's).
async fn alice_session(env: &Env, server: &Server) -> (String, String) {
    let session = "s-alice-1";
    let browser = Browser::sign_in(server, &env.cred("alice")).await;
    let filed = browser.file("Remove-Mailbox", "leaver").await;
    assert_eq!(filed.status, 303, "{}", filed.body);
    let mine = api_requests(server, &env.cred("alice")).await;
    let request = mine[0]["id"].as_str().unwrap().to_owned();
    let events = serde_json::json!({
        "batch": "b-1",
        "events": [
            {"time": "2026-11-27T10:00:00Z", "actor": "alice", "action": "session.start",
             "subject": session, "outcome": "ok", "details": {"recording": "/etc/passwd"}},
            {"time": "2026-11-27T10:00:05Z", "actor": "alice", "action": "gate.decision",
             "subject": session, "outcome": "allow", "details": {"line": "Get-Mailbox kim",
              "marker": 1, "invocations": [{"name": "Get-Mailbox", "rule": "read-only", "decision": "allow"}]}},
            {"time": "2026-11-27T10:00:09Z", "actor": "alice", "action": "gate.decision",
             "subject": session, "outcome": "deny", "details": {"line": "Remove-Mailbox kim<script>x</script>",
              "marker": 2, "token_id": "tok-1", "request": request,
              "invocations": [{"name": "Remove-Mailbox", "rule": "mailbox-removal", "decision": "approval"}]}},
            {"time": "2026-11-27T10:01:10Z", "actor": "alice", "action": "session.end",
             "subject": session, "outcome": "ok", "details": {"status": 0}}
        ]
    });
    let (status, v) = server
        .call("POST", "/v1/audit/events", &env.cred("alice"), Some(events))
        .await;
    assert!(status < 300, "{status} {v}");
    let recordings = env.state.join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    std::fs::write(
        recordings.join(format!("{session}.cast")),
        "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.1, \"o\", \"PS> \"]\n[5.0, \"m\", \"gate: allow\"]\n[9.0, \"m\", \"gate: deny\"]\n",
    )
    .unwrap();
    // Forwarded events reach the log within the sweep's second.
    for _ in 0..50 {
        if env.audit().iter().any(|r| r["action"] == "session.end") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (session.to_owned(), request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_are_reviewed_by_their_user_and_global_admins_with_the_decisions_beside_the_player(
) {
    let mut env = env();
    env.add_user("root", &["--roles", "global-admin"]);
    let server = env.start(&[]);
    let (session, request) = alice_session(&env, &server).await;

    for who in ["alice", "root"] {
        let b = Browser::sign_in(&server, &env.cred(who)).await;
        let list = b.get("/ui/sessions").await;
        assert_eq!(list.status, 200);
        assert!(
            list.body
                .contains(&format!(r#"<a href="/ui/sessions/{session}">"#)),
            "{who}: {}",
            list.body
        );
        assert!(list.body.contains("1m10s"), "duration: {}", list.body);
        assert!(
            list.body.contains("<td>2</td><td>1</td>"),
            "decisions, refusals"
        );
        let a = b.get(&format!("/ui/sessions/{session}")).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a
            .body
            .contains(&format!(r#"data-src="/ui/sessions/{session}/cast""#)));
        assert!(a.body.contains(r#"data-marker="2""#) && a.body.contains("mailbox-removal"));
        assert!(
            a.body.contains("tok-1") && a.body.contains(&format!("/ui/audit?request={request}"))
        );
        assert!(a.body.contains("kim&lt;script&gt;x&lt;/script&gt;"));
        assert!(a
            .body
            .contains(r#"<script src="/ui/assets/player.js" defer></script>"#));
        assert_eq!(
            a.body.matches("<script").count(),
            2,
            "only the two external scripts"
        );
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        // Scripts from this service only; WebAssembly may compile, no inline script or eval.
        assert_eq!(script_src.trim(), "script-src 'self' 'wasm-unsafe-eval'");
        let cast = b.get(&format!("/ui/sessions/{session}/cast")).await;
        assert_eq!(cast.status, 200);
        assert!(cast.body.contains("gate: deny"));
    }
    // The audit search links a decision to its recording at its marker; the page starts there.
    let root = Browser::sign_in(&server, &env.cred("root")).await;
    let a = root.get("/ui/audit?user=alice").await;
    assert!(
        a.body
            .contains(&format!(r#"href="/ui/sessions/{session}?marker=2""#)),
        "{}",
        a.body
    );
    let a = root.get(&format!("/ui/sessions/{session}?marker=2")).await;
    assert!(a.body.contains(r#"data-start-marker="2""#));
    for odd in ["?marker=0", "?marker=-1", "?marker=x%22%3E", "?marker="] {
        let a = root.get(&format!("/ui/sessions/{session}{odd}")).await;
        assert_eq!(a.status, 200, "{odd}");
        assert!(!a.body.contains("data-start-marker"), "{odd}");
    }
    // Bob is neither the session's user nor a global admin: nothing of it.
    let bob = Browser::sign_in(&server, &env.cred("bob")).await;
    assert!(!bob.get("/ui/sessions").await.body.contains(&session));
    assert_eq!(
        bob.get(&format!("/ui/sessions/{session}")).await.status,
        404
    );
    assert_eq!(
        bob.get(&format!("/ui/sessions/{session}/cast"))
            .await
            .status,
        404
    );
    // Bob writing under alice's session id is refused: a session is its first sender's. Alice
    // still reviews it alone (a session others had written under would go to global admins).
    let forged = serde_json::json!({"batch": "b-2", "events": [
        {"time": "2026-11-27T10:00:20Z", "actor": "bob", "action": "gate.decision",
         "subject": session, "outcome": "allow", "details": {"line": "Get-Mailbox"}}]});
    let (status, err) = server
        .call("POST", "/v1/audit/events", &env.cred("bob"), Some(forged))
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (403, Some("not_your_session")),
        "{err}"
    );
    let alice = Browser::sign_in(&server, &env.cred("alice")).await;
    assert!(alice.get("/ui/sessions").await.body.contains(&session));
    assert_eq!(
        alice.get(&format!("/ui/sessions/{session}")).await.status,
        200
    );
    let bob = Browser::sign_in(&server, &env.cred("bob")).await;
    assert!(!bob.get("/ui/sessions").await.body.contains(&session));
    assert_eq!(
        bob.get(&format!("/ui/sessions/{session}/cast"))
            .await
            .status,
        404
    );
    // Paths in ids, and the recording path a gate wrote in its event, open no other file.
    let root = Browser::sign_in(&server, &env.cred("root")).await;
    for id in ["..%2Fdirectory.toml", "..", ".%2E", "%2Fetc%2Fpasswd"] {
        let a = root.get(&format!("/ui/sessions/{id}/cast")).await;
        assert_ne!(a.status, 200, "{id}");
        assert!(!a.body.contains("credential_sha256") && !a.body.contains("root:"));
    }
    // The player ships with its licence, from this service.
    let js = root.get("/ui/assets/asciinema-player.min.js").await;
    assert_eq!(js.status, 200);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(root
        .get("/ui/assets/asciinema-player.LICENSE")
        .await
        .body
        .contains("Apache License"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_review_is_acknowledged_only_with_this_sessions_token_by_the_admin_group() {
    let mut env = env();
    env.add_user("root", &["--roles", "global-admin"]);
    env.add_user("erin", &["--groups", "secops"]);
    env.add_user("svc", &["--groups", "secops"]);
    let server = env.start(&[]);
    let (status, v) = server
        .call(
            "POST",
            "/v1/control/enable",
            &env.cred("root"),
            Some(serde_json::json!({"admin_group": "secops", "system_accounts": ["svc"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let batch = serde_json::json!({"batch": "b1", "events": [{"time": "2026-01-01T00:00:00Z",
        "actor": "svc", "action": "gate.decision", "subject": "s-svc", "outcome": "allow",
        "details": {"line": "Get-Mailbox <script>x</script>\u{202e}"}}]});
    let (status, v) = server
        .call("POST", "/v1/audit/events", &env.cred("svc"), Some(batch))
        .await;
    assert_eq!(status, 200, "{v}");
    let id = server
        .call("GET", "/v1/reviews", &env.cred("erin"), None)
        .await
        .1["reviews"][0]["id"]
        .as_i64()
        .unwrap();

    let erin = Browser::sign_in(&server, &env.cred("erin")).await;
    let page = erin.get("/ui/reviews").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // What the account ran is shown escaped, never as markup or a reordering character.
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);
    assert!(!page.body.contains("<script>") && !page.body.contains('\u{202e}'));
    let ack = format!("/ui/reviews/{id}/ack");
    let carol = Browser::sign_in(&server, &env.cred("carol")).await;
    let carol_csrf = carol.csrf().await;
    for token in ["", "forged", carol_csrf.as_str()] {
        let a = erin.post(&ack, &[("csrf", token), ("comment", "x")]).await;
        assert_eq!(a.status, 403, "{token}: {}", a.body);
    }
    // Outside the admin group: the page and the button say no.
    assert_eq!(carol.get("/ui/reviews").await.status, 403);
    let a = carol.post(&ack, &[("csrf", &carol_csrf)]).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let open = server
        .call("GET", &format!("/v1/reviews/{id}"), &env.cred("erin"), None)
        .await
        .1;
    assert_eq!(open["status"], "open", "{open}");

    let csrf = page.field("csrf");
    let a = erin
        .post(&ack, &[("csrf", &csrf), ("comment", "seen")])
        .await;
    assert_eq!((a.status, a.location()), (303, "/ui/reviews"), "{}", a.body);
    let done = server
        .call("GET", &format!("/v1/reviews/{id}"), &env.cred("erin"), None)
        .await
        .1;
    assert_eq!(
        (&done["status"], &done["acked_by"]),
        (
            &serde_json::json!("acknowledged"),
            &serde_json::json!("erin")
        )
    );
}
