//! `log-create`: store a log as `pending` with the person's fields locked; classification is
//! enqueued in the same transaction (by the table's trigger) and the call returns at once. A
//! client-supplied `id` makes it idempotent.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use crate::{
    caller,
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLog {
    org_id: Uuid,
    id: Option<Uuid>,
    comment: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    duration_minutes: Option<i32>,
    project_id: Option<Uuid>,
    activity_type_id: Option<Uuid>,
    work_mode_id: Option<Uuid>,
    task_category_id: Option<Uuid>,
    tags: Option<Vec<String>>,
    billable: Option<bool>,
    source: Option<String>,
    #[serde(default)]
    attachment_ids: Vec<Uuid>,
}

impl CreateLog {
    /// The fields the person gave, which classification must not change.
    fn locked(&self) -> Vec<&'static str> {
        [
            ("comment", self.comment.is_some()),
            ("started_at", self.started_at.is_some()),
            ("ended_at", self.ended_at.is_some()),
            ("duration_minutes", self.duration_minutes.is_some()),
            ("project_id", self.project_id.is_some()),
            ("activity_type_id", self.activity_type_id.is_some()),
            ("work_mode_id", self.work_mode_id.is_some()),
            ("task_category_id", self.task_category_id.is_some()),
            ("tags", self.tags.is_some()),
            ("billable", self.billable.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Creates the log; 201 `{log}`, or 200 `{log}` when a log with this `id` already exists.
pub async fn run(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: CreateLog,
) -> FnResult<(StatusCode, Value)> {
    let user = caller::user(ctx)?;
    let has_content = body
        .comment
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty())
        || body.duration_minutes.is_some()
        || body.started_at.is_some()
        || !body.attachment_ids.is_empty();
    if !has_content {
        return Err(FnError::bad_request(
            "A log needs a comment, a duration, a start time or an attachment",
        ));
    }
    let mut tx = ctx.begin(state.pool()).await?;
    caller::member(&mut tx, body.org_id).await?;
    let inserted = sqlx::query_scalar::<_, Value>(
        "insert into public.time_logs as l (id, org_id, user_id, comment, started_at, ended_at, \
                duration_minutes, project_id, activity_type_id, work_mode_id, task_category_id, \
                tags, billable, source, user_locked, status) \
         values (coalesce($1, private.uuid_v7()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                 coalesce($12, '{}'::text[]), coalesce($13, false), \
                 coalesce($14::public.log_source, 'manual'), $15, 'pending') \
         on conflict (id) do nothing returning to_jsonb(l)",
    )
    .bind(body.id)
    .bind(body.org_id)
    .bind(user)
    .bind(&body.comment)
    .bind(body.started_at)
    .bind(body.ended_at)
    .bind(body.duration_minutes)
    .bind(body.project_id)
    .bind(body.activity_type_id)
    .bind(body.work_mode_id)
    .bind(body.task_category_id)
    .bind(&body.tags)
    .bind(body.billable)
    .bind(&body.source)
    .bind(body.locked())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(log) = inserted else {
        // The id exists: the same request again returns the stored log, never a duplicate.
        let stored = sqlx::query_scalar::<_, Value>(
            "select to_jsonb(l) from public.time_logs l where id = $1 and org_id = $2 and user_id = $3",
        )
        .bind(body.id)
        .bind(body.org_id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        return match stored {
            Some(log) => Ok((StatusCode::OK, json!({ "log": log }))),
            None => Err(FnError::new(
                StatusCode::CONFLICT,
                "conflict",
                "Another log already has this id",
            )),
        };
    };
    if !body.attachment_ids.is_empty() {
        let log_id: Uuid = log["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| FnError::internal("the stored log has no id"))?;
        let linked = sqlx::query(
            "update public.attachments set time_log_id = $1 \
             where id = any($2) and org_id = $3 and user_id = $4 and deleted_at is null",
        )
        .bind(log_id)
        .bind(&body.attachment_ids)
        .bind(body.org_id)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if linked != body.attachment_ids.len() as u64 {
            return Err(FnError::bad_request(
                "Every attachment must be one of yours in this organization",
            ));
        }
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, json!({ "log": log })))
}
