//! Writes refused for lack of space: how the audit log, the spool and recordings tell a full
//! disk (which passes) from other write failures (which leave a file's state unknown), what a
//! sink reports while it cannot write, and the switch that fakes a full disk for tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

/// Names a file; while it exists, audit log, spool and recording writes fail as on a full disk
/// (`ENOSPC`). For tests on hosts where a small filesystem cannot be mounted. It can only make
/// writes fail, and a failing write refuses every privileged action, so it opens nothing.
pub const FAULT_ENV: &str = "JITSH_FAULT_FULL_DISK";

/// `Err(ENOSPC)` while the [`FAULT_ENV`] file exists; called just before a real write.
pub fn injected() -> std::io::Result<()> {
    static FLAG: OnceLock<Option<PathBuf>> = OnceLock::new();
    let flag = FLAG.get_or_init(|| std::env::var_os(FAULT_ENV).map(PathBuf::from));
    match flag {
        Some(path) if Path::new(path).exists() => Err(std::io::Error::from_raw_os_error(
            nix::errno::Errno::ENOSPC as i32,
        )),
        _ => Ok(()),
    }
}

/// The filesystem refused the bytes for lack of space or quota: nothing ambiguous was left, so
/// cutting the file back to its last synced length restores a known state.
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// Why a sink cannot write now, for `/healthz` and the shell's refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    /// The folder whose filesystem must get space back.
    pub dir: String,
    /// RFC 3339 time of the first failed write.
    pub since: String,
    /// The write error.
    pub reason: String,
}

impl Unavailable {
    /// The operator's instruction.
    pub fn advice(&self) -> String {
        format!(
            "the audit log in `{}` cannot be written since {} ({}); free space on its \
             filesystem: writing resumes by itself, and until then every action is refused",
            self.dir, self.since, self.reason
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test failures are panics")]
mod tests {
    use super::*;

    #[test]
    fn only_space_and_quota_errors_are_out_of_space() {
        let full = std::io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32);
        let quota = std::io::Error::from_raw_os_error(nix::errno::Errno::EDQUOT as i32);
        let eio = std::io::Error::from_raw_os_error(nix::errno::Errno::EIO as i32);
        assert!(is_out_of_space(&full));
        assert!(is_out_of_space(&quota));
        assert!(!is_out_of_space(&eio));
    }
}
