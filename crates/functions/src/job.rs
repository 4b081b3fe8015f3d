//! The `classify_log` job: what the table's trigger enqueues for every pending log. It runs the
//! same code as `ai-classify`, as the service role; a log gone meanwhile is simply done.

use axum::http::StatusCode;
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Handler, Job, JobError};
use uuid::Uuid;

use crate::{classify, providers::Providers};

/// The job kind the trigger enqueues.
pub const CLASSIFY_LOG: &str = "classify_log";

/// The job kind `log-finalize` enqueues when a corrected comment needs a new vector.
pub const EMBED_LOG: &str = "embed_log";

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

impl Handler for EmbedLogJob {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            match classify::reembed(&self.pool, &self.providers.embeddings, log_id(job)?).await {
                Ok(()) => Ok(()),
                Err(e) if e.status == StatusCode::NOT_FOUND => Ok(()),
                Err(e) => Err(JobError::Retry(e.message)),
            }
        })
    }
}

fn log_id(job: &Job) -> Result<Uuid, JobError> {
    job.payload["log_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::Fatal("the payload has no log_id".into()))
}

impl Handler for ClassifyLogJob {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let id = log_id(job)?;
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
            if let Ok(id) = log_id(job)
                && let Err(e) = classify::mark_failed(&self.pool, id, error).await
            {
                tracing::error!(error = %e, log = %id, "could not mark a log failed");
            }
        })
    }
}
