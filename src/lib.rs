//! jitsh: zero standing privileges for administrators' shells.
//!
//! Layer 0 (pure: no I/O, no clock, time is passed in) lives in the `jitsh-core` crate and is
//! re-exported here under its usual paths: [`span`], [`syntax`], [`catalog`], [`resolve`],
//! [`rfc3339`], [`invocation`], [`policy`] (plus [`policy::load_dir`], the one adapter that reads a policy
//! folder), [`token`], [`gate`]. Also pure: [`text`] and the formats in [`audit`] and
//! [`asciicast`]. Layer 1/2 (I/O and runtimes): [`cli`], [`service`], [`shell`], [`net`], [`api`], [`atomic_write`], and
//! the transports in [`audit`].

pub use jitsh_core::{catalog, gate, invocation, resolve, rfc3339, span, syntax, token};

pub mod api;
pub mod asciicast;
pub mod atomic_write;
pub mod audit;
pub mod cli;
pub mod net;
pub mod purview;
pub mod service;
pub mod shell;
pub mod text;

/// Policies: the pure model, loading from text, evaluation and lint (`jitsh-core`), and
/// [`load_dir`](policy::load_dir), which reads a policy folder from disk.
pub mod policy {
    pub use jitsh_core::policy::*;

    mod fsload;
    pub use fsload::{load_dir, read_folder};
}
