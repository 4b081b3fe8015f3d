//! Timesheets: `timesheet-submit` `{org_id, date?}` submits the caller's period holding `date`
//! (today in their time zone by default; the period is the org's week or month), and
//! `timesheet-review` `{timesheet_id, decision: approve|reject|reopen, reason?}` decides on
//! one. The database holds the rules (who may move a timesheet where, `PT403`/`PT409`), so
//! REST writes to `timesheet_periods` meet the same ones.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use crate::{
    caller,
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// `timesheet-submit`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    org_id: Uuid,
    date: Option<NaiveDate>,
}

/// Submits the period; `{timesheet}`.
pub async fn submit(state: &FunctionsState, ctx: &RequestContext, body: Submit) -> FnResult<Value> {
    let user = caller::user(ctx)?;
    let mut tx = ctx.begin(state.pool()).await?;
    caller::member(&mut tx, body.org_id).await?;
    let timesheet = sqlx::query_scalar::<_, Value>(
        "with today as ( \
           select (now() at time zone coalesce(p.timezone, o.timezone))::date as day \
           from public.organizations o left join public.profiles p on p.id = $2 where o.id = $1) \
         insert into public.timesheet_periods as t (org_id, user_id, period_start, status) \
         select $1, $2, coalesce($3, today.day), 'submitted' from today \
         on conflict (org_id, user_id, period_start) do update set status = 'submitted' \
         returning to_jsonb(t)",
    )
    .bind(body.org_id)
    .bind(user)
    .bind(body.date)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| FnError::not_found("Organization"))?;
    tx.commit().await?;
    Ok(json!({ "timesheet": timesheet }))
}

/// What a reviewer decides.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// submitted → approved: its logs are locked.
    Approve,
    /// submitted → rejected, with a reason: the person fixes and submits again.
    Reject,
    /// back to open (owners and admins): its logs can be changed again.
    Reopen,
}

/// `timesheet-review`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    timesheet_id: Uuid,
    decision: Decision,
    reason: Option<String>,
}

/// Applies the decision; `{timesheet}`.
pub async fn review(state: &FunctionsState, ctx: &RequestContext, body: Review) -> FnResult<Value> {
    caller::user(ctx)?;
    let status = match body.decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
        Decision::Reopen => "open",
    };
    if matches!(body.decision, Decision::Reject)
        && body.reason.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return Err(FnError::bad_request("A rejection needs a reason"));
    }
    let mut tx = ctx.begin(state.pool()).await?;
    let timesheet = sqlx::query_scalar::<_, Value>(
        "update public.timesheet_periods t set status = $2::public.timesheet_status, reason = $3 \
         where id = $1 returning to_jsonb(t)",
    )
    .bind(body.timesheet_id)
    .bind(status)
    .bind(&body.reason)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| FnError::not_found("Timesheet"))?;
    tx.commit().await?;
    Ok(json!({ "timesheet": timesheet }))
}
