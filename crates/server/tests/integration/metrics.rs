//! `/metrics` as an operator scrapes it: closed to all but the service key on the API's port,
//! keyless on `TALLY_METRICS_ADDR`, and after real traffic every series the dashboard draws is
//! there — HTTP by service and route, jobs, classification, the pool, auth, storage. Requests
//! carry an id back, and logs in JSON carry it too.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tally_testkit::{Fixture, PNG, TestApp, ports::free_port};

/// The value of the first sample whose line starts with `series` (name and labels, in the
/// exporter's order), or None.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Every metric name the text exports.
pub fn names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| {
            n.trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count")
                .to_owned()
        })
        .collect()
}

pub async fn scrape(client: &Client, app: &TestApp) -> String {
    let res = client
        .get(app.url("/metrics"))
        .bearer_auth(app.keys.service_role_key())
        .send()
        .await
        .expect("a scrape");
    assert_eq!(res.status(), 200);
    res.text().await.expect("the metrics text")
}

#[tokio::test]
async fn metrics_are_for_the_service_key_and_count_what_happened() -> anyhow::Result<()> {
    let port = free_port();
    let app = TestApp::spawn_with(|c| c.metrics_addr = Some(format!("127.0.0.1:{port}"))).await?;
    let fx = Fixture::load(&app).await?;
    let client = Client::new();

    // Closed without the service key: no key, the anon key, a person's token.
    for key in [
        None,
        Some(app.keys.anon_key()),
        Some(fx.token(&app, "owner_a")),
    ] {
        let mut req = client.get(app.url("/metrics"));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let res = req.send().await?;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let body: Value = res.json().await?;
        assert!(body["message"].as_str().is_some(), "{body}");
    }
    // Open with it, as Basic service_role:<key> too.
    let basic = client
        .get(app.url("/metrics"))
        .basic_auth("service_role", Some(app.keys.service_role_key()))
        .send()
        .await?;
    assert_eq!(basic.status(), 200);

    // Traffic through each service.
    let member = fx.token(&app, "member_a");
    let rest = client
        .get(app.url("/rest/v1/time_logs?select=id"))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(&member)
        .send()
        .await?;
    assert_eq!(rest.status(), 200);
    let signup = client
        .post(app.url("/auth/v1/signup"))
        .header("apikey", app.keys.anon_key())
        .json(&json!({"email": "new@metrics.test", "password": "a long password"}))
        .send()
        .await?;
    assert_eq!(signup.status(), 200, "{}", signup.text().await?);
    let wrong = client
        .post(app.url("/auth/v1/token?grant_type=password"))
        .header("apikey", app.keys.anon_key())
        .json(&json!({"email": "new@metrics.test", "password": "not the password"}))
        .send()
        .await?;
    assert_eq!(wrong.status(), 400);
    let shot = format!("{}/{}/shot.png", fx.id("org_a"), fx.id("log_ma"));
    let png = PNG.to_vec();
    let uploaded = client
        .post(app.url(&format!("/storage/v1/object/images/{shot}")))
        .bearer_auth(&member)
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await?;
    assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await?);
    let downloaded = client
        .get(app.url(&format!("/storage/v1/object/images/{shot}")))
        .bearer_auth(&member)
        .send()
        .await?;
    assert_eq!(downloaded.bytes().await?.len(), png.len());
    let created = client
        .post(app.url("/functions/v1/log-create"))
        .bearer_auth(&member)
        .json(&json!({"org_id": fx.id("org_a"), "comment": "45m standup"}))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let log: Value = created.json().await?;
    let id = log["log"]["id"].as_str().unwrap_or_default().to_owned();
    // The in-process worker classifies it; a loaded machine (the suite runs tests side by side,
    // the first job loads the models) may take a while.
    let mut ready = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        let rows: Value = client
            .get(app.url(&format!("/rest/v1/time_logs?id=eq.{id}&select=status")))
            .header("apikey", app.keys.anon_key())
            .bearer_auth(&member)
            .send()
            .await?
            .json()
            .await?;
        if rows[0]["status"] != "pending" {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the log was classified");

    let text = scrape(&client, &app).await;
    let rest_ok = "tally_http_requests_total{service=\"rest\",route=\"/rest/v1/{*path}\",method=\"GET\",status=\"2xx\"}";
    assert!(sample(&text, rest_ok).is_some_and(|n| n >= 1.0), "{text}");
    let refused = "tally_http_requests_total{service=\"server\",route=\"/metrics\",method=\"GET\",status=\"4xx\"}";
    assert_eq!(sample(&text, refused), Some(3.0), "{text}");
    for series in [
        "tally_http_request_duration_seconds_bucket{service=\"storage\"",
        "tally_http_requests_in_flight{service=\"realtime\"}",
        "tally_jobs_finished_total{kind=\"classify_log\",outcome=\"done\"}",
        "tally_job_duration_seconds_count{kind=\"classify_log\"}",
        "tally_jobs_waiting{kind=\"classify_log\"}",
        "tally_jobs_oldest_waiting_seconds{kind=\"classify_log\"}",
        "tally_classification_duration_seconds_count{provider=\"builtin\"}",
        "tally_classifications_total{status=",
        "tally_db_pool_connections{pool=\"requests\",state=\"idle\"}",
        "tally_db_pool_max_connections{pool=\"requests\"}",
        "tally_db_pool_waiting{pool=\"requests\"}",
        "tally_db_reads_total{on=\"primary\"}",
        "tally_auth_events_total{event=\"sign_up\",outcome=\"ok\"}",
        "tally_auth_events_total{event=\"sign_in\",outcome=\"refused\"}",
    ] {
        assert!(sample(&text, series).is_some(), "{series} in\n{text}");
    }
    assert!(
        sample(&text, "tally_storage_bytes_total{direction=\"in\"}")
            .is_some_and(|n| n >= png.len() as f64),
        "{text}"
    );
    assert!(
        sample(&text, "tally_storage_bytes_total{direction=\"out\"}")
            .is_some_and(|n| n >= png.len() as f64),
        "{text}"
    );
    // A path is never a label: the log's id does not appear, only route patterns.
    assert!(!text.contains(&id) && !text.contains(&shot), "{text}");

    // The private listener answers without a key.
    let private = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await?;
    assert_eq!(private.status(), 200);
    assert!(names(&private.text().await?).contains("tally_http_requests_total"));
    app.stop().await
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_json_logs_carry_it_too() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new();
    let given = client
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await?;
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    let made = client.get(app.url("/rest/v1/nowhere")).send().await?;
    let id = made.headers()["x-request-id"].to_str()?.to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a made id: {id}");
    app.stop().await?;

    // The binary, logging JSON: each line an object, a request's lines with its id.
    let db = tally_testkit::TestDb::new().await?;
    let data = std::env::temp_dir().join(format!("tally-logs-{}", uuid::Uuid::new_v4()));
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_tally"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("TALLY_") || key == "DATABASE_URL" {
            server.env_remove(key.as_ref());
        }
    }
    let mut server = server
        .arg("serve")
        .env("DATABASE_URL", db.owner_url())
        .env("TALLY_DATA_DIR", &data)
        .env("TALLY_PORT", port.to_string())
        .env("TALLY_JWT_SECRET", tally_testkit::TEST_JWT_SECRET)
        .env("TALLY_LOG_FORMAT", "json")
        .env("TALLY_LOG", "info,tower_http=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = server.stderr.take().expect("piped stderr");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}/health");
    let mut answered = false;
    for _ in 0..200 {
        if let Ok(res) = client
            .get(&url)
            .header("x-request-id", "follow-this-one")
            .send()
            .await
        {
            answered = res.status().is_success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "tally serve answered");
    let mut tagged = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tagged.is_none() && std::time::Instant::now() < deadline {
        let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let entry: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        if entry["span"]["request_id"] == "follow-this-one" {
            tagged = Some(entry);
        }
    }
    server.kill()?;
    server.wait()?;
    std::fs::remove_dir_all(&data).ok();
    let tagged = tagged.expect("a log line with the request's id");
    assert_eq!(tagged["span"]["path"], "/health", "{tagged}");
    assert!(tagged["level"].is_string() && tagged["timestamp"].is_string());
    Ok(())
}

