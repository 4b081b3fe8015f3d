//! `/functions/v1`: Tally's edge functions, as supabase-js's `functions.invoke` calls them.
//! Each is declared once, in [`registry::FUNCTIONS`] (name, handler, OpenAPI operation).
//!
//! Every function takes JSON and answers JSON; errors are `{error, message}` with a 4xx status
//! ([`FnError`]). The caller's token decides the role, and each function's database work runs
//! in the caller's transaction, so RLS applies. Names are accepted with a dash or a dot
//! (`log-create`, `log.create`).
//!
//! Also here: [`job::ClassifyLogJob`], the worker side of classification, and
//! [`extract::ExtractAttachmentJob`], which turns an attachment's file into text, and
//! [`audit::AuditPurgeJob`], the audit trail's retention, and
//! [`timers::remind::TimerRemindersJob`], which reminds of timers left running; [`jobs`]
//! registers them. Offline sync ([`sync`], `tally-sync`) and integrations ([`integrations`],
//! `tally-integrations`) are crates of their own, called from here, whose errors [`FnError`]
//! takes in. `webhooks-ingest/{provider}/{integration_id}` takes no user token: the
//! provider's signature is checked instead.

pub mod audit;
mod caller;
pub mod classify;
mod error;
mod exports;
pub mod extract;
mod insights;
pub mod job;
mod logs;
pub mod openapi;
mod providers;
pub mod registry;
mod state;
mod time_log;
pub mod timers;
mod timesheets;
mod uploads;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use tally_core::{RequestContext, gateway};

pub use error::{FnError, FnResult};
pub use providers::{BuiltinSpeech, Embeddings, Loader, Providers, Speech, WhisperLoader};
pub use state::FunctionsState;
/// Integrations, whose webhook receiver and `integration-secret` are served here.
pub use tally_integrations as integrations;
/// Offline sync, which `sync-pull` and `sync-push` call.
pub use tally_sync as sync;
pub use time_log::LogRow;

/// Bodies larger than this are refused (413).
const MAX_BODY: usize = 1024 * 1024;

/// Registers the jobs this crate runs: classification and embedding, attachment extraction.
pub fn jobs(
    workers: tally_jobs::Workers,
    pool: &sqlx::PgPool,
    config: &tally_core::Config,
    providers: &Providers,
    storage: &tally_storage::StorageState,
) -> tally_jobs::Workers {
    workers
        .job(job::ClassifyLogJob::new(
            pool.clone(),
            providers.clone(),
            config.ai.ai_review_threshold,
        ))
        .job(job::EmbedLogJob::new(pool.clone(), providers.clone()))
        .job(extract::ExtractAttachmentJob::new(
            pool.clone(),
            storage.clone(),
            providers.clone(),
        ))
        .job(audit::AuditPurgeJob::new(
            pool.clone(),
            config.audit_retention_days,
        ))
        .job(timers::remind::TimerRemindersJob::new(
            pool.clone(),
            config.timer_remind_hours,
        ))
}

/// The `/functions/v1` router.
pub fn router(state: FunctionsState) -> Router {
    Router::new()
        .route("/{name}", post(invoke))
        .route("/{name}/{provider}/{integration}", post(ingest))
        .with_state(state)
}

/// `log.create` and `log-create` name the same function.
fn canonical(name: &str) -> String {
    name.replace(['.', '_'], "-").to_ascii_lowercase()
}

async fn invoke(
    State(state): State<FunctionsState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match dispatch(&state, &canonical(&name), &headers, &body).await {
        Ok((status, value)) => (status, Json(value)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `webhooks-ingest/{provider}/{integration}` (also `webhooks.ingest/...`).
async fn ingest(
    State(state): State<FunctionsState>,
    Path((name, provider, integration)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if canonical(&name) != "webhooks-ingest" {
        return FnError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Function \"{name}\" not found"),
        )
        .into_response();
    }
    let provider = provider.to_ascii_lowercase();
    integrations::ingest::handle(
        state.integration_doors(),
        &provider,
        &integration,
        query.as_deref(),
        &headers,
        &body,
    )
    .await
    .map_err(FnError::from)
    .unwrap_or_else(IntoResponse::into_response)
}

async fn dispatch(
    state: &FunctionsState,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> FnResult<(StatusCode, serde_json::Value)> {
    let Some(function) = registry::find(name) else {
        return Err(FnError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Function \"{name}\" not found"),
        ));
    };
    if body.len() > MAX_BODY {
        return Err(FnError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is larger than 1 MiB",
        ));
    }
    let ctx = resolve_caller(state, headers).await?;
    function.run(state, &ctx, body).await
}

/// The caller of a function: its bearer token checked like the hosted runtime's `verify_jwt`
/// (a user's live session, or a project key); a missing or bad token is 401.
async fn resolve_caller(state: &FunctionsState, headers: &HeaderMap) -> FnResult<RequestContext> {
    gateway::Caller::of(state, headers)
        .await
        .map(|caller| caller.0)
        .map_err(|e| match e {
            gateway::CallerError::Database(e) => FnError::from(e),
            other => FnError::unauthorized(other.to_string()),
        })
}
