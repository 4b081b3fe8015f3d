//! The daily tombstone purge: rows deleted longer ago than the retention are removed for good
//! (with their change entries and the remembered push results of that age), and each org's
//! horizon moves up, so a client still behind it is told to resync.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, Payload};

/// A `sync_purge` job (scheduled daily by the migration `sync`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SyncPurge {}

impl Payload for SyncPurge {
    const KIND: &'static str = "sync_purge";
}

/// Purges tombstones older than `retention_days`; returns how many rows went.
pub async fn purge(pool: &PgPool, retention_days: u32) -> Result<i64, sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    let n: i32 = sqlx::query_scalar("select private.sync_purge(make_interval(days => $1))")
        .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(i64::from(n))
}

/// The worker side of [`SyncPurge`].
pub struct SyncPurgeJob {
    pool: PgPool,
    retention_days: u32,
}

impl SyncPurgeJob {
    /// A handler over `pool` keeping tombstones `retention_days`.
    pub fn new(pool: PgPool, retention_days: u32) -> Self {
        Self {
            pool,
            retention_days,
        }
    }
}

impl JobHandler for SyncPurgeJob {
    type Payload = SyncPurge;

    fn run<'a>(&'a self, _: SyncPurge, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let removed = purge(&self.pool, self.retention_days).await?;
            if removed > 0 {
                tracing::info!(removed, "sync tombstones purged");
            }
            Ok(())
        })
    }
}
