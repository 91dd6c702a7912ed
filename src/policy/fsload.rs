//! I/O adapter: the only file in `policy/` that touches the filesystem, and the one reader of
//! policy folders for every command (gate, `check`, `policy`, the service at start and when it
//! changes a policy): [`read_folder`] reads every `*.toml` in a folder (sorted by file name) with
//! the same safety checks; [`load_dir`] hands the text to [`PolicySet::from_sources`].

use std::path::Path;

use crate::policy::{LoadError, LoadErrors};
use crate::policy::{PolicySet, PolicySource};

/// Loads the policy folder `dir`. A missing folder, a folder without `*.toml` files, an
/// unreadable file, or a folder or file anyone may write are refused: a gate must never run on
/// a policy it did not mean to load.
pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadErrors> {
    let sources = read_folder(dir)?;
    if sources.is_empty() {
        return Err(LoadErrors::one(LoadError {
            file: dir.display().to_string(),
            line: 0,
            col: 0,
            message: "policy folder has no `*.toml` files: refusing to run without policies"
                .to_string(),
        }));
    }
    PolicySet::from_sources(&sources)
}

/// The `*.toml` sources of the policy folder `dir`, sorted by file name, each named by its
/// path. Refused, with every problem listed: an unreadable folder or file, a file that is not
/// a regular file, and a folder or file writable by every user (anyone could add or change a
/// rule).
pub fn read_folder(dir: &Path) -> Result<Vec<PolicySource>, LoadErrors> {
    let shown = dir.display().to_string();
    let whole = |message: String| {
        LoadErrors::one(LoadError {
            file: shown.clone(),
            line: 0,
            col: 0,
            message,
        })
    };
    let folder = std::fs::metadata(dir)
        .map_err(|e| whole(format!("cannot read policy folder: {}", io_message(&e))))?;
    if let Some(problem) = unsafe_to_trust(&folder, "policy folder") {
        return Err(whole(problem));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| whole(format!("cannot read policy folder: {}", io_message(&e))))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| whole(format!("cannot read policy folder: {}", io_message(&e))))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();

    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let file_error = |message: String| LoadError {
            file: name.clone(),
            line: 0,
            col: 0,
            message,
        };
        // Follows symlinks (policy folders are often mounted as links); the target must be a
        // regular file.
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                errors.push(file_error(format!(
                    "cannot read policy file: {}",
                    io_message(&e)
                )));
                continue;
            }
        };
        if !meta.is_file() {
            // A directory named `x.toml` is not a policy file; say so rather than skip it.
            errors.push(file_error("not a regular file".to_string()));
            continue;
        }
        if let Some(problem) = unsafe_to_trust(&meta, "policy file") {
            errors.push(file_error(problem));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(PolicySource { name, text }),
            Err(e) => errors.push(file_error(format!(
                "cannot read policy file: {}",
                io_message(&e)
            ))),
        }
    }
    match LoadErrors::new(errors) {
        Some(errors) => Err(errors),
        None => Ok(sources),
    }
}

/// Why `what` could be changed by anyone at all, if it could: writable by every user. (Its
/// owner is not checked: a policy folder is meant to belong to someone other than the people it
/// governs, an account this process cannot name.)
#[cfg(unix)]
fn unsafe_to_trust(meta: &std::fs::Metadata, what: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    (meta.mode() & 0o002 != 0).then(|| {
        format!("{what} is writable by every user: remove write access for others (chmod o-w)")
    })
}

#[cfg(not(unix))]
fn unsafe_to_trust(_: &std::fs::Metadata, _: &str) -> Option<String> {
    None
}

/// The OS error in lowercase without Rust's " (os error N)" suffix.
fn io_message(e: &std::io::Error) -> String {
    let m = e.to_string();
    let m = m.split(" (os error").next().unwrap_or(&m).to_string();
    let mut chars = m.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => m,
    }
}
