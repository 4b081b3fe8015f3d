//! Who hears what: RLS decides every delivery (per role, per org, at the moment of the change),
//! tokens expire and are replaced, private channels and org channels.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tally_testkit::Fixture;
use uuid::Uuid;

use crate::{
    Client, changes, connect, drain, drain_some, join, next, next_binary, parts, send, silent, sql,
    subscribe,
};

fn heard(messages: &[serde_json::Value]) -> BTreeSet<(String, String)> {
    changes(messages)
        .into_iter()
        .map(|(op, _, id)| (op, id))
        .collect()
}

#[tokio::test]
async fn each_role_hears_exactly_the_changes_it_may_read() {
    let app = crate::app().await;
    let f = Fixture::load(&app).await.unwrap();
    let people = [
        "owner_a",
        "manager_a",
        "member_a",
        "member2_a",
        "viewer_a",
        "owner_b",
        "anon",
    ];
    let mut sockets: Vec<Client> = Vec::new();
    for (n, who) in people.iter().enumerate() {
        let mut ws = connect(&app, if n % 2 == 0 { "2.0.0" } else { "1.0.0" }).await;
        subscribe(
            &mut ws,
            n % 2 == 0,
            "realtime:feed",
            &f.token(&app, who),
            json!([{"event": "*", "schema": "public", "table": "time_logs"}]),
        )
        .await;
        sockets.push(ws);
    }
    // The service role hears everything: once it has heard a step, so has everyone else.
    let mut sentinel = connect(&app, "2.0.0").await;
    subscribe(
        &mut sentinel,
        true,
        "realtime:feed",
        &f.token(&app, "service"),
        json!([{"event": "*", "schema": "public", "table": "time_logs"}]),
    )
    .await;
    // What the fixture's own inserts may have sent is not part of the test.
    for ws in sockets.iter_mut().chain([&mut sentinel]) {
        drain(ws).await;
    }
    let (a, b) = (f.id("org_a"), f.id("org_b"));
    let (l1, l2, l3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (ma, m2, ob, lb) = (
        f.id("member_a"),
        f.id("member2_a"),
        f.id("owner_b"),
        f.id("log_b"),
    );
    let set = |items: &[(&str, Uuid)]| -> BTreeSet<(String, String)> {
        items
            .iter()
            .map(|(op, id)| ((*op).to_owned(), id.to_string()))
            .collect()
    };
    // Each step is heard before the next: a row already gone when the feed reads it is not
    // sent as an insert (its delete follows).
    let steps = [
        format!(
            "insert into time_logs (id, org_id, user_id, comment, duration_minutes) values
           ('{l1}', '{a}', '{ma}', 'one', 10), ('{l2}', '{a}', '{m2}', 'two', 20);
         insert into time_logs (id, org_id, user_id, comment, duration_minutes) values
           ('{l3}', '{b}', '{ob}', 'three', 30);"
        ),
        format!(
            "update time_logs set comment = 'one, edited' where id = '{l1}';
         delete from time_logs where id = '{l2}';
         delete from time_logs where id = '{lb}';"
        ),
    ];
    let expected = [
        [
            set(&[("INSERT", l1), ("INSERT", l2)]),
            set(&[("INSERT", l1)]), // manager_a leads member_a's team
            set(&[("INSERT", l1)]),
            set(&[("INSERT", l2)]),
            set(&[]), // viewers read no one's logs
            set(&[("INSERT", l3)]),
            set(&[]),
        ],
        [
            set(&[("UPDATE", l1), ("DELETE", l2)]),
            set(&[("UPDATE", l1)]),
            set(&[("UPDATE", l1)]),
            set(&[("DELETE", l2)]),
            set(&[]),
            set(&[("DELETE", lb)]),
            set(&[]),
        ],
    ];
    for (step, expected) in steps.iter().zip(&expected) {
        sql(&app, step).await;
        let mut seen = 0;
        while seen < 3 {
            seen += changes(&[next(&mut sentinel).await]).len();
        }
        for ((who, ws), want) in people.iter().zip(sockets.iter_mut()).zip(expected) {
            let got = drain(ws).await;
            assert_eq!(&heard(&got), want, "{who} after {step}");
            // Nothing of the other org, not even in an old record.
            let text = serde_json::to_string(&got).unwrap();
            let other = if who.ends_with("_b") { a } else { b };
            assert!(
                !text.contains(&other.to_string()),
                "{who} heard of the other org"
            );
        }
    }

    // member_a leaves the org: from the next change on they hear nothing, still connected.
    sql(
        &app,
        &format!(
            "delete from memberships where user_id = '{}'",
            f.id("member_a")
        ),
    )
    .await;
    for ws in &mut sockets {
        drain(ws).await;
    }
    sql(
        &app,
        &format!("update time_logs set comment = 'after' where id = '{l1}'"),
    )
    .await;
    assert_eq!(
        heard(&drain_some(&mut sockets[0]).await),
        set(&[("UPDATE", l1)])
    );
    assert!(
        drain(&mut sockets[2]).await.is_empty(),
        "removed from the org"
    );
}

#[tokio::test]
async fn tokens_expire_and_are_replaced_on_the_channel() {
    let app = crate::app().await;
    let f = Fixture::load(&app).await.unwrap();
    let (org, ma, m2) = (f.id("org_a"), f.id("member_a"), f.id("member2_a"));

    // A token that expires in two seconds: the channel gets a system error, then phx_close.
    let exp = chrono::Utc::now().timestamp() + 2;
    let short = app
        .keys
        .sign(&json!({"sub": ma, "role": "authenticated", "exp": exp}))
        .unwrap();
    let mut ws = connect(&app, "2.0.0").await;
    subscribe(
        &mut ws,
        true,
        "realtime:short",
        &short,
        json!([{"event": "*", "schema": "public", "table": "time_logs"}]),
    )
    .await;
    // (Skipping what the fixture's own inserts may have sent.)
    let system = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let m = next(&mut ws).await;
            if parts(&m).1 == "system" {
                break m;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        system,
        json!([null, null, "realtime:short", "system", {"extension": "system", "status": "error",
            "message": "Token has expired", "channel": "short"}])
    );
    assert_eq!(
        next(&mut ws).await,
        json!(["1", "1", "realtime:short", "phx_close", {}])
    );
    sql(
        &app,
        &format!(
            "insert into time_logs (org_id, user_id, duration_minutes) values ('{org}', '{ma}', 5)"
        ),
    )
    .await;
    silent(&mut ws).await;

    // access_token swaps whose RLS applies: from member_a to member2_a.
    subscribe(
        &mut ws,
        true,
        "realtime:swap",
        &f.token(&app, "member_a"),
        json!([{"event": "INSERT", "schema": "public", "table": "time_logs"}]),
    )
    .await;
    send(&mut ws, json!(["1", "2", "realtime:swap", "access_token", {"access_token": f.token(&app, "member2_a")}])).await;
    // A heartbeat's reply means the socket has handled the token (messages go in order).
    send(&mut ws, json!([null, "hb", "phoenix", "heartbeat", {}])).await;
    while parts(&next(&mut ws).await).0 != "phoenix" {}
    sql(
        &app,
        &format!(
            "insert into time_logs (org_id, user_id, duration_minutes) values
        ('{org}', '{ma}', 6), ('{org}', '{m2}', 7)"
        ),
    )
    .await;
    let got = drain_some(&mut ws).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        parts(&got[0]).2["data"]["record"]["user_id"],
        m2.to_string()
    );

    // A bad token pushed later closes the channel with the reason.
    send(
        &mut ws,
        json!(["1", "3", "realtime:swap", "access_token", {"access_token": "garbage"}]),
    )
    .await;
    assert_eq!(
        parts(&next(&mut ws).await).2["message"],
        "The token provided is not a valid JWT"
    );
    assert_eq!(parts(&next(&mut ws).await).1, "phx_close");
}

