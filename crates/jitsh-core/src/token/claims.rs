//! The claims an approval token carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::ParamConstraints;

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
    #[serde(with = "crate::rfc3339::serde")]
    pub iat: DateTime<Utc>,
    /// Not valid before this instant.
    #[serde(with = "crate::rfc3339::serde")]
    pub nbf: DateTime<Utc>,
    /// Not valid at or after this instant.
    #[serde(with = "crate::rfc3339::serde")]
    pub exp: DateTime<Utc>,
    /// The policy rule id the grant was approved under.
    pub rule: String,
    /// Granted task names (cmdlet names, as in the rule).
    pub tasks: Vec<String>,
    /// Optional parameter scope, in the same form as a policy rule's `params` table on the
    /// wire. Typed: it is parsed and its patterns compiled once, when the token is verified, and
    /// a token whose scope does not parse is refused then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<ParamConstraints>,
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
    /// Offline use: for how many seconds after `iat` a gate that cannot reach the approval
    /// service may still honour the token, copied from the rule's `offline` at issue time. None:
    /// never without the service. (jitsh tokens carry no `aud`: a token is bound to the service
    /// by its signing key and to its user by `sub`, and a gate refuses a token that names an
    /// audience, since it enforces none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<u64>,
    /// Claims this version does not interpret, preserved as received.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
