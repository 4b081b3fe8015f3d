//! One websocket: one task reading, one writing through a buffer bounded in bytes (a client
//! too slow to take its messages is disconnected, never buffered without bound), the channels it joined,
//! and the broadcasts and presence diffs of their topics.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::extract::ws::{Message as Ws, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, broadcast};

use crate::{
    binding::{self, Binding},
    caller::Caller,
    frame::{Message, Vsn},
    metrics,
    outbox::{Outbox, Stop},
    presence::Owner,
    registry::Subscription,
    relay,
    state::{Fanout, KEY_REVOKED, REVOKED, RealtimeState, SESSION_REVOKED, SIGNING_KEYS_CHANGED},
};

/// A socket silent this long (no heartbeat, no message) is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A joined channel.
struct Channel {
    join_ref: Option<String>,
    /// Whose token the channel runs with.
    caller: Arc<Caller>,
    /// Receive one's own broadcasts.
    echo: bool,
    /// Acknowledge broadcasts with a reply.
    ack: bool,
    /// May send broadcasts and presence (false on a private topic the caller only reads).
    can_write: bool,
    /// The key this channel's presence is tracked under.
    presence_key: String,
    /// The postgres_changes bindings it subscribed (registered with the feed when any).
    bindings: Vec<Binding>,
}

struct Socket {
    id: u64,
    state: RealtimeState,
    out: Outbox,
    /// The caller of the socket's apikey, for channels joined without a token.
    caller: Arc<Caller>,
    channels: HashMap<String, Channel>,
}

impl Socket {
    fn send(&self, message: &Message) -> Result<(), Stop> {
        self.out.send(message)
    }

    fn reply(&self, to: &Message, ok: bool, response: Value) -> Result<(), Stop> {
        self.send(&Message::reply(to, ok, response))
    }

    fn refuse(&self, to: &Message, reason: &str) -> Result<(), Stop> {
        self.reply(to, false, json!({ "reason": reason }))
    }

    fn system(&self, topic: &str, extension: &str, ok: bool, message: &str) -> Result<(), Stop> {
        let payload = json!({"extension": extension, "status": if ok { "ok" } else { "error" },
            "message": message, "channel": channel_name(topic)});
        self.send(&Message::push(topic, "system", None, payload))
    }

    fn owner(&self) -> Owner {
        Owner {
            instance: self.state.instance().to_owned(),
            socket: self.id,
        }
    }

    /// Closes a channel: its subscription and presence go, the client gets `phx_close`.
    fn close(&mut self, topic: &str) -> Result<(), Stop> {
        let Some(channel) = self.channels.remove(topic) else {
            return Ok(());
        };
        metrics::channels(-1.0);
        self.state.registry().remove(self.id, topic);
        self.untrack(topic);
        let mut closed = Message::push(topic, "phx_close", channel.join_ref.clone(), json!({}));
        closed.reference = channel.join_ref;
        self.send(&closed)
    }

    fn untrack(&self, topic: &str) {
        let diff = self.state.book().untrack(topic, &self.owner());
        if !diff.is_empty() {
            self.state.fan_out(Fanout {
                topic: topic.to_owned(),
                origin: self.id,
                event: "presence_diff",
                payload: diff.to_json(),
            });
            relay::presence(&self.state, topic, &diff);
        }
    }

    async fn handle(&mut self, m: Message) -> Result<(), Stop> {
        metrics::received();
        if m.topic == "phoenix" {
            return if m.event == "heartbeat" {
                self.reply(&m, true, json!({}))
            } else {
                self.refuse(&m, "unmatched topic")
            };
        }
        if m.event == "phx_join" {
            return self.join(m).await;
        }
        let Some(channel) = self.channels.get(&m.topic) else {
            return self.refuse(&m, "unmatched topic");
        };
        match m.event.as_str() {
            "broadcast" if !channel.can_write => self.refuse(&m, &unwritable(&m.topic)),
            "broadcast" => {
                let ack = channel.ack;
                self.state.fan_out(Fanout {
                    topic: m.topic.clone(),
                    origin: self.id,
                    event: "broadcast",
                    payload: m.payload.clone(),
                });
                relay::broadcast(&self.state, &m.topic, &m.payload);
                if ack {
                    self.reply(&m, true, json!({}))?;
                }
                Ok(())
            }
            "presence" if !channel.can_write => self.refuse(&m, &unwritable(&m.topic)),
            "presence" => self.presence(&m),
            "phx_leave" => {
                self.reply(&m, true, json!({}))?;
                self.close(&m.topic)
            }
            "access_token" => self.refresh(&m).await,
            _ => self.refuse(&m, "unknown event"),
        }
    }

