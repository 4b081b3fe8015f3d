//! Broadcast and presence across instances, through Postgres: each instance NOTIFYs
//! `tally_realtime` with `{i: instance, k: "b"|"p"|"s", t: topic, p: payload}` — a broadcast,
//! a presence diff, or a request for the presences of a topic an instance has just started
//! serving — and every other instance applies it to its own sockets. Messages over NOTIFY's
//! limit go through `realtime.spill`.

use serde_json::{Value, json};
use tally_core::RequestContext;
use tokio::sync::mpsc;

use crate::{
    presence::Diff,
    state::{Fanout, RealtimeState},
};

/// The NOTIFY channel between instances.
pub const CHANNEL: &str = "tally_realtime";
/// Relayed messages waiting to be sent before new ones are dropped.
const BACKLOG: usize = 8192;
/// Longest message NOTIFY carries here.
const NOTIFY_LIMIT: usize = 7900;

/// A broadcast on `topic` for the other instances.
pub fn broadcast(state: &RealtimeState, topic: &str, payload: &Value) {
    publish(state, "b", topic, payload);
}

/// A presence diff on `topic` for the other instances.
pub fn presence(state: &RealtimeState, topic: &str, diff: &Diff) {
    if !diff.is_empty() {
        publish(state, "p", topic, &diff.to_json());
    }
}

/// Asks the other instances for their presences on `topic`.
pub fn sync(state: &RealtimeState, topic: &str) {
    publish(state, "s", topic, &Value::Null);
}

fn publish(state: &RealtimeState, kind: &str, topic: &str, payload: &Value) {
    let message = json!({ "i": state.instance(), "k": kind, "t": topic, "p": payload }).to_string();
    if state.relay().try_send(message).is_err() {
        tracing::warn!(
            "the realtime relay is backed up; a message for other instances was dropped"
        );
    }
}

/// The queue of messages for other instances: what the state sends into, and what
/// [`task`] reads.
pub fn channel() -> (mpsc::Sender<String>, mpsc::Receiver<String>) {
    mpsc::channel::<String>(BACKLOG)
}

/// The task that sends relayed messages, in batches.
pub fn task(pool: sqlx::PgPool, mut queue: mpsc::Receiver<String>) -> tally_core::Task {
    Box::pin(async move {
        let mut batch = Vec::new();
        while queue.recv_many(&mut batch, 256).await > 0 {
            if let Err(e) = send(&pool, &mut batch).await {
                tracing::warn!(error = %e, "relaying realtime messages failed");
            }
            batch.clear();
        }
    })
}

async fn send(pool: &sqlx::PgPool, batch: &mut [String]) -> Result<(), sqlx::Error> {
    if batch.iter().any(|m| m.len() > NOTIFY_LIMIT) {
        let mut tx = RequestContext::service().begin(pool).await?;
        for message in batch.iter_mut().filter(|m| m.len() > NOTIFY_LIMIT) {
            let instance = serde_json::from_str::<Value>(message).map(|v| v["i"].clone());
            let id: i64 =
                sqlx::query_scalar("insert into realtime.spill (payload) values ($1) returning id")
                    .bind(&*message)
                    .fetch_one(&mut *tx)
                    .await?;
            *message = json!({ "i": instance.unwrap_or(Value::Null), "spill": id }).to_string();
        }
        tx.commit().await?;
    }
    sqlx::query("select pg_catalog.pg_notify($1, m) from unnest($2::text[]) m")
        .bind(CHANNEL)
        .bind(&*batch)
        .execute(pool)
        .await?;
    Ok(())
}

/// Handles a notification from another instance (its own are ignored).
pub fn receive(state: &RealtimeState, text: &str) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if message["i"].as_str() == Some(state.instance()) {
        return;
    }
    if let Some(spill) = message["spill"].as_i64() {
        let state = state.clone();
        tokio::spawn(async move {
            match unspill(&state, spill).await {
                Ok(Some(text)) => receive(&state, &text),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading a relayed message failed"),
            }
        });
        return;
    }
    let (Some(kind), Some(topic), Some(instance)) = (
        message["k"].as_str(),
        message["t"].as_str(),
        message["i"].as_str(),
    ) else {
        return;
    };
    match kind {
        "b" => state.fan_out(Fanout::remote(topic, "broadcast", message["p"].clone())),
        "p" => {
            let diff = Diff::from_json(&message["p"]);
            state.book().apply(topic, instance, &diff);
            state.fan_out(Fanout::remote(topic, "presence_diff", diff.to_json()));
        }
        "s" => {
            let own = state.book().own(topic, state.instance());
            presence(state, topic, &own);
        }
        _ => {}
    }
}

async fn unspill(state: &RealtimeState, id: i64) -> Result<Option<String>, sqlx::Error> {
    let mut tx = RequestContext::service().begin(state.pool()).await?;
    let payload = sqlx::query_scalar("select payload from realtime.spill where id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(payload)
}
