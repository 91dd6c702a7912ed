//! An approval service started on loopback for a session started without
//! `--server`: the newcomer's one-command demo shows the whole flow (a privileged line is
//! refused, `:request` files it, a second terminal approves, the line then runs).
//!
//! It keeps its state in `$JITSH_STATE` or `~/.local/share/jitsh/local-service`: the SQLite
//! store, the signing key, the audit log. Each start writes a fresh directory with two users —
//! the session user, in every requester group the policies name, and `approver`, in every
//! approver group — and new credentials for both; the approver's credential is written to
//! `STATE/approver.credential` (0600) and never printed. The same OS user holds both
//! credentials, so this service demonstrates the flow but does not separate duties; the banner
//! says so, and real deployments point `--server` at a shared service.
//!
//! The service is `jitsh serve` in a process of its own, as a deployed one is: the shell talks
//! to it over HTTP only, stays as small as a shell connected to a shared service, and the
//! service's log is `STATE/service.log`. It stops when the shell closes its standard input,
//! which happens however the shell ends, and holds the folder's lock until it has stopped.
//!
//! Each running service holds a lock (`STATE/service.lock`) on its folder. A second shell started
//! meanwhile with the same HOME finds the folder taken and uses the next free one
//! (`local-service-2`, `-3`, ...), so it never rewrites the first one's directory, credentials or
//! audit log.

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::policy::PolicySet;
use crate::service::directory::{write_private_atomic, Directory};

use super::ShellError;

/// A running local approval service; stops (with a clean audit checkpoint) on drop.
#[derive(Debug)]
pub struct LocalService {
    pub url: String,
    pub state: PathBuf,
    /// The session user's credential, for `:request` and token pick-up.
    pub credential: String,
    /// The service's process (`jitsh serve`); its standard input is held here.
    child: Option<Child>,
    /// Held while the service runs; released after `Drop` has stopped it.
    _lock: Flock<File>,
}

/// How many quick-start shells may run at once with one HOME.
const MAX_SLOTS: usize = 16;

/// Marks a state folder as the local service's own, so its directory may be rewritten.
const OWNER_MARK: &str = "local-service";

/// How long the service may take to start listening, and to stop once told.
const READY_WITHIN: Duration = Duration::from_secs(20);
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// The name of the approver account the local service creates.
pub(crate) const APPROVER: &str = "approver";

impl LocalService {
    pub fn start(
        policies_dir: &Path,
        policies: &PolicySet,
        user: &str,
    ) -> Result<LocalService, ShellError> {
        let base = state_dir().ok_or_else(|| {
            ShellError::Config(
                "no folder for the local approval service: set JITSH_STATE or HOME".into(),
            )
        })?;
        for slot in 1..=MAX_SLOTS {
            let state = slot_dir(&base, slot);
            if let Some(lock) = lock_state(&state)? {
                return LocalService::start_locked(state, lock, policies_dir, policies, user);
            }
        }
        Err(ShellError::Config(format!(
            "{MAX_SLOTS} local approval services already run from `{}`; end a session or pass --server URL",
            base.display()
        )))
    }

    /// Start with its state in `state` (fails if another service runs there).
    pub fn start_in(
        state: PathBuf,
        policies_dir: &Path,
        policies: &PolicySet,
        user: &str,
    ) -> Result<LocalService, ShellError> {
        let lock = lock_state(&state)?.ok_or_else(|| {
            ShellError::Config(format!(
                "`{}` is in use by another session's approval service",
                state.display()
            ))
        })?;
        LocalService::start_locked(state, lock, policies_dir, policies, user)
    }