    fn presence(&mut self, m: &Message) -> Result<(), Stop> {
        let Some(channel) = self.channels.get(&m.topic) else {
            return self.refuse(m, "unmatched topic");
        };
        let diff = match (m.payload["event"].as_str(), &m.payload["payload"]) {
            (Some("track"), Value::Object(fields)) => self.state.book().track(
                &m.topic,
                &channel.presence_key,
                &self.owner(),
                fields.clone(),
                uuid::Uuid::new_v4().simple().to_string(),
            ),
            (Some("track"), Value::Null) => self.state.book().track(
                &m.topic,
                &channel.presence_key,
                &self.owner(),
                Map::new(),
                uuid::Uuid::new_v4().simple().to_string(),
            ),
            (Some("untrack"), _) => self.state.book().untrack(&m.topic, &self.owner()),
            _ => {
                return self.refuse(
                    m,
                    "a presence message is {type: \"presence\", event: \"track\", payload: {…}} \
                     or {type: \"presence\", event: \"untrack\"}",
                );
            }
        };
        if !diff.is_empty() {
            self.state.fan_out(Fanout {
                topic: m.topic.clone(),
                origin: self.id,
                event: "presence_diff",
                payload: diff.to_json(),
            });
            relay::presence(&self.state, &m.topic, &diff);
        }
        self.reply(m, true, json!({}))
    }

    /// `access_token`: the channel runs with the new token from now on; a token that fails
    /// the checks closes the channel.
    async fn refresh(&mut self, m: &Message) -> Result<(), Stop> {
        let token = m.payload["access_token"].as_str().unwrap_or_default();
        match self.state.check_token(token).await {
            Ok(caller) => {
                let caller = Arc::new(caller);
                if let Some(channel) = self.channels.get_mut(&m.topic) {
                    channel.caller = caller.clone();
                    if !channel.bindings.is_empty() {
                        self.state.registry().insert(
                            self.id,
                            Subscription::new(
                                self.out.clone(),
                                m.topic.clone(),
                                caller,
                                channel.bindings.clone(),
                            ),
                        );
                    }
                }
                Ok(())
            }
            Err(reason) => {
                self.system(&m.topic, "system", false, &reason)?;
                self.close(&m.topic)
            }
        }
    }

