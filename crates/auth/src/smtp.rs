//! Delivering the mail outbox over SMTP (when `TALLY_SMTP_HOST` is set), retrying with
//! backoff; several Tally instances share the work (`FOR UPDATE SKIP LOCKED`).

use std::{sync::Arc, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use sqlx::PgPool;
use tally_core::config::AuthSettings;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::db;

/// Tries before a mail is given up.
const MAX_ATTEMPTS: i32 = 5;

/// Delivers the outbox over SMTP.
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    wake: Arc<Notify>,
}

impl Sender {
    /// A sender for the SMTP settings, or `None` when no SMTP host is configured.
    pub fn from_settings(
        settings: &AuthSettings,
        wake: Arc<Notify>,
    ) -> Result<Option<Self>, String> {
        let Some(host) = settings.smtp_host.as_deref().filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let builder = match settings.smtp_tls.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            _ => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| format!("TALLY_SMTP_HOST: {e}"))?;
        let mut builder = builder
            .port(settings.smtp_port)
            .timeout(Some(Duration::from_secs(15)));
        if let Some(user) = settings.smtp_user.as_deref() {
            let pass = settings
                .smtp_pass
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.to_owned(), pass));
        }
        let from = settings
            .smtp_from
            .parse::<Mailbox>()
            .map_err(|e| format!("TALLY_SMTP_FROM is not an address: {e}"))?;
        Ok(Some(Self {
            transport: builder.build(),
            from,
            wake,
        }))
    }

    /// Sends pending mails until the process ends: on every wake-up, and every few seconds.
    pub async fn run(self, pool: PgPool) {
        loop {
            match self.deliver_pending(&pool).await {
                Ok(sent) if sent > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "mail outbox: delivery round failed"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
        }
    }

    /// Sends up to 20 due mails; returns how many went out.
    pub async fn deliver_pending(&self, pool: &PgPool) -> sqlx::Result<usize> {
        let mut tx = db::begin(pool).await?;
        let due: Vec<(Uuid, String, String, String, i32)> = sqlx::query_as(
            "select id, recipient, subject, body, attempts from auth.mail_outbox \
             where sent_at is null and attempts < $1 and next_attempt_at <= now() \
             order by created_at limit 20 for update skip locked",
        )
        .bind(MAX_ATTEMPTS)
        .fetch_all(&mut *tx)
        .await?;
        let mut sent = 0;
        for (id, to, subject, body, attempts) in due {
            match self.deliver(&to, &subject, body).await {
                Ok(()) => {
                    sqlx::query("update auth.mail_outbox set sent_at = now(), attempts = attempts + 1, error = null where id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sent += 1;
                }
                Err(e) => {
                    tracing::warn!(%to, error = %e, "mail outbox: SMTP delivery failed");
                    sqlx::query(
                        "update auth.mail_outbox set attempts = attempts + 1, error = $2, \
                           next_attempt_at = now() + make_interval(secs => $3) where id = $1",
                    )
                    .bind(id)
                    .bind(e)
                    .bind(f64::from(30 * 2i32.pow(attempts.clamp(0, 10) as u32)))
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(sent)
    }

    async fn deliver(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
