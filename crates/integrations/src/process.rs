//! The job that processes stored external events: `received` → `processed`, or `failed`
//! (retried with backoff) and finally `dead`, with the error kept for admins to read.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, NewJob, Payload, enqueue};
use uuid::Uuid;

use super::{Egress, Failure, Source, Tools, apply, mark_dead, slack::Reply};

/// A `process_external_event` job: one stored event to process.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProcessEvent {
    /// The stored event.
    pub event_id: Uuid,
}

impl Payload for ProcessEvent {
    const KIND: &'static str = "process_external_event";
}

/// Enqueues the processing of event `id` (in the caller's transaction).
pub async fn schedule(conn: &mut PgConnection, org: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    let job = NewJob::of(&ProcessEvent { event_id: id })?
        .org(org)
        .dedupe(id.to_string())
        .max_attempts(6);
    enqueue(conn, &job).await.map(drop)
}

/// A stored event and its integration.
#[derive(sqlx::FromRow)]
struct Stored {
    integration_id: Uuid,
    org_id: Uuid,
    provider: String,
    config: serde_json::Value,
    event_type: String,
    payload: serde_json::Value,
    status: String,
    created_at: chrono::DateTime<chrono::Utc>,
    token_sealed: Option<Vec<u8>>,
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

/// An event's outcome, and the answer its sender awaits once it is committed (a Slack
/// mention or direct message).
pub struct Done {
    /// What processing came to.
    pub outcome: Outcome,
    /// Where to tell the sender.
    pub reply: Option<Reply>,
}

impl Done {
    /// Tells the sender what became of the event (not when it will be retried).
    pub async fn answer(self, http: &Egress) {
        if let (Some(reply), Outcome::Processed(text) | Outcome::Dead(text)) =
            (self.reply, &self.outcome)
        {
            reply.send(http, text).await;
        }
    }
}

/// Processes stored event `id` inside `tx` (a savepoint keeps a failure's partial work out)
/// and records the outcome on the event. Events already processed are left alone.
pub async fn run(
    conn: &mut PgConnection,
    id: Uuid,
    tools: &Tools,
) -> Result<Option<Done>, sqlx::Error> {
    let row: Option<Stored> = sqlx::query_as(
        "select e.integration_id, e.org_id, i.provider::text as provider, i.config, e.event_type, \
                e.payload, e.status::text as status, e.created_at, s.token_sealed \
         from public.external_events e join public.integrations i on i.id = e.integration_id \
         left join private.integration_secrets s on s.integration_id = i.id \
         where e.id = $1 for update of e",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(stored) = row else {
        return Ok(None);
    };
    if stored.status == "processed" || stored.status == "dead" {
        return Ok(None);
    }
    let token = match &stored.token_sealed {
        Some(sealed) => tools.secrets.open_token(stored.integration_id, sealed).ok(),
        None => None,
    };
    let (event_type, payload) = (stored.event_type, stored.payload);
    let source = Source {
        id: stored.integration_id,
        org: stored.org_id,
        provider: stored.provider,
        config: stored.config,
        token,
        http: tools.http.clone(),
        received_at: stored.created_at,
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
                Failure::Transient(why) => Outcome::Failed(why),
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
    let reply = Reply::to(&source, &event_type, &payload);
    Ok(Some(Done { outcome, reply }))
}

/// The worker side of [`PROCESS_EVENT`].
pub struct ProcessEventJob {
    pool: PgPool,
    tools: Tools,
}

impl ProcessEventJob {
    /// A handler over `pool`, calling providers with `tools`.
    pub fn new(pool: PgPool, tools: Tools) -> Self {
        Self { pool, tools }
    }
}

impl JobHandler for ProcessEventJob {
    type Payload = ProcessEvent;

    fn run<'a>(&'a self, job: ProcessEvent, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let id = job.event_id;
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            let Some(done) = run(&mut tx, id, &self.tools).await? else {
                return Ok(());
            };
            tx.commit().await?;
            let result = match &done.outcome {
                Outcome::Dead(why) => Err(JobError::Fatal(why.clone())),
                Outcome::Failed(why) => Err(JobError::Retry(why.clone())),
                Outcome::Processed(_) => Ok(()),
            };
            done.answer(&self.tools.http).await;
            result
        })
    }

    fn dead<'a>(&'a self, job: &'a Job, error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(ProcessEvent { event_id: id }) = job.payload_as() {
                let update = "update public.external_events set status = 'dead', \
                              error = coalesce(error, $2) where id = $1 and status <> 'processed'";
                mark_dead(&self.pool, update, id, error).await;
            }
        })
    }
}
