//! A run of mutations of one table and op on distinct rows, written set-based: one read of
//! the rows as they are, then one statement per kind of write and column list, each in a
//! savepoint; a statement the database refuses is redone a mutation at a time ([`row`]).

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::{
    Mutation, invalid_table,
    plan::{Kind, Plan, current, plan, write},
    row,
};
use crate::tables;

/// Writes of one kind and column list, with the positions in the run they answer.
type Groups = BTreeMap<(Kind, Vec<String>), Vec<(usize, Value)>>;

/// The answers to a run (`ms`: one table and op, distinct rows), in its order.
pub(super) async fn apply(
    conn: &mut PgConnection,
    org: Uuid,
    user: Uuid,
    ms: &[&Mutation],
) -> Result<Vec<Value>, sqlx::Error> {
    let Some(table) = ms.first().and_then(|m| tables::find(&m.table)) else {
        return Ok(ms.iter().map(|m| invalid_table(m)).collect());
    };
    if let [m] = ms {
        return Ok(vec![row::apply(conn, org, user, m).await?]);
    }
    let ids: Vec<Uuid> = ms.iter().map(|m| m.id).collect();
    let existing = current(conn, table, org, &ids).await?;
    let mut answers: Vec<Option<Value>> = vec![None; ms.len()];
    let mut groups: Groups = BTreeMap::new();
    for (i, m) in ms.iter().enumerate() {
        match plan(table, user, m, existing.get(&m.id)) {
            Plan::Answer(answer) => answers[i] = Some(answer),
            Plan::Write { kind, cols, values } => groups
                .entry((kind, cols))
                .or_default()
                .push((i, Value::Object(values))),
        }
    }
    for ((kind, cols), members) in groups {
        let (positions, rows): (Vec<usize>, Vec<Value>) = members.into_iter().unzip();
        let mut savepoint = conn.begin().await?;
        match write(&mut savepoint, table, org, kind, &cols, rows).await {
            Ok(mut written) => {
                savepoint.commit().await?;
                for i in positions {
                    let m = ms[i];
                    let tried = existing.get(&m.id).map(|(version, _, _)| *version);
                    let row = written.remove(&m.id);
                    answers[i] = Some(row::written_answer(conn, table, org, m, row, tried).await?);
                }
            }
            Err(sqlx::Error::Database(_)) => {
                savepoint.rollback().await?;
                for i in positions {
                    answers[i] = Some(row::apply(conn, org, user, ms[i]).await?);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or(Value::Null))
        .collect())
}
