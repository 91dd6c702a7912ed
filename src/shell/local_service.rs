//! An approval service started in-process on loopback, for a session started without
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
//! Each running service holds a lock (`STATE/service.lock`) on its folder. A second shell started
//! meanwhile with the same HOME finds the folder taken and uses the next free one
//! (`local-service-2`, `-3`, ...), so it never rewrites the first one's directory, credentials or
//! audit log.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::policy::PolicySet;
use crate::service::directory::{write_private_atomic, Directory};
use crate::service::{self, Config};

use super::ShellError;

/// A running in-process approval service; stops (with a clean audit checkpoint) on drop.
#[derive(Debug)]
pub struct LocalService {
    pub url: String,
    pub state: PathBuf,
    /// The session user's credential, for `:request` and token pick-up.
    pub credential: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Held while the service runs; released after `Drop` has stopped it.
    _lock: Flock<File>,
}

/// How many quick-start shells may run at once with one HOME.
const MAX_SLOTS: usize = 16;

/// Marks a state folder as the local service's own, so its directory may be rewritten.
const OWNER_MARK: &str = "local-service";

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

        let config = Config {
            state: state.clone(),
            policies: policies_dir.to_path_buf(),
            directory: None,
            smtp: None,
            mail_from: "jitsh@localhost".into(),
            webhook: None,
            pending_ttl: Duration::from_secs(24 * 3600),
            syslog: None,
            // Loopback only, inside this process's session.
            tls: None,
            limits: Default::default(),
            store: None,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| ShellError::Service(format!("cannot listen on loopback: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ShellError::Service(e.to_string()))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<String, String>>();
        let thread = std::thread::Builder::new()
            .name("jitsh-local-service".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let ready = ready_tx.clone();
                    let result = service::serve(
                        &config,
                        listener,
                        move |addr| {
                            let _ = ready.send(Ok(format!("http://{addr}")));
                        },
                        async move {
                            let _ = stop_rx.await;
                        },
                    )
                    .await;
                    if let Err(e) = result {
                        let _ = ready_tx.send(Err(e.to_string()));
                    }
                });
            })
            .map_err(|e| ShellError::Service(e.to_string()))?;
        let url = match ready_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => {
                return Err(ShellError::Service(format!(
                    "the local approval service did not start: {e}"
                )))
            }
            Err(_) => {
                return Err(ShellError::Service(
                    "the local approval service did not start in time".into(),
                ))
            }
        };
        Ok(LocalService {
            url,
            state,
            credential,
            stop: Some(stop_tx),
            thread: Some(thread),
            _lock: lock,
        })
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
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;
    use crate::policy::PolicySource;

    const POLICY: &str = "[[rule]]\nid = \"moves\"\neffect = \"approval\"\ntasks = [\"New-MoveRequest\"]\napprovers = [\"mbmanagers\"]\nrequesters = [\"exchange-admins\"]\n";

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
