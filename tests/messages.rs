//! What the commands say when something is wrong: sentences a person can act on, no machine
//! codes, no protocol words, and no side effects from a command that failed.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::{Command, Output};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");

fn jitsh(args: &[&str], home: &Path) -> Output {
    Command::new(JITSH)
        .args(args)
        .env("HOME", home)
        .env_remove("JITSH_SERVER")
        .env_remove("JITSH_CREDENTIAL")
        .env_remove("JITSH_POLICIES")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn serve_leaves_nothing_behind_when_the_policies_do_not_load() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("p.toml"), "[[rule]]\nid = 1\n").unwrap();
    for (n, policies) in [&empty, &bad, &tmp.path().join("missing")]
        .into_iter()
        .enumerate()
    {
        let state = tmp.path().join(format!("state-{n}"));
        let out = jitsh(
            &[
                "serve",
                "--state",
                state.to_str().unwrap(),
                "--policies",
                policies.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            tmp.path(),
        );
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            !state.exists(),
            "no database or keys for a service that did not start: {}",
            stderr(&out)
        );
    }
}

#[test]
fn folder_errors_name_the_folder_without_a_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for dir in [empty, tmp.path().join("missing")] {
        let out = jitsh(
            &["check", "--policies", dir.to_str().unwrap(), "Get-Mailbox"],
            tmp.path(),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains(&format!("{}: ", dir.display())), "{err}");
        assert!(!err.contains(":0:0"), "{err}");
    }
}

#[test]
fn help_shows_environment_variables_without_values_and_describes_every_option() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["check", "--help"][..],
        &["shell", "--help"],
        &["exec", "--help"],
        &["requests", "--help"],
        &["user", "list", "--help"],
        &["user", "add", "--help"],
    ] {
        let out = jitsh(args, tmp.path());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(!help.contains("=]"), "{args:?}: {help}");
        // An option line that ends right after its name has no description.
        for line in help.lines() {
            let t = line.trim_end();
            assert!(
                !(t.trim_start().starts_with("--") && line.len() > t.len()),
                "{args:?}: `{t}` has no description"
            );
        }
    }
}

#[test]
fn client_connection_mistakes_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("localhost:8750", "good-credential", "no scheme"),
        (
            "127.0.0.1:8750",
            "good-credential",
            "https://127.0.0.1:8750",
        ),
        (
            "http://127.0.0.1:1",
            "good-credential",
            "connection refused",
        ),
        ("http://127.0.0.1:1", "two words", "JITSH_CREDENTIAL"),
        ("http://127.0.0.1:1", "line\nbreak", "JITSH_CREDENTIAL"),
    ];
    for (server, credential, expected) in cases {
        // The credential comes from a file (never the command line, where `ps` shows it).
        let cred_file = tmp.path().join("credential");
        std::fs::write(&cred_file, credential).unwrap();
        let out = jitsh(
            &[
                "requests",
                "--server",
                server,
                "--credential-file",
                cred_file.to_str().unwrap(),
            ],
            tmp.path(),
        );
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{err}");
        assert!(err.contains(expected), "{server}: {err}");
        for jargon in ["builder error", "error sending request", "header"] {
            assert!(!err.contains(jargon), "{server}: {err}");
        }
    }
}
