//! jitsh's pure core (layer 0): no I/O, no clock; time is passed in.
//!
//! - [`span`]: byte ranges of source text.
//! - [`syntax`]: the PowerShell subset parser and printer.
//! - [`catalog`]: cmdlet metadata (embedded), aliases and names.
//! - [`resolve`]: what each command of a parsed line invokes, with bound parameters.
//! - [`invocation`]: one resolved command invocation, the input to policies.
//! - [`policy`]: policy files from text, validation, evaluation, index and lint.
//! - [`token`]: PASETO approval tokens: claims, keys from text, signing, verification.
//! - [`gate`]: the decision for a whole line from the above.
//!
//! `tests/layering.rs` keeps it so: it fails on any use of files, sockets, processes, the
//! environment, standard streams, threads or the clock in this crate's source, and on any
//! dependency outside a short allowlist.

pub mod catalog;
pub mod gate;
pub mod invocation;
pub mod policy;
pub mod resolve;
pub mod rfc3339;
pub mod span;
pub mod syntax;
pub mod token;
