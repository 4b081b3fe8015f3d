//! `POST /functions/v1/webhooks-ingest/{provider}/{integration_id}`: no user token; the
//! provider's signature is the credential. Order of checks: the integration exists and is
//! enabled (404), the body is at most 1 MiB (413), the signature matches and is fresh (401),
//! the body is what the provider sends (400) — only then is anything stored, once per
//! external id (a redelivery answers 200 and changes nothing).

use axum::{
    Json,
    body::Bytes,
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;
use tally_core::RequestContext;
use uuid::Uuid;

use super::{
    Doors, Incoming, Tools,
    calendar::{self, GraphError},
    generic, jira,
    process::{self, Outcome},
    signature::{self, SignatureError},
    slack,
};
use crate::error::{IntegrationError, IntegrationResult};

/// The largest body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// The integration a request names.
struct Target {
    id: Uuid,
    org: Uuid,
    sealed: Option<Vec<u8>>,
}

/// Answers one webhook request.
pub async fn handle(
    doors: &Doors,
    provider: &str,
    integration: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> IntegrationResult<Response> {
    let target = load(doors, provider, integration).await?;
    if provider == "graph"
        && let Some(token) = validation_token(query)
    {
        // Graph's subscription handshake: echo the token as plain text.
        return Ok((StatusCode::OK, [(CONTENT_TYPE, "text/plain")], token).into_response());
    }
    if body.len() > MAX_BODY {
        return Err(IntegrationError::TooLarge);
    }
    let secret = match &target.sealed {
        Some(sealed) => doors
            .tools
            .secrets
            .open(target.id, sealed)
            .map_err(IntegrationError::internal)?,
        None => {
            return Err(IntegrationError::Unauthorized(
                "This integration has no signing secret yet (set one with integration-secret)"
                    .into(),
            ));
        }
    };
    let now = Utc::now().timestamp();
    let refused = |e: SignatureError| IntegrationError::InvalidSignature(e.to_string());
    match provider {
        "slack" => {
            signature::slack(headers, body, &secret, now).map_err(refused)?;
            let form = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
            match slack::parse(form, body).map_err(IntegrationError::BadRequest)? {
                slack::Request::Challenge(challenge) => {
                    Ok(Json(json!({ "challenge": challenge })).into_response())
                }
                slack::Request::Events(events) => stored(store(doors, &target, &events).await?),
                slack::Request::Command(command) => slash_command(doors, &target, command).await,
            }
        }
        "jira" => {
            signature::hub(headers, body, &secret).map_err(refused)?;
            let delivery = headers
                .get("x-atlassian-webhook-identifier")
                .and_then(|v| v.to_str().ok());
            let (event, timestamp) =
                jira::parse(body, delivery).map_err(IntegrationError::BadRequest)?;
            signature::fresh_millis(timestamp, now).map_err(refused)?;
            stored(store(doors, &target, &[event]).await?)
        }
        "graph" => {
            let events = calendar::parse_graph(body, &secret).map_err(|e| match e {
                GraphError::Malformed(why) => IntegrationError::BadRequest(why),
                GraphError::ClientState => IntegrationError::InvalidSignature(
                    "clientState does not match the integration's secret".into(),
                ),
            })?;
            store(doors, &target, &events).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "calendar" => {
            signature::tally(headers, body, &secret, now).map_err(refused)?;
            let event = calendar::parse_event(body).map_err(IntegrationError::BadRequest)?;
            stored(store(doors, &target, &[event]).await?)
        }
        _ => {
            signature::tally(headers, body, &secret, now).map_err(refused)?;
            let event = generic::parse(body).map_err(IntegrationError::BadRequest)?;
            stored(store(doors, &target, &[event]).await?)
        }
    }
}

fn validation_token(query: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query?)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "validationToken")
        .map(|(_, v)| v)
}

/// The enabled integration `id` of the provider the path names; 404 otherwise.
async fn load(doors: &Doors, provider: &str, id: &str) -> IntegrationResult<Target> {
    let kind = match provider {
        "slack" | "jira" | "generic" => provider,
        "graph" | "calendar" => "calendar",
        _ => return Err(IntegrationError::NotFound("Integration")),
    };
    let id: Uuid = id
        .parse()
        .map_err(|_| IntegrationError::NotFound("Integration"))?;
    let mut tx = RequestContext::service().begin(&doors.pool).await?;
    let row: Option<(Uuid, Option<Vec<u8>>)> = sqlx::query_as(
        "select i.org_id, s.sealed from public.integrations i \
         left join private.integration_secrets s on s.integration_id = i.id \
         where i.id = $1 and i.provider::text = $2 and i.enabled",
    )
    .bind(id)
    .bind(kind)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let (org, sealed) = row.ok_or_else(|| IntegrationError::NotFound("Integration"))?;
    Ok(Target { id, org, sealed })
}

/// Stores each event once; new ones get a processing job. Returns the new events' ids
/// (`None` for redeliveries).
async fn store(
    doors: &Doors,
    target: &Target,
    events: &[Incoming],
) -> IntegrationResult<Vec<Option<Uuid>>> {
    let mut tx = RequestContext::service().begin(&doors.pool).await?;
    let mut ids = Vec::with_capacity(events.len());
    for event in events {
        let id = insert(&mut tx, target, event).await?;
        if let Some(id) = id {
            process::schedule(&mut tx, target.org, id).await?;
        }
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

async fn insert(
    conn: &mut PgConnection,
    target: &Target,
    event: &Incoming,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into public.external_events (org_id, integration_id, external_id, event_type, payload) \
         values ($1, $2, $3, $4, $5) on conflict (integration_id, external_id) do nothing returning id",
    )
    .bind(target.org)
    .bind(target.id)
    .bind(&event.external_id)
    .bind(&event.event_type)
    .bind(&event.payload)
    .fetch_optional(conn)
    .await
}

fn stored(ids: Vec<Option<Uuid>>) -> IntegrationResult<Response> {
    let received = ids.iter().flatten().count();
    Ok(Json(json!({ "received": received, "duplicates": ids.len() - received })).into_response())
}

/// A slash command is processed in the request, so Slack shows the person the outcome.
async fn slash_command(
    doors: &Doors,
    target: &Target,
    command: Incoming,
) -> IntegrationResult<Response> {
    let mut tx = RequestContext::service().begin(&doors.pool).await?;
    let Some(id) = insert(&mut tx, target, &command).await? else {
        tx.commit().await?;
        return Ok(Json(slack::ephemeral("Already received.")).into_response());
    };
    let tools = Tools {
        secrets: doors.tools.secrets.clone(),
        http: doors.tools.http.clone(),
    };
    let outcome = process::run(&mut tx, id, &tools)
        .await?
        .map(|done| done.outcome);
    if let Some(Outcome::Failed(_)) = outcome {
        process::schedule(&mut tx, target.org, id).await?;
    }
    tx.commit().await?;
    let text = match outcome {
        Some(Outcome::Processed(done)) => done,
        Some(Outcome::Dead(why)) => why,
        _ => "Got it: Tally will save this in a moment.".into(),
    };
    Ok(Json(slack::ephemeral(&text)).into_response())
}
