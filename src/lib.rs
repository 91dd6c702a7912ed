//! jitsh: zero standing privileges for administrators' shells.
//!
//! Layer 0 (pure: no I/O, no clock, time is passed in): [`span`], [`syntax`], [`catalog`],
//! [`resolve`], [`rfc3339`], [`invocation`], [`policy`], [`token`], [`gate`], [`text`], and the formats in
//! [`audit`] and [`asciicast`]. Layer 1/2 (I/O and runtimes): [`cli`], [`service`], [`shell`],
//! [`net`], [`api`], [`atomic_write`], [`exsim`].

pub mod api;
pub mod asciicast;
pub mod atomic_write;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod exsim;
pub mod gate;
pub mod invocation;
pub mod net;
pub mod policy;
pub mod purview;
pub mod resolve;
pub mod rfc3339;
pub mod service;
pub mod shell;
pub mod span;
pub mod syntax;
pub mod text;
pub mod token;
