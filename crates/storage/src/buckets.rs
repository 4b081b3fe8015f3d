//! `/bucket`: list, get, create, update, empty, delete — in the caller's transaction, so only
//! the service role changes buckets (signed-in users may read their settings).

use serde_json::{Value, json};
use tally_core::RequestContext;

use crate::{
    error::{StorageError, StorageResult},
    names, rows,
    state::StorageState,
    write,
};

const BUCKET_JSON: &str = concat!(
    "json_build_object('id', b.id, 'name', b.name, 'owner', coalesce(b.owner::text, ''), \
     'public', b.public, 'file_size_limit', b.file_size_limit, \
     'allowed_mime_types', b.allowed_mime_types, 'created_at', ",
    rows::iso_time!("b.created_at"),
    ", 'updated_at', ",
    rows::iso_time!("b.updated_at"),
    ")"
);

/// `GET /bucket`.
pub async fn list(state: &StorageState, ctx: &RequestContext) -> StorageResult<Value> {
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    let buckets: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select coalesce(json_agg({BUCKET_JSON} order by b.id), '[]') from storage.buckets b"
    )))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(buckets)
}

/// `GET /bucket/{id}`.
pub async fn get(state: &StorageState, ctx: &RequestContext, id: &str) -> StorageResult<Value> {
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    let bucket: Option<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select {BUCKET_JSON} from storage.buckets b where b.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    bucket.ok_or_else(StorageError::no_such_bucket)
}

/// `fileSizeLimit` as storage-js sends it: bytes, or a string such as `"25MB"`.
fn size_limit(value: Option<&Value>) -> StorageResult<Option<i64>> {
    let invalid =
        || StorageError::invalid("file_size_limit must be a size such as 1048576 or \"25MB\"");
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().filter(|n| *n > 0).map(Some).ok_or_else(invalid),
        Some(Value::String(s)) => {
            let s = s.trim().to_ascii_uppercase();
            let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = s[digits.len()..].trim();
            // Decimal units, as Supabase Storage reads them: `20mb` is 20,000,000 bytes.
            let factor: i64 = match unit {
                "" | "B" => 1,
                "KB" => 1000,
                "MB" => 1000 * 1000,
                "GB" => 1000 * 1000 * 1000,
                _ => return Err(invalid()),
            };
            digits
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .and_then(|n| n.checked_mul(factor))
                .map(Some)
                .ok_or_else(invalid)
        }
        Some(_) => Err(invalid()),
    }
}

fn mime_types(value: Option<&Value>) -> StorageResult<Option<Vec<String>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| StorageError::invalid("allowed_mime_types must be strings")),
        Some(_) => Err(StorageError::invalid("allowed_mime_types must be an array")),
    }
}

/// `POST /bucket` `{id?, name, public, file_size_limit, allowed_mime_types}` → `{name}`.
pub async fn create(
    state: &StorageState,
    ctx: &RequestContext,
    body: &Value,
) -> StorageResult<Value> {
    let name = body
        .get("name")
        .or_else(|| body.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| StorageError::invalid("body must have required property 'name'"))?;
    let id = names::bucket_id(body.get("id").and_then(Value::as_str).unwrap_or(name))?;
    let mut tx = ctx.begin(state.pool()).await?;
    sqlx::query(
        "insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types) \
         values ($1, $2, $3, $3::text, $4, $5, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(ctx.user_id())
    .bind(body.get("public").and_then(Value::as_bool).unwrap_or(false))
    .bind(size_limit(body.get("file_size_limit"))?)
    .bind(mime_types(body.get("allowed_mime_types"))?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(json!({ "name": name }))
}

/// `PUT /bucket/{id}` `{public, file_size_limit, allowed_mime_types}`.
pub async fn update(
    state: &StorageState,
    ctx: &RequestContext,
    id: &str,
    body: &Value,
) -> StorageResult<Value> {
    let mut tx = ctx.begin(state.pool()).await?;
    let updated = sqlx::query(
        "update storage.buckets set public = coalesce($2, public), \
           file_size_limit = case when $3 then $4 else file_size_limit end, \
           allowed_mime_types = case when $5 then $6 else allowed_mime_types end \
         where id = $1",
    )
    .bind(id)
    .bind(body.get("public").and_then(Value::as_bool))
    .bind(body.get("file_size_limit").is_some())
    .bind(size_limit(body.get("file_size_limit"))?)
    .bind(body.get("allowed_mime_types").is_some())
    .bind(mime_types(body.get("allowed_mime_types"))?)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if updated.rows_affected() == 0 {
        return Err(StorageError::no_such_bucket());
    }
    Ok(json!({ "message": "Successfully updated" }))
}

/// `POST /bucket/{id}/empty`: removes every object the caller may remove.
pub async fn empty(state: &StorageState, ctx: &RequestContext, id: &str) -> StorageResult<Value> {
    let mut tx = ctx.begin(state.pool()).await?;
    rows::bucket(&mut tx, id).await?;
    let removed: Vec<(String, String)> =
        sqlx::query_as("delete from storage.objects where bucket_id = $1 returning name, version")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    for (name, version) in removed {
        write::discard(state.backend(), id, &name, &version).await;
    }
    // Current Storage's words (it empties in the background); Tally has emptied it already.
    Ok(json!({
        "message": "Empty bucket has been queued. Completion may take up to an hour."
    }))
}

/// `DELETE /bucket/{id}`: only an empty bucket.
pub async fn delete(state: &StorageState, ctx: &RequestContext, id: &str) -> StorageResult<Value> {
    let mut tx = ctx.begin(state.pool()).await?;
    rows::bucket(&mut tx, id).await?;
    let deleted = sqlx::query("delete from storage.buckets where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
            Some(code) if code == "23503" => StorageError::new(
                409,
                "InvalidRequest",
                "Bucket not empty",
                "The bucket you tried to delete is not empty",
            ),
            _ => e.into(),
        })?;
    tx.commit().await?;
    if deleted.rows_affected() == 0 {
        return Err(StorageError::access_denied(
            "The bucket cannot be deleted by this user",
        ));
    }
    Ok(json!({ "message": "Successfully deleted" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_limits_take_numbers_and_units() {
        assert_eq!(size_limit(Some(&json!(1024))).ok(), Some(Some(1024)));
        assert_eq!(
            size_limit(Some(&json!("25MB"))).ok(),
            Some(Some(25_000_000))
        );
        assert_eq!(size_limit(Some(&json!("10 kb"))).ok(), Some(Some(10_000)));
        assert_eq!(size_limit(None).ok(), Some(None));
        assert!(size_limit(Some(&json!("lots"))).is_err());
        assert!(size_limit(Some(&json!(-1))).is_err());
        assert!(size_limit(Some(&json!("5TB"))).is_err());
    }
}
