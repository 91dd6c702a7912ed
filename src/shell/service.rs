//! The few approval-service calls a shell session makes (REST, bearer credential).

use std::collections::HashSet;
use std::time::Duration;

use super::meta::RequestSpec;
use super::ShellError;

/// How long one service call may take before the session treats the service as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection to the approval service.
pub struct Service {
    base: String,
    credential: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Service {
    // The credential is a secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(base: &str, credential: Option<String>) -> Result<Service, ShellError> {
        let http = crate::net::client_for(base, CALL_TIMEOUT, CALL_TIMEOUT)
            .map_err(|e| ShellError::Service(e.to_string()))?;
        Ok(Service {
            base: base.trim_end_matches('/').to_string(),
            credential,
            http,
        })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.auth(self.http.get(format!("{}{path}", self.base)))
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credential {
            Some(c) => rb.bearer_auth(c),
            None => rb,
        }
    }

    async fn json(&self, rb: reqwest::RequestBuilder) -> Result<serde_json::Value, ShellError> {
        let resp = rb
            .send()
            .await
            .map_err(|e| ShellError::Service(short(&e)))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            return Err(ShellError::Service(refusal_text(status, &body)));
        }
        Ok(body)
    }

    /// One call to the service's REST API: the answer's JSON, or the service's error code and
    /// message (`unreachable` when it did not answer).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ApiFailure> {
        let mut rb = self.auth(self.http.request(method, format!("{}{path}", self.base)));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.answer(rb).await
    }

    async fn answer(&self, rb: reqwest::RequestBuilder) -> Result<serde_json::Value, ApiFailure> {
        let resp = rb.send().await.map_err(|e| ApiFailure {
            code: "unreachable".into(),
            message: format!("the approval service could not be reached ({})", short(&e)),
        })?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(ApiFailure {
            code: body
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("http_error")
                .to_string(),
            message: body
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("the approval service answered {status}")),
        })
    }

    /// `PUT` a text body (a policy file) and return the answer.
    pub async fn put_text(
        &self,
        path: &str,
        text: String,
    ) -> Result<serde_json::Value, ApiFailure> {
        let rb = self
            .auth(self.http.put(format!("{}{path}", self.base)))
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(text);
        self.answer(rb).await
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
        let rb = self
            .auth(self.http.post(format!("{}/v1/requests", self.base)))
            .json(&body);
        let v = self.json(rb).await?;
        v.get("id")
            .and_then(|id| {
                id.as_str()
                    .map(str::to_string)
                    .or_else(|| Some(id.to_string()))
            })
            .ok_or_else(|| ShellError::Service("the service did not return a request id".into()))
    }

    pub async fn request_status(&self, id: &str) -> Result<String, ShellError> {
        let v = self.json(self.get(&format!("/v1/requests/{id}"))).await?;
        Ok(v.get("status")
            .or_else(|| v.get("state"))
            .and_then(|s| s.as_str())
            .unwrap_or("unknown")
            .to_ascii_lowercase())
    }

    /// The token of an approved request, or `None` when there is none (yet).
    pub async fn fetch_token(&self, id: &str) -> Result<Option<String>, ShellError> {
        match self
            .json(self.get(&format!("/v1/requests/{id}/token")))
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
        let url = format!("{}/v1/grants/{}/use", self.base, url_segment(jti));
        let mut req = self.http.post(&url);
        if let Some(c) = &self.credential {
            req = req.bearer_auth(c);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Confirm::Unreachable(short(&e)),
        };
        let status = resp.status();
        if status.is_success() {
            return Confirm::Confirmed;
        }
        if status.is_server_error() {
            return Confirm::Unreachable(format!("the service answered {status}"));
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let msg = body
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("refused")
            .to_string();
        Confirm::Refused(format!("the approval service refused token `{jti}`: {msg}"))
    }

    /// The user the credential authenticates as (`GET /v1/me`): `Refused` when the service
    /// answers but does not accept the credential, `Unreachable` when it does not answer.
    pub async fn me(&self) -> Result<String, Confirm> {
        let resp = self
            .get("/v1/me")
            .send()
            .await
            .map_err(|e| Confirm::Unreachable(short(&e)))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(Confirm::Unreachable(format!(
                "the service answered {status}"
            )));
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Confirm::Refused(format!(
                "the approval service does not accept the credential ({status}); check JITSH_CREDENTIAL"
            )));
        }
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
        let v = self.json(self.get("/v1/revocations")).await?;
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

/// What the service said about a grant at use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Confirmed,
    /// The service answered no (revoked, used up, locked, another user's, ...).
    Refused(String),
    /// No answer: the gate is offline for this line.
    Unreachable(String),
}

/// Token ids are base64url; anything else is percent-encoded so it stays one path segment.
pub(crate) fn url_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

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
        decision.reason = format!("{}; {}", notes.join("; "), decision.reason);
    }
}

/// reqwest errors as a person can act on them, without the URL (it may carry a path the user
/// already knows).
fn short(e: &reqwest::Error) -> String {
    crate::net::describe(e)
}

/// A refusal from the service as a sentence: its `message`, not its machine `error` code
/// (`duration_too_long`); an unknown credential names where the credential comes from.
fn refusal_text(status: reqwest::StatusCode, body: &serde_json::Value) -> String {
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return crate::net::UNKNOWN_CREDENTIAL.to_owned();
    }
    let text = |key: &str| {
        body.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    text("message")
        .or_else(|| text("error"))
        .unwrap_or_else(|| format!("the service answered {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences_not_codes() {
        let body = serde_json::json!({
            "error": "duration_too_long",
            "message": "the rule allows at most 4h; ask for less"
        });
        let text = refusal_text(reqwest::StatusCode::BAD_REQUEST, &body);
        assert_eq!(text, "the rule allows at most 4h; ask for less");
        let text = refusal_text(reqwest::StatusCode::UNAUTHORIZED, &body);
        assert!(
            text.contains("JITSH_CREDENTIAL") && !text.contains("Bearer"),
            "{text}"
        );
        let text = refusal_text(reqwest::StatusCode::BAD_GATEWAY, &serde_json::Value::Null);
        assert!(text.contains("502"), "{text}");
    }
}
