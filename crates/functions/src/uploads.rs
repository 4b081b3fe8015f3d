//! `upload-presign` (also `upload.presign`): an attachment row (`pending_upload`) and a signed
//! upload URL for `voices|images/{org_id}/{log_id or attachment_id}/{filename}`, in one
//! transaction as the caller. When the object arrives, the database marks the attachment
//! `uploaded`.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use tally_storage::{Declared, StorageError};
use uuid::Uuid;

use crate::{
    caller,
    error::{FnError, FnResult},
    state::FunctionsState,
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Presign {
    org_id: Uuid,
    log_id: Option<Uuid>,
    kind: Kind,
    filename: String,
    content_type: String,
    size_bytes: i64,
}

/// What is uploaded, which decides the bucket.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = UploadKind)]
enum Kind {
    Voice,
    Image,
}

impl Kind {
    fn bucket(self) -> &'static str {
        match self {
            Self::Voice => "voices",
            Self::Image => "images",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Voice => "voice",
            Self::Image => "image",
        }
    }
}

/// Storage's refusals, as the functions' errors.
pub(crate) fn storage_error(e: StorageError) -> FnError {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    if status.is_server_error() {
        return FnError::internal(e);
    }
    let code = match e.status {
        403 => "forbidden",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        404 => "not_found",
        _ => "invalid_request",
    };
    FnError::new(status, code, e.message)
}

/// 201 `{attachment_id, bucket, path, signed_url, token, expires_at}`.
pub async fn run(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: Presign,
) -> FnResult<(StatusCode, Value)> {
    let user = caller::user(ctx)?;
    let filename = body.filename.trim();
    if filename.contains('/') {
        return Err(FnError::bad_request("filename must not contain '/'"));
    }
    tally_storage::names::object_name(filename).map_err(storage_error)?;
    let bucket = body.kind.bucket();
    let mut tx = ctx.begin(state.pool()).await?;
    // A log must be one the caller may write; its person owns the attachment.
    let owner: Uuid = match body.log_id {
        Some(log) => sqlx::query_scalar(
            "select user_id from public.time_logs where id = $1 and org_id = $2 and deleted_at is null",
        )
        .bind(log)
        .bind(body.org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| FnError::not_found("Log"))?,
        None => user,
    };
    let id = Uuid::now_v7();
    let path = format!("{}/{}/{filename}", body.org_id, body.log_id.unwrap_or(id));
    sqlx::query(
        "insert into public.attachments (id, org_id, user_id, time_log_id, kind, bucket, \
           object_path, content_type, size_bytes, status) \
         values ($1, $2, $3, $4, $5::public.attachment_kind, $6, $7, $8, $9, 'pending_upload')",
    )
    .bind(id)
    .bind(body.org_id)
    .bind(owner)
    .bind(body.log_id)
    .bind(body.kind.as_str())
    .bind(bucket)
    .bind(&path)
    .bind(&body.content_type)
    .bind(body.size_bytes)
    .execute(&mut *tx)
    .await
    .map_err(
        |e| match e.as_database_error().and_then(|d| d.code()).as_deref() {
            Some("23505") => FnError::new(
                StatusCode::CONFLICT,
                "conflict",
                "This log already has an attachment with that file name",
            ),
            Some("42501") => FnError::forbidden("You may not add attachments here"),
            _ => FnError::from(e),
        },
    )?;
    let declared = Declared {
        content_type: &body.content_type,
        size: body.size_bytes,
    };
    let signed = state
        .storage()
        .sign_upload(&mut tx, Some(user), bucket, &path, false, Some(declared))
        .await
        .map_err(storage_error)?;
    tx.commit().await?;
    let expires_at = chrono::DateTime::from_timestamp(signed.expires_at, 0)
        .ok_or_else(|| FnError::internal("an expiry out of range"))?;
    Ok((
        StatusCode::CREATED,
        json!({
            "attachment_id": id,
            "bucket": bucket,
            "path": path,
            "signed_url": format!("{}/storage/v1{}", state.external_url(), signed.url),
            "token": signed.token,
            "expires_at": expires_at,
        }),
    ))
}
