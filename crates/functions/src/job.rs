//! The `classify_log` job: what the table's trigger enqueues for every pending log. It runs the
//! same code as `ai-classify`, as the service role; a log gone meanwhile is simply done.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, Payload};
use uuid::Uuid;

use crate::{classify, providers::Providers};

/// A `classify_log` job, which the table's trigger enqueues for every pending log.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClassifyLog {
    /// The log.
    pub log_id: Uuid,
}

impl Payload for ClassifyLog {
    const KIND: &'static str = "classify_log";
}

/// An `embed_log` job, which `log-finalize` enqueues when a corrected comment needs a new
/// vector.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmbedLog {
    /// The log.
    pub log_id: Uuid,
}

impl Payload for EmbedLog {
    const KIND: &'static str = "embed_log";
}

/// Runs `classify_log` jobs.
pub struct ClassifyLogJob {
    pool: PgPool,
    providers: Providers,
    review_threshold: f32,
}

impl ClassifyLogJob {
    /// A handler over the request pool.
    pub fn new(pool: PgPool, providers: Providers, review_threshold: f32) -> Self {
        Self {
            pool,
            providers,
            review_threshold,
        }
    }
}

/// Runs `embed_log` jobs.
pub struct EmbedLogJob {
    pool: PgPool,
    providers: Providers,
}

impl EmbedLogJob {
    /// A handler over the request pool.
    pub fn new(pool: PgPool, providers: Providers) -> Self {
        Self { pool, providers }
    }
}

impl JobHandler for EmbedLogJob {
    type Payload = EmbedLog;

    fn run<'a>(&'a self, job: EmbedLog, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            match classify::reembed(&self.pool, &self.providers.embeddings, job.log_id).await {
                Ok(()) => Ok(()),
                Err(e) if e.status == StatusCode::NOT_FOUND => Ok(()),
                Err(e) => Err(JobError::Retry(e.message)),
            }
        })
    }
}

impl JobHandler for ClassifyLogJob {
    type Payload = ClassifyLog;

    fn run<'a>(&'a self, job: ClassifyLog, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let id = job.log_id;
            let ctx = RequestContext::service();
            let classified =
                classify::classify(&self.pool, &self.providers, &ctx, id, self.review_threshold)
                    .await;
            match classified {
                Ok(_) => Ok(()),
                Err(e) if e.status == StatusCode::NOT_FOUND => Ok(()),
                Err(e) if e.status.is_client_error() => Err(JobError::Fatal(e.message)),
                Err(e) => Err(JobError::Retry(e.message)),
            }
        })
    }

    fn dead<'a>(&'a self, job: &'a Job, error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(ClassifyLog { log_id: id }) = job.payload_as()
                && let Err(e) = classify::mark_failed(&self.pool, id, error).await
            {
                tracing::error!(error = %e, log = %id, "could not mark a log failed");
            }
        })
    }
}
