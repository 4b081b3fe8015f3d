//! `analytics-query` `{org_id, from, to, interval?, group_by?}`: minutes over any range, by
//! day, week or month, optionally by person, project, activity or work mode — the dashboard
//! questions people ask ad hoc. With ClickHouse configured (analytics phase 2) it answers
//! from ClickHouse's current view of the logs; otherwise from the phase-1 rollups (day
//! summaries). Either way the caller sees what row-level security lets them see of the
//! rollups: owners and admins their org, a manager themselves and the people they lead, a
//! member themselves, a viewer org-wide aggregates only (by week or month, and by project
//! where enough people are behind it) — scoped here for ClickHouse, which has no RLS, from
//! the caller's role read under RLS.

use chrono::{Datelike, Days, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use crate::{
    caller,
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// The longest range one query covers (ten years).
const MAX_DAYS: i64 = 3_660;

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    org_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    /// `day`, `week` (the default; weeks start on the org's `week_start`) or `month`.
    interval: Option<String>,
    /// Any of `person`, `project`, `activity`, `work_mode`.
    #[serde(default)]
    group_by: Vec<String>,
}

/// What rows are grouped by, besides the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Person,
    Project,
    Activity,
    WorkMode,
}

impl Dimension {
    fn parse(name: &str) -> FnResult<Self> {
        match name {
            "person" => Ok(Self::Person),
            "project" => Ok(Self::Project),
            "activity" => Ok(Self::Activity),
            "work_mode" => Ok(Self::WorkMode),
            other => Err(FnError::bad_request(format!(
                "group_by takes person, project, activity and work_mode, not {other:?}"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Project => "project",
            Self::Activity => "activity",
            Self::WorkMode => "work_mode",
        }
    }

    /// The day summaries' breakdown column, and the log column, of this dimension.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Self::Person => ("", "user_id"),
            Self::Project => ("by_project", "project_id"),
            Self::Activity => ("by_activity", "activity_type_id"),
            Self::WorkMode => ("by_work_mode", "work_mode_id"),
        }
    }
}

/// 200 `{source, scope, interval, rows: [{period, minutes, person?, project?, …}]}`.
pub async fn run(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: AnalyticsQuery,
) -> FnResult<Value> {
    let user = caller::user(ctx)?;
    let interval = body.interval.as_deref().unwrap_or("week");
    if !matches!(interval, "day" | "week" | "month") {
        return Err(FnError::bad_request("interval is day, week or month"));
    }
    if body.from > body.to {
        return Err(FnError::bad_request("from must not be after to"));
    }
    if (body.to - body.from).num_days() >= MAX_DAYS {
        return Err(FnError::bad_request(format!(
            "A query covers at most {MAX_DAYS} days"
        )));
    }
    let mut dimensions = Vec::new();
    for name in &body.group_by {
        let dimension = Dimension::parse(name)?;
        if !dimensions.contains(&dimension) {
            dimensions.push(dimension);
        }
    }
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    caller::member(&mut tx, body.org_id).await?;
    let role: Option<String> = sqlx::query_scalar(
        "select role::text from public.memberships where org_id = $1 and user_id = $2",
    )
    .bind(body.org_id)
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let role =
        role.ok_or_else(|| FnError::forbidden("You are not a member of this organization"))?;
    let scope = match role.as_str() {
        "owner" | "admin" => "org",
        "manager" => "led",
        "member" => "self",
        _ => "aggregate",
    };
    if scope == "aggregate" {
        let allowed = match dimensions.as_slice() {
            [] => true,
            [Dimension::Project] => state.clickhouse().is_none(),
            _ => false,
        };
        if !allowed || interval == "day" {
            return Err(FnError::forbidden(
                "A viewer reads org-wide aggregates only: by week or month (and by project \
                 from the rollups)",
            ));
        }
    }
    let people: Option<Vec<Uuid>> = match scope {
        "led" => Some(
            sqlx::query_scalar(
                "select $2 union select user_id from private.led_members() where org_id = $1",
            )
            .bind(body.org_id)
            .bind(user)
            .fetch_all(&mut *tx)
            .await?,
        ),
        "self" => Some(vec![user]),
        _ => None,
    };
    let (week_start, timezone): (i32, String) = sqlx::query_as(
        "select coalesce((settings ->> 'week_start')::int, 1), timezone from public.organizations \
         where id = $1",
    )
    .bind(body.org_id)
    .fetch_one(&mut *tx)
    .await?;
    let answer = match state.clickhouse() {
        Some(ch) => {
            tx.commit().await?;
            let period = Period {
                interval,
                week_start,
                timezone: &timezone,
            };
            let rows = clickhouse_rows(ch, &body, &period, &dimensions, people.as_deref()).await?;
            json!({ "source": "clickhouse", "rows": rows })
        }
        None => {
            let rows = if scope == "aggregate" {
                aggregate_rows(&mut tx, &body, interval, &dimensions).await?
            } else {
                rollup_rows(&mut tx, &body, interval, &dimensions).await?
            };
            tx.commit().await?;
            json!({ "source": "rollups", "rows": rows })
        }
    };
    let mut answer = answer;
    answer["scope"] = json!(scope);
    answer["interval"] = json!(interval);
    Ok(answer)
}

/// From the day summaries RLS shows the caller (at most one breakdown besides the person:
/// the summaries keep each breakdown on its own).
async fn rollup_rows(
    tx: &mut sqlx::PgConnection,
    body: &AnalyticsQuery,
    interval: &str,
    dimensions: &[Dimension],
) -> FnResult<Value> {
    let by_person = dimensions.contains(&Dimension::Person);
    let breakdowns: Vec<Dimension> = dimensions
        .iter()
        .copied()
        .filter(|d| *d != Dimension::Person)
        .collect();
    if breakdowns.len() > 1 {
        return Err(FnError::bad_request(
            "Without ClickHouse the rollups answer one of project, activity and work_mode at \
             a time (with or without person)",
        ));
    }
    let breakdown = breakdowns.first().copied();
    let rows: Value = sqlx::query_scalar(
        "with rows as (
           select case when $4 = 'day' then s.day
                       else private.period_start($4, s.day, o.settings) end as period,
                  case when $5 then s.user_id end as person,
                  b.key as key,
                  coalesce(b.value::int, s.total_minutes) as minutes
             from public.user_day_summaries s
             join public.organizations o on o.id = s.org_id
             left join lateral pg_catalog.jsonb_each_text(case $6
                 when 'by_project' then s.by_project when 'by_activity' then s.by_activity
                 when 'by_work_mode' then s.by_work_mode end) b on true
            where s.org_id = $1 and s.day between $2 and $3)
         select coalesce(jsonb_agg(r order by r.period, r.person, r.key), '[]'::jsonb)
           from (select period, person, key, sum(minutes)::int8 as minutes
                   from rows group by 1, 2, 3) r",
    )
    .bind(body.org_id)
    .bind(body.from)
    .bind(body.to)
    .bind(interval)
    .bind(by_person)
    .bind(breakdown.map(|d| d.columns().0))
    .fetch_one(&mut *tx)
    .await?;
    Ok(shape(rows, by_person, breakdown))
}