/// A signed-out session's tokens are refused everywhere (as the gateway promises): its open
/// channels close at once and hear nothing more, and it can neither join, connect nor be pushed
/// as `access_token`.
#[tokio::test]
async fn a_signed_out_sessions_tokens_are_refused_and_its_channels_closed() {
    let app = crate::app().await;
    let f = Fixture::load(&app).await.unwrap();
    let (org, ma) = (f.id("org_a"), f.id("member_a"));
    let session = Uuid::new_v4();
    sql(
        &app,
        &format!("insert into auth.sessions (id, user_id) values ('{session}', '{ma}')"),
    )
    .await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = app
        .keys
        .sign(
            &json!({"sub": ma, "role": "authenticated", "aud": "authenticated",
            "exp": exp, "session_id": session}),
        )
        .unwrap();
    let insert = format!(
        "insert into time_logs (org_id, user_id, duration_minutes) values ('{org}', '{ma}', 5)"
    );
    let mut ws = connect(&app, "2.0.0").await;
    let bindings = json!([{"event": "INSERT", "schema": "public", "table": "time_logs"}]);
    subscribe(&mut ws, true, "realtime:mine", &token, bindings.clone()).await;
    drain(&mut ws).await;
    sql(&app, &insert).await;
    assert_eq!(
        changes(&drain_some(&mut ws).await).len(),
        1,
        "heard while signed in"
    );

    // Signing out through /auth/v1 ends the session.
    let res = reqwest::Client::new()
        .post(app.url("/auth/v1/logout?scope=local"))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let got = drain_some(&mut ws).await;
    let events: Vec<(String, String, Value)> = got.iter().map(parts).collect();
    assert_eq!(events[0].1, "system", "{got:?}");
    assert_eq!(events[0].2["message"], "Session not found or revoked");
    assert_eq!(events[1].1, "phx_close", "{got:?}");
    sql(&app, &insert).await;
    silent(&mut ws).await;

    // Joining with the token again is refused; so is a socket whose key it is.
    let reply = join(
        &mut ws,
        true,
        "realtime:again",
        json!({"config": {"postgres_changes": bindings}, "access_token": token}),
    )
    .await;
    assert_eq!(reply["status"], "error", "{reply}");
    assert_eq!(reply["response"]["reason"], "Session not found or revoked");
    let url = format!(
        "ws://{}/realtime/v1/websocket?apikey={token}&vsn=2.0.0",
        app.addr
    );
    let refused = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("401"), "{refused}");

    // Pushed as a channel's new token, it closes that channel.
    subscribe(
        &mut ws,
        true,
        "realtime:swap",
        &f.token(&app, "member_a"),
        bindings,
    )
    .await;
    drain(&mut ws).await;
    send(
        &mut ws,
        json!(["1", "2", "realtime:swap", "access_token", {"access_token": token}]),
    )
    .await;
    assert_eq!(
        parts(&next(&mut ws).await).2["message"],
        "Session not found or revoked"
    );
    assert_eq!(parts(&next(&mut ws).await).1, "phx_close");
}

