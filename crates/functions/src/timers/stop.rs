//! `timer-stop` `{org_id, log_id?, ended_at?}` → 200 `{log, capped}`: stops the caller's
//! running timer (or the running timer `log_id`, which owners and admins may stop for anyone)
//! by the server's clock, or at `ended_at` when the person says when they stopped (after the
//! start, not in the future). A timer is at most a day long: one left running longer ends a day
//! after its start, with `capped: true`.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use super::{RUNNING, lock, stop_at};
use crate::{
    caller,
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopTimer {
    org_id: Uuid,
    log_id: Option<Uuid>,
    ended_at: Option<DateTime<Utc>>,
}

/// How far ahead of the server's clock a given end may be (clients' clocks drift).
const SKEW_SECONDS: i64 = 60;

/// Stops the timer.
pub async fn run(state: &FunctionsState, ctx: &RequestContext, body: StopTimer) -> FnResult<Value> {
    let user = caller::user(ctx)?;
    let mut tx = ctx.begin(state.pool()).await?;
    caller::member(&mut tx, body.org_id).await?;
    // The timer's person: the caller, or whoever log_id belongs to (as the caller sees it).
    let person = match body.log_id {
        None => user,
        Some(id) => sqlx::query_scalar::<_, Uuid>(
            "select user_id from public.time_logs where id = $1 and org_id = $2 and deleted_at is null",
        )
        .bind(id)
        .bind(body.org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| FnError::not_found("Timer"))?,
    };
    let now = lock(&mut tx, body.org_id, person).await?;
    let running = sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(sqlx::AssertSqlSafe(format!(
        "select id, started_at from public.time_logs \
             where org_id = $1 and user_id = $2 and ($3::uuid is null or id = $3) and {RUNNING} \
             for update"
    )))
    .bind(body.org_id)
    .bind(person)
    .bind(body.log_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, started)) = running else {
        return Err(match body.log_id {
            Some(_) => FnError::new(
                StatusCode::CONFLICT,
                "not_running",
                "This log is not a running timer",
            ),
            None => FnError::not_found("Running timer"),
        });
    };
    if let Some(end) = body.ended_at {
        if end <= started {
            return Err(FnError::bad_request(
                "ended_at must be after the timer's start",
            ));
        }
        if (end - now).num_seconds() > SKEW_SECONDS {
            return Err(FnError::bad_request("ended_at must not be in the future"));
        }
    }
    let (log, capped) = stop_at(&mut tx, id, body.ended_at.map_or(now, |end| end.min(now))).await?;
    tx.commit().await?;
    Ok(json!({ "log": log, "capped": capped }))
}
