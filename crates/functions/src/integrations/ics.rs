//! ICS feeds: every 15 minutes (schedule `integrations.poll_ics`) each enabled calendar
//! integration with `config.ics_url` is fetched and parsed; each meeting of the last
//! `TALLY_ICS_LOOKBACK_DAYS` (up to a day ahead) is stored as an external event keyed by its
//! uid and content, so an unchanged meeting is stored once and a moved one again — and the
//! processing job moves its drafts.

use chrono::{Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Handler, Job, JobError};
use uuid::Uuid;

use super::{meeting::parse_ics, process};

/// The job kind (scheduled by the migration `integrations`).
pub const POLL_ICS: &str = "poll_ics_feeds";

/// The largest feed read.
const MAX_FEED_BYTES: usize = 5 * 1024 * 1024;

/// The worker side of [`POLL_ICS`].
pub struct PollIcsJob {
    pool: PgPool,
    http: reqwest::Client,
    lookback_days: u32,
}

impl PollIcsJob {
    /// A handler over `pool`, fetching with `http`.
    pub fn new(pool: PgPool, http: reqwest::Client, lookback_days: u32) -> Self {
        Self {
            pool,
            http,
            lookback_days,
        }
    }

    async fn fetch(&self, url: &str) -> Result<String, String> {
        let mut res = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("fetching the feed failed: {e}"))?;
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("reading the feed failed: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_FEED_BYTES {
                return Err("the feed is larger than 5 MiB".into());
            }
        }
        String::from_utf8(body).map_err(|_| "the feed is not UTF-8".into())
    }

    /// Polls one feed; returns how many new or changed meetings were stored.
    async fn poll(&self, integration: Uuid, org: Uuid, url: &str) -> Result<usize, String> {
        let text = self.fetch(url).await?;
        let meetings = parse_ics(&text).map_err(|e| format!("the feed is not iCalendar: {e}"))?;
        let now = Utc::now();
        let from = now - Duration::days(i64::from(self.lookback_days));
        let until = now + Duration::days(1);
        let mut stored = 0;
        let mut tx = RequestContext::service()
            .begin(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        for meeting in meetings
            .iter()
            .filter(|m| m.start >= from && m.start <= until && m.validate().is_ok())
        {
            let event = serde_json::to_value(meeting).map_err(|e| e.to_string())?;
            let digest = hex::encode(&Sha256::digest(event.to_string().as_bytes())[..12]);
            let id: Option<Uuid> = sqlx::query_scalar(
                "insert into public.external_events (org_id, integration_id, external_id, event_type, payload) \
                 values ($1, $2, $3, 'calendar_event', $4) \
                 on conflict (integration_id, external_id) do nothing returning id",
            )
            .bind(org)
            .bind(integration)
            .bind(format!("ics:{}:{digest}", meeting.uid))
            .bind(json!({ "id": format!("ics:{}", meeting.uid), "event": event }))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
            if let Some(id) = id {
                process::schedule(&mut tx, org, id)
                    .await
                    .map_err(|e| e.to_string())?;
                stored += 1;
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(stored)
    }
}

impl Handler for PollIcsJob {
    fn run<'a>(&'a self, _job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            let feeds: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
                "select id, org_id, config ->> 'ics_url' from public.integrations \
                 where provider = 'calendar' and enabled and config ? 'ics_url' order by id",
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            // One feed's failure does not stop the others; it is logged and tried next time.
            for (integration, org, url) in feeds {
                match self.poll(integration, org, &url).await {
                    Ok(stored) => tracing::info!(%integration, stored, "ICS feed polled"),
                    Err(error) => tracing::warn!(%integration, %error, "ICS feed not polled"),
                }
            }
            Ok(())
        })
    }
}
