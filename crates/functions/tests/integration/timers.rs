//! Running timers: one per person under concurrent starts, stopped by the server's clock,
//! started and stopped offline through sync-push, counted in the day summary while running,
//! reminded of when left running, and announced as events.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::world::World;

/// `who`'s running timers in org A, read as the database owner.
async fn running(w: &World, who: &str) -> Vec<Uuid> {
    sqlx::query_scalar(
        "select id from time_logs where org_id = $1 and user_id = $2 and source = 'timer' \
         and ended_at is null and started_at is not null and deleted_at is null",
    )
    .bind(w.id("org_a"))
    .bind(w.id(who))
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap()
}

/// Log `id` as stored.
async fn stored(w: &World, id: &str) -> Value {
    sqlx::query_scalar("select to_jsonb(l) from time_logs l where id = $1::uuid")
        .bind(id)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap()
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The database's clock.
async fn db_now(w: &World) -> DateTime<Utc> {
    sqlx::query_scalar("select now()")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap()
}

/// Subscribes org A's outbound webhooks to `events` (the receiver is never reached; the
/// deliveries written are what is checked).
async fn subscribe(w: &World, events: &[&str]) {
    sqlx::query(
        "insert into integrations (org_id, provider, name, config) values ($1, 'generic', 'hooks', $2)",
    )
    .bind(w.id("org_a"))
    .bind(json!({"outbound": {"url": "https://hooks.invalid/tally", "events": events}}))
    .execute(&w.app.db.owner)
    .await
    .unwrap();
}

/// The outbound events written for log `id`, oldest first.
async fn deliveries(w: &World, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select event from webhook_deliveries where payload #>> '{log,id}' = $1 order by created_at, id",
    )
    .bind(id)
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_starts_at_once_leave_one_timer_running_and_a_stop_uses_the_servers_clock() {
    let w = World::new().await;
    subscribe(&w, &["timer.started", "timer.stopped", "log.updated"]).await;
    let org = w.id("org_a");
    let start = |comment: &'static str| {
        w.call(
            "member_a",
            "timer-start",
            json!({"org_id": org, "comment": comment, "project_id": w.id("apollo")}),
        )
    };
    for round in 0..3 {
        // Two clients of one person start a timer at the same moment.
        let ((s1, b1), (s2, b2)) = tokio::join!(start("pairing"), start("code review"));
        assert_eq!((s1, s2), (201, 201), "round {round}: {b1} {b2}");
        let now_running = running(&w, "member_a").await;
        assert_eq!(now_running.len(), 1, "round {round}: {now_running:?}");
        let ids = [&b1["log"]["id"], &b2["log"]["id"]].map(|v| v.as_str().unwrap().to_owned());
        let winner = now_running[0].to_string();
        assert!(ids.contains(&winner));
        // The other one was stopped at the instant the winner started, and said so.
        let loser = ids.iter().find(|id| **id != winner).unwrap();
        let stopper = if b1["log"]["id"] == winner.as_str() {
            &b1
        } else {
            &b2
        };
        assert_eq!(stopper["stopped"]["id"], loser.as_str(), "{stopper}");
        let lost = stored(&w, loser).await;
        assert_eq!(
            instant(&lost["ended_at"]),
            instant(&stored(&w, &winner).await["started_at"])
        );
    }

    // Stop with the server's clock: the end is the database's now, the duration follows.
    let before = db_now(&w).await;
    let (status, body) = w
        .call("member_a", "timer-stop", json!({"org_id": org}))
        .await;
    assert_eq!(status, 200, "{body}");
    let after = db_now(&w).await;
    let ended = instant(&body["log"]["ended_at"]);
    assert!(before <= ended && ended <= after, "{body}");
    assert_eq!(body["log"]["duration_minutes"], 0, "{body}");
    assert_eq!(body["capped"], false);
    assert!(running(&w, "member_a").await.is_empty());
    let stopped = body["log"]["id"].as_str().unwrap().to_owned();
    let events = deliveries(&w, &stopped).await;
    // Started, then the stop's log.updated and timer.stopped (the worker's classification, a
    // log.updated too, lands before or after it).
    assert_eq!(
        events.first().map(String::as_str),
        Some("timer.started"),
        "{events:?}"
    );
    let stop = events.iter().position(|e| e == "timer.stopped");
    assert!(
        stop.is_some_and(|i| events[i - 1] == "log.updated"),
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| e.starts_with("timer.")).count(),
        2,
        "{events:?}"
    );

    // Nothing runs now: 404; a stopped log named: 409.
    let (status, body) = w
        .call("member_a", "timer-stop", json!({"org_id": org}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = w
        .call(
            "member_a",
            "timer-stop",
            json!({"org_id": org, "log_id": stopped}),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // A given end: not in the future, not before the start; a day at most.
    let (_, body) = w
        .call("member_a", "timer-start", json!({"org_id": org}))
        .await;
    assert_eq!(
        body["log"]["status"], "ready",
        "nothing to classify: {body}"
    );
    let id = body["log"]["id"].as_str().unwrap().to_owned();
    let future = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, _) = w
        .call(
            "member_a",
            "timer-stop",
            json!({"org_id": org, "ended_at": future}),
        )
        .await;
    assert_eq!(status, 400);
    let past = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, _) = w
        .call(
            "member_a",
            "timer-stop",
            json!({"org_id": org, "ended_at": past}),
        )
        .await;
    assert_eq!(status, 400);
    sqlx::query(
        "update time_logs set started_at = now() - interval '30 hours' where id = $1::uuid",
    )
    .bind(&id)
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    let (status, body) = w
        .call("member_a", "timer-stop", json!({"org_id": org}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["capped"].as_bool(),
            body["log"]["duration_minutes"].as_i64()
        ),
        (Some(true), Some(1440))
    );

    // Who may: a viewer starts nothing, another org's owner neither; an admin stops anyone's.
    let (status, _) = w
        .call("viewer_a", "timer-start", json!({"org_id": org}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = w
        .call("owner_b", "timer-start", json!({"org_id": org}))
        .await;
    assert_eq!(status, 403);
    let (_, body) = w
        .call("member_a", "timer-start", json!({"org_id": org}))
        .await;
    let id = body["log"]["id"].as_str().unwrap().to_owned();
    let (status, _) = w
        .call(
            "owner_b",
            "timer-stop",
            json!({"org_id": w.id("org_b"), "log_id": id}),
        )
        .await;
    assert_eq!(status, 404, "another org's timer does not exist for them");
    let (status, body) = w
        .call(
            "admin_a",
            "timer-stop",
            json!({"org_id": org, "log_id": id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Through /rest/v1 the database keeps the rule: a second running log stops the first.
    let rest_timer = |started: &str| {
        reqwest::Client::new()
            .post(w.app.url("/rest/v1/time_logs"))
            .header("apikey", w.app.keys.anon_key())
            .header("Prefer", "return=representation")
            .bearer_auth(w.token("member_a"))
            .json(
                &json!({"org_id": org, "user_id": w.id("member_a"), "source": "timer",
                          "status": "ready", "started_at": started}),
            )
            .send()
    };
    let mut ids = Vec::new();
    for minutes_ago in [50, 20] {
        let started = (Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339();
        let res = rest_timer(&started).await.unwrap();
        assert_eq!(res.status(), 201);
        let rows: Value = res.json().await.unwrap();
        ids.push(rows[0]["id"].as_str().unwrap().to_owned());
    }
    let (first, second) = (stored(&w, &ids[0]).await, stored(&w, &ids[1]).await);
    assert_eq!(
        first["duration_minutes"], 30,
        "the first stopped at the second's start"
    );
    assert_eq!(first["ended_at"], second["started_at"]);
    assert_eq!(second["ended_at"], Value::Null, "the second runs");
}

#[tokio::test]
async fn timers_start_and_stop_offline_through_sync_push() {
    let w = World::new().await;
    let org = w.id("org_a");
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let start_first = (Utc::now() - chrono::Duration::minutes(90)).to_rfc3339();
    let start_second = (Utc::now() - chrono::Duration::minutes(30)).to_rfc3339();
    let upsert = |id: Uuid, base: Option<i64>, values: Value| {
        json!({"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "upsert", "id": id,
               "base_version": base, "values": values})
    };
    // Offline, the phone started a timer, then another (the first stops at the second's start).
    let (status, body) = w
        .call(
            "member_a",
            "sync-push",
            json!({"org_id": org, "mutations": [
                upsert(first, None, json!({"source": "timer", "started_at": start_first, "comment": "support"})),
                upsert(second, None, json!({"source": "timer", "started_at": start_second})),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "applied"),
        "{body}"
    );
    let one = stored(&w, &first.to_string()).await;
    assert_eq!(one["duration_minutes"], 60, "{one}");
    assert_eq!(running(&w, "member_a").await, [second]);

    // Offline stop: the end the phone saw (pushed once the phone has pulled the classified row).
    w.classified(&second.to_string()).await;
    let version = stored(&w, &second.to_string()).await["version"].as_i64();
    let end = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (status, body) = w
        .call(
            "member_a",
            "sync-push",
            json!({"org_id": org, "mutations": [upsert(second, version, json!({"ended_at": end}))]}),
        )
        .await;
    assert_eq!(body["results"][0]["status"], "applied", "{body}");
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["row"]["duration_minutes"], 25, "{body}");
    assert!(running(&w, "member_a").await.is_empty());

    // Classification reads the comment but leaves a timer's clock alone.
    let classified = w.classified(&first.to_string()).await;
    assert_eq!(classified["started_at"], one["started_at"]);
    assert_eq!(classified["duration_minutes"], 60);
}

#[tokio::test]
async fn a_running_timer_counts_in_the_day_summary_up_to_now_and_is_reminded_of_once() {
    let w = World::new().await;
    subscribe(&w, &["timer.running_long"]).await;
    let org = w.id("org_a");
    let (status, body) = w
        .call(
            "member_a",
            "timer-start",
            json!({"org_id": org, "project_id": w.id("apollo")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["log"]["id"].as_str().unwrap().to_owned();
    sqlx::query(
        "update time_logs set started_at = now() - interval '90 minutes' where id = $1::uuid",
    )
    .bind(&id)
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    // The person's summed minutes once a rollup has run and counted `want` (the in-process
    // worker's rollup may hold the days a moment): the last sum seen, after 10 s at most.
    let world = &w;
    let total = |want: i64| async move {
        let mut seen = None;
        for _ in 0..50 {
            tally_insights::rollup::dirty(&world.app.db.owner)
                .await
                .unwrap();
            seen = sqlx::query_scalar::<_, Option<i64>>(
                "select sum(total_minutes) from user_day_summaries where org_id = $1 and user_id = $2",
            )
            .bind(org)
            .bind(world.id("member_a"))
            .fetch_one(&world.app.db.owner)
            .await
            .unwrap();
            if seen == Some(want) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        seen
    };
    assert_eq!(total(90).await, Some(90), "running: counted up to now");
    sqlx::query(
        "update time_logs set started_at = now() - interval '100 minutes' where id = $1::uuid",
    )
    .bind(&id)
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!(total(100).await, Some(100), "each rollup counts it again");

    // Eight hours by default: not yet; once past, one reminder, never two.
    assert_eq!(
        tally_functions::timers::remind::remind(&w.app.db.owner, 8)
            .await
            .unwrap(),
        0
    );
    sqlx::query("update time_logs set started_at = now() - interval '9 hours' where id = $1::uuid")
        .bind(&id)
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    // (The in-process worker runs the same job every five minutes: between it and these two
    // runs, exactly one reminder.)
    let mut reminded = 0;
    for _ in 0..2 {
        reminded += tally_functions::timers::remind::remind(&w.app.db.owner, 8)
            .await
            .unwrap();
    }
    assert!(reminded <= 1, "{reminded}");
    assert_eq!(deliveries(&w, &id).await, ["timer.running_long"]);

    let (status, _) = w
        .call("member_a", "timer-stop", json!({"org_id": org}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(total(540).await, Some(540), "stopped: its whole span");
}
