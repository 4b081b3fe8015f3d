//! One module per endpoint group.

pub mod admin;
pub mod admin_sso;
pub mod factors;
pub mod identities;
pub mod invite;
pub mod logout;
pub mod meta;
pub mod otp;
pub mod reauthenticate;
pub mod recover;
pub mod resend;
pub mod signup;
pub mod sso;
pub mod token;
pub mod user;
pub mod verify;

use std::future::Future;

use axum::Json;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{error::AuthResult, ratelimit, state::AuthState};

/// `?redirect_to=` of email flows.
#[derive(Debug, Default, Deserialize)]
pub struct RedirectQuery {
    /// Where the email link should lead.
    pub redirect_to: Option<String>,
}

/// Counts a mail request of `email` from `ip` against the auth limit (`bucket`), then answers
/// `{}` at once and runs `send` after the answer: neither the answer nor its time tells whether
/// the address has an account (`/recover`, `/resend`). A failure of `send` is logged as
/// `what` could not be mailed.
pub async fn mail_after_answer<Fut>(
    state: AuthState,
    ip: &str,
    bucket: &str,
    email: &str,
    what: &'static str,
    send: impl FnOnce(AuthState) -> Fut,
) -> AuthResult<Json<Value>>
where
    Fut: Future<Output = AuthResult<()>> + Send + 'static,
{
    let limit = state.config().auth.rate_limit_auth;
    ratelimit::attempt(state.pool(), bucket, ip, email, limit).await?;
    let sending = send(state);
    tokio::spawn(async move {
        if let Err(e) = sending.await {
            tracing::warn!(error = %e.message(), "{what} could not be mailed");
        }
    });
    Ok(Json(json!({})))
}
