//! `integration-secret` `{integration_id, secret?, api_token?}`: sets an integration's signing
//! secret — the one the provider gave (Slack's signing secret, the secret typed into Jira), or
//! a new random one — and the credential Tally calls the provider's API with (Slack's bot
//! token, a Microsoft Graph app's client secret); both sealed at rest. The answer is the only
//! time the secret is shown (the token never is); it
//! also names the URL to give the provider. Owners and admins only.

use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use super::{Doors, secret};
use crate::error::{IntegrationError, IntegrationResult};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    integration_id: Uuid,
    secret: Option<String>,
    api_token: Option<String>,
}

/// Seals and stores the secret; 200 `{integration_id, secret, webhook_url}`.
pub async fn run(doors: &Doors, ctx: &RequestContext, body: SetSecret) -> IntegrationResult<Value> {
    ctx.user_id().ok_or(IntegrationError::NeedsUser)?;
    let secret = match body.secret {
        Some(s) => {
            let s = s.trim().to_owned();
            if !(8..=256).contains(&s.len()) || s.chars().any(char::is_control) {
                return Err(IntegrationError::BadRequest(
                    "secret must be 8 to 256 printable characters".into(),
                ));
            }
            s
        }
        None => secret::generate().map_err(IntegrationError::internal)?,
    };
    let sealed = doors
        .tools
        .secrets
        .seal(body.integration_id, &secret)
        .map_err(IntegrationError::internal)?;
    let token = match body.api_token.as_deref().map(str::trim) {
        Some(t) if t.is_empty() || t.len() > 512 || t.chars().any(char::is_control) => {
            return Err(IntegrationError::BadRequest(
                "api_token must be 1 to 512 printable characters".into(),
            ));
        }
        Some(t) => Some(
            doors
                .tools
                .secrets
                .seal_token(body.integration_id, t)
                .map_err(IntegrationError::internal)?,
        ),
        None => None,
    };
    let mut tx = ctx.begin(&doors.pool).await?;
    let provider: Option<String> =
        sqlx::query_scalar("select provider::text from public.integrations where id = $1")
            .bind(body.integration_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(provider) = provider else {
        return Err(IntegrationError::NotFound("Integration"));
    };
    let set: bool = sqlx::query_scalar("select private.set_integration_secret($1, $2, $3)")
        .bind(body.integration_id)
        .bind(&sealed)
        .bind(&token)
        .fetch_one(&mut *tx)
        .await?;
    if !set {
        return Err(IntegrationError::NotFound("Integration"));
    }
    tx.commit().await?;
    Ok(json!({
        "integration_id": body.integration_id,
        "secret": secret,
        "webhook_url": format!(
            "{}/functions/v1/webhooks-ingest/{provider}/{}",
            &doors.external_url,
            body.integration_id
        ),
    }))
}
