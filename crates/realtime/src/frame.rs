//! Phoenix messages on the wire: vsn 1.0.0 as JSON objects, vsn 2.0.0 as JSON arrays
//! `[join_ref, ref, topic, event, payload]` plus realtime-js's binary user broadcasts: pushed
//! as kind 3, delivered as kind 4.
//!
//! A broadcast whose payload is bytes (a kind 3 push with binary encoding, or bytes sent to
//! `httpSend`) travels through Tally as a JSON array of numbers with [`BINARY`] set in its
//! envelope; a vsn 2.0.0 socket gets it as a binary frame again, a 1.0.0 socket as the array.

use serde_json::{Value, json};

/// The envelope key that marks a broadcast's payload as bytes (never sent to a client).
pub const BINARY: &str = "binary";

/// Kind of realtime-js's binary user broadcast push (client → server).
const USER_BROADCAST_PUSH: u8 = 3;
/// Kind of realtime-js's binary user broadcast (server → client).
const USER_BROADCAST: u8 = 4;

/// The envelope of a broadcast of `event` whose payload is `bytes`.
pub fn binary_broadcast(event: &str, bytes: &[u8]) -> Value {
    json!({"type": "broadcast", "event": event, "payload": bytes, BINARY: true})
}

/// The protocol version a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    /// `1.0.0`: JSON objects (supabase-py).
    V1,
    /// `2.0.0`: JSON arrays and binary broadcasts (supabase-js).
    V2,
}

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The channel's join ref, when the message belongs to a join.
    pub join_ref: Option<String>,
    /// The push's ref (replies copy it; server pushes have none).
    pub reference: Option<String>,
    /// `phoenix` or `realtime:<name>`.
    pub topic: String,
    /// `phx_join`, `heartbeat`, `broadcast`, …
    pub event: String,
    /// The payload.
    pub payload: Value,
}