    fn start_locked(
        state: PathBuf,
        lock: Flock<File>,
        policies_dir: &Path,
        policies: &PolicySet,
        user: &str,
    ) -> Result<LocalService, ShellError> {
        // Never rewrite the directory of a real service's state folder.
        let owned = state.join(OWNER_MARK);
        if state.join("directory.toml").exists() && !owned.exists() {
            return Err(ShellError::Config(format!(
                "`{}` holds another service's directory; point JITSH_STATE at a folder of its own, or pass --server URL",
                state.display()
            )));
        }
        crate::atomic_write::write(
            &owned,
            b"made by jitsh shell's local approval service\n",
            crate::atomic_write::Mode::Public,
        )
        .map_err(|e| ShellError::Config(format!("cannot write `{}`: {e}", owned.display())))?;
        let (credential, approver_credential) = seed_directory(&state, policies, user)?;
        write_private_atomic(
            &state.join("approver.credential"),
            format!("{}\n", approver_credential).as_bytes(),
        )
        .map_err(|e| ShellError::Config(format!("cannot write the approver credential: {e}")))?;

        let log_path = state.join("service.log");
        let log = File::create(&log_path).map_err(|e| {
            ShellError::Service(format!("cannot write `{}`: {e}", log_path.display()))
        })?;
        let exe = std::env::current_exe().map_err(|e| {
            ShellError::Service(format!(
                "cannot find the jitsh program to start the local approval service: {e}"
            ))
        })?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--state")
            .arg(&state)
            .arg("--policies")
            .arg(policies_dir)
            .args(["--listen", "127.0.0.1:0", "--exit-with-stdin"]);
        // The demo service keeps its state in its folder, sends no mail and calls no hook,
        // whatever the environment names for a real one.
        for name in ["JITSH_STORE", "JITSH_WEBHOOK", "JITSH_POLICIES"] {
            command.env_remove(name);
        }
        // The session's verbosity (`-v`) carries over to the service's log.
        let level = tracing::level_filters::LevelFilter::current();
        if std::env::var_os("RUST_LOG").is_none() && level >= tracing::Level::INFO {
            command.env("RUST_LOG", level.to_string().to_lowercase());
        }
        // The service's standard output is a copy of the folder's locked file: the lock is
        // held until the service itself has ended, even when this shell was killed first, so
        // no other session's service starts on this folder while it still writes there.
        let holder = lock
            .try_clone()
            .map_err(|e| ShellError::Service(format!("cannot pass on the folder's lock: {e}")))?;
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::from(holder))
            .stderr(Stdio::from(log))
            // Its own process group: keys and signals meant for the session's terminal are
            // not its business. It ends when its standard input (held here) closes.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                ShellError::Service(format!("the local approval service did not start: {e}"))
            })?;
        let mut service = LocalService {
            url: String::new(),
            state,
            credential,
            child: Some(child),
            _lock: lock,
        };
        service.url = service.wait_ready(&log_path)?;
        Ok(service)
    }

    /// Waits for the service to say where it listens (`listening on URL` in its log).
    fn wait_ready(&mut self, log_path: &Path) -> Result<String, ShellError> {
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            if let Some(url) = listening_url(&log) {
                return Ok(url.to_string());
            }
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(None)) => None,
                Some(Ok(Some(status))) => Some(status.to_string()),
                Some(Err(e)) => Some(e.to_string()),
                None => Some("not running".into()),
            };
            if let Some(status) = exited {
                let last = log.lines().last().unwrap_or("no output").to_string();
                return Err(ShellError::Service(format!(
                    "the local approval service stopped ({status}): {last} (its log: {})",
                    log_path.display()
                )));
            }
            if started.elapsed() > READY_WITHIN {
                return Err(ShellError::Service(format!(
                    "the local approval service did not start within {} s (its log: {})",
                    READY_WITHIN.as_secs(),
                    log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The service's public key, for verifying the tokens it issues.
    pub fn trust_key(&self) -> PathBuf {
        self.state.join("signing.pub")
    }

    /// What to tell the user at start: where the service is and how to approve.
    pub fn banner(&self) -> String {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "jitsh".into());
        format!(
            "jitsh: DEMO: approval service for this session: {url} (state in {state})\r\n\
             jitsh: this is a demo service for trying jitsh: its approver credential lives on this machine, so its approvals do not separate duties; use --server with a shared service for real work\r\n\
             jitsh: approve from a second terminal as `{APPROVER}`:\r\n  \
             export JITSH_SERVER={url} JITSH_CREDENTIAL=$(cat {state}/approver.credential)\r\n  \
             {exe} requests --pending\r\n  \
             {exe} approve REQUEST-ID\r\n",
            url = self.url,
            state = self.state.display(),
        )
    }
}

impl Drop for LocalService {
    /// Closes the service's standard input, which stops it cleanly (its audit log ends with a
    /// checkpoint); one that does not stop in time is killed.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        drop(child.stdin.take());
        let started = Instant::now();
        while started.elapsed() < STOP_WITHIN {
            match child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Ok(Some(_)) | Err(_) => return,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The folder for slot `n`: the base itself, then `BASE-2`, `BASE-3`, ...
fn slot_dir(base: &Path, n: usize) -> PathBuf {
    if n <= 1 {
        return base.to_path_buf();
    }
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(format!("-{n}"));
    base.with_file_name(name)
}

/// Create `state` and take its lock; `None` when another running service holds it.
fn lock_state(state: &Path) -> Result<Option<Flock<File>>, ShellError> {
    std::fs::create_dir_all(state)
        .map_err(|e| ShellError::Config(format!("cannot create `{}`: {e}", state.display())))?;
    let path = state.join("service.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ShellError::Config(format!("cannot open `{}`: {e}", path.display())))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(ShellError::Config(format!(
            "cannot lock `{}`: {e}",
            path.display()
        ))),
    }
}

fn state_dir() -> Option<PathBuf> {
    std::env::var_os("JITSH_STATE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".local/share/jitsh/local-service"))
        })
}

