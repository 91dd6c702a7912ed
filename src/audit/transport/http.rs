//! A gate's audit events to the approval service: one `POST /v1/audit/events` per batch, the
//! answer sorted into accepted, refused for good, or retry. What to send, in which order, and
//! the cursor are the spool's ([`crate::audit::spool`]); this knows only HTTP.
//!
//! The client is the one every jitsh client uses ([`crate::api::ApiClient`]: same TLS trust,
//! clear text refused off loopback, one error type). The spool's appends are synchronous and its forwarder is
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
#[derive(Debug)]
pub(crate) struct ServiceUplink {
    client: crate::api::ApiClient,
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Receiver<bool>,
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
        let timeouts = crate::api::Timeouts {
            call: REQUEST_TIMEOUT,
            connect: CONNECT_TIMEOUT,
        };
        let client = crate::api::ApiClient::new(server, Some(credential), timeouts)
            .map_err(|e| UplinkError::Setup(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| UplinkError::Setup(e.to_string()))?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        Ok((
            ServiceUplink {
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
        let client = &self.client;
        let stop = &mut self.stop;
        // The request is built inside the runtime: its timeout needs the runtime's timer.
        self.runtime.block_on(async move {
            let request = client.call(reqwest::Method::POST, "/v1/audit/events", Some(&body));
            let answer = tokio::select! {
                r = request => r,
                _ = stop.wait_for(|s| *s) => return Outcome::Stopped,
            };
            match answer {
                Ok(_) => Outcome::Accepted,
                Err(crate::api::CallError::Unreachable { server, message }) => {
                    Outcome::Retry(format!("`{server}` is unreachable: {message}"))
                }
                // Refused for good: kept aside, never resent. Anything else may pass on a retry.
                Err(crate::api::CallError::Refused {
                    status: status @ (400 | 403 | 409 | 413 | 422),
                    message,
                    ..
                }) => Outcome::Rejected(format!("{status}: {message}")),
                Err(e) => Outcome::Retry(format!("the service did not take the batch: {e}")),
            }
        })
    }
}