#[tokio::test]
async fn org_channels_and_private_topics_admit_only_whom_rls_admits() {
    let app = crate::app().await;
    let f = Fixture::load(&app).await.unwrap();
    let topic = format!("realtime:org:{}", f.id("org_a"));
    let config = |token: String, private: bool| {
        json!({"config": {"broadcast": {"self": false}, "presence": {"enabled": false},
            "private": private}, "access_token": token})
    };
    let mut member = connect(&app, "2.0.0").await;
    let mut owner = connect(&app, "1.0.0").await;
    assert_eq!(
        join(
            &mut member,
            true,
            &topic,
            config(f.token(&app, "member_a"), true)
        )
        .await["status"],
        "ok"
    );
    assert_eq!(
        join(
            &mut owner,
            false,
            &topic,
            config(f.token(&app, "owner_a"), false)
        )
        .await["status"],
        "ok"
    );

    // Another org's owner and anon are refused, private flag or not.
    for (who, private) in [("owner_b", true), ("owner_b", false), ("anon", false)] {
        let mut ws = connect(&app, "2.0.0").await;
        let reply = join(&mut ws, true, &topic, config(f.token(&app, who), private)).await;
        assert_eq!(reply["status"], "error", "{who}");
        assert_eq!(
            reply["response"]["reason"],
            format!(
                "Unauthorized: You do not have permissions to read from this Channel topic: org:{}",
                f.id("org_a")
            )
        );
    }
    // A private topic no policy opens.
    let reply = join(
        &mut member,
        true,
        "realtime:secret",
        config(f.token(&app, "member_a"), true),
    )
    .await;
    assert_eq!(reply["status"], "error");

    // Members talk on their org's channel.
    send(&mut member, json!(["1", "2", topic, "broadcast", {"type": "broadcast", "event": "hi", "payload": {"n": 1}}])).await;
    let (_, event, payload) = parts(&next(&mut owner).await);
    assert_eq!(
        (event.as_str(), &payload["payload"]),
        ("broadcast", &json!({"n": 1}))
    );
}

