//! The one client of the approval service's REST API, used by the CLI commands, the shell
//! (`:request`, the Purview cmdlets, token pickup, grant confirmation) and the audit spool's
//! forwarder: base URL, bearer credential, TLS and clear-text rules ([`crate::net`]), timeouts,
//! and the service's JSON errors decoded into one [`CallError`] a person can act on.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// How long a call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole call, answer included.
    pub call: Duration,
    /// Connecting (TCP and TLS).
    pub connect: Duration,
}

impl Timeouts {
    /// A command a person waits for (`jitsh request`, `approve`, `token fetch`, ...).
    pub const COMMAND: Timeouts = Timeouts {
        call: Duration::from_secs(30),
        connect: Duration::from_secs(10),
    };
    /// A call inside the shell, between a typed line and its run: the service is treated as
    /// unreachable soon rather than holding the prompt.
    pub const SHELL: Timeouts = Timeouts {
        call: Duration::from_secs(3),
        connect: Duration::from_secs(3),
    };
}

/// Why a call got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No client could be made (a bad or clear-text URL, a bad CA file, a malformed credential).
    #[error("{0}")]
    Setup(String),
    /// The service did not answer (refused, unknown host, TLS failure, timeout).
    #[error("the approval service at `{server}` could not be reached: {message}")]
    Unreachable { server: String, message: String },
    /// The service does not accept the credential (HTTP 401).
    #[error("{}", crate::net::UNKNOWN_CREDENTIAL)]
    Unauthorized,
    /// The service answered with an error: its `error` code and `message` sentence.
    #[error("{message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// A successful answer that is not what the call expects.
    #[error("the approval service at `{server}` gave an answer that cannot be used: {message}")]
    BadAnswer { server: String, message: String },
}

impl CallError {
    /// The service's error code, or `unreachable` / `unauthenticated` / `bad_answer` / `setup`.
    pub fn code(&self) -> &str {
        match self {
            CallError::Setup(_) => "setup",
            CallError::Unreachable { .. } => "unreachable",
            CallError::Unauthorized => "unauthenticated",
            CallError::Refused { code, .. } => code,
            CallError::BadAnswer { .. } => "bad_answer",
        }
    }

    /// Whether the service failed on its side (a 5xx answer), as opposed to refusing.
    pub fn is_server_error(&self) -> bool {
        matches!(self, CallError::Refused { status, .. } if *status >= 500)
    }
}

/// A client of one approval service.
pub struct ApiClient {
    base: String,
    credential: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for ApiClient {
    // The credential is a secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for the service at `server` (its base URL), authenticating with `credential`
    /// when one is given. Refuses a URL that would carry it in clear text across a network.
    pub fn new(
        server: &str,
        credential: Option<String>,
        timeouts: Timeouts,
    ) -> Result<ApiClient, CallError> {
        if let Some(c) = &credential {
            crate::net::check_credential(c).map_err(CallError::Setup)?;
        }
        let http = crate::net::client_for(server, timeouts.call, timeouts.connect)
            .map_err(|e| CallError::Setup(e.to_string()))?;
        Ok(ApiClient {
            base: server.trim_end_matches('/').to_owned(),
            credential,
            http,
        })
    }

    /// The service's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One JSON call: `path` under the base URL, an optional JSON body, the answer's JSON
    /// (`null` for an empty answer).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.answer(rb).await
    }

    /// `PUT` a text body (a policy file) and return the answer's JSON.
    pub async fn put_text(&self, path: &str, text: String) -> Result<Value, CallError> {
        let rb = self
            .request(Method::PUT, path)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(text);
        self.answer(rb).await
    }

    /// A `GET` whose answer is read only up to `max` bytes (an answer from a service that is
    /// not trusted yet, as at `jitsh login`).
    pub async fn get_capped(&self, path: &str, max: usize) -> Result<Value, CallError> {
        let mut resp = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(&e))? {
            if bytes.len() + chunk.len() > max {
                return Err(self.bad_answer(format!("the answer is over {} KiB", max / 1024)));
            }
            bytes.extend_from_slice(&chunk);
        }
        decode(status, &bytes).map_err(|e| self.with_server(e))
    }

    /// A blocking [`ApiClient::call`] for commands that have no runtime of their own.
    pub fn call_blocking(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CallError::Setup(format!("could not start the runtime: {e}")))?;
        runtime.block_on(self.call(method, path, body))
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.credential {
            Some(c) => rb.bearer_auth(c),
            None => rb,
        }
    }

    async fn answer(&self, rb: reqwest::RequestBuilder) -> Result<Value, CallError> {
        let resp = rb.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        decode(status, &bytes).map_err(|e| self.with_server(e))
    }

    fn unreachable(&self, e: &reqwest::Error) -> CallError {
        CallError::Unreachable {
            server: self.base.clone(),
            message: crate::net::describe(e),
        }
    }

    fn bad_answer(&self, message: String) -> CallError {
        CallError::BadAnswer {
            server: self.base.clone(),
            message,
        }
    }

    fn with_server(&self, e: CallError) -> CallError {
        match e {
            CallError::BadAnswer { message, .. } => self.bad_answer(message),
            e => e,
        }
    }
}

