//! `/factors`: multi-factor sign-in with TOTP, as GoTrue answers auth-js's `mfa.*` methods.
//! Enroll (a secret, its URI and QR code), challenge, verify (the session rises to aal2 and a
//! new token pair says so), unenroll; and the admin API's factor list and removal.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    audit, db,
    error::{AuthError, AuthResult},
    extract::{Admin, ClientIp, CurrentUser, JsonBody},
    factors::{self, Factor},
    mfa, ratelimit,
    sessions::{self, SessionClaims},
    state::AuthState,
    users,
};

/// `POST /factors`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EnrollBody {
    factor_type: Option<String>,
    friendly_name: Option<String>,
    issuer: Option<String>,
}

/// `POST /factors/{id}/verify`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VerifyBody {
    challenge_id: Option<String>,
    code: Option<String>,
}

/// Enrolls a TOTP factor (unverified until its first code is verified).
pub async fn enroll(
    State(state): State<AuthState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<EnrollBody>,
) -> AuthResult<Json<Value>> {
    refuse_anonymous(&current)?;
    match body.factor_type.as_deref() {
        Some("totp") => {}
        Some("phone") => {
            return Err(unprocessable(
                "mfa_phone_enroll_not_enabled",
                "MFA enroll is disabled for Phone",
            ));
        }
        Some("webauthn") => {
            return Err(unprocessable(
                "mfa_webauthn_enroll_not_enabled",
                "MFA enroll is disabled for WebAuthn",
            ));
        }
        _ => {
            return Err(AuthError::validation(
                "factor_type needs to be totp, phone, or webauthn",
            ));
        }
    }
    let user = &current.user;
    let name = body.friendly_name.unwrap_or_default();
    let mut tx = db::begin(state.pool()).await?;
    factors::drop_expired(&mut tx, user.id).await?;
    let existing = factors::of_user(&mut tx, user.id).await?;
    if !name.is_empty() && existing.iter().any(|f| f.friendly_name == name) {
        return Err(unprocessable(
            "mfa_factor_name_conflict",
            format!("A factor with the friendly name \"{name}\" for this user already exists"),
        ));
    }
    if existing.len() as i64 >= mfa::MAX_FACTORS {
        return Err(unprocessable(
            "too_many_enrolled_mfa_factors",
            "Maximum number of verified factors reached, unenroll to continue",
        ));
    }
    if existing.iter().any(Factor::is_verified) && !current.is_aal2() {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "insufficient_aal",
            "AAL2 required to enroll a new factor",
        ));
    }
    let issuer = body
        .issuer
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| site_host(&state));
    let account = user
        .email
        .clone()
        .or_else(|| user.phone.clone())
        .unwrap_or_else(|| user.id.to_string());
    let made = mfa::enroll(&issuer, &account)?;
    let id: Uuid = sqlx::query_scalar(
        "insert into auth.mfa_factors (user_id, friendly_name, factor_type, secret) \
         values ($1, $2, 'totp', $3) returning id",
    )
    .bind(user.id)
    .bind(&name)
    .bind(&made.secret)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        "factor_in_progress",
        user.id,
        json!({"factor_id": id}),
        &ip,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "id": id,
        "type": "totp",
        "friendly_name": name,
        "totp": {"qr_code": made.qr_code, "secret": made.secret, "uri": made.uri},
    })))
}

/// Opens a challenge on one of the caller's factors, answerable from the same address for
/// five minutes.
pub async fn challenge(
    State(state): State<AuthState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(factor_id): Path<String>,
) -> AuthResult<Json<Value>> {
    let mut tx = db::begin(state.pool()).await?;
    let factor = load(&mut tx, &current, &factor_id).await?;
    let (id, created): (Uuid, chrono::DateTime<Utc>) = sqlx::query_as(
        "insert into auth.mfa_challenges (factor_id, ip_address) values ($1, $2) \
         returning id, created_at",
    )
    .bind(factor.id)
    .bind(&ip)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("update auth.mfa_factors set last_challenged_at = $2 where id = $1")
        .bind(factor.id)
        .bind(created)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        "challenge_created",
        current.user.id,
        json!({"factor_id": factor.id, "factor_status": factor.status}),
        &ip,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "id": id,
        "type": factor.factor_type,
        "expires_at": created.timestamp() + mfa::CHALLENGE_EXPIRY_SECS,
    })))
}

