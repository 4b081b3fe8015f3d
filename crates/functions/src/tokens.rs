//! Personal API tokens, made and revoked by their person (see [`tally_core::api_token`]):
//! - `token-create` `{name, scopes, expires_at?}` → 201 `{token, id, name, scopes, prefix,
//!   created_at, expires_at}`: the token is in this answer only; Tally keeps its SHA-256.
//!   Scopes: `logs:read`, `logs:write`, `reports:read`, `admin` (owners and admins only).
//! - `token-revoke` `{id}` → `{revoked: true}`, at once on every instance; 404 when the
//!   caller has no such live token.
//!
//! The person lists their tokens with `GET /rest/v1/api_tokens` (never the hash), with when
//! each was last used.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::{RequestContext, api_token};
use uuid::Uuid;

use crate::{caller, error::FnError, error::FnResult, state::FunctionsState};

/// `token-create`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// `token-revoke`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeToken {
    id: Uuid,
}

/// Makes a token for the caller; the answer is the only place its secret appears.
pub async fn create(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: CreateToken,
) -> FnResult<Value> {
    caller::user(ctx)?;
    if api_token::scopes(ctx.claims()).is_some() {
        return Err(FnError::forbidden("An API token cannot make API tokens"));
    }
    let token = api_token::generate();
    let mut tx = ctx.begin(state.pool()).await?;
    let made: Value = sqlx::query_scalar(
        "select to_jsonb(t) - 'user_id' \
         from private.create_api_token($1, $2, $3, $4, $5) t",
    )
    .bind(&body.name)
    .bind(&body.scopes)
    .bind(body.expires_at)
    .bind(api_token::hash(&token))
    .bind(api_token::shown(&token))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut answer = json!({ "token": token });
    if let (Some(answer), Value::Object(made)) = (answer.as_object_mut(), made) {
        answer.extend(made);
    }
    Ok(answer)
}

/// Revokes one of the caller's tokens.
pub async fn revoke(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: RevokeToken,
) -> FnResult<Value> {
    caller::user(ctx)?;
    let mut tx = ctx.begin(state.pool()).await?;
    let revoked: bool = sqlx::query_scalar("select private.revoke_api_token($1)")
        .bind(body.id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    if !revoked {
        return Err(FnError::not_found("token"));
    }
    Ok(json!({ "revoked": true }))
}