/// A viewer's: the org's weekly or monthly totals (or per project, where enough people are
/// behind it), as the period summaries give them.
async fn aggregate_rows(
    tx: &mut sqlx::PgConnection,
    body: &AnalyticsQuery,
    interval: &str,
    dimensions: &[Dimension],
) -> FnResult<Value> {
    let by_project = dimensions.contains(&Dimension::Project);
    let sql = if by_project {
        "select coalesce(jsonb_agg(jsonb_build_object('period', starts, 'key', project_id,
                'minutes', total_minutes) order by starts, project_id), '[]'::jsonb)
           from public.project_period_summaries
          where org_id = $1 and period = $4 and starts between $2 and $3"
    } else {
        "select coalesce(jsonb_agg(jsonb_build_object('period', starts, 'key', null,
                'minutes', total_minutes) order by starts), '[]'::jsonb)
           from public.org_period_summaries
          where org_id = $1 and period = $4 and starts between $2 and $3"
    };
    let period_from = period_floor(body.from, interval);
    let rows: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(body.org_id)
        .bind(period_from)
        .bind(body.to)
        .bind(interval)
        .fetch_one(&mut *tx)
        .await?;
    Ok(shape(rows, false, by_project.then_some(Dimension::Project)))
}

/// How logs fall into periods on the ClickHouse path.
struct Period<'a> {
    interval: &'a str,
    /// ISO day weeks start on.
    week_start: i32,
    /// The org's time zone (checked by the database): a log's day is its start's there.
    timezone: &'a str,
}

