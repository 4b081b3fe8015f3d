//! The admin API for SSO providers (service_role only).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::{Admin, JsonBody},
    sso::providers::{self, ProviderBody},
    state::AuthState,
};

use super::admin::parse_id;

/// `GET /admin/sso/providers`.
pub async fn list_providers(State(state): State<AuthState>, _: Admin) -> AuthResult<Json<Value>> {
    let mut tx = db::begin(state.pool()).await?;
    let items = providers::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"items": items.iter().map(|p| p.to_json()).collect::<Vec<_>>()}),
    ))
}

/// `POST /admin/sso/providers` `{name, issuer, client_id, client_secret, domains, scopes}`.
pub async fn create_provider(
    State(state): State<AuthState>,
    _: Admin,
    JsonBody(body): JsonBody<ProviderBody>,
) -> AuthResult<Json<Value>> {
    let name = body.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(AuthError::validation(
            "name is required: letters, digits, - and _",
        ));
    }
    let issuer = body.issuer.as_deref().unwrap_or_default();
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err(AuthError::validation("issuer must be an http(s) URL"));
    }
    if body.client_id.as_deref().unwrap_or_default().is_empty() {
        return Err(AuthError::validation("client_id is required"));
    }
    let mut tx = db::begin(state.pool()).await?;
    let provider = providers::save(&mut tx, None, &body).await.map_err(|e| {
        match e.as_database_error().and_then(|d| d.code()) {
            Some(code) if code == "23505" => AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sso_provider_exists",
                "An SSO provider with this name already exists",
            ),
            _ => AuthError::from(e),
        }
    })?;
    tx.commit().await?;
    let provider = provider.ok_or_else(|| AuthError::unexpected("insert returned nothing"))?;
    Ok(Json(provider.to_json()))
}

/// `GET /admin/sso/providers/{id}`.
pub async fn get_provider(
    State(state): State<AuthState>,
    _: Admin,
    Path(id): Path<String>,
) -> AuthResult<Json<Value>> {
    let id = parse_id(&id)?;
    let mut tx = db::begin(state.pool()).await?;
    let provider = providers::by_id(&mut tx, id)
        .await?
        .ok_or_else(provider_not_found)?;
    tx.commit().await?;
    Ok(Json(provider.to_json()))
}

/// `PUT /admin/sso/providers/{id}`.
pub async fn update_provider(
    State(state): State<AuthState>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ProviderBody>,
) -> AuthResult<Json<Value>> {
    let id = parse_id(&id)?;
    let mut tx = db::begin(state.pool()).await?;
    let provider = providers::save(&mut tx, Some(id), &body)
        .await?
        .ok_or_else(provider_not_found)?;
    tx.commit().await?;
    Ok(Json(provider.to_json()))
}

/// `DELETE /admin/sso/providers/{id}`.
pub async fn delete_provider(
    State(state): State<AuthState>,
    _: Admin,
    Path(id): Path<String>,
) -> AuthResult<Json<Value>> {
    let id = parse_id(&id)?;
    let mut tx = db::begin(state.pool()).await?;
    let provider = providers::delete(&mut tx, id)
        .await?
        .ok_or_else(provider_not_found)?;
    tx.commit().await?;
    Ok(Json(provider.to_json()))
}

fn provider_not_found() -> AuthError {
    AuthError::new(
        StatusCode::NOT_FOUND,
        "sso_provider_not_found",
        "SSO provider not found",
    )
}
