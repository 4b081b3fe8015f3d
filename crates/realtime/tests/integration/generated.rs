//! Generated frames over a real socket: joins to any topic with any config and token, leaves,
//! broadcasts, presence, token refreshes, unknown events, JSON of other shapes, any text and
//! binary frames. The socket stays open, a heartbeat after each frame is answered, and every
//! refusal is a `phx_reply` with status `error` and a reason.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Value, json};
use tally_testkit::generated::json_value;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::{Client, app, connect, join};

/// Frames sent over the one socket (each followed by a heartbeat).
const CASES: u32 = 400;

/// A join's payload: any config, sometimes a token that is no JWT.
fn join_payload() -> impl Strategy<Value = Value> {
    (
        json_value(),
        json_value(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(changes, presence, private, bad_token)| {
            let mut join = json!({"config": {"broadcast": {"self": true, "ack": true},
                "presence": presence, "postgres_changes": changes, "private": private}});
            if bad_token {
                join["access_token"] = json!("not-a-jwt");
            }
            join
        })
}

/// An event with a payload of its shape (now and then of any shape).
fn event_and_payload() -> impl Strategy<Value = (String, Value)> {
    let named = |event: &'static str| move |payload| (event.to_owned(), payload);
    prop_oneof![
        3 => join_payload().prop_map(named("phx_join")),
        4 => json_value()
            .prop_map(|p| json!({"type": "broadcast", "event": "e", "payload": p}))
            .prop_map(named("broadcast")),
        2 => (prop::sample::select(vec!["track", "untrack", "nope"]), json_value())
            .prop_map(|(e, p)| json!({"type": "presence", "event": e, "payload": p}))
            .prop_map(named("presence")),
        1 => "\\PC{0,40}".prop_map(|t| json!({"access_token": t})).prop_map(named("access_token")),
        1 => Just(("phx_leave".to_owned(), json!({}))),
        1 => ("\\PC{0,10}", json_value()),
    ]
}

/// A frame a client could send.
fn frame() -> impl Strategy<Value = Ws> {
    let topic = prop_oneof![
        6 => Just("realtime:room".to_owned()),
        2 => "realtime:[a-z0-9:_-]{0,12}",
        1 => Just("phoenix".to_owned()),
        1 => "\\PC{0,16}",
    ];
    prop_oneof![
        8 => (topic, event_and_payload(), "[0-9]{1,3}").prop_map(|(topic, (event, payload), r)| {
            Ws::Text(json!([r, r, topic, event, payload]).to_string().into())
        }),
        1 => prop::collection::vec(json_value(), 0..7)
            .prop_map(|a| Ws::Text(Value::from(a).to_string().into())),
        1 => "\\PC{0,40}".prop_map(|t| Ws::Text(t.into())),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|mut b| {
            if let Some(kind) = b.first_mut() {
                *kind = 3;
            }
            Ws::Binary(b.into())
        }),
    ]
}

/// Reads until the reply to heartbeat `reference`, checking every message on the way.
async fn until_heartbeat(ws: &mut Client, reference: &str) -> Result<(), TestCaseError> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .map_err(|_| TestCaseError::fail("no heartbeat reply within 5 s"))?;
        let text = match frame {
            Some(Ok(Ws::Text(text))) => text,
            Some(Ok(Ws::Binary(_) | Ws::Ping(_) | Ws::Pong(_))) => continue,
            other => return Err(TestCaseError::fail(format!("the socket ended: {other:?}"))),
        };
        let m: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
        let parts = m.as_array().filter(|a| a.len() == 5);
        prop_assert!(parts.is_some(), "not a vsn 2.0.0 message: {m}");
        let (topic, event, payload) = (&m[2], &m[3], &m[4]);
        prop_assert!(topic.is_string() && event.is_string(), "{m}");
        if event == "phx_reply" && payload["status"] == "error" {
            prop_assert!(
                payload["response"]["reason"].is_string(),
                "a refusal without a reason: {m}"
            );
        }
        if topic == "phoenix" && event == "phx_reply" && m[1] == reference {
            prop_assert_eq!(&payload["status"], "ok");
            return Ok(());
        }
    }
}

#[test]
fn random_frames_never_break_the_socket_and_refusals_have_reasons() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(app());
    let ws = runtime.block_on(async {
        let mut ws = connect(&app, "2.0.0").await;
        let reply = join(&mut ws, true, "realtime:room", json!({"config": {}})).await;
        assert_eq!(reply["status"], "ok", "{reply}");
        ws
    });
    // The runner takes a `Fn`: the socket and the count live in cells.
    let ws = std::cell::RefCell::new(ws);
    let beat = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(CASES));
    runner
        .run(&frame(), |frame| {
            beat.set(beat.get() + 1);
            let reference = format!("hb-{}", beat.get());
            let mut ws = ws.borrow_mut();
            runtime.block_on(async {
                ws.send(frame)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let heartbeat = json!([null, reference, "phoenix", "heartbeat", {}]);
                ws.send(Ws::Text(heartbeat.to_string().into()))
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                until_heartbeat(&mut ws, &reference).await
            })
        })
        .unwrap();
    drop(ws);
    runtime.block_on(app.stop()).unwrap();
}
