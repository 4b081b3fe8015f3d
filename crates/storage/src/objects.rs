//! The JSON object operations: sign, remove, move, copy, info — each in the caller's
//! transaction, so `storage.objects`' policies decide.

use object_store::ObjectStoreExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use tally_core::RequestContext;

use crate::{
    backend::key,
    error::{StorageError, StorageResult},
    names, rows,
    state::StorageState,
    token,
    transform::Transform,
    write,
};

/// Signed URLs are valid at least this long and at most a year.
const MAX_EXPIRES_IN: i64 = 365 * 24 * 3600;

/// Tells the policies which operation runs (Supabase's `storage.operation`): the exports
/// bucket is readable only for signing.
async fn operation(conn: &mut PgConnection, name: &str) -> StorageResult<()> {
    sqlx::query("select set_config('storage.operation', $1, true)")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// `expiresIn`: a whole number of seconds, as a number or (as storage3 sends it) a string —
/// Supabase Storage coerces it the same way.
fn expires_in(value: Option<&Value>) -> StorageResult<i64> {
    let seconds = match value {
        None | Some(Value::Null) => {
            return Err(StorageError::invalid(
                "body must have required property 'expiresIn'",
            ));
        }
        Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
        Some(other) => other.as_i64(),
    };
    match seconds {
        Some(v) if (1..=MAX_EXPIRES_IN).contains(&v) => Ok(v),
        Some(_) => Err(StorageError::invalid(format!(
            "expiresIn must be between 1 and {MAX_EXPIRES_IN} seconds"
        ))),
        None => Err(StorageError::invalid("body/expiresIn must be integer")),
    }
}

/// `POST /object/sign/{bucket}/{name}` `{expiresIn, transform?}` → `{signedURL}` (with a
/// transformation, a URL of the rendered image).
pub async fn sign_one(
    state: &StorageState,
    ctx: &RequestContext,
    bucket: &str,
    name: &str,
    body: &Value,
) -> StorageResult<Value> {
    let expires = expires_in(body.get("expiresIn"))?;
    let transform = body
        .get("transform")
        .map(Transform::from_json)
        .transpose()?
        .flatten();
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    operation(&mut tx, "object.sign").await?;
    rows::bucket(&mut tx, bucket).await?;
    let found = rows::object(&mut tx, bucket, name).await?;
    tx.commit().await?;
    found.ok_or_else(StorageError::no_such_key)?;
    let token = token::sign_download(state.keys(), bucket, name, expires, transform.as_ref())?;
    let path = token::signed_path(bucket, name, &token, transform.is_some());
    Ok(json!({ "signedURL": path }))
}

/// `POST /object/sign/{bucket}` `{expiresIn, paths}` → one entry per path, with an error for
/// those the caller cannot see.
pub async fn sign_many(
    state: &StorageState,
    ctx: &RequestContext,
    bucket: &str,
    body: &Value,
) -> StorageResult<Value> {
    let expires = expires_in(body.get("expiresIn"))?;
    let paths: Vec<String> = body
        .get("paths")
        .and_then(Value::as_array)
        .ok_or_else(|| StorageError::invalid("body must have required property 'paths'"))?
        .iter()
        .map(|p| p.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| StorageError::invalid("paths must be strings"))?;
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    operation(&mut tx, "object.sign").await?;
    rows::bucket(&mut tx, bucket).await?;
    let visible: std::collections::HashSet<String> = sqlx::query_scalar(
        "select name from storage.objects where bucket_id = $1 and name = any($2)",
    )
    .bind(bucket)
    .bind(&paths)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    tx.commit().await?;
    paths
        .iter()
        .map(|path| {
            if visible.contains(path) {
                let token = token::sign_download(state.keys(), bucket, path, expires, None)?;
                let signed = token::signed_path(bucket, path, &token, false);
                Ok(json!({"error": null, "path": path, "signedURL": signed}))
            } else {
                Ok(json!({
                    "error": "Either the object does not exist or you do not have access to it",
                    "path": path,
                    "signedURL": null,
                }))
            }
        })
        .collect::<StorageResult<Vec<_>>>()
        .map(Value::from)
}

/// `DELETE /object/{bucket}` `{prefixes}`: removes what the caller may remove; answers the
/// removed objects.
pub async fn remove(
    state: &StorageState,
    ctx: &RequestContext,
    bucket: &str,
    names: &[String],
) -> StorageResult<Value> {
    let mut tx = ctx.begin(state.pool()).await?;
    rows::bucket(&mut tx, bucket).await?;
    let removed = rows::remove(&mut tx, bucket, names).await?;
    tx.commit().await?;
    let mut objects = Vec::with_capacity(removed.len());
    for (object, version) in removed {
        if let Some(name) = object.get("name").and_then(Value::as_str) {
            write::discard(state.backend(), bucket, name, &version).await;
        }
        objects.push(object);
    }
    Ok(Value::from(objects))
}

/// `POST /object/move` and `/object/copy` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelocateBody {
    bucket_id: String,
    source_key: String,
    destination_key: String,
    destination_bucket: Option<String>,
}

