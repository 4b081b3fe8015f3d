//! Step 4: run the one statement in the caller's transaction (role + claims + search_path),
//! read-only for reads, rolled back for `tx=rollback` or a failed strict check.

use sqlx::Row;
use tally_core::{RequestContext, replicas::Reads};

use crate::{
    error::{RestError, RestResult},
    query::{Bind, CountQuery, Sql},
    request::{
        plan::Plan,
        prefer::{Count, ESTIMATED_EXACT_UP_TO},
    },
};

/// What a statement produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The JSON array of rows (or null).
    pub body: Option<String>,
    /// Rows in the body, or rows affected.
    pub page: i64,
    /// The total (`Prefer: count=`).
    pub total: Option<i64>,
    /// The first row / the scalar result.
    pub first: Option<String>,
    /// For an upsert with a representation: how many rows were inserted (not updated).
    pub inserted: Option<i64>,
}

fn with_binds(
    mut query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(v) => query.bind(v),
            Bind::TextArray(v) => query.bind(v),
            Bind::Int(v) => query.bind(v),
        };
    }
    query
}

/// A planned total: the planner's row estimate of the read (`EXPLAIN`, as PostgREST does), or
/// for `estimated`, the exact count when that estimate is small.
async fn total(conn: &mut sqlx::PgConnection, count: CountQuery) -> Result<i64, sqlx::Error> {
    let plan: serde_json::Value = with_binds(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "explain (format json) select 1 {}",
            count.from
        ))),
        count.binds.clone(),
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let planned = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0).round() as i64;
    if count.kind == Count::Planned || planned > ESTIMATED_EXACT_UP_TO {
        return Ok(planned);
    }
    with_binds(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "select count(*) {}",
            count.from
        ))),
        count.binds,
    )
    .fetch_one(conn)
    .await?
    .try_get(0)
}

/// How a database error is answered to this caller (an anonymous one is told less).
fn db_error(ctx: &RequestContext) -> impl Fn(sqlx::Error) -> RestError + Copy {
    let anon = ctx.role() == tally_core::DbRole::Anon;
    move |e| RestError::from_db(&e, anon)
}

/// The caller's transaction: read-only for reads, which a fresh enough replica may serve.
async fn begin(
    reads: &Reads,
    ctx: &RequestContext,
    read_only: bool,
) -> RestResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    let begun = if read_only {
        reads.begin_read_only(ctx).await
    } else {
        ctx.begin(reads.primary()).await
    };
    begun.map_err(db_error(ctx))
}

/// Runs `sql` as the caller. `check` may refuse the outcome, rolling the work back.
pub async fn run(
    reads: &Reads,
    ctx: &RequestContext,
    sql: Sql,
    read_only: bool,
    rollback: bool,
    check: impl FnOnce(&Outcome) -> RestResult<()>,
) -> RestResult<Outcome> {
    let db_error = db_error(ctx);
    let mut tx = begin(reads, ctx, read_only).await?;
    let query = with_binds(sqlx::query(sqlx::AssertSqlSafe(sql.text)), sql.binds);
    let mut outcome = if sql.counts_affected {
        let done = query.execute(&mut *tx).await.map_err(db_error)?;
        Outcome {
            page: i64::try_from(done.rows_affected()).unwrap_or(i64::MAX),
            ..Outcome::default()
        }
    } else {
        let row = query.fetch_one(&mut *tx).await.map_err(db_error)?;
        Outcome {
            body: row.try_get("body").map_err(db_error)?,
            page: row.try_get("page").map_err(db_error)?,
            total: row.try_get("total").map_err(db_error)?,
            first: row.try_get("first").map_err(db_error)?,
            inserted: row.try_get("inserted").ok().flatten(),
        }
    };
    if let Some(count) = sql.count {
        outcome.total = Some(total(&mut tx, count).await.map_err(db_error)?);
    }
    if let Err(e) = check(&outcome) {
        tx.rollback().await.map_err(db_error)?;
        return Err(e);
    }
    if rollback {
        tx.rollback().await.map_err(db_error)?;
    } else {
        tx.commit().await.map_err(db_error)?;
    }
    Ok(outcome)
}

/// `EXPLAIN` of `sql` as the caller, in a transaction that is always rolled back (so that
/// `options=analyze` on a write changes nothing): the plan as JSON, or its text lines.
pub async fn explain(
    reads: &Reads,
    ctx: &RequestContext,
    sql: Sql,
    read_only: bool,
    plan: &Plan,
) -> RestResult<String> {
    let db_error = db_error(ctx);
    let mut tx = begin(reads, ctx, read_only).await?;
    let text = format!("{} {}", plan.explain(), sql.text);
    let rows = with_binds(sqlx::query(sqlx::AssertSqlSafe(text)), sql.binds)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.rollback().await.map_err(db_error)?;
    if plan.text {
        let lines = rows
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)?;
        return Ok(lines.join("\n"));
    }
    let json: serde_json::Value = rows
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(db_error)?
        .unwrap_or_default();
    Ok(json.to_string())
}
