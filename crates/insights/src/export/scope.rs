//! What an export holds: one SQL statement per scope, run in the caller's transaction (RLS
//! decides which rows come back), and each row as cells.
//!
//! - `logs`: the org's time logs (not deleted) that started — or, untimed, were logged — on a
//!   day from `from` to `to` in the org's time zone, oldest first; every status, with its
//!   project, vocabulary keys and the person's name.
//! - `day_summaries`: `user_day_summaries` of days `from`..=`to`.
//! - `weekly`: `person_period_summaries` of the weeks starting from `from`'s week to `to`.

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::{Stream, TryStreamExt};
use serde::Deserialize;
use sqlx::{PgConnection, Row, postgres::PgRow};
use uuid::Uuid;

use super::{Cell, Column, Kind};

/// Which rows an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Time logs.
    Logs,
    /// One row per person and day.
    DaySummaries,
    /// One row per person and week.
    Weekly,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

const LOG_COLUMNS: &[Column] = &[
    col("id", Kind::Text),
    col("user_id", Kind::Text),
    col("person", Kind::Text),
    col("started_at", Kind::Time),
    col("ended_at", Kind::Time),
    col("duration_minutes", Kind::Int),
    col("project_code", Kind::Text),
    col("project", Kind::Text),
    col("activity_type", Kind::Text),
    col("work_mode", Kind::Text),
    col("task_category", Kind::Text),
    col("billable", Kind::Bool),
    col("status", Kind::Text),
    col("source", Kind::Text),
    col("tags", Kind::Text),
    col("comment", Kind::Text),
    col("created_at", Kind::Time),
    col("updated_at", Kind::Time),
];

const LOGS: &str = "\
select l.id::text, l.user_id::text, pr.full_name, l.started_at, l.ended_at,
       l.duration_minutes::int8, p.code, p.name, a.key, w.key, c.key, l.billable,
       l.status::text, l.source::text, nullif(array_to_string(l.tags, ', '), ''), l.comment,
       l.created_at, l.updated_at
from public.time_logs l
join public.organizations o on o.id = l.org_id
left join public.profiles pr on pr.id = l.user_id
left join public.projects p on p.id = l.project_id
left join public.activity_types a on a.id = l.activity_type_id
left join public.work_modes w on w.id = l.work_mode_id
left join public.task_categories c on c.id = l.task_category_id
where l.org_id = $1 and l.deleted_at is null
  and coalesce(l.started_at, l.created_at) >= ($2::date::timestamp at time zone o.timezone)
  and coalesce(l.started_at, l.created_at) < (($3::date + 1)::timestamp at time zone o.timezone)
  and ($4::uuid is null or l.user_id = $4)
  and ($5::uuid is null or l.project_id = $5)
order by coalesce(l.started_at, l.created_at), l.id";

const SUMMARY_MINUTES: [&str; 7] = [
    "total_minutes",
    "focus_minutes",
    "meeting_minutes",
    "collaboration_minutes",
    "after_hours_minutes",
    "weekend_minutes",
    "billable_minutes",
];

const DAY_COLUMNS: &[Column] = &[
    col("user_id", Kind::Text),
    col("person", Kind::Text),
    col("day", Kind::Date),
    col(SUMMARY_MINUTES[0], Kind::Int),
    col(SUMMARY_MINUTES[1], Kind::Int),
    col(SUMMARY_MINUTES[2], Kind::Int),
    col(SUMMARY_MINUTES[3], Kind::Int),
    col(SUMMARY_MINUTES[4], Kind::Int),
    col(SUMMARY_MINUTES[5], Kind::Int),
    col(SUMMARY_MINUTES[6], Kind::Int),
    col("log_count", Kind::Int),
    col("longest_focus_minutes", Kind::Int),
    col("deep_work_blocks", Kind::Int),
    col("first_start", Kind::Time),
    col("last_end", Kind::Time),
    col("by_project", Kind::Text),
    col("by_activity", Kind::Text),
    col("by_work_mode", Kind::Text),
];

const DAYS: &str = "\
select s.user_id::text, pr.full_name, s.day, s.total_minutes::int8, s.focus_minutes::int8,
       s.meeting_minutes::int8, s.collaboration_minutes::int8, s.after_hours_minutes::int8,
       s.weekend_minutes::int8, s.billable_minutes::int8, s.log_count::int8,
       s.longest_focus_minutes::int8, s.deep_work_blocks::int8, s.first_start, s.last_end,
       s.by_project::text, s.by_activity::text, s.by_work_mode::text
