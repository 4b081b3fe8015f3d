//! `insights-rollup` (also `insights.rollup`) `{org_id?, from?, to?}`: recomputes the day
//! summaries of a range on demand. Owners and admins of the org may run it for their org; the
//! service role for any org, or every org without `org_id`. `to` defaults to today (UTC),
//! `from` to 30 days before `to`; a range is at most 366 days.

use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::{DbRole, RequestContext};
use uuid::Uuid;

use crate::{
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// The longest range one call recomputes.
const MAX_DAYS: u64 = 366;

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollup {
    org_id: Option<Uuid>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

/// 200 `{org_id, from, to, days}`: `days` is how many (person, day) summaries were recomputed.
pub async fn run(state: &FunctionsState, ctx: &RequestContext, body: Rollup) -> FnResult<Value> {
    let to = body.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = body
        .from
        .unwrap_or_else(|| to.checked_sub_days(Days::new(30)).unwrap_or(to));
    if from > to {
        return Err(FnError::bad_request("from must not be after to"));
    }
    if to.signed_duration_since(from).num_days() >= i64::try_from(MAX_DAYS).unwrap_or(i64::MAX) {
        return Err(FnError::bad_request(format!(
            "A rollup covers at most {MAX_DAYS} days"
        )));
    }
    if ctx.role() != DbRole::ServiceRole {
        let org = body
            .org_id
            .ok_or_else(|| FnError::bad_request("org_id is required"))?;
        let mut tx = ctx.begin_read_only(state.pool()).await?;
        let admin: bool = sqlx::query_scalar(
            "select $1 = any (private.my_org_ids('{owner,admin}'::public.org_role[]))",
        )
        .bind(org)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        if !admin {
            return Err(FnError::forbidden(
                "Only the org's owners and admins may run a rollup",
            ));
        }
    }
    let days = tally_insights::rollup::range(state.pool(), body.org_id, from, to).await?;
    Ok(json!({ "org_id": body.org_id, "from": from, "to": to, "days": days }))
}
