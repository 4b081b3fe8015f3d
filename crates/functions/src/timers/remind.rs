//! The `timer_reminders` job (every five minutes, scheduled by the `timers` migration): each
//! timer running longer than `TALLY_TIMER_REMIND_HOURS` gets one `timer.running_long`, to the
//! org's outbound webhooks and on its person's timer channel.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, Payload};

/// A `timer_reminders` job.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TimerReminders {}

impl Payload for TimerReminders {
    const KIND: &'static str = "timer_reminders";
}

/// Reminds of every timer running longer than `hours` not reminded of yet; returns how many.
pub async fn remind(pool: &PgPool, hours: u32) -> Result<u64, sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    let n: i32 = sqlx::query_scalar("select private.remind_long_timers($1)")
        .bind(i32::try_from(hours).unwrap_or(i32::MAX))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The worker side of [`TimerReminders`].
pub struct TimerRemindersJob {
    pool: PgPool,
    hours: u32,
}

impl TimerRemindersJob {
    /// A handler over `pool` reminding after `hours`.
    pub fn new(pool: PgPool, hours: u32) -> Self {
        Self { pool, hours }
    }
}

impl JobHandler for TimerRemindersJob {
    type Payload = TimerReminders;

    fn run<'a>(&'a self, _: TimerReminders, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let reminded = remind(&self.pool, self.hours).await?;
            if reminded > 0 {
                tracing::info!(reminded, "long-running timers reminded");
            }
            Ok(())
        })
    }
}
