//! Keeping Microsoft Graph subscriptions alive. Graph sends change notifications only while a
//! subscription lasts (about three days for calendar events), so for each calendar integration
//! with a Graph app and `config.graph.resources` (the calendars to watch, such as
//! `users/ann@contoso.com/events`) the job [`RenewGraphSubscriptions`] creates a subscription per calendar
//! — Graph first checks the webhook URL with its `validationToken` handshake —, renews it a day
//! before it ends, creates it anew when Graph lost it, and deletes it when its calendar leaves
//! the settings or the integration is switched off. It runs when the settings or credentials
//! change and every 30 minutes; admins read how it fares on the integration's row
//! (`polled_at`, `poll_error`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Job, JobError, JobHandler, NewJob, Payload, enqueue};
use uuid::Uuid;

use super::{Egress, SecretBox, egress, graph::GraphApp};

/// A `renew_graph_subscriptions` job (queued by the schedule
/// `integrations.graph_subscriptions` for every integration, and by changes of an
/// integration's settings or credentials for one).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RenewGraphSubscriptions {
    /// The one integration; none for all.
    #[serde(default)]
    pub integration_id: Option<Uuid>,
}

impl Payload for RenewGraphSubscriptions {
    const KIND: &'static str = "renew_graph_subscriptions";
}

/// How long a subscription is asked for: Graph's limit for calendar events.
const LIFETIME_MINUTES: i64 = 4230;

/// A subscription ending sooner than this is renewed.
const RENEW_WITHIN_HOURS: i64 = 24;

/// The worker side of [`RenewGraphSubscriptions`].
pub struct RenewGraphJob {
    pool: PgPool,
    secrets: SecretBox,
    http: Egress,
    external_url: String,
}

impl RenewGraphJob {
    /// A handler over `pool`, calling Graph with `http`; webhook URLs start with
    /// `external_url` (the API's public address).
    pub fn new(pool: PgPool, secrets: SecretBox, http: Egress, external_url: String) -> Self {
        Self {
            pool,
            secrets,
            http,
            external_url,
        }
    }
}

/// A calendar integration and its sealed credentials.
#[derive(sqlx::FromRow)]
struct Target {
    id: Uuid,
    org_id: Uuid,
    enabled: bool,
    config: Value,
    sealed: Option<Vec<u8>>,
    token_sealed: Option<Vec<u8>>,
}

/// A subscription Tally made: its calendar, Graph's id, when it ends.
type Known = (String, String, DateTime<Utc>);

impl RenewGraphJob {
    /// Brings `target`'s subscriptions in line with its settings; returns how many were
    /// created, renewed or deleted. A calendar Graph refuses does not hold up the others.
    async fn sync(&self, target: &Target) -> Result<usize, String> {
        let known: Vec<Known> = async {
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            let known = sqlx::query_as(
                "select resource, subscription_id, expires_at from private.graph_subscriptions \
                 where integration_id = $1",
            )
            .bind(target.id)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(known)
        }
        .await
        .map_err(|e| e.to_string())?;
        let mut wanted: Vec<String> = if target.enabled {
            target.config["graph"]["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(|r| r.trim().trim_matches('/').to_owned()))
                .filter(|r| !r.is_empty())
                .collect()
        } else {
            Vec::new()
        };
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() && known.is_empty() {
            return Ok(0);
        }
        let token = target
            .token_sealed
            .as_ref()
            .and_then(|t| self.secrets.open_token(target.id, t).ok());
        let app = GraphApp::from_config(&target.config, token.as_deref()).ok_or(
            "a Graph subscription needs config.graph {tenant_id, client_id} and the app's \
             client secret as the integration's api_token",
        )?;
        let client_state = target
            .sealed
            .as_ref()
            .and_then(|s| self.secrets.open(target.id, s).ok())
            .ok_or("no signing secret yet: set one with integration-secret")?;
        let bearer = app.token(&self.http).await.map_err(|e| e.to_string())?;
        let graph = Graph {
            app: &app,
            http: &self.http,
            bearer: &bearer,
        };
        let url = format!(
            "{}/functions/v1/webhooks-ingest/graph/{}",
            self.external_url, target.id
        );
        let renew_before = Utc::now() + Duration::hours(RENEW_WITHIN_HOURS);
        let (mut changed, mut errors) = (0, Vec::new());
        for resource in &wanted {
            let current = known.iter().find(|(r, _, _)| r == resource);
            if current.is_some_and(|(_, _, ends)| *ends > renew_before) {
                continue;
            }
            let made = async {
                let renewed = match current {
                    Some((_, id, _)) => graph.renew(id).await?,
                    None => None,
                };
                let (id, ends) = match renewed {
                    Some(renewed) => renewed,
                    None => graph.create(resource, &url, &client_state).await?,
                };
                self.record(target.id, resource, Some((&id, ends))).await
            };
            match made.await {
                Ok(()) => changed += 1,
                Err(e) => errors.push(e),
            }
        }
        for (resource, id, _) in known.iter().filter(|(r, _, _)| !wanted.contains(r)) {
            let gone = async {
                graph.delete(id).await?;
                self.record(target.id, resource, None).await
            };
            match gone.await {
                Ok(()) => changed += 1,
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(changed)
        } else {
            Err(errors.join("; "))
        }
    }

    /// Stores (or, with `None`, forgets) the subscription of `resource`.
    async fn record(
        &self,
        integration: Uuid,
        resource: &str,
        subscription: Option<(&str, DateTime<Utc>)>,
    ) -> Result<(), String> {
        let query = match subscription {
            Some((id, ends)) => sqlx::query(
                "insert into private.graph_subscriptions (integration_id, resource, subscription_id, expires_at) \
                 values ($1, $2, $3, $4) on conflict (integration_id, resource) \
                 do update set subscription_id = excluded.subscription_id, expires_at = excluded.expires_at",
            )
            .bind(integration)
            .bind(resource)
            .bind(id)
            .bind(ends),
            None => sqlx::query(
                "delete from private.graph_subscriptions where integration_id = $1 and resource = $2",
            )
            .bind(integration)
            .bind(resource),
        };
        async {
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            query.execute(&mut *tx).await?;
            tx.commit().await
        }
        .await
        .map_err(|e| e.to_string())
    }

    /// Queues one job per integration that has or had Graph subscriptions.
    async fn fan_out(&self) -> Result<(), JobError> {
        let mut tx = RequestContext::service().begin(&self.pool).await?;
        let targets: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "select i.id, i.org_id from public.integrations i where i.provider = 'calendar' \
               and (i.config ? 'graph' or exists \
                    (select 1 from private.graph_subscriptions s where s.integration_id = i.id)) \
             order by i.id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (integration, org) in targets {
            let each = NewJob::of(&RenewGraphSubscriptions {
                integration_id: Some(integration),
            })?
            .org(org)
            .dedupe(format!("graph:{integration}"))
            .max_attempts(3);
            enqueue(&mut tx, &each).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Graph's `/subscriptions`, with an app token.
struct Graph<'a> {
    app: &'a GraphApp,
    http: &'a Egress,
    bearer: &'a str,
}

impl Graph<'_> {
    /// Creates the subscription of `resource` notifying `url`; returns its id and end.
    async fn create(
        &self,
        resource: &str,
        url: &str,
        client_state: &str,
    ) -> Result<(String, DateTime<Utc>), String> {
        let body = json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": url,
            "resource": resource,
            "expirationDateTime": ends(),
            "clientState": client_state,
        });
        let (status, answer) = self.call(Method::POST, "subscriptions", Some(body)).await?;
        if !status.is_success() {
            return Err(refusal(
                "create the subscription of",
                resource,
                status,
                &answer,
            ));
        }
        read(&answer)
    }