from public.user_day_summaries s
left join public.profiles pr on pr.id = s.user_id
where s.org_id = $1 and s.day between $2 and $3
  and ($4::uuid is null or s.user_id = $4)
  and $5::uuid is null
order by s.day, s.user_id";

const WEEK_COLUMNS: &[Column] = &[
    col("user_id", Kind::Text),
    col("person", Kind::Text),
    col("week_start", Kind::Date),
    col(SUMMARY_MINUTES[0], Kind::Int),
    col(SUMMARY_MINUTES[1], Kind::Int),
    col(SUMMARY_MINUTES[2], Kind::Int),
    col(SUMMARY_MINUTES[3], Kind::Int),
    col(SUMMARY_MINUTES[4], Kind::Int),
    col(SUMMARY_MINUTES[5], Kind::Int),
    col(SUMMARY_MINUTES[6], Kind::Int),
    col("log_count", Kind::Int),
    col("days_worked", Kind::Int),
    col("longest_focus_minutes", Kind::Int),
    col("deep_work_blocks", Kind::Int),
];

const WEEKS: &str = "\
select w.user_id::text, pr.full_name, w.starts, w.total_minutes::int8, w.focus_minutes::int8,
       w.meeting_minutes::int8, w.collaboration_minutes::int8, w.after_hours_minutes::int8,
       w.weekend_minutes::int8, w.billable_minutes::int8, w.log_count::int8,
       w.days_worked::int8, w.longest_focus_minutes::int8, w.deep_work_blocks::int8
from public.person_period_summaries w
join public.organizations o on o.id = w.org_id
left join public.profiles pr on pr.id = w.user_id
where w.org_id = $1 and w.period = 'week'
  and w.starts between private.period_start('week', $2, o.settings) and $3
  and ($4::uuid is null or w.user_id = $4)
  and $5::uuid is null
order by w.starts, w.user_id";

impl Scope {
    /// The columns of its rows.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Self::Logs => LOG_COLUMNS,
            Self::DaySummaries => DAY_COLUMNS,
            Self::Weekly => WEEK_COLUMNS,
        }
    }

    /// Its name, as requests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logs => "logs",
            Self::DaySummaries => "day_summaries",
            Self::Weekly => "weekly",
        }
    }

    /// Whether rows can be narrowed to one project (only logs have one).
    pub fn has_project(self) -> bool {
        self == Self::Logs
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Logs => LOGS,
            Self::DaySummaries => DAYS,
            Self::Weekly => WEEKS,
        }
    }
}

/// One export's rows: the scope, the org, the days (inclusive) and the optional filters.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    /// What rows.
    pub scope: Scope,
    /// Whose.
    pub org_id: Uuid,
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// One person only.
    pub user_id: Option<Uuid>,
    /// One project only (logs).
    pub project_id: Option<Uuid>,
}

impl Query {
    /// Streams the rows, read on `conn` (the caller's transaction).
    pub fn rows<'c>(
        &self,
        conn: &'c mut PgConnection,
    ) -> impl Stream<Item = Result<Vec<Cell>, sqlx::Error>> + Send + 'c {
        let columns = self.scope.columns();
        sqlx::query(self.scope.sql())
            .bind(self.org_id)
            .bind(self.from)
            .bind(self.to)
            .bind(self.user_id)
            .bind(self.project_id)
            .fetch(conn)
            .and_then(move |row| std::future::ready(cells(&row, columns)))
    }
}

/// A row's cells, typed by `columns`.
fn cells(row: &PgRow, columns: &[Column]) -> Result<Vec<Cell>, sqlx::Error> {
    (0..columns.len())
        .zip(columns)
        .map(|(i, column)| {
            Ok(match column.kind {
                Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Cell::Text),
                Kind::Int => row.try_get::<Option<i64>, _>(i)?.map(Cell::Int),
                Kind::Bool => row.try_get::<Option<bool>, _>(i)?.map(Cell::Bool),
                Kind::Date => row.try_get::<Option<NaiveDate>, _>(i)?.map(Cell::Date),
                Kind::Time => row.try_get::<Option<DateTime<Utc>>, _>(i)?.map(Cell::Time),
            }
            .unwrap_or(Cell::Null))
        })
        .collect()
}
