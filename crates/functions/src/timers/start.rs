//! `timer-start` `{org_id, id?, comment?, project_id?, activity_type_id?, work_mode_id?,
//! task_category_id?, tags?, billable?}` → 201 `{log, stopped}`: a running log started by the
//! server's clock; the timer that was running (if any) is stopped at that instant and returned
//! as `stopped`. A client `id` makes it idempotent (the same id again: 200, nothing stopped).

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use super::{RUNNING, lock, stop_at};
use crate::{caller, error::FnResult, state::FunctionsState};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTimer {
    org_id: Uuid,
    id: Option<Uuid>,
    comment: Option<String>,
    project_id: Option<Uuid>,
    activity_type_id: Option<Uuid>,
    work_mode_id: Option<Uuid>,
    task_category_id: Option<Uuid>,
    tags: Option<Vec<String>>,
    billable: Option<bool>,
}

impl StartTimer {
    /// The fields the person gave, and the timer's clock: classification changes none of them.
    fn locked(&self) -> Vec<&'static str> {
        let given = [
            ("comment", self.comment.is_some()),
            ("project_id", self.project_id.is_some()),
            ("activity_type_id", self.activity_type_id.is_some()),
            ("work_mode_id", self.work_mode_id.is_some()),
            ("task_category_id", self.task_category_id.is_some()),
            ("tags", self.tags.is_some()),
            ("billable", self.billable.is_some()),
        ];
        ["started_at", "ended_at", "duration_minutes"]
            .into_iter()
            .chain(given.into_iter().filter(|(_, g)| *g).map(|(name, _)| name))
            .collect()
    }

    /// A comment is classified (the log is `pending` until then); without one there is
    /// nothing to read and the log is `ready`.
    fn status(&self) -> &'static str {
        if self
            .comment
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
        {
            "pending"
        } else {
            "ready"
        }
    }
}

/// Starts the timer.
pub async fn run(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: StartTimer,
) -> FnResult<(StatusCode, Value)> {
    let user = caller::user(ctx)?;
    let mut tx = ctx.begin(state.pool()).await?;
    caller::member(&mut tx, body.org_id).await?;
    let now = lock(&mut tx, body.org_id, user).await?;
    if let Some(id) = body.id {
        let stored = sqlx::query_scalar::<_, Value>(
            "select to_jsonb(l) from public.time_logs l where id = $1 and org_id = $2 and user_id = $3",
        )
        .bind(id)
        .bind(body.org_id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(log) = stored {
            return Ok((StatusCode::OK, json!({ "log": log, "stopped": null })));
        }
    }
    let running = sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(format!(
        "select id from public.time_logs where org_id = $1 and user_id = $2 and {RUNNING} for update"
    )))
    .bind(body.org_id)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let stopped = match running {
        Some(id) => Some(stop_at(&mut tx, id, now).await?.0),
        None => None,
    };
    let log = sqlx::query_scalar::<_, Value>(
        "insert into public.time_logs as l (id, org_id, user_id, comment, started_at, project_id, \
                activity_type_id, work_mode_id, task_category_id, tags, billable, source, \
                user_locked, status) \
         values (coalesce($1, private.uuid_v7()), $2, $3, $4, $13, $5, $6, $7, $8, \
                 coalesce($9, '{}'::text[]), coalesce($10, false), 'timer', $11, \
                 $12::public.log_status) \
         returning to_jsonb(l)",
    )
    .bind(body.id)
    .bind(body.org_id)
    .bind(user)
    .bind(&body.comment)
    .bind(body.project_id)
    .bind(body.activity_type_id)
    .bind(body.work_mode_id)
    .bind(body.task_category_id)
    .bind(&body.tags)
    .bind(body.billable)
    .bind(body.locked())
    .bind(body.status())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        json!({ "log": log, "stopped": stopped }),
    ))
}
