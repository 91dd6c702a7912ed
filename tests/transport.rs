//! Transport and trust on first contact, as attacks: a service reached over TLS with a test CA
//! made here, a client that trusts another CA, plain HTTP offered off loopback, and a service
//! whose token signing key is not the one the user confirmed at `jitsh login`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");

const POLICY: &str = r#"
[[rule]]
id = "stats-auto"
effect = "approval"
tasks = ["Get-MailboxStatistics"]
approval = "auto"
max_duration = "30m"

[[rule]]
id = "read-only"
effect = "allow"
tasks = ["Get-Mailbox"]
"#;

const STATS: &str = "Get-MailboxStatistics -Identity bob";

/// A certificate authority made for one test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for loopback: (certificate PEM, key PEM).
    fn server_cert(&self) -> (String, String) {
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A folder with policies, CA files, a config home, and one service state per name.
struct World {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/p.toml"), POLICY).unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        let ca = Ca::new("jitsh test CA");
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), Ca::new("another CA").pem).unwrap();
        World { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A user in the state folder `state`; returns the credential.
    fn add_user(&self, state: &str, name: &str) -> String {
        let out = Command::new(JITSH)
            .args(["user", "add", name, "--state", &self.s(state)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().lines().last().unwrap().to_owned()
    }

    /// `jitsh serve` over TLS with a certificate of the test CA.
    fn serve_tls(&self, state: &str) -> Service {
        let (cert, key) = self.ca.server_cert();
        let (cert_file, key_file) = (
            self.path(&format!("{state}.crt")),
            self.path(&format!("{state}.key")),
        );
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        self.serve(
            state,
            &[
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert_file.to_str().unwrap(),
                "--tls-key",
                key_file.to_str().unwrap(),
            ],
        )
        .expect("the TLS service did not start")
    }

    /// Start `jitsh serve`; `Err(stderr)` if it exits instead of listening.
    fn serve(&self, state: &str, args: &[&str]) -> Result<Service, String> {
        let mut child = Command::new(JITSH)
            .args([
                "serve",
                "--state",
                &self.s(state),
                "--policies",
                &self.s("policies"),
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut fingerprint = String::new();
            let mut seen = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("(SHA-256 ").nth(1) {
                    fingerprint = rest.split(')').next().unwrap_or("").to_owned();
                }
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(Ok((url.to_owned(), fingerprint.clone())));
                } else {
                    seen.push_str(&line);
                    seen.push('\n');
                }
            }
            let _ = tx.send(Err(seen));
        });
        match rx.recv_timeout(Duration::from_secs(60)).unwrap() {
            Ok((url, fingerprint)) => Ok(Service {
                child,
                url,
                fingerprint,
                state: self.path(state),
            }),
            Err(seen) => {
                let status = child.wait().unwrap();
                Err(format!("{status}: {seen}"))
            }
        }
    }

    /// Run jitsh as a user with this world's config home and the given credential.
    fn jitsh(&self, credential: &str, args: &[&str]) -> Output {
        Command::new(JITSH)
            .args(args)
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("JITSH_CREDENTIAL", credential)
            .env_remove("JITSH_SERVER")
            .env_remove("JITSH_CA")
            .env_remove("JITSH_TRUST_KEY")
            .env_remove("JITSH_INSECURE_HTTP")
            .env_remove("JITSH_USER")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.path("config/jitsh/config.toml")).unwrap_or_default()
    }

    /// `jitsh check` of `line` as alice (whose credential at `server` is `credential`) with
    /// `token`, trusting what is stored.
    fn check(&self, server: &str, credential: &str, token: &Path, line: &str) -> Output {
        self.jitsh(
            credential,
            &[
                "check",
                "--policies",
                &self.s("policies"),
                "--user",
                "alice",
                "--server",
                server,
                "--token",
                token.to_str().unwrap(),
                line,
            ],
        )
    }

    /// File an auto-approved request at `server` and fetch its token into `out`.
    fn token(&self, server: &str, credential: &str, out: &Path, env: &[(&str, &str)]) -> Output {
        let run = |args: &[&str]| {
            let mut cmd = Command::new(JITSH);
            cmd.args(args)
                .env("XDG_CONFIG_HOME", self.path("config"))
                .env("JITSH_CREDENTIAL", credential)
                .env("JITSH_SERVER", server)
                .env_remove("JITSH_TRUST_KEY")
                .env_remove("JITSH_CA")
                .envs(env.iter().copied())
                .output()
                .unwrap()
        };
        let req = run(&[
            "request",
            "--task",
            "Get-MailboxStatistics",
            "--reason",
            "stats",
            "--for",
            "10m",
        ]);
        assert!(req.status.success(), "{}", text(&req.stderr));
        let id = text(&req.stdout).trim().to_owned();
        run(&["token", "fetch", &id, "--out", out.to_str().unwrap()])
    }
}