/// `POST /realtime/v1/api/broadcast` (realtime-js `httpSend`): a public topic's joined sockets
/// hear it; an org topic is written only by its members; a bad token or a stranger sends
/// nothing.
#[tokio::test]
async fn broadcasts_over_http_follow_the_socket_rules() {
    let app = crate::app().await;
    let f = Fixture::load(&app).await.unwrap();
    let org_topic = format!("org:{}", f.id("org_a"));
    let mut ws = connect(&app, "2.0.0").await;
    let config = |token: String| {
        json!({"config": {"broadcast": {"self": false}, "presence": {"enabled": false}},
            "access_token": token})
    };
    assert_eq!(
        join(
            &mut ws,
            true,
            "realtime:room",
            config(f.token(&app, "anon"))
        )
        .await["status"],
        "ok"
    );
    let org = format!("realtime:{org_topic}");
    assert_eq!(
        join(&mut ws, true, &org, config(f.token(&app, "owner_a"))).await["status"],
        "ok"
    );
    drain(&mut ws).await;
    let send_http = |token: String, messages: Value| {
        reqwest::Client::new()
            .post(app.url("/realtime/v1/api/broadcast"))
            .header("apikey", app.keys.anon_key())
            .bearer_auth(token)
            .json(&json!({"messages": messages}))
            .send()
    };
    let res = send_http(
        f.token(&app, "anon"),
        json!([{"topic": "room", "event": "ping", "payload": {"n": 1}}]),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 202);
    let (topic, event, payload) = parts(&next(&mut ws).await);
    assert_eq!(
        (topic.as_str(), event.as_str(), &payload),
        (
            "realtime:room",
            "broadcast",
            &json!({"type": "broadcast", "event": "ping", "payload": {"n": 1}})
        )
    );
    // The org's channel: another org's owner is refused and nothing arrives; a member's lands.
    let stranger = send_http(
        f.token(&app, "owner_b"),
        json!([{"topic": org_topic, "event": "x", "payload": {}, "private": true}]),
    )
    .await
    .unwrap();
    assert_eq!(stranger.status(), 403);
    silent(&mut ws).await;
    let member = send_http(
        f.token(&app, "member_a"),
        json!([{"topic": org_topic, "event": "hello", "payload": {"from": "member"}, "private": true}]),
    )
    .await
    .unwrap();
    assert_eq!(member.status(), 202);
    let (topic, _, payload) = parts(&next(&mut ws).await);
    assert_eq!(
        (topic, &payload["payload"]),
        (org.clone(), &json!({"from": "member"}))
    );
    // Bytes (realtime-js `httpSend` of a Uint8Array, protocol 2.0.0) to the org's private
    // channel arrive as realtime-js's binary broadcast frame (kind 4), bytes intact.
    let bytes = [1u8, 2, 3, 4, 5, 0, 255];
    let res = reqwest::Client::new()
        .post(app.url(&format!(
            "/realtime/v1/api/broadcast/{org_topic}/events/binary?private=true"
        )))
        .header("apikey", app.keys.anon_key())
        .header("content-type", "application/octet-stream")
        .bearer_auth(f.token(&app, "member_a"))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mut expected = vec![4u8, u8::try_from(org.len()).unwrap(), 6, 0, 0];
    expected.extend_from_slice(org.as_bytes());
    expected.extend_from_slice(b"binary");
    expected.extend_from_slice(&bytes);
    assert_eq!(next_binary(&mut ws).await, expected);
    // A bad token or a bad body sends nothing.
    let bad = send_http("not-a-jwt".into(), json!([{"topic": "room", "event": "x"}]))
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let res = reqwest::Client::new()
        .post(app.url("/realtime/v1/api/broadcast"))
        .header("apikey", app.keys.anon_key())
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    silent(&mut ws).await;
}
