//! Who is who: users, their groups and roles, and their credentials' digests, in one TOML file
//! (default `STATE/directory.toml`).
//!
//! Separation of duties compares people, not accounts: two accounts with the same `person` key
//! (by default the normalised email, else the account name) are one person, who never approves
//! their own request under another account nor counts twice toward a quorum.
//!
//! Writers (`jitsh user add`, `POST /v1/users`) serialise on an exclusive lock of
//! `.NAME.lock` beside the file and re-read it under the lock ([`Directory::update`]), so
//! concurrent additions from several processes never overwrite each other.
//!
//! Only the SHA-256 of each credential is stored. A credential is 32 random bytes, base64url,
//! prefixed `jitsh_`; it is shown once when created and never again.
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! email = "alice@contoso.com"
//! person = "alice.smith"      # optional: who this account belongs to (default: the email)
//! groups = ["exchange-admins"]
//! roles = []
//! credential_sha256 = "9f86d08..."
//!
//! [groups.mbmanagers]          # optional: members listed on the group side
//! members = ["bob"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use ring::rand::SecureRandom as _;

/// Prefix of every credential, so a leaked one is recognisable by secret scanners.
pub(crate) const CREDENTIAL_PREFIX: &str = "jitsh_";
/// Role whose members administer policies, users and locks.
pub(crate) const GLOBAL_ADMIN: &str = "global-admin";

/// The directory file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Directory {
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Members>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Members>,
}

/// A group or role declared on its own, with members named there.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Members {
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One user. `Debug` leaves the digest out.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The person behind the account, when it is not told by the email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Hex SHA-256 of the credential.
    pub credential_sha256: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("person", &self.person)
            .field("groups", &self.groups)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// A freshly generated credential. `Debug` is redacted; read it with [`Credential::expose`].
pub struct Credential(String);

impl Credential {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// The authenticated caller, with memberships resolved from both sides of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub email: Option<String>,
    /// Who the account belongs to: [`person_key`] of the user entry.
    pub person: String,
    /// Groups and roles, lowercased.
    pub memberships: Vec<String>,
}

impl Principal {
    /// Whether `other` is the same person (possibly under another account).
    pub fn same_person(&self, other: &Principal) -> bool {
        self.person == other.person
    }

    /// Whether the user belongs to any of `names` (groups or roles, case-insensitive).
    pub fn in_any(&self, names: &[String]) -> bool {
        names
            .iter()
            .any(|n| self.memberships.iter().any(|m| m.eq_ignore_ascii_case(n)))
    }

    pub fn is_global_admin(&self) -> bool {
        self.memberships.iter().any(|m| m == GLOBAL_ADMIN)
    }
}

/// Why the directory could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory `{path}` could not be read: {message}")]
    Read { path: String, message: String },
    #[error("directory `{path}` is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("directory `{path}` could not be written: {message}")]
    Write { path: String, message: String },
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("`{0}` is not a valid name; use letters, digits, `.`, `_` and `-`")]
    BadName(String),
    #[error("no randomness available to make a credential")]
    Random,
    #[error("the directory was not changed: {0}")]
    Refused(String),
    #[error("directory `{path}` could not be locked for writing: {message}")]
    Lock { path: String, message: String },
}

/// The person an account belongs to: its `person` key, else its email, else its name; trimmed
/// and lowercased, so `Bob@Contoso.com` and `bob@contoso.com ` are one person.
pub(crate) fn person_key(user: &User) -> String {
    let key = [user.person.as_deref(), user.email.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|k| !k.is_empty())
        .map_or_else(|| format!("account:{}", user.name), |k| k.to_owned());
    key.to_lowercase()
}

