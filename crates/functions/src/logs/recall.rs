//! `recall`: the caller's visible logs most similar to a query (pgvector cosine distance over
//! the HNSW index), with their similarity, newest first among ties.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use crate::{
    caller,
    classify::vectors_literal,
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recall {
    org_id: Uuid,
    query: String,
    limit: Option<i64>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    user_id: Option<Uuid>,
}

/// `{results: [{log, similarity}]}`.
pub async fn run(state: &FunctionsState, ctx: &RequestContext, body: Recall) -> FnResult<Value> {
    caller::user(ctx)?;
    if body.query.trim().is_empty() {
        return Err(FnError::bad_request("query must not be empty"));
    }
    let limit = body.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(FnError::bad_request("limit must be between 1 and 100"));
    }
    let Some((model, vector)) = state.providers().embeddings.embed(&body.query).await else {
        return Err(FnError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Embeddings are not available on this server (TALLY_EMBEDDINGS)",
        ));
    };
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    let rows: Vec<(Value, f64)> = sqlx::query_as(
        "select to_jsonb(l), 1 - (e.embedding operator(extensions.<=>) $1::extensions.vector) \
         from public.time_log_embeddings e join public.time_logs l on l.id = e.time_log_id \
         where e.org_id = $2 and e.model = $3 and l.deleted_at is null \
           and ($4::timestamptz is null or l.started_at >= $4) \
           and ($5::timestamptz is null or l.started_at < $5) \
           and ($6::uuid is null or l.user_id = $6) \
         order by e.embedding operator(extensions.<=>) $1::extensions.vector, l.created_at desc \
         limit $7",
    )
    .bind(vectors_literal(&vector))
    .bind(body.org_id)
    .bind(&model)
    .bind(body.from)
    .bind(body.to)
    .bind(body.user_id)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let results: Vec<Value> = rows
        .into_iter()
        .map(|(log, similarity)| json!({"log": log, "similarity": similarity}))
        .collect();
    Ok(json!({ "results": results }))
}
