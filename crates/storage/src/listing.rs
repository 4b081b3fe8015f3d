//! Listing a bucket: `POST /object/list/{bucket}` (one level under a prefix, paged by offset)
//! and `POST /object/list-v2/{bucket}` (every object under a prefix, or one level with
//! `with_delimiter`, paged by an opaque cursor) — in the caller's transaction, so the policies
//! decide what is listed.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tally_core::RequestContext;

use crate::{
    error::{StorageError, StorageResult},
    rows,
    state::StorageState,
};

/// `POST /object/list/{bucket}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    #[serde(default)]
    prefix: String,
    limit: Option<i64>,
    offset: Option<i64>,
    sort_by: Option<SortBy>,
    search: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct SortBy {
    column: Option<String>,
    order: Option<String>,
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `POST /object/list/{bucket}`: the direct children of `prefix` the caller may see — files
/// with their metadata, folders as `{name, id: null, …}`.
pub async fn list(
    state: &StorageState,
    ctx: &RequestContext,
    bucket: &str,
    body: ListBody,
) -> StorageResult<Value> {
    let prefix = body.prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let column = match body
        .sort_by
        .as_ref()
        .and_then(|s| s.column.as_deref())
        .unwrap_or("name")
    {
        "name" => "name",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        "last_accessed_at" => "last_accessed_at",
        other => {
            return Err(StorageError::invalid(format!(
                "sortBy.column must be name, created_at, updated_at or last_accessed_at, not {other}"
            )));
        }
    };
    let order = match body
        .sort_by
        .as_ref()
        .and_then(|s| s.order.as_deref())
        .unwrap_or("asc")
        .to_ascii_lowercase()
        .as_str()
    {
        "asc" => "asc",
        "desc" => "desc",
        _ => return Err(StorageError::invalid("sortBy.order must be asc or desc")),
    };
    let limit = body.limit.unwrap_or(100).clamp(1, 1000);
    let offset = body.offset.unwrap_or(0).max(0);
    let search = format!("{}%", like_escape(body.search.as_deref().unwrap_or("")));
    // Identifiers come from the fixed lists above; every value is a bind parameter.
    let (updated, created, accessed) = (
        rows::iso_time!("l.updated_at"),
        rows::iso_time!("l.created_at"),
        rows::iso_time!("l.last_accessed_at"),
    );
    let sql = format!(
        "with children as (
           select split_part(substr(o.name, $3 + 1), '/', 1) as entry,
                  strpos(substr(o.name, $3 + 1), '/') > 0 as folder, o.*
           from storage.objects o
           where o.bucket_id = $1 and o.name like $2 escape '\\'
         ), listed as (
           select distinct on (entry) entry as name, null::uuid as id, null::timestamptz as updated_at,
                  null::timestamptz as created_at, null::timestamptz as last_accessed_at,
                  null::jsonb as metadata
           from children where folder
           union all
           select entry, id, updated_at, created_at, last_accessed_at, metadata
           from children where not folder
         )
         select coalesce(json_agg(json_build_object('name', l.name, 'id', l.id,
                  'updated_at', {updated}, 'created_at', {created},
                  'last_accessed_at', {accessed}, 'metadata', l.metadata)), '[]')
         from (select * from listed where name ilike $4 escape '\\'
               order by {column} {order} nulls first, name
               limit $5 offset $6) l"
    );
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    rows::bucket(&mut tx, bucket).await?;
    let listed: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(bucket)
        .bind(format!("{}%", like_escape(&prefix)))
        .bind(i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX))
        .bind(search)
        .bind(limit)
        .bind(offset)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(listed)
}

/// The most entries a list-v2 page holds (as Supabase Storage caps it).
const MAX_V2_PAGE: i64 = 1000;

/// `POST /object/list-v2/{bucket}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListV2Body {
    #[serde(default)]
    prefix: String,
    limit: Option<i64>,
    cursor: Option<String>,
    #[serde(default, rename = "with_delimiter")]
    with_delimiter: bool,
    sort_by: Option<SortBy>,
}

/// Where the next page starts, and in which order: what `nextCursor` holds (base64url JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// Sort column: `name`, `created_at` or `updated_at`.
    column: String,
    /// `asc` or `desc`.
    order: String,
    /// The last entry's sort value (`-infinity` for name order and for folders).
    value: String,
    /// The last entry's name.
    after: String,
}

impl Cursor {
    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> StorageResult<Self> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
            .filter(|c| {
                matches!(c.column.as_str(), "name" | "created_at" | "updated_at")
                    && matches!(c.order.as_str(), "asc" | "desc")
            })
            .ok_or_else(|| StorageError::invalid("cursor is not one this server gave"))
    }
}