    async fn join(&mut self, m: Message) -> Result<(), Stop> {
        let config = &m.payload["config"];
        let token = m.payload["access_token"]
            .as_str()
            .or_else(|| m.payload["user_token"].as_str())
            .filter(|t| !t.is_empty() && !t.starts_with("sb_"));
        let caller = match token {
            None => self.caller.clone(),
            Some(token) => match self.state.check_token(token).await {
                Ok(caller) => Arc::new(caller),
                Err(reason) => return self.refuse(&m, &reason),
            },
        };
        let name = channel_name(&m.topic).to_owned();
        let mut can_write = true;
        if config["private"].as_bool() == Some(true) || always_private(&name) {
            match self.state.channel_access(&name, &caller).await {
                Ok((true, write)) => can_write = write,
                Ok((false, _)) => {
                    return self.refuse(
                        &m,
                        &format!(
                            "Unauthorized: You do not have permissions to read from this Channel topic: {name}"
                        ),
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "authorizing a private channel failed");
                    return self.refuse(&m, "Unable to authorize the channel right now");
                }
            }
        }
        let (echoed, bindings, problem) = self.bindings(config).await;
        // Right after start, wait (briefly) for the LISTEN connection: a joined channel hears
        // the other instances and the change feed from its first moment.
        let listening = self.state.listening().await;
        // The same topic joined again: the old channel is closed first.
        self.close(&m.topic)?;
        metrics::channels(1.0);
        let presence_key = config["presence"]["key"]
            .as_str()
            .filter(|k| !k.is_empty())
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let subscribed = problem.is_none() && !bindings.is_empty();
        if subscribed {
            self.state.registry().insert(
                self.id,
                Subscription::new(
                    self.out.clone(),
                    m.topic.clone(),
                    caller.clone(),
                    bindings.clone(),
                ),
            );
        }
        self.channels.insert(
            m.topic.clone(),
            Channel {
                join_ref: m.join_ref.clone().or_else(|| m.reference.clone()),
                caller,
                echo: config["broadcast"]["self"].as_bool() == Some(true),
                ack: config["broadcast"]["ack"].as_bool() == Some(true),
                can_write,
                presence_key,
                bindings: if subscribed { bindings } else { Vec::new() },
            },
        );
        self.reply(&m, true, json!({ "postgres_changes": echoed }))?;
        if config["presence"]["enabled"].as_bool() != Some(false) {
            let state = self.state.book().state(&m.topic);
            self.send(&Message::push(&m.topic, "presence_state", None, state))?;
            if self.state.first_presence_on(&m.topic) {
                relay::sync(&self.state, &m.topic);
            }
        }
        match problem {
            Some(reason) => self.system(&m.topic, "postgres_changes", false, &reason),
            None if subscribed => {
                if listening {
                    self.system(
                        &m.topic,
                        "postgres_changes",
                        true,
                        "Subscribed to PostgreSQL",
                    )
                } else {
                    self.system(
                        &m.topic,
                        "postgres_changes",
                        false,
                        "The change feed is not connected to PostgreSQL yet",
                    )
                }
            }
            None => Ok(()),
        }
    }

    /// The join's postgres_changes: the entries echoed with their ids, the bindings, and the
    /// first problem found (then nothing is subscribed).
    async fn bindings(&self, config: &Value) -> (Vec<Value>, Vec<Binding>, Option<String>) {
        let mut echoed = Vec::new();
        let mut bindings = Vec::new();
        let mut problem = None;
        let entries = config["postgres_changes"].as_array().cloned();
        for entry in entries.unwrap_or_default() {
            let mut reply = entry.clone();
            if let Value::Object(fields) = &mut reply {
                fields.insert("id".into(), Value::from(binding::id_of(&entry)));
            }
            echoed.push(reply);
            match Binding::parse(&entry) {
                Ok(b) => {
                    if let Some(table) = &b.table {
                        match self.state.catalog().watched(table).await {
                            Ok(true) => {}
                            Ok(false) => {
                                problem.get_or_insert(binding::unavailable("public", Some(table)));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "reading the catalog failed");
                                problem.get_or_insert("Unable to reach PostgreSQL".to_owned());
                            }
                        }
                    }
                    bindings.push(b);
                }
                Err(e) => {
                    problem.get_or_insert(e.0);
                }
            }
        }
        (echoed, bindings, problem)
    }

    fn deliver(&mut self, fanout: &Fanout) -> Result<(), Stop> {
        if fanout.event == SESSION_REVOKED {
            return self.revoke(fanout.payload.as_str());
        }
        if fanout.event == SIGNING_KEYS_CHANGED {
            return self.recheck_keys();
        }
        let Some(channel) = self.channels.get(&fanout.topic) else {
            return Ok(());
        };
        if fanout.event == "broadcast" && fanout.origin == self.id && !channel.echo {
            return Ok(());
        }
        self.send(&Message::push(
            &fanout.topic,
            fanout.event,
            None,
            fanout.payload.clone(),
        ))
    }

    /// A session was signed out or revoked: its channels close, and so does the socket when
    /// its own key belongs to that session.
    fn revoke(&mut self, session: Option<&str>) -> Result<(), Stop> {
        let Some(session) = session else {
            return Ok(());
        };
        if self.caller.session.as_deref() == Some(session) {
            return Err(Stop::Gone);
        }
        let revoked: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.caller.session.as_deref() == Some(session))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in revoked {
            self.system(&topic, "system", false, REVOKED)?;
            self.close(&topic)?;
        }
        Ok(())
    }

    /// The signing keys changed: the channels whose token's key was revoked close, and so does
    /// the socket when its own key's was.
    fn recheck_keys(&mut self) -> Result<(), Stop> {
        let keys = self.state.keys().clone();
        if !keys.still_trusts(self.caller.kid.as_deref()) {
            return Err(Stop::Gone);
        }
        let revoked: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| !keys.still_trusts(c.caller.kid.as_deref()))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in revoked {
            self.system(&topic, "system", false, KEY_REVOKED)?;
            self.close(&topic)?;
        }
        Ok(())
    }

    /// Closes the channels whose token has expired; when the next one expires.
    fn expire(&mut self) -> Result<Option<i64>, Stop> {
        let now = chrono::Utc::now().timestamp();
        let expired: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.caller.exp <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for topic in expired {
            self.system(&topic, "system", false, "Token has expired")?;
            self.close(&topic)?;
        }
        Ok(self.channels.values().map(|c| c.caller.exp).min())
    }
}

