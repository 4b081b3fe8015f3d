//! Request extractors: JSON bodies with GoTrue's errors, the client's address, the signed-in
//! user behind a bearer token, and the service_role caller of the admin API.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{StatusCode, request::Parts},
};
use serde::de::DeserializeOwned;
use tally_core::gateway;
use uuid::Uuid;

use crate::{
    db,
    error::AuthError,
    state::AuthState,
    users::{self, User},
};

/// A JSON body; unreadable JSON is 400 `bad_json`. An empty body reads as `{}`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| AuthError::new(StatusCode::BAD_REQUEST, "bad_json", e.to_string()))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body already read, as [`JsonBody`] reads it (blank is `{}`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        AuthError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("Could not parse request body as JSON: {e}"),
        )
    })
}

/// The client's IP address: the socket's peer, or the first `X-Forwarded-For` hop when
/// `trust_proxy` is on.
pub struct ClientIp(pub String);

impl FromRequestParts<AuthState> for ClientIp {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        if state.config().auth.trust_proxy
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return Ok(ClientIp(ip.to_string()));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(ClientIp(peer))
    }
}

/// The signed-in user behind `Authorization: Bearer <access token>`, with a live session.
pub struct CurrentUser {
    /// The user.
    pub user: User,
    /// The token's session.
    pub session_id: Option<Uuid>,
    /// The session's assurance level (`aal1` for a token without a session).
    pub aal: String,
}

impl CurrentUser {
    /// Whether the session reached aal2 (a second factor verified).
    pub fn is_aal2(&self) -> bool {
        matches!(self.aal.as_str(), "aal2" | "aal3")
    }
}

impl FromRequestParts<AuthState> for CurrentUser {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let claims = state.keys().verify(token).map_err(AuthError::bad_jwt)?;
        let audience_ok = match claims.0.get("aud") {
            Some(serde_json::Value::String(aud)) => aud == "authenticated",
            Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a == "authenticated"),
            _ => false,
        };
        if !audience_ok {
            return Err(AuthError::bad_jwt(
                "token is not for the \"authenticated\" audience",
            ));
        }
        let id: Uuid = claims.sub().and_then(|s| s.parse().ok()).ok_or_else(|| {
            AuthError::new(
                StatusCode::BAD_REQUEST,
                "bad_jwt",
                "invalid claim: sub claim must be a UUID",
            )
        })?;
        // A session id that is not a UUID names no session: such a token could never be
        // revoked, so it is refused as one whose session is gone (as GoTrue does).
        let session_id = match claims.str("session_id") {
            None => None,
            Some(s) => Some(s.parse::<Uuid>().map_err(|_| session_not_found())?),
        };
        let mut tx = db::begin(state.pool()).await?;
        let mut aal = "aal1".to_owned();
        if let Some(session) = session_id {
            let alive: Option<String> = sqlx::query_scalar(
                "select aal from auth.sessions where id = $1 and user_id = $2 \
                   and (not_after is null or not_after > now())",
            )
            .bind(session)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            aal = alive.ok_or_else(session_not_found)?;
        }
        let user = users::by_id(&mut tx, id).await?;
        tx.commit().await?;
        let Some(user) = user.filter(|u| u.deleted_at.is_none()) else {
            return Err(AuthError::new(
                StatusCode::FORBIDDEN,
                "user_not_found",
                "User from sub claim in JWT does not exist",
            ));
        };
        if user.is_banned() {
            return Err(AuthError::new(
                StatusCode::FORBIDDEN,
                "user_banned",
                "User is banned",
            ));
        }
        Ok(CurrentUser {
            user,
            session_id,
            aal,
        })
    }
}

/// A caller holding the service_role key (or another token whose role is `service_role` or
/// `supabase_admin`).
pub struct Admin;

impl FromRequestParts<AuthState> for Admin {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let claims = state.keys().verify(token).map_err(AuthError::bad_jwt)?;
        // GoTrue's default admin roles (`JWT_ADMIN_ROLES`).
        if matches!(claims.role(), Some("service_role" | "supabase_admin")) {
            Ok(Admin)
        } else {
            Err(AuthError::not_admin())
        }
    }
}

fn session_not_found() -> AuthError {
    AuthError::new(
        StatusCode::FORBIDDEN,
        "session_not_found",
        "Session from session_id claim in JWT does not exist",
    )
}

fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|_| gateway::bearer_token(&parts.headers))
        .ok_or_else(AuthError::no_authorization)
}
