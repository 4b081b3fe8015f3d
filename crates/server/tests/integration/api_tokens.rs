//! Personal API tokens as a person scripting their time uses them: made once and listed without
//! their secret, accepted at `/rest/v1`, `/functions/v1` and `/storage/v1` as their person
//! under RLS, narrowed by their scopes at every door, refused at once when revoked or expired
//! (on every instance), rate-limited, and audited.

use anyhow::Context;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tally_testkit::{Fixture, TestApp};

/// `name` made by `who` with `scopes`: the answer's status and body.
async fn create(
    http: &Client,
    app: &TestApp,
    f: &Fixture,
    who: &str,
    scopes: &[&str],
    expires_at: Option<String>,
) -> anyhow::Result<(StatusCode, Value)> {
    let response = http
        .post(app.url("/functions/v1/token-create"))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(f.token(app, who))
        .json(&json!({"name": "my script", "scopes": scopes, "expires_at": expires_at}))
        .send()
        .await?;
    Ok((response.status(), response.json().await?))
}

/// A new token of `who` with `scopes`.
async fn token(
    http: &Client,
    app: &TestApp,
    f: &Fixture,
    who: &str,
    scopes: &[&str],
) -> anyhow::Result<String> {
    let (status, body) = create(http, app, f, who, scopes, None).await?;
    anyhow::ensure!(status == StatusCode::CREATED, "{status}: {body}");
    Ok(body["token"].as_str().context("the token")?.to_owned())
}

