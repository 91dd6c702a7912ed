//! Where settings come from: `/etc/jitsh/config.toml` (here `$JITSH_SYSTEM_CONFIG`), then
//! `~/.config/jitsh/config.toml`, then the environment, then flags. The policy folder is never
//! taken from the current directory unless named.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const JITSH: &str = env!("CARGO_BIN_EXE_jitsh");

const ALLOW: &str = "[defaults]\nunmatched = \"deny\"\n\n[[rule]]\nid = \"reads\"\neffect = \"allow\"\ntasks = [\"Get-Mailbox\"]\n";
const DENY: &str = "[defaults]\nunmatched = \"deny\"\n\n[[rule]]\nid = \"no-reads\"\neffect = \"deny\"\ntasks = [\"Get-Mailbox\"]\n";
const APPROVE: &str = "[defaults]\nunmatched = \"deny\"\n\n[[rule]]\nid = \"ask\"\neffect = \"approval\"\ntasks = [\"Get-Mailbox\"]\napprovers = [\"x\"]\n";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("allow", ALLOW), ("deny", DENY), ("approve", APPROVE)] {
            let p = dir.path().join("folders").join(name);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("p.toml"), text).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("home/.config/jitsh")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::create_dir_all(dir.path().join("cwd/policies")).unwrap();
        // A `policies` folder in the current directory that must never be picked up silently.
        std::fs::write(dir.path().join("cwd/policies/p.toml"), ALLOW).unwrap();
        Env { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn system(&self, text: &str) {
        std::fs::write(self.path("etc/config.toml"), text).unwrap();
    }
    fn user(&self, text: &str) {
        std::fs::write(self.path("home/.config/jitsh/config.toml"), text).unwrap();
    }
    fn folder(&self, name: &str) -> String {
        self.path("folders").join(name).display().to_string()
    }
    fn jitsh(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(JITSH);
        c.args(args)
            .current_dir(self.path("cwd"))
            .env("HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("JITSH_POLICIES")
            .env_remove("JITSH_SERVER")
            .env("JITSH_SYSTEM_CONFIG", self.path("etc/config.toml"));
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
    /// `jitsh check Get-Mailbox`'s status: 0 allow, 1 approval, 2 deny.
    fn decision(&self, extra: &[&str], env: &[(&str, &str)]) -> Option<i32> {
        let mut args = vec!["check"];
        args.extend_from_slice(extra);
        args.push("Get-Mailbox");
        self.jitsh(&args, env).status.code()
    }
}

#[test]
fn settings_layer_system_then_user_then_environment_then_flags() {
    let e = Env::new();
    e.system(&format!("policies = {:?}\n", e.folder("deny")));
    assert_eq!(e.decision(&[], &[]), Some(2), "the system file");
    e.user(&format!("policies = {:?}\n", e.folder("approve")));
    assert_eq!(e.decision(&[], &[]), Some(1), "the user's file over it");
    let allow = e.folder("allow");
    assert_eq!(
        e.decision(&[], &[("JITSH_POLICIES", &allow)]),
        Some(0),
        "the environment over the files"
    );
    let deny = e.folder("deny");
    assert_eq!(
        e.decision(&["--policies", &deny], &[("JITSH_POLICIES", &allow)]),
        Some(2),
        "the flag over the environment"
    );
}

#[test]
fn relative_paths_in_a_settings_file_are_taken_from_its_folder() {
    let e = Env::new();
    std::fs::create_dir_all(e.path("etc/rules")).unwrap();
    std::fs::write(e.path("etc/rules/p.toml"), DENY).unwrap();
    e.system("policies = \"rules\"\n");
    // `rules` is found beside the settings file; the current directory is not consulted.
    assert_eq!(e.decision(&[], &[]), Some(2));
}

#[test]
fn a_service_never_runs_on_an_unnamed_folder_and_says_how_to_name_one() {
    let e = Env::new();
    let state = e.path("state");
    let out = e.jitsh(
        &[
            "serve",
            "--state",
            state.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for hint in ["--policies", "JITSH_POLICIES", "policies = ", "config.toml"] {
        assert!(err.contains(hint), "{hint} missing: {err}");
    }
    assert!(!state.exists());
}

#[test]
fn the_gate_without_a_configured_folder_says_which_one_it_uses() {
    let e = Env::new();
    let out = e.jitsh(&["check", "Get-Mailbox"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    assert!(err.contains("demo policies"), "{err}");
    assert!(err.contains(&shipped.display().to_string()), "{err}");
    assert!(!err.contains(&e.path("cwd").display().to_string()), "{err}");
}

#[test]
fn a_folder_that_does_not_load_names_the_ways_to_choose_another() {
    let e = Env::new();
    let missing = e.path("missing").display().to_string();
    for args in [
        vec!["check", "--policies", &missing, "Get-Mailbox"],
        vec!["exec", "--policies", &missing, "--", "Get-Mailbox"],
        vec!["shell", "--policies", &missing],
    ] {
        let out = e.jitsh(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.contains("--policies DIR") && err.contains("JITSH_POLICIES"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("warning"), "{args:?}: {err}");
    }
}
