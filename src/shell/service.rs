//! The few approval-service calls a shell session makes (REST, bearer credential).

use std::collections::HashSet;

use reqwest::Method;

use super::meta::RequestSpec;
use super::ShellError;
use crate::api::{ApiClient, CallError, Timeouts};

/// A connection to the approval service, through the one API client.
#[derive(Debug)]
pub struct Service {
    client: ApiClient,
}

impl Service {
    pub fn new(base: &str, credential: Option<String>) -> Result<Service, ShellError> {
        let client = ApiClient::new(base, credential, Timeouts::SHELL)
            .map_err(|e| ShellError::Service(e.to_string()))?;
        Ok(Service { client })
    }

    /// A call whose failure the session shows as one sentence.
    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ShellError> {
        self.client
            .call(method, path, body)
            .await
            .map_err(|e| ShellError::Service(refusal_text(&e)))
    }

    /// One call to the service's REST API: the answer's JSON, or the service's error code and
    /// message (`unreachable` when it did not answer).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ApiFailure> {
        self.client
            .call(method, path, body.as_ref())
            .await
            .map_err(ApiFailure::from)
    }

    /// `PUT` a text body (a policy file) and return the answer.
    pub async fn put_text(
        &self,
        path: &str,
        text: String,
    ) -> Result<serde_json::Value, ApiFailure> {
        self.client
            .put_text(path, text)
            .await
            .map_err(ApiFailure::from)
    }

    pub async fn create_request(&self, spec: &RequestSpec) -> Result<String, ShellError> {
        let params: serde_json::Map<String, serde_json::Value> = spec
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect();
        let mut body = serde_json::json!({
            "task": spec.task, "reason": spec.reason, "duration": spec.duration,
        });
        if !params.is_empty() {
            body["params"] = serde_json::Value::Object(params);
        }
        let v = self.json(Method::POST, "/v1/requests", Some(&body)).await?;
        v.get("id")
            .and_then(|id| {
                id.as_str()
                    .map(str::to_string)
                    .or_else(|| Some(id.to_string()))
            })
            .ok_or_else(|| ShellError::Service("the service did not return a request id".into()))
    }

    pub async fn request_status(&self, id: &str) -> Result<String, ShellError> {
        let v = self
            .json(
                Method::GET,
                &format!("/v1/requests/{}", url_segment(id)),
                None,
            )
            .await?;
        Ok(v.get("status")
            .or_else(|| v.get("state"))
            .and_then(|s| s.as_str())
            .unwrap_or("unknown")
            .to_ascii_lowercase())
    }

    /// The token of an approved request, or `None` when there is none (yet).
    pub async fn fetch_token(&self, id: &str) -> Result<Option<String>, ShellError> {
        match self
            .json(
                Method::GET,
                &format!("/v1/requests/{}/token", url_segment(id)),
                None,
            )
            .await
        {
            Ok(v) => Ok(v.get("token").and_then(|t| t.as_str()).map(str::to_string)),
            Err(_) => Ok(None),
        }
    }

    /// Confirm a grant at the moment it is used: the service checks that it is live (not
    /// revoked, expired or locked), that it belongs to this credential's user, and spends one
    /// use of a counted grant. Only [`Confirm::Confirmed`] lets the line run on it.
    pub async fn use_grant(&self, jti: &str) -> Confirm {
        let path = format!("/v1/grants/{}/use", url_segment(jti));
        match self.client.call(Method::POST, &path, None).await {
            Ok(_) => Confirm::Confirmed,
            Err(CallError::Unreachable { message, .. }) => Confirm::Unreachable(message),
            Err(e) if e.is_server_error() => Confirm::Unreachable(e.to_string()),
            Err(e) => Confirm::Refused(format!("the approval service refused token `{jti}`: {e}")),
        }
    }

    /// The user the credential authenticates as (`GET /v1/me`): `Refused` when the service
    /// answers but does not accept the credential, `Unreachable` when it does not answer.
    pub async fn me(&self) -> Result<String, Confirm> {
        let body = match self.client.call(Method::GET, "/v1/me", None).await {
            Ok(body) => body,
            Err(CallError::Unreachable { message, .. }) => {
                return Err(Confirm::Unreachable(message))
            }
            Err(e) if e.is_server_error() => return Err(Confirm::Unreachable(e.to_string())),
            Err(e @ CallError::Unauthorized) => return Err(Confirm::Refused(e.to_string())),
            Err(e) => {
                return Err(Confirm::Refused(format!(
                "the approval service does not accept the credential ({e}); check JITSH_CREDENTIAL"
            )))
            }
        };
        body.get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Confirm::Unreachable("the service did not say who the credential is".into())
            })
    }

    /// Revoked token ids. Accepts a JSON array, or an object with a `jtis` / `revoked` /
    /// `revocations` array (of strings or of objects with `jti`).
    pub async fn revocations(&self) -> Result<HashSet<String>, ShellError> {
        let v = self.json(Method::GET, "/v1/revocations", None).await?;
        let list = match &v {
            serde_json::Value::Array(a) => Some(a),
            serde_json::Value::Object(o) => ["jtis", "revoked", "revocations"]
                .iter()
                .find_map(|k| o.get(*k).and_then(|x| x.as_array())),
            _ => None,
        }
        .ok_or_else(|| ShellError::Service("the revocation list is not in a known form".into()))?;
        Ok(list
            .iter()
            .filter_map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .or_else(|| x.get("jti").and_then(|j| j.as_str()).map(str::to_string))
            })
            .collect())
    }
}

