//! `POST /recover`: mails a password-recovery link. Always 200 `{}`, and in the same time
//! whether or not the address has an account: the answer is sent once the request is checked
//! and counted, and the account is looked up and mailed after it, so neither the body nor the
//! timing tells which emails exist.

use axum::{
    Json,
    extract::{Query, State},
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

/// The recovery request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RecoverBody {
    email: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Sends a recovery mail when the address has an account.
pub async fn recover(
    State(state): State<AuthState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<RedirectQuery>,
    JsonBody(body): JsonBody<RecoverBody>,
) -> AuthResult<Json<Value>> {
    let email = body
        .email
        .as_deref()
        .and_then(users::normalize_email)
        .ok_or_else(|| AuthError::validation("Password recovery requires an email"))?;
    let challenge = flow::challenge(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    let redirect = state.redirect_target(query.redirect_to.as_deref());
    let to = email.clone();
    super::mail_after_answer(
        state,
        &ip,
        "recover",
        &email,
        "a recovery link",
        |state| async move { mail_recovery(&state, &to, challenge.as_ref(), &redirect).await },
    )
    .await
}

/// Mails the recovery link when `email` has an account.
async fn mail_recovery(
    state: &AuthState,
    email: &str,
    challenge: Option<&flow::Challenge>,
    redirect: &str,
) -> AuthResult<()> {
    let mut tx = db::begin(state.pool()).await?;
    let Some(user) = users::by_email(&mut tx, email).await? else {
        return Ok(());
    };
    mail::send_link(
        &mut tx,
        state,
        user.id,
        email,
        Purpose::Recovery,
        challenge,
        redirect,
    )
    .await?;
    sqlx::query("update auth.users set recovery_sent_at = now() where id = $1")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.wake_mailer();
    Ok(())
}
