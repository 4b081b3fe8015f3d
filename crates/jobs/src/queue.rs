//! The queue's storage: enqueue inside the caller's transaction, claim with a lease, then
//! complete, retry, bury or release. Every worker-side statement runs as service_role.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tally_core::RequestContext;
use uuid::Uuid;

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    kind: String,
    payload: Value,
    org_id: Option<Uuid>,
    dedupe_key: Option<String>,
    run_at: Option<DateTime<Utc>>,
    max_attempts: i32,
}

impl NewJob {
    /// A job of `kind` with `payload`, due now, tried up to 5 times.
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            org_id: None,
            dedupe_key: None,
            run_at: None,
            max_attempts: 5,
        }
    }

    /// The organization the job works for.
    pub fn org(mut self, org_id: Uuid) -> Self {
        self.org_id = Some(org_id);
        self
    }

    /// While a live job of this kind has this key, enqueueing another does nothing.
    pub fn dedupe(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Runs no earlier than `at`.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Tries at most `n` times before the job is dead.
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n;
        self
    }
}

/// Enqueues `job` on `conn`, inside whatever transaction it is in (a rollback enqueues
/// nothing). Returns the job's id, or `None` when a live job with the same key exists.
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select private.enqueue_job($1, $2, $3, $4, $5, $6)")
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.org_id)
        .bind(&job.dedupe_key)
        .bind(job.run_at)
        .bind(job.max_attempts)
        .fetch_one(conn)
        .await
}

/// A claimed job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// What to do.
    pub kind: String,
    /// With what.
    pub payload: Value,
    /// For which organization.
    pub org_id: Option<Uuid>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
}

impl Job {
    /// Whether this attempt is the last one allowed.
    pub fn is_last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// How long a worker may stay silent before its jobs are taken from it (by default).
pub const STALE_AFTER: Duration = Duration::from_secs(15);

/// The worker side of the queue.
#[derive(Clone)]
pub struct Queue {
    pool: PgPool,
    worker: String,
    lease: Duration,
    stale_after: Duration,
}

impl Queue {
    /// A queue over `pool` (the request pool: statements run as service_role); claims are
    /// leased for `lease`, after which another worker may take the job — or sooner, once the
    /// worker holding it has not been heard of for [`STALE_AFTER`].
    pub fn new(pool: PgPool, lease: Duration) -> Self {
        Self {
            pool,
            worker: format!("{}-{}", std::process::id(), Uuid::new_v4().simple()),
            lease,
            stale_after: STALE_AFTER,
        }
    }

    /// Takes jobs from workers silent for `after` instead of [`STALE_AFTER`].
    pub fn stale_after(mut self, after: Duration) -> Self {
        self.stale_after = after;
        self
    }

