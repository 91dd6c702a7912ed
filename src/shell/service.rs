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

    /// Spend one use of a counted grant; an error (exhausted, revoked, locked, unreachable)
    /// means the line must not run.
    pub async fn use_grant(&self, jti: &str) -> Result<(), ShellError> {
        let url = format!("{}/v1/grants/{jti}/use", self.base);
        let mut req = self.http.post(&url);
        if let Some(c) = &self.credential {
            req = req.bearer_auth(c);
        }
        let resp = req.send().await.map_err(|e| {
            ShellError::Service(format!(
                "could not count a use of grant `{jti}`: {}",
                short(&e)
            ))
        })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        Err(ShellError::Service(format!(
            "grant `{jti}` could not be used: {}",
            refusal_text(status, &body)
        )))
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
