use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tally_testkit::TestApp;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async, tungstenite::Message as Ws,
};

type Client = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, vsn: &str) -> Client {
    let url = format!(
        "ws://{}/realtime/v1/websocket?apikey={}&vsn={vsn}",
        app.addr,
        app.keys.anon_key()
    );
    connect_async(url).await.unwrap().0
}

/// The next text frame as JSON (a second at most).
async fn next(ws: &mut Client) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .expect("a message within 2 s")
            .unwrap()
            .unwrap();
        if let Ws::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Nothing arrives for a moment.
async fn silent(ws: &mut Client) {
    let got = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(got.is_err(), "unexpected {got:?}");
}

async fn send(ws: &mut Client, message: Value) {
    ws.send(Ws::Text(message.to_string().into())).await.unwrap();
}

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
async fn joins_asking_for_what_is_not_built_yet_are_refused_with_the_reason() {
    let app = TestApp::spawn().await.unwrap();
    let mut js = connect(&app, "2.0.0").await;
    let changes = json!({"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": "time_logs"}]}});
    send(
        &mut js,
        json!(["1", "1", "realtime:logs", "phx_join", changes]),
    )
    .await;
    let reply = next(&mut js).await;
    assert_eq!(reply[4]["status"], "error");
    assert!(
        reply[4]["response"]["reason"]
            .as_str()
            .unwrap()
            .contains("postgres_changes")
    );
    let bad_token = json!({"config": {}, "access_token": "garbage"});
    send(
        &mut js,
        json!(["2", "2", "realtime:room", "phx_join", bad_token]),
    )
    .await;
    assert_eq!(
        next(&mut js).await[4]["response"]["reason"],
        "The token provided is not a valid JWT"
    );
}
