//! Recomputing day summaries: the dirty days, or a range on demand.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, Payload};
use uuid::Uuid;

/// An `insights_rollup` job: recomputes the dirty days (scheduled every minute by the
/// migrations), or with `{"nightly": true}` runs [`nightly`] (scheduled hourly).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct InsightsRollup {
    /// Run [`nightly`] instead.
    #[serde(default)]
    pub nightly: bool,
}

impl Payload for InsightsRollup {
    const KIND: &'static str = "insights_rollup";
}

/// Recomputes every dirty day, running timers' days included (they count up to now), and the
/// weekly and monthly periods they fall in; returns how many days. Safe to run on several instances at once:
/// each takes days the others have not locked.
pub async fn dirty(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    sqlx::query("select private.mark_running_timers()")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut done = 0u64;
    loop {
        let mut tx = RequestContext::service().begin(pool).await?;
        let n: i32 = sqlx::query_scalar("select private.rollup_dirty(5000)")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        done += u64::try_from(n).unwrap_or(0);
        if n == 0 {
            return Ok(done);
        }
    }
}

/// Recomputes the days `from..=to` of one org (or of every org) with their weekly and monthly
/// periods, and scores the weeks touched; returns how many days.
pub async fn range(
    pool: &PgPool,
    org: Option<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<u64, sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    let n: i32 = sqlx::query_scalar("select private.rollup_range($1, $2, $3)")
        .bind(org)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("select private.score_range($1, $2, $3)")
        .bind(org)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The nightly run: for each org whose local time has just passed midnight, yesterday is
/// recomputed with its periods and its week scored. Returns how many days.
pub async fn nightly(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    let n: i32 = sqlx::query_scalar("select private.rollup_nightly()")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The worker side of [`InsightsRollup`].
pub struct RollupJob {
    pool: PgPool,
}

impl RollupJob {
    /// A handler over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl JobHandler for RollupJob {
    type Payload = InsightsRollup;

    fn run<'a>(&'a self, job: InsightsRollup, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let days = if job.nightly {
                nightly(&self.pool).await?
            } else {
                dirty(&self.pool).await?
            };
            if days > 0 {
                tracing::debug!(days, "day summaries recomputed");
            }
            Ok(())
        })
    }
}
