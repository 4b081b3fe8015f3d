//! Resumable uploads with the tus protocol (1.0.0, extensions creation, creation-with-upload,
//! expiration and termination) at `/upload/resumable`, as Supabase documents them for files
//! over 6 MB: what a phone on a bad network needs for a long voice note. (`OPTIONS` is a
//! browser's CORS preflight there, answered by the server's CORS layer.)
//!
//! `POST` (with `Upload-Length` and `Upload-Metadata`: `bucketName`, `objectName`,
//! `contentType`, `cacheControl`, `metadata`; `x-upsert`) checks the caller may write there and
//! answers `201` with `Location: /storage/v1/upload/resumable/{id}`; `PATCH` appends at
//! `Upload-Offset`; `HEAD` says how far it is; `DELETE` abandons it. Each `PATCH`'s bytes are
//! streamed into a part of their own in the backend and counted in `storage.resumable_uploads`
//! only once written, so an interrupted `PATCH` loses nothing already counted and any instance
//! can take the next one. When the last byte arrives the parts are streamed, in order, into
//! the object as a plain upload writes it (type, size, content checks, RLS), then removed.
//! Uploads expire after 24 hours; expired ones are swept as new ones start.

use std::collections::HashMap;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream, stream::BoxStream};
use object_store::{ObjectStoreExt, PutMultipartOptions, path::Path as StorePath};
use serde_json::Value;
use tally_core::{DbRole, RequestContext};
use uuid::Uuid;

use crate::{
    error::{StorageError, StorageResult},
    names,
    rows::{self, NewObject},
    sniff,
    state::StorageState,
    write,
};

/// The protocol version spoken.
const TUS_VERSION: &str = "1.0.0";
/// The largest upload offered (a bucket's own limit may be lower).
pub const MAX_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// The body type of `PATCH` (and of `POST` with data).
const OFFSET_STREAM: &str = "application/offset+octet-stream";
/// Expired uploads swept when one starts.
const SWEEP: i64 = 20;
/// The path uploads are reached at.
const LOCATION: &str = "/storage/v1/upload/resumable";

/// An upload in progress.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Upload {
    id: Uuid,
    bucket_id: String,
    name: String,
    owner: Option<Uuid>,
    upload_length: i64,
    upload_offset: i64,
    content_type: String,
    cache_control: String,
    user_metadata: Option<Value>,
    upsert: bool,
    expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, bucket_id, name, owner, upload_length, upload_offset, content_type, \
     cache_control, user_metadata, upsert, expires_at";

