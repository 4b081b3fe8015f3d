//! `GET /user` and `PUT /user`.

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
    extract::{CurrentUser, JsonBody},
    flow, mail,
    otp::Purpose,
    password,
    state::AuthState,
    users,
};

use super::RedirectQuery;

/// The signed-in user.
pub async fn get_user(
    State(state): State<AuthState>,
    current: CurrentUser,
) -> AuthResult<Json<Value>> {
    let mut tx = db::begin(state.pool()).await?;
    let json = users::json_of(&mut tx, &current.user).await?;
    tx.commit().await?;
    Ok(Json(json))
}

/// What a user may change about themselves.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateBody {
    email: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    nonce: Option<String>,
    data: Option<Value>,
    app_metadata: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Updates the signed-in user: `data` is merged into `user_metadata` (a `null` removes a
/// key); a new password must be strong and different; a new email is confirmed by mail
/// unless autoconfirm is on.
pub async fn update_user(
    State(state): State<AuthState>,
    current: CurrentUser,
    Query(query): Query<RedirectQuery>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> AuthResult<Json<Value>> {
    let auth = &state.config().auth;
    if body.app_metadata.is_some() {
        return Err(AuthError::not_admin());
    }
    let user = current.user;
    let challenge = flow::challenge(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    if user.is_anonymous
        && body.password.as_deref().is_some_and(|p| !p.is_empty())
        && body.email.as_deref().is_none_or(str::is_empty)
    {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Updating password of an anonymous user without an email or phone is not allowed",
        ));
    }
    let mut tx = db::begin(state.pool()).await?;
    if let Some(new_password) = body.password.as_deref() {
        password::check_strength(new_password, auth.password_min_length)?;
        let nonce = body.nonce.as_deref().filter(|n| !n.is_empty());
        if auth.password_require_current
            && let (Some(nonce), Some(email)) = (nonce, user.email.as_deref())
        {
            // The code `/reauthenticate` mailed stands for the current password.
            super::reauthenticate::redeem(&mut tx, user.id, email, nonce).await?;
        } else if auth.password_require_current {
            let Some(current_password) = body.current_password.as_deref().filter(|p| !p.is_empty())
            else {
                return Err(AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "current_password_required",
                    "Current password required when setting new password.",
                ));
            };
            if !password::verify(current_password, user.encrypted_password.as_deref()).await? {
                return Err(AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "current_password_mismatch",
                    "Current password is incorrect.",
                ));
            }
        }
        if user.encrypted_password.is_some()
            && password::verify(new_password, user.encrypted_password.as_deref()).await?
        {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "same_password",
                "New password should be different from the old password.",
            ));
        }
        let hash = password::hash(new_password).await?;
        sqlx::query("update auth.users set encrypted_password = $2 where id = $1")
            .bind(user.id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(data) = &body.data {
        let merged = users::merge_metadata(&user.raw_user_meta_data, data)?;
        sqlx::query("update auth.users set raw_user_meta_data = $2 where id = $1")
            .bind(user.id)
            .bind(merged)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(email) = body.email.as_deref() {
        let email = users::parse_email(Some(email))?;
        if Some(email.as_str()) != user.email.as_deref() {
            if users::by_email(&mut tx, &email).await?.is_some() {
                return Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "email_exists",
                    "A user with this email address has already been registered",
                ));
            }
            if auth.autoconfirm {
                change_email(&mut tx, user.id, &email).await?;
            } else {
                sqlx::query("update auth.users set email_change = $2, email_change_sent_at = now() where id = $1")
                    .bind(user.id)
                    .bind(&email)
                    .execute(&mut *tx)
                    .await?;
                let redirect = state.redirect_target(query.redirect_to.as_deref());
                mail::send_link(
                    &mut tx,
                    &state,
                    user.id,
                    &email,
                    Purpose::EmailChange,
                    challenge.as_ref(),
                    &redirect,
                )
                .await?;
            }
        }
    }
    let updated = users::require(&mut tx, user.id).await?;
    let json = users::json_of(&mut tx, &updated).await?;
    tx.commit().await?;
    state.wake_mailer();
    Ok(Json(json))
}

/// Moves a user to a new (confirmed) email address. An anonymous user becomes a permanent
/// one there: same id (so everything they made stays theirs), an `email` identity, and
/// `is_anonymous` false in their next tokens.
pub async fn change_email(
    conn: &mut sqlx::PgConnection,
    user: uuid::Uuid,
    email: &str,
) -> AuthResult<()> {
    let was_anonymous: bool = sqlx::query_scalar(
        "update auth.users u set email = $2, email_change = null, email_change_sent_at = null, \
             email_confirmed_at = coalesce(u.email_confirmed_at, now()), is_anonymous = false, \
             raw_app_meta_data = case when u.is_anonymous \
               then u.raw_app_meta_data || '{\"provider\": \"email\", \"providers\": [\"email\"]}' \
               else u.raw_app_meta_data end \
         from auth.users before where before.id = u.id and u.id = $1 \
         returning before.is_anonymous",
    )
    .bind(user)
    .bind(email)
    .fetch_one(&mut *conn)
    .await?;
    if was_anonymous {
        let data = users::email_identity_data(user, email, true);
        users::add_identity(conn, user, "email", &user.to_string(), &data).await?;
        return Ok(());
    }
    sqlx::query(
        "update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text) \
         where user_id = $1 and provider = 'email'",
    )
    .bind(user)
    .bind(email)
    .execute(conn)
    .await?;
    Ok(())
}
