//! One-time tokens for email links and codes. A six-digit code goes in the mail; the link
//! carries `token_hash` = SHA-256(email + code); the database keeps only that hash.

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{AuthError, AuthResult};

/// How long a mailed link or code stays valid.
const LIFETIME_SECS: f64 = 3600.0;

/// What a one-time token is for (`auth.one_time_tokens.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sign-up confirmation.
    Confirmation,
    /// Password recovery.
    Recovery,
    /// Magic-link sign-in.
    MagicLink,
    /// Email change.
    EmailChange,
    /// Invitation.
    Invite,
    /// A nonce that stands for the current password (`/reauthenticate`).
    Reauthentication,
}

impl Purpose {
    /// The column value.
    pub fn key(self) -> &'static str {
        match self {
            Purpose::Confirmation => "confirmation",
            Purpose::Recovery => "recovery",
            Purpose::MagicLink => "magiclink",
            Purpose::EmailChange => "email_change",
            Purpose::Invite => "invite",
            Purpose::Reauthentication => "reauthentication",
        }
    }

    /// The `type` of `/verify` and of the link, as GoTrue names it.
    pub fn verify_type(self) -> &'static str {
        match self {
            Purpose::Confirmation => "signup",
            Purpose::Recovery => "recovery",
            Purpose::MagicLink => "magiclink",
            Purpose::EmailChange => "email_change",
            Purpose::Invite => "invite",
            Purpose::Reauthentication => "reauthentication",
        }
    }

    /// The sign-in method a redeemed token stands for: the session's `amr` and the PKCE
    /// flow's `authentication_method`.
    pub fn authentication_method(self) -> &'static str {
        match self {
            Purpose::Confirmation => "email/signup",
            Purpose::Recovery => "recovery",
            Purpose::MagicLink => "magiclink",
            Purpose::EmailChange => "email_change",
            Purpose::Invite => "invite",
            Purpose::Reauthentication => "reauthentication",
        }
    }

    /// The purposes a `/verify` `type` may redeem (`email` is the code of either a sign-up or
    /// a magic link).
    pub fn from_verify_type(kind: &str) -> AuthResult<&'static [Purpose]> {
        Ok(match kind {
            "signup" => &[Purpose::Confirmation],
            "recovery" => &[Purpose::Recovery],
            "magiclink" => &[Purpose::MagicLink],
            "invite" => &[Purpose::Invite],
            "email_change" => &[Purpose::EmailChange],
            "email" => &[Purpose::Confirmation, Purpose::MagicLink],
            _ => {
                return Err(AuthError::validation(format!(
                    "Verify requires a valid type, got \"{kind}\""
                )));
            }
        })
    }
}

/// A new token: the code to mail and the hash for the link.
pub struct Issued {
    /// Six digits.
    pub otp: String,
    /// SHA-256(email + otp), hex.
    pub token_hash: String,
}

/// The link hash of an email and code.
pub fn hash_for(email: &str, otp: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{}{otp}", email.to_lowercase()).as_bytes(),
    ))
}

/// Issues a token for `user`, replacing any earlier one of the same purpose.
pub async fn issue(
    conn: &mut PgConnection,
    user: Uuid,
    email: &str,
    purpose: Purpose,
) -> sqlx::Result<Issued> {
    let random = u32::from_str_radix(&tally_core::config::random_hex(4), 16).unwrap_or_default();
    let otp = format!("{:06}", random % 1_000_000);
    let token_hash = hash_for(email, &otp);
    sqlx::query(
        "insert into auth.one_time_tokens (user_id, token_type, token_hash, relates_to, expires_at) \
         values ($1, $2, $3, $4, now() + make_interval(secs => $5)) \
         on conflict (user_id, token_type) do update set token_hash = excluded.token_hash, \
           relates_to = excluded.relates_to, expires_at = excluded.expires_at, created_at = now()",
    )
    .bind(user)
    .bind(purpose.key())
    .bind(&token_hash)
    .bind(email.to_lowercase())
    .bind(LIFETIME_SECS)
    .execute(conn)
    .await?;
    Ok(Issued { otp, token_hash })
}

/// Redeems a token by its hash: returns the user, the purpose and the address the token was
/// sent to. A token works once.
pub async fn redeem(
    conn: &mut PgConnection,
    token_hash: &str,
    purposes: &[Purpose],
) -> AuthResult<(Uuid, Purpose, String)> {
    let keys: Vec<&str> = purposes.iter().map(|p| p.key()).collect();
    let row: Option<(Uuid, String, String, bool)> = sqlx::query_as(
        "delete from auth.one_time_tokens where token_hash = $1 and token_type = any($2) \
         returning user_id, token_type, relates_to, expires_at > now()",
    )
    .bind(token_hash)
    .bind(&keys)
    .fetch_optional(conn)
    .await?;
    match row {
        Some((user, kind, relates_to, true)) => {
            let purpose = purposes
                .iter()
                .copied()
                .find(|p| p.key() == kind)
                .ok_or_else(|| AuthError::unexpected("token type mismatch"))?;
            Ok((user, purpose, relates_to))
        }
        _ => Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "otp_expired",
            "Token has expired or is invalid",
        )),
    }
}