/// Answers a request to `/upload/resumable[/{id}]`.
pub async fn handle(
    state: &StorageState,
    method: &Method,
    id: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        if header(headers, "tus-resumable") != Some(TUS_VERSION) {
            return Err(StorageError::new(
                412,
                "InvalidRequest",
                "Precondition Failed",
                format!("Tus-Resumable must be {TUS_VERSION}"),
            ));
        }
        let route = format!(
            "/upload/resumable{}",
            id.map(|i| format!("/{i}")).unwrap_or_default()
        );
        let ctx = state.caller(headers, method.as_str(), &route).await?;
        match (method.clone(), id) {
            (Method::POST, None) => create(state, &ctx, headers, body).await,
            (Method::HEAD, Some(id)) => status(state, &ctx, id).await,
            (Method::PATCH, Some(id)) => append(state, ctx, id, headers, body).await,
            (Method::DELETE, Some(id)) => terminate(state, &ctx, id).await,
            _ => Err(StorageError::new(
                405,
                "InvalidRequest",
                "Method Not Allowed",
                format!("{method} is not allowed on {route}"),
            )),
        }
    }
    .await;
    let mut response = match result {
        Ok(response) => response,
        // tus clients act on the status itself (404 starts over, 409 asks for the offset),
        // so the real one is sent, with storage's error body.
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = e.into_response();
            *response.status_mut() = status;
            response
        }
    };
    response
        .headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Upload-Metadata`: `key base64,key base64,…`.
fn metadata(headers: &HeaderMap) -> StorageResult<HashMap<String, String>> {
    let mut pairs = HashMap::new();
    for pair in header(headers, "upload-metadata")
        .unwrap_or_default()
        .split(',')
    {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| {
                StorageError::invalid(format!("Upload-Metadata {key} is not base64 text"))
            })?;
        pairs.insert(key.to_owned(), value);
    }
    Ok(pairs)
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn not_found() -> StorageError {
    StorageError::new(404, "NotFound", "not_found", "Upload not found")
}

/// The upload `id` if the caller started it (the service role reaches every one).
async fn find(state: &StorageState, ctx: &RequestContext, id: &str) -> StorageResult<Upload> {
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let mut tx = RequestContext::service()
        .begin_read_only(state.pool())
        .await?;
    let upload: Option<Upload> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from storage.resumable_uploads where id = $1 and expires_at > now()"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    upload
        .filter(|u| {
            ctx.role() == DbRole::ServiceRole || (u.owner.is_some() && u.owner == ctx.user_id())
        })
        .ok_or_else(not_found)
}

fn part_prefix(id: Uuid) -> StorePath {
    StorePath::from(format!("_resumable/{id}"))
}

/// A part of its own for each write: two requests at one offset never share one.
fn part_path(id: Uuid, offset: i64) -> StorePath {
    StorePath::from(format!(
        "_resumable/{id}/{offset:020}-{}",
        Uuid::now_v7().simple()
    ))
}

/// Removes an upload's parts (logging, not failing: its row is gone or going).
async fn remove_parts(state: &StorageState, id: Uuid) {
    let store = state.backend().store();
    let parts: Vec<_> = store
        .list(Some(&part_prefix(id)))
        .map_ok(|meta| meta.location)
        .collect()
        .await;
    for part in parts {
        match part {
            Ok(path) => {
                if let Err(e) = store.delete(&path).await {
                    tracing::warn!(error = %e, %path, "could not remove a resumable upload's part");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list a resumable upload's parts"),
        }
    }
}

/// Deletes up to [`SWEEP`] expired uploads and their parts.
async fn sweep(state: &StorageState) -> StorageResult<()> {
    let mut tx = RequestContext::service().begin(state.pool()).await?;
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "delete from storage.resumable_uploads where id in \
           (select id from storage.resumable_uploads where expires_at <= now() limit $1) \
         returning id",
    )
    .bind(SWEEP)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    for id in expired {
        remove_parts(state, id).await;
    }
    Ok(())
}

/// `POST`: a new upload (its first bytes may come along).
async fn create(
    state: &StorageState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: Body,
) -> StorageResult<Response> {
    sweep(state).await?;
    let length: i64 = header(headers, "upload-length")
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| StorageError::invalid("Upload-Length must be a number of bytes"))?;
    if length as u64 > MAX_SIZE {
        return Err(StorageError::too_large());
    }
    let meta = metadata(headers)?;
    let required = |key: &str| {
        meta.get(key)
            .cloned()
            .ok_or_else(|| StorageError::invalid(format!("Upload-Metadata must have {key}")))
    };
    let bucket = names::bucket_id(&required("bucketName")?)?;
    let name = names::object_name(&required("objectName")?)?;
    let content_type = meta
        .get("contentType")
        .cloned()
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let cache_control = meta
        .get("cacheControl")
        .map(|c| crate::upload::max_age(c))
        .unwrap_or_else(|| "max-age=3600".to_owned());
    let user_metadata = meta
        .get("metadata")
        .map(|m| {
            serde_json::from_str::<Value>(m)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| StorageError::invalid("metadata must be a JSON object"))
        })
        .transpose()?;
    let upsert = header(headers, "x-upsert").is_some_and(|v| v.eq_ignore_ascii_case("true"));

    // The same checks as a plain upload, before any byte is kept: the bucket's type and size,
    // and whether the caller may write there (tried and rolled back).
    let mut tx = ctx.begin(state.pool()).await?;
    let bucket_row = rows::bucket(&mut tx, &bucket).await?;
    rows::check_write(&mut tx, &bucket, &name, ctx.user_id(), upsert).await?;
    tx.rollback().await?;
    if !sniff::allowed(bucket_row.allowed_mime_types.as_deref(), &content_type) {
        return Err(StorageError::mime(format!(
            "mime type {} is not supported",
            sniff::essence(&content_type)
        )));
    }
    if bucket_row
        .file_size_limit
        .is_some_and(|limit| length > limit)
    {
        return Err(StorageError::too_large());
    }

    let mut tx = RequestContext::service().begin(state.pool()).await?;
    let upload: Upload = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into storage.resumable_uploads (bucket_id, name, owner, upload_length, \
             content_type, cache_control, user_metadata, upsert) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning {COLUMNS}"
    )))
    .bind(&bucket)
    .bind(&name)
    .bind(ctx.user_id())
    .bind(length)
    .bind(&content_type)
    .bind(&cache_control)
    .bind(&user_metadata)
    .bind(upsert)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;

    let location = format!("{LOCATION}/{}", upload.id);
    let with_data = header(headers, "content-type") == Some(OFFSET_STREAM);
    let (offset, done) = if with_data || length == 0 {
        let ctx = ctx.clone();
        let appended = write_at(state, &ctx, upload.clone(), 0, body).await;
        match appended {
            Ok(offset) => (Some(offset), offset == length),
            Err(e) => {
                abandon(state, upload.id).await;
                return Err(e);
            }
        }
    } else {
        (None, false)
    };
    let mut response = (StatusCode::CREATED, [("location", location)]).into_response();
    let headers = response.headers_mut();
    if !done && let Ok(v) = HeaderValue::from_str(&http_date(upload.expires_at)) {
        headers.insert("upload-expires", v);
    }
    if let Some(offset) = offset {
        headers.insert("upload-offset", HeaderValue::from(offset));
    }
    Ok(response)
}

/// `HEAD`: how far the upload is.
async fn status(state: &StorageState, ctx: &RequestContext, id: &str) -> StorageResult<Response> {
    let upload = find(state, ctx, id).await?;
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert("upload-offset", HeaderValue::from(upload.upload_offset));
    headers.insert("upload-length", HeaderValue::from(upload.upload_length));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&http_date(upload.expires_at)) {
        headers.insert("upload-expires", v);
    }
    Ok(response)
}

/// `PATCH`: bytes at `Upload-Offset`.
async fn append(
    state: &StorageState,
    ctx: RequestContext,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> StorageResult<Response> {
    if header(headers, "content-type") != Some(OFFSET_STREAM) {
        return Err(StorageError::new(
            415,
            "InvalidMimeType",
            "invalid_mime_type",
            format!("Content-Type must be {OFFSET_STREAM}"),
        ));
    }
    let offset: i64 = header(headers, "upload-offset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StorageError::invalid("Upload-Offset must be a number of bytes"))?;
    let upload = find(state, &ctx, id).await?;
    let expires = upload.expires_at;
    let new_offset = write_at(state, &ctx, upload, offset, body).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert("upload-offset", HeaderValue::from(new_offset));
    if let Ok(v) = HeaderValue::from_str(&http_date(expires)) {
        headers.insert("upload-expires", v);
    }
    Ok(response)
}

/// Writes `body` as the part at `offset` and counts it; with the last byte, completes the
/// upload. Answers the new offset.
async fn write_at(
    state: &StorageState,
    ctx: &RequestContext,
    upload: Upload,
    offset: i64,
    body: Body,
) -> StorageResult<i64> {
    if offset != upload.upload_offset {
        return Err(StorageError::new(
            409,
            "InvalidRequest",
            "Conflict",
            format!(
                "Upload-Offset {offset} is not the upload's offset {}",
                upload.upload_offset
            ),
        ));
    }
    let room = u64::try_from(upload.upload_length - offset).unwrap_or(0);
    let part = part_path(upload.id, offset);
    let (written, _) = write::stream_to(
        state.backend(),
        &part,
        PutMultipartOptions::default(),
        Bytes::new(),
        body.into_data_stream(),
        room,
    )
    .await?;
    let written = i64::try_from(written).unwrap_or(i64::MAX);
    let mut tx = RequestContext::service().begin(state.pool()).await?;
    let counted: Option<Vec<String>> = sqlx::query_scalar(
        "update storage.resumable_uploads \
         set upload_offset = upload_offset + $3, parts = parts || $4 \
         where id = $1 and upload_offset = $2 returning parts",
    )
    .bind(upload.id)
    .bind(offset)
    .bind(written)
    .bind(part.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let Some(parts) = counted else {
        // Another request appended at this offset first (or the upload was abandoned).
        let _ = state.backend().store().delete(&part).await;
        return Err(StorageError::new(
            409,
            "InvalidRequest",
            "Conflict",
            "The upload moved on while these bytes arrived",
        ));
    };
    let new_offset = offset + written;
    if new_offset == upload.upload_length {
        complete(state, ctx, &upload, parts).await?;
    }
    Ok(new_offset)
}

/// Streams the parts, in order, into the object (as a plain upload stores it), then removes
/// the upload. A refusal (type, RLS, a taken name) abandons the upload.
async fn complete(
    state: &StorageState,
    ctx: &RequestContext,
    upload: &Upload,
    parts: Vec<String>,
) -> StorageResult<()> {
    let result = async {
        let mut tx = ctx.begin(state.pool()).await?;
        let bucket = rows::bucket(&mut tx, &upload.bucket_id).await?;
        tx.rollback().await?;
        let store = state.backend().store().clone();
        let bytes: BoxStream<'static, object_store::Result<Bytes>> =
            stream::iter(parts.into_iter().map(StorePath::from))
                .then(move |path| {
                    let store = store.clone();
                    async move { store.get(&path).await.map(|got| got.into_stream()) }
                })
                .try_flatten()
                .boxed();
        let stored = write::store(
            state.backend(),
            &bucket,
            &upload.name,
            &upload.content_type,
            &upload.cache_control,
            bytes,
        )
        .await?;
        let row = NewObject {
            bucket: &upload.bucket_id,
            name: &upload.name,
            owner: upload.owner,
            version: &stored.version,
            metadata: stored.metadata(),
            user_metadata: upload.user_metadata.clone(),
        };
        let written = async {
            let mut tx = ctx.begin(state.pool()).await?;
            let put = rows::put(&mut tx, &row, upload.upsert).await?;
            tx.commit().await?;
            StorageResult::Ok(put)
        }
        .await;
        match written {
            Ok((_, replaced)) => {
                if let Some(old) = replaced {
                    write::discard(state.backend(), &upload.bucket_id, &upload.name, &old).await;
                }
                Ok(())
            }
            Err(e) => {
                write::discard(
                    state.backend(),
                    &upload.bucket_id,
                    &upload.name,
                    &stored.version,
                )
                .await;
                Err(e)
            }
        }
    }
    .await;
    abandon(state, upload.id).await;
    result
}

/// Removes an upload's row and parts.
async fn abandon(state: &StorageState, id: Uuid) {
    let removed = async {
        let mut tx = RequestContext::service().begin(state.pool()).await?;
        sqlx::query("delete from storage.resumable_uploads where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        StorageResult::Ok(())
    }
    .await;
    if let Err(e) = removed {
        tracing::warn!(error = %e, %id, "could not remove a resumable upload");
    }
    remove_parts(state, id).await;
}

/// `DELETE`: the upload is abandoned.
async fn terminate(
    state: &StorageState,
    ctx: &RequestContext,
    id: &str,
) -> StorageResult<Response> {
    let upload = find(state, ctx, id).await?;
    abandon(state, upload.id).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_base64_pairs() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "upload-metadata",
            HeaderValue::from_static("bucketName dm9pY2Vz,objectName YS9iLndhdg==,flag"),
        );
        let meta = metadata(&headers).expect("valid");
        assert_eq!(meta["bucketName"], "voices");
        assert_eq!(meta["objectName"], "a/b.wav");
        assert_eq!(meta["flag"], "");
        headers.insert(
            "upload-metadata",
            HeaderValue::from_static("bucketName ***"),
        );
        assert!(metadata(&headers).is_err());
    }
}