    /// Extends subscription `id`; `None` when Graph no longer has it.
    async fn renew(&self, id: &str) -> Result<Option<(String, DateTime<Utc>)>, String> {
        let path = format!("subscriptions/{id}");
        let body = json!({ "expirationDateTime": ends() });
        let (status, answer) = self.call(Method::PATCH, &path, Some(body)).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => read(&answer).map(Some),
            s => Err(refusal("renew subscription", id, s, &answer)),
        }
    }

    /// Deletes subscription `id` (one Graph no longer has is as good as deleted).
    async fn delete(&self, id: &str) -> Result<(), String> {
        let (status, answer) = self
            .call(Method::DELETE, &format!("subscriptions/{id}"), None)
            .await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(refusal("delete subscription", id, status, &answer))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut request = self
            .http
            .request(method, &self.app.url(path))
            .map_err(|refused| format!("Graph is not called: {refused}"))?
            .bearer_auth(self.bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request
            .send()
            .await
            .map_err(|e| format!("Graph is unreachable: {}", egress::explain(&e)))?;
        let status = res.status();
        // An empty answer (204) reads as null.
        let answer = res.json().await.unwrap_or(Value::Null);
        Ok((status, answer))
    }
}

/// When a subscription asked for now should end.
fn ends() -> String {
    (Utc::now() + Duration::minutes(LIFETIME_MINUTES)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A subscription's id and end from Graph's answer.
fn read(answer: &Value) -> Result<(String, DateTime<Utc>), String> {
    let id = answer["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or("Graph's answer has no subscription id")?;
    let ends = answer["expirationDateTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or("Graph's answer has no expirationDateTime")?;
    Ok((id.to_owned(), ends.with_timezone(&Utc)))
}

/// Graph's refusal in words, with its own message (`error.message`) when it gave one.
fn refusal(what: &str, which: &str, status: StatusCode, answer: &Value) -> String {
    let message = answer["error"]["message"].as_str().unwrap_or("no message");
    format!("Graph would not {what} {which}: {status}: {message}")
}

impl JobHandler for RenewGraphJob {
    type Payload = RenewGraphSubscriptions;

    /// The schedule's job (no payload) queues one job per integration; each integration's job
    /// brings its subscriptions in line, retried with backoff.
    fn run<'a>(
        &'a self,
        job: RenewGraphSubscriptions,
        _: &'a Job,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let Some(one) = job.integration_id else {
                return self.fan_out().await;
            };
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            let target: Option<Target> = sqlx::query_as(
                "select i.id, i.org_id, i.enabled, i.config, s.sealed, s.token_sealed \
                 from public.integrations i \
                 left join private.integration_secrets s on s.integration_id = i.id \
                 where i.id = $1 and i.provider = 'calendar'",
            )
            .bind(one)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            let Some(target) = target else {
                return Ok(());
            };
            let synced = self.sync(&target).await;
            let mut tx = RequestContext::service().begin(&self.pool).await?;
            sqlx::query(
                "update public.integrations set \
                    polled_at = case when $2::text is null then now() else polled_at end, \
                    poll_error = $2 where id = $1",
            )
            .bind(target.id)
            .bind(synced.as_ref().err())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let changed = synced.map_err(|error| {
                tracing::warn!(integration = %target.id, org = %target.org_id, %error, "Graph subscriptions not renewed");
                JobError::Retry(error)
            })?;
            tracing::info!(integration = %target.id, changed, "Graph subscriptions in line");
            Ok(())
        })
    }
}
