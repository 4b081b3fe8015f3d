//! Uploads: `POST|PUT /object/{bucket}/{name}` (raw body or storage-js's multipart form) and
//! `PUT /object/upload/sign/{bucket}/{name}?token=` — permission tried first (rolled back),
//! then the bytes streamed to the backend, then the row written in the caller's transaction.
//! A refused or broken upload leaves neither a row nor a file.

use axum::{
    body::Body,
    http::{HeaderMap, header},
};
use base64::Engine;
use serde_json::Value;
use tally_core::RequestContext;
use uuid::Uuid;

use crate::{
    error::{StorageError, StorageResult},
    rows::{self, NewObject},
    state::StorageState,
    write,
};

/// Who writes: the caller under RLS, or a signed upload URL's owner (checked when it was
/// signed) with the server's role.
pub struct Writer {
    ctx: RequestContext,
    owner: Option<Uuid>,
}

impl Writer {
    /// The caller; its transaction's policies decide.
    pub fn caller(ctx: RequestContext) -> Self {
        let owner = ctx.user_id();
        Self { ctx, owner }
    }

    /// A signed upload URL's holder, writing on behalf of `owner`.
    pub fn signed(owner: Option<Uuid>) -> Self {
        Self {
            ctx: RequestContext::service(),
            owner,
        }
    }
}

/// A stored upload: the row's id and its `{bucket}/{name}` key.
pub struct Uploaded {
    /// The object's id.
    pub id: Uuid,
    /// `{bucket}/{name}`.
    pub key: String,
}

/// Uploads `body` to `bucket/name`.
pub async fn upload(
    state: &StorageState,
    writer: Writer,
    bucket: &str,
    name: &str,
    upsert: bool,
    headers: &HeaderMap,
    body: Body,
) -> StorageResult<Uploaded> {
    let ctx = &writer.ctx;
    let mut tx = ctx.begin(state.pool()).await?;
    let bucket_row = rows::bucket(&mut tx, bucket).await?;
    rows::check_write(&mut tx, bucket, name, writer.owner, upsert).await?;
    tx.rollback().await?;

    let content_type = header_str(headers, header::CONTENT_TYPE);
    let stored = if content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"))
    {
        let boundary = multer::parse_boundary(content_type.as_deref().unwrap_or_default())
            .map_err(|e| StorageError::invalid(e.to_string()))?;
        let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
        let mut cache_control = "max-age=3600".to_owned();
        let mut user_metadata = None;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| StorageError::invalid(e.to_string()))?
                .ok_or_else(|| StorageError::invalid("The form has no file"))?;
            match field.name() {
                Some("cacheControl") => {
                    cache_control = max_age(&field.text().await.map_err(form_error)?);
                }
                Some("metadata") => {
                    user_metadata = Some(json_metadata(&field.text().await.map_err(form_error)?)?);
                }
                _ => {
                    let mime = field
                        .content_type()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "application/octet-stream".to_owned());
                    let stored = write::store(
                        state.backend(),
                        &bucket_row,
                        name,
                        &mime,
                        &cache_control,
                        Box::pin(field),
                    )
                    .await?;
                    break (stored, user_metadata);
                }
            }
        }
    } else {
        // A raw body announces its size: refuse an oversized one before reading it.
        if let (Some(limit), Some(length)) = (bucket_row.file_size_limit, content_length(headers))
            && length > limit
        {
            return Err(StorageError::too_large());
        }
        let mime = content_type.unwrap_or_else(|| "text/plain;charset=UTF-8".to_owned());
        let cache_control = header_str(headers, header::CACHE_CONTROL)
            .map(|c| max_age(&c))
            .unwrap_or_else(|| "max-age=3600".to_owned());
        let user_metadata = header_str(headers, "x-metadata")
            .map(|m| {
                let json = base64::engine::general_purpose::STANDARD
                    .decode(m.trim())
                    .map_err(|_| StorageError::invalid("x-metadata is not base64"))?;
                json_metadata(&String::from_utf8_lossy(&json))
            })
            .transpose()?;
        let stored = write::store(
            state.backend(),
            &bucket_row,
            name,
            &mime,
            &cache_control,
            body.into_data_stream(),
        )
        .await?;
        (stored, user_metadata)
    };
    let (stored, user_metadata) = stored;

    let row = NewObject {
        bucket,
        name,
        owner: writer.owner,
        version: &stored.version,
        metadata: stored.metadata(),
        user_metadata,
    };
    let written = async {
        let mut tx = ctx.begin(state.pool()).await?;
        let put = rows::put(&mut tx, &row, upsert).await?;
        tx.commit().await?;
        StorageResult::Ok(put)
    }
    .await;
    match written {
        Ok((id, replaced)) => {
            if let Some(old) = replaced {
                write::discard(state.backend(), bucket, name, &old).await;
            }
            Ok(Uploaded {
                id,
                key: format!("{bucket}/{name}"),
            })
        }
        Err(e) => {
            write::discard(state.backend(), bucket, name, &stored.version).await;
            Err(e)
        }
    }
}

fn form_error(e: multer::Error) -> StorageError {
    StorageError::invalid(format!("The form could not be read: {e}"))
}

fn json_metadata(text: &str) -> StorageResult<Value> {
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| StorageError::invalid("metadata must be a JSON object"))
}

/// `3600` (as storage-js sends it in forms) → `max-age=3600`.
pub(crate) fn max_age(value: &str) -> String {
    let value = value.trim();
    if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        format!("max-age={value}")
    } else {
        value.to_owned()
    }
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn content_length(headers: &HeaderMap) -> Option<i64> {
    header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}