/// Every metric name the code records (`counter!`, `gauge!`, `histogram!` with a literal name).
fn recorded_names(dir: &std::path::Path, names: &mut std::collections::BTreeSet<String>) {
    let macro_call =
        regex::Regex::new(r#"(?:counter|gauge|histogram)!\(\s*"([a-z_]+)""#).expect("a regex");
    for entry in std::fs::read_dir(dir).expect("a readable folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            recorded_names(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("a readable file");
            names.extend(macro_call.captures_iter(&text).map(|c| c[1].to_owned()));
        }
    }
}

/// The Grafana dashboard an operator imports draws every metric Tally records, and only those.
#[test]
fn the_dashboard_draws_every_metric_and_only_recorded_ones() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut recorded = std::collections::BTreeSet::new();
    for crate_dir in std::fs::read_dir(root.join("crates"))
        .expect("the crates")
        .flatten()
    {
        recorded_names(&crate_dir.path().join("src"), &mut recorded);
    }
    assert!(recorded.len() >= 15, "{recorded:?}");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("ops/grafana/tally.json")).expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let metric = regex::Regex::new(r"\b((?:tally|realtime)_[a-z_]+)").expect("a regex");
    let mut drawn = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("an expression");
            for name in metric.captures_iter(expr) {
                let name = name[1].trim_end_matches("_bucket");
                assert!(
                    recorded.contains(name),
                    "panel {:?} draws {name}, which nothing records",
                    panel["title"]
                );
                drawn.insert(name.to_owned());
            }
        }
    }
    let undrawn: Vec<_> = recorded.difference(&drawn).collect();
    assert!(undrawn.is_empty(), "recorded but on no panel: {undrawn:?}");
}
