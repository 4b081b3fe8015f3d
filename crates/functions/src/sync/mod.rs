//! Offline sync for offline-first clients: `sync-pull` and `sync-push`.
//!
//! Positions come from the database (migration `sync`): every write to a synced table stamps
//! its row's entry with the transaction id and a sequence number, and a pull returns entries of
//! finished transactions only, in that order — so a transaction that commits late is never
//! skipped. Pushes apply each mutation in its own savepoint under RLS, idempotently by
//! `mutation_id`, with the server winning on a stale `base_version`. [`purge::SyncPurgeJob`]
//! removes old tombstones; a cursor older than what was purged must resync.

mod cursor;
pub mod pull;
pub mod purge;
pub mod push;
mod tables;

use crate::{
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// Counts one sync request of the caller against the per-minute limit (in the database, so every
/// instance counts together); over it is 429.
async fn rate_limit(state: &FunctionsState, tx: &mut sqlx::PgConnection) -> FnResult<()> {
    let allowed: bool = sqlx::query_scalar("select private.sync_take($1)")
        .bind(i32::try_from(state.sync().sync_requests_per_minute).unwrap_or(i32::MAX))
        .fetch_one(tx)
        .await?;
    if allowed {
        Ok(())
    } else {
        Err(FnError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many sync requests; try again in a minute",
        ))
    }
}