/// `text` as one URL path segment or query value: every byte but ASCII letters, digits, `-` and
/// `_` percent-encoded, so an id can never add a path step (`..`, `/`) or a query (`?`, `&`).
pub fn segment(text: &str) -> String {
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

/// An answer as JSON, or the service's error. A success that is not JSON reads as `null`
/// (some answers carry no body); an error body that is not JSON still yields a sentence.
fn decode(status: StatusCode, bytes: &[u8]) -> Result<Value, CallError> {
    let value: Option<Value> = serde_json::from_slice(bytes).ok();
    if status.is_success() {
        return Ok(value.unwrap_or(Value::Null));
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(CallError::Unauthorized);
    }
    let field = |key: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let code = field("error").unwrap_or_else(|| "http_error".to_owned());
    let message = field("message").unwrap_or_else(|| {
        // Not the service's JSON (a proxy's page?): its first words, escaped, help more than
        // the bare status.
        let text: String = String::from_utf8_lossy(bytes).chars().take(200).collect();
        let text = crate::text::escape(text.trim()).into_owned();
        if text.is_empty() {
            format!("the approval service answered {status}")
        } else {
            format!("the approval service answered {status}: {text}")
        }
    });
    Err(CallError::Refused {
        status: status.as_u16(),
        code,
        message,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn service_errors_decode_into_code_and_sentence() {
        let body = br#"{"error": "duration_too_long", "message": "the rule allows at most 4h; ask for less"}"#;
        let e = decode(StatusCode::UNPROCESSABLE_ENTITY, body).unwrap_err();
        assert_eq!(e.code(), "duration_too_long");
        assert_eq!(e.to_string(), "the rule allows at most 4h; ask for less");
        assert!(!e.is_server_error());

        let e = decode(StatusCode::UNAUTHORIZED, body).unwrap_err();
        assert_eq!(e, CallError::Unauthorized);
        assert!(e.to_string().contains("JITSH_CREDENTIAL"), "{e}");

        let e = decode(StatusCode::BAD_GATEWAY, b"").unwrap_err();
        assert!(e.is_server_error());
        assert_eq!(e.code(), "http_error");
        assert!(e.to_string().contains("502"), "{e}");

        // A proxy's page: its words, with control characters escaped, not raw.
        let e = decode(
            StatusCode::SERVICE_UNAVAILABLE,
            b"down\x1b[2J for maintenance",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("down") && !e.to_string().contains('\x1b'),
            "{e}"
        );

        // An empty message falls back to something a person can read.
        let e = decode(StatusCode::CONFLICT, br#"{"error": "x", "message": " "}"#).unwrap_err();
        assert!(e.to_string().contains("409"), "{e}");

        assert_eq!(decode(StatusCode::OK, b"").unwrap(), Value::Null);
        assert_eq!(
            decode(StatusCode::OK, br#"{"id": "r1"}"#).unwrap()["id"],
            "r1"
        );
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(segment("r-1_Ab9"), "r-1_Ab9");
        for (id, encoded) in [
            ("..", "%2E%2E"),
            ("a/../b", "a%2F%2E%2E%2Fb"),
            ("x?all=1&y", "x%3Fall%3D1%26y"),
            ("ä", "%C3%A4"),
            ("a b#c", "a%20b%23c"),
        ] {
            assert_eq!(segment(id), encoded, "{id}");
        }
    }

    #[test]
    fn credentials_and_urls_are_checked_before_any_call() {
        let e = ApiClient::new("http://127.0.0.1:1", Some("a b".into()), Timeouts::COMMAND)
            .unwrap_err();
        assert!(matches!(e, CallError::Setup(_)), "{e:?}");
        let e = ApiClient::new("127.0.0.1:1", None, Timeouts::COMMAND).unwrap_err();
        assert!(e.to_string().contains("no scheme"), "{e}");
        let c = ApiClient::new(
            "http://127.0.0.1:1/",
            Some("jitsh_x".into()),
            Timeouts::COMMAND,
        )
        .unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:1");
        assert!(!format!("{c:?}").contains("jitsh_x"));
    }

    #[tokio::test]
    async fn nothing_listening_reads_as_unreachable() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = ApiClient::new(&format!("http://127.0.0.1:{port}"), None, Timeouts::SHELL).unwrap();
        let e = c.call(Method::GET, "/v1/me", None).await.unwrap_err();
        assert_eq!(e.code(), "unreachable");
        assert!(e.to_string().contains("connection refused"), "{e}");
    }
}