struct Service {
    child: Child,
    url: String,
    fingerprint: String,
    state: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_tls_service_is_reached_with_its_ca_and_refused_under_any_other() {
    let w = World::new();
    let alice = w.add_user("state", "alice");
    let svc = w.serve_tls("state");
    assert!(svc.url.starts_with("https://127.0.0.1:"), "{}", svc.url);

    // Connections that never start their handshake do not hold up the others.
    let port: u16 = svc.url.rsplit(':').next().unwrap().parse().unwrap();
    let silent: Vec<_> = (0..40)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let ok = w.jitsh(
        &alice,
        &["requests", "--server", &svc.url, "--ca", &w.s("ca.pem")],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout).trim(), "no requests");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(silent);

    // Another CA, and the system's CAs (which do not hold the test CA): refused before any
    // credential is sent, saying why.
    for ca in [Some(w.s("other-ca.pem")), None] {
        let mut args = vec!["requests", "--server", &svc.url];
        if let Some(ca) = &ca {
            args.extend(["--ca", ca]);
        }
        let out = w.jitsh(&alice, &args);
        assert_eq!(out.status.code(), Some(3), "{ca:?}");
        let err = text(&out.stderr);
        assert!(err.contains("could not reach the service"), "{err}");
        assert!(err.contains("certificate"), "{err}");
        assert!(!err.contains(&alice), "{err}");
    }
    // The same for login and for the gate's revocation check.
    let out = w.jitsh(
        "",
        &["login", "--server", &svc.url, "--ca", &w.s("other-ca.pem")],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("certificate"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.config_text(), "");

    // A CA file that holds no certificate is an error, not "trust nothing special".
    std::fs::write(w.path("empty.pem"), "").unwrap();
    let out = w.jitsh(
        &alice,
        &["requests", "--server", &svc.url, "--ca", &w.s("empty.pem")],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("holds no certificate"),
        "{}",
        text(&out.stderr)
    );

    // Plain HTTP to the TLS port gets no answer.
    let plain = svc.url.replace("https://", "http://");
    let out = w.jitsh(&alice, &["requests", "--server", &plain]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
}

#[test]
fn plain_http_off_loopback_is_refused_unless_asked_for() {
    let w = World::new();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        match w.serve("state", &["--listen", listen]) {
            Ok(svc) => panic!("plain HTTP served on {listen}: {}", svc.url),
            Err(err) => {
                // An address family this machine lacks fails to bind; either way nothing listens.
                if !err.contains("could not listen") {
                    assert!(err.contains("refusing to serve plain HTTP"), "{err}");
                    assert!(err.contains("--tls-cert"), "{err}");
                    assert!(err.contains("exit status: 3"), "{err}");
                }
            }
        }
    }
    // Loopback stays plain and easy; elsewhere --insecure-http is an explicit choice.
    for (listen, extra) in [
        ("127.0.0.1:0", None),
        ("localhost:0", None),
        ("0.0.0.0:0", Some("--insecure-http")),
    ] {
        let mut args = vec!["--listen", listen];
        args.extend(extra);
        let svc = w.serve("state", &args).unwrap();
        assert!(svc.url.starts_with("http://"), "{}", svc.url);
    }
    // --insecure-http cannot be combined with TLS files.
    let out = w.jitsh(
        "",
        &[
            "serve",
            "--state",
            &w.s("state"),
            "--insecure-http",
            "--tls-cert",
            "x",
            "--tls-key",
            "y",
        ],
    );
    assert_eq!(out.status.code(), Some(3));

    // Clients refuse to send a credential in clear text off loopback (before connecting).
    for url in ["http://10.20.30.40:8750", "http://jitsh.contoso.test"] {
        let out = w.jitsh("jitsh_secret", &["requests", "--server", url]);
        assert_eq!(out.status.code(), Some(3), "{url}");
        let err = text(&out.stderr);
        assert!(err.contains("plain HTTP"), "{err}");
        assert!(!err.contains("jitsh_secret"), "{err}");
    }
}

#[test]
fn login_pins_the_confirmed_key_and_later_commands_use_it() {
    let w = World::new();
    let alice = w.add_user("state", "alice");
    let svc = w.serve_tls("state");
    assert_eq!(svc.fingerprint.len(), 64, "serve prints the fingerprint");
    let ca = w.s("ca.pem");

    // Before login: exec with a server says at once that no token can count (standing access
    // still runs, as the pinned smoke path expects); with a token file it stops at once.
    // `request` (run with only the server and credential set) goes ahead but says so too.
    let out = w.jitsh(
        &alice,
        &[
            "exec",
            "--server",
            &svc.url,
            "--policies",
            &w.s("policies"),
            "--token",
            &w.s("policies"),
            "--",
            "Get-Mailbox",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("jitsh login --server"), "{err}");
    let out = w.jitsh(
        &alice,
        &[
            "--ca",
            &ca,
            "exec",
            "--server",
            &svc.url,
            "--policies",
            &w.s("policies"),
            "--",
            "Get-Mailbox",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("no signing key") && err.contains("jitsh login --server"),
        "{err}"
    );
    let out = w.jitsh(
        &alice,
        &[
            "--ca",
            &ca,
            "request",
            "--server",
            &svc.url,
            "--task",
            "Get-MailboxStatistics",
            "--reason",
            "r",
            "--for",
            "10m",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: no signing key of the approval service is trusted"),
        "{}",
        text(&out.stderr)
    );

    // Without a terminal to confirm on, and without --yes, nothing is trusted.
    let out = w.jitsh("", &["login", "--server", &svc.url, "--ca", &ca]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains(&svc.fingerprint),
        "the fingerprint is shown: {err}"
    );
    assert!(err.contains("nothing was trusted"), "{err}");
    assert_eq!(w.config_text(), "");
    // --yes needs the fingerprint it pins.
    let out = w.jitsh("", &["login", "--server", &svc.url, "--ca", &ca, "--yes"]);
    assert_eq!(out.status.code(), Some(3));
    // A fingerprint that is not the service's.
    let wrong = "0".repeat(64);
    let out = w.jitsh(
        "",
        &[
            "login",
            "--server",
            &svc.url,
            "--ca",
            &ca,
            "--fingerprint",
            &wrong,
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("does not present a signing key"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.config_text(), "");

    // The fingerprint `jitsh serve` printed, in another spelling.
    let spelled = format!("SHA256:{}", svc.fingerprint.to_uppercase());
    let out = w.jitsh(
        "",
        &[
            "login",
            "--server",
            &svc.url,
            "--ca",
            &ca,
            "--fingerprint",
            &spelled,
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config: toml::Table = w.config_text().parse().unwrap();
    assert_eq!(config["server"].as_str(), Some(svc.url.as_str()));
    assert_eq!(config["ca"].as_str(), Some(ca.as_str()));
    let keys = config["trust_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key_file = PathBuf::from(keys[0].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        std::fs::read_to_string(svc.state.join("signing.pub")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key_file), 0o644);
    assert_eq!(mode(&w.path("config/jitsh/config.toml")), 0o600);

    // Afterwards no --ca, no --trust-key: the stored CA and key are used.
    let tok = w.path("stats.tok");
    let fetched = w.token(&svc.url, &alice, &tok, &[]);
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    let out = w.check(&svc.url, &alice, &tok, STATS);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The token covers what it was issued for only.
    let out = w.check(&svc.url, &alice, &tok, "Remove-Mailbox -Identity bob");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
}

#[test]
fn a_service_with_another_signing_key_is_refused() {
    let w = World::new();
    let alice = w.add_user("state-a", "alice");
    let alice_b = w.add_user("state-b", "alice");
    let a = w.serve_tls("state-a");
    // Same CA, same host, another key: an impersonator with a valid certificate, or a service
    // whose key was replaced.
    let b = w.serve_tls("state-b");
    assert_ne!(a.fingerprint, b.fingerprint);
    let ca = w.s("ca.pem");
    let out = w.jitsh(
        "",
        &[
            "login",
            "--server",
            &a.url,
            "--ca",
            &ca,
            "--fingerprint",
            &a.fingerprint,
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Logging in to B expecting A's key is refused, and A stays trusted.
    let out = w.jitsh(
        "",
        &[
            "login",
            "--server",
            &b.url,
            "--fingerprint",
            &a.fingerprint,
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("does not present a signing key"), "{err}");
    assert!(err.contains("not the key you trusted before"), "{err}");
    assert!(w.config_text().contains(&a.url));

    // A token from B is refused when fetched ...
    let tok_b = w.path("b.tok");
    let out = w.token(&b.url, &alice_b, &tok_b, &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("unknown key"), "{err}");
    assert!(err.contains("jitsh login"), "{err}");
    assert!(!tok_b.exists());
    // ... and by the gate, when it got there another way.
    let b_key = b.state.join("signing.pub");
    let out = w.token(
        &b.url,
        &alice_b,
        &tok_b,
        &[("JITSH_TRUST_KEY", b_key.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = w.check(&a.url, &alice, &tok_b, STATS);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown key") && err.contains("jitsh login"),
        "{err}"
    );

    // A's own token still works; after a confirmed re-login to B (a rotation), only B's does.
    let tok_a = w.path("a.tok");
    assert!(w.token(&a.url, &alice, &tok_a, &[]).status.success());
    assert_eq!(
        w.check(&a.url, &alice, &tok_a, STATS).status.code(),
        Some(0)
    );
    let out = w.jitsh(
        "",
        &[
            "login",
            "--server",
            &b.url,
            "--fingerprint",
            &b.fingerprint,
            "--yes",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not the key you trusted before"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        w.check(&b.url, &alice_b, &tok_b, STATS).status.code(),
        Some(0)
    );
    assert_eq!(
        w.check(&b.url, &alice_b, &tok_a, STATS).status.code(),
        Some(3)
    );
    assert_eq!(
        std::fs::read_dir(w.path("config/jitsh/keys"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_broken_settings_file_stops_client_commands_instead_of_dropping_its_trust() {
    let w = World::new();
    std::fs::create_dir_all(w.path("config/jitsh")).unwrap();
    // A CA and a key the user meant to pin, in a file that no longer parses.
    std::fs::write(
        w.path("config/jitsh/config.toml"),
        "server = \"https://127.0.0.1:9\"\nca = \"/x/ca.pem\"\ntrust_keys = [\"/x/k.pub\"\n",
    )
    .unwrap();
    for args in [
        vec!["requests"],
        vec!["login", "--server", "https://127.0.0.1:9"],
        vec!["check", "--policies", "policies", "Get-Mailbox"],
    ] {
        let out = w.jitsh("", &args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(
            text(&out.stderr).contains("is not valid"),
            "{}",
            text(&out.stderr)
        );
    }
    // Commands that never talk to a service are not held up.
    let out = w.jitsh("", &["parse", "Get-Mailbox"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Run `jitsh ARGS` on a terminal, answer `answer` to its question; returns (status, screen).
fn on_terminal(w: &World, args: &[&str], answer: &str) -> (u32, String) {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    use std::io::{Read as _, Write as _};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(JITSH);
    cmd.args(args);
    cmd.env("XDG_CONFIG_HOME", w.path("config"));
    for k in ["JITSH_SERVER", "JITSH_CA", "JITSH_TRUST_KEY"] {
        cmd.env_remove(k);
    }
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !screen.contains("[y/N]") {
        assert!(
            std::time::Instant::now() < deadline,
            "no question: {screen}"
        );
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
            screen.push_str(&String::from_utf8_lossy(&b));
        }
    }
    writer.write_all(format!("{answer}\r").as_bytes()).unwrap();
    writer.flush().unwrap();
    let status = child.wait().unwrap();
    while let Ok(b) = rx.recv_timeout(Duration::from_millis(300)) {
        screen.push_str(&String::from_utf8_lossy(&b));
    }
    (status.exit_code(), screen)
}

#[test]
fn login_asks_on_the_terminal_and_trusts_only_on_yes() {
    let w = World::new();
    let svc = w.serve_tls("state");
    let args = ["login", "--server", &svc.url, "--ca", &w.s("ca.pem")];
    for answer in ["", "n", "no way", "yess"] {
        let (code, screen) = on_terminal(&w, &args, answer);
        assert_eq!(code, 3, "{answer:?}: {screen}");
        assert!(screen.contains(&svc.fingerprint), "{screen}");
        assert!(screen.contains("nothing was trusted"), "{screen}");
        assert_eq!(w.config_text(), "", "{answer:?}");
    }
    let (code, screen) = on_terminal(&w, &args, "y");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("trusted signing key"), "{screen}");
    assert!(w.config_text().contains(&svc.url));
}

/// A fake service on loopback that answers every request with `body` (plain HTTP).
fn fake_service(body: String) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn login_believes_only_the_key_bytes_never_the_answer_around_them() {
    let w = World::new();
    let real = jitsh::token::SigningKey::from_seed([7; 32])
        .unwrap()
        .public_key();
    let fake = jitsh::token::SigningKey::from_seed([8; 32])
        .unwrap()
        .public_key();
    let key_json = |k: &jitsh::token::PublicKey, kid: &str, sha: &str| serde_json::json!({"kid": kid, "sha256": sha, "public_key": k.to_file_text()});
    // The impersonator's key, labelled with the real key's id and fingerprint.
    let lying = serde_json::json!({"keys": [key_json(&fake, real.kid(), &real.fingerprint())]});
    // A key file whose kid line names the real key.
    let relabelled = fake.to_file_text().replace(fake.kid(), real.kid());
    let cases = [
        (lying.to_string(), "does not present a signing key"),
        (
            serde_json::json!({"keys": [{"kid": real.kid(), "public_key": relabelled}]})
                .to_string(),
            "kid",
        ),
        ("not json".to_owned(), "not JSON"),
        (
            serde_json::json!({"keys": []}).to_string(),
            "no `keys` list",
        ),
        (
            serde_json::json!({"keys": vec![key_json(&fake, fake.kid(), ""); 17]}).to_string(),
            "no `keys` list",
        ),
        (
            format!("{{\"pad\": \"{}\"}}", "x".repeat(70_000)),
            "over 64 KiB",
        ),
    ];
    for (body, why) in cases {
        let url = fake_service(body);
        let out = w.jitsh(
            "",
            &[
                "login",
                "--server",
                &url,
                "--fingerprint",
                &real.fingerprint(),
                "--yes",
            ],
        );
        assert_eq!(out.status.code(), Some(3), "{why}");
        let err = text(&out.stderr);
        assert!(err.contains(why), "{why}: {err}");
        assert!(
            !err.contains(&format!(
                "key {}  SHA-256 {}",
                real.kid(),
                real.fingerprint()
            )),
            "{err}"
        );
        assert_eq!(w.config_text(), "", "{why}");
    }
}

/// Under TLS the admin center's session cookie is `Secure`, so a browser never sends it over
/// plain HTTP.
#[test]
fn the_admin_center_cookie_is_secure_under_tls() {
    let w = World::new();
    let alice = w.add_user("state", "alice");
    let svc = w.serve_tls("state");
    let ca = reqwest::Certificate::from_pem(w.ca.pem.as_bytes()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cookie = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .post(format!("{}/ui/signin", svc.url))
            .form(&[("credential", alice.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        resp.headers()["set-cookie"].to_str().unwrap().to_owned()
    });
    for part in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(part), "{cookie}");
    }
}
