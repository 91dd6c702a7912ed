//! The admin center in a real browser: headless Chromium driven over WebDriver (chromedriver).
//! Signs in, files a request, approves it as another user, checks a non-approver does not see
//! it, plays a recording and jumps to a decision marker. Saves screenshots of the main pages into
//! docs/ (`docs/ui-*.png`, shown in the README; `JITSH_SCREENSHOTS=tmp` keeps them out of the
//! checkout).
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and `chromium-driver`); under
//! `CI=true` their absence fails the test, elsewhere it prints SKIPPED.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[path = "support/server.rs"]
mod server;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
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

fn find(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        Command::new("sh")
            .args(["-c", &format!("command -v {n}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|p| !p.is_empty())
    })
}

/// chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser(driver: &Driver, chromium: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{}", driver.port);
    for _ in 0..100 {
        if let Ok(c) = ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {url}");
}

async fn sign_in(c: &Client, server: &Server, cred: &str) {
    c.goto(&format!("{}/ui/signin", server.url)).await.unwrap();
    c.find(Locator::Id("credential"))
        .await
        .unwrap()
        .send_keys(cred)
        .await
        .unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(c, "/ui/approvals").await;
}

/// A click returns before the next page loads: wait for it.
async fn wait_for_path(c: &Client, path: &str) {
    let mut url = c.current_url().await.unwrap();
    for _ in 0..100 {
        if url.path() == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        url = c.current_url().await.unwrap();
    }
    panic!(
        "expected {path}, at {url}: {}",
        c.source().await.unwrap_or_default()
    );
}

async fn sign_out(c: &Client) {
    c.find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(c, "/ui/signin").await;
}

/// Takes a screenshot of the page (which also proves it rendered) into docs/, where the README
/// shows it; `JITSH_SCREENSHOTS=tmp` writes it to the system's temporary folder instead.
async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    let dir = if std::env::var("JITSH_SCREENSHOTS").as_deref() == Ok("tmp") {
        std::env::temp_dir()
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
    };
    std::fs::write(dir.join(format!("ui-{name}.png")), png).unwrap();
}

/// The seconds played, from the player's `MM:SS` timer.
fn elapsed(timer: &str) -> Option<u32> {
    let (m, rest) = timer.trim().split_once(':')?;
    let s: String = rest.chars().take(2).collect();
    Some(m.parse::<u32>().ok()? * 60 + s.parse::<u32>().ok()?)
}

async fn body_text(c: &Client) -> String {
    c.source().await.unwrap()
}

