//! Integrations: events from Slack, Jira, calendars and custom tools in, signed webhooks out.
//!
//! - [`ingest`]: `POST /functions/v1/webhooks-ingest/{provider}/{integration_id}` — no user
//!   token; the provider's signature ([`signature`]) is checked before anything is stored,
//!   each event is stored once in `external_events` and processed by [`process`]'s job (a
//!   Slack command at once, to answer within Slack's 3 seconds).
//! - [`slack`], [`jira`], [`calendar`] (and [`graph`]), [`generic`]: each provider's bodies, and what its
//!   events do ([`drafts`] of time logs, [`meeting`]s).
//! - [`ics`]: the job polling ICS feeds; [`subscriptions`]: the job keeping Graph
//!   subscriptions alive. [`outbound`]: the delivery job of outbound webhooks.
//! - [`secret`]: signing secrets sealed at rest; [`manage`]: `integration-secret`.
//! - [`egress`]: the HTTP client for the URLs integrations name (public addresses only).
//!
//! The door: [`ingest::handle`] and [`manage::run`] (reaching [`Doors`]), their errors
//! ([`IntegrationError`]), and [`jobs`], which registers the four jobs.

pub mod calendar;
pub mod drafts;
pub mod egress;
mod error;
pub mod generic;
pub mod graph;
pub mod ics;
pub mod ingest;
pub mod jira;
pub mod manage;
pub mod meeting;
pub mod outbound;
pub mod process;
pub mod secret;
pub mod signature;
pub mod slack;
pub mod subscriptions;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tally_core::RequestContext;
use uuid::Uuid;

pub use egress::Egress;
pub use error::{IntegrationError, IntegrationResult};
pub use secret::SecretBox;

/// What can stop the integrations from being set up (at start, never per request).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting (the project's secret).
    #[error(transparent)]
    Config(#[from] tally_core::Error),
    /// The key that seals integrations' secrets.
    #[error(transparent)]
    Secrets(#[from] secret::SecretError),
    /// The HTTP client integrations call out with.
    #[error("the integrations' HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl Doors {
    /// The doors over the request pool, with `config`'s secret, egress rules and external URL.
    pub fn new(pool: PgPool, config: &tally_core::Config) -> Result<Self, SetupError> {
        Ok(Self {
            pool,
            tools: Tools {
                secrets: SecretBox::from_project_secret(&config.jwt_secret()?)?,
                http: Egress::from_settings(&config.integrations)?,
            },
            external_url: config.external_url(),
        })
    }
}

/// Registers the jobs this crate runs: processing stored events, polling ICS feeds, keeping
/// Graph subscriptions alive, delivering outbound webhooks. `lookback_days` and
/// `disable_after` are the ICS and delivery settings; `external_url` is where providers reach
/// Tally.
pub fn jobs(
    workers: tally_jobs::Workers,
    doors: &Doors,
    settings: &tally_core::config::IntegrationSettings,
) -> tally_jobs::Workers {
    let Doors {
        pool,
        tools,
        external_url,
    } = doors;
    workers
        .job(process::ProcessEventJob::new(pool.clone(), tools.clone()))
        .job(ics::PollIcsJob::new(
            pool.clone(),
            tools.http.clone(),
            settings.ics_lookback_days,
        ))
        .job(subscriptions::RenewGraphJob::new(
            pool.clone(),
            tools.secrets.clone(),
            tools.http.clone(),
            external_url.clone(),
        ))
        .job(outbound::DeliverWebhookJob::new(
            pool.clone(),
            tools.secrets.clone(),
            tools.http.clone(),
            settings.webhook_disable_after,
        ))
}

/// An event as received, before it is stored.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Unique per integration: a redelivery has the same id.
    pub external_id: String,
    /// What kind of event (`slash_command`, `worklog_created`, `calendar_event`, ...).
    pub event_type: String,
    /// The body, as stored.
    pub payload: Value,
}

/// What processing events may reach beyond the database: the sealed secrets' box, and the
/// HTTP client for providers' APIs.
#[derive(Clone)]
pub struct Tools {
    /// Opens the integration's API token.
    pub secrets: SecretBox,
    /// Calls the provider's API.
    pub http: Egress,
}

/// What the integrations' own doors (the webhook receiver, `integration-secret`) reach.
#[derive(Clone)]
pub struct Doors {
    /// The request pool.
    pub pool: sqlx::PgPool,
    /// Sealed secrets and the outbound HTTP client.
    pub tools: Tools,
    /// The URL providers reach Tally at.
    pub external_url: String,
}

/// The integration an event came through.
#[derive(Clone)]
pub struct Source {
    /// Its id.
    pub id: Uuid,
    /// Its organization.
    pub org: Uuid,
    /// Its provider (`slack`, `jira`, `calendar`, `generic`).
    pub provider: String,
    /// Its configuration.
    pub config: Value,
    /// Its API token (Slack's bot token, a Graph app's client secret), when one is set.
    pub token: Option<String>,
    /// For calls to the provider's API.
    pub http: Egress,
    /// When the event being processed was received (drafts keep the newest event's word).
    pub received_at: DateTime<Utc>,
}

impl Source {
    /// The member behind an external identity: an admin's mapping, else a member with this
    /// verified email (then remembered).
    pub async fn person(
        &self,
        conn: &mut PgConnection,
        external_id: &str,
        email: Option<&str>,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar("select private.integration_user($1, $2, $3)")
            .bind(self.id)
            .bind(external_id)
            .bind(email)
            .fetch_one(conn)
            .await
    }
}

/// Why an event could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// It never will be (nobody mapped, a value the database refuses): the event is dead.
    #[error("{0}")]
    Permanent(String),
    /// Worth another attempt (the database or the provider's API failed).
    #[error("{0}")]
    Transient(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        // Data and constraint errors (classes 22 and 23) and a closed period (PT423) will not
        // go away on a retry.
        match e.as_database_error().and_then(|d| d.code()) {
            Some(code) if code.starts_with("22") || code.starts_with("23") || code == "PT423" => {
                Self::Permanent(
                    e.as_database_error()
                        .map(|d| d.message().to_owned())
                        .unwrap_or_default(),
                )
            }
            _ => Self::Transient(format!("database: {e}")),
        }
    }
}

/// Does what a stored event means, on `conn` (the caller's transaction, as service role).
pub async fn apply(
    conn: &mut PgConnection,
    source: &Source,
    event_type: &str,
    payload: &Value,
) -> Result<String, Failure> {
    match source.provider.as_str() {
        "slack" => slack::apply(conn, source, event_type, payload).await,
        "jira" => jira::apply(conn, source, event_type, payload).await,
        "calendar" => calendar::apply(conn, source, event_type, payload).await,
        _ => generic::apply(conn, source, event_type, payload).await,
    }
}

/// A signed JSON webhook's body and its `id` (1 to 500 characters), the event's external id;
/// `what` names the body in the error.
fn json_with_id(body: &[u8], what: &str) -> Result<(Value, String), String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let id = body["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.len() <= 500)
        .ok_or_else(|| format!("{what} needs an id (1 to 500 characters)"))?
        .to_owned();
    Ok((body, id))
}

/// Runs `update` (`$1` the row's id, `$2` the error) when a job's last attempt failed; a
/// failure to record it is logged.
async fn mark_dead(pool: &PgPool, update: &'static str, id: Uuid, error: &str) {
    let marked = async {
        let mut tx = RequestContext::service().begin(pool).await?;
        sqlx::query(update)
            .bind(id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    };
    if let Err(e) = marked.await {
        tracing::error!(error = %e, %id, "could not mark a dead job's row");
    }
}
