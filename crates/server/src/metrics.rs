//! `GET /metrics`: the process's metrics in Prometheus' text format — HTTP requests by service,
//! route and status class (count, latency, in flight), the job queue (waiting by kind, the
//! oldest wait, dead jobs; finished and timed by the workers), the classification pipeline
//! (latency, outcomes), the request pool, auth events and rate limits, storage bytes, and
//! realtime's connections, channels, messages and change-to-send latency.
//!
//! It is privileged, as Supabase's metrics endpoint is: on the API's port it answers only the
//! service_role key (`Authorization: Bearer <key>`, or Basic `service_role:<key>`); with
//! `TALLY_METRICS_ADDR` it is also served, keyless, on a listener of its own (for a
//! Prometheus on a private network) — by `tally worker` too.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, OnceLock},
    time::Instant,
};

use axum::{
    Json, Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use base64::Engine;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sqlx::PgPool;
use tally_core::{JwtKeys, RequestContext};

/// Latency buckets in seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// The services a request may belong to (the first segment of its path).
const SERVICES: [&str; 6] = ["auth", "rest", "storage", "realtime", "functions", "server"];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it), with the series an
/// operator looks for first present from the start.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        for service in SERVICES {
            metrics::gauge!("tally_http_requests_in_flight", "service" => service).set(0.0);
        }
        handle
    })
}

/// The service of a path: `/rest/v1/…` is `rest`; the server's own routes are `server`.
fn service_of(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    SERVICES
        .iter()
        .find(|s| **s == first)
        .copied()
        .unwrap_or("server")
}

/// Where the route layer writes the matched route for [`track`] to read.
#[derive(Clone, Default)]
struct RouteSlot(Arc<Mutex<Option<String>>>);

/// Middleware on every request: counts it by service, route pattern, method and status class,
/// times it, and keeps the in-flight gauge. Requests no route matched count as `unmatched`.
pub async fn track(mut request: Request, next: Next) -> Response {
    let service = service_of(request.uri().path());
    let method = request.method().to_string();
    let slot = RouteSlot::default();
    request.extensions_mut().insert(slot.clone());
    let in_flight = metrics::gauge!("tally_http_requests_in_flight", "service" => service);
    in_flight.increment(1.0);
    let started = Instant::now();
    let response = next.run(request).await;
    in_flight.decrement(1.0);
    let route = slot
        .0
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = format!("{}xx", response.status().as_u16() / 100);
    metrics::counter!("tally_http_requests_total",
        "service" => service, "route" => route.clone(), "method" => method, "status" => status)
    .increment(1);
    metrics::histogram!("tally_http_request_duration_seconds",
        "service" => service, "route" => route)
    .record(started.elapsed().as_secs_f64());
    response
}

/// Route layer of each service's router: tells [`track`] the route pattern that matched
/// (`/rest/v1/{*path}`, `/auth/v1/admin/users/{id}`), never the path itself.
pub async fn route(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    if let (Some(matched), Some(slot)) = (matched, request.extensions().get::<RouteSlot>())
        && let Ok(mut route) = slot.0.lock()
    {
        *route = Some(matched.as_str().to_owned());
    }
    next.run(request).await
}

/// The router of `GET /metrics` on the API's port: for the service_role key only.
pub fn router(keys: JwtKeys, pool: PgPool) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state((keys, pool))
}

async fn metrics(State((keys, pool)): State<(JwtKeys, PgPool)>, headers: HeaderMap) -> Response {
    if !privileged(&keys, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"metrics\"")],
            Json(json!({
                "message": "The metrics are for the service_role key",
                "hint": "Send it as a bearer token, or as Basic service_role:<key>",
            })),
        )
            .into_response();
    }
    render(&pool).await
}

/// Whether `headers` carry the service_role key, as a bearer token or as Basic
/// `service_role:<key>` (what Supabase's metrics endpoint takes).
fn privileged(keys: &JwtKeys, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let token = if let Some(basic) = value.strip_prefix("Basic ") {
        let Some(decoded) = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
        else {
            return false;
        };
        match decoded.split_once(':') {
            Some(("service_role", key)) => key.to_owned(),
            _ => return false,
        }
    } else if let Some(bearer) = value.strip_prefix("Bearer ") {
        bearer.trim().to_owned()
    } else {
        return false;
    };
    keys.verify(&token)
        .is_ok_and(|claims| claims.role() == Some("service_role"))
}

/// The keyless router of `TALLY_METRICS_ADDR`: `GET /metrics` alone.
pub fn private_router(pool: PgPool) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(pool): State<PgPool>| async move { render(&pool).await }),
        )
        .with_state(pool)
}

