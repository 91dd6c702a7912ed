//! Several `jitsh serve` replicas on one PostgreSQL database (`--store postgres://…`): each
//! workflow step is atomic across replicas. Needs PostgreSQL on 127.0.0.1:5432 with trust
//! authentication (database `test`, or `JITSH_TEST_PG` as the admin URL); each test makes its
//! own database and drops it. Without PostgreSQL the tests fail under `CI=true` and say
//! SKIPPED otherwise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

#[path = "support/server.rs"]
mod server;
mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use server::{Env, Server};

const POLICY: &str = r#"
[[rule]]
id = "mailbox-moves"
effect = "approval"
tasks = ["New-MoveRequest"]
approval = "manual"
approvers = ["mbmanagers"]
requesters = ["exchange-admins"]
max_duration = "4h"

[[rule]]
id = "mailbox-removal"
effect = "approval"
tasks = ["Remove-Mailbox"]
approval = "manual"
approvers = ["mbmanagers"]
min_approvals = 2
max_duration = "1h"

[[rule]]
id = "stats-auto"
effect = "approval"
tasks = ["Get-MailboxStatistics"]
approval = "auto"
max_duration = "30m"
"#;

fn admin_url() -> String {
    std::env::var("JITSH_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Run one statement on the admin database.
async fn admin(sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let out = client.batch_execute(sql).await;
    drop(client);
    let _ = task.await;
    out
}

/// A database of its own for one test, dropped at the end.
struct Db {
    name: String,
    url: String,
}

impl Db {
    /// `None` (after saying SKIPPED) when PostgreSQL is not reachable outside CI.
    async fn create(tag: &str) -> Option<Db> {
        if let Err(e) = admin("SELECT 1").await {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL at {} is not reachable: {e}", admin_url());
            }
            eprintln!(
                "SKIPPED: PostgreSQL at {} is not reachable: {e}",
                admin_url()
            );
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("jitsh_{tag}_{}_{nanos}", std::process::id());
        admin(&format!("CREATE DATABASE {name}")).await.unwrap();
        let base = admin_url();
        let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
        let url = format!("{server}/{name}");
        Some(Db { name, url })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Its own thread and runtime: drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(admin(&sql))
        })
        .join();
    }
}

/// `n` replicas: their own state folders, one database (which holds the directory, the
/// signing key and the audit chain of the deployment).
struct Replicas {
    servers: Vec<Server>,
    /// The database, when the replicas run on PostgreSQL.
    url: Option<String>,
    /// Keeps the folders until the replicas (dropped first) stop.
    _env: Env,
}

impl Replicas {
    fn start(env: Env, db: &Db, n: usize) -> Replicas {
        Replicas::start_with(env, db, n, &[])
    }

    fn start_with(env: Env, db: &Db, n: usize, extra: &[&str]) -> Replicas {
        let directory = env.state.join("directory.toml");
        let dir_arg = directory.display().to_string();
        let mut args = vec!["--store", &db.url, "--directory", &dir_arg];
        args.extend_from_slice(extra);
        let first = env.start(&args);
        let mut servers = vec![first];
        for k in 1..n {
            let state = env.dir.path().join(format!("state{k}"));
            std::fs::create_dir_all(&state).unwrap();
            for key in ["signing.key", "signing.pub"] {
                std::fs::copy(env.state.join(key), state.join(key)).unwrap();
            }
            let mut other = Env::empty(POLICY);
            other.state = state.clone();
            other.policies = env.policies.clone();
            servers.push(other.start(&args));
        }
        Replicas {
            _env: env,
            servers,
            url: Some(db.url.clone()),
        }
    }

    /// Audit records with `action` in the deployment's one chain.
    async fn audited(&self, action: &str) -> usize {
        let url = self.url.as_deref().unwrap();
        let n = column(
            url,
            &format!("SELECT COUNT(*)::TEXT FROM audit_chain WHERE action = '{action}'"),
        )
        .await;
        n[0].parse().unwrap()
    }

