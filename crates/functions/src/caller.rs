//! What a function asks of its caller: a signed-in user, a member of the organization.

use tally_core::RequestContext;
use uuid::Uuid;

use crate::error::{FnError, FnResult};

/// The signed-in user behind `ctx`; a project key alone is refused.
pub fn user(ctx: &RequestContext) -> FnResult<Uuid> {
    ctx.user_id()
        .ok_or_else(|| FnError::unauthorized("This function needs a signed-in user's token"))
}

/// 403 unless the caller is a member of `org` (any role), checked in their transaction.
pub async fn member(conn: &mut sqlx::PgConnection, org: Uuid) -> FnResult<()> {
    let member = tally_core::request::is_member(conn, org).await?;
    if member {
        Ok(())
    } else {
        Err(FnError::forbidden(
            "You are not a member of this organization",
        ))
    }
}