/// Verifies a code against a challenge. The code's time step is accepted once; on success
/// the session rises to aal2 (the person's other aal1 sessions end, as in GoTrue) and a new
/// token pair is returned.
pub async fn verify(
    State(state): State<AuthState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(factor_id): Path<String>,
    JsonBody(body): JsonBody<VerifyBody>,
) -> AuthResult<Json<Value>> {
    let code = body.code.unwrap_or_default();
    if code.is_empty() {
        return Err(AuthError::validation("Code needs to be non-empty"));
    }
    let challenge_id = body
        .challenge_id
        .as_deref()
        .and_then(|c| c.parse::<Uuid>().ok())
        .ok_or_else(|| AuthError::validation("challenge_id must be a UUID"))?;
    let Some(session) = current.session_id else {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Verifying a factor needs a token of a session",
        ));
    };
    // Per person, whatever their address: guessing a six-digit code takes many tries.
    let user = current.user.id;
    let limit = state.config().auth.rate_limit_auth;
    ratelimit::hit(
        state.pool(),
        "mfa_verify",
        &user.to_string(),
        limit,
        ratelimit::FIVE_MINUTES,
    )
    .await?;
    let mut tx = db::begin(state.pool()).await?;
    let factor = load(&mut tx, &current, &factor_id).await?;
    check_challenge(&mut tx, factor.id, challenge_id, &ip).await?;
    let (secret, last_step): (Option<String>, Option<i64>) = sqlx::query_as(
        "select secret, last_totp_step from auth.mfa_factors where id = $1 for update",
    )
    .bind(factor.id)
    .fetch_one(&mut *tx)
    .await?;
    let secret = secret.ok_or_else(|| AuthError::unexpected("a TOTP factor without a secret"))?;
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
    let step = mfa::check(&secret, &code, now)?.and_then(|s| i64::try_from(s).ok());
    let Some(step) = step.filter(|s| last_step.is_none_or(|last| *s > last)) else {
        return Err(unprocessable(
            "mfa_verification_failed",
            if step.is_some() {
                "Invalid TOTP code entered: this code was already used, wait for the next one"
            } else {
                "Invalid TOTP code entered"
            },
        ));
    };
    sqlx::query("update auth.mfa_challenges set verified_at = now() where id = $1")
        .bind(challenge_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "update auth.mfa_factors set status = 'verified', last_totp_step = $2 where id = $1",
    )
    .bind(factor.id)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    let body = raise_session(&mut tx, &state, &current, session, &factor).await?;
    audit::record(
        &mut tx,
        "verification_attempted",
        user,
        json!({"factor_id": factor.id, "challenge_id": challenge_id, "factor_type": factor.factor_type}),
        &ip,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(body))
}

/// Removes one of the caller's factors; a verified one only from an aal2 session.
pub async fn unenroll(
    State(state): State<AuthState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(factor_id): Path<String>,
) -> AuthResult<Json<Value>> {
    let mut tx = db::begin(state.pool()).await?;
    let factor = load(&mut tx, &current, &factor_id).await?;
    if factor.is_verified() && !current.is_aal2() {
        return Err(unprocessable(
            "insufficient_aal",
            "AAL2 required to unenroll verified factor",
        ));
    }
    factors::remove(&mut tx, &factor).await?;
    audit::record(
        &mut tx,
        "factor_unenrolled",
        current.user.id,
        json!({"factor_id": factor.id, "factor_status": factor.status, "session_id": current.session_id}),
        &ip,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"id": factor.id})))
}

/// `GET /admin/users/{id}/factors`: a person's factors.
pub async fn admin_list(
    State(state): State<AuthState>,
    _: Admin,
    Path(user_id): Path<String>,
) -> AuthResult<Json<Value>> {
    let mut tx = db::begin(state.pool()).await?;
    let user = admin_user(&mut tx, &user_id).await?;
    let list = factors::of_user(&mut tx, user).await?;
    tx.commit().await?;
    Ok(Json(list.iter().map(Factor::to_json).collect()))
}

/// `DELETE /admin/users/{id}/factors/{factor_id}`: the recovery of a person who lost their
/// authenticator; answers the removed factor.
pub async fn admin_delete(
    State(state): State<AuthState>,
    _: Admin,
    Path((user_id, factor_id)): Path<(String, String)>,
) -> AuthResult<Json<Value>> {
    let mut tx = db::begin(state.pool()).await?;
    let user = admin_user(&mut tx, &user_id).await?;
    let factor = owned(&mut tx, user, &factor_id).await?;
    factors::remove(&mut tx, &factor).await?;
    audit::record(
        &mut tx,
        "factor_deleted",
        user,
        json!({"factor_id": factor.id, "by": "admin"}),
        "",
    )
    .await?;
    tx.commit().await?;
    Ok(Json(factor.to_json()))
}

