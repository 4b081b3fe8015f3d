//! `POST /invite` (admin): creates an unconfirmed user for `email` with `data` as their
//! metadata and mails them an invitation link; a user invited before and not yet confirmed
//! is invited again. A confirmed user's address is 422 `email_exists`.

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    db,
    error::AuthResult,
    extract::{Admin, JsonBody},
    mail,
    otp::Purpose,
    state::AuthState,
    users::{self, NewUser},
};

use super::{RedirectQuery, admin::email_exists};

/// Whom to invite.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InviteBody {
    email: String,
    data: Option<Value>,
}

/// Invites `email`; the invited user.
pub async fn invite(
    State(state): State<AuthState>,
    _: Admin,
    Query(query): Query<RedirectQuery>,
    JsonBody(body): JsonBody<InviteBody>,
) -> AuthResult<Json<Value>> {
    let email = users::parse_email(Some(&body.email))?;
    let metadata = users::bounded_metadata(body.data.unwrap_or_else(|| json!({})))?;
    let redirect = state.redirect_target(query.redirect_to.as_deref());
    let mut tx = db::begin(state.pool()).await?;
    let user = match users::by_email(&mut tx, &email).await? {
        Some(user) if user.email_confirmed_at.is_some() => return Err(email_exists()),
        Some(user) => user,
        None => users::create(&mut tx, NewUser::unconfirmed(&email, metadata)).await?,
    };
    mail::send_link(
        &mut tx,
        &state,
        user.id,
        &email,
        Purpose::Invite,
        None,
        &redirect,
    )
    .await?;
    sqlx::query("update auth.users set invited_at = now() where id = $1")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    let user = users::require(&mut tx, user.id).await?;
    let json = users::json_of(&mut tx, &user).await?;
    tx.commit().await?;
    state.wake_mailer();
    Ok(Json(json))
}
