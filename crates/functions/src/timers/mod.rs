//! Running timers: `timer-start` and `timer-stop`, and the job that reminds of timers left
//! running. A running timer is a log with source `timer`, a start and no end; at most one runs
//! per person and org. Starting one stops the running one at the same instant (the server's clock
//! once a per-person lock is held), in the same transaction (the database does the same for a running log written
//! through REST or `sync-push`), so two starts at once leave exactly one running.

pub mod remind;
pub mod start;
pub mod stop;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::FnResult;

/// The condition for a running timer (the predicate of `time_logs_running_timer_idx`).
const RUNNING: &str = "source = 'timer' and ended_at is null and started_at is not null \
                       and deleted_at is null";

/// Takes the per-person lock every start and stop of `user`'s timers in `org` takes; returns
/// the server's clock once it is held.
async fn lock(conn: &mut PgConnection, org: Uuid, user: Uuid) -> FnResult<DateTime<Utc>> {
    Ok(sqlx::query_scalar("select private.lock_timers($1, $2)")
        .bind(org)
        .bind(user)
        .fetch_one(conn)
        .await?)
}

/// Stops log `id` at `end`, at most a day after its start; returns the stored log and whether
/// the end was cut to that day.
async fn stop_at(conn: &mut PgConnection, id: Uuid, end: DateTime<Utc>) -> FnResult<(Value, bool)> {
    let (log, capped) = sqlx::query_as::<_, (Value, bool)>(
        "with stopped as ( \
           update public.time_logs l \
              set ended_at = greatest(least($2, l.started_at + interval '1 day'), \
                                      l.started_at + interval '1 microsecond'), \
                  duration_minutes = null \
            where l.id = $1 returning l.*) \
         select to_jsonb(s), $2 > s.started_at + interval '1 day' from stopped s",
    )
    .bind(id)
    .bind(end)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| crate::FnError::forbidden("You may read this timer but not stop it"))?;
    Ok((log, capped))
}
