//! Mail: every message is written to `auth.mail_outbox` (and logged), where developers and
//! tests read links and codes.

use sqlx::PgConnection;

/// The kinds of mail the auth service sends.
#[derive(Debug, Clone, Copy)]
pub enum Template {
    /// Confirm a new account.
    Confirmation,
    /// Reset a password.
    Recovery,
    /// Sign in with a link.
    MagicLink,
    /// Confirm a new email address.
    EmailChange,
    /// Join as an invited user.
    Invite,
}

impl Template {
    fn key(self) -> &'static str {
        match self {
            Template::Confirmation => "confirmation",
            Template::Recovery => "recovery",
            Template::MagicLink => "magiclink",
            Template::EmailChange => "email_change",
            Template::Invite => "invite",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Template::Confirmation => "Confirm your signup",
            Template::Recovery => "Reset your password",
            Template::MagicLink => "Your magic link",
            Template::EmailChange => "Confirm your new email",
            Template::Invite => "You have been invited",
        }
    }

    fn body(self, link: &str, otp: &str) -> String {
        let action = match self {
            Template::Confirmation => "Follow this link to confirm your account",
            Template::Recovery => "Follow this link to reset your password",
            Template::MagicLink => "Follow this link to sign in",
            Template::EmailChange => "Follow this link to confirm your new email address",
            Template::Invite => "You have been invited to Tally. Follow this link to accept",
        };
        format!("{action}:\n\n{link}\n\nOr enter this code: {otp}\n")
    }
}

/// Queues a mail in the outbox.
pub async fn send(
    conn: &mut PgConnection,
    to: &str,
    template: Template,
    link: &str,
    otp: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into auth.mail_outbox (recipient, template, subject, body, link, otp) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(to)
    .bind(template.key())
    .bind(template.subject())
    .bind(template.body(link, otp))
    .bind(link)
    .bind(otp)
    .execute(conn)
    .await?;
    tracing::info!(
        to,
        template = template.key(),
        link,
        "mail queued in auth.mail_outbox"
    );
    Ok(())
}
