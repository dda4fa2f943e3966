//! Notifications: turning queued alerts into emails (SMTP) and webhook calls (Slack,
//! Discord, Microsoft Teams, generic JSON signed with HMAC-SHA256), and the worker that
//! delivers them.
//!
//! The queue lives in the store: a rule that fires writes its notifications in the same
//! transaction as the event, and this crate's worker claims due ones with a lease, sends
//! them, and records the outcome — retrying with exponential backoff when a receiver is
//! down, across restarts, and never on the ingestion path.

pub mod render;

use std::sync::Arc;
use std::time::Duration;

use bugbane_core::alerts::{Channel, TEAM};
use bugbane_store::{Delivery, Notification, Store};
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use render::Alert;

/// How SMTP connections are secured.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on the same host or network only).
    None,
}

/// Alert delivery settings (`[alerts]` in the configuration).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// SMTP server; without one, email notifications are skipped (and say so).
    pub smtp_host: Option<String>,
    /// Defaults to 587, 465 or 25 by `smtp_security`.
    pub smtp_port: Option<u16>,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// The sender of alert emails.
    pub from: String,
    /// First retry delay; each further retry doubles it, up to `retry_max_seconds`.
    pub retry_initial_seconds: f64,
    pub retry_max_seconds: f64,
    /// Attempts before a notification is given up (and logged as failed).
    pub max_attempts: i64,
    /// Per attempt (connect, send and answer).
    pub timeout_seconds: f64,
    /// How often cron monitors are checked for missed and failed runs.
    pub monitor_check_seconds: f64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_host: None,
            smtp_port: None,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
            from: "Bugbane <bugbane@localhost>".into(),
            retry_initial_seconds: 10.0,
            retry_max_seconds: 3600.0,
            max_attempts: 12,
            timeout_seconds: 10.0,
            monitor_check_seconds: 30.0,
        }
    }
}

/// Why one attempt did not deliver, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The receiver may recover (down, timed out, 5xx, throttled).
    #[error("{0}")]
    Transient(String),
    /// It will not by itself (refused, invalid address).
    #[error("{0}")]
    Permanent(String),
    /// There is nowhere to send to.
    #[error("{0}")]
    Skip(String),
}

impl Failure {
    fn transient(message: impl Into<String>) -> Failure {
        Failure::Transient(message.into())
    }

    fn permanent(message: impl Into<String>) -> Failure {
        Failure::Permanent(message.into())
    }
}

/// Sends notifications.
pub struct Notifier {
    config: NotifyConfig,
    public_url: String,
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    store: Store,
}

