//! Outbound webhooks: an integration whose `config.outbound` is `{"url", "events": [...]}`
//! receives the events it subscribes to (`log.created`, `log.finalized`, `log.deleted`,
//! `export.ready`) as signed POSTs. The database writes a `webhook_deliveries` row and a job
//! in the transaction that made the event (`private.emit_webhook`); this job sends it:
//!
//! ```text
//! POST <url>
//! X-Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! X-Tally-Event: log.created
//! X-Tally-Delivery: <delivery id>
//! {"id": <delivery id>, "event": "log.created", "created_at": ..., "data": {...}}
//! ```
//!
//! A 2xx is delivered. Anything else is retried with the queue's backoff (8 attempts); after
//! `TALLY_WEBHOOK_DISABLE_AFTER` failed attempts in a row the integration's deliveries are
//! switched off (`deliveries_disabled_at`) and what is still queued is skipped.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, Payload};
use uuid::Uuid;

use super::{Egress, SecretBox, egress, mark_dead, signature};

/// A `deliver_webhook` job, which `private.emit_webhook` enqueues with its delivery row.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverWebhook {
    /// The delivery.
    pub delivery_id: Uuid,
}

impl Payload for DeliverWebhook {
    const KIND: &'static str = "deliver_webhook";
}

/// The worker side of [`DELIVER_WEBHOOK`].
pub struct DeliverWebhookJob {
    pool: PgPool,
    secrets: SecretBox,
    http: Egress,
    disable_after: u32,
}

impl DeliverWebhookJob {
    /// A handler over `pool`, sending with `http`; `disable_after` failed attempts in a row
    /// switch an integration's deliveries off.
    pub fn new(pool: PgPool, secrets: SecretBox, http: Egress, disable_after: u32) -> Self {
        Self {
            pool,
            secrets,
            http,
            disable_after,
        }
    }
}

/// A delivery about to be sent.
#[derive(sqlx::FromRow)]
struct Pending {
    integration_id: Uuid,
    event: String,
    payload: Value,
    status: String,
    created_at: chrono::DateTime<Utc>,
    url: Option<String>,
    secret: Option<Vec<u8>>,
    active: bool,
}

impl DeliverWebhookJob {
    /// Records an attempt; returns whether the integration's deliveries are now switched off
    /// (then the delivery is dead at once).
    async fn record(
        &self,
        id: Uuid,
        status: &str,
        code: Option<i32>,
        error: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = RequestContext::service().begin(&self.pool).await?;
        let integration: Uuid = sqlx::query_scalar(
            "update public.webhook_deliveries set status = $2::public.delivery_status, \
                    attempts = attempts + 1, response_status = $3, error = $4, \
                    delivered_at = case when $2 = 'delivered' then now() end \
             where id = $1 returning integration_id",
        )
        .bind(id)
        .bind(status)
        .bind(code)
        .bind(error)
        .fetch_one(&mut *tx)
        .await?;
        let disabled = if status == "delivered" {
            sqlx::query("update public.integrations set delivery_failures = 0 where id = $1")
                .bind(integration)
                .execute(&mut *tx)
                .await?;
            false
        } else {
            let disabled: bool = sqlx::query_scalar(
                "update public.integrations set delivery_failures = delivery_failures + 1, \
                        deliveries_disabled_at = case when delivery_failures + 1 >= $2 \
                            then coalesce(deliveries_disabled_at, now()) else deliveries_disabled_at end \
                 where id = $1 returning deliveries_disabled_at is not null",
            )
            .bind(integration)
            .bind(i32::try_from(self.disable_after).unwrap_or(i32::MAX))
            .fetch_one(&mut *tx)
            .await?;
            if disabled {
                sqlx::query("update public.webhook_deliveries set status = 'dead' where id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            disabled
        };
        tx.commit().await?;
        Ok(disabled)
    }

    async fn skip(&self, id: Uuid, why: &str) -> Result<(), sqlx::Error> {
        let mut tx = RequestContext::service().begin(&self.pool).await?;
        sqlx::query(
            "update public.webhook_deliveries set status = 'skipped', error = $2 where id = $1",
        )
        .bind(id)
        .bind(why)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    async fn deliver(&self, id: Uuid) -> Result<(), JobError> {
        let mut tx = RequestContext::service().begin(&self.pool).await?;
        let pending: Option<Pending> = sqlx::query_as(
            "select d.integration_id, d.event, d.payload, d.status::text as status, d.created_at, \
                    i.config #>> '{outbound,url}' as url, s.sealed as secret, \
                    (i.enabled and i.deliveries_disabled_at is null) as active \
             from public.webhook_deliveries d join public.integrations i on i.id = d.integration_id \
             left join private.integration_secrets s on s.integration_id = i.id \
             where d.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(p) = pending else { return Ok(()) };
        if matches!(p.status.as_str(), "delivered" | "dead" | "skipped") {
            return Ok(());
        }
        if !p.active {
            self.skip(id, "deliveries are switched off for this integration")
                .await?;
            return Ok(());
        }
        let (Some(url), Some(sealed)) = (p.url, p.secret) else {
            self.skip(id, "the integration has no outbound url or no secret")
                .await?;
            return Ok(());
        };
        let secret = self
            .secrets
            .open(p.integration_id, &sealed)
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        let body = serde_json::to_vec(&json!({
            "id": id, "event": p.event, "created_at": p.created_at, "data": p.payload,
        }))
        .map_err(|e| JobError::Fatal(e.to_string()))?;
        let signed = signature::sign_tally(&secret, Utc::now().timestamp(), &body);
        let sent = match self.http.post(&url) {
            Ok(request) => request
                .header("content-type", "application/json")
                .header(signature::TALLY_SIGNATURE, signed)
                .header("x-tally-event", &p.event)
                .header("x-tally-delivery", id.to_string())
                .body(body)
                .send()
                .await
                .map_err(|e| format!("sending failed: {}", egress::explain(&e))),
            Err(refused) => Err(format!("not sent: {refused}")),
        };
        let (code, error) = match sent {
            Ok(res) if res.status().is_success() => {
                self.record(
                    id,
                    "delivered",
                    Some(i32::from(res.status().as_u16())),
                    None,
                )
                .await?;
                return Ok(());
            }
            Ok(res) => (
                Some(i32::from(res.status().as_u16())),
                format!("the receiver answered {}", res.status()),
            ),
            Err(why) => (None, why),
        };
        if self.record(id, "failed", code, Some(&error)).await? {
            tracing::warn!(delivery = %id, "webhook deliveries switched off after repeated failures");
            return Ok(());
        }
        Err(JobError::Retry(error))
    }
}

impl JobHandler for DeliverWebhookJob {
    type Payload = DeliverWebhook;

    fn run<'a>(&'a self, job: DeliverWebhook, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move { self.deliver(job.delivery_id).await })
    }

    fn dead<'a>(&'a self, job: &'a Job, error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(DeliverWebhook { delivery_id: id }) = job.payload_as() {
                let update = "update public.webhook_deliveries set status = 'dead', \
                              error = coalesce(error, $2) where id = $1 and status = 'failed'";
                mark_dead(&self.pool, update, id, error).await;
            }
        })
    }
}
