//! Periodic jobs from `private.schedules`: cron expressions in a time zone (croner). Each tick
//! claims the due schedules with SKIP LOCKED, enqueues their job (deduplicated by schedule and
//! due time) and moves them to their next occurrence, so several instances never double-run.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde_json::Value;
use sqlx::PgPool;
use tally_core::RequestContext;

use crate::queue::{NewJob, enqueue};

/// Why a schedule was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("invalid cron expression \"{0}\": {1}")]
    Cron(String, String),
    /// The time zone is unknown.
    #[error("unknown time zone \"{0}\"")]
    TimeZone(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The next time `cron` fires in `tz` after `after`.
pub fn next_run(
    cron: &str,
    tz: &str,
    after: DateTime<Utc>,
) -> Result<DateTime<Utc>, ScheduleError> {
    let tz: Tz = tz
        .parse()
        .map_err(|_| ScheduleError::TimeZone(tz.to_owned()))?;
    let cron: Cron = cron.parse().map_err(|e: croner::errors::CronError| {
        ScheduleError::Cron(cron.to_owned(), e.to_string())
    })?;
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ScheduleError::Cron(cron.pattern.to_string(), e.to_string()))
}

/// Creates or changes the schedule `name`: job `kind` with `payload` whenever `cron` fires in
/// time zone `tz`.
pub async fn upsert(
    pool: &PgPool,
    name: &str,
    cron: &str,
    tz: &str,
    kind: &str,
    payload: &Value,
) -> Result<(), ScheduleError> {
    let next = next_run(cron, tz, Utc::now())?;
    let mut tx = RequestContext::service().begin(pool).await?;
    sqlx::query(
        "insert into private.schedules (name, cron, timezone, kind, payload, next_run_at) \
         values ($1, $2, $3, $4, $5, $6) \
         on conflict (name) do update set cron = excluded.cron, timezone = excluded.timezone, \
           kind = excluded.kind, payload = excluded.payload, next_run_at = excluded.next_run_at",
    )
    .bind(name)
    .bind(cron)
    .bind(tz)
    .bind(kind)
    .bind(payload)
    .bind(next)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Enqueues the job of every due schedule once and moves it to its next run. Returns how many
/// schedules fired.
pub async fn tick(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    let due: Vec<(String, String, String, String, Value, DateTime<Utc>)> = sqlx::query_as(
        "select name, cron, timezone, kind, payload, next_run_at from private.schedules \
         where enabled and next_run_at <= now() for update skip locked",
    )
    .fetch_all(&mut *tx)
    .await?;
    let now = Utc::now();
    for (name, cron, tz, kind, payload, due_at) in &due {
        let job =
            NewJob::new(kind, payload.clone()).dedupe(format!("{name}@{}", due_at.to_rfc3339()));
        enqueue(&mut tx, &job).await?;
        let next = match next_run(cron, tz, now) {
            Ok(next) => Some(next),
            Err(e) => {
                tracing::error!(schedule = %name, error = %e, "schedule disabled");
                None
            }
        };
        sqlx::query(
            "update private.schedules set last_run_at = now(), next_run_at = $2, \
             enabled = $2 is not null where name = $1",
        )
        .bind(name)
        .bind(next)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_runs_follow_the_time_zone() {
        let after = "2026-03-10T12:00:00Z".parse().expect("valid");
        // 03:00 in Berlin (UTC+1 in March before DST) is 02:00 UTC.
        let next = next_run("0 3 * * *", "Europe/Berlin", after).expect("valid");
        assert_eq!(next.to_rfc3339(), "2026-03-11T02:00:00+00:00");
        assert!(matches!(
            next_run("not cron", "UTC", after),
            Err(ScheduleError::Cron(..))
        ));
        assert!(matches!(
            next_run("0 3 * * *", "Mars/Olympus", after),
            Err(ScheduleError::TimeZone(_))
        ));
    }
}
