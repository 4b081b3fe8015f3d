//! `POST /token?grant_type=password|refresh_token|pkce`.

use std::collections::HashMap;

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
    extract::{ClientIp, JsonBody},
    flow, password, ratelimit, sessions,
    state::AuthState,
    users,
};

/// Every grant's fields (each grant reads its own).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    auth_code: Option<String>,
    code_verifier: Option<String>,
    provider: Option<String>,
}

/// Issues tokens for a grant.
pub async fn token(
    State(state): State<AuthState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody<TokenBody>,
) -> AuthResult<Json<Value>> {
    match query.get("grant_type").map(String::as_str) {
        Some("password") => {
            let session = password_grant(&state, &ip, body).await;
            event("sign_in", &session);
            session.map(Json)
        }
        Some("refresh_token") => {
            let token = body.refresh_token.unwrap_or_default();
            if token.is_empty() {
                return Err(AuthError::oauth("refresh_token required"));
            }
            let auth = &state.config().auth;
            ratelimit::hit(
                state.pool(),
                "refresh_ip",
                &ip,
                auth.rate_limit_refresh,
                ratelimit::FIVE_MINUTES,
            )
            .await?;
            let tx = db::begin(state.pool()).await?;
            let session = sessions::refresh(tx, &state, &token).await;
            event("refresh", &session);
            session.map(Json)
        }
        Some("pkce") => {
            let auth = &state.config().auth;
            ratelimit::hit(
                state.pool(),
                "verify_ip",
                &ip,
                auth.rate_limit_auth,
                ratelimit::FIVE_MINUTES,
            )
            .await?;
            let mut tx = db::begin(state.pool()).await?;
            let (user_id, method) = flow::exchange(
                &mut tx,
                body.auth_code.as_deref().unwrap_or_default(),
                body.code_verifier.as_deref().unwrap_or_default(),
            )
            .await?;
            let user = users::by_id(&mut tx, user_id)
                .await?
                .filter(|u| u.deleted_at.is_none())
                .ok_or_else(AuthError::user_not_found)?;
            let session = sessions::start(&mut tx, &state, &user, &method).await?;
            tx.commit().await?;
            Ok(Json(session))
        }
        // Sign-in with a wallet: no Web3 provider is configurable in Tally.
        Some("web3") => Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "web3_provider_disabled",
            "Web3 provider is disabled",
        )),
        // Sign-in with a social provider's ID token: none is configurable in Tally (SSO over
        // OpenID Connect goes through `/sso`).
        Some("id_token") => Err(id_token_disabled(body.provider.as_deref())),
        _ => Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "unsupported_grant_type",
        )),
    }
}

/// Counts an auth event and how it ended (`tally_auth_events_total`): `ok`, `refused` (bad
/// credentials, a reused token…) or `rate_limited`.
pub(crate) fn event<T>(name: &'static str, result: &AuthResult<T>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) if e.status() == StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        Err(_) => "refused",
    };
    metrics::counter!("tally_auth_events_total", "event" => name, "outcome" => outcome)
        .increment(1);
}

/// GoTrue's answer to an ID token from a provider that is not enabled: the provider's issuer
/// for the ones it knows by name, else "not allowed".
fn id_token_disabled(provider: Option<&str>) -> AuthError {
    let issuer = match provider.unwrap_or_default() {
        "google" => Some("https://accounts.google.com"),
        "apple" => Some("https://appleid.apple.com"),
        "azure" => Some("https://login.microsoftonline.com/common/v2.0"),
        "facebook" => Some("https://www.facebook.com"),
        "kakao" => Some("https://kauth.kakao.com"),
        _ => None,
    };
    match issuer {
        Some(issuer) => AuthError::new(
            StatusCode::BAD_REQUEST,
            "provider_disabled",
            format!("Provider (issuer {issuer:?}) is not enabled"),
        ),
        None => AuthError::validation(format!(
            "Custom OIDC provider {:?} not allowed",
            provider.unwrap_or_default()
        )),
    }
}

async fn password_grant(state: &AuthState, ip: &str, body: TokenBody) -> AuthResult<Value> {
    if body.phone.is_some() && body.email.is_none() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "phone_provider_disabled",
            "Phone logins are disabled",
        ));
    }
    let email = body
        .email
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_lowercase();
    let password = body.password.unwrap_or_default();
    if password.len() > password::MAX_SIGN_IN_BYTES {
        return Err(AuthError::validation(format!(
            "Password cannot be longer than {} characters",
            password::MAX_LENGTH
        )));
    }
    let auth = &state.config().auth;
    ratelimit::attempt(state.pool(), "signin", ip, &email, auth.rate_limit_auth).await?;
    let mut tx = db::begin(state.pool()).await?;
    let user = users::by_email(&mut tx, &email).await?;
    let hash = user.as_ref().and_then(|u| u.encrypted_password.as_deref());
    if !password::verify(&password, hash).await? {
        return Err(AuthError::invalid_credentials());
    }
    let Some(user) = user else {
        return Err(AuthError::invalid_credentials());
    };
    if user.is_banned() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "user_banned",
            "User is banned",
        ));
    }
    if user.email_confirmed_at.is_none() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    let session = sessions::start(&mut tx, state, &user, "password").await?;
    tx.commit().await?;
    Ok(session)
}
