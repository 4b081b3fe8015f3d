//! Reads on a real streaming replica (`pg_basebackup` of an embedded cluster, applying the
//! primary's changes two seconds late on purpose): reads go to it, never stale for whoever
//! just wrote, and it is skipped once too far behind or stopped.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tally_testkit::{Fixture, ScratchCluster, TestApp};

/// How late the replica applies what the primary commits.
const APPLY_DELAY: &str = "recovery_min_apply_delay=2s";

/// A GET of the log `id` as `who`: whether they see it.
async fn sees(
    http: &Client,
    app: &TestApp,
    f: &Fixture,
    who: &str,
    id: &str,
) -> anyhow::Result<bool> {
    let response = http
        .get(app.url(&format!("/rest/v1/time_logs?id=eq.{id}&select=id")))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(f.token(app, who))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK, "{who} reads {id}");
    let rows: Vec<Value> = response.json().await?;
    Ok(!rows.is_empty())
}

/// Reads run on a replica so far (every instance of this process counts).
async fn replica_reads(http: &Client, app: &TestApp) -> f64 {
    let text = crate::metrics::scrape(http, app).await;
    crate::metrics::sample(&text, "tally_db_reads_total{on=\"replica\"}").unwrap_or(0.0)
}

/// Waits (up to 20 s) until `who` sees the log `id` in a read the replica served.
async fn eventually_sees(
    http: &Client,
    app: &TestApp,
    f: &Fixture,
    who: &str,
    id: &str,
) -> anyhow::Result<()> {
    for _ in 0..200 {
        let before = replica_reads(http, app).await;
        if sees(http, app, f, who, id).await? && replica_reads(http, app).await > before {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{who} never saw {id} on the replica")
}

/// `member_a` logs `comment` through `app`; returns the new log's id.
async fn log(http: &Client, app: &TestApp, f: &Fixture, comment: &str) -> anyhow::Result<String> {
    let response = http
        .post(app.url("/rest/v1/time_logs"))
        .header("apikey", app.keys.anon_key())
        .header("prefer", "return=representation")
        .bearer_auth(f.token(app, "member_a"))
        .json(
            &json!({"org_id": f.id("org_a"), "user_id": f.id("member_a"),
                      "comment": comment, "duration_minutes": 30, "status": "ready"}),
        )
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let rows: Vec<Value> = response.json().await?;
    Ok(rows
        .first()
        .and_then(|r| r["id"].as_str())
        .context("the new log's id")?
        .to_owned())
}

/// The ids of the logs `who` pulls in org A (first sync).
async fn pulled(
    http: &Client,
    app: &TestApp,
    f: &Fixture,
    who: &str,
) -> anyhow::Result<Vec<String>> {
    let response = http
        .post(app.url("/functions/v1/sync-pull"))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(f.token(app, who))
        .json(&json!({"org_id": f.id("org_a"), "limit": 1000}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    Ok(body["changes"]
        .as_array()
        .context("changes")?
        .iter()
        .filter(|c| c["table"] == "time_logs")
        .filter_map(|c| c["row"]["id"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn reads_go_to_a_replica_except_for_whoever_just_wrote_and_skip_it_when_behind_or_down()
-> anyhow::Result<()> {
    let primary = ScratchCluster::start(&[]).await?;
    let db = Arc::new(primary.test_db("tally").await?);
    let replica = primary.replica(&[APPLY_DELAY]).await?;
    let replica_url = replica.url_for("tally");
    // One instance takes a replica up to 10 s behind, another only up to 500 ms.
    let lenient = TestApp::spawn_on(db.clone(), |c| {
        c.database_read_urls = Some(replica_url.clone());
        c.database_read_max_lag_ms = 10_000;
    })
    .await?;
    let strict = TestApp::spawn_on(db.clone(), |c| {
        c.database_read_urls = Some(replica_url.clone());
        c.database_read_max_lag_ms = 500;
    })
    .await?;
    let f = Fixture::load(&lenient).await?;
    let http = Client::new();
    let standup = f.id("log_ma").to_string();
    eventually_sees(&http, &lenient, &f, "admin_a", &standup).await?;

    // The writer reads their write at once, by REST and by sync; someone else reading
    // through the same instance is served by the replica, two seconds behind.
    let review = log(&http, &lenient, &f, "code review").await?;
    assert!(sees(&http, &lenient, &f, "member_a", &review).await?);
    assert!(
        pulled(&http, &lenient, &f, "member_a")
            .await?
            .contains(&review)
    );
    assert!(
        !sees(&http, &lenient, &f, "admin_a", &review).await?,
        "the admin's read went to the primary: the replica serves nobody"
    );
    assert!(
        !pulled(&http, &lenient, &f, "admin_a")
            .await?
            .contains(&review)
    );

    // A second later the replica is over 500 ms behind: the strict instance skips it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(sees(&http, &strict, &f, "admin_a", &review).await?);
    // The replica catches up and serves the admin the log.
    eventually_sees(&http, &lenient, &f, "admin_a", &review).await?;

    // Stopped mid-run, the replica is skipped without an error, from the first read on.
    replica.stop().await?;
    let planning = log(&http, &strict, &f, "planning").await?;
    for who in ["admin_a", "manager_a", "member_a"] {
        assert!(sees(&http, &lenient, &f, who, &review).await?, "{who}");
        assert!(pulled(&http, &lenient, &f, who).await?.contains(&review));
    }
    assert!(sees(&http, &lenient, &f, "admin_a", &planning).await?);

    lenient.stop().await?;
    strict.stop().await?;
    drop(db);
    primary.stop().await
}
