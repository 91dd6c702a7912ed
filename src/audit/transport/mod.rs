//! Transports: how audit records leave this machine. The record formats ([`super::chain`],
//! [`super::export`]) and local storage ([`super::log`], [`super::spool`], [`super::anchor`])
//! know nothing of sockets or HTTP; these modules know nothing of how records are chained.
//!
//! - [`syslog`]: records to a syslog collector (RFC 5424 over TCP or UDP), spooled, with a
//!   delivery cursor (`jitsh audit forward`).
//! - [`witness`]: every checkpoint the log syncs, also to a syslog collector (the log's
//!   off-host witness).
//! - [`http`]: a gate's spooled events to the approval service (`POST /v1/audit/events`).

pub mod http;
pub mod syslog;
pub(crate) mod witness;