impl Notifier {
    /// Builds the HTTP client and the SMTP transport from the settings.
    pub fn new(config: NotifyConfig, public_url: String, store: Store) -> Result<Notifier, String> {
        let timeout = Duration::from_secs_f64(config.timeout_seconds.max(0.1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("Bugbane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let smtp = match &config.smtp_host {
            None => None,
            Some(host) => {
                let builder = match config.smtp_security {
                    SmtpSecurity::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                            .map_err(|e| format!("SMTP {host}: {e}"))?
                            .port(config.smtp_port.unwrap_or(587))
                    }
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .map_err(|e| format!("SMTP {host}: {e}"))?
                        .port(config.smtp_port.unwrap_or(465)),
                    SmtpSecurity::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                            .port(config.smtp_port.unwrap_or(25))
                    }
                };
                let builder = match (&config.smtp_username, &config.smtp_password) {
                    (Some(u), Some(p)) => {
                        builder.credentials(Credentials::new(u.clone(), p.clone()))
                    }
                    _ => builder,
                };
                Some(builder.timeout(Some(timeout)).build())
            }
        };
        config
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("alerts.from {:?}: {e}", config.from))?;
        Ok(Notifier {
            config,
            public_url: public_url.trim_end_matches('/').to_owned(),
            http,
            smtp,
            store,
        })
    }

    fn link(&self, n: &Notification) -> String {
        let project = |k: &str| {
            n.message
                .pointer(&format!("/project/{k}"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        if let Some(monitor) = n.message.get("monitor").and_then(|v| v.as_str()) {
            return format!(
                "{}/projects/{}/{}/crons/{monitor}/",
                self.public_url,
                project("org"),
                project("slug")
            );
        }
        match n.issue_id {
            Some(id) => format!("{}/issues/{id}/", self.public_url),
            None => format!(
                "{}/projects/{}/{}/",
                self.public_url,
                n.message
                    .pointer("/project/org")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default(),
                n.message
                    .pointer("/project/slug")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
            ),
        }
    }

    /// One attempt at delivering a notification.
    async fn send(&self, n: &Notification) -> Result<(), Failure> {
        let alert = Alert {
            message: &n.message,
            link: self.link(n),
        };
        match n.channel {
            Channel::Email => self.email(n, &alert).await,
            Channel::Slack => self.post(&n.target, &render::slack(&alert), None).await,
            Channel::Discord => self.post(&n.target, &render::discord(&alert), None).await,
            Channel::Teams => self.post(&n.target, &render::teams(&alert), None).await,
            Channel::Webhook => {
                self.post(&n.target, &render::webhook(&alert), n.secret.as_deref())
                    .await
            }
        }
    }

    async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        secret: Option<&str>,
    ) -> Result<(), Failure> {
        let bytes = serde_json::to_vec(body).map_err(|e| Failure::permanent(e.to_string()))?;
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json");
        if let Some(secret) = secret {
            let sig = sign(secret, &bytes);
            req = req
                .header("x-bugbane-signature", format!("sha256={sig}"))
                .header("sentry-hook-signature", sig);
        }
        let res = req
            .body(bytes)
            .send()
            .await
            .map_err(|e| Failure::transient(describe(&e)))?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let answer: String = res
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        let message = format!("{url} answered {status}: {answer}");
        // A server error or throttling may pass; other refusals will not by themselves.
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(Failure::transient(message))
        } else {
            Err(Failure::permanent(message))
        }
    }

    async fn email(&self, n: &Notification, alert: &Alert<'_>) -> Result<(), Failure> {
        let Some(smtp) = &self.smtp else {
            return Err(Failure::Skip(
                "no SMTP server is configured (alerts.smtp_host)".into(),
            ));
        };
        let recipients: Vec<String> = if n.target.trim() == TEAM {
            self.store
                .team_emails(n.project_id)
                .await
                .map_err(|e| Failure::transient(e.to_string()))?
        } else {
            n.target.split(',').map(|s| s.trim().to_owned()).collect()
        };
        let from: Mailbox = self
            .config
            .from
            .parse()
            .map_err(|e| Failure::permanent(format!("sender: {e}")))?;
        let mail = render::email(alert);
        let mut builder = Message::builder().from(from).subject(mail.subject);
        let mut any = false;
        for r in recipients.iter().filter(|r| !r.is_empty()) {
            match r.parse::<Mailbox>() {
                Ok(m) => {
                    builder = builder.to(m);
                    any = true;
                }
                Err(e) => {
                    tracing::warn!(recipient = %r, error = %e, "skipping an invalid recipient")
                }
            }
        }
        if !any {
            return Err(Failure::permanent("no valid recipient"));
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .map_err(|e| Failure::permanent(e.to_string()))?;
        smtp.send(message).await.map(|_| ()).map_err(|e| {
            let text = format!("SMTP: {e}");
            if e.is_permanent() {
                Failure::permanent(text)
            } else {
                Failure::transient(text)
            }
        })
    }

    /// When the attempt after `attempts` failed ones should happen.
    fn backoff(&self, attempts: i64) -> f64 {
        let exp = attempts.clamp(1, 30) - 1;
        (self.config.retry_initial_seconds * 2f64.powi(exp as i32))
            .min(self.config.retry_max_seconds)
    }

    /// Sends one claimed notification and records the outcome.
    async fn deliver(&self, n: Notification) {
        let attempts = n.attempts + 1;
        let outcome = match self.send(&n).await {
            Ok(()) => Delivery::Sent,
            Err(Failure::Skip(why)) => Delivery::Skipped(why),
            Err(Failure::Transient(error)) if attempts < self.config.max_attempts => {
                tracing::warn!(notification = n.id, channel = n.channel.as_str(), attempts, %error, "notification not delivered; will retry");
                Delivery::Retry {
                    error,
                    at: now() + self.backoff(attempts),
                }
            }
            Err(Failure::Transient(error) | Failure::Permanent(error)) => {
                tracing::warn!(notification = n.id, channel = n.channel.as_str(), attempts, %error, "notification given up");
                Delivery::Failed(error)
            }
        };
        if let Err(e) = self.store.finish_notification(n.id, outcome).await {
            tracing::error!(notification = n.id, error = %e, "recording a delivery failed");
        }
    }
}

/// HMAC-SHA256 of a body, hex-encoded: what receivers recompute to verify a webhook.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut s = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Delivers queued notifications until the process ends.
pub async fn run(notifier: Arc<Notifier>) {
    let lease = notifier.config.timeout_seconds * 3.0 + 5.0;
    loop {
        let batch = match notifier.store.claim_notifications(32, lease).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading the notification queue failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            // New notifications are written by the processor; look again soon, or at the
            // next retry if that is sooner.
            let wait = match notifier.store.next_notification_due().await {
                Ok(Some(due)) => (due - now()).clamp(0.05, 0.5),
                _ => 0.5,
            };
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            continue;
        }
        let mut sends = tokio::task::JoinSet::new();
        for n in batch {
            let notifier = notifier.clone();
            sends.spawn(async move { notifier.deliver(n).await });
        }
        while sends.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
