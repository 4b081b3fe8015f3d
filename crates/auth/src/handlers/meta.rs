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

/// The public signing keys clients verify sessions' tokens with (`auth.getClaims()`): the
/// standby, current and previous keys. Empty for a project without signing keys (its tokens
/// are HS256, which clients check by asking `/user`).
pub async fn jwks(State(state): State<AuthState>) -> Json<Value> {
    Json(state.keys().signing_keys().jwks())
}
