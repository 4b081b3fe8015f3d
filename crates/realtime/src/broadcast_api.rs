//! Broadcasts sent over HTTP, answered 202: `POST /realtime/v1/api/broadcast` with
//! `{messages: [{topic, event, payload, private?}]}` (realtime-js `send()` without a socket)
//! and `POST /realtime/v1/api/broadcast/{topic}/events/{event}[?private=true]` with the payload
//! as the body (realtime-js `channel.httpSend()`). The bearer token is checked as a socket's (a
//! live session), and a private or org topic is written only by whom RLS on
//! `realtime.messages` lets write, as for socket sends.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    frame, relay,
    state::{Fanout, RealtimeState},
};

/// Messages one request may carry.
const MAX_MESSAGES: usize = 100;

#[derive(Deserialize)]
struct Body {
    messages: Vec<Outgoing>,
}

#[derive(Deserialize)]
struct Outgoing {
    topic: String,
    event: String,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    private: bool,
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// `?private=true` of the one-message form.
#[derive(Deserialize)]
pub struct Privacy {
    #[serde(default)]
    private: bool,
}

/// `POST /api/broadcast`: several messages.
pub async fn broadcast(
    State(state): State<RealtimeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<Body>(&body) {
        Ok(body) => send(&state, &headers, body.messages).await,
        Err(e) => refuse(
            StatusCode::BAD_REQUEST,
            &format!("The body must be {{messages: [{{topic, event, payload}}]}}: {e}"),
        ),
    }
}

/// `POST /api/broadcast/{topic}/events/{event}`: one message, its payload the body — JSON, or
/// bytes when sent as `application/octet-stream` (delivered as a binary broadcast).
pub async fn broadcast_one(
    State(state): State<RealtimeState>,
    Path((topic, event)): Path<(String, String)>,
    Query(privacy): Query<Privacy>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let binary = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim().starts_with("application/octet-stream"));
    let envelope = if binary {
        frame::binary_broadcast(&event, &body)
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(payload) => json!({"type": "broadcast", "event": event, "payload": payload}),
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "The payload must be JSON (or bytes sent as application/octet-stream): {e}"
                    ),
                );
            }
        }
    };
    let message = Outgoing {
        topic,
        event,
        payload: Value::Null,
        private: privacy.private,
    };
    send_enveloped(&state, &headers, vec![(message, envelope)]).await
}

/// Sends each message, its envelope made of its event and payload.
async fn send(state: &RealtimeState, headers: &HeaderMap, messages: Vec<Outgoing>) -> Response {
    let messages = messages
        .into_iter()
        .map(|mut m| {
            let payload = std::mem::take(&mut m.payload);
            let envelope = json!({"type": "broadcast", "event": m.event, "payload": payload});
            (m, envelope)
        })
        .collect();
    send_enveloped(state, headers, messages).await
}

/// Sends each message's envelope to the sockets of every instance listening on its topic, once
/// every one of them is authorized.
async fn send_enveloped(
    state: &RealtimeState,
    headers: &HeaderMap,
    messages: Vec<(Outgoing, Value)>,
) -> Response {
    let caller = match state.check_headers(headers).await {
        Ok(caller) => caller,
        Err(reason) => return refuse(StatusCode::UNAUTHORIZED, &reason),
    };
    if messages.len() > MAX_MESSAGES {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("At most {MAX_MESSAGES} messages a request"),
        );
    }
    // Every message is authorized before any is sent: all or nothing.
    for (m, _) in &messages {
        let name = m.topic.strip_prefix("realtime:").unwrap_or(&m.topic);
        if m.private || crate::socket::always_private(name) {
            match state.channel_access(name, &caller).await {
                Ok((_, true)) => {}
                Ok((_, false)) => {
                    return refuse(
                        StatusCode::FORBIDDEN,
                        &format!(
                            "Unauthorized: You do not have permissions to write to this Channel topic: {name}"
                        ),
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "authorizing a broadcast failed");
                    return refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Unable to authorize the channel right now",
                    );
                }
            }
        }
    }
    for (m, payload) in messages {
        let name = m.topic.strip_prefix("realtime:").unwrap_or(&m.topic);
        let topic = format!("realtime:{name}");
        relay::broadcast(state, &topic, &payload);
        state.fan_out(Fanout::remote(&topic, "broadcast", payload));
    }
    StatusCode::ACCEPTED.into_response()
}
