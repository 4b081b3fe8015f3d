//! One websocket: one task reading, one writing through a bounded buffer (a client too slow to
//! take its messages is disconnected, never buffered without bound), the channels it joined,
//! and the broadcasts of the topics it listens to.

use std::{collections::HashMap, time::Duration};

use axum::extract::ws::{Message as Ws, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::{
    frame::{Message, Vsn},
    state::{Fanout, RealtimeState},
};

/// Messages waiting for a slow client before it is disconnected.
const OUT_BUFFER: usize = 256;
/// A socket silent this long (no heartbeat, no message) is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A joined channel.
struct Channel {
    join_ref: Option<String>,
    /// Receive one's own broadcasts.
    echo: bool,
    /// Acknowledge broadcasts with a reply.
    ack: bool,
}

struct Socket {
    id: u64,
    vsn: Vsn,
    state: RealtimeState,
    out: mpsc::Sender<Ws>,
    channels: HashMap<String, Channel>,
}

/// Why a socket stops.
enum Stop {
    /// The client closed it, or it broke.
    Gone,
    /// The client does not keep up.
    Slow,
}

impl Socket {
    fn send(&self, message: &Message) -> Result<(), Stop> {
        self.out
            .try_send(Ws::Text(message.to_text(self.vsn).into()))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Stop::Slow,
                mpsc::error::TrySendError::Closed(_) => Stop::Gone,
            })
    }

    fn reply(&self, to: &Message, ok: bool, response: Value) -> Result<(), Stop> {
        self.send(&Message::reply(to, ok, response))
    }

    fn refuse(&self, to: &Message, reason: &str) -> Result<(), Stop> {
        self.reply(to, false, json!({ "reason": reason }))
    }

    fn close(&mut self, topic: &str) -> Result<(), Stop> {
        if let Some(channel) = self.channels.remove(topic) {
            let mut closed = Message::push(topic, "phx_close", channel.join_ref.clone(), json!({}));
            closed.reference = channel.join_ref;
            self.send(&closed)?;
        }
        Ok(())
    }

    fn handle(&mut self, m: Message) -> Result<(), Stop> {
        if m.topic == "phoenix" {
            return if m.event == "heartbeat" {
                self.reply(&m, true, json!({}))
            } else {
                self.refuse(&m, "unmatched topic")
            };
        }
        if m.event == "phx_join" {
            return self.join(m);
        }
        if !self.channels.contains_key(&m.topic) {
            return self.refuse(&m, "unmatched topic");
        }
        match m.event.as_str() {
            "broadcast" => {
                let ack = self.channels.get(&m.topic).is_some_and(|c| c.ack);
                let _ = self.state.hub().send(Fanout {
                    topic: m.topic.clone(),
                    origin: self.id,
                    payload: m.payload.clone(),
                });
                if ack {
                    self.reply(&m, true, json!({}))?;
                }
                Ok(())
            }
            "phx_leave" => {
                self.reply(&m, true, json!({}))?;
                self.close(&m.topic)
            }
            "access_token" => {
                let token = m.payload["access_token"].as_str().unwrap_or_default();
                match self.state.check_token(token) {
                    Ok(()) => Ok(()),
                    Err(reason) => {
                        let system = json!({"extension": "system", "status": "error",
                            "message": reason, "channel": channel_name(&m.topic)});
                        let join_ref = self.channels.get(&m.topic).and_then(|c| c.join_ref.clone());
                        self.send(&Message::push(&m.topic, "system", join_ref, system))?;
                        self.close(&m.topic)
                    }
                }
            }
            "presence" => self.refuse(&m, "presence is not available on this server yet"),
            _ => self.refuse(&m, "unknown event"),
        }
    }

    fn join(&mut self, m: Message) -> Result<(), Stop> {
        let config = &m.payload["config"];
        if let Some(token) = m.payload["access_token"].as_str()
            && let Err(reason) = self.state.check_token(token)
        {
            return self.refuse(&m, &reason);
        }
        if config["postgres_changes"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
        {
            return self.refuse(&m, "postgres_changes are not available on this server yet");
        }
        if config["private"].as_bool() == Some(true) {
            return self.refuse(&m, "private channels are not available on this server yet");
        }
        // The same topic joined again: the old channel is closed first.
        self.close(&m.topic)?;
        self.channels.insert(
            m.topic.clone(),
            Channel {
                join_ref: m.join_ref.clone().or_else(|| m.reference.clone()),
                echo: config["broadcast"]["self"].as_bool() == Some(true),
                ack: config["broadcast"]["ack"].as_bool() == Some(true),
            },
        );
        self.reply(&m, true, json!({ "postgres_changes": [] }))
    }

    fn deliver(&self, fanout: &Fanout) -> Result<(), Stop> {
        match self.channels.get(&fanout.topic) {
            Some(channel) if fanout.origin != self.id || channel.echo => self.send(&Message::push(
                &fanout.topic,
                "broadcast",
                None,
                fanout.payload.clone(),
            )),
            _ => Ok(()),
        }
    }
}

/// `realtime:room` → `room`.
fn channel_name(topic: &str) -> &str {
    topic.strip_prefix("realtime:").unwrap_or(topic)
}

/// Serves one upgraded socket until it closes.
pub async fn serve(ws: WebSocket, state: RealtimeState, vsn: Vsn) {
    let (mut sink, mut stream) = ws.split();
    let (out, mut queued) = mpsc::channel::<Ws>(OUT_BUFFER);
    let writer = tokio::spawn(async move {
        while let Some(message) = queued.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut hub = state.hub().subscribe();
    let mut socket = Socket {
        id: state.next_socket_id(),
        vsn,
        state,
        out,
        channels: HashMap::new(),
    };
    let stop = loop {
        tokio::select! {
            incoming = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => {
                let message = match incoming {
                    Err(_) | Ok(None) | Ok(Some(Err(_))) => break Stop::Gone,
                    Ok(Some(Ok(message))) => message,
                };
                let parsed = match message {
                    Ws::Text(text) => Message::parse_text(text.as_str(), vsn),
                    Ws::Binary(bytes) if vsn == Vsn::V2 => Message::parse_binary(&bytes),
                    Ws::Close(_) => break Stop::Gone,
                    _ => continue,
                };
                match parsed {
                    Some(m) => {
                        if let Err(stop) = socket.handle(m) {
                            break stop;
                        }
                    }
                    None => tracing::debug!("a frame that is not a Phoenix message was ignored"),
                }
            }
            fanout = hub.recv() => match fanout {
                Ok(fanout) => {
                    if let Err(stop) = socket.deliver(&fanout) {
                        break stop;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a socket fell behind the broadcasts");
                }
                Err(broadcast::error::RecvError::Closed) => break Stop::Gone,
            }
        }
    };
    drop(socket);
    if matches!(stop, Stop::Slow) {
        tracing::warn!("a realtime client too slow to keep up was disconnected");
        writer.abort();
    }
    let _ = writer.await;
}
