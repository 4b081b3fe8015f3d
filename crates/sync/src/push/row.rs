//! A mutation at a time, in its own savepoint: a run of one, or each mutation of a statement
//! the database refused as a whole, so that each gets the answer it would have got alone.

use serde_json::Value;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::{
    Mutation, invalid_table, outcome,
    plan::{self, Plan},
    refused, rejected,
};
use crate::tables::{self, Table};

/// Applies `m` in a savepoint; a database refusal is its `rejected` answer, anything else
/// fails the push.
pub(super) async fn apply(
    conn: &mut PgConnection,
    org: Uuid,
    user: Uuid,
    m: &Mutation,
) -> Result<Value, sqlx::Error> {
    let Some(table) = tables::find(&m.table) else {
        return Ok(invalid_table(m));
    };
    let mut savepoint = conn.begin().await?;
    let result = async {
        let existing = plan::current(&mut savepoint, table, org, &[m.id]).await?;
        let existing = existing.get(&m.id);
        let (kind, cols, values) = match plan::plan(table, user, m, existing) {
            Plan::Answer(answer) => return Ok(answer),
            Plan::Write { kind, cols, values } => (kind, cols, values),
        };
        let mut written = plan::write(
            &mut savepoint,
            table,
            org,
            kind,
            &cols,
            vec![Value::Object(values)],
        )
        .await?;
        let tried = existing.map(|(version, _, _)| *version);
        written_answer(&mut savepoint, table, org, m, written.remove(&m.id), tried).await
    }
    .await;
    match result {
        Ok(answer) => {
            savepoint.commit().await?;
            Ok(answer)
        }
        Err(sqlx::Error::Database(e)) => {
            savepoint.rollback().await?;
            Ok(refused(m, e.as_ref()))
        }
        Err(e) => Err(e),
    }
}

/// The answer to `m` once its statement ran: applied with the row it wrote; for an update or
/// delete at version `tried` that wrote nothing, see [`unwritten`].
pub(super) async fn written_answer(
    conn: &mut PgConnection,
    table: &Table,
    org: Uuid,
    m: &Mutation,
    written: Option<Value>,
    tried: Option<i32>,
) -> Result<Value, sqlx::Error> {
    Ok(match (written, tried) {
        (Some(row), _) => outcome(m, "applied", row),
        (None, Some(tried)) => unwritten(conn, table, org, m, tried).await?,
        (None, None) => rejected(m, "database", "The row was not written"),
    })
}

/// The answer to an update or delete that wrote nothing: a conflict with the row now when
/// another write got there between the read and the write; rejected when the row is
/// unchanged, i.e. the caller may read it but RLS does not let them change it.
async fn unwritten(
    conn: &mut PgConnection,
    table: &Table,
    org: Uuid,
    m: &Mutation,
    tried: i32,
) -> Result<Value, sqlx::Error> {
    Ok(
        match plan::current(conn, table, org, &[m.id])
            .await?
            .remove(&m.id)
        {
            Some((version, _, _)) if version == tried => rejected(
                m,
                "42501",
                format!("You may read this row of {} but not change it", table.name),
            ),
            Some((_, _, row)) => outcome(m, "conflict", row),
            None => rejected(m, "not_found", "There is no such row"),
        },
    )
}