/// Why a service call failed: the service's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub code: String,
    pub message: String,
}

impl From<CallError> for ApiFailure {
    fn from(e: CallError) -> ApiFailure {
        let message = match &e {
            CallError::Unreachable { message, .. } => {
                format!("the approval service could not be reached ({message})")
            }
            e => e.to_string(),
        };
        ApiFailure {
            code: e.code().to_owned(),
            message,
        }
    }
}

/// What the service said about a grant at use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Confirmed,
    /// The service answered no (revoked, used up, locked, another user's, ...).
    Refused(String),
    /// No answer: the gate is offline for this line.
    Unreachable(String),
}

pub(crate) use crate::api::segment as url_segment;

/// Decide a line with every token it leans on confirmed at the service before it may run.
/// `decide(refused, online)` is the pure gate decision without the tokens in `refused`; a token
/// the service refuses is dropped and the line decided again; when the service cannot be
/// reached the line is decided offline (only tokens whose rule allows offline use count).
pub(crate) async fn decide_confirmed(
    service: &Service,
    tokens: &[crate::token::VerifiedToken],
    decide: impl Fn(&HashSet<String>, bool) -> crate::gate::LineDecision,
) -> crate::gate::LineDecision {
    let mut refused: HashSet<String> = HashSet::new();
    let mut notes: Vec<String> = Vec::new();
    // Each round drops at least one token, so this ends after at most one round per token.
    for _ in 0..=tokens.len() {
        let mut decision = decide(&refused, true);
        if decision.decision != crate::policy::Effect::Allow {
            add_notes(&mut decision, &notes);
            return decision;
        }
        let mut dropped = false;
        for (jti, _) in crate::gate::grants_used(&decision, tokens) {
            match service.use_grant(&jti).await {
                Confirm::Confirmed => {}
                Confirm::Refused(why) => {
                    notes.push(why);
                    refused.insert(jti);
                    dropped = true;
                    break;
                }
                Confirm::Unreachable(why) => {
                    let mut offline = decide(&refused, false);
                    notes.push(format!(
                        "the approval service could not be reached to confirm token `{jti}` ({why})"
                    ));
                    add_notes(&mut offline, &notes);
                    return offline;
                }
            }
        }
        if !dropped {
            return decision;
        }
    }
    let mut last = decide(&refused, false);
    last.decision = last.decision.max(crate::policy::Effect::Approval);
    add_notes(&mut last, &notes);
    last
}

fn add_notes(decision: &mut crate::gate::LineDecision, notes: &[String]) {
    if !notes.is_empty() && decision.decision != crate::policy::Effect::Allow {
        decision.reason = format!("{}; {}", notes.join("; "), decision.reason).into();
    }
}

/// A failed call as the session shows it: the service's `message`, not its machine `error`
/// code (`duration_too_long`); an unknown credential names where the credential comes from;
/// no answer says why, without the URL (the user knows it).
fn refusal_text(e: &CallError) -> String {
    match e {
        CallError::Unreachable { message, .. } => message.clone(),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences_not_codes() {
        let refused = CallError::Refused {
            status: 422,
            code: "duration_too_long".into(),
            message: "the rule allows at most 4h; ask for less".into(),
        };
        assert_eq!(
            refusal_text(&refused),
            "the rule allows at most 4h; ask for less"
        );
        let failure = ApiFailure::from(refused);
        assert_eq!(failure.code, "duration_too_long");
        let text = refusal_text(&CallError::Unauthorized);
        assert!(
            text.contains("JITSH_CREDENTIAL") && !text.contains("Bearer"),
            "{text}"
        );
        let unreachable = CallError::Unreachable {
            server: "http://127.0.0.1:1".into(),
            message: "connection refused".into(),
        };
        assert_eq!(refusal_text(&unreachable), "connection refused");
        let failure = ApiFailure::from(unreachable);
        assert_eq!(failure.code, "unreachable");
        assert!(
            failure.message.contains("could not be reached"),
            "{failure:?}"
        );
    }
}