/// `POST /object/list-v2/{bucket}`: `{hasNext, nextCursor?, folders: [{key, name}], objects}`
/// — objects under `prefix` by full name, or with `with_delimiter` the level right under it
/// (its folders named with a trailing `/`); sorted by name, `created_at` or `updated_at`.
pub async fn list_v2(
    state: &StorageState,
    ctx: &RequestContext,
    bucket: &str,
    body: ListV2Body,
) -> StorageResult<Value> {
    let cursor = body.cursor.as_deref().map(Cursor::decode).transpose()?;
    let (column, order) = match &cursor {
        Some(c) => (c.column.clone(), c.order.clone()),
        None => {
            let column = body
                .sort_by
                .as_ref()
                .and_then(|s| s.column.clone())
                .unwrap_or_else(|| "name".to_owned());
            let order = body
                .sort_by
                .as_ref()
                .and_then(|s| s.order.clone())
                .unwrap_or_else(|| "asc".to_owned())
                .to_ascii_lowercase();
            (column, order)
        }
    };
    // Identifiers come from these fixed lists; every value is a bind parameter.
    let sort = match column.as_str() {
        "name" => "'-infinity'::timestamptz",
        "created_at" => "coalesce(e.created_at, '-infinity')",
        "updated_at" => "coalesce(e.updated_at, '-infinity')",
        other => {
            return Err(StorageError::invalid(format!(
                "sortBy.column must be name, created_at or updated_at, not {other}"
            )));
        }
    };
    let (direction, after) = match order.as_str() {
        "asc" => ("asc", ">"),
        "desc" => ("desc", "<"),
        _ => return Err(StorageError::invalid("sortBy.order must be asc or desc")),
    };
    let limit = body.limit.unwrap_or(MAX_V2_PAGE).clamp(1, MAX_V2_PAGE);
    let sql = format!(
        "with children as (
           select strpos(substr(o.name, $3 + 1), '/') as slash, o.*
           from storage.objects o
           where o.bucket_id = $1 and o.name like $2 escape '\\'
         ), entries as (
           select distinct on (entry) left(name, $3 + slash) as entry, true as folder,
                  null::uuid as id, null::timestamptz as updated_at,
                  null::timestamptz as created_at, null::timestamptz as last_accessed_at,
                  null::jsonb as metadata
           from children where $4 and slash > 0
           union all
           select name, false, id, updated_at, created_at, last_accessed_at, metadata
           from children where not ($4 and slash > 0)
         ), sorted as (
           select e.*, {sort} as sort_value from entries e
         )
         select entry, folder, id, {updated}, {created}, {accessed}, metadata, sort_value::text
         from sorted
         where $5::text is null or (sort_value, entry collate \"C\") {after} ($5::timestamptz, $6 collate \"C\")
         order by sort_value {direction}, entry collate \"C\" {direction}
         limit $7",
        updated = rows::iso_time!("updated_at"),
        created = rows::iso_time!("created_at"),
        accessed = rows::iso_time!("last_accessed_at"),
    );
    type Entry = (
        String,
        bool,
        Option<uuid::Uuid>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<Value>,
        String,
    );
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    rows::bucket(&mut tx, bucket).await?;
    let mut entries: Vec<Entry> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(bucket)
        .bind(format!("{}%", like_escape(&body.prefix)))
        .bind(i32::try_from(body.prefix.chars().count()).unwrap_or(i32::MAX))
        .bind(body.with_delimiter)
        .bind(cursor.as_ref().map(|c| c.value.clone()))
        .bind(cursor.as_ref().map(|c| c.after.clone()))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let has_next = entries.len() as i64 > limit;
    entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = entries.last().filter(|_| has_next).map(|last| Cursor {
        column: column.clone(),
        order: order.clone(),
        value: last.7.clone(),
        after: last.0.clone(),
    });
    let (mut folders, mut objects) = (Vec::new(), Vec::new());
    for (name, folder, id, updated, created, accessed, metadata, _) in entries {
        if folder {
            let key = name.trim_end_matches('/').to_owned();
            folders.push(json!({"key": key, "name": name}));
        } else {
            objects.push(json!({
                "id": id, "key": name, "name": name, "updated_at": updated,
                "created_at": created, "last_accessed_at": accessed, "metadata": metadata,
            }));
        }
    }
    let mut listed = json!({"hasNext": has_next, "folders": folders, "objects": objects});
    if let (Some(next), Value::Object(map)) = (next, &mut listed) {
        map.insert("nextCursor".into(), Value::from(next.encode()));
        map.insert("nextCursorKey".into(), Value::from(next.after));
    }
    Ok(listed)
}
