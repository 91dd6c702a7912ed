//! A gate's audit events to the approval service: one `POST /v1/audit/events` per batch, the
//! answer sorted into accepted, refused for good, or retry. What to send, in which order, and
//! the cursor are the spool's ([`crate::audit::spool`]); this knows only HTTP.
//!
//! The client is the one every jitsh client uses ([`crate::net::client_for`]: same TLS trust,
//! clear text refused off loopback). The spool's appends are synchronous and its forwarder is
//! a thread of its own, so that thread drives requests on a small runtime it owns rather than
//! on the caller's (a gate may have none, or be blocked in it).

use std::time::Duration;

use crate::audit::AuditEvent;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the uplink could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UplinkError {
    #[error("`{0}` is not a service address; use http://HOST:PORT or https://HOST")]
    BadServer(String),
    #[error("the audit forwarder could not start: {0}")]
    Setup(String),
}

/// What the service said about a batch.
#[derive(Debug)]
pub enum Outcome {
    Accepted,
    /// Refused for good: keep it aside and go on.
    Rejected(String),
    Retry(String),
    /// [`StopHandle::stop`] was called while the request was in flight.
    Stopped,
}

/// The sending side, owned by the forwarder thread.
pub(crate) struct ServiceUplink {
    url: String,
    credential: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for ServiceUplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credential.
        f.debug_struct("ServiceUplink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Cuts a request in flight short (the sink is closing).
#[derive(Debug)]
pub(crate) struct StopHandle(tokio::sync::watch::Sender<bool>);

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl ServiceUplink {
    /// An uplink to `server` (the service's base URL) with `credential`. Refuses a URL that is
    /// not http(s), and clear text off loopback, before the caller writes anything.
    pub fn new(
        server: &str,
        credential: String,
    ) -> Result<(ServiceUplink, StopHandle), UplinkError> {
        let url = format!("{}/v1/audit/events", server.trim_end_matches('/'));
        if !reqwest::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(UplinkError::BadServer(server.to_owned()));
        }
        let client = crate::net::client_for(&url, REQUEST_TIMEOUT, CONNECT_TIMEOUT)
            .map_err(|e| UplinkError::Setup(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| UplinkError::Setup(e.to_string()))?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        Ok((
            ServiceUplink {
                url,
                credential,
                client,
                runtime,
                stop: stop_rx,
            },
            StopHandle(stop),
        ))
    }

    /// Send one batch named `batch` (the service takes a repeated name once); blocks until the
    /// service answers, the request fails, or the uplink is stopped.
    pub fn send(&mut self, batch: &str, events: &[AuditEvent]) -> Outcome {
        let body = serde_json::json!({
            "events": events,
            "batch": batch,
        });
        let (client, url, credential) = (&self.client, &self.url, &self.credential);
        let stop = &mut self.stop;
        // The request is built inside the runtime: its timeout needs the runtime's timer.
        self.runtime.block_on(async move {
            let request = client.post(url).bearer_auth(credential).json(&body).send();
            let response = tokio::select! {
                r = request => r,
                _ = stop.wait_for(|s| *s) => return Outcome::Stopped,
            };
            let response = match response {
                Ok(r) => r,
                Err(e) => return Outcome::Retry(format!("`{url}` is unreachable: {e}")),
            };
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            match status {
                200 => Outcome::Accepted,
                400 | 403 | 409 | 413 | 422 => Outcome::Rejected(format!("{status}: {message}")),
                _ => Outcome::Retry(format!("the service answered {status}: {message}")),
            }
        })
    }
}
