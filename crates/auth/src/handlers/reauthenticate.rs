//! `GET /reauthenticate`: mails the signed-in person a one-time code (a nonce) that proves,
//! for an hour, that they hold their inbox; `PUT /user` takes it in place of the current
//! password where `TALLY_PASSWORD_REQUIRE_CURRENT` asks for one.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::CurrentUser,
    mail,
    otp::{self, Purpose},
    ratelimit,
    state::AuthState,
};

/// Mails a reauthentication code to the signed-in person's confirmed address.
pub async fn reauthenticate(
    State(state): State<AuthState>,
    current: CurrentUser,
) -> AuthResult<Json<Value>> {
    let user = current.user;
    let Some(email) = user.email.clone() else {
        return Err(AuthError::validation(
            "Reauthentication requires the user to have an email or a phone number",
        ));
    };
    if user.email_confirmed_at.is_none() {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_not_confirmed",
            "Please verify your email first.",
        ));
    }
    let limit = state.config().auth.rate_limit_email;
    ratelimit::hit(
        state.pool(),
        "email_sent",
        &email,
        limit,
        ratelimit::ONE_HOUR,
    )
    .await?;
    let mut tx = db::begin(state.pool()).await?;
    let issued = otp::issue(&mut tx, user.id, &email, Purpose::Reauthentication).await?;
    mail::send(&mut tx, &email, Purpose::Reauthentication, "", &issued.otp).await?;
    tx.commit().await?;
    state.wake_mailer();
    Ok(Json(json!({})))
}

/// Redeems the reauthentication code `nonce` the person `email` was mailed (once).
pub async fn redeem(
    conn: &mut sqlx::PgConnection,
    user: uuid::Uuid,
    email: &str,
    nonce: &str,
) -> AuthResult<()> {
    let invalid = || {
        AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reauthentication_not_valid",
            "Nonce has expired or is invalid",
        )
    };
    let hash = otp::hash_for(email, nonce);
    match otp::redeem(conn, &hash, &[Purpose::Reauthentication]).await {
        Ok((owner, _, _)) if owner == user => Ok(()),
        _ => Err(invalid()),
    }
}