/// Raises `session` to aal2 by `factor`: its amr gains the factor's method, its refresh
/// tokens are replaced (an aal1 refresh token must not mint aal2 tokens), the person's other
/// aal1 sessions end and their other unverified factors of the type go. The new Session JSON.
async fn raise_session(
    tx: &mut PgConnection,
    state: &AuthState,
    current: &CurrentUser,
    session: Uuid,
    factor: &Factor,
) -> AuthResult<Value> {
    let user = current.user.id;
    let entry = json!([{"method": factor.factor_type, "timestamp": Utc::now().timestamp()}]);
    let amr: Value = sqlx::query_scalar(
        "update auth.sessions set aal = 'aal2', factor_id = $2, \
           amr = $3::jsonb || coalesce((select jsonb_agg(e) from jsonb_array_elements(amr) e \
                                        where e ->> 'method' <> $4), '[]') \
         where id = $1 returning amr",
    )
    .bind(session)
    .bind(factor.id)
    .bind(&entry)
    .bind(&factor.factor_type)
    .fetch_one(&mut *tx)
    .await?;
    // Removed, not revoked: a revoked token still mints a sibling within the reuse interval.
    sqlx::query("delete from auth.refresh_tokens where session_id = $1")
        .bind(session)
        .execute(&mut *tx)
        .await?;
    let refresh = sessions::issue_refresh_token(tx, user, session, None).await?;
    sqlx::query("delete from auth.sessions where user_id = $1 and aal = 'aal1' and id <> $2")
        .bind(user)
        .bind(session)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "delete from auth.mfa_factors where user_id = $1 and factor_type = $2 \
           and status = 'unverified' and id <> $3",
    )
    .bind(user)
    .bind(&factor.factor_type)
    .bind(factor.id)
    .execute(&mut *tx)
    .await?;
    let fresh = users::require(tx, user).await?;
    let claims = SessionClaims {
        id: session,
        aal: "aal2".to_owned(),
        amr,
    };
    sessions::session_json(tx, state, &fresh, &claims, &refresh).await
}

/// The challenge `id` of `factor`, open and from `ip`; an expired one is removed.
async fn check_challenge(
    tx: &mut PgConnection,
    factor: Uuid,
    id: Uuid,
    ip: &str,
) -> AuthResult<()> {
    let row: Option<(String, bool, bool)> = sqlx::query_as(
        "select ip_address, verified_at is not null, \
                created_at < now() - make_interval(secs => $3) \
         from auth.mfa_challenges where id = $1 and factor_id = $2",
    )
    .bind(id)
    .bind(factor)
    .bind(mfa::CHALLENGE_EXPIRY_SECS as f64)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((from, verified, expired)) = row else {
        return Err(unprocessable(
            "mfa_factor_not_found",
            "MFA factor with the provided challenge ID not found",
        ));
    };
    if verified || from != ip {
        return Err(unprocessable(
            "mfa_ip_address_mismatch",
            "Challenge and verify IP addresses mismatch.",
        ));
    }
    if expired {
        sqlx::query("delete from auth.mfa_challenges where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        return Err(unprocessable(
            "mfa_challenge_expired",
            format!(
                "MFA challenge {id} has expired, verify against another challenge or create a new challenge."
            ),
        ));
    }
    Ok(())
}

/// The caller's factor named in the path.
async fn load(tx: &mut PgConnection, current: &CurrentUser, id: &str) -> AuthResult<Factor> {
    refuse_anonymous(current)?;
    owned(tx, current.user.id, id).await
}

async fn owned(tx: &mut PgConnection, user: Uuid, id: &str) -> AuthResult<Factor> {
    let id = id.parse::<Uuid>().map_err(|_| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "validation_failed",
            "factor_id must be an UUID",
        )
    })?;
    factors::owned(tx, user, id).await?.ok_or_else(|| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "mfa_factor_not_found",
            "Factor not found",
        )
    })
}

async fn admin_user(tx: &mut PgConnection, id: &str) -> AuthResult<Uuid> {
    let id = id.parse::<Uuid>().map_err(|_| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "validation_failed",
            "user_id must be an UUID",
        )
    })?;
    users::by_id(tx, id)
        .await?
        .map(|u| u.id)
        .ok_or_else(AuthError::user_not_found)
}

fn refuse_anonymous(current: &CurrentUser) -> AuthResult<()> {
    if current.user.is_anonymous {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "anonymous_provider_disabled",
            "Anonymous user not allowed to perform these actions",
        ));
    }
    Ok(())
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The host of the site URL: the issuer an authenticator app shows.
fn site_host(state: &AuthState) -> String {
    let site = &state.config().auth.site_url;
    openidconnect::url::Url::parse(site)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Tally".to_owned())
}
