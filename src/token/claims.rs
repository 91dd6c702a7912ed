//! The claims an approval token carries.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The payload of a jitsh approval token. Times are RFC 3339 strings on the wire.
///
/// Claims this version does not know are kept in [`Claims::extra`] so that a newer issuer's
/// tokens still verify and round-trip; nothing in `extra` widens what a token grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the approval service that signed the token.
    pub iss: String,
    /// Subject: the user the grant is for (the requester).
    pub sub: String,
    /// Token id, unique per token.
    pub jti: String,
    /// When the token was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub iat: OffsetDateTime,
    /// Not valid before this instant.
    #[serde(with = "time::serde::rfc3339")]
    pub nbf: OffsetDateTime,
    /// Not valid at or after this instant.
    #[serde(with = "time::serde::rfc3339")]
    pub exp: OffsetDateTime,
    /// The policy rule id the grant was approved under.
    pub rule: String,
    /// Granted task names (cmdlet names, as in the rule).
    pub tasks: Vec<String>,
    /// Optional parameter constraints, in the same form as a policy rule's `params` table; the
    /// gate interprets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// The approval request id.
    pub request: String,
    /// Who approved.
    pub approvers: Vec<String>,
    /// Counted grant: how many lines the token may cover (none: unlimited within its lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// Exact-command approval: the canonical invocation text the grant is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Audience: the gate or runspace the token is meant for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Claims this version does not interpret, preserved as received.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
