//! `POST /logout?scope=global|local|others`: 204.

use std::collections::HashMap;

use axum::{
    extract::{Query, State},
    http::StatusCode,
};

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::CurrentUser,
    sessions::{self, Scope},
    state::AuthState,
};

/// Signs the user out of the sessions `scope` names (default: all).
pub async fn logout(
    State(state): State<AuthState>,
    current: CurrentUser,
    Query(query): Query<HashMap<String, String>>,
) -> AuthResult<StatusCode> {
    let scope = match query.get("scope").map(String::as_str) {
        None | Some("global") => Scope::Global,
        Some("local") => Scope::Local,
        Some("others") => Scope::Others,
        Some(other) => {
            return Err(AuthError::validation(format!(
                "Unsupported logout scope \"{other}\""
            )));
        }
    };
    let mut tx = db::begin(state.pool()).await?;
    sessions::sign_out(&mut tx, current.user.id, current.session_id, scope).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
