//! Delivers the outbox: mail over SMTP (lettre) and webhook posts (reqwest).
//!
//! Workflow steps only enqueue; this worker sends, so a slow or dead mail server never delays
//! or loses a request. Failures are logged and retried with exponential backoff; a message is
//! given up (kept in the store, marked failed) only after [`MAX_ATTEMPTS`].
//!
//! Mail is plain SMTP to `--smtp HOST:PORT` without TLS or authentication: meant for a relay on
//! loopback or a trusted network (an MTA on the same host), which then delivers onwards.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use super::store::{OutboxItem, Store};

/// Attempts before a message is marked failed.
pub(crate) const MAX_ATTEMPTS: u32 = 30;
/// Longest wait between attempts.
const MAX_BACKOFF_SECS: i64 = 300;

/// Where notifications go.
#[derive(Debug, Clone, Default)]
pub(crate) struct Channels {
    /// `HOST:PORT` of the SMTP relay.
    pub smtp: Option<String>,
    pub mail_from: String,
    pub webhook: Option<String>,
}

/// Why one delivery failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    #[error("smtp relay `{0}` is not HOST:PORT")]
    BadRelay(String),
    #[error("mail address `{0}` is not valid")]
    BadAddress(String),
    #[error("mail could not be built: {0}")]
    Build(String),
    #[error("mail delivery failed: {0}")]
    Smtp(String),
    #[error("webhook post failed: {0}")]
    Webhook(String),
    #[error("no {0} channel is configured")]
    NotConfigured(&'static str),
}

/// Run until `shutdown` fires, waking on `wake` or once a second.
pub async fn run(
    store: Arc<dyn Store>,
    channels: Channels,
    wake: Arc<Notify>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // Only with a webhook: building a client loads and parses the system's TLS roots, most of
    // the service's start-up (which a gated shell without `--server` waits for).
    let http = channels.webhook.is_some().then(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default()
    });
    let mailer = match channels.smtp.as_deref().map(mailer) {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            tracing::error!(error = %e, "mail disabled");
            None
        }
        None => None,
    };
    loop {
        let now = chrono::Utc::now().timestamp();
        let s = Arc::clone(&store);
        let due = tokio::task::spawn_blocking(move || s.due_notifications(now, 50)).await;
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "outbox could not be read");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        for item in due {
            let result = deliver(&item, &channels, mailer.as_ref(), http.as_ref()).await;
            let s = Arc::clone(&store);
            let id = item.id;
            let done = match result {
                Ok(()) => {
                    tracing::info!(id, channel = %item.note.channel, "notification delivered");
                    tokio::task::spawn_blocking(move || s.mark_delivered(id, now)).await
                }
                Err(e) => {
                    let attempts = item.attempts.saturating_add(1);
                    let give_up = attempts >= MAX_ATTEMPTS;
                    let backoff = 1i64
                        .checked_shl(attempts.min(20))
                        .unwrap_or(MAX_BACKOFF_SECS)
                        .min(MAX_BACKOFF_SECS);
                    if give_up {
                        tracing::error!(id, attempts, error = %e, "notification given up");
                    } else {
                        tracing::warn!(id, attempts, retry_in_secs = backoff, error = %e, "notification failed; will retry");
                    }
                    let message = e.to_string();
                    tokio::task::spawn_blocking(move || {
                        s.mark_failed(id, &message, now.saturating_add(backoff), give_up)
                    })
                    .await
                }
            };
            if let Ok(Err(e)) = done {
                tracing::error!(error = %e, "outbox could not be updated");
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

fn mailer(relay: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
    let (host, port) = relay
        .rsplit_once(':')
        .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h, p)))
        .ok_or_else(|| NotifyError::BadRelay(relay.to_owned()))?;
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.trim_matches(['[', ']']))
            .port(port)
            .timeout(Some(Duration::from_secs(10)))
            .build(),
    )
}

async fn deliver(
    item: &OutboxItem,
    channels: &Channels,
    mailer: Option<&AsyncSmtpTransport<Tokio1Executor>>,
    http: Option<&reqwest::Client>,
) -> Result<(), NotifyError> {
    let note = &item.note;
    match note.channel.as_str() {
        "email" => {
            let mailer = mailer.ok_or(NotifyError::NotConfigured("mail"))?;
            let from: Mailbox = channels
                .mail_from
                .parse()
                .map_err(|_| NotifyError::BadAddress(channels.mail_from.clone()))?;
            let to: Mailbox = note
                .recipient
                .parse()
                .map_err(|_| NotifyError::BadAddress(note.recipient.clone()))?;
            let message = Message::builder()
                .from(from)
                .to(to)
                .subject(note.subject.clone())
                .body(note.body.clone())
                .map_err(|e| NotifyError::Build(e.to_string()))?;
            mailer
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| NotifyError::Smtp(e.to_string()))
        }
        "webhook" => {
            let (Some(url), Some(http)) = (channels.webhook.as_deref(), http) else {
                return Err(NotifyError::NotConfigured("webhook"));
            };
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .body(note.body.clone())
                .send()
                .await
                .map_err(|e| NotifyError::Webhook(e.without_url().to_string()))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(NotifyError::Webhook(format!(
                    "receiver answered {}",
                    response.status()
                )))
            }
        }
        other => Err(NotifyError::Build(format!("unknown channel `{other}`"))),
    }
}
