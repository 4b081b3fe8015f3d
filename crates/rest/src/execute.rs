//! Step 4: run the one statement in the caller's transaction (role + claims + search_path),
//! read-only for reads, rolled back for `tx=rollback` or a failed strict check.

use sqlx::{PgPool, Row};
use tally_core::RequestContext;

use crate::{
    error::{RestError, RestResult},
    query::{Bind, Sql},
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

/// Runs `sql` as the caller. `check` may refuse the outcome, rolling the work back.
pub async fn run(
    pool: &PgPool,
    ctx: &RequestContext,
    sql: Sql,
    read_only: bool,
    rollback: bool,
    check: impl FnOnce(&Outcome) -> RestResult<()>,
) -> RestResult<Outcome> {
    let anon = ctx.role() == tally_core::DbRole::Anon;
    let db_error = |e: sqlx::Error| RestError::from_db(&e, anon);
    let mut tx = if read_only {
        ctx.begin_read_only(pool).await
    } else {
        ctx.begin(pool).await
    }
    .map_err(db_error)?;
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text));
    for bind in sql.binds {
        query = match bind {
            Bind::Text(v) => query.bind(v),
            Bind::TextArray(v) => query.bind(v),
            Bind::Int(v) => query.bind(v),
        };
    }
    let outcome = if sql.counts_affected {
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
