//! Mail: every message is written to `auth.mail_outbox` in the request's transaction (and
//! logged), where developers and tests read links and codes. With `TALLY_SMTP_HOST` set, a
//! sender delivers the outbox over SMTP, retrying with backoff; several Tally instances share
//! the work (`FOR UPDATE SKIP LOCKED`).

use std::{sync::Arc, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use sqlx::{PgConnection, PgPool};
use tally_core::config::AuthSettings;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    db,
    error::AuthResult,
    flow::{self, Challenge},
    links,
    otp::{self, Purpose},
    ratelimit,
    state::AuthState,
};

/// Tries before a mail is given up.
const MAX_ATTEMPTS: i32 = 5;

fn subject(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Confirmation => "Confirm your signup",
        Purpose::Recovery => "Reset your password",
        Purpose::MagicLink => "Your magic link",
        Purpose::EmailChange => "Confirm your new email",
        Purpose::Invite => "You have been invited",
    }
}

fn body(purpose: Purpose, link: &str, otp: &str) -> String {
    let action = match purpose {
        Purpose::Confirmation => "Follow this link to confirm your account",
        Purpose::Recovery => "Follow this link to reset your password",
        Purpose::MagicLink => "Follow this link to sign in",
        Purpose::EmailChange => "Follow this link to confirm your new email address",
        Purpose::Invite => "You have been invited to Tally. Follow this link to accept",
    };
    format!("{action}:\n\n{link}\n\nOr enter this code: {otp}\n")
}

/// Mails a one-time link and code for `purpose`: counts against the address's mail limit,
/// stores the PKCE flow when the client sent a challenge, issues the token, queues the mail.
pub async fn send_link(
    conn: &mut PgConnection,
    state: &AuthState,
    user: Uuid,
    email: &str,
    purpose: Purpose,
    challenge: Option<&Challenge>,
    redirect: &str,
) -> AuthResult<()> {
    let limit = state.config().auth.rate_limit_email;
    ratelimit::hit(
        state.pool(),
        "email_sent",
        email,
        limit,
        ratelimit::ONE_HOUR,
    )
    .await?;
    if let Some(challenge) = challenge {
        flow::create(conn, user, challenge, purpose.authentication_method()).await?;
    }
    let issued = otp::issue(conn, user, email, purpose).await?;
    let link = links::verify_link(state, &issued.token_hash, purpose, redirect);
    send(conn, email, purpose, &link, &issued.otp).await?;
    Ok(())
}

/// Queues a mail in the outbox (delivered after the transaction commits, when SMTP is set).
pub async fn send(
    conn: &mut PgConnection,
    to: &str,
    purpose: Purpose,
    link: &str,
    otp: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into auth.mail_outbox (recipient, template, subject, body, link, otp) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(to)
    .bind(purpose.key())
    .bind(subject(purpose))
    .bind(body(purpose, link, otp))
    .bind(link)
    .bind(otp)
    .execute(conn)
    .await?;
    tracing::info!(
        to,
        template = purpose.key(),
        link,
        "mail queued in auth.mail_outbox"
    );
    Ok(())
}

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
