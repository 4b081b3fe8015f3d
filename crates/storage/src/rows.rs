//! SQL on `storage.buckets` and `storage.objects`, always on the caller's connection, so the
//! policies decide. Rows are shaped into Supabase's JSON by PostgreSQL itself.

use serde_json::Value;
use sqlx::{Acquire, PgConnection, Row};
use uuid::Uuid;

use crate::error::{StorageError, StorageResult};

/// A bucket's settings.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Its id.
    pub id: String,
    /// Readable by anyone at `/object/public/…`.
    pub public: bool,
    /// Largest object, in bytes.
    pub file_size_limit: Option<i64>,
    /// MIME types allowed (`type/*` patterns); none allows all.
    pub allowed_mime_types: Option<Vec<String>>,
    /// Whether uploads' bytes must be what their declared type says (the buckets Tally reads).
    pub check_content: bool,
}

/// The bucket `id`, or NoSuchBucket.
pub async fn bucket(conn: &mut PgConnection, id: &str) -> StorageResult<Bucket> {
    let row = sqlx::query(
        "select id, public, file_size_limit, allowed_mime_types, check_content \
         from storage.buckets where id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(StorageError::no_such_bucket)?;
    Ok(Bucket {
        id: row.try_get("id")?,
        public: row.try_get("public")?,
        file_size_limit: row.try_get("file_size_limit")?,
        allowed_mime_types: row.try_get("allowed_mime_types")?,
        check_content: row.try_get("check_content")?,
    })
}

/// An object's row as downloads need it.
#[derive(Debug, Clone)]
pub struct Object {
    /// The version whose bytes are current.
    pub version: String,
    /// `{eTag, size, mimetype, cacheControl, lastModified, …}`.
    pub metadata: Value,
}

impl Object {
    /// A string field of the metadata.
    pub fn meta(&self, field: &str) -> Option<&str> {
        self.metadata.get(field).and_then(Value::as_str)
    }

    /// The size in bytes.
    pub fn size(&self) -> Option<u64> {
        self.metadata.get("size").and_then(Value::as_u64)
    }
}

/// The object the caller may read at `bucket/name`, if any.
pub async fn object(
    conn: &mut PgConnection,
    bucket: &str,
    name: &str,
) -> StorageResult<Option<Object>> {
    let row = sqlx::query(
        "select version, coalesce(metadata, '{}') as metadata from storage.objects \
         where bucket_id = $1 and name = $2",
    )
    .bind(bucket)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Object {
            version: r.try_get("version")?,
            metadata: r.try_get("metadata")?,
        })
    })
    .transpose()
}

/// A `timestamptz` column as Supabase Storage writes times: ISO 8601 in UTC with
/// milliseconds, `2021-02-17T04:43:32.770Z`.
macro_rules! iso_time {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        )
    };
}
pub(crate) use iso_time;

/// Supabase's FileObject (list, remove) for an object row aliased `o`.
pub const FILE_OBJECT: &str = concat!(
    "json_build_object('name', o.name, 'id', o.id, 'bucket_id', o.bucket_id, \
     'owner', o.owner, 'owner_id', o.owner_id, 'version', o.version, 'updated_at', ",
    iso_time!("o.updated_at"),
    ", 'created_at', ",
    iso_time!("o.created_at"),
    ", 'last_accessed_at', ",
    iso_time!("o.last_accessed_at"),
    ", 'metadata', o.metadata, 'user_metadata', o.user_metadata)"
);

/// Supabase's FileObjectV2 (info) for an object row aliased `o`: no `updated_at`, and the
/// user's metadata `{}` when there is none.
const FILE_OBJECT_V2: &str = concat!(
    "json_build_object('id', o.id, 'version', o.version, 'name', o.name, \
     'bucket_id', o.bucket_id, 'created_at', ",
    iso_time!("o.created_at"),
    ", 'last_accessed_at', ",
    iso_time!("o.last_accessed_at"),
    ", 'size', (o.metadata ->> 'size')::bigint, \
     'cache_control', o.metadata ->> 'cacheControl', 'content_type', o.metadata ->> 'mimetype', \
     'etag', o.metadata ->> 'eTag', 'last_modified', o.metadata ->> 'lastModified', \
     'metadata', coalesce(o.user_metadata, '{}'::jsonb))"
);

