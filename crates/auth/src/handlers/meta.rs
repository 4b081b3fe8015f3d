//! `GET /settings` and `GET /.well-known/jwks.json`.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::state::AuthState;

/// The public auth settings, as GoTrue lists them.
pub async fn settings(State(state): State<AuthState>) -> Json<Value> {
    let auth = &state.config().auth;
    Json(json!({
        "external": {
            "email": true,
            "phone": false,
            "anonymous_users": auth.anonymous_sign_ins,
        },
        "disable_signup": auth.disable_signup,
        "mailer_autoconfirm": auth.autoconfirm,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
    }))
}

/// The signing keys clients may verify tokens with: none, as tokens are HS256 (clients then
/// ask `/user`, as auth-js does for HS256 tokens).
pub async fn jwks() -> Json<Value> {
    Json(json!({"keys": []}))
}
