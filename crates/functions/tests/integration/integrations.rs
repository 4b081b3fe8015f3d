//! Integrations through real HTTP: webhooks signed exactly as Slack, Jira, Microsoft Graph and
//! Tally's own scheme document it (valid, bad, stale, redelivered, malformed), the events they
//! turn into draft logs, an ICS feed served by a local server, outbound deliveries to a local
//! receiver that checks signatures, and who may see any of it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::any,
};
use chrono::{DateTime, Duration as Span, SubsecRound, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use tally_core::RequestContext;
use tally_functions::integrations::{
    Egress, SecretBox, Tools,
    process::{self, Outcome},
};

use crate::world::World;

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) fn now() -> i64 {
    Utc::now().timestamp()
}

/// `X-Tally-Signature` computed from its documented definition.
pub(crate) fn tally_signature(secret: &str, ts: i64, body: &[u8]) -> String {
    format!(
        "t={ts},v1={}",
        hmac_hex(secret, &[ts.to_string().as_bytes(), b".", body])
    )
}

/// Slack's v0 headers for `body` sent at `ts`.
fn slack_headers(secret: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts_text = ts.to_string();
    let base = [b"v0:", ts_text.as_bytes(), b":", body];
    vec![
        ("x-slack-request-timestamp", ts.to_string()),
        (
            "x-slack-signature",
            format!("v0={}", hmac_hex(secret, &base)),
        ),
    ]
}

/// A write through `/rest/v1` as `who` (`return=representation`): status and rows.
async fn rest_write(
    w: &World,
    who: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let res = reqwest::Client::new()
        .request(method, w.app.url(&format!("/rest/v1/{path}")))
        .header("apikey", w.app.keys.anon_key())
        .header("prefer", "return=representation")
        .bearer_auth(w.token(who))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn rest_insert(w: &World, who: &str, table: &str, row: Value) -> (u16, Value) {
    rest_write(w, who, reqwest::Method::POST, table, row).await
}

/// An integration created by org A's admin through `/rest/v1`, with its secret set through
/// `integration-secret`; returns its id and the secret.
pub(crate) async fn integration(
    w: &World,
    provider: &str,
    config: Value,
    secret: Option<&str>,
) -> (Uuid, String) {
    let (status, rows) = rest_insert(
        w,
        "admin_a",
        "integrations",
        json!({"org_id": w.id("org_a"), "provider": provider, "name": provider, "config": config}),
    )
    .await;
    assert_eq!(status, 201, "{rows}");
    assert!(rows[0].get("secret").is_none(), "{rows}");
    let id: Uuid = rows[0]["id"].as_str().unwrap().parse().unwrap();
    let mut body = json!({"integration_id": id});
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    let (status, set) = w.call("admin_a", "integration-secret", body).await;
    assert_eq!(status, 200, "{set}");
    let segment = if provider == "calendar" {
        "calendar"
    } else {
        provider
    };
    assert!(
        set["webhook_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/functions/v1/webhooks-ingest/{segment}/{id}")),
        "{set}"
    );
    (id, set["secret"].as_str().unwrap().to_owned())
}