    /// Stop every replica still running as an operator would (SIGTERM): each seals the
    /// chain as it stops.
    fn stop(&mut self) {
        for server in &mut self.servers {
            if !server.alive() {
                continue;
            }
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(server.pid()).unwrap()),
                nix::sys::signal::Signal::SIGTERM,
            )
            .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while server.alive() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "a replica did not stop"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// `jitsh audit ARGS` with the deployment's public key (read from the database) trusted:
/// exit success and stdout.
async fn audit_cli(url: &str, args: &[&str]) -> (bool, String) {
    let keys = column(url, "SELECT public_text FROM signing_keys WHERE current").await;
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("signing.pub");
    std::fs::write(&trust, &keys[0]).unwrap();
    let out = std::process::Command::new(server::JITSH)
        .arg("audit")
        .args(args)
        .arg("--trust-key")
        .arg(&trust)
        .env_remove("JITSH_STORE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The deployment's chain verifies in the database, and exported to a file it verifies as
/// the file log does; returns the number of records.
async fn chain_verifies(url: &str) -> usize {
    let (ok, said) = audit_cli(url, &["verify", url, "--no-recordings"]).await;
    assert!(ok, "{said}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit-000001.jsonl");
    let out = std::process::Command::new(server::JITSH)
        .args(["audit", "export", "--from", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&file, &out.stdout).unwrap();
    let (ok, said) = audit_cli(url, &["verify", file.to_str().unwrap(), "--no-recordings"]).await;
    assert!(ok, "{said}");
    let n = String::from_utf8_lossy(&out.stdout).lines().count();
    let rows = column(url, "SELECT COUNT(*)::TEXT FROM audit_chain").await;
    assert_eq!(rows[0], n.to_string());
    n
}

fn env_with_approvers(n: usize) -> (Env, Vec<String>) {
    let mut env = Env::empty(POLICY);
    env.add_user("alice", &["--groups", "exchange-admins"]);
    let approvers = (1..=n)
        .map(|k| env.add_user(&format!("a{k}"), &["--groups", "mbmanagers"]))
        .collect();
    (env, approvers)
}

async fn file(server: &Server, cred: &str, body: Value) -> String {
    let (status, out) = server.call("POST", "/v1/requests", cred, Some(body)).await;
    assert_eq!(status, 201, "{out}");
    out["id"].as_str().unwrap().to_owned()
}

/// Every approver votes at once, spread over the replicas; returns `(status, body)` per vote.
async fn vote_all(r: &Arc<Replicas>, id: &str, creds: &[String]) -> Vec<(u16, Value)> {
    let mut tasks = Vec::new();
    for (k, cred) in creds.iter().enumerate() {
        let (r, id, cred) = (Arc::clone(r), id.to_owned(), cred.clone());
        tasks.push(tokio::spawn(async move {
            let server = &r.servers[k % r.servers.len()];
            server
                .call("POST", &format!("/v1/requests/{id}/approve"), &cred, None)
                .await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_approvals_across_three_replicas_make_one_decision() {
    let Some(db) = Db::create("approve").await else {
        return;
    };
    let (env, approvers) = env_with_approvers(20);
    let alice = env.cred("alice");
    let r = Arc::new(Replicas::start(env, &db, 3));
    for round in 0..3 {
        let id = file(
            &r.servers[round % 3],
            &alice,
            json!({"task": "New-MoveRequest", "reason": "ticket work", "duration": "1h"}),
        )
        .await;
        let results = vote_all(&r, &id, &approvers).await;
        let won: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(won.len(), 1, "round {round}: {results:?}");
        assert_eq!(won[0].1["status"], "approved", "{results:?}");
        for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(
                (*status, body["error"].as_str()),
                (409, Some("already_decided")),
                "{body}"
            );
        }
        // Every replica shows the one decision and its one vote.
        for server in &r.servers {
            let (_, shown) = server
                .call("GET", &format!("/v1/requests/{id}"), &alice, None)
                .await;
            assert_eq!(shown["status"], "approved", "{shown}");
            assert_eq!(shown["approvals"].as_array().unwrap().len(), 1, "{shown}");
        }
    }
    assert_eq!(r.audited("request.approve").await, 3);
    // Sixty votes from three replicas, one chain: it verifies once they stop.
    let url = r.url.clone().unwrap();
    let mut r = Arc::try_unwrap(r).ok().unwrap();
    r.stop();
    chain_verifies(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn quorum_votes_through_different_replicas_each_count_once() {
    let Some(db) = Db::create("quorum").await else {
        return;
    };
    let (env, approvers) = env_with_approvers(10);
    let alice = env.cred("alice");
    let r = Arc::new(Replicas::start(env, &db, 2));

    // One approver twice through two replicas counts once.
    let body = json!({"task": "Remove-Mailbox", "reason": "leaver", "duration": "30m"});
    let id = file(&r.servers[0], &alice, body.clone()).await;
    let path = format!("/v1/requests/{id}/approve");
    let (status, first) = r.servers[0].call("POST", &path, &approvers[0], None).await;
    assert_eq!((status, first["status"].as_str()), (200, Some("pending")));
    let (status, again) = r.servers[1].call("POST", &path, &approvers[0], None).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("already_approved"))
    );
    let (status, done) = r.servers[1].call("POST", &path, &approvers[1], None).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("approved")));

    // Ten at once on a quorum of two: one vote recorded, one decides, the rest are too late.
    let id = file(&r.servers[1], &alice, body).await;
    let results = vote_all(&r, &id, &approvers).await;
    let statuses: Vec<Option<&str>> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["status"].as_str())
        .collect();
    assert_eq!(statuses.len(), 2, "{results:?}");
    assert!(statuses.contains(&Some("pending")), "{results:?}");
    assert!(statuses.contains(&Some("approved")), "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|(_, b)| b["error"] == "already_decided")
            .count(),
        8,
        "{results:?}"
    );
    let (_, shown) = r.servers[0]
        .call("GET", &format!("/v1/requests/{id}"), &alice, None)
        .await;
    assert_eq!(shown["approvals"].as_array().unwrap().len(), 2, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_counted_use_is_spent_once_and_locks_hold_on_every_replica() {
    let Some(db) = Db::create("uses").await else {
        return;
    };
    let (mut env, _) = env_with_approvers(1);
    let root = env.add_user("root", &["--roles", "global-admin"]);
    let alice = env.cred("alice");
    let r = Arc::new(Replicas::start(env, &db, 3));

    let id = file(
        &r.servers[0],
        &alice,
        json!({"task": "Get-MailboxStatistics", "reason": "sizes", "duration": "10m", "uses": 3}),
    )
    .await;
    // Issued by another replica: the keys are shared, the grant is in the database.
    let (status, tok) = r.servers[2]
        .call("GET", &format!("/v1/requests/{id}/token"), &alice, None)
        .await;
    assert_eq!(status, 200, "{tok}");
    let jti = tok["jti"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for k in 0..12 {
        let (r, jti, alice) = (Arc::clone(&r), jti.clone(), alice.clone());
        tasks.push(tokio::spawn(async move {
            r.servers[k % 3]
                .call("POST", &format!("/v1/grants/{jti}/use"), &alice, None)
                .await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let mut remaining: Vec<i64> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["remaining"].as_i64().unwrap())
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, vec![0, 1, 2], "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|(s, b)| *s == 409 && b["error"] == "uses_exhausted")
            .count(),
        9,
        "{results:?}"
    );

    // A lock set through one replica refuses requests through the others at once.
    let (status, lock) = r.servers[0]
        .call(
            "POST",
            "/v1/locks",
            &root,
            Some(json!({"scope": "user:alice", "reason": "incident"})),
        )
        .await;
    assert_eq!(status, 201, "{lock}");
    for server in &r.servers[1..] {
        let (status, err) = server
            .call(
                "POST",
                "/v1/requests",
                &alice,
                Some(json!({"task": "New-MoveRequest", "reason": "x", "duration": "1h"})),
            )
            .await;
        assert_eq!(err["error"], "locked", "{status} {err}");
    }
    let (status, _) = r.servers[2]
        .call(
            "DELETE",
            "/v1/locks",
            &root,
            Some(json!({"scope": "USER:ALICE"})),
        )
        .await;
    assert!(status == 200 || status == 204, "{status}");
    file(
        &r.servers[1],
        &alice,
        json!({"task": "New-MoveRequest", "reason": "x", "duration": "1h"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_store_url_stops_the_service_with_a_reason() {
    let env = Env::empty(POLICY);
    let out = std::process::Command::new(server::JITSH)
        .arg("serve")
        .arg("--state")
        .arg(&env.state)
        .arg("--policies")
        .arg(&env.policies)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--store",
            "mysql://x@127.0.0.1/db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("postgres://"), "{err}");
    // Unreachable database: refused at start, not at the first request.
    let out = std::process::Command::new(server::JITSH)
        .arg("serve")
        .arg("--state")
        .arg(&env.state)
        .arg("--policies")
        .arg(&env.policies)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--store",
            "postgres://nobody@127.0.0.1:1/none?connect_timeout=2",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not connect to PostgreSQL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_added_through_one_replica_acts_through_another() {
    let Some(db) = Db::create("useradd").await else {
        return;
    };
    let (mut env, _) = env_with_approvers(1);
    let root = env.add_user("root", &["--roles", "global-admin"]);
    let state = env.state.clone();
    // Two replicas start on an empty database: the directory file is imported once.
    let mut r = Replicas::start(env, &db, 2);
    let add = |name: &str, store: Option<&str>| {
        let mut cmd = std::process::Command::new(server::JITSH);
        cmd.args([
            "user",
            "add",
            name,
            "--groups",
            "exchange-admins",
            "--state",
        ])
        .arg(&state)
        .env_remove("JITSH_STORE");
        if let Some(url) = store {
            cmd.args(["--store", url]);
        }
        cmd.output().unwrap()
    };
    // Without the store the user would go into a file no replica reads: refused, no user.
    let out = add("late", None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--store"), "{err}");
    let out = add("late", Some(&db.url));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let late = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    // At once, through either replica: no replica serves a stale directory.
    for server in &r.servers {
        let (status, me) = server.call("GET", "/v1/me", &late, None).await;
        assert_eq!((status, me["name"].as_str()), (200, Some("late")), "{me}");
    }
    // Added through the API of one replica, acting through the other at once.
    let (status, made) = r.servers[0]
        .call(
            "POST",
            "/v1/users",
            &root,
            Some(json!({"name": "newbie", "groups": ["exchange-admins"]})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let newbie = made["credential"].as_str().unwrap().to_owned();
    let id = file(
        &r.servers[1],
        &newbie,
        json!({"task": "New-MoveRequest", "reason": "first day", "duration": "1h"}),
    )
    .await;
    let (_, shown) = r.servers[0]
        .call("GET", &format!("/v1/requests/{id}"), &newbie, None)
        .await;
    assert_eq!(shown["requester"], "newbie", "{shown}");
    // The same name through the other replica: refused, the first credential stands.
    let (status, again) = r.servers[1]
        .call(
            "POST",
            "/v1/users",
            &root,
            Some(json!({"name": "NEWBIE", "groups": ["mbmanagers"]})),
        )
        .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("user_exists"))
    );
    // A credential that is no one's still fails on every replica.
    for server in &r.servers {
        let (status, _) = server
            .call(
                "GET",
                "/v1/me",
                "jitsh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                None,
            )
            .await;
        assert_eq!(status, 401);
    }
    // Listed from the store; each addition audited once in the one chain.
    let out = std::process::Command::new(server::JITSH)
        .args(["user", "list", "--state"])
        .arg(&state)
        .args(["--store", &db.url])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in ["alice", "a1", "root", "late", "newbie"] {
        assert!(listed.lines().any(|l| l.starts_with(name)), "{listed}");
    }
    assert_eq!(r.audited("directory.import").await, 1);
    assert_eq!(r.audited("user.add").await, 2);
    // The admin center of either replica shows the one chain, verified.
    for server in &r.servers {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let signed = http
            .post(format!("{}/ui/signin", server.url))
            .form(&[("credential", root.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status().as_u16(), 303);
        let cookie = signed.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let page = http
            .get(format!("{}/ui/audit", server.url))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("intact (PostgreSQL chain)"), "{page}");
        assert!(page.contains(&id), "{page}");
    }
    r.stop();
    chain_verifies(&db.url).await;
}

/// Rows of one query on `url`, first column as text.
async fn column(url: &str, sql: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    let rows = client.query(sql, &[]).await.unwrap();
    drop(client);
    let _ = task.await;
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(db) = Db::create("migrate").await else {
        return;
    };
    // Three replicas started at the same moment on an empty database.
    let envs: Vec<Env> = (0..3).map(|_| Env::empty(POLICY)).collect();
    let servers: Vec<Server> = std::thread::scope(|s| {
        let started: Vec<_> = envs
            .iter()
            .map(|env| s.spawn(|| env.start(&["--store", &db.url])))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        column(
            &db.url,
            "SELECT version::TEXT FROM schema_version ORDER BY version"
        )
        .await,
        vec!["1", "2", "3"]
    );
    drop(servers);
    let (state, policies) = (envs[0].state.clone(), envs[0].policies.clone());
    // A schema step this binary does not know: refused at start, nothing touched.
    column(
        &db.url,
        "INSERT INTO schema_version (version) VALUES (99) RETURNING version::TEXT",
    )
    .await;
    let out = std::process::Command::new(server::JITSH)
        .arg("serve")
        .arg("--state")
        .arg(&state)
        .arg("--policies")
        .arg(&policies)
        .args(["--listen", "127.0.0.1:0", "--store", &db.url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer than this jitsh"), "{err}");
}

/// File a request without panicking on a dead replica: the id when acknowledged (201).
async fn try_file(server: &Server, cred: &str, reason: &str) -> Option<String> {
    let resp = server
        .http
        .post(format!("{}/v1/requests", server.url))
        .bearer_auth(cred)
        .json(&json!({"task": "New-MoveRequest", "reason": reason, "duration": "1h"}))
        .send()
        .await
        .ok()?;
    if resp.status().as_u16() != 201 {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body["id"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn kill_9_of_one_replica_in_a_burst_loses_nothing_acknowledged() {
    let Some(db) = Db::create("kill").await else {
        return;
    };
    let (env, approvers) = env_with_approvers(1);
    let alice = env.cred("alice");
    let limits = ["--max-pending", "0", "--max-requests-per-hour", "0"];
    let r = Arc::new(Replicas::start_with(env, &db, 3, &limits));
    let victim = r.servers[1].pid();
    let mut tasks = Vec::new();
    for k in 0..90 {
        let (r, alice) = (Arc::clone(&r), alice.clone());
        tasks.push(tokio::spawn(async move {
            try_file(&r.servers[k % 3], &alice, &format!("burst {k}")).await
        }));
        if k == 30 {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(victim).unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        }
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    // The survivors served their share of the burst.
    assert!(acknowledged.len() >= 60, "{}", acknowledged.len());
    for id in &acknowledged {
        for server in [&r.servers[0], &r.servers[2]] {
            let (status, shown) = server
                .call("GET", &format!("/v1/requests/{id}"), &alice, None)
                .await;
            assert_eq!(
                (status, shown["status"].as_str()),
                (200, Some("pending")),
                "{shown}"
            );
        }
    }
    // And keep deciding.
    let (status, done) = r.servers[2]
        .call(
            "POST",
            &format!("/v1/requests/{}/approve", acknowledged[0]),
            &approvers[0],
            None,
        )
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("approved")),
        "{done}"
    );
    // The one chain survives the kill: every acknowledged request is in it once, and it
    // verifies (the dead replica's cut-off steps left no record, as they left no state).
    let url = r.url.clone().unwrap();
    let mut r = Arc::try_unwrap(r).ok().unwrap();
    r.stop();
    for id in &acknowledged {
        let n = column(
            &url,
            &format!(
                "SELECT seq::TEXT FROM audit_chain WHERE action = 'request.create' AND line LIKE '%\"subject\":\"{id}\"%'"
            ),
        )
        .await;
        assert_eq!(n.len(), 1, "{id}");
    }
    let created = r.audited("request.create").await;
    let rows = column(&url, "SELECT COUNT(*)::TEXT FROM requests").await;
    assert_eq!(created.to_string(), rows[0]);
    chain_verifies(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn each_notification_is_mailed_once_however_many_replicas_run() {
    let Some(db) = Db::create("mail").await else {
        return;
    };
    let smtp = support::SmtpReceiver::start().await;
    let relay = smtp.addr.to_string();
    let mut env = Env::empty(POLICY);
    env.add_user("alice", &["--groups", "exchange-admins"]);
    for name in ["m1", "m2"] {
        env.add_user(
            name,
            &[
                "--groups",
                "mbmanagers",
                "--email",
                &format!("{name}@contoso.test"),
            ],
        );
    }
    let alice = env.cred("alice");
    let r = Arc::new(Replicas::start_with(env, &db, 3, &["--smtp", &relay]));
    let mut ids = Vec::new();
    for k in 0..12 {
        ids.push(
            file(
                &r.servers[k % 3],
                &alice,
                json!({"task": "New-MoveRequest", "reason": format!("move {k}"), "duration": "1h"}),
            )
            .await,
        );
    }
    let expected = ids.len() * 2;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while smtp.mails().len() < expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Every replica's outbox worker has had time to send a second copy, if it would.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mails = smtp.mails();
    for id in &ids {
        for rcpt in ["m1@contoso.test", "m2@contoso.test"] {
            let n = mails
                .iter()
                .filter(|m| m.data.contains(id.as_str()) && m.to.iter().any(|t| t.contains(rcpt)))
                .count();
            assert_eq!(n, 1, "{id} to {rcpt}: {n} mails");
        }
    }
    assert_eq!(mails.len(), expected);
    // Twelve requests through three replicas: twelve records in the one chain, which verifies.
    let url = r.url.clone().unwrap();
    let mut r = Arc::try_unwrap(r).ok().unwrap();
    r.stop();
    assert_eq!(r.audited("request.create").await, ids.len());
    chain_verifies(&url).await;
}

/// Run statements on `url`.
async fn exec(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chain_in_postgres_names_the_record_that_was_edited_removed_or_reordered() {
    let Some(db) = Db::create("chain").await else {
        return;
    };
    let (env, approvers) = env_with_approvers(2);
    let alice = env.cred("alice");
    let mut r = Replicas::start(env, &db, 2);
    let mut ids = Vec::new();
    for k in 0..4 {
        let body =
            json!({"task": "New-MoveRequest", "reason": format!("move {k}"), "duration": "1h"});
        let id = file(&r.servers[k % 2], &alice, body).await;
        let path = format!("/v1/requests/{id}/approve");
        let (status, _) = r.servers[(k + 1) % 2]
            .call("POST", &path, &approvers[k % 2], None)
            .await;
        assert_eq!(status, 200);
        let (status, _) = r.servers[k % 2]
            .call("GET", &format!("/v1/requests/{id}/token"), &alice, None)
            .await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    // While the replicas run, a reviewer verifies the live chain (its tail may wait for the
    // next checkpoint) ...
    let (ok, said) = audit_cli(
        &db.url,
        &["verify", &db.url, "--allow-unsealed", "--no-recordings"],
    )
    .await;
    assert!(ok, "{said}");
    // ... and, once they stop, the whole chain: genesis, each replica's open checkpoint, the
    // twelve steps, sealed.
    r.stop();
    let records = chain_verifies(&db.url).await;
    assert!(records >= 12 + 3, "{records}");
    for (action, n) in [
        ("request.create", 4),
        ("request.approve", 4),
        ("token.issue", 4),
    ] {
        assert_eq!(r.audited(action).await, n, "{action}");
    }
    let approve_seq: i64 = column(
        &db.url,
        &format!(
            "SELECT seq::TEXT FROM audit_chain WHERE action = 'request.approve' AND line LIKE '%{}%'",
            ids[1]
        ),
    )
    .await[0]
        .parse()
        .unwrap();
    // Each tampering is named with the seq of the record it hit; each is undone after.
    let cases: Vec<(String, String, &str)> = vec![
        (
            format!("UPDATE audit_chain SET line = replace(line, '\"outcome\":\"approved\"', '\"outcome\":\"denied\"') WHERE seq = {approve_seq}"),
            format!("seq {approve_seq}: altered"),
            "edited",
        ),
        (
            format!("DELETE FROM audit_chain WHERE seq = {approve_seq}"),
            format!("seq {}: removed", approve_seq + 1),
            "removed",
        ),
        (
            format!(
                "UPDATE audit_chain SET seq = -seq WHERE seq IN ({a}, {b});
                 UPDATE audit_chain SET seq = {b} WHERE seq = -{a};
                 UPDATE audit_chain SET seq = {a} WHERE seq = -{b}",
                a = approve_seq,
                b = approve_seq + 1
            ),
            format!("seq {}", approve_seq + 1),
            "reordered",
        ),
    ];
    exec(
        &db.url,
        "CREATE TABLE chain_copy AS SELECT * FROM audit_chain",
    )
    .await;
    for (attack, named, what) in cases {
        exec(&db.url, &attack).await;
        let (ok, said) = audit_cli(&db.url, &["verify", &db.url, "--no-recordings"]).await;
        assert!(!ok, "{what}: {said}");
        assert!(said.contains(&named), "{what}: {said}");
        assert!(said.contains("postgres:audit_chain"), "{what}: {said}");
        // The export of a tampered chain fails verification the same way.
        let out = std::process::Command::new(server::JITSH)
            .args(["audit", "export", "--from", &db.url])
            .output()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit-000001.jsonl");
        std::fs::write(&file, &out.stdout).unwrap();
        let (ok, said) = audit_cli(
            &db.url,
            &["verify", file.to_str().unwrap(), "--no-recordings"],
        )
        .await;
        assert!(!ok && said.contains(&named), "{what} (exported): {said}");
        exec(
            &db.url,
            "DELETE FROM audit_chain; INSERT INTO audit_chain SELECT * FROM chain_copy",
        )
        .await;
    }
    chain_verifies(&db.url).await;
    // Rewritten with the chain recomputed from the edited record on (hashes and links all
    // match): only the signed checkpoint after it tells, and it is named as forged.
    let lines = column(&db.url, "SELECT line FROM audit_chain ORDER BY seq").await;
    let mut prev = jitsh::audit::chain::ChainHash::ZERO;
    let mut rewrite = String::new();
    for line in &lines {
        let (record, hash) = jitsh::audit::chain::decode(line.as_bytes()).unwrap();
        if i64::try_from(record.seq).unwrap() < approve_seq {
            prev = hash;
            continue;
        }
        let mut event = record.event();
        if i64::try_from(record.seq).unwrap() == approve_seq {
            event.actor = "mallory".into();
        }
        let encoded = jitsh::audit::chain::encode(record.seq, &prev, &event).unwrap();
        prev = encoded.hash;
        let text = String::from_utf8(encoded.line).unwrap();
        rewrite.push_str(&format!(
            "UPDATE audit_chain SET line = '{}' WHERE seq = {};",
            text.trim_end().replace('\'', "''"),
            record.seq
        ));
    }
    exec(&db.url, &rewrite).await;
    let (ok, said) = audit_cli(&db.url, &["verify", &db.url, "--no-recordings"]).await;
    assert!(!ok, "{said}");
    assert!(said.contains("forged"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_with_their_own_keys_sign_with_the_deployment_key() {
    let Some(db) = Db::create("keys").await else {
        return;
    };
    let (env, approvers) = env_with_approvers(1);
    let alice = env.cred("alice");
    let first = env.start(&["--store", &db.url]);
    // A second replica with a key of its own (made at its start): it adopts the stored one.
    let other = Env::empty(POLICY);
    let second = other.start(&["--store", &db.url]);
    let body = json!({"task": "New-MoveRequest", "reason": "keys", "duration": "1h"});
    let id = file(&first, &alice, body).await;
    let (status, _) = second
        .call(
            "POST",
            &format!("/v1/requests/{id}/approve"),
            &approvers[0],
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, issued) = first
        .call("GET", &format!("/v1/requests/{id}/token"), &alice, None)
        .await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["token"].as_str().unwrap();
    // Verified with the keys the other replica publishes, and the other way round.
    for (issuer, publisher) in [(&first, &second), (&second, &first)] {
        let (status, issued) = issuer
            .call("GET", &format!("/v1/requests/{id}/token"), &alice, None)
            .await;
        assert_eq!(status, 200, "{issued}");
        let (_, keys) = publisher.call("GET", "/v1/keys", &alice, None).await;
        let trust: jitsh::token::TrustStore = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                jitsh::token::PublicKey::from_file_text(k["public_key"].as_str().unwrap()).unwrap()
            })
            .collect();
        jitsh::token::verify(issued["token"].as_str().unwrap(), &trust).unwrap();
    }
    // A token signed by a key outside the deployment is not: the set-aside local key.
    let set_aside: Vec<_> = std::fs::read_dir(&other.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("signing.key."))
        .collect();
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    let stray = jitsh::token::SigningKey::from_file_text(
        &std::fs::read_to_string(other.state.join(&set_aside[0])).unwrap(),
    )
    .unwrap();
    let (_, keys) = second.call("GET", "/v1/keys", &alice, None).await;
    let trust: jitsh::token::TrustStore = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            jitsh::token::PublicKey::from_file_text(k["public_key"].as_str().unwrap()).unwrap()
        })
        .collect();
    let claims = jitsh::token::peek_unverified(token).unwrap();
    let forged = jitsh::token::issue(claims.claims.as_ref().unwrap(), &stray).unwrap();
    assert!(jitsh::token::verify(&forged, &trust).is_err());
    // Both state folders now hold the deployment's public key; the store holds one key, and
    // its private half never appears in a replica's log output or in the audit chain.
    assert_eq!(
        std::fs::read_to_string(env.state.join("signing.pub")).unwrap(),
        std::fs::read_to_string(other.state.join("signing.pub")).unwrap()
    );
    let stored = column(&db.url, "SELECT key_text FROM signing_keys").await;
    assert_eq!(stored.len(), 1);
    let seed_line = stored[0].lines().nth(2).unwrap().to_owned();
    let chain = column(&db.url, "SELECT line FROM audit_chain").await;
    assert!(chain.iter().all(|l| !l.contains(&seed_line)));
    drop((first, second));
}

/// `jitsh serve` on `env`'s folders with the key secret file `secret` (or none): the listening
/// URL, or the error output when it stops.
fn serve_with_secret(
    env: &Env,
    url: &str,
    secret: Option<&std::path::Path>,
) -> Result<(std::process::Child, String), String> {
    use std::io::BufRead as _;
    let mut cmd = std::process::Command::new(server::JITSH);
    cmd.arg("serve")
        .arg("--state")
        .arg(&env.state)
        .arg("--policies")
        .arg(&env.policies)
        .args(["--listen", "127.0.0.1:0", "--store", url])
        .env_remove("JITSH_KEY_SECRET_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(path) = secret {
        cmd.env("JITSH_KEY_SECRET_FILE", path);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut said = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(listening) = line.strip_prefix("listening on ") {
            return Ok((child, listening.to_owned()));
        }
        said.push_str(&line);
        said.push('\n');
    }
    let _ = child.wait();
    Err(said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stored_signing_key_opens_only_with_the_replicas_secret() {
    let Some(db) = Db::create("secret").await else {
        return;
    };
    let (env, _) = env_with_approvers(1);
    let secret = env.dir.path().join("key-secret");
    std::fs::write(&secret, "correct horse battery staple 42\n").unwrap();
    let wrong = env.dir.path().join("wrong-secret");
    std::fs::write(&wrong, "incorrect horse battery staple 7\n").unwrap();
    let (mut child, url) = serve_with_secret(&env, &db.url, Some(&secret)).unwrap();
    // Stored encrypted: neither the seed nor the key file appear in the database.
    let local = std::fs::read_to_string(env.state.join("signing.key")).unwrap();
    let seed_line = local.lines().nth(2).unwrap().to_owned();
    let stored = column(&db.url, "SELECT key_text FROM signing_keys").await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("enc:v1:"), "{}", stored[0]);
    assert!(!stored[0].contains(&seed_line));
    let alice = env.cred("alice");
    let http = reqwest::Client::new();
    let me: Value = http
        .get(format!("{url}/v1/me"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "alice", "{me}");
    // A replica without the secret, or with another one, does not start; nothing is changed.
    let other = Env::empty(POLICY);
    for (given, says) in [
        (None, "JITSH_KEY_SECRET_FILE"),
        (Some(wrong.as_path()), "could not be decrypted"),
    ] {
        let err = serve_with_secret(&other, &db.url, given)
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains(says), "{err}");
    }
    // A too short secret is refused with what to do.
    let short = env.dir.path().join("short-secret");
    std::fs::write(&short, "tiny").unwrap();
    let err = serve_with_secret(&other, &db.url, Some(&short))
        .map(|_| ())
        .unwrap_err();
    assert!(err.contains("at least 16"), "{err}");
    assert_eq!(
        column(&db.url, "SELECT key_text FROM signing_keys").await,
        stored
    );
    // With the secret it joins, and signs with the deployment's key.
    let (mut second, second_url) = serve_with_secret(&other, &db.url, Some(&secret)).unwrap();
    let keys: Value = http
        .get(format!("{second_url}/v1/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = local.lines().nth(1).unwrap().trim_start_matches("kid: ");
    assert_eq!(keys["keys"][0]["kid"], kid, "{keys}");
    for c in [&mut child, &mut second] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_edited_in_postgres_is_refused_by_every_replica() {
    let Some(db) = Db::create("seals").await else {
        return;
    };
    let (env, approvers) = env_with_approvers(2);
    let alice = env.cred("alice");
    let mut r = Replicas::start(env, &db, 2);
    let body = json!({"task": "New-MoveRequest", "reason": "seal", "duration": "1h"});
    let mut ids = Vec::new();
    for k in 0..6 {
        let id = file(&r.servers[k % 2], &alice, body.clone()).await;
        let (status, _) = r.servers[(k + 1) % 2]
            .call(
                "POST",
                &format!("/v1/requests/{id}/approve"),
                &approvers[0],
                None,
            )
            .await;
        assert_eq!(status, 200);
        ids.push(id);
    }
    let pending = file(&r.servers[0], &alice, body.clone()).await;
    // Edits a database user could make: a longer grant in the request body, a later grant
    // end, more uses, a forged vote; and on the seals themselves: one copied from another
    // request, one removed.
    exec(&db.url, &format!(
        "UPDATE requests SET body = replace(body, '\"duration_secs\":3600', '\"duration_secs\":86400') WHERE id = '{}';
         UPDATE grants SET exp = exp + 86400 WHERE request_id = '{}';
         UPDATE grants SET uses = 1000 WHERE request_id = '{}';
         INSERT INTO approvals (request_id, approver, comment, at) VALUES ('{pending}', 'a2', NULL, 1);
         UPDATE request_seals SET mac = (SELECT mac FROM request_seals WHERE request_id = '{}') WHERE request_id = '{}';
         DELETE FROM request_seals WHERE request_id = '{}'",
        ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
    ))
    .await;
    for id in [&ids[0], &ids[1], &ids[2], &ids[4], &ids[5]] {
        for server in &r.servers {
            let (status, err) = server
                .call("GET", &format!("/v1/requests/{id}/token"), &alice, None)
                .await;
            assert_eq!(
                (status, err["error"].as_str()),
                (409, Some("tampered")),
                "{id}: {err}"
            );
        }
    }
    let (status, err) = r.servers[1]
        .call(
            "POST",
            &format!("/v1/requests/{pending}/approve"),
            &approvers[1],
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("tampered")),
        "{err}"
    );
    // The untouched one still works; the refusals are audited.
    let (status, _) = r.servers[1]
        .call(
            "GET",
            &format!("/v1/requests/{}/token", ids[3]),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(r.audited("store.tampered").await >= 3);
    // The review names the edited requests.
    r.stop();
    let (ok, said) = audit_cli(&db.url, &["verify", &db.url, "--no-recordings"]).await;
    assert!(!ok, "{said}");
    assert!(
        said.contains("store") && said.contains("6 such request"),
        "{said}"
    );
}

/// The elevated access control decides who is granted at once (system accounts, a disabled
/// control). A database user who edits its row, drops its seal or writes one of their own gets
/// nothing through any replica: requests are refused as tampered, not granted, and every
/// session's events open a review until a global admin enables the control again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_elevated_access_control_edited_in_postgres_grants_nothing() {
    let Some(db) = Db::create("control_seal").await else {
        return;
    };
    let (mut env, _) = env_with_approvers(1);
    let root = env.add_user("root", &["--roles", "global-admin"]);
    let alice = env.cred("alice");
    let r = Replicas::start(env, &db, 2);
    let (status, v) = r.servers[0]
        .call(
            "POST",
            "/v1/control/enable",
            &root,
            Some(json!({"admin_group": "mbmanagers", "system_accounts": []})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let body = json!({"task": "New-MoveRequest", "reason": "control", "duration": "1h"});
    // Sealed as the service wrote it: alice's request waits for approval on both replicas.
    for server in &r.servers {
        let id = file(server, &alice, body.clone()).await;
        let (_, shown) = server
            .call("GET", &format!("/v1/requests/{id}"), &alice, None)
            .await;
        assert_eq!(shown["status"], "pending", "{shown}");
    }
    let edits = [
        // alice named a system account in the body, the seal left as it was
        "UPDATE control SET body = replace(body, '\"system_accounts\":[]', '\"system_accounts\":[\"alice\"]')",
        // the control disabled, and the seal removed
        "UPDATE control SET body = replace(body, '\"disabled\":null', '\"disabled\":{\"by\":\"root\",\"at\":1}'), mac = NULL",
        // a seal of the attacker's own making
        "UPDATE control SET body = replace(body, '\"system_accounts\":[]', '\"system_accounts\":[\"alice\"]'), mac = repeat('0', 64)",
    ];
    let sealed = column(&db.url, "SELECT body || '|' || mac FROM control").await;
    let mut sessions_reviewed: Vec<String> = Vec::new();
    for edit in edits {
        let (text, mac) = sealed[0].split_once('|').unwrap();
        exec(
            &db.url,
            &format!(
                "UPDATE control SET body = '{}', mac = '{mac}'; {edit}",
                text.replace('\'', "''")
            ),
        )
        .await;
        let changed = column(
            &db.url,
            "SELECT body || '|' || coalesce(mac, '') FROM control",
        )
        .await;
        assert_ne!(changed, sealed, "{edit}: the edit changed nothing");
        for server in &r.servers {
            let (status, err) = server
                .call("POST", "/v1/requests", &alice, Some(body.clone()))
                .await;
            assert_eq!(
                (status, err["error"].as_str()),
                (409, Some("tampered")),
                "{edit}: {err}"
            );
        }
        // A session's events are still taken; since who is a system account cannot be told,
        // each batch opens a review rather than none.
        let n = sessions_reviewed.len() + 1;
        let batch = json!({"batch": format!("t{n}"), "events": [{"time": "2026-01-01T00:00:00Z",
            "actor": "alice", "action": "gate.decision", "subject": format!("s-{n}"),
            "outcome": "allow", "details": {"line": "Get-Mailbox"}}]});
        let (status, v) = r.servers[n % 2]
            .call("POST", "/v1/audit/events", &alice, Some(batch))
            .await;
        assert_eq!(status, 200, "{edit}: {v}");
        sessions_reviewed.push(format!("s-{n}"));
    }
    // A global admin enables the control again, which replaces the edited row; the reviews
    // opened meanwhile are there to acknowledge.
    let (status, v) = r.servers[1]
        .call(
            "POST",
            "/v1/control/enable",
            &root,
            Some(json!({"admin_group": "mbmanagers", "system_accounts": []})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, reviews) = r.servers[0].call("GET", "/v1/reviews", &root, None).await;
    assert_eq!(status, 200, "{reviews}");
    let mut subjects: Vec<String> = reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["session"].as_str().unwrap_or_default().to_string())
        .collect();
    subjects.sort();
    assert_eq!(subjects, sessions_reviewed, "{reviews}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gate_session_belongs_to_its_first_sender_across_replicas() {
    let Some(db) = Db::create("sessions").await else {
        return;
    };
    let (mut env, _) = env_with_approvers(1);
    let bob = env.add_user("bob", &["--groups", "exchange-admins"]);
    let alice = env.cred("alice");
    let r = Replicas::start(env, &db, 2);
    let batch = |who: &str, id: &str, session: &str| {
        json!({"batch": id, "events": [
            {"time": "2026-11-27T10:00:00Z", "actor": who, "action": "session.start",
             "subject": session, "outcome": "ok", "details": {}}]})
    };
    let (status, out) = r.servers[0]
        .call(
            "POST",
            "/v1/audit/events",
            &alice,
            Some(batch("alice", "b-1", "sess-one")),
        )
        .await;
    assert!(status < 300, "{status} {out}");
    // Bob, through the other replica, under alice's session: refused; under his own: taken.
    for (server, session, expect) in [
        (&r.servers[1], "sess-one", Some("not_your_session")),
        (&r.servers[0], "sess-one", Some("not_your_session")),
        (&r.servers[1], "sess-two", None),
    ] {
        let (status, out) = server
            .call(
                "POST",
                "/v1/audit/events",
                &bob,
                Some(batch(
                    "bob",
                    &format!("b-{session}-{}", server.addr),
                    session,
                )),
            )
            .await;
        match expect {
            Some(code) => assert_eq!((status, out["error"].as_str()), (403, Some(code)), "{out}"),
            None => assert!(status < 300, "{status} {out}"),
        }
    }
    let owners = column(
        &db.url,
        "SELECT session || '=' || owner FROM gate_sessions ORDER BY session",
    )
    .await;
    assert_eq!(owners, ["sess-one=alice", "sess-two=bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_requests_expire_once_across_replicas() {
    let Some(db) = Db::create("expiry").await else {
        return;
    };
    let (env, _) = env_with_approvers(1);
    let alice = env.cred("alice");
    let limits = ["--pending-ttl", "2s", "--max-pending", "0"];
    let mut r = Replicas::start_with(env, &db, 3, &limits);
    // The sweep is one replica's at a time, under an advisory lock: while something else
    // holds it, no replica expires anything.
    let (holder, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    holder
        .execute("SELECT pg_advisory_lock(x'006a69747377'::BIGINT)", &[])
        .await
        .unwrap();
    let mut ids = Vec::new();
    for k in 0..9 {
        let body =
            json!({"task": "New-MoveRequest", "reason": format!("wait {k}"), "duration": "1h"});
        ids.push(file(&r.servers[k % 3], &alice, body).await);
    }
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(r.audited("request.expire").await, 0);
    drop(holder);
    let _ = conn.await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while r.audited("request.expire").await < ids.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Three sweepers, each several rounds since: still one expiry per request.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(r.audited("request.expire").await, ids.len());
    for id in &ids {
        let (_, shown) = r.servers[2]
            .call("GET", &format!("/v1/requests/{id}"), &alice, None)
            .await;
        assert_eq!(shown["status"], "expired", "{shown}");
    }
    r.stop();
    chain_verifies(&db.url).await;
}

mod store {
    //! The PostgreSQL store driven directly: listings, visibility, batches, expiry and
    //! revocations give what the SQLite store gives.

    use super::Db;
    use jitsh::audit::AuditEvent;
    use jitsh::service::postgres::PgStore;
    use jitsh::service::store::{
        Approval, Control, ControlChange, GateBatch, Grant, ListQuery, NewRequest, Quorum, Status,
        StoreError,
    };
    use jitsh::service::Store;

    fn new_request(id: &str, requester: &str, approvers: &[&str], at: i64) -> NewRequest {
        NewRequest {
            id: id.into(),
            requester: requester.into(),
            target: "New-MoveRequest".into(),
            target_kind: "task".into(),
            tasks: vec!["New-MoveRequest".into()],
            rule: "mailbox-moves".into(),
            mode: "manual".into(),
            approvers: approvers.iter().map(|a| (*a).to_owned()).collect(),
            min_approvals: 1,
            reason: "move".into(),
            ticket: None,
            command: None,
            uses: Some(1),
            params: Default::default(),
            grant_params: None,
            duration_secs: 3600,
            created_at: at,
            pending_expires_at: at + 100,
        }
    }

    fn event(subject: &str) -> AuditEvent {
        AuditEvent {
            time: "2026-01-01T00:00:00Z".into(),
            actor: "gate".into(),
            action: "gate.decision".into(),
            subject: subject.into(),
            outcome: "ok".into(),
            details: Default::default(),
        }
    }

    fn ids(records: &[jitsh::service::store::RequestRecord]) -> Vec<&str> {
        records.iter().map(|r| r.new.id.as_str()).collect()
    }

    fn exercise(store: &PgStore) {
        let mut none = |_: &_| Ok(Vec::new());
        store
            .create_request(
                &new_request("r-1", "alice", &["MBManagers"], 10),
                None,
                &mut none,
            )
            .unwrap();
        store
            .create_request(&new_request("r-2", "bob", &["other"], 20), None, &mut none)
            .unwrap();
        store
            .create_request(
                &new_request("r-3", "Alice", &["other"], 30),
                None,
                &mut none,
            )
            .unwrap();

        // Visibility: one's own (any case) or an approver group of one's; before the limit.
        let page = |viewer: Option<(&str, &[&str])>, after: Option<(i64, &str)>, limit| {
            store
                .list_page(&ListQuery {
                    viewer: viewer
                        .map(|(n, g)| (n.to_owned(), g.iter().map(|s| (*s).to_owned()).collect())),
                    after: after.map(|(t, i)| (t, i.to_owned())),
                    limit,
                    ..ListQuery::default()
                })
                .unwrap()
        };
        assert_eq!(
            ids(&page(Some(("carol", &["mbmanagers"])), None, 10)),
            ["r-1"]
        );
        assert_eq!(ids(&page(Some(("ALICE", &[])), None, 10)), ["r-3", "r-1"]);
        assert_eq!(
            ids(&page(Some(("carol", &[])), None, 10)),
            Vec::<&str>::new()
        );
        assert_eq!(ids(&page(Some(("dave", &["other"])), None, 1)), ["r-3"]);
        assert_eq!(ids(&page(None, Some((30, "r-3")), 10)), ["r-2", "r-1"]);
        assert_eq!(ids(&page(None, None, 2)), ["r-3", "r-2"]);
        let pending = store
            .list_page(&ListQuery {
                status: Some(Status::Pending),
                requester: Some("bob".into()),
                limit: 10,
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&pending), ["r-2"]);
        assert_eq!(
            ids(&store.list_requests(None, Some("alice"), 10).unwrap()),
            ["r-1"]
        );
        assert_eq!(store.count_requests("alice", 0, true).unwrap(), 1);

        // Approve r-1 with a counted grant; revoke it; it is listed as revoked.
        let grant = Grant {
            jti: "j-1".into(),
            request_id: "r-1".into(),
            sub: "alice".into(),
            nbf: 15,
            exp: 1000,
            uses: Some(1),
            used: 0,
            revoked_at: None,
            revoked_by: None,
        };
        let vote = Approval {
            approver: "bob".into(),
            comment: None,
            at: 15,
        };
        let quorum = Quorum {
            needed: 1,
            counts: &|_| true,
        };
        store
            .approve("r-1", &vote, &grant, &quorum, &mut |_| Ok(Vec::new()))
            .unwrap();
        assert_eq!(store.live_grants(16).unwrap().len(), 1);
        store.revoke("r-1", "root", 17, &mut none).unwrap();
        let revoked = store.revocations(0).unwrap();
        assert_eq!(
            (
                revoked.len(),
                revoked[0].jti.as_str(),
                revoked[0].revoked_at
            ),
            (1, "j-1", 17)
        );
        assert!(matches!(
            store.use_grant("j-1", 18, &mut |_| Ok(Vec::new())),
            Err(StoreError::NotLive {
                state: "revoked",
                ..
            })
        ));

        // Expiry: once, and only what is still pending.
        let expired = store.expire_pending(125, &mut none).unwrap();
        assert_eq!(ids(&expired), ["r-2"]);
        assert_eq!(store.request("r-2").unwrap().status, Status::Expired);
        assert!(store.expire_pending(125, &mut none).unwrap().is_empty());

        // A gate's batch: once per (user, id); the same id with other events is refused.
        let batch = GateBatch {
            user: "gate1".into(),
            id: "b-1".into(),
            sha256: "aa".into(),
            events: vec![event("x"), event("y")],
            review: false,
        };
        assert!(store.queue_gate_batch(&batch, 50).unwrap());
        assert!(!store.queue_gate_batch(&batch, 51).unwrap());
        let other = GateBatch {
            sha256: "bb".into(),
            ..batch.clone()
        };
        assert!(matches!(
            store.queue_gate_batch(&other, 52),
            Err(StoreError::BatchConflict(_))
        ));
        let mut seen = Vec::new();
        let n = store
            .drain_audit(&mut |events| {
                seen.extend(events.into_iter().map(|e| e.subject));
                Ok(())
            })
            .unwrap();
        assert_eq!((n, seen), (2, vec!["x".to_owned(), "y".to_owned()]));
        assert!(matches!(store.request("r-9"), Err(StoreError::NotFound(_))));
    }

    fn line_event(actor: &str, subject: &str, line: &str) -> AuditEvent {
        let mut e = event(subject);
        e.actor = actor.into();
        e.outcome = "allow".into();
        e.details.insert("line".into(), line.into());
        e
    }

    fn drained(store: &dyn Store) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        store
            .drain_audit(&mut |events| {
                seen.extend(events.into_iter().map(|e| (e.action, e.subject)));
                Ok(())
            })
            .unwrap();
        seen
    }

    /// The elevated access control and system accounts' reviews, on either store.
    pub(super) fn control_and_reviews(store: &dyn Store) {
        let mut none = |_: &Control| Ok(Vec::new());
        let mut no_notes = |_: &jitsh::service::store::Review| Ok(Vec::new());
        assert_eq!(store.control().unwrap(), Control::default());
        let control = Control {
            admin_group: Some("secops".into()),
            system_accounts: vec!["svc".into(), "svc2".into()],
            disabled: Some(ControlChange {
                by: "root".into(),
                at: 5,
            }),
            changed: None,
        };
        store.set_control(&control, &mut none).unwrap();
        assert_eq!(store.control().unwrap(), control);
        assert_eq!(control.approvers(&[]), vec!["secops".to_owned()]);

        let batch = |user: &str, id: &str, lines: &[&str]| GateBatch {
            user: user.into(),
            id: id.into(),
            sha256: id.into(),
            events: lines.iter().map(|l| line_event(user, "s1", l)).collect(),
            review: true,
        };
        assert!(store
            .queue_gate_batch(&batch("svc", "b1", &["Get-Mailbox"]), 10)
            .unwrap());
        // The review opens in the batch's step, its record ahead of the session's.
        assert_eq!(
            drained(store),
            vec![
                ("review.open".to_owned(), "s1".to_owned()),
                ("gate.decision".to_owned(), "s1".to_owned())
            ]
        );
        let open = store.reviews(true, 10).unwrap();
        assert_eq!(open.len(), 1);
        let id = open[0].id;
        assert_eq!((open[0].account.as_str(), open[0].commands), ("svc", 1));
        assert_eq!(store.review(id).unwrap().ran, ["allow: Get-Mailbox"]);

        let acked = store
            .ack_review(id, "carol", Some("fine"), 20, &mut no_notes)
            .unwrap();
        assert_eq!(acked.acked_by.as_deref(), Some("carol"));
        assert!(matches!(
            store.ack_review(id, "carol", None, 21, &mut no_notes),
            Err(StoreError::AlreadyAcked(_))
        ));
        assert!(store.reviews(true, 10).unwrap().is_empty());
        assert_eq!(store.reviews(false, 10).unwrap().len(), 1);

        // Another system account naming the session adds nothing to this review (the SQLite
        // store refuses the batch outright: the session is another user's).
        match store.queue_gate_batch(&batch("svc2", "b2", &["Remove-Mailbox x"]), 30) {
            Ok(_) | Err(StoreError::SessionNotYours(_)) => {}
            Err(e) => panic!("{e}"),
        }
        assert_eq!(store.review(id).unwrap().commands, 1);
        assert!(store.reviews(true, 10).unwrap().is_empty());
        drained(store);
        // A line after the acknowledgement opens the review again.
        store
            .queue_gate_batch(&batch("svc", "b3", &["Set-Mailbox x"]), 40)
            .unwrap();
        let again = store.review(id).unwrap();
        assert_eq!(again.acked_by, None);
        assert_eq!(again.ran, ["allow: Get-Mailbox", "allow: Set-Mailbox x"]);
        assert_eq!(
            drained(store)[0],
            ("review.open".to_owned(), "s1".to_owned())
        );
        // A failing hook leaves the review open.
        let mut failing = |_: &jitsh::service::store::Review| {
            Err(jitsh::audit::AuditSinkError {
                path: String::new(),
                message: "no audit".into(),
            })
        };
        assert!(store
            .ack_review(id, "carol", None, 50, &mut failing)
            .is_err());
        assert_eq!(store.reviews(true, 10).unwrap().len(), 1);
        assert!(matches!(
            store.review(999_999),
            Err(StoreError::ReviewNotFound(_))
        ));
    }

    #[test]
    fn control_and_reviews_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            jitsh::service::sqlite::SqliteStore::open(&dir.path().join("jitsh.db")).unwrap();
        control_and_reviews(&store);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_and_reviews_on_postgres() {
        let Some(db) = Db::create("reviews").await else {
            return;
        };
        let url = db.url.clone();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let store = PgStore::open(&url, rt).unwrap();
            control_and_reviews(&store);
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn listings_visibility_batches_expiry_and_revocations() {
        let Some(db) = Db::create("store").await else {
            return;
        };
        let url = db.url.clone();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let store = PgStore::open(&url, rt).unwrap();
            exercise(&store);
        })
        .await
        .unwrap();
    }
}

/// 8 clients each run request → approve → token cycles, spread over the replicas.
async fn cycles_per_second(r: &Arc<Replicas>, alice: &str, approver: &str) -> f64 {
    async fn cycle(server: &Server, alice: &str, approver: &str) {
        let body = json!({ "task": "New-MoveRequest", "reason": "bench", "duration": "1h" });
        let (status, made) = server.call("POST", "/v1/requests", alice, Some(body)).await;
        assert_eq!(status, 201, "{made}");
        let id = made["id"].as_str().unwrap();
        let approve = format!("/v1/requests/{id}/approve");
        assert_eq!(server.call("POST", &approve, approver, None).await.0, 200);
        let token = format!("/v1/requests/{id}/token");
        assert_eq!(server.call("GET", &token, alice, None).await.0, 200);
    }
    let (clients, each) = (8usize, 40u32);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (r, alice, approver) = (Arc::clone(r), alice.to_owned(), approver.to_owned());
        tasks.push(tokio::spawn(async move {
            let server = &r.servers[c % r.servers.len()];
            for _ in 0..each {
                cycle(server, &alice, &approver).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = u32::try_from(clients).unwrap() * each;
    f64::from(total) / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
#[ignore = "measurement, not a check"]
async fn measure_cycles_per_second_sqlite_and_replicas() {
    if Db::create("probe").await.is_none() {
        return;
    }
    let limits = ["--max-requests-per-hour", "0", "--max-pending", "0"];
    let (env, approvers) = env_with_approvers(1);
    let alice = env.cred("alice");
    let sqlite = Arc::new(Replicas {
        servers: vec![env.start(&limits)],
        url: None,
        _env: env,
    });
    let rate = cycles_per_second(&sqlite, &alice, &approvers[0]).await;
    println!("SQLite, 1 service, 8 clients: {rate:.1} cycles/s");
    drop(sqlite);
    for n in 1..=3 {
        // A deployment of its own each time (its directory is imported once, at first start).
        let db = Db::create("measure").await.unwrap();
        let (env, approvers) = env_with_approvers(1);
        let alice = env.cred("alice");
        let r = Arc::new(Replicas::start_with(env, &db, n, &limits));
        let rate = cycles_per_second(&r, &alice, &approvers[0]).await;
        println!("PostgreSQL, {n} replica(s), 8 clients: {rate:.1} cycles/s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_moves_a_sqlite_store_into_postgres_once() {
    let Some(db) = Db::create("import").await else {
        return;
    };
    let (mut env, approvers) = env_with_approvers(2);
    let root = env.add_user("root", &["--roles", "global-admin"]);
    let svc = env.add_user("svc", &[]);
    let alice = env.cred("alice");
    let body = json!({"task": "New-MoveRequest", "reason": "move", "duration": "1h"});
    let svc_batch = |batch: &str, session: &str| {
        json!({"batch": batch, "events": [{"time": "2026-01-01T00:00:00Z", "actor": "svc",
            "action": "gate.decision", "subject": session, "outcome": "allow",
            "details": {"line": "Get-Mailbox"}}]})
    };
    let (decided, waiting) = {
        let sqlite = env.start(&[]);
        // The elevated access control and a system account's review move too.
        let (status, v) = sqlite
            .call(
                "POST",
                "/v1/control/enable",
                &root,
                Some(json!({"admin_group": "mbmanagers", "system_accounts": ["svc"]})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = sqlite
            .call(
                "POST",
                "/v1/audit/events",
                &svc,
                Some(svc_batch("b1", "s-1")),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let decided = file(&sqlite, &alice, body.clone()).await;
        let waiting = file(&sqlite, &alice, body.clone()).await;
        let (status, _) = sqlite
            .call(
                "POST",
                &format!("/v1/requests/{decided}/approve"),
                &approvers[0],
                None,
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = sqlite
            .call(
                "POST",
                "/v1/locks",
                &root,
                Some(json!({"scope": "rule:mailbox-removal", "reason": "audit"})),
            )
            .await;
        assert_eq!(status, 201);
        // Stopped as an operator stops it: its log ends sealed.
        let mut sqlite = sqlite;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(sqlite.pid()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        while sqlite.alive() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        (decided, waiting)
    };
    let file_log: Vec<String> = jitsh::audit::log::log_files(&env.state.join("audit"))
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let migrate = || {
        std::process::Command::new(server::JITSH)
            .args(["migrate", "--from"])
            .arg(format!("sqlite:{}", env.state.join("jitsh.db").display()))
            .args(["--to", &db.url])
            .env_remove("JITSH_STORE")
            .output()
            .unwrap()
    };
    let out = migrate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Into a store that has data: refused, nothing written.
    let out = migrate();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty"), "{err}");

    // The directory and the signing key came along: the replicas below start with an empty
    // directory file and keys of their own, and still know everyone.
    let users = column(&db.url, "SELECT name FROM directory_users ORDER BY name").await;
    assert_eq!(users, ["a1", "a2", "alice", "root", "svc"]);
    let kid = column(&db.url, "SELECT kid FROM signing_keys WHERE current").await;
    let local = std::fs::read_to_string(env.state.join("signing.pub")).unwrap();
    assert!(local.contains(&kid[0]), "{local}");
    let fresh = Env::empty(POLICY);
    let r = Replicas::start(fresh, &db, 2);
    assert_eq!(r.audited("store.migrate").await, 1);
    assert_eq!(r.audited("directory.import").await, 1);
    let (_, shown) = r.servers[1]
        .call("GET", &format!("/v1/requests/{decided}"), &alice, None)
        .await;
    assert_eq!(shown["status"], "approved", "{shown}");
    assert_eq!(shown["approvals"].as_array().unwrap().len(), 1, "{shown}");
    let (status, tok) = r.servers[1]
        .call(
            "GET",
            &format!("/v1/requests/{decided}/token"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{tok}");
    let (_, locks) = r.servers[0].call("GET", "/v1/locks", &root, None).await;
    assert!(
        locks.to_string().contains("rule:mailbox-removal"),
        "{locks}"
    );
    let (status, done) = r.servers[1]
        .call(
            "POST",
            &format!("/v1/requests/{waiting}/approve"),
            &approvers[1],
            None,
        )
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("approved")),
        "{done}"
    );
    let (_, control) = r.servers[0].call("GET", "/v1/control", &root, None).await;
    assert_eq!(control["admin_group"], "mbmanagers", "{control}");
    assert_eq!(control["system_accounts"], json!(["svc"]), "{control}");
    // A new session's review takes the next id after the copied ones.
    let (status, v) = r.servers[1]
        .call(
            "POST",
            "/v1/audit/events",
            &svc,
            Some(svc_batch("b2", "s-2")),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, reviews) = r.servers[0].call("GET", "/v1/reviews", &root, None).await;
    let ids: Vec<i64> = reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 1], "{reviews}");
    // One record: the SQLite-era log, byte for byte, then the deployment's records, all in
    // one chain that verifies.
    let mut r = r;
    r.stop();
    let chain = column(&db.url, "SELECT line FROM audit_chain ORDER BY seq").await;
    assert_eq!(chain[..file_log.len()], file_log[..]);
    assert!(
        chain[file_log.len()].contains("\"reason\":\"migrate\""),
        "{}",
        chain[file_log.len()]
    );
    assert_eq!(r.audited("request.create").await, 2);
    assert_eq!(r.audited("request.approve").await, 2);
    chain_verifies(&db.url).await;
}
