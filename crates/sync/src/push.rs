//! `sync-push` (also `sync.push`) `{org_id, mutations: [{mutation_id, table, op, id,
//! base_version?, values?}]}` → `{results, cursor}`.
//!
//! Mutations apply in order, each in its own savepoint as the caller (RLS and every constraint
//! apply): `applied` with the stored row; `conflict` with the server's row when `base_version`
//! is not the row's current version (the server wins; a new row needs none); `rejected` with
//! the database's message (code `locked` for a log in a closed period); `duplicate` when the `mutation_id` was pushed before — its stored
//! result comes back and nothing is applied again. `id` is the client's UUID: a row created
//! offline keeps it. Deletes are soft. New logs enter the pipeline like `log-create`'s
//! (`pending`, the given fields locked). `cursor` is the position of this push's writes.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::{Acquire, PgConnection, PgPool};
use tally_core::{RequestContext, config::SyncSettings};
use uuid::Uuid;

use super::{
    cursor::Cursor,
    rate_limit,
    tables::{self, LOCKABLE, Table},
};
use crate::error::{SyncError, SyncResult};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Push {
    org_id: Uuid,
    mutations: Vec<Mutation>,
}

/// One change made offline.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    mutation_id: Uuid,
    table: String,
    op: Op,
    id: Uuid,
    base_version: Option<i32>,
    values: Option<Map<String, Value>>,
}

/// What a mutation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = MutationOp)]
enum Op {
    Upsert,
    Delete,
}

fn rejected(m: &Mutation, code: &str, message: impl Into<String>) -> Value {
    json!({
        "mutation_id": m.mutation_id,
        "status": "rejected",
        "error": {"code": code, "message": message.into()},
    })
}

fn outcome(m: &Mutation, status: &str, row: Value) -> Value {
    json!({"mutation_id": m.mutation_id, "status": status, "row": row})
}

/// The row `id` of `table` in `org` as the caller sees it: `(version, deleted, row)`.
async fn current(
    conn: &mut PgConnection,
    table: &Table,
    org: Uuid,
    id: Uuid,
) -> Result<Option<(i32, bool, Value)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select t.version, t.deleted_at is not null, to_jsonb(t) from public.{} t \
         where t.id = $1 and t.org_id = $2",
        table.name
    )))
    .bind(id)
    .bind(org)
    .fetch_optional(conn)
    .await
}

/// The mutation's columns, checked against what the table lets clients write.
fn columns<'v>(table: &Table, values: &'v Map<String, Value>) -> Result<Vec<&'v str>, String> {
    values
        .keys()
        .map(|k| {
            if table.writable.contains(&k.as_str()) {
                Ok(k.as_str())
            } else {
                Err(format!(
                    "column \"{k}\" of {} cannot be written",
                    table.name
                ))
            }
        })
        .collect()
}

