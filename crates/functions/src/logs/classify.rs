//! `ai-classify`: classify a log now (its owner, an admin of its org, or the service role).

use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use crate::{classify, error::FnResult, state::FunctionsState};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyLog {
    log_id: Uuid,
}

/// Classifies the log; `{log, extraction}`.
pub async fn run(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: ClassifyLog,
) -> FnResult<Value> {
    let done = classify::classify(
        state.pool(),
        state.providers(),
        ctx,
        body.log_id,
        state.ai().ai_review_threshold,
    )
    .await?;
    Ok(json!({"log": done.log, "extraction": done.extraction}))
}