/// POSTs a webhook; returns the status and the body as text.
pub(crate) async fn hook(
    w: &World,
    path: &str,
    headers: &[(&'static str, String)],
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(w.app.url(&format!("/functions/v1/{path}")))
        .header("content-type", content_type)
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// An admin makes a generic integration and a custom tool sends it `entry`, signed: the
/// integration's id once the webhook is accepted.
pub(crate) async fn send_generic(w: &World, entry: &Value) -> Uuid {
    let (id, secret) = integration(w, "generic", json!({}), None).await;
    let body = entry.to_string();
    let headers = [(
        "x-tally-signature",
        tally_signature(&secret, now(), body.as_bytes()),
    )];
    let path = format!("webhooks-ingest/generic/{id}");
    let (status, answer) = hook(w, &path, &headers, "application/json", body.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    id
}

async fn stored_events(w: &World, integration: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from external_events where integration_id = $1")
        .bind(integration)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap()
}

/// The logs of `who` from `source`, as the database has them.
async fn logs(w: &World, who: &str, source: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "select to_jsonb(l) from time_logs l where user_id = $1 and source::text = $2 order by created_at",
    )
    .bind(w.id(who))
    .bind(source)
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap()
}

/// An admin sets an integration's signing secret and the credential Tally calls its API with.
async fn set_credentials(w: &World, id: Uuid, secret: &str, api_token: &str) {
    let (status, body) = w
        .call(
            "admin_a",
            "integration-secret",
            json!({"integration_id": id, "secret": secret, "api_token": api_token}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Polls `probe` (SQL returning one boolean) until true, moving due retries forward so the
/// queue's backoff does not slow the test; fails after 30 s.
pub(crate) async fn until(w: &World, what: &str, probe: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(probe.to_owned()))
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
        if done {
            return;
        }
        if Instant::now() > deadline {
            let state: Option<String> = sqlx::query_scalar(
                "select string_agg(kind || ' ' || attempts || ' ' || coalesce(last_error, '-'), '; ') from private.jobs",
            )
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
            panic!("timed out waiting: {what}; jobs: {state:?}");
        }
        sqlx::query("update private.jobs set run_at = now() where not dead and run_at > now()")
            .execute(&w.app.db.owner)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everyone of org A has a verified email (the fixture leaves them unconfirmed).
pub(crate) async fn verify_emails(w: &World) {
    sqlx::query("update auth.users set email_confirmed_at = now() where email like '%@a.test'")
        .execute(&w.app.db.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn slack_commands_and_mentions_become_classified_logs_of_the_mapped_person() {
    let w = World::new().await;
    verify_emails(&w).await;
    let (slack_api, posted) = fake_slack_api().await;
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let (id, shown) = integration(
        &w,
        "slack",
        json!({"slack_api_url": slack_api}),
        Some(secret),
    )
    .await;
    assert_eq!(shown, secret);
    // The bot token Tally asks Slack for people's emails with.
    set_credentials(&w, id, secret, "xoxb-test").await;
    let (status, mapped) = rest_insert(
        &w,
        "admin_a",
        "integration_identities",
        json!({"org_id": w.id("org_a"), "integration_id": id, "external_id": "U-MA", "user_id": w.id("member_a")}),
    )
    .await;
    assert_eq!(status, 201, "{mapped}");
    let path = format!("webhooks-ingest/slack/{id}");
    let json_type = "application/json";
    let form_type = "application/x-www-form-urlencoded";

    // The Events API handshake.
    let challenge = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let (status, body) = hook(
        &w,
        &path,
        &slack_headers(secret, now(), challenge),
        json_type,
        challenge,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );

    // `/log` answers at once, ephemerally; the log is the member's and gets classified.
    let command = b"token=t&team_id=T1&user_id=U-MA&user_name=ma&command=%2Flog&text=2h+code+review+on+Apollo+Redesign&response_url=https%3A%2F%2Fhooks.slack.test%2F1&trigger_id=111.222.abc";
    let started = Instant::now();
    let (status, body) = hook(
        &w,
        &path,
        &slack_headers(secret, now(), command),
        form_type,
        command,
    )
    .await;
    let answered = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["response_type"], "ephemeral");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("2h code review on Apollo Redesign"),
        "{body}"
    );
    println!("slash command answered in {answered:?}");
    let created = logs(&w, "member_a", "slack").await;
    assert_eq!(created.len(), 1);
    let log = w.classified(created[0]["id"].as_str().unwrap()).await;
    assert_eq!(log["duration_minutes"], 120, "{log}");
    assert_eq!(log["project_id"], json!(w.id("apollo")), "{log}");
    assert_eq!(log["org_id"], json!(w.id("org_a")));

    // The same command again (a redelivery) answers 200 and changes nothing.
    let (status, _) = hook(
        &w,
        &path,
        &slack_headers(secret, now(), command),
        form_type,
        command,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(logs(&w, "member_a", "slack").await.len(), 1);
    assert_eq!(stored_events(&w, id).await, 1);

    // Bad signature, stale timestamp, no headers: 401 and nothing stored.
    let other =
        b"token=t&team_id=T1&user_id=U-MA&command=%2Flog&text=1h+emails&trigger_id=333.444.def";
    let mut forged = slack_headers(secret, now(), other);
    forged[1].1 = slack_headers("not-the-secret", now(), other)[1].1.clone();
    let stale = slack_headers(secret, now() - 6 * 60, other);
    for (headers, why) in [(forged, "forged"), (stale, "stale"), (vec![], "unsigned")] {
        let (status, body) = hook(&w, &path, &headers, form_type, other).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "invalid_signature",
            "{why}"
        );
    }
    // Malformed but signed: 400, nothing stored.
    for (bad, kind) in [
        (&b"text=no+command"[..], form_type),
        (b"{not json", json_type),
        (br#"{"type":"event_callback"}"#, json_type),
    ] {
        let (status, body) = hook(&w, &path, &slack_headers(secret, now(), bad), kind, bad).await;
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(stored_events(&w, id).await, 1);
    assert_eq!(logs(&w, "member_a", "slack").await.len(), 1);

    // Someone nobody mapped is told so; the event is dead with the reason, for admins.
    let stranger = b"user_id=U-NOBODY&command=%2Flog&text=1h+emails&trigger_id=555.666.ghi";
    let (status, body) = hook(
        &w,
        &path,
        &slack_headers(secret, now(), stranger),
        form_type,
        stranger,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("not linked"), "{body}");
    let events = w
        .rest(
            "admin_a",
            "external_events?select=status,error&external_id=eq.command:555.666.ghi",
        )
        .await;
    assert_eq!(events[0]["status"], "dead", "{events}");

    // Someone not mapped but whose Slack email is a verified member's is found by it.
    let manager = b"user_id=U-MG&command=%2Flog&text=45m+1%3A1+with+Ma&trigger_id=777.888.jkl";
    let (status, body) = hook(
        &w,
        &path,
        &slack_headers(secret, now(), manager),
        form_type,
        manager,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("Logged"), "{body}");
    assert_eq!(logs(&w, "manager_a", "slack").await.len(), 1);
    let found = w
        .rest(
            "admin_a",
            "integration_identities?select=user_id,matched_by&external_id=eq.U-MG",
        )
        .await;
    assert_eq!(
        found,
        json!([{"user_id": w.id("manager_a"), "matched_by": "email"}])
    );

    // An app mention goes through the job, and is answered in its thread.
    let mention = json!({
        "type": "event_callback", "event_id": "Ev01", "team_id": "T1",
        "event": {"type": "app_mention", "user": "U-MA", "text": "<@U0TALLY> 30m standup notes",
                  "ts": "1.2", "channel": "C-TEAM", "channel_type": "channel"}
    });
    let (status, body) = slack_event(&w, &path, secret, &mention).await;
    assert_eq!(status, 200, "{body}");
    until(
        &w,
        "the mention's log",
        &format!(
            "select count(*) = 2 from time_logs where user_id = '{}' and source = 'slack'",
            w.id("member_a")
        ),
    )
    .await;
    let mentioned = logs(&w, "member_a", "slack").await;
    assert_eq!(mentioned[1]["comment"], "30m standup notes");
    let processed = w
        .rest(
            "admin_a",
            "external_events?select=status&external_id=eq.event:Ev01",
        )
        .await;
    assert_eq!(processed[0]["status"], "processed", "{processed}");
    let replies = slack_replies(&posted, 1).await;
    assert_eq!(replies[0]["channel"], "C-TEAM");
    assert_eq!(replies[0]["thread_ts"], "1.2");
    let text = replies[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Logged") && text.contains("30m standup notes"),
        "{text}"
    );

    // A direct message from someone nobody mapped: no log, told why in the conversation.
    let direct = json!({
        "type": "event_callback", "event_id": "Ev02", "team_id": "T1",
        "event": {"type": "message", "channel_type": "im", "channel": "D-NOBODY",
                  "user": "U-NOBODY", "text": "1h planning", "ts": "3.4"}
    });
    assert_eq!(slack_event(&w, &path, secret, &direct).await.0, 200);
    let replies = slack_replies(&posted, 2).await;
    assert_eq!(replies[1]["channel"], "D-NOBODY");
    assert!(replies[1].get("thread_ts").is_none(), "{}", replies[1]);
    assert!(
        replies[1]["text"].as_str().unwrap().contains("not linked"),
        "{}",
        replies[1]
    );
    // The bot's own messages and the slash commands get no reply message.
    let from_bot = json!({
        "type": "event_callback", "event_id": "Ev03", "team_id": "T1",
        "event": {"type": "message", "channel_type": "im", "channel": "D-NOBODY",
                  "bot_id": "B1", "user": "U0TALLY", "text": "Logged it", "ts": "5.6"}
    });
    assert_eq!(slack_event(&w, &path, secret, &from_bot).await.0, 200);
    until(
        &w,
        "the bot's message processed",
        "select status = 'processed' from external_events where external_id = 'event:Ev03'",
    )
    .await;
    assert_eq!(posted.lock().unwrap().len(), 2);

    // A command Slack's API fails for in the request: answered at once that it is coming,
    // then the job's outcome through the command's response URL.
    let response_url = slack_api.replace("/api", "/response/1");
    let deferred = serde_urlencoded::to_string([
        ("user_id", "U-OA"),
        ("command", "/log"),
        ("text", "1h hiring sync"),
        ("trigger_id", "999.000.xyz"),
        ("response_url", response_url.as_str()),
    ])
    .unwrap();
    let (status, body) = hook(
        &w,
        &path,
        &slack_headers(secret, now(), deferred.as_bytes()),
        form_type,
        deferred.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("in a moment"), "{body}");
    let replies = slack_replies(&posted, 3).await;
    assert_eq!(replies[2]["via"], "response_url");
    assert_eq!(replies[2]["response_type"], "ephemeral");
    assert!(
        replies[2]["text"]
            .as_str()
            .unwrap()
            .contains("Logged “1h hiring sync”"),
        "{}",
        replies[2]
    );
    assert_eq!(logs(&w, "owner_a", "slack").await.len(), 1);
}

/// Sends a signed Events API body to Slack's webhook at `path`.
async fn slack_event(w: &World, path: &str, secret: &str, event: &Value) -> (u16, String) {
    let body = event.to_string();
    let headers = slack_headers(secret, now(), body.as_bytes());
    hook(w, path, &headers, "application/json", body.as_bytes()).await
}

/// The member's new log of `comment` (through `log-create`); returns the answer.
async fn member_log(w: &World, comment: &str) -> Value {
    let (status, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": w.id("org_a"), "comment": comment}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Waits until the fake Slack API got `n` messages; returns them.
async fn slack_replies(posted: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replies = posted.lock().unwrap().clone();
        if replies.len() >= n {
            return replies;
        }
        assert!(
            Instant::now() < deadline,
            "{} Slack replies, not {n}",
            replies.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `app` on a free loopback port; returns `http://addr`.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Slack's Web API, faked at the HTTP level for the bot token `xoxb-test`: `users.info`,
/// and `chat.postMessage`, whose messages it keeps.
async fn fake_slack_api() -> (String, Arc<Mutex<Vec<Value>>>) {
    let posted = Arc::new(Mutex::new(Vec::new()));
    let keep = posted.clone();
    let post = move |headers: HeaderMap, axum::Json(message): axum::Json<Value>| async move {
        if headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer xoxb-test")
        {
            keep.lock().unwrap().push(message);
            axum::Json(json!({"ok": true, "ts": "9.9"}))
        } else {
            axum::Json(json!({"ok": false, "error": "invalid_auth"}))
        }
    };
    let keep = posted.clone();
    let respond = move |axum::Json(mut message): axum::Json<Value>| async move {
        message["via"] = json!("response_url");
        keep.lock().unwrap().push(message);
        "ok"
    };
    // U-OA's lookup fails once (Slack's 500), then finds oa@a.test.
    let failed_once = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let users = move |headers: HeaderMap, uri: axum::http::Uri| async move {
        let authorized = headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer xoxb-test");
        let answer = match (authorized, uri.query()) {
            (false, _) => json!({"ok": false, "error": "invalid_auth"}),
            (true, Some("user=U-MG")) => {
                json!({"ok": true, "user": {"id": "U-MG", "profile": {"email": "MG@a.test"}}})
            }
            (true, Some("user=U-OA")) => {
                if !failed_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({})));
                }
                json!({"ok": true, "user": {"id": "U-OA", "profile": {"email": "oa@a.test"}}})
            }
            (true, _) => json!({"ok": false, "error": "user_not_found"}),
        };
        (StatusCode::OK, axum::Json(answer))
    };
    let app = Router::new()
        .route("/api/chat.postMessage", any(post))
        .route("/api/users.info", any(users))
        .route("/response/{n}", any(respond));
    (format!("{}/api", serve(app).await), posted)
}

fn worklog(event: &str, ts_ms: i64, seconds: i64) -> Vec<u8> {
    json!({
        "timestamp": ts_ms, "webhookEvent": event,
        "worklog": {
            "id": "31337", "issueId": "10002",
            "author": {"accountId": "acc-ma", "emailAddress": "ma@a.test", "displayName": "Ma"},
            "comment": "Fixed the login redirect", "started": "2026-11-20T09:00:00.000+0100",
            "timeSpentSeconds": seconds
        }
    })
    .to_string()
    .into_bytes()
}

fn hub_headers(secret: &str, body: &[u8], delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "x-hub-signature",
            format!("sha256={}", hmac_hex(secret, &[body])),
        ),
        ("x-atlassian-webhook-identifier", delivery.to_owned()),
    ]
}

/// A Jira webhook signed with `secret`, delivered as `delivery`.
async fn jira_hook(
    w: &World,
    path: &str,
    secret: &str,
    body: &[u8],
    delivery: &str,
) -> (u16, String) {
    hook(
        w,
        path,
        &hub_headers(secret, body, delivery),
        "application/json",
        body,
    )
    .await
}

#[tokio::test]
async fn jira_worklogs_become_move_and_remove_draft_logs() {
    let w = World::new().await;
    verify_emails(&w).await;
    let (id, secret) = integration(&w, "jira", json!({}), None).await;
    assert!(secret.starts_with("whsec_"), "a generated secret: {secret}");
    let path = format!("webhooks-ingest/jira/{id}");
    let ms = Utc::now().timestamp_millis();
    let typ = "application/json";

    // The issue event is kept as context: it names the key and project of issue 10002.
    let issue = json!({
        "timestamp": ms, "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10002", "key": "APL-7", "fields": {"summary": "Login redirect loop", "project": {"key": "APL"}}}
    })
    .to_string();
    let (status, body) = jira_hook(&w, &path, &secret, issue.as_bytes(), "d-1").await;
    assert_eq!(status, 200, "{body}");

    let created = worklog("worklog_created", ms, 5400);
    let (status, body) = jira_hook(&w, &path, &secret, &created, "d-2").await;
    assert_eq!(status, 200, "{body}");
    until(&w, "the worklog's draft", &format!(
        "select count(*) = 1 from time_logs where user_id = '{}' and source = 'jira' and status = 'needs_review'",
        w.id("member_a")
    )).await;
    let draft = &logs(&w, "member_a", "jira").await[0];
    assert_eq!(draft["duration_minutes"], 90, "{draft}");
    assert_eq!(draft["project_id"], json!(w.id("apollo")), "{draft}");
    assert_eq!(
        draft["comment"],
        "APL-7 Login redirect loop: Fixed the login redirect"
    );
    let started: DateTime<Utc> = serde_json::from_value(draft["started_at"].clone()).unwrap();
    assert_eq!(started.to_rfc3339(), "2026-11-20T08:00:00+00:00");
    let identity = w
        .rest(
            "admin_a",
            "integration_identities?select=external_id,user_id,matched_by",
        )
        .await;
    assert_eq!(
        identity,
        json!([{"external_id": "acc-ma", "user_id": w.id("member_a"), "matched_by": "email"}])
    );

    // Redelivery: 200, nothing new.
    let (status, body) = jira_hook(&w, &path, &secret, &created, "d-2").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"received":0,"duplicates":1}"#)
    );

    // Bad signature, stale timestamp, malformed: 4xx, nothing stored.
    let before = stored_events(&w, id).await;
    let updated = worklog("worklog_updated", ms, 3600);
    let (status, _) = hook(
        &w,
        &path,
        &hub_headers("wrong", &updated, "d-3"),
        typ,
        &updated,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = hook(&w, &path, &[], typ, &updated).await;
    assert_eq!(status, 401);
    let stale = worklog("worklog_updated", ms - 6 * 60 * 1000, 3600);
    let (status, body) = jira_hook(&w, &path, &secret, &stale, "d-4").await;
    assert_eq!(status, 401, "{body}");
    let malformed = br#"{"timestamp": 1, "worklog": {}}"#;
    let (status, _) = jira_hook(&w, &path, &secret, malformed, "d-5").await;
    assert_eq!(status, 400);
    assert_eq!(stored_events(&w, id).await, before);

    // An update moves the same draft; a deletion removes it.
    let (status, _) = jira_hook(&w, &path, &secret, &updated, "d-6").await;
    assert_eq!(status, 200);
    until(
        &w,
        "the draft's new duration",
        &format!(
            "select duration_minutes = 60 from time_logs where id = '{}'",
            draft["id"].as_str().unwrap()
        ),
    )
    .await;
    let deleted = worklog("worklog_deleted", ms, 3600);
    let (status, _) = jira_hook(&w, &path, &secret, &deleted, "d-7").await;
    assert_eq!(status, 200);
    until(
        &w,
        "the draft removed",
        &format!(
            "select deleted_at is not null from time_logs where id = '{}'",
            draft["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        logs(&w, "member_a", "jira").await.len(),
        1,
        "one draft all along"
    );

    // Another worklog's creation and deletion, processed in the wrong order (the creation's
    // job retried late): the deletion, received last, still wins.
    let tools = Tools {
        secrets: SecretBox::from_project_secret(tally_testkit::TEST_JWT_SECRET).unwrap(),
        http: Egress::new(Duration::from_secs(10), true).unwrap(),
    };
    let mut events = Vec::new();
    for (kind, received) in [("worklog_created", 2), ("worklog_deleted", 1)] {
        let mut body: Value = serde_json::from_slice(&worklog(kind, ms, 1800)).unwrap();
        body["worklog"]["id"] = json!("31338");
        let event: Uuid = sqlx::query_scalar(
            "insert into external_events (org_id, integration_id, external_id, event_type, payload, created_at) \
             values ($1, $2, $3, $4, $5, now() - make_interval(secs => $6)) returning id",
        )
        .bind(w.id("org_a"))
        .bind(id)
        .bind(format!("late-{kind}"))
        .bind(kind)
        .bind(body)
        .bind(f64::from(received))
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
        events.push(event);
    }
    for event in events.iter().rev() {
        let mut tx = RequestContext::service()
            .begin(&w.app.db.requests)
            .await
            .unwrap();
        let done = process::run(&mut tx, *event, &tools)
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        let Outcome::Processed(what) = done.outcome else {
            panic!("event {event} not processed")
        };
        println!("{what}");
    }
    assert_eq!(
        logs(&w, "member_a", "jira").await.len(),
        1,
        "no draft for the deleted worklog"
    );
}

/// A local HTTP server answering with whatever `body` holds.
async fn serve_text(body: Arc<Mutex<String>>) -> String {
    let app = Router::new().route(
        "/{*path}",
        any(|State(body): State<Arc<Mutex<String>>>| async move { body.lock().unwrap().clone() }),
    );
    serve(app.with_state(body)).await
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The design review, organized by the manager, the member and an outside guest attending
/// and the viewer declining; `extra` goes into the calendar after it.
fn ics(start: DateTime<Utc>, minutes: i64, cancelled: bool, extra: &str) -> String {
    let status = if cancelled {
        "STATUS:CANCELLED\r\n"
    } else {
        ""
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tally-test//EN\r\nBEGIN:VEVENT\r\n\
         UID:design-review-42@a.test\r\nDTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\n{status}\
         SUMMARY:Design review\r\nORGANIZER;CN=Mg:mailto:mg@a.test\r\n\
         ATTENDEE;PARTSTAT=ACCEPTED:mailto:MA@a.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:guest@elsewhere.test\r\n\
         ATTENDEE;PARTSTAT=DECLINED:mailto:va@a.test\r\nEND:VEVENT\r\n{extra}END:VCALENDAR\r\n",
        stamp(start),
        stamp(start),
        stamp(start + Span::minutes(minutes)),
    )
}

/// A daily 15-minute standup of the member's, three days running from `first`.
fn standup(first: DateTime<Utc>) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:standup@a.test\r\nDTSTAMP:{0}\r\nDTSTART:{0}\r\nDTEND:{1}\r\n\
         RRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:Standup\r\nATTENDEE:mailto:ma@a.test\r\nEND:VEVENT\r\n",
        stamp(first),
        stamp(first + Span::minutes(15)),
    )
}

/// Microsoft Graph faked at the HTTP level: the client-credentials token endpoint and the
/// event `Users/u1/Events/e1` (404 while `event` is `None`).
async fn fake_graph(event: Arc<Mutex<Option<Value>>>) -> String {
    let app = Router::new()
        .route(
            "/t1/oauth2/v2.0/token",
            any(|body: String| async move {
                let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
                let has = |k: &str, v: &str| form.iter().any(|(a, b)| a == k && b == v);
                if has("grant_type", "client_credentials") && has("client_id", "c1") && has("client_secret", "graph-client-secret") {
                    (StatusCode::OK, axum::Json(json!({"access_token": "graph-token", "token_type": "Bearer", "expires_in": 3599})))
                } else {
                    (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"})))
                }
            }),
        )
        .route(
            "/v1.0/Users/u1/Events/e1",
            any(|State(event): State<Arc<Mutex<Option<Value>>>>, headers: HeaderMap| async move {
                let authorized = headers.get("authorization").is_some_and(|v| v == "Bearer graph-token");
                let utc = headers.get("prefer").is_some_and(|v| v == "outlook.timezone=\"UTC\"");
                match (authorized && utc, event.lock().unwrap().clone()) {
                    (false, _) => (StatusCode::UNAUTHORIZED, axum::Json(json!({}))),
                    (true, None) => (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"code": "ErrorItemNotFound"}}))),
                    (true, Some(e)) => (StatusCode::OK, axum::Json(e)),
                }
            }),
        )
        .with_state(event);
    serve(app).await
}

/// Runs the ICS schedule now and waits until the poll and the processing it caused are done.
async fn poll_feeds(w: &World) {
    run_schedule(
        w,
        "integrations.poll_ics",
        "the feeds polled and their events processed",
        "select (select next_run_at > now() from private.schedules where name = 'integrations.poll_ics') \
            and not exists (select 1 from private.jobs where kind in ('poll_ics_feeds', 'process_external_event'))",
    )
    .await;
}

#[tokio::test]
async fn calendars_feeds_graph_and_signed_events_make_meeting_drafts() {
    let w = World::new().await;
    verify_emails(&w).await;
    let yesterday = (Utc::now() - Span::days(1)).trunc_subsecs(0);
    let feed = Arc::new(Mutex::new(ics(yesterday, 45, false, "")));
    let url = serve_text(feed.clone()).await;
    let graph_event = Arc::new(Mutex::new(None));
    let graph_api = fake_graph(graph_event.clone()).await;
    let (cal, secret) = integration(
        &w,
        "calendar",
        json!({
            "ics_url": format!("{url}/team.ics"),
            "graph": {"tenant_id": "t1", "client_id": "c1",
                      "token_url": format!("{graph_api}/t1/oauth2/v2.0/token"),
                      "api_url": format!("{graph_api}/v1.0")}
        }),
        None,
    )
    .await;
    set_credentials(&w, cal, &secret, "graph-client-secret").await;

    // The schedule polls the feed: a draft for each member attending (not the declined
    // viewer, not the outside guest).
    poll_feeds(&w).await;
    until(
        &w,
        "meeting drafts",
        "select count(*) = 2 from time_logs where source = 'calendar' and status = 'needs_review'",
    )
    .await;
    let meeting = w.term("work_modes", "meeting").await;
    let mut drafts = Vec::new();
    for who in ["member_a", "manager_a"] {
        let d = logs(&w, who, "calendar").await;
        assert_eq!(d.len(), 1, "{who}");
        assert_eq!(d[0]["duration_minutes"], 45);
        assert_eq!(d[0]["work_mode_id"], json!(meeting));
        assert_eq!(d[0]["comment"], "Design review");
        drafts.push(d[0]["id"].as_str().unwrap().to_owned());
    }
    assert!(logs(&w, "viewer_a", "calendar").await.is_empty());

    // Polling the unchanged feed stores nothing new; the moved meeting moves both drafts.
    let events = stored_events(&w, cal).await;
    poll_feeds(&w).await;
    assert_eq!(stored_events(&w, cal).await, events);
    let moved = yesterday + Span::hours(2);
    *feed.lock().unwrap() = ics(moved, 60, false, "");
    poll_feeds(&w).await;
    let at = |id: &str| {
        format!(
            "select (started_at, duration_minutes, deleted_at is null)::text from time_logs where id = '{id}'"
        )
    };
    let state = |t: DateTime<Utc>, minutes: i32| {
        format!("(\"{}\",{minutes},t)", t.format("%Y-%m-%d %H:%M:%S+00"))
    };
    for d in &drafts {
        let row: String = sqlx::query_scalar(sqlx::AssertSqlSafe(at(d)))
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
        assert_eq!(row, state(moved, 60));
    }
    assert_eq!(stored_events(&w, cal).await, events + 1);
    // Moved back, it is back where it was (an event seen before is not mistaken for a redelivery).
    *feed.lock().unwrap() = ics(yesterday, 45, false, "");
    poll_feeds(&w).await;
    let row: String = sqlx::query_scalar(sqlx::AssertSqlSafe(at(&drafts[0])))
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(row, state(yesterday, 45));

    // A recurring standup: one draft per occurrence in the window.
    let first = (Utc::now() - Span::days(3)).trunc_subsecs(0);
    *feed.lock().unwrap() = ics(yesterday, 45, false, &standup(first));
    poll_feeds(&w).await;
    let standups: Vec<Value> = logs(&w, "member_a", "calendar")
        .await
        .into_iter()
        .filter(|l| l["comment"] == "Standup")
        .collect();
    let starts: Vec<&str> = standups
        .iter()
        .map(|l| l["started_at"].as_str().unwrap())
        .collect();
    assert_eq!(standups.len(), 3, "{starts:?}");
    assert!(
        standups
            .iter()
            .all(|l| l["duration_minutes"] == 15 && l["deleted_at"].is_null())
    );

    // The manager finalizes theirs; the cancelled review removes only the member's draft, and
    // the standup deleted from the calendar removes its drafts.
    let (status, body) = w
        .call("manager_a", "log-finalize", json!({"log_id": drafts[1]}))
        .await;
    assert_eq!(status, 200, "{body}");
    *feed.lock().unwrap() = ics(yesterday, 45, true, "");
    poll_feeds(&w).await;
    let removed: bool =
        sqlx::query_scalar("select deleted_at is not null from time_logs where id = $1::uuid")
            .bind(&drafts[0])
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
    assert!(removed);
    let live: i64 = sqlx::query_scalar("select count(*) from time_logs where user_id = $1 and comment = 'Standup' and deleted_at is null")
        .bind(w.id("member_a"))
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(live, 0);
    let kept: Value = sqlx::query_scalar("select to_jsonb(l) from time_logs l where id = $1::uuid")
        .bind(&drafts[1])
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(
        (kept["status"].as_str(), kept["deleted_at"].is_null()),
        (Some("finalized"), true)
    );

    // Admins see how a feed fares: when it was read, and why it could not be.
    let fed = w
        .rest(
            "admin_a",
            &format!("integrations?select=polled_at,poll_error&id=eq.{cal}"),
        )
        .await;
    assert!(
        fed[0]["polled_at"].is_string() && fed[0]["poll_error"].is_null(),
        "{fed}"
    );
    let (broken, _) = integration(
        &w,
        "calendar",
        json!({"ics_url": "http://127.0.0.1:9/gone.ics"}),
        None,
    )
    .await;
    run_schedule(&w, "integrations.poll_ics", "the broken feed's error", &format!(
        "select coalesce(poll_error like 'fetching the feed failed%' and polled_at is null, false) \
         from integrations where id = '{broken}'"
    ))
    .await;

    // Microsoft Graph: the validation handshake, then notifications checked by clientState.
    let graph = format!("webhooks-ingest/graph/{cal}");
    let res = reqwest::Client::new()
        .post(w.app.url(&format!(
            "/functions/v1/{graph}?validationToken=Validation%3A+Testing+client+application"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        res.text().await.unwrap(),
        "Validation: Testing client application"
    );
    let budget = yesterday + Span::hours(6);
    *graph_event.lock().unwrap() = Some(json!({
        "id": "e1", "subject": "Budget review", "isCancelled": false,
        "start": {"dateTime": budget.format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC"},
        "end": {"dateTime": (budget + Span::minutes(30)).format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC"},
        "organizer": {"emailAddress": {"address": "mg@a.test"}},
        "attendees": [{"emailAddress": {"address": "ma@a.test"}, "status": {"response": "accepted"}}]
    }));
    let notify = |state: &str, change: &str| {
        json!({"value": [{
            "subscriptionId": "sub-1", "clientState": state, "changeType": change,
            "resource": "Users/u1/Events/e1", "resourceData": {"@odata.etag": "W/\"1\"", "id": "e1"},
            "tenantId": "t1"
        }]})
        .to_string()
    };
    let note = |state: &str| notify(state, "updated");
    let before = stored_events(&w, cal).await;
    let (status, _) = hook(
        &w,
        &graph,
        &[],
        "application/json",
        note("guess").as_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = hook(&w, &graph, &[], "application/json", b"{\"value\": 1}").await;
    assert_eq!(status, 400);
    assert_eq!(stored_events(&w, cal).await, before);
    let (status, _) = hook(
        &w,
        &graph,
        &[],
        "application/json",
        note(&secret).as_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = hook(
        &w,
        &graph,
        &[],
        "application/json",
        note(&secret).as_bytes(),
    )
    .await;
    assert_eq!(status, 202, "a redelivered notification");
    assert_eq!(stored_events(&w, cal).await, before + 1);
    // The event is read from Graph with the app's token: a draft for each member attending.
    let budget_drafts = "select count(*) from time_logs where comment = 'Budget review' and duration_minutes = 30 and deleted_at is null";
    until(
        &w,
        "Graph meeting drafts",
        &format!("select ({budget_drafts}) = 2"),
    )
    .await;
    // Deleted in Outlook: the drafts go.
    *graph_event.lock().unwrap() = None;
    let (status, _) = hook(
        &w,
        &graph,
        &[],
        "application/json",
        notify(&secret, "deleted").as_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    until(
        &w,
        "Graph meeting drafts removed",
        &format!("select ({budget_drafts}) = 0"),
    )
    .await;

    // A signed JSON meeting: valid, bad, stale, redelivered, malformed.
    let path = format!("webhooks-ingest/calendar/{cal}");
    let start = yesterday + Span::hours(5);
    let event = json!({"id": "delivery-1", "event": {
        "uid": "planning-7", "title": "Sprint planning", "start": start, "end": start + Span::minutes(30),
        "attendees": [{"email": "ma@a.test"}]
    }})
    .to_string();
    let signed = |body: &str, ts: i64| {
        vec![(
            "x-tally-signature",
            tally_signature(&secret, ts, body.as_bytes()),
        )]
    };
    let before = stored_events(&w, cal).await;
    let (status, _) = hook(
        &w,
        &path,
        &[(
            "x-tally-signature",
            tally_signature("nope", now(), event.as_bytes()),
        )],
        "application/json",
        event.as_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = hook(
        &w,
        &path,
        &signed(&event, now() - 301),
        "application/json",
        event.as_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    let backwards = event.replace("\"planning-7\"", "\"p8\"").replace(
        &(start + Span::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        &(start - Span::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    let (status, body) = hook(
        &w,
        &path,
        &signed(&backwards, now()),
        "application/json",
        backwards.as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(stored_events(&w, cal).await, before);
    let (status, _) = hook(
        &w,
        &path,
        &signed(&event, now()),
        "application/json",
        event.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = hook(
        &w,
        &path,
        &signed(&event, now()),
        "application/json",
        event.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"received":0,"duplicates":1}"#)
    );
    until(&w, "the planning draft", &format!(
        "select count(*) = 1 from time_logs where user_id = '{}' and comment = 'Sprint planning' and duration_minutes = 30",
        w.id("member_a")
    )).await;
}

/// What a receiver saw: (event, delivery id, signature verified).
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

/// A local receiver verifying `X-Tally-Signature` with `secret`; it fails the first
/// `failures` requests with 500.
async fn receiver(secret: Arc<Mutex<String>>, failures: usize, seen: Seen) -> String {
    let app = Router::new().route(
        "/hook",
        any(move |headers: HeaderMap, body: Bytes| {
            let (secret, seen) = (secret.clone(), seen.clone());
            async move {
                let header = headers["x-tally-signature"].to_str().unwrap().to_owned();
                let (t, v1) = header.split_once(',').unwrap();
                let ts: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
                let expected = hmac_hex(
                    &secret.lock().unwrap(),
                    &[ts.to_string().as_bytes(), b".", &body],
                );
                let verified =
                    v1.strip_prefix("v1=") == Some(expected.as_str()) && (now() - ts).abs() < 300;
                let payload: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(payload["event"], headers["x-tally-event"].to_str().unwrap());
                let mut seen = seen.lock().unwrap();
                seen.push((
                    payload["event"].as_str().unwrap().to_owned(),
                    headers["x-tally-delivery"].to_str().unwrap().to_owned(),
                    verified,
                ));
                if seen.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    format!("{}/hook", serve(app).await)
}

#[tokio::test]
async fn outbound_webhooks_retry_until_delivered_and_a_dead_receiver_is_disabled() {
    let app = tally_testkit::TestApp::spawn_with(|c| c.integrations.webhook_disable_after = 3)
        .await
        .unwrap();
    let w = World::with_app(app).await;
    let subscribe = [
        "log.created",
        "log.finalized",
        "log.deleted",
        "export.ready",
    ];

    // A receiver that fails twice, then succeeds.
    let (secret_a, seen_a) = (Arc::new(Mutex::new(String::new())), Seen::default());
    let url = receiver(secret_a.clone(), 2, seen_a.clone()).await;
    let (flaky, secret) = integration(
        &w,
        "generic",
        json!({"outbound": {"url": url, "events": subscribe}}),
        None,
    )
    .await;
    *secret_a.lock().unwrap() = secret;
    // A receiver that always fails.
    let (secret_b, seen_b) = (Arc::new(Mutex::new(String::new())), Seen::default());
    let url = receiver(secret_b.clone(), usize::MAX, seen_b.clone()).await;
    let (dead, secret) = integration(
        &w,
        "generic",
        json!({"outbound": {"url": url, "events": ["log.created"]}}),
        None,
    )
    .await;
    *secret_b.lock().unwrap() = secret;

    member_log(&w, "1h client call").await;
    until(&w, "delivered after two failures", &format!(
        "select status = 'delivered' and attempts = 3 and response_status = 200 from webhook_deliveries where integration_id = '{flaky}'"
    )).await;
    let seen = seen_a.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(event, delivery, verified)| event == "log.created"
                && *verified
                && delivery == &seen[0].1),
        "{seen:?}"
    );

    until(&w, "the dead receiver switched off", &format!(
        "select deliveries_disabled_at is not null and delivery_failures = 3 from integrations where id = '{dead}'"
    )).await;
    assert!(
        seen_b
            .lock()
            .unwrap()
            .iter()
            .all(|(_, _, verified)| *verified)
    );
    // Later events are no longer sent to it; the flaky one still gets them.
    let second = member_log(&w, "30m emails").await;
    until(&w, "second log delivered", &format!(
        "select count(*) = 2 from webhook_deliveries where integration_id = '{flaky}' and status = 'delivered'"
    )).await;
    until(&w, "the dead receiver's one delivery is dead, no new one made", &format!(
        "select count(*) = 1 and bool_and(status = 'dead' and attempts = 3) from webhook_deliveries where integration_id = '{dead}'"
    )).await;
    assert_eq!(
        seen_b.lock().unwrap().len(),
        3,
        "three attempts, then silence"
    );

    // An admin switches it back on: the count of failures starts afresh.
    let dead_row = format!("integrations?id=eq.{dead}");
    let back_on = |who: &'static str| {
        rest_write(
            &w,
            who,
            reqwest::Method::PATCH,
            &dead_row,
            json!({"deliveries_disabled_at": null}),
        )
    };
    let (status, row) = back_on("admin_a").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &row[0]["deliveries_disabled_at"],
            &row[0]["delivery_failures"]
        ),
        (&Value::Null, &json!(0)),
        "{row}"
    );
    // A member cannot.
    assert_eq!(back_on("member_a").await.1, json!([]));

    // Finalizing and deleting are events too.
    let log_id = second["log"]["id"].as_str().unwrap();
    w.classified(log_id).await;
    let (status, body) = w
        .call("member_a", "log-finalize", json!({"log_id": log_id}))
        .await;
    assert_eq!(status, 200, "{body}");
    sqlx::query("update time_logs set deleted_at = now() where id = $1::uuid")
        .bind(log_id)
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    until(&w, "finalized and deleted delivered", &format!(
        "select count(*) = 4 from webhook_deliveries where integration_id = '{flaky}' and status = 'delivered'"
    )).await;
    // An export tells its subscribers it is ready.
    let (status, body) = w
        .call(
            "admin_a",
            "export-create",
            json!({"org_id": w.id("org_a"), "format": "csv", "scope": "logs", "from": "2026-01-01", "to": "2026-12-31"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    until(&w, "export.ready delivered", &format!(
        "select count(*) = 1 from webhook_deliveries where integration_id = '{flaky}' and event = 'export.ready' \
         and status = 'delivered' and payload #>> '{{export,export_id}}' = '{}'",
        body["export_id"].as_str().unwrap()
    ))
    .await;
    let events: Vec<String> = seen_a.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert!(
        events.contains(&"log.finalized".to_owned()) && events.contains(&"log.deleted".to_owned()),
        "{events:?}"
    );

    // Only owners and admins of org A see integrations, identities, events and deliveries.
    for table in [
        "integrations",
        "webhook_deliveries",
        "external_events",
        "integration_identities",
    ] {
        for who in ["member_a", "manager_a", "viewer_a", "owner_b"] {
            assert_eq!(
                w.rest(who, &format!("{table}?select=id")).await,
                json!([]),
                "{who} reads {table}"
            );
        }
    }
    assert_eq!(
        w.rest("owner_a", "integrations?select=id")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let deliveries = w.rest("admin_a", "webhook_deliveries?select=id").await;
    assert_eq!(
        deliveries.as_array().unwrap().len(),
        6,
        "5 to the flaky receiver, 1 to the dead"
    );
    // The secret is never returned, and is stored sealed where no client role reaches.
    let rows = w.rest("owner_a", "integrations?select=*").await;
    assert!(
        rows[0].get("secret").is_none() && rows[0].get("sealed").is_none(),
        "{rows}"
    );
    let sealed: Vec<u8> = sqlx::query_scalar(
        "select sealed from private.integration_secrets where integration_id = $1",
    )
    .bind(flaky)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    let plain = secret_a.lock().unwrap().clone();
    assert!(
        !sealed
            .windows(plain.len())
            .any(|win| win == plain.as_bytes())
    );
    // Only the org's owners and admins set secrets; others get 404.
    for who in ["member_a", "owner_b"] {
        let (status, _) = w
            .call(who, "integration-secret", json!({"integration_id": flaky}))
            .await;
        assert_eq!(status, 404, "{who}");
    }
    let (status, _) = w
        .call(
            "admin_a",
            "integration-secret",
            json!({"integration_id": flaky, "secret": "short"}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn generic_webhooks_are_signed_stored_once_and_time_entries_become_drafts() {
    let w = World::new().await;
    verify_emails(&w).await;
    let (id, secret) = integration(&w, "generic", json!({}), None).await;
    let path = format!("webhooks-ingest/generic/{id}");
    let typ = "application/json";
    let entry = json!({
        "id": "evt-1", "type": "time_entry", "entry_id": "e-9", "user_email": "MA@a.test",
        "comment": "Pairing on the importer", "started_at": "2026-11-24T13:00:00Z", "duration_minutes": 50
    })
    .to_string();
    let sign = |body: &str, ts: i64| {
        vec![(
            "x-tally-signature",
            tally_signature(&secret, ts, body.as_bytes()),
        )]
    };
    for (headers, why) in [
        (
            vec![(
                "x-tally-signature",
                tally_signature("wrong", now(), entry.as_bytes()),
            )],
            "bad",
        ),
        (sign(&entry, now() + 400), "from the future"),
        (sign(&entry, now() - 400), "stale"),
        (vec![("x-tally-signature", "t=1".to_owned())], "no v1"),
    ] {
        let (status, _) = hook(&w, &path, &headers, typ, entry.as_bytes()).await;
        assert_eq!(status, 401, "{why}");
    }
    for bad in [
        r#"{"type":"time_entry"}"#,
        r#"{"id":"x","type":"time_entry","user_email":"ma@a.test"}"#,
        "[]",
    ] {
        let (status, body) = hook(&w, &path, &sign(bad, now()), typ, bad.as_bytes()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(stored_events(&w, id).await, 0);
    let (status, body) = hook(&w, &path, &sign(&entry, now()), typ, entry.as_bytes()).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"received":1,"duplicates":0}"#)
    );
    let (status, body) = hook(&w, &path, &sign(&entry, now()), typ, entry.as_bytes()).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"received":0,"duplicates":1}"#)
    );
    until(&w, "the entry's draft", &format!(
        "select count(*) = 1 from time_logs where user_id = '{}' and source = 'api' and duration_minutes = 50",
        w.id("member_a")
    )).await;
    // Unknown integrations, providers that do not match, and oversized bodies.
    let (status, _) = hook(
        &w,
        &format!("webhooks-ingest/slack/{id}"),
        &sign(&entry, now()),
        typ,
        entry.as_bytes(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = hook(
        &w,
        &format!("webhooks-ingest/generic/{}", Uuid::now_v7()),
        &sign(&entry, now()),
        typ,
        entry.as_bytes(),
    )
    .await;
    assert_eq!(status, 404);
    let big = format!(
        r#"{{"id":"big","type":"x","pad":"{}"}}"#,
        "a".repeat(1024 * 1024)
    );
    let (status, _) = hook(&w, &path, &sign(&big, now()), typ, big.as_bytes()).await;
    assert_eq!(status, 413);
    // The seed's name works too.
    let other = json!({"id": "evt-2", "type": "deploy", "service": "api"}).to_string();
    let (status, _) = hook(
        &w,
        &format!("webhooks.ingest/generic/{id}"),
        &sign(&other, now()),
        typ,
        other.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    until(&w, "the deploy event processed", &format!(
        "select status = 'processed' from external_events where integration_id = '{id}' and external_id = 'evt-2'"
    )).await;
}

#[tokio::test]
async fn integrations_reach_only_public_addresses_unless_allowed() {
    let app = tally_testkit::TestApp::spawn_with(|c| c.integrations.webhook_allow_private = false)
        .await
        .unwrap();
    let w = World::with_app(app).await;
    // A local server standing in for the machine's own services: it must never be called.
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let local = serve(Router::new().route(
        "/{*path}",
        any(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n" }
        }),
    ))
    .await;
    let port = local.rsplit(':').next().unwrap();

    // A feed at a literal loopback address is not fetched; admins read why.
    let (feed, _) = integration(
        &w,
        "calendar",
        json!({"ics_url": format!("{local}/feed.ics")}),
        None,
    )
    .await;
    run_schedule(&w, "integrations.poll_ics", "the feed refused", &format!(
        "select coalesce(poll_error like 'the feed is not fetched: %127.0.0.1 is not a public address', false) \
         from integrations where id = '{feed}'"
    ))
    .await;
    let shown = w
        .rest(
            "admin_a",
            &format!("integrations?select=poll_error&id=eq.{feed}"),
        )
        .await;
    assert!(shown[0]["poll_error"].is_string(), "{shown}");

    // A receiver named by a host that resolves to loopback gets nothing; the delivery's
    // error says why.
    let (hook, _) = integration(
        &w,
        "generic",
        json!({"outbound": {"url": format!("http://localhost:{port}/hook"), "events": ["log.created"]}}),
        None,
    )
    .await;
    member_log(&w, "1h client call").await;
    until(&w, "the delivery refused", &format!(
        "select coalesce(bool_and(status = 'failed' and error like '%localhost has no public address%'), false) \
         from webhook_deliveries where integration_id = '{hook}'"
    ))
    .await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// Graph's `/subscriptions`, faked at the HTTP level as Graph documents it: a new subscription
/// is validated first (Graph POSTs `?validationToken=…` to the notification URL and expects
/// it back as text), then kept in `subs` by id; PATCH renews, DELETE removes, an unknown id is
/// 404. The calendar `users/nobody/events` is refused (403).
async fn fake_graph_subscriptions(subs: Arc<Mutex<Vec<Value>>>) -> String {
    type Subs = Arc<Mutex<Vec<Value>>>;
    let create = |State(subs): State<Subs>, headers: HeaderMap, body: Bytes| async move {
        let body: Value = serde_json::from_slice(&body).unwrap();
        if headers
            .get("authorization")
            .is_none_or(|v| v != "Bearer graph-token")
        {
            return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
        }
        if body["resource"] == "users/nobody/events" {
            let error = json!({"error": {"code": "ExtensionError", "message": "Operation: Create; Exception: [Status Code: Forbidden]"}});
            return (StatusCode::FORBIDDEN, axum::Json(error));
        }
        let challenge = "Validation: Testing client application";
        let url = format!(
            "{}?{}",
            body["notificationUrl"].as_str().unwrap(),
            serde_urlencoded::to_string([("validationToken", challenge)]).unwrap()
        );
        let answer = reqwest::Client::new()
            .post(url)
            .header("content-type", "text/plain")
            .send()
            .await
            .unwrap();
        if answer.status() != 200 || answer.text().await.unwrap() != challenge {
            let error = json!({"error": {"code": "ValidationError", "message": "Subscription validation request failed."}});
            return (StatusCode::BAD_REQUEST, axum::Json(error));
        }
        let mut sub = body.clone();
        sub["id"] = json!(Uuid::new_v4().to_string());
        subs.lock().unwrap().push(sub.clone());
        (StatusCode::CREATED, axum::Json(sub))
    };
    let one = |State(subs): State<Subs>,
               method: axum::http::Method,
               axum::extract::Path(id): axum::extract::Path<String>,
               body: Bytes| async move {
        let mut subs = subs.lock().unwrap();
        let Some(at) = subs.iter().position(|s| s["id"] == id.as_str()) else {
            let error = json!({"error": {"code": "ResourceNotFound", "message": "The object was not found."}});
            return (StatusCode::NOT_FOUND, axum::Json(error));
        };
        if method == axum::http::Method::DELETE {
            subs.remove(at);
            return (StatusCode::NO_CONTENT, axum::Json(Value::Null));
        }
        let change: Value = serde_json::from_slice(&body).unwrap();
        subs[at]["expirationDateTime"] = change["expirationDateTime"].clone();
        subs[at]["renewed"] = json!(true);
        (StatusCode::OK, axum::Json(subs[at].clone()))
    };
    let app = Router::new()
        .route(
            "/t1/oauth2/v2.0/token",
            any(|| async {
                axum::Json(json!({"access_token": "graph-token", "expires_in": 3599}))
            }),
        )
        .route("/v1.0/subscriptions", any(create))
        .route("/v1.0/subscriptions/{id}", any(one))
        .with_state(subs);
    serve(app).await
}

/// Runs `schedule` now and waits until `done` holds.
async fn run_schedule(w: &World, schedule: &str, what: &str, done: &str) {
    sqlx::query("update private.schedules set next_run_at = now() where name = $1")
        .bind(schedule)
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    until(w, what, done).await;
}

#[tokio::test]
async fn graph_subscriptions_are_created_renewed_recreated_and_deleted() {
    let w = World::new().await;
    let subs = Arc::new(Mutex::new(Vec::new()));
    let graph = fake_graph_subscriptions(subs.clone()).await;
    let calendars = ["users/ann@a.test/events", "users/ma@a.test/events"];
    let settings = |resources: &[&str]| {
        json!({"graph": {"tenant_id": "t1", "client_id": "c1", "resources": resources,
                         "token_url": format!("{graph}/t1/oauth2/v2.0/token"),
                         "api_url": format!("{graph}/v1.0")}})
    };
    let (cal, secret) = integration(&w, "calendar", settings(&calendars), None).await;
    // Without the app's client secret nothing is subscribed; admins read why.
    until(&w, "the missing credential reported", &format!(
        "select coalesce(poll_error like '%client secret as the integration''s api_token%', false) from integrations where id = '{cal}'"
    ))
    .await;
    set_credentials(&w, cal, &secret, "graph-client-secret").await;
    let stored =
        format!("select count(*) from private.graph_subscriptions where integration_id = '{cal}'");
    until(
        &w,
        "both calendars subscribed",
        &format!("select ({stored}) = 2"),
    )
    .await;
    // The job notes its success once the subscriptions are stored, a moment after.
    until(
        &w,
        "the renewal reported",
        &format!("select polled_at is not null from integrations where id = '{cal}'"),
    )
    .await;
    let made = subs.lock().unwrap().clone();
    assert_eq!(made.len(), 2, "{made:?}");
    let hook = w
        .app
        .url(&format!("/functions/v1/webhooks-ingest/graph/{cal}"));
    for (sub, calendar) in made.iter().zip(calendars) {
        assert_eq!(sub["resource"], calendar);
        assert_eq!(sub["notificationUrl"], hook.as_str());
        assert_eq!(sub["clientState"], secret.as_str());
        assert_eq!(sub["changeType"], "created,updated,deleted");
        let ends: DateTime<Utc> =
            serde_json::from_value(sub["expirationDateTime"].clone()).unwrap();
        let minutes = (ends - Utc::now()).num_minutes();
        assert!((4220..=4230).contains(&minutes), "{minutes}");
    }
    let row = w
        .rest(
            "admin_a",
            &format!("integrations?select=polled_at,poll_error&id=eq.{cal}"),
        )
        .await;
    assert!(
        row[0]["polled_at"].is_string() && row[0]["poll_error"].is_null(),
        "{row}"
    );

    // One ends within a day: renewed, same id. The other Graph lost: made anew.
    let (first, second) = (
        made[0]["id"].as_str().unwrap(),
        made[1]["id"].as_str().unwrap(),
    );
    sqlx::query("update private.graph_subscriptions set expires_at = now() + interval '1 hour' where integration_id = $1")
        .bind(cal)
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    subs.lock().unwrap().retain(|s| s["id"] != second);
    run_schedule(&w, "integrations.graph_subscriptions", "renewed and recreated", &format!(
        "select count(*) = 2 and bool_and(expires_at > now() + interval '2 days') \
                and bool_or(subscription_id = '{first}') and not bool_or(subscription_id = '{second}') \
         from private.graph_subscriptions where integration_id = '{cal}'"
    ))
    .await;
    let now = subs.lock().unwrap().clone();
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now[0]["id"], first);
    assert_eq!(now[0]["renewed"], true);
    assert_eq!(now[1]["resource"], calendars[1]);

    // A calendar Graph refuses: the reason is on the row for admins; the rest goes on (the
    // calendar left out loses its subscription).
    let (status, _) = rest_write(
        &w,
        "admin_a",
        reqwest::Method::PATCH,
        &format!("integrations?id=eq.{cal}"),
        json!({"config": settings(&[calendars[0], "users/nobody/events"])}),
    )
    .await;
    assert_eq!(status, 200);
    until(&w, "the refusal reported", &format!(
        "select coalesce(poll_error = 'Graph would not create the subscription of users/nobody/events: 403 Forbidden: Operation: Create; Exception: [Status Code: Forbidden]', false) \
         from integrations where id = '{cal}'"
    ))
    .await;
    assert_eq!(
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(stored.clone()))
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap(),
        1
    );
    // Without the refused calendar the error clears.
    let (status, _) = rest_write(
        &w,
        "admin_a",
        reqwest::Method::PATCH,
        &format!("integrations?id=eq.{cal}"),
        json!({"config": settings(&[calendars[0]])}),
    )
    .await;
    assert_eq!(status, 200);
    until(&w, "the error cleared", &format!(
        "select ({stored}) = 1 and (select poll_error is null from integrations where id = '{cal}')"
    ))
    .await;
    let left = subs.lock().unwrap().clone();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], first);

    // Switched off: no subscription left at Graph.
    let (status, _) = rest_write(
        &w,
        "admin_a",
        reqwest::Method::PATCH,
        &format!("integrations?id=eq.{cal}"),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, 200);
    until(&w, "all unsubscribed", &format!("select ({stored}) = 0")).await;
    assert!(subs.lock().unwrap().is_empty());
}
