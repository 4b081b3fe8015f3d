//! The admin API (service_role only): users and generated links.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode},
};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::{Admin, JsonBody},
    links,
    otp::{self, Purpose},
    password,
    state::AuthState,
    users::{self, NewUser},
};

/// `GET /admin/users?page=&per_page=`: newest first, with `X-Total-Count` and `Link`.
pub async fn list_users(
    State(state): State<AuthState>,
    _: Admin,
    Query(query): Query<HashMap<String, String>>,
) -> AuthResult<(HeaderMap, Json<Value>)> {
    let number =
        |name: &str, default: i64| -> AuthResult<i64> {
            // An empty parameter (`?page=&per_page=`, as supabase-js sends no choice) is the
            // default, as GoTrue reads it.
            match query.get(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    AuthError::validation(format!("Bad Pagination Parameters: {name}"))
                }),
            }
        };
    let page = number("page", 1)?;
    let per_page = number("per_page", 50)?.min(1000);
    let mut tx = db::begin(state.pool()).await?;
    let total: i64 = sqlx::query_scalar("select count(*) from auth.users where deleted_at is null")
        .fetch_one(&mut *tx)
        .await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "select id from auth.users where deleted_at is null order by created_at desc, id desc \
         limit $1 offset $2",
    )
    .bind(per_page)
    .bind((page - 1) * per_page)
    .fetch_all(&mut *tx)
    .await?;
    let mut list = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(user) = users::by_id(&mut tx, id).await? {
            list.push(users::json_of(&mut tx, &user).await?);
        }
    }
    tx.commit().await?;
    let last = ((total + per_page - 1) / per_page).max(1);
    let mut link = Vec::new();
    if page < last {
        link.push(format!(
            "</admin/users?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    link.push(format!(
        "</admin/users?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    if let Ok(value) = HeaderValue::from_str(&link.join(", ")) {
        headers.insert("link", value);
    }
    Ok((
        headers,
        Json(json!({"users": list, "aud": "authenticated"})),
    ))
}

/// Attributes an admin may set on a user.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct AdminUserBody {
    id: Option<Uuid>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    email_confirm: Option<bool>,
    user_metadata: Option<Value>,
    app_metadata: Option<Value>,
    ban_duration: Option<String>,
}

/// `POST /admin/users`.
pub async fn create_user(
    State(state): State<AuthState>,
    _: Admin,
    JsonBody(body): JsonBody<AdminUserBody>,
) -> AuthResult<Json<Value>> {
    if body.phone.is_some() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "phone_provider_disabled",
            "Phone users are not supported",
        ));
    }
    let email = users::parse_email(body.email.as_deref())?;
    let hash = match body.password.as_deref() {
        Some(pw) => {
            password::check_strength(pw, state.config().auth.password_min_length)?;
            Some(password::hash(pw).await?)
        }
        None => None,
    };
    let mut tx = db::begin(state.pool()).await?;
    if users::by_email(&mut tx, &email).await?.is_some() {
        return Err(email_exists());
    }
    let user = users::create(
        &mut tx,
        NewUser {
            id: body.id,
            email: &email,
            password_hash: hash,
            user_metadata: users::bounded_metadata(
                body.user_metadata.clone().unwrap_or_else(|| json!({})),
            )?,
            app_metadata: users::bounded_metadata(
                body.app_metadata.clone().unwrap_or_else(|| json!({})),
            )?,
            confirmed: body.email_confirm.unwrap_or(false),
            identity: None,
        },
    )
    .await
    .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
        Some(code) if code == "23505" => AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_already_exists",
            "User already registered",
        ),
        _ => AuthError::from(e),
    })?;
    if let Some(ban) = body.ban_duration.as_deref() {
        set_ban(&mut tx, user.id, ban).await?;
    }
    let user = users::require(&mut tx, user.id).await?;
    let json = users::json_of(&mut tx, &user).await?;
    tx.commit().await?;
    Ok(Json(json))
}

