//! Insights: the numbers of the dashboards, computed in PostgreSQL.
//!
//! - `user_day_summaries` are kept current incrementally: a change to a time log marks its
//!   person's local days dirty in the same transaction (a trigger), and [`rollup::dirty`]
//!   recomputes only those days — every minute through the [`rollup::RollupJob`] schedule.
//! - [`rollup::range`] recomputes an org's (or every org's) days in a range on demand (the
//!   `insights-rollup` function), refreshes the weekly and monthly materialized views and scores
//!   the weeks' burnout and utilization risk (`risk_scores`, explained factor by factor);
//!   [`rollup::nightly`] does it for yesterday, per org time zone.
//! - [`export`] reads what a caller may see of logs, day or week summaries and encodes it as
//!   CSV, XLSX, JSON or Parquet, row by row (the `export-create` function stores it).
//!
//! The definitions (time zones, work hours, splitting at midnight and DST) live in the
//! migration `day_summaries` and the README's "Insights".

pub mod export;
pub mod rollup;

/// Registers the job this crate runs: the rollup of dirty days (and the nightly pass).
pub fn jobs(workers: tally_jobs::Workers, pool: &sqlx::PgPool) -> tally_jobs::Workers {
    workers.job(rollup::RollupJob::new(pool.clone()))
}
