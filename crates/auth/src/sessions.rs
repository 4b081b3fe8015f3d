//! Sessions: access tokens (JWTs with GoTrue's claims), opaque single-use refresh tokens
//! stored hashed, rotation with reuse detection, and sign-out.

use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    error::{AuthError, AuthResult},
    state::AuthState,
    users::{self, User},
};

/// A new opaque token: 16 random bytes, hex.
pub fn random_token() -> String {
    tally_core::config::random_hex(16)
}

/// SHA-256 of a token, hex: what the database keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session for `user` signed in by `method` and returns the Session JSON.
pub async fn start(
    conn: &mut PgConnection,
    state: &AuthState,
    user: &User,
    method: &str,
) -> AuthResult<Value> {
    let amr = json!([{"method": method, "timestamp": Utc::now().timestamp()}]);
    let session: Uuid = sqlx::query_scalar(
        "insert into auth.sessions (user_id, aal, amr) values ($1, 'aal1', $2) returning id",
    )
    .bind(user.id)
    .bind(&amr)
    .fetch_one(&mut *conn)
    .await?;
    let refresh = issue_refresh_token(conn, user.id, session, None).await?;
    sqlx::query("update auth.users set last_sign_in_at = now() where id = $1")
        .bind(user.id)
        .execute(&mut *conn)
        .await?;
    let user = users::require(conn, user.id).await?;
    let claims = SessionClaims {
        id: session,
        aal: "aal1".to_owned(),
        amr,
    };
    session_json(conn, state, &user, &claims, &refresh).await
}

/// What an access token says of its session: which one, its assurance level (`aal1`, or
/// `aal2` once a second factor was verified) and the methods that reached it, newest first.
pub struct SessionClaims {
    /// The session id.
    pub id: Uuid,
    /// `aal1` or `aal2`.
    pub aal: String,
    /// `[{"method", "timestamp"}]`.
    pub amr: Value,
}

/// The Session JSON of a new token pair: an access token for `claims` and `refresh`.
pub async fn session_json(
    conn: &mut PgConnection,
    state: &AuthState,
    user: &User,
    claims: &SessionClaims,
    refresh: &str,
) -> AuthResult<Value> {
    let (access_token, expires_at) = access_token(state, user, claims)?;
    Ok(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": state.config().jwt_expiry,
        "expires_at": expires_at,
        "refresh_token": refresh,
        "user": users::json_of(conn, user).await?,
    }))
}

/// Mints an access token with GoTrue's claims; returns it with its `exp`.
fn access_token(
    state: &AuthState,
    user: &User,
    session: &SessionClaims,
) -> AuthResult<(String, i64)> {
    let now = Utc::now().timestamp();
    let exp = now + state.config().jwt_expiry as i64;
    let claims = json!({
        "iss": state.issuer(),
        "sub": user.id,
        "aud": user.aud,
        "exp": exp,
        "iat": now,
        "email": user.email_or_empty(),
        "phone": user.phone.as_deref().unwrap_or_default(),
        "app_metadata": user.raw_app_meta_data,
        "user_metadata": user.raw_user_meta_data,
        "role": user.role,
        "aal": session.aal,
        "amr": session.amr,
        "session_id": session.id,
        "is_anonymous": user.is_anonymous,
    });
    let token = state
        .keys()
        .sign_session(&claims)
        .map_err(AuthError::unexpected)?;
    Ok((token, exp))
}

/// A new refresh token of `session`, stored hashed, child of the token hashed `parent`.
pub async fn issue_refresh_token(
    conn: &mut PgConnection,
    user: Uuid,
    session: Uuid,
    parent: Option<&str>,
) -> sqlx::Result<String> {
    let token = random_token();
    sqlx::query(
        "insert into auth.refresh_tokens (token, user_id, session_id, parent) values ($1, $2, $3, $4)",
    )
    .bind(token_hash(&token))
    .bind(user)
    .bind(session)
    .bind(parent)
    .execute(conn)
    .await?;
    Ok(token)
}

/// Exchanges a refresh token for a new session token pair. The presented token is revoked
/// and a new one issued. A token presented again after the reuse interval means it leaked:
/// the whole session is revoked. Within the interval (concurrent refreshes from one client)
/// a fresh sibling token is issued instead. Commits the transaction itself, so that a
/// revocation sticks even though the request fails.
pub async fn refresh(
    mut tx: Transaction<'static, Postgres>,
    state: &AuthState,
    token: &str,
) -> AuthResult<Value> {
    let hash = token_hash(token);
    let row: Option<(i64, bool, Uuid, Uuid, bool, String, Value)> = sqlx::query_as(
        "select rt.id, rt.revoked, rt.session_id, rt.user_id, \
                rt.revoked and rt.updated_at > now() - make_interval(secs => $2), s.aal, s.amr \
         from auth.refresh_tokens rt join auth.sessions s on s.id = rt.session_id \
         where rt.token = $1 for update of rt, s",
    )
    .bind(&hash)
    .bind(state.config().auth.refresh_reuse_interval as f64)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, revoked, session, user_id, within_grace, aal, amr)) = row else {
        return Err(AuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        ));
    };
    let expired: bool = sqlx::query_scalar(
        "select not_after is not null and not_after < now() from auth.sessions where id = $1",
    )
    .bind(session)
    .fetch_one(&mut *tx)
    .await?;
    if expired {
        return Err(AuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "session_expired",
            "Invalid Refresh Token: Session Expired",
        ));
    }
    if revoked && !within_grace {
        sqlx::query("delete from auth.sessions where id = $1")
            .bind(session)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::warn!(%session, "refresh token reused: session revoked");
        return Err(AuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "refresh_token_already_used",
            "Invalid Refresh Token: Already Used",
        ));
    }
    let user = users::require(&mut tx, user_id).await?;
    if user.deleted_at.is_some() {
        return Err(AuthError::user_not_found());
    }
    if user.is_banned() {
        return Err(AuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "user_banned",
            "User is banned",
        ));
    }
    if !revoked {
        sqlx::query("update auth.refresh_tokens set revoked = true where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let next = issue_refresh_token(&mut tx, user_id, session, Some(&hash)).await?;
    sqlx::query("update auth.sessions set refreshed_at = now() where id = $1")
        .bind(session)
        .execute(&mut *tx)
        .await?;
    let claims = SessionClaims {
        id: session,
        aal,
        amr,
    };
    let body = session_json(&mut tx, state, &user, &claims, &next).await?;
    tx.commit().await?;
    Ok(body)
}

/// Which sessions a sign-out ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every session of the user.
    Global,
    /// This session only.
    Local,
    /// Every session but this one.
    Others,
}

/// Ends sessions of `user` per `scope`, relative to `current`.
pub async fn sign_out(
    conn: &mut PgConnection,
    user: Uuid,
    current: Option<Uuid>,
    scope: Scope,
) -> sqlx::Result<()> {
    // Every variant binds both parameters, so each text must use both.
    let sql = match scope {
        Scope::Global => {
            "delete from auth.sessions where user_id = $1 and ($2::uuid is null or true)"
        }
        Scope::Local => "delete from auth.sessions where user_id = $1 and id = $2",
        Scope::Others => "delete from auth.sessions where user_id = $1 and id is distinct from $2",
    };
    sqlx::query(sql)
        .bind(user)
        .bind(current)
        .execute(conn)
        .await?;
    Ok(())
}
