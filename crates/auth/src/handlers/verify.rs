//! `POST /verify` (a code or token hash → a session) and `GET /verify` (the email link →
//! a 303 back to the app with tokens in the fragment, or `?code=` for PKCE clients).

use axum::{
    Json,
    extract::{Query, State},
    http::{StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::{ClientIp, JsonBody},
    flow, links,
    otp::{self, Purpose},
    ratelimit, sessions,
    state::AuthState,
    users,
};

/// `POST /verify`: `{type, token_hash}` or `{type, email, token}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VerifyBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    token: Option<String>,
}

/// Redeems a mailed code or token hash for a session.
pub async fn verify(
    State(state): State<AuthState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<VerifyBody>,
) -> AuthResult<Json<Value>> {
    let auth = &state.config().auth;
    ratelimit::hit(
        state.pool(),
        "verify_ip",
        &ip,
        auth.rate_limit_auth,
        ratelimit::FIVE_MINUTES,
    )
    .await?;
    let kind = body.kind.as_deref().unwrap_or_default();
    if matches!(kind, "sms" | "phone_change") {
        return Err(phone_code(body.phone.as_deref()));
    }
    let purposes = Purpose::from_verify_type(kind)?;
    let hash = match (body.token_hash, body.email, body.token) {
        (Some(hash), _, _) if !hash.is_empty() => hash,
        (_, Some(email), Some(token)) if !token.is_empty() => {
            ratelimit::hit(
                state.pool(),
                "verify_email",
                &email.to_lowercase(),
                auth.rate_limit_auth,
                ratelimit::FIVE_MINUTES,
            )
            .await?;
            otp::hash_for(&email, token.trim())
        }
        _ => {
            return Err(AuthError::validation(
                "Verify requires a token_hash, or an email and a token",
            ));
        }
    };
    let mut tx = db::begin(state.pool()).await?;
    let (user, purpose) = redeem(&mut tx, &hash, purposes).await?;
    let user = users::require(&mut tx, user).await?;
    let session = sessions::start(&mut tx, &state, &user, purpose.authentication_method()).await?;
    tx.commit().await?;
    Ok(Json(session))
}

/// A code sent by SMS: Tally sends none, so no such code is valid — after the number's format
/// is checked, as GoTrue checks it (E.164, with `+` and spaces ignored).
fn phone_code(phone: Option<&str>) -> AuthError {
    let digits = phone
        .unwrap_or_default()
        .trim_start_matches('+')
        .replace(' ', "");
    let e164 = (2..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if e164 {
        AuthError::new(
            StatusCode::FORBIDDEN,
            "otp_expired",
            "Token has expired or is invalid",
        )
    } else {
        AuthError::validation("Invalid phone number format (E.164 required)")
    }
}

/// `GET /verify?token=&type=&redirect_to=`.
#[derive(Debug, Deserialize)]
pub struct VerifyLink {
    token: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    redirect_to: Option<String>,
}

/// Follows an email link and redirects back to the app.
pub async fn verify_link(
    State(state): State<AuthState>,
    Query(query): Query<VerifyLink>,
) -> Response {
    let redirect = state.redirect_target(query.redirect_to.as_deref());
    match follow_link(&state, &query, &redirect).await {
        Ok(location) => see_other(&location),
        Err(e) => {
            let description = e.message();
            let error = if e.status().is_server_error() {
                "server_error"
            } else {
                "access_denied"
            };
            let params = [
                ("error", error),
                ("error_code", e.code()),
                ("error_description", description),
            ];
            let with_query = links::with_query(&redirect, &params);
            let mut fragment = params.to_vec();
            fragment.push(("sb", ""));
            see_other(&links::with_fragment(&with_query, &fragment))
        }
    }
}

async fn follow_link(state: &AuthState, query: &VerifyLink, redirect: &str) -> AuthResult<String> {
    let purposes = Purpose::from_verify_type(query.kind.as_deref().unwrap_or_default())?;
    let hash = query
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::validation("Verify requires a token"))?;
    let mut tx = db::begin(state.pool()).await?;
    let (user, purpose) = redeem(&mut tx, hash, purposes).await?;
    if let Some(code) = flow::pending_code(&mut tx, user, purpose.authentication_method()).await? {
        tx.commit().await?;
        return Ok(links::with_query(redirect, &[("code", &code)]));
    }
    let user = users::require(&mut tx, user).await?;
    let session = sessions::start(&mut tx, state, &user, purpose.authentication_method()).await?;
    tx.commit().await?;
    Ok(links::session_fragment(
        redirect,
        &session,
        &[("type", purpose.verify_type())],
    ))
}

/// Redeems the token and applies what it confirms.
async fn redeem(
    tx: &mut sqlx::PgConnection,
    hash: &str,
    purposes: &[Purpose],
) -> AuthResult<(Uuid, Purpose)> {
    let (user, purpose, relates_to) = otp::redeem(tx, hash, purposes).await?;
    match purpose {
        Purpose::EmailChange => {
            let pending: Option<String> =
                sqlx::query_scalar("select email_change from auth.users where id = $1")
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
            if pending.as_deref() != Some(relates_to.as_str()) {
                return Err(AuthError::new(
                    StatusCode::FORBIDDEN,
                    "otp_expired",
                    "Token has expired or is invalid",
                ));
            }
            super::user::change_email(tx, user, &relates_to).await?;
        }
        _ => users::confirm_email(tx, user).await?,
    }
    Ok((user, purpose))
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response()
}