#[tokio::test]
async fn a_token_runs_as_its_person_narrowed_by_its_scopes_at_every_door() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let f = Fixture::load(&app).await?;
    let http = Client::new();
    let reader = token(&http, &app, &f, "member_a", &["logs:read"]).await?;
    assert!(reader.starts_with("tally_pat_"), "{reader}");

    // Reads as the person: their org's logs they may see, nothing of org B.
    let (status, logs) = app
        .call(&reader, Method::GET, "/rest/v1/time_logs?select=id", None)
        .await?;
    assert_eq!(status, StatusCode::OK, "{logs}");
    let ids: Vec<&str> = logs
        .as_array()
        .context("rows")?
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(ids.contains(&f.id("log_ma").to_string().as_str()), "{logs}");
    assert!(!ids.contains(&f.id("log_b").to_string().as_str()), "{logs}");
    let (status, pulled) = app
        .call(
            &reader,
            Method::POST,
            "/functions/v1/sync-pull",
            Some(json!({"org_id": f.id("org_a")})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{pulled}");
    let (status, listed) = app
        .call(
            &reader,
            Method::POST,
            "/storage/v1/object/list/voices",
            Some(json!({"prefix": ""})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{listed}");

    // Every write and every report is refused, in each service's own shape.
    let log = json!({"org_id": f.id("org_a"), "user_id": f.id("member_a"), "comment": "x", "status": "ready"});
    let (status, refused) = app
        .call(
            &reader,
            Method::POST,
            "/rest/v1/time_logs",
            Some(log.clone()),
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("logs:write")),
        "{refused}"
    );
    assert!(
        refused.get("code").is_some(),
        "PostgREST's shape: {refused}"
    );
    let (status, refused) = app
        .call(
            &reader,
            Method::POST,
            "/functions/v1/log-create",
            Some(json!({"org_id": f.id("org_a"), "comment": "1h review"})),
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        refused.get("error").is_some(),
        "the functions' shape: {refused}"
    );
    let (status, refused) = app
        .call(
            &reader,
            Method::POST,
            &format!("/storage/v1/object/voices/{}/x.webm", f.id("org_a")),
            None,
        )
        .await?;
    // Storage answers 400 with the status in the body, as Supabase's does.
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["statusCode"], "403", "storage's shape: {refused}");
    let (status, _) = app
        .call(
            &reader,
            Method::GET,
            "/rest/v1/user_day_summaries?select=day",
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(&reader, Method::GET, "/auth/v1/user", None)
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let logs_now: i64 = sqlx::query_scalar("select count(*) from time_logs")
        .fetch_one(&app.db.owner)
        .await?;
    assert_eq!(logs_now, 3, "nothing was written");

    // A writer logs, but may not manage the org; admin tokens are for owners and admins.
    let writer = token(&http, &app, &f, "member_a", &["logs:write"]).await?;
    let (status, made) = app
        .call(
            &writer,
            Method::POST,
            "/functions/v1/log-create",
            Some(json!({"org_id": f.id("org_a"), "comment": "1h review"})),
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["log"]["user_id"], json!(f.id("member_a")));
    let project = json!({"org_id": f.id("org_a"), "name": "Zeta"});
    let (status, _) = app
        .call(
            &writer,
            Method::POST,
            "/rest/v1/projects",
            Some(project.clone()),
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, refused) = create(&http, &app, &f, "member_a", &["admin"], None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let admin = token(&http, &app, &f, "owner_a", &["admin"]).await?;
    let (status, made) = app
        .call(&admin, Method::POST, "/rest/v1/projects", Some(project))
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    // A token makes no tokens.
    let (status, _) = app
        .call(
            &admin,
            Method::POST,
            "/functions/v1/token-create",
            Some(json!({"name": "x", "scopes": ["admin"]})),
        )
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The person lists their tokens, with their last use, never the secret or its hash.
    let listed = http
        .get(app.url("/rest/v1/api_tokens?select=*&order=created_at"))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(f.token(&app, "member_a"))
        .send()
        .await?;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await?;
    let rows = listed.as_array().context("rows")?;
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows.iter().all(|r| r.get("token_hash").is_none()
            && r["prefix"]
                .as_str()
                .is_some_and(|p| reader.starts_with(p) || writer.starts_with(p))),
        "{listed}"
    );
    assert!(!rows[0]["last_used_at"].is_null(), "{listed}");
    assert!(
        !listed.to_string().contains(&reader[10..]),
        "the secret never comes back"
    );
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from auth.audit_log_entries where payload ->> 'action' = 'token_created'",
    )
    .fetch_one(&app.db.owner)
    .await?;
    assert_eq!(audited, 3);
    app.stop().await
}

/// The status of listing logs with `token` at `app`.
async fn list_logs(app: &TestApp, token: &str) -> anyhow::Result<StatusCode> {
    let (status, _) = app
        .call(token, Method::GET, "/rest/v1/time_logs?select=id", None)
        .await?;
    Ok(status)
}

#[tokio::test]
async fn a_revoked_or_expired_token_is_refused_at_once_on_every_instance() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let other = app.another_instance().await?;
    let f = Fixture::load(&app).await?;
    let http = Client::new();
    let (status, made) = create(&http, &app, &f, "member_a", &["logs:read"], None).await?;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["token"].as_str().context("token")?;
    assert_eq!(list_logs(&other, secret).await?, StatusCode::OK);

    let revoke = |id: Value| {
        http.post(app.url("/functions/v1/token-revoke"))
            .header("apikey", app.keys.anon_key())
            .bearer_auth(f.token(&app, "member_a"))
            .json(&json!({"id": id}))
            .send()
    };
    assert_eq!(revoke(made["id"].clone()).await?.status(), StatusCode::OK);
    assert_eq!(list_logs(&other, secret).await?, StatusCode::UNAUTHORIZED);
    assert_eq!(
        revoke(made["id"].clone()).await?.status(),
        StatusCode::NOT_FOUND
    );
    // Someone else's token is not theirs to revoke.
    let (_, others) = create(&http, &app, &f, "member2_a", &["logs:read"], None).await?;
    assert_eq!(
        revoke(others["id"].clone()).await?.status(),
        StatusCode::NOT_FOUND
    );

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (status, made) = create(&http, &app, &f, "member_a", &["logs:read"], Some(soon)).await?;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["token"].as_str().context("token")?;
    assert_eq!(list_logs(&app, secret).await?, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(list_logs(&app, secret).await?, StatusCode::UNAUTHORIZED);
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let (status, _) = create(&http, &app, &f, "member_a", &["logs:read"], Some(past)).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = create(&http, &app, &f, "member_a", &["logs:delete"], None).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        list_logs(&app, "tally_pat_0000").await?,
        StatusCode::UNAUTHORIZED
    );
    other.stop().await?;
    app.stop().await
}

#[tokio::test]
async fn a_token_past_its_rate_waits_with_retry_after() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| c.api_token_requests_per_minute = 3).await?;
    let f = Fixture::load(&app).await?;
    let http = Client::new();
    let secret = token(&http, &app, &f, "member_a", &["logs:read"]).await?;
    for _ in 0..3 {
        let (status, _) = app
            .call(&secret, Method::GET, "/rest/v1/projects?select=id", None)
            .await?;
        assert_eq!(status, StatusCode::OK);
    }
    let response = http
        .get(app.url("/rest/v1/projects?select=id"))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(&secret)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response
        .headers()
        .get("retry-after")
        .context("Retry-After")?
        .to_str()?
        .parse()?;
    assert!((1..=60).contains(&wait), "{wait}");
    // Another token of the same person has its own count.
    let second = token(&http, &app, &f, "member_a", &["logs:read"]).await?;
    let (status, _) = app
        .call(&second, Method::GET, "/rest/v1/projects?select=id", None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    app.stop().await
}
