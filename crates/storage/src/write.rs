//! Streams an upload into the backend: in the buckets Tally reads, the first bytes are checked
//! against the declared type; everywhere the type against the bucket's allow-list, the size
//! against its limit as the bytes arrive, and the SHA-256 computed on the way.
//! Memory stays at one part (8 MiB) whatever the object's size; a failed or oversized upload is
//! aborted, leaving no file behind.

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use object_store::{ObjectStoreExt, WriteMultipart};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    backend::{Backend, key},
    error::{StorageError, StorageResult},
    rows::Bucket,
    sniff,
};

/// Bytes buffered per part.
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// One stored version of an object.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The version's id (part of the backend key).
    pub version: String,
    /// Bytes written.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The content type as declared (with its parameters).
    pub mimetype: String,
    /// The `Cache-Control` to serve it with.
    pub cache_control: String,
    /// When it was written.
    pub last_modified: DateTime<Utc>,
}

impl Stored {
    /// The row's `metadata`, as Supabase fills it (plus the SHA-256).
    pub fn metadata(&self) -> Value {
        json!({
            "eTag": format!("\"{}\"", self.sha256),
            "size": self.size,
            "mimetype": self.mimetype,
            "cacheControl": self.cache_control,
            "lastModified": self.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "contentLength": self.size,
            "httpStatusCode": 200,
            "sha256": self.sha256,
        })
    }
}

/// Writes `body` as a new version of `bucket/name`.
pub async fn store<S, E>(
    backend: &Backend,
    bucket: &Bucket,
    name: &str,
    content_type: &str,
    cache_control: &str,
    body: S,
) -> StorageResult<Stored>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // Stored and served as declared (`text/plain;charset=UTF-8`); its essence is checked.
    let mimetype = content_type.trim().to_owned();
    let essence = sniff::essence(&mimetype);
    if !sniff::allowed(bucket.allowed_mime_types.as_deref(), &essence) {
        return Err(StorageError::mime(format!(
            "mime type {essence} is not supported"
        )));
    }
    let limit = bucket
        .file_size_limit
        .and_then(|l| u64::try_from(l).ok())
        .unwrap_or(u64::MAX);
    // Read again after the head; a stream must not be polled past its end.
    let mut body = body.fuse();
    let interrupted = |e: E| StorageError::invalid(format!("The upload was interrupted: {e}"));

    let mut head = BytesMut::new();
    while head.len() < sniff::HEAD_BYTES {
        match body.next().await {
            Some(chunk) => head.extend_from_slice(&chunk.map_err(interrupted)?),
            None => break,
        }
    }
    if head.len() as u64 > limit {
        return Err(StorageError::too_large());
    }
    if bucket.check_content {
        sniff::check(&essence, &head)?;
    }

    let version = Uuid::now_v7().to_string();
    let path = key(&bucket.id, name, &version);
    let options = backend.put_options(&mimetype, cache_control);
    let (size, sha256) = stream_to(backend, &path, options, head.freeze(), body, limit).await?;
    Ok(Stored {
        version,
        size,
        sha256,
        mimetype,
        cache_control: cache_control.to_owned(),
        last_modified: Utc::now(),
    })
}

/// Streams `head` then `body` into `path`, at most `limit` bytes in all, one part (8 MiB) in
/// memory at a time; answers the size and hex SHA-256. A failure or an overflow aborts the
/// write and leaves no file.
pub async fn stream_to<S, E>(
    backend: &Backend,
    path: &object_store::path::Path,
    options: object_store::PutMultipartOptions,
    head: Bytes,
    mut body: S,
    limit: u64,
) -> StorageResult<(u64, String)>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let interrupted = |e: E| StorageError::invalid(format!("The upload was interrupted: {e}"));
    let upload = backend
        .store()
        .put_multipart_opts(path, options)
        .await
        .map_err(StorageError::internal)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut hasher = Sha256::new();
    let mut size = head.len() as u64;
    hasher.update(&head);
    writer.write(&head);
    let streamed = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(interrupted)?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(StorageError::too_large());
            }
            hasher.update(&chunk);
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(StorageError::internal)?;
            writer.write(&chunk);
        }
        Ok(())
    }
    .await;
    if let Err(e) = streamed {
        if let Err(abort) = writer.abort().await {
            tracing::warn!(error = %abort, %path, "could not abort a failed upload");
        }
        return Err(e);
    }
    writer.finish().await.map_err(StorageError::internal)?;
    metrics::counter!("tally_storage_bytes_total", "direction" => "in").increment(size);
    Ok((size, hex::encode(hasher.finalize())))
}

/// Removes one version's bytes, logging (not failing) when that is impossible: the row is
/// already gone or points elsewhere, so the bytes are unreachable either way.
pub async fn discard(backend: &Backend, bucket: &str, name: &str, version: &str) {
    let path = key(bucket, name, version);
    match backend.store().delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!(error = %e, %path, "could not remove an object's old bytes"),
    }
}
