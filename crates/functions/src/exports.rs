//! `export-create` (also `export.create`) `{org_id, format, from, to, scope, user_id?,
//! project_id?, expires_in?}`: writes what the caller may read of an org's logs, day
//! summaries or weekly summaries to `exports/{org_id}/{export_id}/…` and answers with a signed
//! download URL. The rows are read in the caller's transaction (RLS decides) and streamed:
//! encoded as they arrive and written through storage while later rows are still being read,
//! so memory stays flat whatever the size. Any org member may export; the file holds only
//! their view (a member their own logs, a viewer no person's rows).

use axum::http::StatusCode;
use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use futures_util::{TryStreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use tally_core::{DbRole, RequestContext};
use tally_insights::export::{Encoder, ExportError, Format, Query, Scope, Tail};
use tokio::{io::AsyncReadExt, sync::mpsc};
use uuid::Uuid;

use crate::{
    caller,
    error::{FnError, FnResult},
    state::FunctionsState,
    uploads::storage_error,
};

/// The longest range one export covers.
const MAX_DAYS: i64 = 366;
/// How long the signed URL lives unless asked otherwise, and the bounds of `expires_in`.
const DEFAULT_EXPIRY: i64 = 3600;
const EXPIRY_RANGE: std::ops::RangeInclusive<i64> = 60..=7 * 24 * 3600;
/// Encoded chunks in flight between the encoder and storage.
const CHUNKS_IN_FLIGHT: usize = 4;
/// The bucket exports live in.
const BUCKET: &str = "exports";

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Export {
    org_id: Uuid,
    format: Format,
    from: NaiveDate,
    to: NaiveDate,
    scope: Scope,
    user_id: Option<Uuid>,
    project_id: Option<Uuid>,
    expires_in: Option<i64>,
}

/// An export error as this function answers it.
fn export_error(e: ExportError) -> FnError {
    match e {
        ExportError::TooManyRows { .. } => FnError::bad_request(e.to_string()),
        ExportError::Database(e) => FnError::from(e),
        ExportError::Encode(_) => FnError::internal(e),
    }
}

/// Why encoding stopped early.
enum Stopped {
    /// Storage stopped reading; its own error says why.
    Storage,
    /// The rows or the encoder failed.
    Failed(FnError),
}

impl From<ExportError> for Stopped {
    fn from(e: ExportError) -> Self {
        Self::Failed(export_error(e))
    }
}

type Chunk = Result<Bytes, String>;

async fn send(sender: &mpsc::Sender<Chunk>, bytes: Vec<u8>) -> Result<(), Stopped> {
    if bytes.is_empty() {
        return Ok(());
    }
    sender
        .send(Ok(Bytes::from(bytes)))
        .await
        .map_err(|_| Stopped::Storage)
}

/// Reads the rows on `conn`, encodes them and sends the bytes on; returns the row count.
async fn encode(
    conn: &mut PgConnection,
    query: Query,
    mut encoder: Box<dyn Encoder>,
    sender: &mpsc::Sender<Chunk>,
) -> Result<u64, Stopped> {
    let mut count = 0u64;
    {
        let mut rows = std::pin::pin!(query.rows(conn));
        while let Some(cells) = rows.try_next().await.map_err(ExportError::from)? {
            encoder.row(&cells)?;
            count += 1;
            send(sender, encoder.take()).await?;
        }
    }
    match encoder.finish()? {
        Tail::Bytes(bytes) => send(sender, bytes).await?,
        Tail::File(file) => {
            let mut file = tokio::fs::File::from_std(file);
            loop {
                let mut buffer = vec![0; 256 * 1024];
                let read = file
                    .read(&mut buffer)
                    .await
                    .map_err(|e| Stopped::Failed(FnError::internal(e)))?;
                if read == 0 {
                    break;
                }
                buffer.truncate(read);
                send(sender, buffer).await?;
            }
        }
    }
    Ok(count)
}

/// 201 `{export_id, bucket, path, signed_url, expires_at, rows, bytes, format, scope}`.
pub async fn run(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: Export,
) -> FnResult<(StatusCode, Value)> {
    if body.from > body.to {
        return Err(FnError::bad_request("from must not be after to"));
    }
    if body.to.signed_duration_since(body.from).num_days() >= MAX_DAYS {
        return Err(FnError::bad_request(format!(
            "An export covers at most {MAX_DAYS} days"
        )));
    }
    if body.project_id.is_some() && !body.scope.has_project() {
        return Err(FnError::bad_request(
            "project_id narrows the logs scope only",
        ));
    }
    let expires_in = body.expires_in.unwrap_or(DEFAULT_EXPIRY);
    if !EXPIRY_RANGE.contains(&expires_in) {
        return Err(FnError::bad_request(format!(
            "expires_in must be between {} and {} seconds",
            EXPIRY_RANGE.start(),
            EXPIRY_RANGE.end()
        )));
    }
    let owner = match ctx.role() {
        DbRole::ServiceRole => None,
        _ => Some(caller::user(ctx)?),
    };

    let mut tx = ctx.begin_read_only(state.pool()).await?;
    if owner.is_some() {
        caller::member(&mut tx, body.org_id).await?;
    }
    let query = Query {
        scope: body.scope,
        org_id: body.org_id,
        from: body.from,
        to: body.to,
        user_id: body.user_id,
        project_id: body.project_id,
    };
    let encoder = body
        .format
        .encoder(body.scope.columns())
        .map_err(export_error)?;
    let export_id = Uuid::now_v7();
    let path = format!(
        "{}/{export_id}/tally-{}-{}-{}.{}",
        body.org_id,
        body.scope.as_str(),
        body.from,
        body.to,
        body.format.extension()
    );

    let (sender, receiver) = mpsc::channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let produced = async {
        let result = encode(&mut tx, query, encoder, &sender).await;
        if let Err(Stopped::Failed(e)) = &result {
            // Storage must not keep a file cut short: it aborts on an error in the stream.
            let _ = sender.send(Err(e.to_string())).await;
        }
        drop(sender);
        result
    };
    let chunks = Box::pin(stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    }));
    let stored =
        state
            .storage()
            .put_stream(owner, BUCKET, &path, body.format.content_type(), chunks);
    let (produced, stored) = tokio::join!(produced, stored);
    tx.commit().await?;
    let rows = match produced {
        Ok(rows) => rows,
        Err(Stopped::Failed(e)) => return Err(e),
        Err(Stopped::Storage) => {
            return Err(stored.err().map_or_else(
                || FnError::internal("storage stopped reading an export"),
                storage_error,
            ));
        }
    };
    let (_, written) = stored.map_err(storage_error)?;

    let signed = state
        .storage()
        .sign_download(BUCKET, &path, expires_in)
        .map_err(storage_error)?;
    let expires_at = Utc::now() + chrono::Duration::seconds(expires_in);
    let export = json!({
        "export_id": export_id,
        "bucket": BUCKET,
        "path": path,
        "signed_url": format!("{}/storage/v1{signed}", state.external_url()),
        "expires_at": expires_at,
        "rows": rows,
        "bytes": written.size,
        "format": body.format.extension(),
        "scope": body.scope.as_str(),
    });
    // Integrations subscribed to `export.ready` hear of it (a delivery job per subscriber).
    let mut tx = ctx.begin(state.pool()).await?;
    sqlx::query("select private.emit_webhook($1, 'export.ready', $2)")
        .bind(body.org_id)
        .bind(json!({ "export": export, "created_by": owner }))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, export))
}
