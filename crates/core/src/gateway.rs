//! The API gateway's checks, as Supabase's gateway does them: every `/auth/v1`, `/rest/v1`
//! and `/realtime/v1` request carries an `apikey` (header or query) that is one of the
//! project's keys; and who the caller is, from the bearer token — [`Caller::of`], which REST,
//! storage, functions and realtime's HTTP API all use, each mapping [`CallerError`] to its own
//! error shape (realtime's sockets check their tokens with [`verify_live`]).

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;
use sqlx::PgPool;

use crate::{Claims, JwtError, JwtKeys, RequestContext};

/// Middleware: refuses requests without a valid project key with 401 `{"message": …}`.
pub async fn require_apikey(State(keys): State<JwtKeys>, request: Request, next: Next) -> Response {
    let from_header = request
        .headers()
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_query = request.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "apikey")
            .map(|(_, v)| v.to_owned())
    });
    let Some(key) = from_header.or(from_query) else {
        return unauthorized(
            "No API key found in request",
            "No `apikey` request header or url param was found.",
        );
    };
    match keys.verify(&key) {
        Ok(claims) if matches!(claims.role(), Some("anon" | "service_role")) => {
            next.run(request).await
        }
        _ => unauthorized(
            "Invalid API key",
            "Double check your Supabase `anon` or `service_role` API key.",
        ),
    }
}

fn unauthorized(message: &str, hint: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": message, "hint": hint})),
    )
        .into_response()
}

/// The bearer token of a request: `Authorization: Bearer …`, else the `apikey` header (as
/// the Supabase clients send the key in both when nobody is signed in).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or_else(|| headers.get("apikey").and_then(|v| v.to_str().ok()))
}

/// A service's state, as far as identifying callers goes.
pub trait Gateway {
    /// The pool sessions are checked on.
    fn pool(&self) -> &PgPool;
    /// The project's keys.
    fn keys(&self) -> &JwtKeys;
}

/// Who is calling: the role and claims of the request's bearer token (see [`bearer_token`]),
/// verified and, for a user, with a live session.
pub struct Caller(pub RequestContext);

impl Caller {
    /// The caller of a request with `headers`.
    pub async fn of(gateway: &impl Gateway, headers: &HeaderMap) -> Result<Self, CallerError> {
        let token = bearer_token(headers).ok_or(CallerError::Missing)?;
        Ok(Self(
            resolve_caller(gateway.pool(), gateway.keys(), token).await?,
        ))
    }
}

/// The verified, live claims of a request's bearer token.
pub async fn authenticate(
    gateway: &impl Gateway,
    headers: &HeaderMap,
) -> Result<Claims, CallerError> {
    let token = bearer_token(headers).ok_or(CallerError::Missing)?;
    verify_live(gateway.pool(), gateway.keys(), token).await
}

/// Why a caller could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    /// The request carries no token at all.
    #[error("Missing authorization header")]
    Missing,
    /// The token is not acceptable.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The token's session was signed out or has expired.
    #[error("Session not found or revoked")]
    SessionRevoked,
    /// The database could not be asked.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Verifies a bearer token and, for user tokens, that their session is still alive (a
/// signed-out session's tokens are refused everywhere, not only by `/auth/v1`).
pub async fn resolve_caller(
    pool: &PgPool,
    keys: &JwtKeys,
    token: &str,
) -> Result<RequestContext, CallerError> {
    Ok(RequestContext::from_claims(
        verify_live(pool, keys, token).await?,
    )?)
}

/// Verifies a token's signature and expiry and, for user tokens, that their session is alive;
/// the claims of a token that passes.
pub async fn verify_live(
    pool: &PgPool,
    keys: &JwtKeys,
    token: &str,
) -> Result<Claims, CallerError> {
    let claims = keys.verify(token)?;
    check_session(pool, &claims).await?;
    Ok(claims)
}

async fn check_session(pool: &PgPool, claims: &Claims) -> Result<(), CallerError> {
    let Some(session) = claims.str("session_id") else {
        return Ok(());
    };
    let Ok(session) = session.parse::<uuid::Uuid>() else {
        return Err(CallerError::SessionRevoked);
    };
    let active: bool = sqlx::query_scalar("select private.session_is_active($1)")
        .bind(session)
        .fetch_one(pool)
        .await?;
    if active {
        Ok(())
    } else {
        Err(CallerError::SessionRevoked)
    }
}
