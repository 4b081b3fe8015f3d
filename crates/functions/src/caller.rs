//! Who is calling: the bearer token (a user's session, or a project key) checked like the
//! hosted runtime's `verify_jwt`.

use axum::http::HeaderMap;
use tally_core::{RequestContext, gateway};
use uuid::Uuid;

use crate::{
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// The caller of a function; a missing or bad token is 401.
pub async fn resolve(state: &FunctionsState, headers: &HeaderMap) -> FnResult<RequestContext> {
    gateway::Caller::of(state, headers)
        .await
        .map(|caller| caller.0)
        .map_err(|e| match e {
            gateway::CallerError::Database(e) => FnError::from(e),
            other => FnError::unauthorized(other.to_string()),
        })
}

/// The signed-in user behind `ctx`; a project key alone is refused.
pub fn user(ctx: &RequestContext) -> FnResult<Uuid> {
    ctx.user_id()
        .ok_or_else(|| FnError::unauthorized("This function needs a signed-in user's token"))
}

/// 403 unless the caller is a member of `org` (any role), checked in their transaction.
pub async fn member(conn: &mut sqlx::PgConnection, org: Uuid) -> FnResult<()> {
    let member: bool =
        sqlx::query_scalar("select $1 = any ((select private.my_org_ids())::uuid[])")
            .bind(org)
            .fetch_one(conn)
            .await?;
    if member {
        Ok(())
    } else {
        Err(FnError::forbidden(
            "You are not a member of this organization",
        ))
    }
}
