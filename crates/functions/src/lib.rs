//! `/functions/v1`: Tally's edge functions, as supabase-js's `functions.invoke` calls them.
//!
//! Every function takes JSON and answers JSON; errors are `{error, message}` with a 4xx status
//! ([`FnError`]). The caller's token decides the role, and each function's database work runs
//! in the caller's transaction, so RLS applies. Names are accepted with a dash or a dot
//! (`log-create`, `log.create`).
//!
//! Also here: [`job::ClassifyLogJob`], the worker side of classification,
//! [`extract::ExtractAttachmentJob`], which turns an attachment's file into text, and
//! [`sync::purge::SyncPurgeJob`], which purges offline sync's old tombstones, and the
//! [`integrations`]' jobs (processing webhook events, polling ICS feeds, delivering outbound
//! webhooks). `webhooks-ingest/{provider}/{integration_id}` takes no user token: the
//! provider's signature is checked instead.

mod caller;
pub mod classify;
mod error;
mod exports;
pub mod extract;
mod insights;
pub mod integrations;
pub mod job;
mod logs;
pub mod openapi;
mod providers;
mod state;
pub mod sync;
mod uploads;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::de::DeserializeOwned;

pub use error::{FnError, FnResult};
pub use logs::row::LogRow;
pub use providers::{BuiltinSpeech, Embeddings, Loader, Providers, Speech, WhisperLoader};
pub use state::FunctionsState;

/// Bodies larger than this are refused (413).
const MAX_BODY: usize = 1024 * 1024;

/// The functions called with a JSON body, by canonical name ([`openapi`] describes each).
pub const FUNCTIONS: [&str; 10] = [
    "log-create",
    "ai-classify",
    "log-finalize",
    "recall",
    "upload-presign",
    "insights-rollup",
    "export-create",
    "sync-pull",
    "sync-push",
    "integration-secret",
];

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
        &state,
        &provider,
        &integration,
        query.as_deref(),
        &headers,
        &body,
    )
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

async fn dispatch(
    state: &FunctionsState,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> FnResult<(StatusCode, serde_json::Value)> {
    if !FUNCTIONS.contains(&name) {
        return Err(FnError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Function \"{name}\" not found"),
        ));
    }
    if body.len() > MAX_BODY {
        return Err(FnError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is larger than 1 MiB",
        ));
    }
    let ctx = caller::resolve(state, headers).await?;
    match name {
        "log-create" => logs::create::run(state, &ctx, parse(body)?).await,
        "ai-classify" => Ok((
            StatusCode::OK,
            logs::classify::run(state, &ctx, parse(body)?).await?,
        )),
        "upload-presign" => uploads::run(state, &ctx, parse(body)?).await,
        "insights-rollup" => Ok((
            StatusCode::OK,
            insights::run(state, &ctx, parse(body)?).await?,
        )),
        "export-create" => exports::run(state, &ctx, parse(body)?).await,
        "sync-pull" => Ok((
            StatusCode::OK,
            sync::pull::run(state, &ctx, parse(body)?).await?,
        )),
        "sync-push" => sync::push::run(state, &ctx, parse(body)?).await,
        "integration-secret" => Ok((
            StatusCode::OK,
            integrations::manage::run(state, &ctx, parse(body)?).await?,
        )),
        "recall" => Ok((
            StatusCode::OK,
            logs::recall::run(state, &ctx, parse(body)?).await?,
        )),
        _ => Ok((
            StatusCode::OK,
            logs::finalize::run(state, &ctx, parse(body)?).await?,
        )),
    }
}

/// Reads a JSON body; anything else is a 400 naming the problem.
fn parse<T: DeserializeOwned>(body: &Bytes) -> FnResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| FnError::bad_request(format!("Invalid request body: {e}")))
}
