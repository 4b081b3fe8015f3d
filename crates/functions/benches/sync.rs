//! Offline sync: a first pull of 100,000 changes (throughput, and the peak memory of this
//! process, which runs the server), then 1,000 new logs pushed in batches of 100 through
//! `sync-push` next to the same inserts through `/rest/v1` (p50/p99 per batch), in one run.
//! The server runs no workers, so classifying the pushed logs does not share the cores. Run
//! with `scripts/bench-sync` (release build).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tally_testkit::{
    TestApp,
    latency::percentile_ms,
    memory::{peak_mib, reset_peak, status_mib},
};
use uuid::Uuid;

const LOGS: i64 = 100_000;
const PAGE: u32 = 1_000;
const BATCHES: usize = 10;
const BATCH: usize = 100;

fn report(name: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "  {name:<34} p50 {:>7.1} ms  p99 {:>7.1} ms  ({:.0} rows/s)",
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99),
        (latencies.len() * BATCH) as f64 / latencies.iter().sum::<Duration>().as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| {
        c.ai.worker_concurrency = 0;
        c.sync.sync_requests_per_minute = 100_000;
    })
    .await?;
    let (org, person) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (id, email) values ('{person}', 'p@bench.test');
         insert into organizations (id, name, slug) values ('{org}', 'Bench', 'bench');
         insert into memberships (org_id, user_id, role) values ('{org}', '{person}', 'member');
         insert into time_logs (org_id, user_id, comment, started_at, ended_at, duration_minutes, status)
           select '{org}', '{person}', 'log number ' || g || ' of the bench, code review',
                  now() - make_interval(mins => g * 30), now() - make_interval(mins => g * 30 - 25), 25, 'ready'
           from generate_series(1, {LOGS}) g;"
    )))
    .execute(&app.db.owner)
    .await?;
    sqlx::raw_sql("vacuum (analyze)")
        .execute(&app.db.owner)
        .await?;
    let http = reqwest::Client::new();
    let token = app.user_token(person);
    let call = |name: &str, body: Value| {
        http.post(app.url(&format!("/functions/v1/{name}")))
            .bearer_auth(&token)
            .header("apikey", app.keys.anon_key())
            .json(&body)
    };

    println!("first pull of {LOGS} logs (+ the default vocabulary), pages of {PAGE}");
    let before = status_mib("VmRSS");
    reset_peak();
    let started = Instant::now();
    let (mut changes, mut pages, mut cursor) = (0usize, 0usize, None::<String>);
    loop {
        let mut body = json!({"org_id": org, "limit": PAGE});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page: Value = call("sync-pull", body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        changes += page["changes"].as_array().map_or(0, Vec::len);
        pages += 1;
        cursor = page["cursor"].as_str().map(str::to_owned);
        if page["has_more"] != true {
            break;
        }
    }
    let took = started.elapsed();
    println!(
        "  {changes} changes in {pages} pulls, {:.2} s: {:.0} changes/s; resident {before:.1} MiB before, peak {:.1} MiB",
        took.as_secs_f64(),
        changes as f64 / took.as_secs_f64(),
        peak_mib()
    );

    println!("\n{} new logs in batches of {BATCH}", BATCHES * BATCH);
    let log = |n: usize| json!({"comment": format!("pushed log {n}, 30m planning"), "duration_minutes": 30});
    let mut pushes = Vec::new();
    for b in 0..BATCHES {
        let mutations: Vec<Value> = (0..BATCH)
            .map(|i| {
                json!({"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "upsert",
                       "id": Uuid::now_v7(), "values": log(b * BATCH + i)})
            })
            .collect();
        let started = Instant::now();
        let answer: Value = call("sync-push", json!({"org_id": org, "mutations": mutations}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        pushes.push(started.elapsed());
        let applied = answer["results"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r["status"] == "applied").count());
        anyhow::ensure!(applied == BATCH, "a push applied {applied} of {BATCH}");
    }
    let mut inserts = Vec::new();
    for b in 0..BATCHES {
        let rows: Vec<Value> = (0..BATCH)
            .map(|i| {
                let mut row = log(b * BATCH + i);
                row["id"] = json!(Uuid::now_v7());
                row["org_id"] = json!(org);
                row["user_id"] = json!(person);
                row
            })
            .collect();
        let started = Instant::now();
        http.post(app.url("/rest/v1/time_logs"))
            .bearer_auth(&token)
            .header("apikey", app.keys.anon_key())
            .header("prefer", "return=representation")
            .json(&rows)
            .send()
            .await?
            .error_for_status()?;
        inserts.push(started.elapsed());
    }
    report("sync-push", pushes);
    report("/rest/v1 bulk insert", inserts);
    app.stop().await?;
    Ok(())
}