/// Write a fresh directory: the session user in every requester group, `approver` in every
/// approver group. Returns (user credential, approver credential).
fn seed_directory(
    state: &Path,
    policies: &PolicySet,
    user: &str,
) -> Result<(String, String), ShellError> {
    let mut requesters: Vec<String> = Vec::new();
    let mut approvers: Vec<String> = Vec::new();
    for rule in policies.rules() {
        for g in &rule.requesters {
            if !requesters.contains(g) {
                requesters.push(g.clone());
            }
        }
        for g in &rule.approvers {
            if !approvers.contains(g) {
                approvers.push(g.clone());
            }
        }
    }
    let mut dir = Directory::default();
    let err = |e: crate::service::directory::DirectoryError| ShellError::Config(e.to_string());
    let mine = dir
        .add_user(user, None, requesters.clone(), requesters)
        .map_err(err)?;
    let theirs = dir
        .add_user(APPROVER, None, approvers, Vec::new())
        .map_err(err)?;
    dir.save(&state.join("directory.toml")).map_err(err)?;
    Ok((mine.expose().to_owned(), theirs.expose().to_owned()))
}

/// The address in the service log's `listening on URL` line, once that line is whole: a log
/// read while the line was being written (by an older service, in pieces) ends before it does.
fn listening_url(log: &str) -> Option<&str> {
    log.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .find_map(|l| l.strip_prefix("listening on "))
        .map(str::trim)
        .filter(|url| !url.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;
    use crate::policy::PolicySource;

    const POLICY: &str = "[[rule]]\nid = \"moves\"\neffect = \"approval\"\ntasks = [\"New-MoveRequest\"]\napprovers = [\"mbmanagers\"]\nrequesters = [\"exchange-admins\"]\n";

    /// The service's log read at any moment of writing its line: the address is taken only
    /// from the whole line (a read between its pieces once gave the session an empty address).
    #[test]
    fn the_address_is_read_from_the_whole_line_only() {
        let line = "listening on http://127.0.0.1:40123\n";
        for cut in 0..line.len() {
            let log = format!("keys: ...\n{}", &line[..cut]);
            assert_eq!(listening_url(&log), None, "read after {cut} bytes: {log:?}");
        }
        let whole = format!("keys: ...\n{line}later\n");
        assert_eq!(listening_url(&whole), Some("http://127.0.0.1:40123"));
        assert_eq!(listening_url("listening on \n"), None);
        assert_eq!(
            listening_url("listening on https://[::1]:8443\r\n"),
            Some("https://[::1]:8443")
        );
    }

    fn policies() -> PolicySet {
        PolicySet::from_sources(&[PolicySource {
            name: "p.toml".into(),
            text: POLICY.into(),
        }])
        .unwrap()
    }

    #[test]
    fn never_rewrites_a_state_folder_it_did_not_make() {
        let dir = tempfile::tempdir().unwrap();
        let directory = dir.path().join("directory.toml");
        std::fs::write(&directory, "# a real service's users\n").unwrap();
        let err =
            LocalService::start_in(dir.path().to_path_buf(), dir.path(), &policies(), "alice")
                .unwrap_err();
        assert!(
            err.to_string().contains("another service's directory"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&directory).unwrap(),
            "# a real service's users\n"
        );
    }

    #[test]
    fn a_folder_in_use_is_not_taken_again_and_slots_are_siblings() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("local-service");
        let held = lock_state(&base).unwrap().expect("a free folder locks");
        assert!(
            lock_state(&base).unwrap().is_none(),
            "a held folder is busy"
        );
        assert_eq!(slot_dir(&base, 1), base);
        assert_eq!(slot_dir(&base, 2), dir.path().join("local-service-2"));
        let err =
            LocalService::start_in(base.clone(), dir.path(), &policies(), "alice").unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
        drop(held);
        assert!(
            lock_state(&base).unwrap().is_some(),
            "released with the service"
        );
    }

    #[test]
    fn seeds_requester_and_approver_with_fresh_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, theirs) = seed_directory(dir.path(), &policies(), "alice").unwrap();
        assert_ne!(mine, theirs);
        let d = Directory::load(&dir.path().join("directory.toml")).unwrap();
        let alice = d.authenticate(&mine).unwrap();
        assert!(alice.in_any(&["exchange-admins".to_string()]));
        let approver = d.authenticate(&theirs).unwrap();
        assert!(approver.in_any(&["mbmanagers".to_string()]));
        assert!(!approver.in_any(&["exchange-admins".to_string()]));
    }
}