    /// Says this worker is alive (claims do too); a worker that stops saying it — a crashed
    /// process — loses its jobs to the others after the stale interval.
    pub async fn heartbeat(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        beat(&mut tx, &self.worker).await?;
        sqlx::query("delete from private.workers where seen_at < now() - interval '1 day'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// This worker stops: its row goes (its jobs were released or finished).
    pub async fn retire(&self) -> Result<(), sqlx::Error> {
        self.run(sqlx::query("delete from private.workers where id = $1").bind(&self.worker))
            .await
    }

    /// The pool the queue runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        RequestContext::service().begin(&self.pool).await
    }

    /// Claims the next due job of one of `kinds`: it is leased to this worker and its attempt
    /// counted. Jobs whose lease ran out, or whose worker has gone silent (a crash), are due
    /// again.
    pub async fn claim(&self, kinds: &[String]) -> Result<Option<Job>, sqlx::Error> {
        let mut tx = self.begin().await?;
        beat(&mut tx, &self.worker).await?;
        let job = sqlx::query_as::<_, Job>(
            "update private.jobs j \
             set locked_until = now() + make_interval(secs => $3), \
                 locked_by = $2, attempts = attempts + 1 \
             where j.id = (select q.id from private.jobs q \
                           where not q.dead and q.kind = any($1) and q.run_at <= now() \
                             and (q.locked_until is null or q.locked_until < now() \
                                  or not exists (select 1 from private.workers w \
                                                 where w.id = q.locked_by \
                                                   and w.seen_at > now() - make_interval(secs => $4))) \
                           order by q.priority desc, q.run_at, q.id \
                           for update of q skip locked limit 1) \
             returning j.id, j.kind, j.payload, j.org_id, j.attempts, j.max_attempts",
        )
        .bind(kinds)
        .bind(&self.worker)
        .bind(self.lease.as_secs_f64())
        .bind(self.stale_after.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(job)
    }

    async fn run(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        query.execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Puts a claimed job back in line with `query`. Should a job with the same dedupe key have
    /// been enqueued while this one ran, that one is already waiting to do the same work: this
    /// one leaves the queue instead.
    async fn unlock(
        &self,
        job: &Job,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), sqlx::Error> {
        match self.run(query).await {
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") => {
                self.run(sqlx::query("delete from private.jobs where id = $1").bind(job.id))
                    .await
            }
            other => other,
        }
    }

    /// The job is done: it leaves the queue.
    pub async fn complete(&self, job: &Job) -> Result<(), sqlx::Error> {
        self.run(
            sqlx::query("delete from private.jobs where id = $1 and locked_by = $2")
                .bind(job.id)
                .bind(&self.worker),
        )
        .await
    }

    /// The attempt failed: the job runs again after `delay`, with `error` kept.
    pub async fn retry(&self, job: &Job, error: &str, delay: Duration) -> Result<(), sqlx::Error> {
        self.unlock(
            job,
            sqlx::query(
                "update private.jobs set locked_until = null, locked_by = null, last_error = $2, \
                 run_at = now() + make_interval(secs => $3) where id = $1",
            )
            .bind(job.id)
            .bind(error)
            .bind(delay.as_secs_f64()),
        )
        .await
    }

    /// The job failed for good: it stays in the queue, dead, with its last error.
    pub async fn bury(&self, job: &Job, error: &str) -> Result<(), sqlx::Error> {
        self.run(
            sqlx::query(
                "update private.jobs set dead = true, locked_until = null, locked_by = null, \
                 last_error = $2 where id = $1",
            )
            .bind(job.id)
            .bind(error),
        )
        .await
    }

    /// Gives a claimed job back unfinished (shutdown): due at once, the attempt not counted.
    pub async fn release(&self, job: &Job) -> Result<(), sqlx::Error> {
        self.unlock(
            job,
            sqlx::query(
                "update private.jobs set locked_until = null, locked_by = null, \
                 attempts = greatest(attempts - 1, 0) where id = $1 and locked_by = $2",
            )
            .bind(job.id)
            .bind(&self.worker),
        )
        .await
    }
}

/// Stamps `worker` as alive now.
async fn beat(conn: &mut PgConnection, worker: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into private.workers (id) values ($1) \
         on conflict (id) do update set seen_at = now()",
    )
    .bind(worker)
    .execute(conn)
    .await
    .map(drop)
}

/// The wait before retry `attempt` (1-based): 2^attempt seconds from 2 s, capped at an hour,
/// with ±25 % jitter so failed jobs do not return in step.
pub fn backoff(attempt: i32) -> Duration {
    let base = 2f64.powi(attempt.clamp(1, 12)).min(3600.0);
    let unit = (Uuid::new_v4().as_u128() % 10_000) as f64 / 10_000.0;
    Duration::from_secs_f64(base * (0.75 + 0.5 * unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempt in 1..20 {
            let d = backoff(attempt).as_secs_f64();
            let base = 2f64.powi(attempt.min(12)).min(3600.0);
            assert!(d >= base * 0.75 && d <= base * 1.25, "{attempt}: {d}");
        }
        assert!(backoff(30) <= Duration::from_secs(4500));
    }
}
