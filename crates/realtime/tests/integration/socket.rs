//! The socket itself: the handshake's refusals, heartbeats, joins, broadcast between sockets
//! (JSON and binary frames, `self`, `ack`), leave, unmatched topics, malformed frames and
//! slow clients.

use futures_util::SinkExt;
use serde_json::{Value, json};
use tally_testkit::TestApp;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::{connect, join, next, parts, send, silent};

#[tokio::test]
async fn the_handshake_refuses_missing_bad_and_expired_keys() {
    let app = TestApp::spawn().await.unwrap();
    let http = reqwest::Client::new();
    let now = chrono_now();
    let expired = app
        .keys
        .sign(&json!({"role": "anon", "exp": now - 100}))
        .unwrap();
    let no_role = app.keys.sign(&json!({"exp": now + 100})).unwrap();
    let foreign =
        tally_core::JwtKeys::new("another-secret-that-is-long-enough-for-hs256").anon_key();
    for (query, error) in [
        (String::new(), "API key is missing"),
        (format!("apikey={expired}"), "Token has expired"),
        (
            format!("apikey={no_role}"),
            "Fields `role` and `exp` are required in JWT",
        ),
        (
            format!("apikey={foreign}"),
            "Failed to validate JWT signature",
        ),
        (
            "apikey=garbage".to_owned(),
            "The token provided is not a valid JWT",
        ),
    ] {
        let res = http
            .get(app.url(&format!("/realtime/v1/websocket?{query}&vsn=1.0.0")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{query}");
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"error": error}));
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn heartbeats_joins_and_broadcasts_between_sockets() {
    let app = TestApp::spawn().await.unwrap();
    // supabase-py's format (vsn 1, objects) and supabase-js's (vsn 2, arrays) on one topic.
    let mut py = connect(&app, "1.0.0").await;
    let mut js = connect(&app, "2.0.0").await;

    send(
        &mut py,
        json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}),
    )
    .await;
    assert_eq!(
        next(&mut py).await,
        json!({"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "1"})
    );

    let config = |echo: bool, ack: bool| {
        json!({"config": {"broadcast": {"self": echo, "ack": ack},
        "presence": {"key": "", "enabled": false}, "postgres_changes": [], "private": false}})
    };
    send(&mut py, json!({"topic": "realtime:room", "event": "phx_join", "payload": config(false, false), "ref": "2", "join_ref": "2"})).await;
    let joined = next(&mut py).await;
    assert_eq!(joined["event"], "phx_reply");
    assert_eq!(joined["ref"], "2");
    assert_eq!(
        joined["payload"],
        json!({"status": "ok", "response": {"postgres_changes": []}})
    );
    send(
        &mut js,
        json!(["7", "7", "realtime:room", "phx_join", config(true, true)]),
    )
    .await;
    assert_eq!(
        next(&mut js).await,
        json!(["7", "7", "realtime:room", "phx_reply", {"status": "ok", "response": {"postgres_changes": []}}])
    );

    // A broadcast from py reaches js, not py itself (self: false).
    send(
        &mut py,
        json!({"topic": "realtime:room", "event": "broadcast", "ref": "3", "join_ref": "2",
        "payload": {"type": "broadcast", "event": "cursor", "payload": {"x": 1}}}),
    )
    .await;
    assert_eq!(
        next(&mut js).await,
        json!([null, null, "realtime:room", "broadcast", {"type": "broadcast", "event": "cursor", "payload": {"x": 1}}])
    );
    silent(&mut py).await;

    // js sends realtime-js's binary frame; with ack and self it gets the reply and its own copy.
    let mut frame = vec![3u8, 1, 1, 13, 4, 0, 1];
    frame.extend_from_slice(b"78realtime:roomping{\"n\":2}");
    js.send(Ws::Binary(frame.into())).await.unwrap();
    let mut got = [next(&mut js).await, next(&mut js).await];
    got.sort_by_key(|m| m[3].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        got[0],
        json!([null, null, "realtime:room", "broadcast", {"type": "broadcast", "event": "ping", "payload": {"n": 2}}])
    );
    assert_eq!(
        got[1],
        json!(["7", "8", "realtime:room", "phx_reply", {"status": "ok", "response": {}}])
    );
    let heard = next(&mut py).await;
    assert_eq!(
        heard["payload"],
        json!({"type": "broadcast", "event": "ping", "payload": {"n": 2}})
    );
    assert!(heard["ref"].is_null());

    // Joining the same topic again closes the old channel first.
    send(
        &mut js,
        json!(["9", "9", "realtime:room", "phx_join", config(false, false)]),
    )
    .await;
    assert_eq!(
        next(&mut js).await,
        json!(["7", "7", "realtime:room", "phx_close", {}])
    );
    assert_eq!(next(&mut js).await[3], "phx_reply");

    // Leave: a reply, then phx_close; afterwards the topic is unmatched and silent.
    send(&mut py, json!({"topic": "realtime:room", "event": "phx_leave", "payload": {}, "ref": "4", "join_ref": "2"})).await;
    assert_eq!(next(&mut py).await["payload"]["status"], "ok");
    let closed = next(&mut py).await;
    assert_eq!(
        (closed["event"].as_str(), closed["ref"].as_str()),
        (Some("phx_close"), Some("2"))
    );
    send(&mut js, json!(["9", "10", "realtime:room", "broadcast", {"type": "broadcast", "event": "e", "payload": {}}])).await;
    silent(&mut py).await;
    send(
        &mut py,
        json!({"topic": "realtime:room", "event": "broadcast", "ref": "5", "payload": {}}),
    )
    .await;
    assert_eq!(
        next(&mut py).await["payload"],
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
}

#[tokio::test]
async fn malformed_frames_and_bad_joins_get_answers_not_panics() {
    let app = TestApp::spawn().await.unwrap();
    let mut js = connect(&app, "2.0.0").await;
    for junk in [
        "not json",
        "[1,2]",
        "[null,null,7,\"e\",{}]",
        "42",
        "{\"topic\":\"x\"}",
    ] {
        js.send(Ws::Text(junk.into())).await.unwrap();
    }
    js.send(Ws::Binary(vec![3u8, 200, 1].into())).await.unwrap();
    js.send(Ws::Binary(vec![9u8; 40].into())).await.unwrap();
    send(&mut js, json!([null, "5", "phoenix", "heartbeat", {}])).await;
    assert_eq!(
        next(&mut js).await,
        json!([null, "5", "phoenix", "phx_reply", {"status": "ok", "response": {}}]),
        "the socket still answers"
    );

    // Bad bindings: the join succeeds with every binding echoed, then a system error says why.
    for (binding, error) in [
        (
            json!({"event": "*", "schema": "public", "table": "time_logs", "filter": "status=like.x"}),
            "Error parsing `filter` params",
        ),
        (
            json!({"event": "*", "schema": "public", "table": "nope"}),
            "Unable to subscribe to changes",
        ),
        (
            json!({"event": "*", "schema": "auth", "table": "users"}),
            "Unable to subscribe to changes",
        ),
    ] {
        let reply = join(
            &mut js,
            true,
            "realtime:bad",
            json!({"config": {"postgres_changes": [binding]}}),
        )
        .await;
        assert_eq!(reply["status"], "ok");
        assert!(reply["response"]["postgres_changes"][0]["id"].is_u64());
        let system = loop {
            let (_, event, payload) = parts(&next(&mut js).await);
            if event == "system" {
                break payload;
            }
        };
        assert_eq!(system["status"], "error");
        assert!(
            system["message"].as_str().unwrap().starts_with(error),
            "{system}"
        );
    }
    let bad_token = json!({"config": {}, "access_token": "garbage"});
    let reply = join(&mut js, true, "realtime:room", bad_token).await;
    assert_eq!(
        reply["response"]["reason"],
        "The token provided is not a valid JWT"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let app = TestApp::spawn().await.unwrap();
    let mut sender = connect(&app, "2.0.0").await;
    let mut sleeper = connect(&app, "2.0.0").await;
    let config = json!({"config": {"presence": {"enabled": false}}});
    join(&mut sender, true, "realtime:flood", config.clone()).await;
    join(&mut sleeper, true, "realtime:flood", config).await;
    // 64 MB of broadcasts, more than the kernel's socket buffers and the server's queue hold;
    // the sleeper reads none of them.
    let blob = "b".repeat(64 * 1024);
    for n in 0..1024 {
        send(
            &mut sender,
            json!([null, n.to_string(), "realtime:flood", "broadcast",
            {"type": "broadcast", "event": "e", "payload": {"blob": blob}}]),
        )
        .await;
    }
    send(&mut sender, json!([null, "h", "phoenix", "heartbeat", {}])).await;
    loop {
        if parts(&next(&mut sender).await).1 == "phx_reply" {
            break;
        }
    }
    let metrics = crate::metrics(&app).await;
    assert!(
        metrics.contains("realtime_slow_clients_dropped_total"),
        "{metrics}"
    );
    // What the sleeper finds when it wakes: what was queued, then the end of the socket.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        use futures_util::StreamExt;
        loop {
            match sleeper.next().await {
                Some(Ok(Ws::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the slow socket was closed");
}
