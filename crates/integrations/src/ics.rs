//! ICS feeds: every 15 minutes (schedule `integrations.poll_ics`) each enabled calendar
//! integration with `config.ics_url` is fetched and parsed; the meetings of the last
//! `TALLY_ICS_LOOKBACK_DAYS` (up to a day ahead, recurring ones expanded) are compared with
//! what the feed held last time (`private.ics_events`): a new or changed meeting is stored as
//! an external event for the processing job, which creates or moves its drafts; a meeting
//! that left the feed is stored as cancelled, which removes them. Unchanged meetings store
//! nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, NewJob, Payload, enqueue};
use uuid::Uuid;

use super::{
    Egress, egress,
    meeting::{Meeting, parse_ics},
    process,
};

/// A `poll_ics_feeds` job: every feed (the schedule's, from the migration `integrations`), or
/// one.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PollIcsFeeds {
    /// The one feed's integration; none for all.
    #[serde(default)]
    pub integration_id: Option<Uuid>,
}

impl Payload for PollIcsFeeds {
    const KIND: &'static str = "poll_ics_feeds";
}

/// The largest feed read.
const MAX_FEED_BYTES: usize = 5 * 1024 * 1024;

/// The worker side of [`PollIcsFeeds`].
pub struct PollIcsJob {
    pool: PgPool,
    http: Egress,
    lookback_days: u32,
}

impl PollIcsJob {
    /// A handler over `pool`, fetching with `http`.
    pub fn new(pool: PgPool, http: Egress, lookback_days: u32) -> Self {
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
            .map_err(|refused| format!("the feed is not fetched: {refused}"))?
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("fetching the feed failed: {}", egress::explain(&e)))?;
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

    /// Polls one feed; returns how many new, changed or vanished meetings were stored.
    async fn poll(&self, integration: Uuid, org: Uuid, url: &str) -> Result<usize, String> {
        let text = self.fetch(url).await?;
        let now = Utc::now();
        let from = now - Duration::days(i64::from(self.lookback_days));
        let until = now + Duration::days(1);
        let meetings =
            parse_ics(&text, from, until).map_err(|e| format!("the feed is not iCalendar: {e}"))?;
        let mut tx = RequestContext::service()
            .begin(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        let known: HashMap<String, (String, DateTime<Utc>)> =
            sqlx::query_as::<_, (String, String, DateTime<Utc>)>(
                "select uid, digest, starts_at from private.ics_events where integration_id = $1",
            )
            .bind(integration)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(uid, digest, start)| (uid, (digest, start)))
            .collect();
        let mut stored = 0;
        let mut present = HashSet::new();
        for meeting in meetings.iter().filter(|m| m.validate().is_ok()) {
            present.insert(meeting.uid.as_str());
            let event = serde_json::to_value(meeting).map_err(|e| e.to_string())?;
            let digest = hex::encode(&Sha256::digest(event.to_string().as_bytes())[..12]);
            if known.get(&meeting.uid).is_some_and(|(d, _)| *d == digest) {
                continue;
            }
            sqlx::query(
                "insert into private.ics_events (integration_id, uid, digest, starts_at) values ($1, $2, $3, $4) \
                 on conflict (integration_id, uid) do update set digest = excluded.digest, starts_at = excluded.starts_at",
            )
            .bind(integration)
            .bind(&meeting.uid)
            .bind(&digest)
            .bind(meeting.start)
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
            store(&mut tx, org, integration, &meeting.uid, &digest, event, now).await?;
            stored += 1;
        }
        // Meetings gone from the feed: those still in the window were deleted, so their
        // drafts go; those before it merely aged out of the feed's window.
        for (uid, (_, start)) in known
            .iter()
            .filter(|(uid, _)| !present.contains(uid.as_str()))
        {
            if *start >= from {
                let gone = Meeting {
                    uid: uid.clone(),
                    title: String::new(),
                    start: *start,
                    end: *start + Duration::minutes(1),
                    cancelled: true,
                    attendees: Vec::new(),
                };
                let event = serde_json::to_value(&gone).map_err(|e| e.to_string())?;
                store(&mut tx, org, integration, uid, "removed", event, now).await?;
                stored += 1;
            }
            sqlx::query("delete from private.ics_events where integration_id = $1 and uid = $2")
                .bind(integration)
                .bind(uid)
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(stored)
    }
}

/// Stores one meeting of a feed as an external event (unique per poll) and schedules it.
async fn store(
    conn: &mut PgConnection,
    org: Uuid,
    integration: Uuid,
    uid: &str,
    version: &str,
    event: serde_json::Value,
    polled: DateTime<Utc>,
) -> Result<(), String> {
    let id: Uuid = sqlx::query_scalar(
        "insert into public.external_events (org_id, integration_id, external_id, event_type, payload) \
         values ($1, $2, $3, 'calendar_event', $4) returning id",
    )
    .bind(org)
    .bind(integration)
    .bind(format!("ics:{uid}:{version}:{}", polled.timestamp_micros()))
    .bind(json!({ "id": format!("ics:{uid}"), "event": event }))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    process::schedule(conn, org, id)
        .await
        .map_err(|e| e.to_string())
}

impl JobHandler for PollIcsJob {
    type Payload = PollIcsFeeds;

    /// The schedule's job (no payload) queues one job per feed, so a slow or failing feed
    /// neither holds up nor fails the others; each feed's job polls it, retried with backoff.
    fn run<'a>(&'a self, job: PollIcsFeeds, _: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            let one = job.integration_id;
            let feeds: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
                "select id, org_id, config ->> 'ics_url' from public.integrations \
                 where provider = 'calendar' and enabled and config ? 'ics_url' \
                   and ($1::uuid is null or id = $1) order by id",
            )
            .bind(one)
            .fetch_all(&mut *tx)
            .await?;
            if one.is_none() {
                for (integration, org, _) in &feeds {
                    let each = NewJob::of(&PollIcsFeeds {
                        integration_id: Some(*integration),
                    })?
                    .org(*org)
                    .dedupe(format!("ics:{integration}"))
                    .max_attempts(3);
                    enqueue(&mut tx, &each).await?;
                }
                tx.commit().await?;
                return Ok(());
            }
            tx.commit().await?;
            for (integration, org, url) in feeds {
                let polled = self.poll(integration, org, &url).await;
                // Admins read how the feed fares on the integration's row.
                let mut tx = RequestContext::service().begin(&self.pool).await?;
                sqlx::query(
                    "update public.integrations set \
                        polled_at = case when $2::text is null then now() else polled_at end, \
                        poll_error = $2 where id = $1",
                )
                .bind(integration)
                .bind(polled.as_ref().err())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let stored = polled.map_err(|error| {
                    tracing::warn!(%integration, %error, "ICS feed not polled");
                    JobError::Retry(error)
                })?;
                tracing::info!(%integration, stored, "ICS feed polled");
            }
            Ok(())
        })
    }
}