/// From ClickHouse's current view of the logs: each counted log (not deleted; ready, needs
/// review or finalized) on the day it started in the org's time zone (the rollups split a log
/// across midnights in each person's zone: totals agree, a day's edge may differ), scoped to
/// `people` when given.
async fn clickhouse_rows(
    ch: &tally_analytics::clickhouse::ClickHouse,
    body: &AnalyticsQuery,
    period: &Period<'_>,
    dimensions: &[Dimension],
    people: Option<&[Uuid]>,
) -> FnResult<Value> {
    let tz = literal(period.timezone);
    let day = format!("toDate(toTimeZone(coalesce(started_at, ended_at, created_at), {tz}))");
    let starts = match period.interval {
        "day" => day.clone(),
        "week" => format!(
            "{day} - ((toDayOfWeek({day}) - {} + 7) % 7)",
            period.week_start
        ),
        _ => format!("toStartOfMonth({day})"),
    };
    let mut keys = vec![format!("toString({starts}) AS period")];
    for d in dimensions {
        keys.push(format!("toString({}) AS {}", d.columns().1, d.name()));
    }
    let names: Vec<&str> = std::iter::once("period")
        .chain(dimensions.iter().map(|d| d.name()))
        .collect();
    let mut filter = format!(
        "org_id = {} AND deleted_at IS NULL \
         AND status IN ('ready', 'needs_review', 'finalized') \
         AND {day} BETWEEN {} AND {}",
        literal(&body.org_id.to_string()),
        literal(&body.from.to_string()),
        literal(&body.to.to_string())
    );
    if let Some(people) = people {
        let list: Vec<String> = people.iter().map(|p| literal(&p.to_string())).collect();
        filter.push_str(&format!(" AND user_id IN ({})", list.join(", ")));
    }
    let sql = format!(
        "SELECT {}, sum(duration_minutes) AS minutes FROM {} WHERE {filter} \
         GROUP BY {} ORDER BY {}",
        keys.join(", "),
        ch.table("time_logs__current"),
        names.join(", "),
        names.join(", ")
    );
    let bytes = ch
        .client()
        .query(&sql)
        .fetch_bytes("JSONEachRow")
        .map_err(warehouse)?
        .collect()
        .await
        .map_err(warehouse)?;
    let mut rows = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut row: serde_json::Map<String, Value> =
            serde_json::from_slice(line).map_err(warehouse)?;
        // 64-bit sums come quoted in JSON; `\N`-like empty ids are null.
        if let Some(Value::String(n)) = row.get("minutes")
            && let Ok(n) = n.parse::<i64>()
        {
            row.insert("minutes".into(), json!(n));
        }
        for d in dimensions {
            if row.get(d.name()).is_some_and(|v| v == "") {
                row.insert(d.name().into(), Value::Null);
            }
        }
        rows.push(Value::Object(row));
    }
    Ok(Value::Array(rows))
}

/// 503: ClickHouse did not answer (or not as expected); worth retrying.
fn warehouse(error: impl std::fmt::Display) -> FnError {
    tracing::warn!(%error, "analytics-query: ClickHouse failed");
    FnError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "warehouse_unavailable",
        "The analytics warehouse (ClickHouse) did not answer; try again",
    )
}

/// A ClickHouse string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The first day of a period that may hold `day` (weeks start at most six days before).
fn period_floor(day: NaiveDate, interval: &str) -> NaiveDate {
    match interval {
        "week" => day.checked_sub_days(Days::new(6)).unwrap_or(day),
        "month" => day.with_day(1).unwrap_or(day),
        _ => day,
    }
}

/// Rows `{period, person?, key?, minutes}` renamed: `key` becomes the breakdown's name.
fn shape(rows: Value, by_person: bool, breakdown: Option<Dimension>) -> Value {
    let Value::Array(rows) = rows else {
        return json!([]);
    };
    rows.into_iter()
        .map(|row| {
            let mut out = serde_json::Map::new();
            out.insert("period".into(), row["period"].clone());
            if by_person {
                out.insert("person".into(), row["person"].clone());
            }
            if let Some(d) = breakdown {
                out.insert(d.name().into(), row["key"].clone());
            }
            out.insert("minutes".into(), row["minutes"].clone());
            Value::Object(out)
        })
        .collect()
}
