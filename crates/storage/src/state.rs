//! What storage handlers share, and who is calling.

use std::sync::Arc;

use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::Stream;
use object_store::ObjectStoreExt;
use sqlx::{PgConnection, PgPool};
use tally_core::{JwtKeys, RequestContext, gateway};
use uuid::Uuid;

use crate::{
    backend::Backend,
    error::{StorageError, StorageResult},
    names, rows, sniff, token,
    write::{self, Stored},
};

/// The state of `/storage/v1`.
#[derive(Clone)]
pub struct StorageState(Arc<Inner>);

struct Inner {
    pool: PgPool,
    keys: JwtKeys,
    backend: Backend,
    upload_url_expiry: i64,
}

/// What a client says it will upload, checked against the bucket before a URL is signed.
#[derive(Debug, Clone, Copy)]
pub struct Declared<'a> {
    /// The content type it will send.
    pub content_type: &'a str,
    /// Its size in bytes.
    pub size: i64,
}

/// A signed upload URL, as `POST /object/upload/sign` and `upload-presign` answer it.
#[derive(Debug, Clone)]
pub struct SignedUpload {
    /// `/object/upload/sign/{bucket}/{name}?token=…`, relative to `/storage/v1`.
    pub url: String,
    /// The token alone.
    pub token: String,
    /// When the upload must have started by (unix seconds).
    pub expires_at: i64,
}

impl tally_core::gateway::Gateway for StorageState {
    fn pool(&self) -> &PgPool {
        StorageState::pool(self)
    }

    fn keys(&self) -> &JwtKeys {
        StorageState::keys(self)
    }
}

impl StorageState {
    /// State over the request pool; signed upload URLs live `upload_url_expiry` seconds.
    pub fn new(pool: PgPool, keys: JwtKeys, backend: Backend, upload_url_expiry: i64) -> Self {
        Self(Arc::new(Inner {
            pool,
            keys,
            backend,
            upload_url_expiry,
        }))
    }

    /// The request pool.
    pub fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    /// The project's keys (signed URLs are signed with them).
    pub fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }

    /// The object store.
    pub fn backend(&self) -> &Backend {
        &self.0.backend
    }

    /// Identifies the caller from the bearer token (the anon key alone makes an anon caller,
    /// whom RLS lets do nothing).
    pub async fn caller(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
    ) -> StorageResult<RequestContext> {
        let gateway::Caller(ctx) =
            gateway::Caller::of(self, headers)
                .await
                .map_err(|e| match e {
                    // As current Storage: a token that is missing (an empty one, to its
                    // JWT library) or bad is 403 AccessDenied with the library's reason.
                    gateway::CallerError::Missing => {
                        StorageError::unauthorized("Invalid Compact JWS")
                    }
                    gateway::CallerError::Database(e) => StorageError::from(e),
                    other => StorageError::unauthorized(other.to_string()),
                })?;
        Ok(ctx.with_request(method, path, headers))
    }

    /// The current bytes of `bucket/name` and their type, read as the server (for jobs that
    /// process stored files; callers' access goes through the routes).
    pub async fn read(&self, bucket: &str, name: &str) -> StorageResult<(Bytes, String)> {
        let ctx = RequestContext::service();
        let mut tx = ctx.begin_read_only(self.pool()).await?;
        let object = rows::object(&mut tx, bucket, name)
            .await?
            .ok_or_else(StorageError::no_such_key)?;
        tx.commit().await?;
        let bytes = self
            .backend()
            .store()
            .get(&crate::backend::key(bucket, name, &object.version))
            .await?
            .bytes()
            .await?;
        let mime = object
            .meta("mimetype")
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok((bytes, mime))
    }

    /// Checks, in the caller's transaction `conn` (in a savepoint, rolled back), that the
    /// caller may put an object at `bucket/name` (an insert, or an upsert with `upsert`), then
    /// signs an upload URL for it on behalf of `owner`; a `declared` type and size must fit
    /// the bucket. Used by `POST /object/upload/sign` and by the `upload-presign` function.
    pub async fn sign_upload(
        &self,
        conn: &mut PgConnection,
        owner: Option<Uuid>,
        bucket: &str,
        name: &str,
        upsert: bool,
        declared: Option<Declared<'_>>,
    ) -> StorageResult<SignedUpload> {
        let bucket = names::bucket_id(bucket)?;
        let name = names::object_name(name)?;
        let settings = rows::bucket(&mut *conn, &bucket).await?;
        if let Some(declared) = declared {
            if !sniff::allowed(
                settings.allowed_mime_types.as_deref(),
                declared.content_type,
            ) {
                return Err(StorageError::mime(format!(
                    "mime type {} is not supported",
                    sniff::essence(declared.content_type)
                )));
            }
            if declared.size < 1 {
                return Err(StorageError::invalid("The size must be at least 1 byte"));
            }
            if let Some(limit) = settings.file_size_limit
                && declared.size > limit
            {
                return Err(StorageError::too_large());
            }
        }
        rows::check_write(conn, &bucket, &name, owner, upsert).await?;
        let (token, expires_at) = token::sign_upload(
            self.keys(),
            &bucket,
            &name,
            owner,
            upsert,
            self.0.upload_url_expiry,
        )?;
        Ok(SignedUpload {
            url: format!("/object/upload/sign/{bucket}/{name}?token={token}"),
            token,
            expires_at,
        })
    }

    /// Stores `body` at `bucket/name` as the server, for files the server makes (exports),
    /// owned by `owner`: streamed through [`write::store`] (type, size limit, digest), then
    /// the row inserted; a failure leaves neither bytes nor row. Returns the row's id and the
    /// version written.
    pub async fn put_stream<S, E>(
        &self,
        owner: Option<Uuid>,
        bucket: &str,
        name: &str,
        content_type: &str,
        body: S,
    ) -> StorageResult<(Uuid, Stored)>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let name = names::object_name(name)?;
        let ctx = RequestContext::service();
        let settings = {
            let mut tx = ctx.begin_read_only(self.pool()).await?;
            let settings = rows::bucket(&mut tx, bucket).await?;
            tx.commit().await?;
            settings
        };
        let stored = write::store(
            self.backend(),
            &settings,
            &name,
            content_type,
            "no-cache",
            body,
        )
        .await?;
        let row = rows::NewObject {
            bucket,
            name: &name,
            owner,
            version: &stored.version,
            metadata: stored.metadata(),
            user_metadata: None,
        };
        let written = async {
            let mut tx = ctx.begin(self.pool()).await?;
            let (id, _) = rows::put(&mut tx, &row, false).await?;
            tx.commit().await?;
            StorageResult::Ok(id)
        }
        .await;
        match written {
            Ok(id) => Ok((id, stored)),
            Err(e) => {
                write::discard(self.backend(), bucket, &name, &stored.version).await;
                Err(e)
            }
        }
    }

    /// A download URL for `bucket/name` valid `expires_in` seconds, relative to
    /// `/storage/v1`, signed without asking the policies: for the server's own files, handed
    /// to whoever it made them for.
    pub fn sign_download(
        &self,
        bucket: &str,
        name: &str,
        expires_in: i64,
    ) -> StorageResult<String> {
        let token = token::sign_download(self.keys(), bucket, name, expires_in, None)?;
        Ok(crate::token::signed_path(bucket, name, &token, false))
    }
}
