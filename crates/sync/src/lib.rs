//! Offline sync for offline-first clients: `sync-pull` and `sync-push`.
//!
//! Positions come from the database (migration `sync`): every write to a synced table stamps
//! its row's entry with the transaction id and a sequence number, and a pull returns entries of
//! finished transactions only, in that order — so a transaction that commits late is never
//! skipped. Pushes apply each mutation in its own savepoint under RLS, idempotently by
//! `mutation_id`, with the server winning on a stale `base_version`. [`purge::SyncPurgeJob`]
//! removes old tombstones; a cursor older than what was purged must resync.

//!
//! The door: [`pull::run`] and [`push::run`] (as `/functions/v1` calls them, with the caller's
//! context), their errors ([`SyncError`]), and [`jobs`], which registers the purge.

mod cursor;
mod error;
pub mod pull;
pub mod purge;
pub mod push;
pub mod tables;

use tally_core::{RequestContext, config::SyncSettings};

pub use error::{SyncError, SyncResult};

/// Registers the job this crate runs: the purge of tombstones older than the retention.
pub fn jobs(
    workers: tally_jobs::Workers,
    pool: &sqlx::PgPool,
    settings: &SyncSettings,
) -> tally_jobs::Workers {
    workers.job(purge::SyncPurgeJob::new(
        pool.clone(),
        settings.sync_tombstone_retention_days,
    ))
}

/// Counts one sync request of the caller against the per-minute limit (in the database, so every
/// instance counts together); over it is 429.
async fn rate_limit(settings: &SyncSettings, tx: &mut sqlx::PgConnection) -> SyncResult<()> {
    let allowed: bool = sqlx::query_scalar("select private.sync_take($1)")
        .bind(i32::try_from(settings.sync_requests_per_minute).unwrap_or(i32::MAX))
        .fetch_one(tx)
        .await?;
    if allowed {
        Ok(())
    } else {
        Err(SyncError::RateLimited)
    }
}

/// The signed-in user behind `ctx`, a member of `org`: what a pull or a push needs.
fn user(ctx: &RequestContext) -> SyncResult<uuid::Uuid> {
    ctx.user_id().ok_or(SyncError::NeedsUser)
}

/// 403 unless the caller of `tx` is a member of `org` whose session the org lets in.
async fn member(tx: &mut sqlx::PgConnection, org: uuid::Uuid) -> SyncResult<()> {
    use tally_core::request::OrgAccess;
    match tally_core::request::org_access(tx, org).await? {
        OrgAccess::Member => Ok(()),
        OrgAccess::MfaRequired => Err(SyncError::MfaRequired),
        OrgAccess::None => Err(SyncError::NotMember),
    }
}
