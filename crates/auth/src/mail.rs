//! Mail: every message is written to `auth.mail_outbox` in the request's transaction (and
//! logged), where developers and tests read links and codes; [`crate::smtp`] delivers the
//! outbox when SMTP is configured.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::AuthResult,
    flow::{self, Challenge},
    links,
    otp::{self, Purpose},
    ratelimit,
    state::AuthState,
};

fn subject(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Confirmation => "Confirm your signup",
        Purpose::Recovery => "Reset your password",
        Purpose::MagicLink => "Your magic link",
        Purpose::EmailChange => "Confirm your new email",
        Purpose::Invite => "You have been invited",
        Purpose::Reauthentication => "Confirm reauthentication",
    }
}

fn body(purpose: Purpose, link: &str, otp: &str) -> String {
    let action = match purpose {
        Purpose::Confirmation => "Follow this link to confirm your account",
        Purpose::Recovery => "Follow this link to reset your password",
        Purpose::MagicLink => "Follow this link to sign in",
        Purpose::EmailChange => "Follow this link to confirm your new email address",
        Purpose::Invite => "You have been invited to Tally. Follow this link to accept",
        Purpose::Reauthentication => {
            return format!("Enter this code to confirm it is you: {otp}\n");
        }
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
