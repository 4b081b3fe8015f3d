//! `sync-push` (also `sync.push`) `{org_id, mutations: [{mutation_id, table, op, id,
//! base_version?, values?}]}` → `{results, cursor}`.
//!
//! Mutations take effect in order as the caller (RLS and every constraint apply): `applied`
//! with the stored row; `conflict` with the server's row when `base_version` is not the row's
//! current version (the server wins; a new row needs none); `rejected` with the database's
//! message (code `locked` for a log in a closed period); `duplicate` when the `mutation_id` was
//! pushed before — its stored result comes back and nothing is applied again. `id` is the
//! client's UUID: a row created offline keeps it. Deletes are soft. New logs enter the pipeline
//! like `log-create`'s (`pending`, the given fields locked). `cursor` is the position of this
//! push's writes.
//!
//! A batch is cut into runs of consecutive mutations of one table and op on distinct rows,
//! which commute; each run is written with one statement per kind of write ([`set`]), and only
//! a statement the database refuses is redone a mutation at a time, each in a savepoint
//! ([`row`]) — so one bad row undoes nothing of the others and gets the answer it would have
//! got alone. Both paths decide and write through [`plan`].

mod plan;
mod row;
mod set;

use std::collections::{HashMap, HashSet, hash_map::Entry};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use tally_core::{RequestContext, config::SyncSettings};
use uuid::Uuid;

use super::{
    cursor::Cursor,
    rate_limit,
    tables::{LOCKABLE, Table},
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

impl Mutation {
    /// Whether the row, at `version` (deleted or not), has moved on from the client's copy.
    fn stale(&self, version: i32, deleted: bool) -> bool {
        deleted || self.base_version != Some(version)
    }
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

fn invalid_table(m: &Mutation) -> Value {
    rejected(
        m,
        "invalid_table",
        format!("\"{}\" is not a synced table", m.table),
    )
}

/// A database refusal as a mutation's answer.
fn refused(m: &Mutation, e: &dyn sqlx::error::DatabaseError) -> Value {
    let code = match e.code().as_deref() {
        None => "database".to_owned(),
        // A log in an approved timesheet or before the org's lock date.
        Some("PT423") => "locked".to_owned(),
        Some(c) => c.to_owned(),
    };
    rejected(m, &code, e.message())
}

/// The columns an update of `m` writes and their values, checked against what the table lets
/// clients write; a `rejected` answer otherwise.
fn update_values(table: &Table, m: &Mutation) -> Result<(Vec<String>, Map<String, Value>), Value> {
    let values = m.values.clone().unwrap_or_default();
    let cols = values
        .keys()
        .map(|k| {
            if table.writable.contains(&k.as_str()) {
                Ok(k.clone())
            } else {
                Err(rejected(
                    m,
                    "invalid_column",
                    format!("column \"{k}\" of {} cannot be written", table.name),
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((cols, values))
}

/// The columns and values of `m` as a new row: a new log enters the pipeline like
/// log-create's (the caller's, pending, the given fields locked).
fn insert_values(
    table: &Table,
    user: Uuid,
    m: &Mutation,
) -> Result<(Vec<String>, Map<String, Value>), Value> {
    let (mut cols, mut values) = update_values(table, m)?;
    if table.name == "time_logs" {
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
    Ok((cols, values))
}

/// Positions of `mutations` cut into runs that [`set::apply`] may write together: consecutive,
/// one table and op, no row twice. `stored` ones are answered from before and belong to no run;
/// a `repeat` of a mutation earlier in the batch needs that one's answer, so it ends the run.
fn runs(
    mutations: &[Mutation],
    stored: &HashSet<usize>,
    repeats: &HashSet<usize>,
) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut rows = HashSet::new();
    for (i, m) in mutations.iter().enumerate() {
        if stored.contains(&i) {
            continue;
        }
        if repeats.contains(&i) {
            runs.push(Vec::new());
            rows.clear();
            continue;
        }
        let joins = runs.last().and_then(|r| r.first()).is_some_and(|&first| {
            let f = &mutations[first];
            f.table == m.table && f.op == m.op && !rows.contains(&m.id)
        });
        if !joins {
            runs.push(Vec::new());
            rows.clear();
        }
        rows.insert(m.id);
        if let Some(run) = runs.last_mut() {
            run.push(i);
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// `{results, cursor}`.
pub async fn run(
    pool: &sqlx::PgPool,
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
    let results = apply_all(&mut tx, body.org_id, user, &body.mutations).await?;
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

/// Every mutation's answer, in order: stored ones as duplicates, the rest applied run by run
/// and remembered.
async fn apply_all(
    conn: &mut PgConnection,
    org: Uuid,
    user: Uuid,
    mutations: &[Mutation],
) -> Result<Vec<Value>, sqlx::Error> {
    let ids: Vec<Uuid> = mutations.iter().map(|m| m.mutation_id).collect();
    let stored: HashMap<Uuid, Value> =
        sqlx::query_as("select mutation_id, result from private.sync_results($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    // Answered without applying: pushed before, or earlier in this batch.
    let (mut first, mut before, mut repeats) = (HashMap::new(), HashSet::new(), HashSet::new());
    for (i, m) in mutations.iter().enumerate() {
        if stored.contains_key(&m.mutation_id) {
            before.insert(i);
        } else if let Entry::Vacant(entry) = first.entry(m.mutation_id) {
            entry.insert(i);
        } else {
            repeats.insert(i);
        }
    }
    let mut results: Vec<Value> = vec![Value::Null; mutations.len()];
    let mut runs = runs(mutations, &before, &repeats).into_iter().peekable();
    for (i, m) in mutations.iter().enumerate() {
        while runs.peek().and_then(|r| r.first()) == Some(&i) {
            let Some(run) = runs.next() else { break };
            let batch: Vec<&Mutation> = run.iter().map(|&p| &mutations[p]).collect();
            for (p, result) in run.iter().zip(set::apply(conn, org, user, &batch).await?) {
                results[*p] = result;
            }
        }
        if before.contains(&i) || repeats.contains(&i) {
            let earlier = stored
                .get(&m.mutation_id)
                .or_else(|| first.get(&m.mutation_id).map(|&p| &results[p]));
            let mut again = earlier.cloned().unwrap_or(Value::Null);
            let original = again["status"].take();
            again["status"] = json!("duplicate");
            again["original_status"] = original;
            results[i] = again;
        }
    }
    let fresh: Vec<usize> = first.into_values().collect();
    if !fresh.is_empty() {
        sqlx::query("select private.sync_remember_all($1, $2, $3)")
            .bind(fresh.iter().map(|&i| ids[i]).collect::<Vec<_>>())
            .bind(org)
            .bind(
                fresh
                    .iter()
                    .map(|&i| results[i].clone())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
    }
    Ok(results)
}
