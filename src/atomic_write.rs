//! The one way jitsh writes a file whole (keys, tokens, credentials, policy files, cursors, the
//! user directory): a fresh temporary file in the same folder, written and fsynced, renamed over
//! the target, then the folder fsynced. A reader, or a crash at any point, sees the old content
//! or the new, never a mix, an empty file, or a secret with loose permissions.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The permissions the written file gets. Set on the open file before it is renamed into place,
/// so the process umask never loosens or narrows them and no other mode is ever visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0600: keys, tokens, credentials, state.
    Private,
    /// 0644: public keys, markers.
    Public,
    /// The permissions of the file being replaced; this mode for a new file.
    KeepOr(u32),
}

/// Replace (or create) `path` with `data`.
pub fn write(path: &Path, data: &[u8], mode: Mode) -> io::Result<()> {
    stage(path, data, mode)?.commit()
}

/// Create `path` with `data`; fails with [`io::ErrorKind::AlreadyExists`] if it exists, even
/// when another process creates it at the same moment (the file is linked into place, which
/// never replaces).
pub fn write_new(path: &Path, data: &[u8], mode: Mode) -> io::Result<()> {
    stage(path, data, mode)?.commit_new()
}

/// Remove `path` and fsync its folder, so the removal survives a crash like a write does.
pub fn remove(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)?;
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => sync_dir(d),
        _ => sync_dir(Path::new(".")),
    }
}

/// New content written and fsynced beside its target but not yet in place: a caller that must
/// do something first (record an audit event) commits after, and dropping it leaves the target
/// untouched and removes the temporary file.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    done: bool,
}

/// Write `data` to a fresh temporary file beside `path`, with its final permissions, fsynced.
pub fn stage(path: &Path, data: &[u8], mode: Mode) -> io::Result<Staged> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let bits = match mode {
        Mode::Private => 0o600,
        Mode::Public => 0o644,
        Mode::KeepOr(default) => match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(e) if e.kind() == io::ErrorKind::NotFound => default,
            Err(e) => return Err(e),
        },
    };
    let (tmp, mut file) = create_temp(&dir, &name)?;
    let staged = Staged {
        tmp,
        path: path.to_path_buf(),
        dir,
        done: false,
    };
    file.set_permissions(Permissions::from_mode(bits))?;
    file.write_all(data)?;
    file.sync_all()?;
    Ok(staged)
}

impl Staged {
    /// Rename over the target, then fsync the folder so the rename itself survives a crash.
    pub fn commit(mut self) -> io::Result<()> {
        std::fs::rename(&self.tmp, &self.path)?;
        self.done = true;
        sync_dir(&self.dir)
    }

    /// Link into place only if the target does not exist, then fsync the folder.
    pub fn commit_new(self) -> io::Result<()> {
        std::fs::hard_link(&self.tmp, &self.path)?;
        // `self` drops here and removes the temporary name; the content stays under `path`.
        let dir = self.dir.clone();
        drop(self);
        sync_dir(&dir)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Numbers temporary names within this process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A temporary file created exclusively (never following a planted link) under a name unique
/// to this process and call: `.NAME.PID.N.tmp`.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..32 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            // Left by a crashed process with the same id, or planted: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary file name was free")))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        write(&path, b"old", Mode::Public).unwrap();
        write(&path, b"new content", Mode::Public).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new content");
        assert_eq!(names(dir.path()), ["a.toml"]);
    }

    #[test]
    fn secrets_are_0600_whatever_the_old_file_or_the_umask_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o666)).unwrap();
        write(&path, b"secret", Mode::Private).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let fresh = dir.path().join("token");
        write(&fresh, b"secret", Mode::Private).unwrap();
        assert_eq!(mode_of(&fresh), 0o600);
        write(&dir.path().join("signing.pub"), b"pub", Mode::Public).unwrap();
        assert_eq!(mode_of(&dir.path().join("signing.pub")), 0o644);
    }

    #[test]
    fn keep_preserves_the_replaced_files_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write(&path, b"new", Mode::KeepOr(0o644)).unwrap();
        assert_eq!(mode_of(&path), 0o640);
        let fresh = dir.path().join("q.toml");
        write(&fresh, b"new", Mode::KeepOr(0o644)).unwrap();
        assert_eq!(mode_of(&fresh), 0o644);
    }

    #[test]
    fn a_staged_write_is_invisible_until_committed_and_dropping_it_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        write(&path, b"old", Mode::Public).unwrap();
        let staged = stage(&path, b"new", Mode::Public).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        drop(staged);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["p.toml"]);
        let staged = stage(&path, b"new", Mode::Public).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        staged.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["p.toml"]);
    }

    #[test]
    fn write_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        write_new(&path, b"first", Mode::Private).unwrap();
        let err = write_new(&path, b"second", Mode::Private).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(names(dir.path()), ["signing.key"]);
    }

    #[test]
    fn links_planted_at_the_target_or_a_temporary_name_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        // At the target: the link itself is replaced, its target is not written.
        let path = dir.path().join("token");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write(&path, b"secret", Mode::Private).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        // At the next temporary names: skipped, never followed.
        let pid = std::process::id();
        let start = NEXT.load(Ordering::Relaxed);
        for n in start..start + 8 {
            let planted = dir.path().join(format!(".key.{pid}.{n}.tmp"));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        write(&dir.path().join("key"), b"secret", Mode::Private).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::read(dir.path().join("key")).unwrap(), b"secret");
    }

    #[test]
    fn a_concurrent_reader_sees_the_old_or_the_new_content_never_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let a = vec![b'a'; 1 << 20];
        let b = vec![b'b'; 1 << 20];
        write(&path, &a, Mode::Private).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (path, stop) = (path.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let seen = std::fs::read(&path).unwrap();
                    assert_eq!(seen.len(), 1 << 20, "a partial file was visible");
                    let first = seen[0];
                    assert!(seen.iter().all(|&c| c == first), "a mixed file was visible");
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..40 {
            write(&path, if i % 2 == 0 { &b } else { &a }, Mode::Private).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(names(dir.path()), ["big"]);
    }
}