/// Move or copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relocation {
    /// The object changes name (and maybe bucket); the source is gone after.
    Move,
    /// A new object with the same bytes.
    Copy,
}

/// `POST /object/move|copy`: the row is updated (move) or inserted (copy) as the caller, the
/// bytes copied to the new key in the same step; the transaction commits only when the bytes
/// are in place, and a failure removes the copy.
pub async fn relocate(
    state: &StorageState,
    ctx: &RequestContext,
    body: RelocateBody,
    how: Relocation,
) -> StorageResult<Value> {
    let source_bucket = names::bucket_id(&body.bucket_id)?;
    let target_bucket = names::bucket_id(
        body.destination_bucket
            .as_deref()
            .unwrap_or(&body.bucket_id),
    )?;
    let source = names::object_name(&body.source_key)?;
    let target = names::object_name(&body.destination_key)?;
    let mut tx = ctx.begin(state.pool()).await?;
    rows::bucket(&mut tx, &source_bucket).await?;
    let destination = rows::bucket(&mut tx, &target_bucket).await?;
    let object = rows::object(&mut tx, &source_bucket, &source)
        .await?
        .ok_or_else(StorageError::no_such_key)?;
    let mime = object.meta("mimetype").unwrap_or_default().to_owned();
    if !crate::sniff::allowed(destination.allowed_mime_types.as_deref(), &mime) {
        return Err(StorageError::mime(format!(
            "mime type {mime} is not supported"
        )));
    }
    if let (Some(limit), Some(size)) = (destination.file_size_limit, object.size())
        && size > limit.unsigned_abs()
    {
        return Err(StorageError::too_large());
    }
    let version = uuid::Uuid::now_v7().to_string();
    let row: Value = match how {
        Relocation::Move => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "update storage.objects o set bucket_id = $3, name = $4, version = $5, \
               last_accessed_at = now() \
             where o.bucket_id = $1 and o.name = $2 returning {}",
            rows::FILE_OBJECT
        )))
        .bind(&source_bucket)
        .bind(&source)
        .bind(&target_bucket)
        .bind(&target)
        .bind(&version)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StorageError::access_denied("The object cannot be moved by this user"))?,
        Relocation::Copy => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "insert into storage.objects as o (bucket_id, name, owner, owner_id, version, metadata, user_metadata) \
             select $3, $4, $6, $6::text, $5, s.metadata, s.user_metadata from storage.objects s \
             where s.bucket_id = $1 and s.name = $2 returning {}",
            rows::FILE_OBJECT
        )))
        .bind(&source_bucket)
        .bind(&source)
        .bind(&target_bucket)
        .bind(&target)
        .bind(&version)
        .bind(ctx.user_id())
        .fetch_one(&mut *tx)
        .await?,
    };
    let from = key(&source_bucket, &source, &object.version);
    let to = key(&target_bucket, &target, &version);
    if let Err(e) = state.backend().store().copy(&from, &to).await {
        return Err(e.into());
    }
    if let Err(e) = tx.commit().await {
        write::discard(state.backend(), &target_bucket, &target, &version).await;
        return Err(e.into());
    }
    if how == Relocation::Move {
        write::discard(state.backend(), &source_bucket, &source, &object.version).await;
    }
    let id = row.get("id").cloned().unwrap_or(Value::Null);
    let key = format!("{target_bucket}/{target}");
    Ok(match how {
        Relocation::Move => json!({"message": "Successfully moved", "Id": id, "Key": key}),
        Relocation::Copy => {
            let mut answer = json!({"Id": id, "Key": key});
            if let (Value::Object(answer), Value::Object(fields)) = (&mut answer, row) {
                answer.extend(fields);
            }
            answer
        }
    })
}

/// `GET /object/info/{bucket}/{name}`: FileObjectV2.
pub async fn info(
    state: &StorageState,
    ctx: &RequestContext,
    bucket: &str,
    name: &str,
) -> StorageResult<Value> {
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    rows::bucket(&mut tx, bucket).await?;
    let info = rows::info(&mut tx, bucket, name).await?;
    tx.commit().await?;
    Ok(info)
}