impl Directory {
    /// Read `path`; a missing file is an empty directory.
    pub fn load(path: &Path) -> Result<Directory, DirectoryError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Directory::default()),
            Err(e) => {
                return Err(DirectoryError::Read {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }
        };
        toml::from_str(&text).map_err(|e| DirectoryError::Parse {
            path: path.display().to_string(),
            message: e.message().to_owned(),
        })
    }

    /// Write atomically (temp file, fsync, rename) with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), DirectoryError> {
        let err = |e: &dyn fmt::Display| DirectoryError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let text = toml::to_string_pretty(self).map_err(|e| err(&e))?;
        write_private_atomic(path, text.as_bytes()).map_err(|e| err(&e))
    }

    /// Read-modify-write `path` under an exclusive lock held across processes: the file is read
    /// after the lock is taken, `change` runs on it, and the result is written atomically (temp
    /// file, fsync, rename) before the lock is released. Nothing `change` added is lost to a
    /// concurrent writer. The directory is saved only when `change` returns `Ok`.
    pub fn update<T, E: From<DirectoryError>>(
        path: &Path,
        change: impl FnOnce(&mut Directory) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = lock_exclusive(path)?;
        let mut dir = Directory::load(path)?;
        let out = change(&mut dir)?;
        dir.save(path)?;
        Ok(out)
    }

    /// Add a user with a new credential; returns the credential (shown once).
    pub fn add_user(
        &mut self,
        name: &str,
        email: Option<String>,
        groups: Vec<String>,
        roles: Vec<String>,
    ) -> Result<Credential, DirectoryError> {
        for n in std::iter::once(name)
            .chain(groups.iter().map(String::as_str))
            .chain(roles.iter().map(String::as_str))
        {
            if !valid_name(n) {
                return Err(DirectoryError::BadName(n.to_owned()));
            }
        }
        if self.users.iter().any(|u| u.name.eq_ignore_ascii_case(name)) {
            return Err(DirectoryError::Exists(name.to_owned()));
        }
        let credential = generate_credential()?;
        self.users.push(User {
            name: name.to_owned(),
            email,
            person: None,
            groups,
            roles,
            credential_sha256: hex(&sha256(credential.expose().as_bytes())),
        });
        Ok(credential)
    }

    /// Name the person behind account `name` (see [`person_key`]); `None` falls back to the
    /// email. Returns whether the account exists.
    pub fn set_person(&mut self, name: &str, person: Option<String>) -> bool {
        let person = person
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        match self
            .users
            .iter_mut()
            .find(|u| u.name.eq_ignore_ascii_case(name))
        {
            Some(user) => {
                user.person = person;
                true
            }
            None => false,
        }
    }

    /// The user presenting `credential`, compared by digest in constant time over all users.
    pub fn authenticate(&self, credential: &str) -> Option<Principal> {
        let presented = hex(&sha256(credential.as_bytes()));
        let mut found = None;
        for user in &self.users {
            if constant_time_eq(presented.as_bytes(), user.credential_sha256.as_bytes()) {
                found = Some(user);
            }
        }
        found.map(|u| self.principal(u))
    }

    /// A user by name (case-insensitive).
    pub fn user(&self, name: &str) -> Option<Principal> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .map(|u| self.principal(u))
    }

    /// Users who belong to any of `names`.
    pub fn members_of(&self, names: &[String]) -> Vec<Principal> {
        self.users
            .iter()
            .map(|u| self.principal(u))
            .filter(|p| p.in_any(names))
            .collect()
    }

    fn principal(&self, user: &User) -> Principal {
        let mut memberships: Vec<String> = user
            .groups
            .iter()
            .chain(user.roles.iter())
            .map(|g| g.to_ascii_lowercase())
            .collect();
        for (name, members) in self.groups.iter().chain(self.roles.iter()) {
            if members
                .members
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&user.name))
            {
                memberships.push(name.to_ascii_lowercase());
            }
        }
        memberships.sort();
        memberships.dedup();
        Principal {
            name: user.name.clone(),
            email: user.email.clone(),
            person: person_key(user),
            memberships,
        }
    }
}

