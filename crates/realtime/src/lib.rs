//! `/realtime/v1`: the Phoenix channel protocol supabase-js and supabase-py speak, on axum's
//! websockets. `GET /realtime/v1/websocket?apikey=…&vsn=1.0.0|2.0.0` checks the key before the
//! upgrade (401 `{"error": …}` as Supabase answers); then heartbeats, channel joins and leaves,
//! the same topic joined twice, `access_token` refreshes and expiry, postgres_changes on every
//! table of `public` filtered by RLS ([`feed`]), broadcast (with `self` and `ack`, JSON or
//! realtime-js's binary frames) and presence, across instances through Postgres ([`relay`]),
//! and private channels authorized by RLS on `realtime.messages`; broadcasts over HTTP
//! (`POST /api/broadcast`). [`openapi`] describes the websocket for `/openapi.json`.

mod binding;
mod broadcast_api;
mod caller;
mod catalog;
pub mod feed;
mod frame;
mod metrics;
pub mod openapi;
mod outbox;
mod presence;
mod registry;
pub mod relay;
mod socket;
mod state;

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, StatusCode},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use tally_core::gateway;

pub use frame::{Message, Vsn};
pub use state::RealtimeState;

/// Bytes read from a socket at a time (client messages are a few hundred bytes; 2 KiB of the
/// ~15 KiB a connection costs).
const READ_BUFFER: usize = 2 * 1024;
/// The largest message a client may send.
const MAX_MESSAGE: usize = 1024 * 1024;

/// The realtime state over the request pool, and its background tasks — the change feed's
/// listener and processor, and the relay to other instances — for the server to run.
pub fn start(
    pool: sqlx::PgPool,
    keys: tally_core::JwtKeys,
) -> (RealtimeState, Vec<tally_core::Task>) {
    let (relay, queue) = relay::channel();
    let state = RealtimeState::new(pool.clone(), keys, relay);
    let mut tasks: Vec<tally_core::Task> = feed::tasks(state.clone()).into();
    tasks.push(relay::task(pool, queue));
    tasks.push(feed::key_changes(state.clone()));
    (state, tasks)
}

/// The `/realtime/v1` router.
pub fn router(state: RealtimeState) -> Router {
    Router::new()
        .route("/websocket", get(connect))
        .route(
            "/api/broadcast",
            post(broadcast_api::broadcast).layer(from_fn_with_state(
                state.keys().clone(),
                gateway::require_apikey,
            )),
        )
        .route(
            "/api/broadcast/{topic}/events/{event}",
            post(broadcast_api::broadcast_one).layer(from_fn_with_state(
                state.keys().clone(),
                gateway::require_apikey,
            )),
        )
        .with_state(state)
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn connect(
    State(state): State<RealtimeState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let key = query
        .get("apikey")
        .cloned()
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return refuse(StatusCode::UNAUTHORIZED, "API key is missing");
    };
    let caller = match state.check_token(&key).await {
        Ok(caller) => caller,
        Err(reason) => return refuse(StatusCode::UNAUTHORIZED, &reason),
    };
    let vsn = match query.get("vsn").map(String::as_str) {
        None | Some("1.0.0") => Vsn::V1,
        Some("2.0.0") => Vsn::V2,
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("Unsupported protocol version {other}: use 1.0.0 or 2.0.0"),
            );
        }
    };
    let Ok(upgrade) = upgrade else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "This endpoint takes websocket upgrades",
        );
    };
    upgrade
        // Small buffers (tungstenite's default read buffer is 128 KiB per socket) and a cap on
        // what one client message may weigh.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |ws| socket::serve(ws, state, vsn, caller))
}