fn unwritable(topic: &str) -> String {
    format!(
        "Unauthorized: You do not have permissions to write to this Channel topic: {}",
        channel_name(topic)
    )
}

/// `realtime:room` → `room`.
fn channel_name(topic: &str) -> &str {
    topic.strip_prefix("realtime:").unwrap_or(topic)
}

/// Channels authorized as private however they are joined: an org's (`org:{org_id}`, its
/// members) and a person's timer channel (`timer:{org_id}:{user_id}`, whoever may read their
/// logs).
pub(crate) fn always_private(name: &str) -> bool {
    name.starts_with("org:") || name.starts_with("timer:")
}

/// Serves one upgraded socket until it closes.
pub async fn serve(ws: WebSocket, state: RealtimeState, vsn: Vsn, caller: Caller) {
    metrics::connection(true);
    let (mut sink, mut stream) = ws.split();
    let slow = Arc::new(Notify::new());
    let (out, mut queued) = Outbox::new(vsn, slow.clone());
    let writer = tokio::spawn(async move {
        // The permit returns the message's bytes to the budget once written.
        while let Some((message, _permit)) = queued.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut hub = state.hub().subscribe();
    let mut socket = Socket {
        id: state.next_socket_id(),
        state,
        out,
        caller: Arc::new(caller),
        channels: HashMap::new(),
    };
    let mut next_expiry: Option<i64> = None;
    let stop = loop {
        let expiry = async {
            match next_expiry {
                Some(at) => {
                    let wait = at - chrono::Utc::now().timestamp();
                    tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(0))).await;
                }
                None => std::future::pending().await,
            }
        };
        let step = tokio::select! {
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
                    Some(m) => socket.handle(m).await,
                    None => {
                        tracing::debug!("a frame that is not a Phoenix message was ignored");
                        Ok(())
                    }
                }
            }
            fanout = hub.recv() => match fanout {
                Ok(fanout) => socket.deliver(&fanout),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a socket fell behind the broadcasts");
                    Ok(())
                }
                Err(broadcast::error::RecvError::Closed) => Err(Stop::Gone),
            },
            () = slow.notified() => Err(Stop::Slow),
            () = expiry => Ok(()),
        };
        if let Err(stop) = step.and_then(|()| socket.expire().map(|next| next_expiry = next)) {
            break stop;
        }
    };
    for topic in socket.channels.keys().cloned().collect::<Vec<_>>() {
        socket.state.registry().remove(socket.id, &topic);
        socket.untrack(&topic);
        metrics::channels(-1.0);
    }
    drop(socket);
    if matches!(stop, Stop::Slow) {
        tracing::warn!("a realtime client too slow to keep up was disconnected");
        metrics::dropped_slow();
        writer.abort();
    }
    let _ = writer.await;
    metrics::connection(false);
}