/// A ref as a string (clients send strings, some numbers).
fn reference(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Message {
    /// A server push (no ref).
    pub fn push(topic: &str, event: &str, join_ref: Option<String>, payload: Value) -> Self {
        Self {
            join_ref,
            reference: None,
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
        }
    }

    /// The reply to `to`: `phx_reply` with its ref and `{status, response}`.
    pub fn reply(to: &Message, ok: bool, response: Value) -> Self {
        Self {
            join_ref: to.join_ref.clone(),
            reference: to.reference.clone(),
            topic: to.topic.clone(),
            event: "phx_reply".to_owned(),
            payload: json!({"status": if ok { "ok" } else { "error" }, "response": response}),
        }
    }

    /// Reads a text frame.
    pub fn parse_text(text: &str, vsn: Vsn) -> Option<Self> {
        let value: Value = serde_json::from_str(text).ok()?;
        match (vsn, value) {
            (Vsn::V2, Value::Array(parts)) if parts.len() == 5 => Some(Self {
                join_ref: reference(&parts[0]),
                reference: reference(&parts[1]),
                topic: parts[2].as_str()?.to_owned(),
                event: parts[3].as_str()?.to_owned(),
                payload: parts[4].clone(),
            }),
            (Vsn::V1, Value::Object(map)) => Some(Self {
                join_ref: map.get("join_ref").and_then(reference),
                reference: map.get("ref").and_then(reference),
                topic: map.get("topic")?.as_str()?.to_owned(),
                event: map.get("event")?.as_str()?.to_owned(),
                payload: map.get("payload").cloned().unwrap_or_else(|| json!({})),
            }),
            _ => None,
        }
    }

    /// Reads realtime-js's binary user broadcast (kind 3) as a `broadcast` push.
    pub fn parse_binary(bytes: &[u8]) -> Option<Self> {
        let (&kind, rest) = bytes.split_first()?;
        if kind != USER_BROADCAST_PUSH || rest.len() < 6 {
            return None;
        }
        let lens: Vec<usize> = rest[..5].iter().map(|b| usize::from(*b)).collect();
        let encoding = rest[5];
        let mut at = 6;
        let mut field = |len: usize| {
            let slice = rest.get(at..at + len)?;
            at += len;
            std::str::from_utf8(slice).ok().map(str::to_owned)
        };
        let join_ref = field(lens[0])?;
        let reference = field(lens[1])?;
        let topic = field(lens[2])?;
        let event = field(lens[3])?;
        let _meta = field(lens[4])?;
        let body = rest.get(at..)?;
        let payload = if encoding == 1 {
            json!({"type": "broadcast", "event": event, "payload": serde_json::from_slice::<Value>(body).ok()?})
        } else {
            binary_broadcast(&event, body)
        };
        Some(Self {
            join_ref: Some(join_ref).filter(|s| !s.is_empty()),
            reference: Some(reference).filter(|s| !s.is_empty()),
            topic,
            event: "broadcast".to_owned(),
            payload,
        })
    }

    /// The bytes of a broadcast whose payload is bytes.
    fn binary_payload(&self) -> Option<Vec<u8>> {
        if self.event != "broadcast" || self.payload.get(BINARY) != Some(&Value::Bool(true)) {
            return None;
        }
        self.payload
            .get("payload")?
            .as_array()?
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect()
    }

    /// A broadcast of bytes as realtime-js's binary user broadcast (kind 4): `None` for any
    /// other message (or a topic or event longer than the frame's 255 bytes).
    pub fn to_binary(&self) -> Option<Vec<u8>> {
        let bytes = self.binary_payload()?;
        let event = self.payload.get("event")?.as_str()?;
        let topic = u8::try_from(self.topic.len()).ok()?;
        let event_len = u8::try_from(event.len()).ok()?;
        let mut frame = Vec::with_capacity(5 + self.topic.len() + event.len() + bytes.len());
        // kind, topic size, event size, metadata size, payload encoding (0: bytes).
        frame.extend_from_slice(&[USER_BROADCAST, topic, event_len, 0, 0]);
        frame.extend_from_slice(self.topic.as_bytes());
        frame.extend_from_slice(event.as_bytes());
        frame.extend_from_slice(&bytes);
        Some(frame)
    }

    /// Writes a text frame.
    pub fn to_text(&self, vsn: Vsn) -> String {
        let mut payload = std::borrow::Cow::Borrowed(&self.payload);
        if payload.get(BINARY).is_some()
            && let Value::Object(envelope) = payload.to_mut()
        {
            envelope.remove(BINARY);
        }
        match vsn {
            Vsn::V2 => json!([
                self.join_ref,
                self.reference,
                self.topic,
                self.event,
                payload
            ]),
            Vsn::V1 => json!({
                "topic": self.topic, "event": self.event, "payload": payload,
                "ref": self.reference,
            }),
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_round_trip() {
        let m = Message {
            join_ref: Some("1".into()),
            reference: Some("2".into()),
            topic: "realtime:room".into(),
            event: "phx_join".into(),
            payload: json!({"config": {}}),
        };
        assert_eq!(
            Message::parse_text(&m.to_text(Vsn::V2), Vsn::V2),
            Some(m.clone())
        );
        let v1 = Message::parse_text(&m.to_text(Vsn::V1), Vsn::V1).expect("parses");
        assert_eq!(
            (v1.reference, v1.topic, v1.payload),
            (m.reference, m.topic, m.payload)
        );
        assert!(Message::parse_text("[1,2]", Vsn::V2).is_none());
        assert!(Message::parse_text("{\"topic\":1}", Vsn::V1).is_none());
    }

    #[test]
    fn binary_broadcasts_decode() {
        let mut frame = vec![3u8, 1, 1, 13, 5, 0, 1];
        frame.extend_from_slice(b"12realtime:roomhello{\"n\":1}");
        let m = Message::parse_binary(&frame).expect("a kind 3 frame");
        assert_eq!(m.topic, "realtime:room");
        assert_eq!(m.join_ref.as_deref(), Some("1"));
        assert_eq!(
            m.payload,
            json!({"type": "broadcast", "event": "hello", "payload": {"n": 1}})
        );
        assert!(Message::parse_binary(&[4, 0, 0]).is_none());
        assert!(Message::parse_binary(&[3, 9, 9, 9, 9, 9, 1]).is_none());
    }

    #[test]
    fn binary_payloads_come_back_as_binary_frames() {
        let mut push = vec![3u8, 0, 0, 13, 3, 0, 0];
        push.extend_from_slice(b"realtime:roompng");
        push.extend_from_slice(&[0, 1, 255]);
        let m = Message::parse_binary(&push).expect("a kind 3 frame");
        let mut delivered = vec![4u8, 13, 3, 0, 0];
        delivered.extend_from_slice(b"realtime:roompng");
        delivered.extend_from_slice(&[0, 1, 255]);
        assert_eq!(m.to_binary(), Some(delivered));
        // Over text (vsn 1.0.0) the bytes are an array, and the marker stays inside Tally.
        let text: Value = serde_json::from_str(&m.to_text(Vsn::V1)).expect("JSON");
        assert_eq!(
            text["payload"],
            json!({"type": "broadcast", "event": "png", "payload": [0, 1, 255]})
        );
        // A JSON broadcast is no binary frame.
        let json_push = Message::parse_binary(b"\x03\x00\x00\x0d\x01\x00\x01realtime:roomx{}")
            .expect("a kind 3 frame");
        assert_eq!(json_push.to_binary(), None);
    }

    use proptest::prelude::*;
    use tally_testkit::generated::{cases, json_value};

    /// A ref as clients send them: a string, a number, null.
    fn a_ref() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof!["[0-9]{1,4}", "\\PC{0,8}"])
    }

    /// A message a client could send.
    fn message() -> impl Strategy<Value = Message> {
        (
            a_ref(),
            a_ref(),
            prop_oneof![
                "realtime:[a-z0-9:_-]{0,20}",
                Just("phoenix".to_owned()),
                "\\PC{0,20}"
            ],
            prop_oneof![
                prop::sample::select(vec![
                    "phx_join",
                    "phx_leave",
                    "heartbeat",
                    "broadcast",
                    "presence",
                    "access_token",
                ])
                .prop_map(str::to_owned),
                "\\PC{0,12}",
            ],
            json_value(),
        )
            .prop_map(|(join_ref, reference, topic, event, payload)| Message {
                join_ref,
                reference,
                topic,
                event,
                payload,
            })
    }

    /// A text frame: a message in either serializer, JSON of another shape, or any text.
    fn text_frame() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => message().prop_map(|m| m.to_text(Vsn::V2)),
            3 => message().prop_map(|m| m.to_text(Vsn::V1)),
            2 => prop::collection::vec(json_value(), 0..7).prop_map(|a| Value::from(a).to_string()),
            1 => json_value().prop_map(|v| v.to_string()),
            1 => "\\PC{0,60}",
        ]
    }

    /// A kind 3 frame from its fields: the five lengths as written, then the fields.
    fn kind3(fields: [&[u8]; 5], encoding: u8, body: &[u8]) -> Vec<u8> {
        let mut frame = vec![USER_BROADCAST_PUSH];
        frame.extend(
            fields
                .iter()
                .map(|f| u8::try_from(f.len()).unwrap_or(u8::MAX)),
        );
        frame.push(encoding);
        for field in fields {
            frame.extend_from_slice(field);
        }
        frame.extend_from_slice(body);
        frame
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases(3_000)))]

        #[test]
        fn generated_text_frames_decode_or_are_ignored(text in text_frame()) {
            for vsn in [Vsn::V1, Vsn::V2] {
                if let Some(m) = Message::parse_text(&text, vsn) {
                    // What was read writes back and reads the same.
                    prop_assert_eq!(Message::parse_text(&m.to_text(vsn), vsn).map(|n| n.topic), Some(m.topic));
                }
            }
        }

        #[test]
        fn generated_messages_round_trip_in_vsn_2(m in message()) {
            prop_assert_eq!(Message::parse_text(&m.to_text(Vsn::V2), Vsn::V2), Some(m));
        }

        #[test]
        fn generated_binary_frames_decode_or_are_ignored(bytes in prop::collection::vec(any::<u8>(), 0..64), first in prop::sample::select(vec![3u8, 4, 0, 255])) {
            let mut frame = bytes;
            if let Some(kind) = frame.first_mut() {
                *kind = first;
            }
            if let Some(m) = Message::parse_binary(&frame) {
                prop_assert_eq!(m.event.as_str(), "broadcast");
                prop_assert!(frame.len() >= 7 + m.topic.len());
            }
        }

        #[test]
        fn generated_binary_broadcasts_arrive_as_sent(
            join_ref in "[0-9]{0,3}",
            topic in "realtime:\\PC{0,40}",
            event in "\\PC{0,30}",
            bytes in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let frame = kind3([join_ref.as_bytes(), b"7", topic.as_bytes(), event.as_bytes(), b""], 0, &bytes);
            let m = Message::parse_binary(&frame);
            let m = m.expect("a well-formed kind 3 frame decodes");
            prop_assert_eq!(&m.topic, &topic);
            prop_assert_eq!(m.reference.as_deref(), Some("7"));
            let mut delivered = vec![USER_BROADCAST, topic.len() as u8, event.len() as u8, 0, 0];
            delivered.extend_from_slice(topic.as_bytes());
            delivered.extend_from_slice(event.as_bytes());
            delivered.extend_from_slice(&bytes);
            prop_assert_eq!(m.to_binary(), Some(delivered));
        }
    }
}