/// `GET /admin/users/{id}`.
pub async fn get_user(
    State(state): State<AuthState>,
    _: Admin,
    Path(id): Path<String>,
) -> AuthResult<Json<Value>> {
    let id = parse_id(&id)?;
    let mut tx = db::begin(state.pool()).await?;
    let user = users::require(&mut tx, id).await?;
    let json = users::json_of(&mut tx, &user).await?;
    tx.commit().await?;
    Ok(Json(json))
}

/// `PUT /admin/users/{id}`: metadata objects are merged; `ban_duration` is a duration such
/// as `24h` or `none`.
pub async fn update_user(
    State(state): State<AuthState>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AdminUserBody>,
) -> AuthResult<Json<Value>> {
    let id = parse_id(&id)?;
    let mut tx = db::begin(state.pool()).await?;
    let user = users::require(&mut tx, id).await?;
    if let Some(email) = body.email.as_deref() {
        let email = users::parse_email(Some(email))?;
        if Some(email.as_str()) != user.email.as_deref() {
            if users::by_email(&mut tx, &email).await?.is_some() {
                return Err(email_exists());
            }
            super::user::change_email(&mut tx, id, &email).await?;
        }
    }
    if let Some(pw) = body.password.as_deref() {
        password::check_strength(pw, state.config().auth.password_min_length)?;
        let hash = password::hash(pw).await?;
        sqlx::query("update auth.users set encrypted_password = $2 where id = $1")
            .bind(id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    }
    if body.email_confirm == Some(true) {
        users::confirm_email(&mut tx, id).await?;
    }
    if let Some(data) = &body.user_metadata {
        sqlx::query("update auth.users set raw_user_meta_data = $2 where id = $1")
            .bind(id)
            .bind(users::merge_metadata(&user.raw_user_meta_data, data)?)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(data) = &body.app_metadata {
        sqlx::query("update auth.users set raw_app_meta_data = $2 where id = $1")
            .bind(id)
            .bind(users::merge_metadata(&user.raw_app_meta_data, data)?)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(ban) = body.ban_duration.as_deref() {
        set_ban(&mut tx, id, ban).await?;
    }
    let user = users::require(&mut tx, id).await?;
    let json = users::json_of(&mut tx, &user).await?;
    tx.commit().await?;
    Ok(Json(json))
}

/// `DELETE /admin/users/{id}` with `{should_soft_delete}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct DeleteBody {
    should_soft_delete: Option<bool>,
}

/// Deletes a user: hard by default (their data goes with them), or soft (kept, unusable,
/// the email freed).
pub async fn delete_user(
    State(state): State<AuthState>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DeleteBody>,
) -> AuthResult<Json<Value>> {
    let id = parse_id(&id)?;
    let mut tx = db::begin(state.pool()).await?;
    let sql = if body.should_soft_delete.unwrap_or(false) {
        "update auth.users set deleted_at = now(), email = null, phone = null, \
             encrypted_password = null where id = $1 and deleted_at is null"
    } else {
        "delete from auth.users where id = $1"
    };
    let done = sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Err(AuthError::user_not_found());
    }
    sqlx::query("delete from auth.sessions where user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(json!({})))
}

/// `POST /admin/generate_link`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GenerateLinkBody {
    #[serde(rename = "type")]
    kind: String,
    email: String,
    password: Option<String>,
    new_email: Option<String>,
    data: Option<Value>,
    redirect_to: Option<String>,
}

/// Makes an email link without sending it: the User fields plus `action_link`,
/// `email_otp`, `hashed_token`, `redirect_to` and `verification_type`.
pub async fn generate_link(
    State(state): State<AuthState>,
    _: Admin,
    Query(query): Query<super::RedirectQuery>,
    JsonBody(body): JsonBody<GenerateLinkBody>,
) -> AuthResult<Json<Value>> {
    let email = users::parse_email(Some(&body.email))?;
    let redirect =
        state.redirect_target(body.redirect_to.as_deref().or(query.redirect_to.as_deref()));
    let mut tx = db::begin(state.pool()).await?;
    let existing = users::by_email(&mut tx, &email).await?;
    let (user, purpose, otp_email) = match body.kind.as_str() {
        "signup" | "invite" => {
            if existing.is_some() {
                return Err(email_exists());
            }
            let (hash, purpose) = if body.kind == "signup" {
                let pw = body
                    .password
                    .as_deref()
                    .ok_or_else(|| AuthError::validation("Signup requires a valid password"))?;
                password::check_strength(pw, state.config().auth.password_min_length)?;
                (Some(password::hash(pw).await?), Purpose::Confirmation)
            } else {
                (None, Purpose::Invite)
            };
            let user = users::create(
                &mut tx,
                NewUser {
                    id: None,
                    email: &email,
                    password_hash: hash,
                    user_metadata: users::bounded_metadata(
                        body.data.clone().unwrap_or_else(|| json!({})),
                    )?,
                    app_metadata: json!({}),
                    confirmed: false,
                    identity: None,
                },
            )
            .await?;
            (user, purpose, email.clone())
        }
        "magiclink" | "recovery" => {
            let user = existing.ok_or_else(AuthError::user_not_found)?;
            let purpose = if body.kind == "magiclink" {
                Purpose::MagicLink
            } else {
                Purpose::Recovery
            };
            (user, purpose, email.clone())
        }
        "email_change_current" | "email_change_new" => {
            let user = existing.ok_or_else(AuthError::user_not_found)?;
            let new_email = body
                .new_email
                .as_deref()
                .and_then(users::normalize_email)
                .ok_or_else(|| {
                    AuthError::validation("new_email is required for an email change")
                })?;
            if users::by_email(&mut tx, &new_email).await?.is_some() {
                return Err(email_exists());
            }
            sqlx::query("update auth.users set email_change = $2, email_change_sent_at = now() where id = $1")
                .bind(user.id)
                .bind(&new_email)
                .execute(&mut *tx)
                .await?;
            (user, Purpose::EmailChange, new_email)
        }
        other => {
            return Err(AuthError::validation(format!(
                "Invalid email action link type requested: {other}"
            )));
        }
    };
    let issued = otp::issue(&mut tx, user.id, &otp_email, purpose).await?;
    let user = users::require(&mut tx, user.id).await?;
    let mut json = users::json_of(&mut tx, &user).await?;
    tx.commit().await?;
    if let Value::Object(map) = &mut json {
        map.insert(
            "action_link".into(),
            Value::from(links::verify_link(
                &state,
                &issued.token_hash,
                purpose,
                &redirect,
            )),
        );
        map.insert("email_otp".into(), Value::from(issued.otp));
        map.insert("hashed_token".into(), Value::from(issued.token_hash));
        map.insert("redirect_to".into(), Value::from(redirect));
        map.insert(
            "verification_type".into(),
            Value::from(purpose.verify_type()),
        );
    }
    Ok(Json(json))
}

pub(crate) fn parse_id(id: &str) -> AuthResult<Uuid> {
    id.parse()
        .map_err(|_| AuthError::validation("user_id must be an UUID"))
}

pub(crate) fn email_exists() -> AuthError {
    AuthError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "email_exists",
        "A user with this email address has already been registered",
    )
}

async fn set_ban(conn: &mut sqlx::PgConnection, user: Uuid, duration: &str) -> AuthResult<()> {
    let until = if duration == "none" {
        None
    } else {
        Some(Utc::now() + parse_duration(duration)?)
    };
    sqlx::query("update auth.users set banned_until = $2 where id = $1")
        .bind(user)
        .bind(until)
        .execute(&mut *conn)
        .await?;
    if until.is_some() {
        sqlx::query("delete from auth.sessions where user_id = $1")
            .bind(user)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A Go-style duration: `24h`, `1h30m`, `90s`.
fn parse_duration(text: &str) -> AuthResult<Duration> {
    let bad = || AuthError::validation("invalid format for ban duration");
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += match c {
            'h' => Duration::hours(n),
            'm' => Duration::minutes(n),
            's' => Duration::seconds(n),
            _ => return Err(bad()),
        };
    }
    if !number.is_empty() || total <= Duration::zero() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(
            parse_duration("24h").expect("valid in this test"),
            Duration::hours(24)
        );
        assert_eq!(
            parse_duration("1h30m").expect("valid in this test"),
            Duration::minutes(90)
        );
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("x").is_err());
    }
}