/// FileObjectV2 of the object the caller may read at `bucket/name`.
pub async fn info(conn: &mut PgConnection, bucket: &str, name: &str) -> StorageResult<Value> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select {FILE_OBJECT_V2} from storage.objects o where o.bucket_id = $1 and o.name = $2"
    )))
    .bind(bucket)
    .bind(name)
    .fetch_optional(conn)
    .await?
    .ok_or_else(StorageError::no_such_key)
}

/// What an upload writes into the row.
#[derive(Debug, Clone)]
pub struct NewObject<'a> {
    /// Bucket id.
    pub bucket: &'a str,
    /// Object name.
    pub name: &'a str,
    /// The uploader (`auth.uid()`), none for the service role.
    pub owner: Option<Uuid>,
    /// The version whose bytes were stored.
    pub version: &'a str,
    /// `{eTag, size, mimetype, cacheControl, lastModified, sha256, …}`.
    pub metadata: Value,
    /// The client's own metadata.
    pub user_metadata: Option<Value>,
}

/// Inserts (or with `upsert`, replaces) the row; returns its id and the version it replaced.
/// Runs as the caller: RLS refuses (42501 → 403) and a taken name without `upsert` is 409.
pub async fn put(
    conn: &mut PgConnection,
    object: &NewObject<'_>,
    upsert: bool,
) -> StorageResult<(Uuid, Option<String>)> {
    let replaced: Option<String> = if upsert {
        sqlx::query_scalar(
            "select version from storage.objects where bucket_id = $1 and name = $2 for update",
        )
        .bind(object.bucket)
        .bind(object.name)
        .fetch_optional(&mut *conn)
        .await?
    } else {
        None
    };
    let conflict = if upsert {
        " on conflict (bucket_id, name) do update set owner = excluded.owner, \
          owner_id = excluded.owner_id, version = excluded.version, metadata = excluded.metadata, \
          user_metadata = excluded.user_metadata, last_accessed_at = now()"
    } else {
        ""
    };
    let id: Uuid = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata) \
         values ($1, $2, $3, $3::text, $4, $5, $6){conflict} returning id"
    )))
    .bind(object.bucket)
    .bind(object.name)
    .bind(object.owner)
    .bind(object.version)
    .bind(&object.metadata)
    .bind(&object.user_metadata)
    .fetch_one(conn)
    .await?;
    Ok((id, replaced))
}

/// Would the caller be allowed to put an object at `bucket/name`? Tried in a savepoint and
/// rolled back, before any byte is stored (as Supabase does).
pub async fn check_write(
    conn: &mut PgConnection,
    bucket: &str,
    name: &str,
    owner: Option<Uuid>,
    upsert: bool,
) -> StorageResult<()> {
    let mut savepoint = conn.begin().await?;
    let probe = NewObject {
        bucket,
        name,
        owner,
        version: "probe",
        metadata: Value::Null,
        user_metadata: None,
    };
    let result = put(&mut savepoint, &probe, upsert).await;
    savepoint.rollback().await?;
    result.map(|_| ())
}

/// Deletes the named objects the caller may delete; returns their FileObjects and versions.
pub async fn remove(
    conn: &mut PgConnection,
    bucket: &str,
    names: &[String],
) -> StorageResult<Vec<(Value, String)>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "delete from storage.objects o where o.bucket_id = $1 and o.name = any($2) \
         returning {FILE_OBJECT} as object, o.version"
    )))
    .bind(bucket)
    .bind(names)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get("object")?, r.try_get("version")?)))
        .collect()
}
