//! `/realtime/v1` through real websockets on the real server over a real database: the
//! socket protocol in both serializers, postgres_changes filtered by RLS, broadcast, presence,
//! private channels, two instances, and supabase-js.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod changes;
mod compat;
mod fanout;
mod generated;
mod presence;
mod security;
mod socket;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tally_testkit::TestApp;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async, tungstenite::Message as Ws,
};

/// A websocket client.
pub type Client = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket with the anon key as its apikey.
pub async fn connect(app: &TestApp, vsn: &str) -> Client {
    let url = format!(
        "ws://{}/realtime/v1/websocket?apikey={}&vsn={vsn}",
        app.addr,
        app.keys.anon_key()
    );
    connect_async(url).await.unwrap().0
}

/// The next text frame as JSON (five seconds at most).
pub async fn next(ws: &mut Client) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .unwrap();
        if let Ws::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The next frame, which must be binary (five seconds at most).
pub async fn next_binary(ws: &mut Client) -> Vec<u8> {
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message within 5 s")
        .unwrap()
        .unwrap();
    match frame {
        Ws::Binary(bytes) => bytes.to_vec(),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// Nothing arrives for a moment.
pub async fn silent(ws: &mut Client) {
    let got = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(got.is_err(), "unexpected {got:?}");
}

/// Sends a JSON text frame.
pub async fn send(ws: &mut Client, message: Value) {
    ws.send(Ws::Text(message.to_string().into())).await.unwrap();
}

/// A message's `(topic, event, payload)`, in either serializer.
pub fn parts(m: &Value) -> (String, String, Value) {
    match m {
        Value::Array(a) => (
            a[2].as_str().unwrap().to_owned(),
            a[3].as_str().unwrap().to_owned(),
            a[4].clone(),
        ),
        _ => (
            m["topic"].as_str().unwrap().to_owned(),
            m["event"].as_str().unwrap().to_owned(),
            m["payload"].clone(),
        ),
    }
}

/// Joins `topic` (vsn 2 arrays when `v2`) with `payload`; the reply's payload.
pub async fn join(ws: &mut Client, v2: bool, topic: &str, payload: Value) -> Value {
    let message = if v2 {
        json!(["1", "1", topic, "phx_join", payload])
    } else {
        json!({"topic": topic, "event": "phx_join", "payload": payload, "ref": "1", "join_ref": "1"})
    };
    send(ws, message).await;
    loop {
        let (t, event, payload) = parts(&next(ws).await);
        if t == topic && event == "phx_reply" {
            return payload;
        }
    }
}

/// Joins `topic` listening to `bindings` as the holder of `token`, and waits for the feed to
/// say it is subscribed.
pub async fn subscribe(ws: &mut Client, v2: bool, topic: &str, token: &str, bindings: Value) {
    let payload = json!({"config": {"postgres_changes": bindings,
        "presence": {"enabled": false}}, "access_token": token});
    let reply = join(ws, v2, topic, payload).await;
    assert_eq!(reply["status"], "ok", "{reply}");
    let (_, event, system) = parts(&next(ws).await);
    assert_eq!(
        (event.as_str(), &system["message"]),
        ("system", &json!("Subscribed to PostgreSQL")),
        "{system}"
    );
}

/// Every message until the socket has been quiet for half a second.
pub async fn drain(ws: &mut Client) -> Vec<Value> {
    let mut got = Vec::new();
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_millis(500), ws.next()).await
    {
        if let Ws::Text(text) = frame {
            got.push(serde_json::from_str(&text).unwrap());
        }
    }
    got
}

/// Like [`drain`], for when something is due: waits up to ten seconds for the first message
/// (a loaded machine may be slow), then drains.
pub async fn drain_some(ws: &mut Client) -> Vec<Value> {
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Ws::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a message within 10 s");
    let mut got = vec![first];
    got.extend(drain(ws).await);
    got
}

/// The postgres_changes among `messages`, as `(type, table, record id or old_record id)`.
pub fn changes(messages: &[Value]) -> Vec<(String, String, String)> {
    messages
        .iter()
        .map(parts)
        .filter(|(_, event, _)| event == "postgres_changes")
        .map(|(_, _, p)| {
            let data = &p["data"];
            let id = data["record"]["id"]
                .as_str()
                .or(data["old_record"]["id"].as_str())
                .unwrap()
                .to_owned();
            (
                data["type"].as_str().unwrap().to_owned(),
                data["table"].as_str().unwrap().to_owned(),
                id,
            )
        })
        .collect()
}

/// A server without job workers: rows change only when a test changes them.
pub async fn app() -> TestApp {
    TestApp::spawn_with(|c| c.ai.worker_concurrency = 0)
        .await
        .unwrap()
}

/// Runs SQL as the database's owner, behind the API's back.
pub async fn sql(app: &TestApp, statement: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&app.db.owner)
        .await
        .unwrap();
}

/// The server's `/metrics` text, read with the service key it asks for.
pub async fn metrics(app: &TestApp) -> String {
    reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(app.keys.service_role_key())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
