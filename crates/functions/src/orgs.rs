//! `orgs-list` `{}`: the caller's organizations with their role — what a front end that talks
//! only to `/auth/v1` and `/functions/v1` (a Figma plugin) needs before logging. Read in the
//! caller's transaction, so row-level security decides.

use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;

use crate::{caller, error::FnResult, state::FunctionsState};

/// `orgs-list`'s body: nothing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListOrgs {}

/// `{orgs: [{org_id, name, role, timezone}], mfa_required: [{org_id, name}]}`, oldest
/// membership first: `mfa_required` names the orgs that require a second factor of an aal1
/// session like the caller's (they are not in `orgs` until the caller verifies one).
pub async fn run(state: &FunctionsState, ctx: &RequestContext, _body: ListOrgs) -> FnResult<Value> {
    let user = caller::user(ctx)?;
    let mut tx = ctx.begin(state.pool()).await?;
    let orgs: Value = sqlx::query_scalar(
        "select coalesce(jsonb_agg(jsonb_build_object('org_id', o.id, 'name', o.name, \
                'role', m.role, 'timezone', o.timezone) order by m.created_at), '[]'::jsonb) \
         from public.memberships m join public.organizations o on o.id = m.org_id \
         where m.user_id = $1",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    let awaiting: Value = sqlx::query_scalar(
        "select coalesce(jsonb_agg(jsonb_build_object('org_id', a.org_id, 'name', a.name)), \
                '[]'::jsonb) from private.orgs_awaiting_mfa() a",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(json!({ "orgs": orgs, "mfa_required": awaiting }))
}