/// A session of alice as her gate forwards it, and its recording copied to the service.
async fn alice_session(env: &Env, server: &Server) -> &'static str {
    let session = "s-alice-1";
    let events = json!({
        "batch": "b-1",
        "events": [
            {"time": "2026-11-27T10:00:00Z", "actor": "alice", "action": "session.start",
             "subject": session, "outcome": "ok", "details": {}},
            {"time": "2026-11-27T10:00:03Z", "actor": "alice", "action": "gate.decision",
             "subject": session, "outcome": "allow", "details": {"line": "Get-Mailbox kim",
              "marker": 1, "invocations": [{"name": "Get-Mailbox", "rule": "read-only", "decision": "allow"}]}},
            {"time": "2026-11-27T10:00:08Z", "actor": "alice", "action": "gate.decision",
             "subject": session, "outcome": "deny", "details": {"line": "Remove-Mailbox kim",
              "marker": 2, "reason": "needs approval: rule mailbox-removal",
              "invocations": [{"name": "Remove-Mailbox", "rule": "mailbox-removal", "decision": "approval"}]}},
            {"time": "2026-11-27T10:00:12Z", "actor": "alice", "action": "session.end",
             "subject": session, "outcome": "ok", "details": {"status": 0}}
        ]
    });
    let (status, v) = server
        .call("POST", "/v1/audit/events", &env.cred("alice"), Some(events))
        .await;
    assert!(status < 300, "{status} {v}");
    let dir = env.state.join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let cast = concat!(
        "{\"version\": 2, \"width\": 80, \"height\": 12}\n",
        "[0.2, \"o\", \"[jitsh] PS> \"]\n",
        "[1.0, \"o\", \"Get-Mailbox kim\\r\\n\"]\n",
        "[3.0, \"m\", \"gate: allow read-only\"]\n",
        "[3.1, \"o\", \"kim  kim@contoso.test\\r\\n[jitsh] PS> \"]\n",
        "[6.0, \"o\", \"Remove-Mailbox kim\\r\\n\"]\n",
        "[8.0, \"m\", \"gate: approval mailbox-removal\"]\n",
        "[8.1, \"o\", \"jitsh: needs approval (rule mailbox-removal)\\r\\n[jitsh] PS> \"]\n",
        "[12.0, \"o\", \"exit\\r\\n\"]\n",
    );
    std::fs::write(dir.join(format!("{session}.cast")), cast).unwrap();
    for _ in 0..50 {
        if env.audit().iter().any(|r| r["action"] == "session.end") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_center_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        find(&["chromium", "chromium-browser", "google-chrome"]),
        find(&["chromedriver"]),
    ) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium and chromedriver are required under CI (apt-get install chromium chromium-driver)");
        }
        println!("SKIPPED: chromium or chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let mut env = Env::empty(POLICY);
    env.add_user("alice", &["--groups", "exchange-admins"]);
    env.add_user("bob", &["--groups", "mbmanagers"]);
    env.add_user("carol", &["--groups", "helpdesk"]);
    env.add_user("root", &["--roles", "global-admin"]);
    env.add_user("erin", &["--groups", "secops"]);
    env.add_user("svc", &["--groups", "secops"]);
    let server = env.start(&[]);
    let session = alice_session(&env, &server).await;

    let port = free_port();
    let driver = Driver {
        child: Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        port,
    };
    let c = browser(&driver, &chromium).await;

    // Sign in, file a request.
    c.goto(&format!("{}/ui/signin", server.url)).await.unwrap();
    shot(&c, "signin").await;
    sign_in(&c, &server, &env.cred("alice")).await;
    c.goto(&format!("{}/ui/requests", server.url))
        .await
        .unwrap();
    for (id, text) in [
        ("task", "Remove-Mailbox"),
        ("params", "Identity=kim@contoso.test"),
        ("duration", "1h"),
        ("reason", "leaver: mailbox of kim goes"),
        ("ticket", "CHG-1042"),
    ] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Css("form[action='/ui/requests'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form[action$='/withdraw']"))
        .await
        .unwrap();
    let page = body_text(&c).await;
    assert!(page.contains("leaver: mailbox of kim goes"), "{page}");
    let id = server
        .call("GET", "/v1/requests?mine=true", &env.cred("alice"), None)
        .await
        .1["requests"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(page.contains(&id));
    shot(&c, "requests").await;
    sign_out(&c).await;

    // A non-approver does not see it.
    sign_in(&c, &server, &env.cred("carol")).await;
    assert!(!body_text(&c).await.contains(&id));
    sign_out(&c).await;

    // Bob approves it, with a comment, from the page that shows it.
    sign_in(&c, &server, &env.cred("bob")).await;
    let page = body_text(&c).await;
    assert!(page.contains(&id) && page.contains("kim@contoso.test"));
    shot(&c, "approvals").await;
    c.find(Locator::Id(&format!("c-{id}")))
        .await
        .unwrap()
        .send_keys("ok, ticket checked")
        .await
        .unwrap();
    c.find(Locator::Css(&format!(
        "form[action='/ui/requests/{id}/decide'] button[value=approve]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!(
            "form[action='/ui/requests/{id}/revoke']"
        )))
        .await
        .unwrap();
    let (_, v) = server
        .call(
            "GET",
            &format!("/v1/requests/{id}"),
            &env.cred("alice"),
            None,
        )
        .await;
    assert_eq!(v["status"], "approved", "{v}");
    sign_out(&c).await;

    // The recording plays; choosing a decision jumps to its marker.
    sign_in(&c, &server, &env.cred("root")).await;
    c.goto(&format!("{}/ui/audit?user=alice", server.url))
        .await
        .unwrap();
    shot(&c, "audit").await;
    // From the audit search's link: the player starts at the decision's marker.
    let link = c
        .find(Locator::Css(&format!(
            "a[href='/ui/sessions/{session}?marker=1']"
        )))
        .await
        .unwrap();
    link.click().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#player .ap-player"))
        .await
        .expect("the player did not start (script refused?)");
    let mut status = String::new();
    for _ in 0..50 {
        status = c
            .find(Locator::Id("jumped"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !status.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "Playing from decision 1");
    c.find(Locator::Css("button[data-marker='2']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = c
        .find(Locator::Id("jumped"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(status, "Playing from decision 2");
    let current = c
        .find(Locator::Css("li.decision.current"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(current.contains("mailbox-removal"), "{current}");
    // The player's position is at the marker (8 s), not at the start.
    let mut at = String::new();
    for _ in 0..50 {
        at = c
            .execute(
                "var t = document.querySelector('.ap-timer'); return t ? t.textContent : '';",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if elapsed(&at).is_some_and(|t| (8..=12).contains(&t)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        elapsed(&at).is_some_and(|t| (8..=12).contains(&t)),
        "player timer: {at:?}"
    );
    c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    shot(&c, "session").await;
    sign_out(&c).await;

    // A system account's session opens a review; a member of the admin group acknowledges it
    // from the Reviews page, and the account itself cannot.
    let (status, v) = server
        .call(
            "POST",
            "/v1/control/enable",
            &env.cred("root"),
            Some(json!({ "admin_group": "secops", "system_accounts": ["svc"] })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let batch = json!({"batch": "svc-1", "events": [
        {"time": "2026-11-27T11:00:00Z", "actor": "svc", "action": "gate.decision",
         "subject": "s-svc-1", "outcome": "allow", "details": {"line": "Get-Mailbox -ResultSize 10"}}
    ]});
    let (status, v) = server
        .call("POST", "/v1/audit/events", &env.cred("svc"), Some(batch))
        .await;
    assert!(status < 300, "{status} {v}");
    sign_in(&c, &server, &env.cred("svc")).await;
    c.goto(&format!("{}/ui/reviews", server.url)).await.unwrap();
    let page = body_text(&c).await;
    assert!(page.contains("Get-Mailbox -ResultSize 10"), "{page}");
    c.find(Locator::Css("section.review form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("p.notice"))
        .await
        .unwrap();
    assert!(body_text(&c).await.contains("an account of yours"));
    c.goto(&format!("{}/ui/approvals", server.url))
        .await
        .unwrap();
    sign_out(&c).await;
    sign_in(&c, &server, &env.cred("erin")).await;
    c.goto(&format!("{}/ui/reviews", server.url)).await.unwrap();
    let id = server
        .call("GET", "/v1/reviews", &env.cred("erin"), None)
        .await
        .1["reviews"][0]["id"]
        .as_i64()
        .unwrap();
    c.find(Locator::Id(&format!("ack-{id}")))
        .await
        .unwrap()
        .send_keys("nightly job, as planned")
        .await
        .unwrap();
    c.find(Locator::Css(&format!(
        "form[action='/ui/reviews/{id}/ack'] button"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for_path(&c, "/ui/reviews").await;
    let mut acked = serde_json::Value::Null;
    for _ in 0..50 {
        acked = server
            .call("GET", &format!("/v1/reviews/{id}"), &env.cred("erin"), None)
            .await
            .1;
        if acked["status"] == "acknowledged" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(acked["acked_by"], "erin", "{acked}");
    assert_eq!(acked["comment"], "nightly job, as planned", "{acked}");
    assert!(body_text(&c).await.contains("No open reviews."));
    c.close().await.unwrap();
    drop(driver);
}
