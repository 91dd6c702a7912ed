//! I/O adapter: the only file in `policy/` that touches the filesystem. Reads every `*.toml`
//! in a policy folder (sorted by file name) and hands the text to [`PolicySet::from_sources`].

use std::path::Path;

use crate::policy::{LoadError, LoadErrors};
use crate::policy::{PolicySet, PolicySource};

/// Loads the policy folder `dir`. A missing folder, a folder without `*.toml` files, an
/// unreadable file or a file anyone may write are refused: a gate must never run on a policy
/// it did not mean to load.
pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadErrors> {
    let shown = dir.display().to_string();
    let whole = |message: String| {
        LoadErrors::one(LoadError {
            file: shown.clone(),
            line: 0,
            col: 0,
            message,
        })
    };
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
        if world_writable(&meta) {
            errors.push(file_error(
                "policy file is writable by every user: remove write access for others (chmod o-w)"
                    .to_string(),
            ));
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
    if let Some(errors) = LoadErrors::new(errors) {
        return Err(errors);
    }
    if sources.is_empty() {
        return Err(whole(
            "policy folder has no `*.toml` files: refusing to run without policies".to_string(),
        ));
    }
    PolicySet::from_sources(&sources)
}

#[cfg(unix)]
fn world_writable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o002 != 0
}

#[cfg(not(unix))]
fn world_writable(_: &std::fs::Metadata) -> bool {
    false
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
