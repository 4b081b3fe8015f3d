//! The job that processes stored external events: `received` → `processed`, or `failed`
//! (retried with backoff) and finally `dead`, with the error kept for admins to read.

use sqlx::{PgConnection, PgPool};
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Handler, Job, JobError, NewJob, enqueue};
use uuid::Uuid;

use super::{Failure, Source, apply};

/// The job kind.
pub const PROCESS_EVENT: &str = "process_external_event";

/// Enqueues the processing of event `id` (in the caller's transaction).
pub async fn schedule(conn: &mut PgConnection, org: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    let job = NewJob::new(PROCESS_EVENT, serde_json::json!({ "event_id": id }))
        .org(org)
        .dedupe(id.to_string())
        .max_attempts(6);
    enqueue(conn, &job).await.map(drop)
}

/// What processing one event came to.
pub enum Outcome {
    /// Done; what happened, in words.
    Processed(String),
    /// It will never work; why.
    Dead(String),
    /// Worth another attempt; why.
    Failed(String),
}

/// Processes stored event `id` inside `tx` (a savepoint keeps a failure's partial work out)
/// and records the outcome on the event. Events already processed are left alone.
pub async fn run(conn: &mut PgConnection, id: Uuid) -> Result<Option<Outcome>, sqlx::Error> {
    let row: Option<(Uuid, Uuid, String, String, serde_json::Value, String)> = sqlx::query_as(
        "select e.integration_id, e.org_id, i.provider::text, e.event_type, e.payload, e.status::text \
         from public.external_events e join public.integrations i on i.id = e.integration_id \
         where e.id = $1 for update of e",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((integration, org, provider, event_type, payload, status)) = row else {
        return Ok(None);
    };
    if status == "processed" || status == "dead" {
        return Ok(None);
    }
    let source = Source {
        id: integration,
        org,
        provider,
    };
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    let result = apply(&mut savepoint, &source, &event_type, &payload).await;
    let outcome = match result {
        Ok(done) => {
            savepoint.commit().await?;
            Outcome::Processed(done)
        }
        Err(failure) => {
            savepoint.rollback().await?;
            match failure {
                Failure::Permanent(why) => Outcome::Dead(why),
                Failure::Database(e) => Outcome::Failed(e.to_string()),
            }
        }
    };
    let (status, error) = match &outcome {
        Outcome::Processed(_) => ("processed", None),
        Outcome::Dead(why) => ("dead", Some(why.as_str())),
        Outcome::Failed(why) => ("failed", Some(why.as_str())),
    };
    sqlx::query(
        "update public.external_events set status = $2::public.event_status, error = $3, \
                attempts = attempts + 1, \
                processed_at = case when $2 = 'processed' then now() else processed_at end \
         where id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(Some(outcome))
}

/// The worker side of [`PROCESS_EVENT`].
pub struct ProcessEventJob {
    pool: PgPool,
}

impl ProcessEventJob {
    /// A handler over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn event_id(job: &Job) -> Result<Uuid, JobError> {
    job.payload["event_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::Fatal("the job has no event_id".into()))
}

impl Handler for ProcessEventJob {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let id = event_id(job)?;
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            let outcome = run(&mut tx, id).await?;
            tx.commit().await?;
            match outcome {
                Some(Outcome::Dead(why)) => Err(JobError::Fatal(why)),
                Some(Outcome::Failed(why)) => Err(JobError::Retry(why)),
                _ => Ok(()),
            }
        })
    }

    fn dead<'a>(&'a self, job: &'a Job, error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(id) = event_id(job) else { return };
            let marked = async {
                let mut tx = RequestContext::service().begin(&self.pool).await?;
                sqlx::query(
                    "update public.external_events set status = 'dead', error = coalesce(error, $2) \
                     where id = $1 and status <> 'processed'",
                )
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            };
            if let Err(e) = marked.await {
                tracing::error!(error = %e, event = %id, "could not mark the event dead");
            }
        })
    }
}
