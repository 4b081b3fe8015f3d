//! Presence on one instance (state after join, diffs on track, re-track and leave) and two
//! instances over one database: broadcast, presence and postgres_changes reach sockets of both.

use serde_json::{Value, json};
use tally_testkit::Fixture;

use crate::{connect, drain, join, next, parts, send, subscribe};

fn with_presence(key: &str) -> Value {
    json!({"config": {"broadcast": {"self": false}, "presence": {"key": key, "enabled": true}}})
}

/// The next message of `event`, skipping others.
async fn next_of(ws: &mut crate::Client, event: &str) -> Value {
    loop {
        let (_, e, payload) = parts(&next(ws).await);
        if e == event {
            return payload;
        }
    }
}

#[tokio::test]
async fn presence_state_after_join_and_diffs_on_track_and_leave() {
    let app = crate::app().await;
    let mut ann = connect(&app, "2.0.0").await;
    assert_eq!(
        join(&mut ann, true, "realtime:lobby", with_presence("ann")).await["status"],
        "ok"
    );
    assert_eq!(next_of(&mut ann, "presence_state").await, json!({}));
    send(
        &mut ann,
        json!(["1", "2", "realtime:lobby", "presence",
        {"type": "presence", "event": "track", "payload": {"online_at": 1}}]),
    )
    .await;
    let mut got = [next(&mut ann).await, next(&mut ann).await];
    got.sort_by_key(|m| m[3].as_str().unwrap().to_owned());
    assert_eq!(
        got[0][4],
        json!({"status": "ok", "response": {}}),
        "the track is acknowledged"
    );
    let diff = &got[1][4];
    assert_eq!(got[1][3], "presence_diff");
    assert_eq!(diff["leaves"], json!({}));
    let meta = &diff["joins"]["ann"]["metas"][0];
    assert_eq!(meta["online_at"], 1);
    let first_ref = meta["phx_ref"].as_str().unwrap().to_owned();

    // supabase-py's socket joins later: the state holds ann.
    let mut bob = connect(&app, "1.0.0").await;
    join(&mut bob, false, "realtime:lobby", with_presence("bob")).await;
    let state = next_of(&mut bob, "presence_state").await;
    assert_eq!(state["ann"]["metas"][0]["phx_ref"], first_ref.as_str());

    // Re-tracking replaces the meta (phx_ref_prev), and both sockets hear it.
    send(
        &mut ann,
        json!(["1", "3", "realtime:lobby", "presence",
        {"type": "presence", "event": "track", "payload": {"online_at": 2}}]),
    )
    .await;
    let diff = next_of(&mut bob, "presence_diff").await;
    assert_eq!(diff["leaves"]["ann"]["metas"][0]["online_at"], 1);
    assert_eq!(
        diff["joins"]["ann"]["metas"][0]["phx_ref_prev"],
        first_ref.as_str()
    );
    assert_eq!(next_of(&mut ann, "phx_reply").await["status"], "ok");

    // A bad presence payload is refused; leaving removes ann.
    send(
        &mut ann,
        json!(["1", "4", "realtime:lobby", "presence", {"type": "presence", "event": "dance"}]),
    )
    .await;
    assert_eq!(next_of(&mut ann, "phx_reply").await["status"], "error");
    send(
        &mut ann,
        json!(["1", "5", "realtime:lobby", "phx_leave", {}]),
    )
    .await;
    let diff = next_of(&mut bob, "presence_diff").await;
    assert_eq!(diff["joins"], json!({}));
    assert_eq!(diff["leaves"]["ann"]["metas"][0]["online_at"], 2);
}

#[tokio::test]
async fn two_instances_share_broadcasts_presence_and_changes() {
    let one = crate::app().await;
    let two = one.another_instance().await.unwrap();
    let f = Fixture::load(&one).await.unwrap();
    let mut a = connect(&one, "2.0.0").await;
    let mut b = connect(&two, "2.0.0").await;
    join(&mut a, true, "realtime:room", with_presence("a")).await;
    join(&mut b, true, "realtime:room", with_presence("b")).await;
    next_of(&mut a, "presence_state").await;
    next_of(&mut b, "presence_state").await;

    // A broadcast from one instance reaches the other; so does one over NOTIFY's limit.
    let big = "z".repeat(12_000);
    for payload in [json!({"x": 1}), json!({"big": big})] {
        send(
            &mut a,
            json!(["1", "2", "realtime:room", "broadcast",
            {"type": "broadcast", "event": "e", "payload": payload}]),
        )
        .await;
        assert_eq!(next_of(&mut b, "broadcast").await["payload"], payload);
    }

    // b tracks on instance two; a, on instance one, hears the diff; a socket joining instance
    // one later finds b in its presence_state.
    send(
        &mut b,
        json!(["1", "3", "realtime:room", "presence",
        {"type": "presence", "event": "track", "payload": {"name": "b"}}]),
    )
    .await;
    let diff = next_of(&mut a, "presence_diff").await;
    assert_eq!(diff["joins"]["b"]["metas"][0]["name"], "b");
    let mut c = connect(&one, "1.0.0").await;
    join(&mut c, false, "realtime:room", with_presence("c")).await;
    assert_eq!(
        next_of(&mut c, "presence_state").await["b"]["metas"][0]["name"],
        "b"
    );

    // A change is delivered by both instances to their own subscribers.
    let owner = f.token(&one, "owner_a");
    let bindings = json!([{"event": "INSERT", "schema": "public", "table": "time_logs"}]);
    subscribe(&mut a, true, "realtime:logs", &owner, bindings.clone()).await;
    subscribe(&mut b, true, "realtime:logs", &owner, bindings).await;
    drain(&mut a).await;
    drain(&mut b).await;
    sqlx::query("insert into time_logs (org_id, user_id, duration_minutes) values ($1, $2, 5)")
        .bind(f.id("org_a"))
        .bind(f.id("member_a"))
        .execute(&one.db.owner)
        .await
        .unwrap();
    assert_eq!(
        next_of(&mut a, "postgres_changes").await["data"]["type"],
        "INSERT"
    );
    assert_eq!(
        next_of(&mut b, "postgres_changes").await["data"]["type"],
        "INSERT"
    );

    // b's socket closes: instance one hears b leave.
    drop(b);
    let diff = next_of(&mut a, "presence_diff").await;
    assert_eq!(diff["leaves"]["b"]["metas"][0]["name"], "b");
}