/// Reads what is measured at scrape time (the queue, the pool), then renders every metric.
pub async fn render(pool: &PgPool) -> Response {
    record_pool(pool);
    if let Err(e) = record_queue(pool).await {
        tracing::warn!(error = %e, "could not read the job queue for /metrics");
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        install().render(),
    )
        .into_response()
}

fn record_pool(pool: &PgPool) {
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    let gauge = |state: &'static str, value: f64| {
        metrics::gauge!("tally_db_pool_connections", "pool" => "requests", "state" => state)
            .set(value);
    };
    gauge("idle", idle);
    gauge("in_use", (size - idle).max(0.0));
    metrics::gauge!("tally_db_pool_max_connections", "pool" => "requests")
        .set(f64::from(pool.options().get_max_connections()));
}

/// Kinds seen in the queue before or run by the workers: a kind with no job reads 0, not its
/// last value.
static KINDS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The kinds this process's workers run: their queue gauges read 0 before any job of theirs.
pub fn job_kinds(kinds: impl IntoIterator<Item = String>) {
    if let Ok(mut known) = KINDS.lock() {
        known.get_or_insert_with(HashSet::new).extend(kinds);
    }
}

async fn record_queue(pool: &PgPool) -> sqlx::Result<()> {
    let mut tx = RequestContext::service().begin_read_only(pool).await?;
    let rows: Vec<(String, i64, f64, i64, i64)> = sqlx::query_as(
        "select kind, \
                count(*) filter (where waiting), \
                coalesce(extract(epoch from now() - min(run_at) filter (where waiting)), 0)::float8, \
                count(*) filter (where not dead and locked_until is not null), \
                count(*) filter (where dead) \
         from (select kind, run_at, dead, locked_until, \
                      not dead and locked_until is null and run_at <= now() as waiting \
               from private.jobs) j \
         group by kind",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let Ok(mut kinds) = KINDS.lock() else {
        return Ok(());
    };
    let kinds = kinds.get_or_insert_with(HashSet::new);
    let mut now = HashSet::new();
    for (kind, waiting, oldest, running, dead) in rows {
        metrics::gauge!("tally_jobs_waiting", "kind" => kind.clone()).set(waiting as f64);
        metrics::gauge!("tally_jobs_oldest_waiting_seconds", "kind" => kind.clone()).set(oldest);
        metrics::gauge!("tally_jobs_running", "kind" => kind.clone()).set(running as f64);
        metrics::gauge!("tally_jobs_dead", "kind" => kind.clone()).set(dead as f64);
        now.insert(kind);
    }
    for gone in kinds.difference(&now) {
        for name in [
            "tally_jobs_waiting",
            "tally_jobs_oldest_waiting_seconds",
            "tally_jobs_running",
            "tally_jobs_dead",
        ] {
            metrics::gauge!(name, "kind" => gone.clone()).set(0.0);
        }
    }
    kinds.extend(now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_belong_to_their_service() {
        assert_eq!(service_of("/rest/v1/time_logs"), "rest");
        assert_eq!(service_of("/storage/v1/object/x"), "storage");
        assert_eq!(service_of("/health"), "server");
        assert_eq!(service_of("/restless"), "server");
    }

    #[test]
    fn only_the_service_role_key_opens_the_metrics() {
        let keys = JwtKeys::new("a-test-secret-that-is-long-enough-for-hs256");
        let mut headers = HeaderMap::new();
        assert!(!privileged(&keys, &headers));
        let bearer = |token: &str| format!("Bearer {token}").parse().expect("a header");
        headers.insert(header::AUTHORIZATION, bearer(&keys.anon_key()));
        assert!(!privileged(&keys, &headers));
        headers.insert(header::AUTHORIZATION, bearer(&keys.service_role_key()));
        assert!(privileged(&keys, &headers));
        let basic = |user: &str, key: &str| {
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
            format!("Basic {pair}").parse().expect("a header")
        };
        headers.insert(
            header::AUTHORIZATION,
            basic("service_role", &keys.service_role_key()),
        );
        assert!(privileged(&keys, &headers));
        headers.insert(
            header::AUTHORIZATION,
            basic("anon", &keys.service_role_key()),
        );
        assert!(!privileged(&keys, &headers));
        let other = JwtKeys::new("another-secret-that-is-long-enough-for-hs256");
        headers.insert(header::AUTHORIZATION, bearer(&other.service_role_key()));
        assert!(!privileged(&keys, &headers));
    }
}
