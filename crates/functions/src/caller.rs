//! What a function asks of its caller: a signed-in user, a member of the organization.

use tally_core::{
    RequestContext,
    request::{self, OrgAccess},
};
use uuid::Uuid;

use crate::error::{FnError, FnResult};

/// The signed-in user behind `ctx`; a project key alone is refused.
pub fn user(ctx: &RequestContext) -> FnResult<Uuid> {
    ctx.user_id()
        .ok_or_else(|| FnError::unauthorized("This function needs a signed-in user's token"))
}

/// 403 unless the caller is a member of `org` (any role), checked in their transaction;
/// `insufficient_aal` when the org requires MFA and the caller's session is at aal1.
pub async fn member(conn: &mut sqlx::PgConnection, org: Uuid) -> FnResult<()> {
    match request::org_access(conn, org).await? {
        OrgAccess::Member => Ok(()),
        OrgAccess::MfaRequired => Err(FnError::insufficient_aal(request::MFA_REQUIRED)),
        OrgAccess::None => Err(FnError::forbidden(
            "You are not a member of this organization",
        )),
    }
}
