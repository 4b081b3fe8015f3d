//! What a mutation comes to against its row as it is, and the statements that write many
//! rows of one kind at once — shared by the set-based and the one-at-a-time paths.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Mutation, Op, insert_values, outcome, rejected, update_values};
use crate::tables::Table;

/// A row as the caller sees it: `(version, deleted, row)`.
pub(super) type Current = (i32, bool, Value);

/// The rows `ids` of `table` in `org` as the caller sees them.
pub(super) async fn current(
    conn: &mut PgConnection,
    table: &Table,
    org: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Current>, sqlx::Error> {
    let rows: Vec<(Uuid, i32, bool, Value)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select t.id, t.version, t.deleted_at is not null, to_jsonb(t) from public.{} t \
         where t.id = any($1) and t.org_id = $2",
        table.name
    )))
    .bind(ids)
    .bind(org)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, version, deleted, row)| (id, (version, deleted, row)))
        .collect())
}

/// A kind of write, which one statement does for many rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Insert,
    Update,
    Delete,
}

/// What a mutation comes to, given its row as it is.
pub(super) enum Plan {
    /// Answered without writing.
    Answer(Value),
    /// A write of `cols` from `values` (which also hold the row's `id`, and for updates and
    /// deletes the `version` it must still have).
    Write {
        kind: Kind,
        cols: Vec<String>,
        values: Map<String, Value>,
    },
}

/// The plan for `m` on `table`, whose row is `existing`.
pub(super) fn plan(table: &Table, user: Uuid, m: &Mutation, existing: Option<&Current>) -> Plan {
    let prepared = match existing {
        None if m.op == Op::Upsert => insert_values(table, user, m),
        _ => update_values(table, m),
    };
    let (cols, mut values) = match prepared {
        Ok(prepared) => prepared,
        Err(answer) => return Plan::Answer(answer),
    };
    let kind = match (m.op, existing) {
        (Op::Upsert, None) => Kind::Insert,
        (Op::Delete, None) => {
            return Plan::Answer(rejected(m, "not_found", "There is no such row to delete"));
        }
        (_, Some((version, deleted, row))) if m.stale(*version, *deleted) => {
            return Plan::Answer(outcome(m, "conflict", row.clone()));
        }
        (Op::Upsert, Some((_, _, row))) if cols.is_empty() => {
            return Plan::Answer(outcome(m, "applied", row.clone()));
        }
        (Op::Upsert, Some(_)) => Kind::Update,
        (Op::Delete, Some(_)) => Kind::Delete,
    };
    values.insert("id".into(), json!(m.id));
    if let Some((version, _, _)) = existing {
        values.insert("version".into(), json!(version));
    }
    Plan::Write { kind, cols, values }
}

/// The statement that does `kind` of `cols` on `table` for every row in `$1` (a JSON array
/// of [`Plan::Write`] values) in org `$2`, returning each written row's id and row. An update
/// or delete skips a row whose version moved on or which RLS hides from the writer.
fn statement(table: &Table, kind: Kind, cols: &[String]) -> String {
    let t = table.name;
    let rows = format!("jsonb_populate_recordset(null::public.{t}, $1) v");
    let matching = "t.id = v.id and t.version = v.version and t.org_id = $2";
    let returning = "returning t.id, to_jsonb(t)";
    match kind {
        Kind::Insert => {
            let from_v: Vec<String> = cols.iter().map(|c| format!(", v.{c}")).collect();
            let list: Vec<String> = cols.iter().map(|c| format!(", {c}")).collect();
            format!(
                "insert into public.{t} as t (id, org_id{}) select v.id, $2{} from {rows} {returning}",
                list.concat(),
                from_v.concat()
            )
        }
        Kind::Update => {
            let set: Vec<String> = cols.iter().map(|c| format!("{c} = v.{c}")).collect();
            format!(
                "update public.{t} as t set {} from {rows} where {matching} {returning}",
                set.join(", ")
            )
        }
        Kind::Delete => format!(
            "update public.{t} as t set deleted_at = now() from {rows} where {matching} {returning}"
        ),
    }
}

/// Runs `kind` of `cols` for `rows`: the rows written, by id.
pub(super) async fn write(
    conn: &mut PgConnection,
    table: &Table,
    org: Uuid,
    kind: Kind,
    cols: &[String],
    rows: Vec<Value>,
) -> Result<HashMap<Uuid, Value>, sqlx::Error> {
    let written: Vec<(Uuid, Value)> =
        sqlx::query_as(sqlx::AssertSqlSafe(statement(table, kind, cols)))
            .bind(Value::Array(rows))
            .bind(org)
            .fetch_all(conn)
            .await?;
    Ok(written.into_iter().collect())
}
