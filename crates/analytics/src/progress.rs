//! Where each destination stands (`private.analytics_progress`): stored only after the
//! destination confirmed what it received, read at start to resume from exactly there.

use sqlx::PgPool;

use crate::{pgoutput::Lsn, slot::parse_lsn};

/// A destination's stored progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Its slot.
    pub slot: String,
    /// The position to stream from: what the destination holds ends here.
    pub lsn: Lsn,
    /// Whether the initial copy completed.
    pub copied: bool,
    /// Times the destination was copied again after its slot was lost.
    pub resyncs: i32,
    /// When the last stored transaction committed (PostgreSQL epoch microseconds).
    pub committed_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    slot: String,
    lsn: String,
    copied: bool,
    resyncs: i32,
    committed_at: Option<i64>,
}

/// The progress of `destination`, if it ever started.
pub async fn load(pool: &PgPool, destination: &str) -> Result<Option<Progress>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "select slot, lsn::text as lsn, copied, resyncs,
                (extract(epoch from committed_at - '2000-01-01 00:00:00+00') * 1e6)::int8
                  as committed_at
           from private.analytics_progress where destination = $1",
    )
    .bind(destination)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Progress {
        slot: r.slot,
        lsn: parse_lsn(&r.lsn),
        copied: r.copied,
        resyncs: r.resyncs,
        committed_at: r.committed_at,
    }))
}

/// Stores `progress` for `destination`.
pub async fn save(
    pool: &PgPool,
    destination: &str,
    progress: &Progress,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into private.analytics_progress
           (destination, slot, lsn, copied, resyncs, committed_at, updated_at)
         values ($1, $2, $3::pg_lsn, $4, $5,
                 '2000-01-01 00:00:00+00'::timestamptz + make_interval(secs => $6::float8 / 1e6),
                 now())
         on conflict (destination) do update
           set slot = excluded.slot, lsn = excluded.lsn, copied = excluded.copied,
               resyncs = excluded.resyncs, committed_at = excluded.committed_at,
               updated_at = now()",
    )
    .bind(destination)
    .bind(&progress.slot)
    .bind(progress.lsn.to_string())
    .bind(progress.copied)
    .bind(progress.resyncs)
    .bind(progress.committed_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets `destination` (analytics turned off).
pub async fn forget(pool: &PgPool, destination: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from private.analytics_progress where destination = $1")
        .bind(destination)
        .execute(pool)
        .await?;
    Ok(())
}