/// Names of users, groups and roles: no spaces or punctuation that would confuse scopes
/// (`user:NAME`) or mail headers.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn generate_credential() -> Result<Credential, DirectoryError> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DirectoryError::Random)?;
    Ok(Credential(format!(
        "{CREDENTIAL_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )))
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal-length comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An exclusive `flock` on `.NAME.lock` beside `path`, released when the file is dropped.
fn lock_exclusive(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, DirectoryError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |e: &dyn fmt::Display| DirectoryError::Lock {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "directory".into());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(format!(".{name}.lock")))
        .map_err(|e| err(&e))?;
    // Blocks until other writers are done; each holds it for one read-modify-write.
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| err(&e))
}

/// Write `data` to `path` through a temp file in the same folder, fsync, mode 0600, rename.
pub(crate) fn write_private_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    crate::atomic_write::write(path, data, crate::atomic_write::Mode::Private)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn credential_authenticates_only_its_user_and_is_stored_as_digest() {
        let mut dir = Directory::default();
        let alice = dir
            .add_user("alice", None, vec!["exchange-admins".into()], vec![])
            .unwrap();
        let bob = dir.add_user("bob", None, vec![], vec![]).unwrap();
        assert!(alice.expose().starts_with(CREDENTIAL_PREFIX));
        assert_eq!(dir.authenticate(alice.expose()).unwrap().name, "alice");
        assert_eq!(dir.authenticate(bob.expose()).unwrap().name, "bob");
        assert!(dir.authenticate("jitsh_wrong").is_none());
        let text = toml::to_string(&dir).unwrap();
        assert!(!text.contains(alice.expose()));
        assert!(!format!("{alice:?}").contains(alice.expose()));
    }

    #[test]
    fn memberships_come_from_both_sides() {
        let mut dir: Directory = toml::from_str(
            "[groups.mbmanagers]\nmembers = [\"Bob\"]\n[roles.global-admin]\nmembers = [\"root\"]\n",
        )
        .unwrap();
        dir.add_user("bob", None, vec!["Helpdesk".into()], vec![])
            .unwrap();
        let bob = dir.user("bob").unwrap();
        assert!(bob.in_any(&["MBManagers".into()]));
        assert!(bob.in_any(&["helpdesk".into()]));
        assert!(!bob.is_global_admin());
        assert!(dir.add_user("BOB", None, vec![], vec![]).is_err());
        assert!(dir.add_user("bad name", None, vec![], vec![]).is_err());
    }

    #[test]
    fn accounts_of_one_person_share_a_person_key() {
        let dir: Directory = toml::from_str(
            r#"
[[user]]
name = "bob"
email = "Bob@Contoso.com"
credential_sha256 = "x"
[[user]]
name = "bob-admin"
email = " bob@contoso.com"
credential_sha256 = "y"
[[user]]
name = "robert"
person = "BOB@contoso.com"
credential_sha256 = "z"
[[user]]
name = "eve"
credential_sha256 = "w"
[[user]]
name = "mallory"
person = "eve"
email = "m@contoso.com"
credential_sha256 = "v"
"#,
        )
        .unwrap();
        let bob = dir.user("bob").unwrap();
        for other in ["bob-admin", "robert"] {
            assert!(bob.same_person(&dir.user(other).unwrap()), "{other}");
        }
        let eve = dir.user("eve").unwrap();
        assert_eq!(eve.person, "account:eve");
        assert!(!eve.same_person(&bob));
        // An explicit key names a person, never another account's name.
        assert!(!eve.same_person(&dir.user("mallory").unwrap()));
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("directory.toml");
        std::thread::scope(|s| {
            for i in 0..16 {
                let path = &path;
                s.spawn(move || {
                    Directory::update(path, |d| {
                        d.add_user(&format!("u{i}"), None, vec![], vec![])
                            .map(|_| ())
                    })
                    .unwrap();
                });
            }
        });
        assert_eq!(Directory::load(&path).unwrap().users.len(), 16);
    }
}
