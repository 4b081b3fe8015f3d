//! `POST /otp` (signInWithOtp with an email): mails a magic link and code, creating the user
//! first unless `create_user` is false.

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::{ClientIp, JsonBody},
    flow, mail,
    otp::Purpose,
    ratelimit,
    state::AuthState,
    users::{self, NewUser},
};

use super::RedirectQuery;

/// The magic-link request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OtpBody {
    email: Option<String>,
    create_user: Option<bool>,
    data: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Sends a magic link.
pub async fn otp(
    State(state): State<AuthState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<RedirectQuery>,
    JsonBody(body): JsonBody<OtpBody>,
) -> AuthResult<Json<Value>> {
    let email = users::parse_email(body.email.as_deref())?;
    let challenge = flow::challenge(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    let auth = &state.config().auth;
    ratelimit::hit(
        state.pool(),
        "otp_ip",
        &ip,
        auth.rate_limit_auth,
        ratelimit::FIVE_MINUTES,
    )
    .await?;
    let mut tx = db::begin(state.pool()).await?;
    let user = match users::by_email(&mut tx, &email).await? {
        Some(user) => user,
        None if body.create_user.unwrap_or(true) && !auth.disable_signup => {
            let metadata = users::bounded_metadata(body.data.unwrap_or_else(|| json!({})))?;
            users::create(&mut tx, NewUser::unconfirmed(&email, metadata)).await?
        }
        None => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "otp_disabled",
                "Signups not allowed for otp",
            ));
        }
    };
    let redirect = state.redirect_target(query.redirect_to.as_deref());
    mail::send_link(
        &mut tx,
        &state,
        user.id,
        &email,
        Purpose::MagicLink,
        challenge.as_ref(),
        &redirect,
    )
    .await?;
    tx.commit().await?;
    state.wake_mailer();
    Ok(Json(json!({})))
}
