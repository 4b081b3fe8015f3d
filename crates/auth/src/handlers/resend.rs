//! `POST /resend`: mails again what a person is waiting for — the sign-up confirmation
//! (`type: signup`) or the new address's confirmation (`type: email_change`). As GoTrue does,
//! it answers 200 `{}` whether or not there is anything to resend; and, as `/recover`, it
//! mails after answering, so neither the answer nor its time tells which addresses have
//! accounts.

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::{ClientIp, JsonBody},
    flow, mail,
    otp::Purpose,
    state::AuthState,
    users,
};

use super::RedirectQuery;

/// What to resend, and to whom.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ResendBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Resends the confirmation of a sign-up or of an email change, when one is pending.
pub async fn resend(
    State(state): State<AuthState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<RedirectQuery>,
    JsonBody(body): JsonBody<ResendBody>,
) -> AuthResult<Json<Value>> {
    let purpose = match body.kind.as_deref() {
        Some("signup") => Purpose::Confirmation,
        Some("email_change") => Purpose::EmailChange,
        Some("sms" | "phone_change") => {
            return Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "phone_provider_disabled",
                "Phone logins are disabled",
            ));
        }
        _ => {
            return Err(AuthError::validation(
                "Missing one of these types: signup, email_change, sms, phone_change",
            ));
        }
    };
    let email = match (body.email.as_deref(), body.phone.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(AuthError::validation(
                "Only an email address or phone number should be provided.",
            ));
        }
        (Some(email), None) => users::parse_email(Some(email))?,
        (None, _) => {
            return Err(AuthError::validation(
                "Type provided requires an email address",
            ));
        }
    };
    let challenge = flow::challenge(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    let redirect = state.redirect_target(query.redirect_to.as_deref());
    let to = email.clone();
    super::mail_after_answer(state, &ip, "resend", &email, "a confirmation", |state| async move {
        mail_again(&state, &to, purpose, challenge.as_ref(), &redirect).await
    })
    .await
}

/// Mails the confirmation `purpose` of `email`'s account again, when one is pending.
async fn mail_again(
    state: &AuthState,
    email: &str,
    purpose: Purpose,
    challenge: Option<&flow::Challenge>,
    redirect: &str,
) -> AuthResult<()> {
    let mut tx = db::begin(state.pool()).await?;
    let Some(user) = users::by_email(&mut tx, email).await? else {
        return Ok(());
    };
    let to = match purpose {
        Purpose::Confirmation if user.email_confirmed_at.is_none() => email.to_owned(),
        Purpose::EmailChange => match user.email_change.clone() {
            Some(new_email) if !new_email.is_empty() => new_email,
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    mail::send_link(&mut tx, state, user.id, &to, purpose, challenge, redirect).await?;
    tx.commit().await?;
    state.wake_mailer();
    Ok(())
}
