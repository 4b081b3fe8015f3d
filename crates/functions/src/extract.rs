//! The `extract_attachment` job, enqueued when an attachment's file arrives: a screenshot is
//! read by OCR, a voice note transcribed; the text lands in `attachments.extracted_text`
//! (status `processed`), and the attachment's log — unless its person already finalized it —
//! goes back to `pending`, so it is classified again with that text as input. A job that
//! cannot succeed leaves the attachment `failed` with the reason in `error`.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, Payload};
use tally_storage::StorageState;
use uuid::Uuid;

use tally_ai::stt::SttError;

use crate::providers::{Providers, Speech};

/// An `extract_attachment` job, which the storage trigger enqueues when a file arrives.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExtractAttachment {
    /// The attachment.
    pub attachment_id: Uuid,
}

impl Payload for ExtractAttachment {
    const KIND: &'static str = "extract_attachment";
}

/// Runs `extract_attachment` jobs.
pub struct ExtractAttachmentJob {
    pool: PgPool,
    storage: StorageState,
    providers: Providers,
}

impl ExtractAttachmentJob {
    /// A handler over the request pool and the storage service.
    pub fn new(pool: PgPool, storage: StorageState, providers: Providers) -> Self {
        Self {
            pool,
            storage,
            providers,
        }
    }
}

/// The attachment as the job needs it.
#[derive(sqlx::FromRow)]
struct Attachment {
    org_id: Uuid,
    kind: String,
    bucket: String,
    object_path: String,
    content_type: Option<String>,
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

impl ExtractAttachmentJob {
    async fn extract(&self, id: Uuid) -> Result<(), JobError> {
        let ctx = RequestContext::service();
        let mut tx = ctx.begin(&self.pool).await.map_err(retry)?;
        let found: Option<Attachment> = sqlx::query_as(
            "update public.attachments set status = 'processing', error = null \
             where id = $1 and deleted_at is null and status in ('uploaded', 'processing') \
             returning org_id, kind::text as kind, bucket, object_path, content_type",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(retry)?;
        tx.commit().await.map_err(retry)?;
        // Gone, never uploaded, or already done: nothing to do.
        let Some(attachment) = found else {
            return Ok(());
        };
        let (bytes, stored_type) = self
            .storage
            .read(&attachment.bucket, &attachment.object_path)
            .await
            .map_err(|e| match e.status {
                404 => JobError::Fatal("the file is gone".into()),
                _ => retry(e.message),
            })?;
        let text = match attachment.kind.as_str() {
            "image" => self
                .providers
                .ocr
                .recognize(&bytes)
                .await
                .map_err(|e| JobError::Fatal(e.to_string()))?,
            _ => {
                let prompt = self.prompt(attachment.org_id).await.map_err(retry)?;
                let failed = |e: SttError| match e {
                    SttError::Unavailable(m) => JobError::Retry(m),
                    other => JobError::Fatal(other.to_string()),
                };
                match &self.providers.speech {
                    Speech::Service(stt) => {
                        let file = attachment.object_path.rsplit('/').next().unwrap_or("audio");
                        let content_type =
                            attachment.content_type.as_deref().unwrap_or(&stored_type);
                        stt.transcribe(bytes.to_vec(), file, content_type, &prompt)
                            .await
                            .map_err(failed)?
                    }
                    Speech::Builtin(engine) => {
                        // The model is fetched once; a failed fetch is tried again later.
                        let whisper = engine.get().await.map_err(JobError::Retry)?;
                        tokio::task::spawn_blocking(move || whisper.transcribe(&bytes, &prompt))
                            .await
                            .map_err(retry)?
                            .map_err(failed)?
                    }
                    Speech::Off => {
                        return Err(JobError::Fatal(
                            "speech to text is off: no engine to transcribe voice notes".into(),
                        ));
                    }
                }
            }
        };
        let mut tx = ctx.begin(&self.pool).await.map_err(retry)?;
        // The log as linked now: `log-create` may have linked it while the text was read.
        let linked: Option<Option<Uuid>> = sqlx::query_scalar(
            "update public.attachments set extracted_text = $2, status = 'processed', error = null \
             where id = $1 returning time_log_id",
        )
        .bind(id)
        .bind(&text)
        .fetch_optional(&mut *tx)
        .await
        .map_err(retry)?;
        if let Some(Some(log)) = linked {
            // Classified again with the text; a finalized log is the person's word and stays
            // as it is. The job is enqueued here, not left to the status trigger: the log may
            // still be `pending` from its first classification, which is running right now
            // without this text and must be followed by one that has it.
            sqlx::query(
                "with l as (update public.time_logs set status = 'pending' \
                            where id = $1 and deleted_at is null and status <> 'finalized' \
                            returning id, org_id) \
                 select private.enqueue_job('classify_log', jsonb_build_object('log_id', l.id), \
                                            l.org_id, l.id::text, priority => 10::smallint) \
                 from l",
            )
            .bind(log)
            .execute(&mut *tx)
            .await
            .map_err(retry)?;
        }
        tx.commit().await.map_err(retry)?;
        Ok(())
    }

    /// Names that steer transcription: the org's projects.
    async fn prompt(&self, org: Uuid) -> Result<String, sqlx::Error> {
        let mut tx = RequestContext::service().begin(&self.pool).await?;
        let names: Option<String> = sqlx::query_scalar(
            "select string_agg(name, ', ' order by name) from public.projects \
             where org_id = $1 and archived_at is null and deleted_at is null",
        )
        .bind(org)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(names
            .map(|n| format!("A time log. Projects: {n}."))
            .unwrap_or_default())
    }
}

impl JobHandler for ExtractAttachmentJob {
    type Payload = ExtractAttachment;

    fn run<'a>(
        &'a self,
        job: ExtractAttachment,
        _: &'a Job,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move { self.extract(job.attachment_id).await })
    }

    fn dead<'a>(&'a self, job: &'a Job, error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(ExtractAttachment { attachment_id: id }) = job.payload_as() else {
                return;
            };
            let failed = async {
                let mut tx = RequestContext::service().begin(&self.pool).await?;
                sqlx::query(
                    "update public.attachments set status = 'failed', error = $2 where id = $1",
                )
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            }
            .await;
            if let Err(e) = failed {
                tracing::error!(error = %e, attachment = %id, "could not mark an attachment failed");
            }
        })
    }
}