/// Applies one mutation on `conn` (a savepoint); database refusals are returned as
/// `rejected`, anything else fails the push.
async fn apply(
    conn: &mut PgConnection,
    org: Uuid,
    user: Uuid,
    m: &Mutation,
) -> Result<Value, sqlx::Error> {
    let Some(table) = tables::find(&m.table) else {
        return Ok(rejected(
            m,
            "invalid_table",
            format!("\"{}\" is not a synced table", m.table),
        ));
    };
    let mut values = m.values.clone().unwrap_or_default();
    let cols = match columns(table, &values) {
        Ok(cols) => cols.into_iter().map(str::to_owned).collect::<Vec<_>>(),
        Err(message) => return Ok(rejected(m, "invalid_column", message)),
    };
    let mut savepoint = conn.begin().await?;
    let result = async {
        let existing = current(&mut savepoint, table, org, m.id).await?;
        let stale = |version: i32, deleted: bool| deleted || m.base_version != Some(version);
        Ok::<_, sqlx::Error>(match (m.op, existing) {
            (Op::Upsert, None) => {
                let mut cols = cols.clone();
                if table.name == "time_logs" {
                    // A new log enters the pipeline like log-create's: pending, given fields locked.
                    if !values.contains_key("user_id") {
                        values.insert("user_id".into(), json!(user));
                        cols.push("user_id".into());
                    }
                    let locked: Vec<&str> = LOCKABLE
                        .iter()
                        .copied()
                        .filter(|c| values.contains_key(*c))
                        .collect();
                    values.insert("status".into(), json!("pending"));
                    values.insert("user_locked".into(), json!(locked));
                    cols.retain(|c| c != "status");
                    cols.extend(["status".to_owned(), "user_locked".to_owned()]);
                }
                let list = cols.join(", ");
                let sql = format!(
                    "insert into public.{t} as t (id, org_id{sep}{list}) \
                     select $1, $2{sep}{list} from jsonb_populate_record(null::public.{t}, $3) \
                     returning to_jsonb(t)",
                    t = table.name,
                    sep = if cols.is_empty() { "" } else { ", " },
                );
                let row: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(m.id)
                    .bind(org)
                    .bind(Value::Object(values))
                    .fetch_one(&mut *savepoint)
                    .await?;
                outcome(m, "applied", row)
            }
            (_, Some((version, deleted, row))) if stale(version, deleted) => {
                outcome(m, "conflict", row)
            }
            (Op::Upsert, Some((version, _, row))) => {
                if cols.is_empty() {
                    outcome(m, "applied", row)
                } else {
                    let list = cols.join(", ");
                    let sql = format!(
                        "update public.{t} as t set ({list}) = \
                           (select {list} from jsonb_populate_record(null::public.{t}, $3)) \
                         where t.id = $1 and t.version = $2 returning to_jsonb(t)",
                        t = table.name,
                    );
                    let row: Option<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(m.id)
                        .bind(version)
                        .bind(Value::Object(values))
                        .fetch_optional(&mut *savepoint)
                        .await?;
                    versioned(&mut savepoint, table, org, m, version, row).await?
                }
            }
            (Op::Delete, Some((version, _, _))) => {
                let sql = format!(
                    "update public.{t} as t set deleted_at = now() \
                     where t.id = $1 and t.version = $2 returning to_jsonb(t)",
                    t = table.name,
                );
                let row: Option<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(m.id)
                    .bind(version)
                    .fetch_optional(&mut *savepoint)
                    .await?;
                versioned(&mut savepoint, table, org, m, version, row).await?
            }
            (Op::Delete, None) => rejected(m, "not_found", "There is no such row to delete"),
        })
    }
    .await;
    match result {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(value)
        }
        Err(sqlx::Error::Database(e)) => {
            savepoint.rollback().await?;
            let code = match e.code().as_deref() {
                None => "database".to_owned(),
                // A log in an approved timesheet or before the org's lock date.
                Some("PT423") => "locked".to_owned(),
                Some(c) => c.to_owned(),
            };
            Ok(rejected(m, &code, e.message()))
        }
        Err(e) => Err(e),
    }
}

/// An update's answer: applied with the new row; a conflict with the row now when another
/// write got there between the read and the update; rejected when the row is unchanged, i.e.
/// the caller may read it but RLS does not let them change it.
async fn versioned(
    conn: &mut PgConnection,
    table: &Table,
    org: Uuid,
    m: &Mutation,
    tried: i32,
    updated: Option<Value>,
) -> Result<Value, sqlx::Error> {
    if let Some(row) = updated {
        return Ok(outcome(m, "applied", row));
    }
    Ok(match current(conn, table, org, m.id).await? {
        Some((version, _, _)) if version == tried => rejected(
            m,
            "42501",
            format!("You may read this row of {} but not change it", table.name),
        ),
        Some((_, _, row)) => outcome(m, "conflict", row),
        None => rejected(m, "not_found", "There is no such row"),
    })
}

/// `{results, cursor}`.
pub async fn run(
    pool: &PgPool,
    settings: &SyncSettings,
    ctx: &RequestContext,
    body: Push,
) -> SyncResult<Value> {
    let user = super::user(ctx)?;
    let max = settings.sync_max_mutations;
    if body.mutations.is_empty() {
        return Err(SyncError::BadRequest("mutations must not be empty".into()));
    }
    if body.mutations.len() > max {
        return Err(SyncError::TooManyMutations(max));
    }
    let mut tx = ctx.begin(pool).await?;
    rate_limit(settings, &mut tx).await?;
    super::member(&mut tx, body.org_id).await?;
    let mut results = Vec::with_capacity(body.mutations.len());
    for m in &body.mutations {
        let stored: Option<Value> = sqlx::query_scalar("select private.sync_result($1)")
            .bind(m.mutation_id)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(mut stored) = stored {
            let original = stored["status"].take();
            stored["status"] = json!("duplicate");
            stored["original_status"] = original;
            results.push(stored);
            continue;
        }
        let result = apply(&mut tx, body.org_id, user, m).await?;
        sqlx::query("select private.sync_remember($1, $2, $3)")
            .bind(m.mutation_id)
            .bind(body.org_id)
            .bind(&result)
            .execute(&mut *tx)
            .await?;
        results.push(result);
    }
    let position: Option<(i64, i64, i64)> = sqlx::query_as(
        "select xid::text::int8, seq, private.sync_generation($1) from private.sync_position($1)",
    )
    .bind(body.org_id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let cursor = position.map(|(xid, seq, generation)| {
        Cursor {
            xid,
            seq,
            generation,
        }
        .to_string()
    });
    Ok(json!({ "results": results, "cursor": cursor }))
}
