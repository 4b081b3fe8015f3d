//! The audit trail's retention: a daily job removes rows older than the configured days.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, Payload};

/// An `audit_purge` job (scheduled daily by the migration `audit_retention`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AuditPurge {}

impl Payload for AuditPurge {
    const KIND: &'static str = "audit_purge";
}

/// Removes audit rows older than `retention_days`; returns how many went.
pub async fn purge(pool: &PgPool, retention_days: u32) -> Result<u64, sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    let removed = sqlx::query(
        "delete from public.audit_log where created_at < now() - make_interval(days => $1)",
    )
    .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(removed)
}

/// The worker side of [`AuditPurge`].
pub struct AuditPurgeJob {
    pool: PgPool,
    retention_days: u32,
}

impl AuditPurgeJob {
    /// A handler over `pool` keeping audit rows `retention_days`.
    pub fn new(pool: PgPool, retention_days: u32) -> Self {
        Self {
            pool,
            retention_days,
        }
    }
}

impl JobHandler for AuditPurgeJob {
    type Payload = AuditPurge;

    fn run<'a>(&'a self, _: AuditPurge, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let removed = purge(&self.pool, self.retention_days).await?;
            if removed > 0 {
                tracing::info!(removed, "audit rows purged");
            }
            Ok(())
        })
    }
}
