//! The initial copy: every row of every published table, read as text (as the stream sends
//! values) and handed to the destination in chunks as changes at version 0, so that any
//! change streamed after the slot's consistent point wins over them. The copy reads after the
//! slot was created, so what it sees is at least as new as the stream's start (no exported
//! snapshot needed: a change it already contains arrives again with a higher version).

use std::{future::Future, sync::Arc};

use futures_util::TryStreamExt;
use sqlx::{PgPool, Row};

use crate::{
    pgoutput::{Lsn, Relation, Value},
    stream::{Op, RowChange, Transaction},
};

/// Copies every row of `relations` in chunks of `chunk_rows`, each given to `write` (which
/// stores it) before the next is read; returns the rows copied.
pub async fn copy<W, F, E>(
    pool: &PgPool,
    relations: &[Arc<Relation>],
    chunk_rows: usize,
    mut write: W,
) -> Result<u64, E>
where
    W: FnMut(Transaction) -> F,
    F: Future<Output = Result<(), E>>,
    E: From<sqlx::Error>,
{
    let mut copied = 0;
    for relation in relations {
        let columns: Vec<String> = relation
            .columns
            .iter()
            .map(|c| format!("{}::text", quote(&c.name)))
            .collect();
        let sql = format!(
            "select {} from public.{}",
            columns.join(", "),
            quote(&relation.name)
        );
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(pool);
        let mut chunk = chunk();
        let mut ordinal: u32 = 0;
        while let Some(row) = rows.try_next().await? {
            let values = relation
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let value = row
                        .try_get::<Option<String>, _>(i)
                        .map(|v| v.map_or(Value::Null, Value::Text));
                    value.map(|v| (c.name.clone(), v))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            chunk.changes.push(RowChange {
                table: relation.name.clone(),
                relation: relation.clone(),
                op: Op::Copy,
                ordinal,
                values,
            });
            ordinal = ordinal.saturating_add(1);
            if chunk.changes.len() >= chunk_rows {
                copied += chunk.changes.len() as u64;
                write(std::mem::replace(&mut chunk, self::chunk())).await?;
            }
        }
        if !chunk.changes.is_empty() {
            copied += chunk.changes.len() as u64;
            write(chunk).await?;
        }
    }
    Ok(copied)
}

/// An empty chunk of the copy (a transaction at version 0).
fn chunk() -> Transaction {
    Transaction {
        commit_lsn: Lsn(0),
        end_lsn: Lsn(0),
        commit_time: 0,
        changes: Vec::new(),
        truncated: Vec::new(),
    }
}

/// An identifier, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
