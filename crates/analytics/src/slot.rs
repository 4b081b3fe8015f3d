//! Logical replication slots over SQL: created for pgoutput, dropped once no stream holds
//! them, and their state as PostgreSQL reports it (what they hold back, whether the WAL cap
//! took their WAL).

use std::time::Duration;

use sqlx::PgPool;

use crate::pgoutput::Lsn;

/// How long a drop waits for the slot's last stream to let go of it: a walsender exits a
/// moment after its client closed the connection.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// A slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    /// A stream holds it now.
    pub active: bool,
    /// What its consumer confirmed: a new stream starts after it.
    pub confirmed_flush: Lsn,
    /// `reserved`, `extended`, `unreserved` or `lost` (its WAL was removed: resync).
    pub wal_status: String,
    /// WAL between the server's current position and what was confirmed, in bytes.
    pub lag_bytes: i64,
    /// WAL it may still hold back before the cap takes it, when a cap is set.
    pub safe_wal_size: Option<i64>,
}

impl SlotState {
    /// Its WAL is gone: what it would stream next no longer exists.
    pub fn is_lost(&self) -> bool {
        self.wal_status == "lost"
    }
}

/// Creates `name` for pgoutput; the position from which it streams (its consistent point).
pub async fn create(pool: &PgPool, name: &str) -> Result<Lsn, sqlx::Error> {
    let lsn: String = sqlx::query_scalar(
        "select lsn::text from pg_create_logical_replication_slot($1, 'pgoutput')",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(parse_lsn(&lsn))
}

/// A row of `pg_replication_slots`, as [`state`] reads it.
#[derive(sqlx::FromRow)]
struct SlotRow {
    active: bool,
    confirmed: Option<String>,
    wal_status: Option<String>,
    lag_bytes: Option<i64>,
    safe_wal_size: Option<i64>,
}

/// The state of `name`, or `None` when there is no such slot.
pub async fn state(pool: &PgPool, name: &str) -> Result<Option<SlotState>, sqlx::Error> {
    let row: Option<SlotRow> = sqlx::query_as(
        "select active, confirmed_flush_lsn::text as confirmed, wal_status,
                pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 as lag_bytes,
                safe_wal_size
           from pg_replication_slots where slot_name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SlotState {
        active: r.active,
        confirmed_flush: r.confirmed.as_deref().map(parse_lsn).unwrap_or(Lsn(0)),
        wal_status: r.wal_status.unwrap_or_else(|| "lost".into()),
        lag_bytes: r.lag_bytes.unwrap_or(0),
        safe_wal_size: r.safe_wal_size,
    }))
}

/// Drops `name` if it exists, waiting (up to ten seconds) for a stream that just closed to
/// let go of it. True when a slot was dropped.
pub async fn drop(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
    loop {
        match state(pool, name).await? {
            None => return Ok(false),
            Some(s) if s.active && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some(_) => {
                sqlx::query("select pg_drop_replication_slot($1)")
                    .bind(name)
                    .execute(pool)
                    .await?;
                return Ok(true);
            }
        }
    }
}

/// `X/Y` as PostgreSQL prints a position (0 for anything else).
pub fn parse_lsn(text: &str) -> Lsn {
    let Some((hi, lo)) = text.split_once('/') else {
        return Lsn(0);
    };
    match (u64::from_str_radix(hi, 16), u64::from_str_radix(lo, 16)) {
        (Ok(hi), Ok(lo)) => Lsn(hi << 32 | lo),
        _ => Lsn(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_as_postgres_prints_them() {
        assert_eq!(parse_lsn("0/16B3748"), Lsn(0x16B_3748));
        assert_eq!(parse_lsn("1/0"), Lsn(1 << 32));
        assert_eq!(parse_lsn("bogus"), Lsn(0));
        assert_eq!(parse_lsn("1/zz"), Lsn(0));
    }
}
