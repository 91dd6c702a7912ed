//! Session recordings named by the audit log: each `session.end` record carries the
//! recording's path (`details.recording`) and the SHA-256 of its bytes when the session ended
//! (`details.recording_sha256`). `jitsh audit verify` checks every one; `jitsh replay` checks the
//! one it plays.

use std::path::{Path, PathBuf};

use crate::audit::chain::{hex, Finding, FindingKind, Location};
use crate::audit::read::{for_each_record, ReadError};

/// A recording the log vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    pub seq: u64,
    pub at: Location,
    pub recording: PathBuf,
    pub sha256: String,
}

/// Every recording named with its hash by a `session.end` record in `paths`.
pub(crate) fn vouched(paths: &[PathBuf]) -> Result<Vec<Vouched>, ReadError> {
    let mut out = Vec::new();
    for_each_record(paths, |at, r| {
        let Ok(r) = r else { return };
        if r.action != "session.end" {
            return;
        }
        if let (Some(rec), Some(sha)) =
            (r.detail_str("recording"), r.detail_str("recording_sha256"))
        {
            out.push(Vouched {
                seq: r.seq,
                at,
                recording: PathBuf::from(rec),
                sha256: sha.to_owned(),
            });
        }
    })?;
    Ok(out)
}

/// Where to look for a recording: as recorded, or by its file name in `dir`.
pub(crate) fn locate(recording: &Path, dir: Option<&Path>) -> PathBuf {
    match (dir, recording.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => recording.to_path_buf(),
    }
}

/// SHA-256 (hex) of a file's bytes.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(ctx.finish().as_ref()))
}

/// Check one vouched recording: `None` when it is there and unchanged.
pub fn check(v: &Vouched, dir: Option<&Path>) -> Option<Finding> {
    let path = locate(&v.recording, dir);
    let finding = |reason: String| Finding {
        at: v.at.clone(),
        seq: Some(v.seq),
        kind: FindingKind::Recording,
        reason,
    };
    match sha256_file(&path) {
        Ok(sha) if sha == v.sha256 => None,
        Ok(sha) => Some(finding(format!(
            "recording `{}` does not match the hash recorded when its session ended ({} there, \
             {sha} now): it was changed afterwards",
            path.display(),
            v.sha256
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(finding(format!(
            "recording `{}` named by this session.end is missing (pass --recordings DIR if \
             recordings were moved)",
            path.display()
        ))),
        Err(e) => Some(finding(format!(
            "recording `{}` could not be read: {e}",
            path.display()
        ))),
    }
}

/// The `session.end` that vouches for `recording` (matched by file name), if any.
pub(crate) fn vouching_for(
    paths: &[PathBuf],
    recording: &Path,
) -> Result<Option<Vouched>, ReadError> {
    let name = recording.file_name();
    Ok(vouched(paths)?
        .into_iter()
        .rev()
        .find(|v| v.recording.file_name() == name))
}
