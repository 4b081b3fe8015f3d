//! `/user/identities`: a signed-in person links an SSO identity to their account
//! (`auth.linkIdentity`) or unlinks one (`auth.unlinkIdentity`). Off unless
//! `TALLY_MANUAL_LINKING` is on, as GoTrue's manual linking.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    audit, db,
    error::{AuthError, AuthResult},
    extract::{ClientIp, CurrentUser},
    state::AuthState,
    users,
};

/// `GET /user/identities/authorize?provider=&redirect_to=&skip_http_redirect=`: the
/// provider's authorization URL (200 `{url}`, or a 302 to it); when the person comes back the
/// identity is added to the signed-in user, who gets a new session.
pub async fn link(
    State(state): State<AuthState>,
    current: CurrentUser,
    Query(query): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    require_enabled(&state)?;
    if current.user.is_anonymous {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "anonymous_provider_disabled",
            "Anonymous user not allowed to perform these actions",
        ));
    }
    let name = query
        .get("provider")
        .map(String::as_str)
        .unwrap_or_default();
    let mut tx = db::begin(state.pool()).await?;
    let provider = super::sso::enabled_provider(&mut tx, name).await?;
    let url = super::sso::start(
        &state,
        &mut tx,
        &provider,
        &query,
        "oauth",
        Some(current.user.id),
    )
    .await?;
    tx.commit().await?;
    if query.get("skip_http_redirect").map(String::as_str) == Some("true") {
        Ok(Json(json!({"url": url})).into_response())
    } else {
        Ok((StatusCode::FOUND, [(LOCATION, url)]).into_response())
    }
}

/// `DELETE /user/identities/{identity_id}`: removes one of the person's identities, never
/// the last. Their email follows a remaining identity's when the removed one held it.
pub async fn unlink(
    State(state): State<AuthState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    Path(identity_id): Path<String>,
) -> AuthResult<Json<Value>> {
    require_enabled(&state)?;
    let id = identity_id.parse::<Uuid>().map_err(|_| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "validation_failed",
            "identity_id must be an UUID",
        )
    })?;
    let user = current.user.id;
    let mut tx = db::begin(state.pool()).await?;
    let identities: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
        "select id, provider, email from auth.identities where user_id = $1 \
         order by created_at for update",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    if identities.len() <= 1 {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "single_identity_not_deletable",
            "User must have at least 1 identity after unlinking",
        ));
    }
    let Some((_, provider, email)) = identities.iter().find(|(i, _, _)| *i == id) else {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "identity_not_found",
            "Identity doesn't exist",
        ));
    };
    sqlx::query("delete from auth.identities where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if email.is_some() && *email == current.user.email {
        let next = identities
            .iter()
            .filter(|(i, _, _)| *i != id)
            .find_map(|(_, _, e)| e.clone());
        if let Some(next) = next.filter(|n| Some(n) != current.user.email.as_ref()) {
            sqlx::query("update auth.users set email = $2 where id = $1")
                .bind(user)
                .bind(&next)
                .execute(&mut *tx)
                .await
                .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
                    Some(code) if code == "23505" => AuthError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "email_conflict_identity_not_deletable",
                        "Unable to unlink identity due to email conflict",
                    ),
                    _ => AuthError::from(e),
                })?;
        }
    }
    users::refresh_providers(&mut tx, user).await?;
    audit::record(
        &mut tx,
        "identity_unlinked",
        user,
        json!({"identity_id": id, "provider": provider}),
        &ip,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({})))
}

fn require_enabled(state: &AuthState) -> AuthResult<()> {
    if state.config().auth.manual_linking {
        Ok(())
    } else {
        Err(AuthError::new(
            StatusCode::NOT_FOUND,
            "manual_linking_disabled",
            "Manual linking is disabled",
        ))
    }
}
