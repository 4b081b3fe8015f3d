//! `sync-pull` (also `sync.pull`) `{org_id, cursor?, limit?}` → `{changes, cursor, has_more,
//! held_back}`:
//! the changes after `cursor` of the rows the caller may read, oldest first — each row once, in
//! its current state (`upsert` with the row, or `delete` with its id). Without a cursor it is a
//! full snapshot, paged the same way. Only changes of finished transactions are returned, so a
//! transaction that commits late comes on a later pull rather than never. A cursor older than
//! the org's purged tombstones gets 410 `resync_required`. With replicas, a fresh enough one
//! serves the reading (see [`Reads`]).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use tally_core::{RequestContext, config::SyncSettings, replicas::Reads};
use uuid::Uuid;

use super::{cursor::Cursor, rate_limit, tables};
use crate::error::{SyncError, SyncResult};

/// Changes per pull unless asked otherwise.
const DEFAULT_LIMIT: u32 = 500;

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pull {
    org_id: Uuid,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// One entry of the change order.
#[derive(sqlx::FromRow)]
struct Entry {
    tbl: String,
    id: Uuid,
    xid: i64,
    seq: i64,
    deleted: bool,
}

/// The rows of `table` among `ids` the caller may read, by id.
async fn rows(
    tx: &mut PgConnection,
    table: &'static str,
    ids: &[Uuid],
) -> SyncResult<HashMap<Uuid, Value>> {
    let rows: Vec<(Uuid, Value)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select t.id, to_jsonb(t) from public.{table} t where t.id = any($1)"
    )))
    .bind(ids)
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// 200 `{changes: [{table, op, row | id}], cursor, has_more, held_back}`.
pub async fn run(
    reads: &Reads,
    settings: &SyncSettings,
    ctx: &RequestContext,
    body: Pull,
) -> SyncResult<Value> {
    super::user(ctx)?;
    let max = settings.sync_max_pull;
    let limit = body.limit.unwrap_or(DEFAULT_LIMIT.min(max));
    if !(1..=max).contains(&limit) {
        return Err(SyncError::BadRequest(format!(
            "limit must be between 1 and {max}"
        )));
    }
    let after = body
        .cursor
        .as_deref()
        .map(Cursor::parse)
        .transpose()?
        .unwrap_or_default();

    let mut tx = if reads.has_replicas() {
        // The rate limit is a write: on the primary, then the reading on a replica.
        let mut limited = ctx.begin_bookkeeping(reads.primary()).await?;
        rate_limit(settings, &mut limited).await?;
        limited.commit().await?;
        reads.begin_read_only(ctx).await?
    } else {
        // Reads and the rate limit's count in one transaction (a pull writes nothing else).
        let mut tx = ctx.begin_bookkeeping(reads.primary()).await?;
        rate_limit(settings, &mut tx).await?;
        tx
    };
    super::member(&mut tx, body.org_id).await?;
    let generation: i64 = sqlx::query_scalar("select private.sync_generation($1)")
        .bind(body.org_id)
        .fetch_one(&mut *tx)
        .await?;
    if body.cursor.is_some() {
        let behind: bool =
            sqlx::query_scalar("select private.sync_needs_resync($1, $2::text::xid8, $3, $4)")
                .bind(body.org_id)
                .bind(after.xid.to_string())
                .bind(after.seq)
                .bind(after.generation)
                .fetch_one(&mut *tx)
                .await?;
        if behind {
            return Err(SyncError::ResyncRequired);
        }
    }
    let mut entries: Vec<Entry> = sqlx::query_as(
        "select tbl, id, xid::text::int8 as xid, seq, deleted \
         from private.sync_changes($1, $2::text::xid8, $3, $4)",
    )
    .bind(body.org_id)
    .bind(after.xid.to_string())
    .bind(after.seq)
    .bind(i32::try_from(limit).unwrap_or(i32::MAX) + 1)
    .fetch_all(&mut *tx)
    .await?;
    let has_more = entries.len() > limit as usize;
    entries.truncate(limit as usize);

    let mut by_table: HashMap<&'static str, Vec<Uuid>> = HashMap::new();
    for entry in &entries {
        if let Some(table) = tables::find(&entry.tbl) {
            by_table.entry(table.name).or_default().push(entry.id);
        }
    }
    let mut visible: HashMap<&'static str, HashMap<Uuid, Value>> = HashMap::new();
    for (table, ids) in &by_table {
        visible.insert(table, rows(&mut tx, table, ids).await?);
    }
    let last = entries
        .last()
        .map_or((after.xid, after.seq), |e| (e.xid, e.seq));
    // Committed changes past the end that wait for an older transaction to finish.
    let held_back = !has_more
        && sqlx::query_scalar::<_, bool>("select private.sync_held_back($1, $2::text::xid8, $3)")
            .bind(body.org_id)
            .bind(last.0.to_string())
            .bind(last.1)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;

    let changes: Vec<Value> = entries
        .iter()
        .filter_map(|entry| {
            let table = tables::find(&entry.tbl)?.name;
            match visible.get(table).and_then(|rows| rows.get(&entry.id)) {
                Some(row) if row["deleted_at"].is_null() => {
                    Some(json!({"table": table, "op": "upsert", "row": row}))
                }
                Some(_) => Some(json!({"table": table, "op": "delete", "id": entry.id})),
                // Gone for good (purged or removed with its org or person): only the id travels.
                None if entry.deleted => {
                    Some(json!({"table": table, "op": "delete", "id": entry.id}))
                }
                None => None,
            }
        })
        .collect();
    let cursor = Cursor {
        xid: last.0,
        seq: last.1,
        generation,
    };
    Ok(json!({
        "changes": changes,
        "cursor": cursor.to_string(),
        "has_more": has_more,
        "held_back": held_back,
    }))
}
