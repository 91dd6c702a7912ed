//! Reading log files for review: verification, and record streams for search and export.
//!
//! Files are streamed line by line (a log may be far larger than memory); a directory stands
//! for its `audit-NNNNNN.jsonl` files in order.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::audit::chain::{self, Finding, Location, Record, Summary, Verifier, VerifyOptions};
use crate::audit::keys::AuditVerifyKey;

/// Why log files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read audit log `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("directory `{0}` holds no audit-NNNNNN.jsonl files")]
    NoFiles(String),
}

/// Replace each directory by its log files, oldest first; keep files as given.
pub(crate) fn expand_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let files = crate::audit::log::log_files(input).map_err(|e| ReadError::Io {
                path: input.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
            if files.is_empty() {
                return Err(ReadError::NoFiles(input.display().to_string()));
            }
            out.extend(files);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

/// Verify the chain and checkpoints across `paths` in order. The outer error is I/O; the inner
/// result is the verdict.
pub fn verify_paths(
    paths: &[PathBuf],
    keys: &[AuditVerifyKey],
    options: VerifyOptions,
) -> Result<Result<Summary, Finding>, ReadError> {
    let mut verifier = Verifier::new(keys, options);
    for path in paths {
        let verdict = for_each_line(path, |at, line, terminated| {
            verifier.push(at, line, terminated)
        })?;
        if let Err(finding) = verdict {
            return Ok(Err(finding));
        }
    }
    Ok(verifier.finish())
}

/// Every record across `paths`, in order, with its location. Lines that are not valid records
/// (torn, altered) are passed as `Err` so the caller decides; review tools warn and skip.
pub fn for_each_record(
    paths: &[PathBuf],
    mut f: impl FnMut(Location, Result<Record, chain::ChainError>),
) -> Result<(), ReadError> {
    for path in paths {
        let _always_ok: Result<(), std::convert::Infallible> =
            for_each_line(path, |at, line, _| {
                f(at, chain::decode(line).map(|(r, _)| r));
                Ok(())
            })?;
    }
    Ok(())
}

/// Call `f` with each line of `path` (without its newline); stop at the first `Err`.
fn for_each_line<E>(
    path: &Path,
    mut f: impl FnMut(Location, &[u8], bool) -> Result<(), E>,
) -> Result<Result<(), E>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let file_name = path.display().to_string();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            return Ok(Ok(()));
        }
        line_no += 1;
        let terminated = buf.last() == Some(&b'\n');
        let line = if terminated {
            buf.get(..buf.len() - 1).unwrap_or_default()
        } else {
            &buf[..]
        };
        let at = Location {
            file: file_name.clone(),
            line: line_no,
        };
        if let Err(e) = f(at, line, terminated) {
            return Ok(Err(e));
        }
    }
}
