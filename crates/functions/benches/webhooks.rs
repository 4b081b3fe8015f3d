//! Integrations under load, with the workers running as in production (2 per instance):
//! 200 Slack `/log` commands one after another (the time Slack waits for the answer: signature,
//! storage, the log created — classification follows in the workers), 1,000 Jira worklogs sent
//! by 8 senders at once (accepted per second, then the time until every draft exists), and
//! 1,000 new logs delivered as signed outbound webhooks to a local receiver. Run with
//! `scripts/bench-webhooks` (release build).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use tally_testkit::{TestApp, latency::percentile_ms};
use uuid::Uuid;

const COMMANDS: usize = 200;
const WORKLOGS: usize = 1_000;
const SENDERS: usize = 8;
const DELIVERIES: usize = 1_000;

fn sign(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Waits until `probe` (one boolean) holds; returns how long that took.
async fn until(pool: &PgPool, probe: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let done: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(probe.to_owned()))
            .fetch_one(pool)
            .await?;
        if done {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "gave up: {probe}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let (org, admin) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (id, email, email_confirmed_at) values ('{admin}', 'admin@bench.test', now());
         insert into organizations (id, name, slug) values ('{org}', 'Bench', 'bench');
         insert into memberships (org_id, user_id, role) values ('{org}', '{admin}', 'admin');
         insert into projects (org_id, name, code) values ('{org}', 'Apollo', 'APL');"
    )))
    .execute(&app.db.owner)
    .await?;
    let http = reqwest::Client::new();
    let token = app.user_token(admin);
    let integration = |provider: &'static str, config: Value| {
        let (http, token, app) = (&http, &token, &app);
        async move {
            let rows: Value = http
                .post(app.url("/rest/v1/integrations"))
                .bearer_auth(token)
                .header("apikey", app.keys.anon_key())
                .header("prefer", "return=representation")
                .json(&json!({"org_id": org, "provider": provider, "config": config}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = rows[0]["id"].as_str().unwrap_or_default().to_owned();
            let set: Value = http
                .post(app.url("/functions/v1/integration-secret"))
                .bearer_auth(token)
                .header("apikey", app.keys.anon_key())
                .json(&json!({"integration_id": id}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok((id, set["secret"].as_str().unwrap_or_default().to_owned()))
        }
    };

    // Slack: the answer Slack waits for (3 s at most).
    let (slack, secret) = integration("slack", json!({})).await?;
    sqlx::query("insert into integration_identities (org_id, integration_id, external_id, user_id) values ($1, $2::uuid, 'U1', $3)")
        .bind(org)
        .bind(&slack)
        .bind(admin)
        .execute(&app.db.owner)
        .await?;
    let mut answers = Vec::with_capacity(COMMANDS);
    for n in 0..COMMANDS {
        let body =
            format!("command=%2Flog&user_id=U1&text=45m+code+review+APL+{n}&trigger_id=t.{n}");
        let ts = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&secret, &[b"v0:", ts.as_bytes(), b":", body.as_bytes()]);
        let started = Instant::now();
        let answer: Value = http
            .post(app.url(&format!("/functions/v1/webhooks-ingest/slack/{slack}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", format!("v0={signature}"))
            .body(body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        answers.push(started.elapsed());
        anyhow::ensure!(
            answer["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Logged")),
            "{answer}"
        );
    }
    answers.sort();
    println!(
        "Slack /log, {COMMANDS} one after another: answered p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile_ms(&answers, 0.5),
        percentile_ms(&answers, 0.99),
        percentile_ms(&answers, 1.0)
    );

    // Jira: accepted per second with 8 senders, then processed into drafts.
    let (jira, secret) = integration("jira", json!({})).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (next, http, secret) = (next.clone(), http.clone(), secret.clone());
        let url = app.url(&format!("/functions/v1/webhooks-ingest/jira/{jira}"));
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= WORKLOGS {
                    return anyhow::Ok(());
                }
                let body = json!({
                    "timestamp": chrono::Utc::now().timestamp_millis(), "webhookEvent": "worklog_created",
                    "issue": {"id": "1", "key": "APL-1", "fields": {"summary": "Bench", "project": {"key": "APL"}}},
                    "worklog": {"id": n.to_string(), "issueId": "1",
                                "author": {"accountId": "acc", "emailAddress": "admin@bench.test"},
                                "comment": "Worked on it", "started": "2026-11-20T09:00:00.000+0000",
                                "timeSpentSeconds": 1800}
                })
                .to_string();
                http.post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature", format!("sha256={}", sign(&secret, &[body.as_bytes()])))
                    .body(body)
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }));
    }
    for s in senders {
        s.await??;
    }
    let accepted = started.elapsed();
    let drafts = until(
        &app.db.owner,
        &format!("select count(*) = {WORKLOGS} from time_logs where source = 'jira'"),
    )
    .await?;
    println!(
        "Jira worklogs, {WORKLOGS} from {SENDERS} senders: accepted in {:.2} s ({:.0}/s); every draft made {:.2} s later",
        accepted.as_secs_f64(),
        WORKLOGS as f64 / accepted.as_secs_f64(),
        drafts.as_secs_f64()
    );
    until(
        &app.db.owner,
        "select not exists (select 1 from private.jobs)",
    )
    .await?;

    // Outbound: 1,000 new logs delivered to a local receiver.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let receiver = Router::new().route(
        "/hook",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let (out, _) = integration(
        "generic",
        json!({"outbound": {"url": url, "events": ["log.created"]}}),
    )
    .await?;
    let started = Instant::now();
    sqlx::query(
        "insert into time_logs (org_id, user_id, comment, duration_minutes, status) \
         select $1, $2, 'delivered ' || g, 30, 'ready' from generate_series(1, $3) g",
    )
    .bind(org)
    .bind(admin)
    .bind(i32::try_from(DELIVERIES)?)
    .execute(&app.db.owner)
    .await?;
    let inserted = started.elapsed();
    until(
        &app.db.owner,
        &format!("select count(*) = {DELIVERIES} from webhook_deliveries where integration_id = '{out}' and status = 'delivered'"),
    )
    .await?;
    let delivered = started.elapsed();
    println!(
        "Outbound: {DELIVERIES} logs inserted in one statement in {:.2} s (with their deliveries queued); all delivered and signed after {:.2} s ({:.0}/s); the receiver counted {}",
        inserted.as_secs_f64(),
        delivered.as_secs_f64(),
        DELIVERIES as f64 / delivered.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );
    app.stop().await?;
    Ok(())
}
