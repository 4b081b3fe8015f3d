//! Calendars: a signed JSON meeting (`{"id", "event": {...}}`), Microsoft Graph change
//! notifications (checked by `clientState`), and the meetings of polled ICS feeds. A meeting
//! becomes a draft log for each attendee who is a member (source `calendar`, work mode and
//! activity `meeting`); a moved meeting moves the drafts, a cancelled one removes them, and a
//! person no longer invited loses theirs — finalized logs are never touched.

use serde_json::Value;
use sqlx::PgConnection;

use super::{
    Failure, Incoming, Source, graph, json_with_id,
    meeting::{self, Meeting},
    signature,
};

/// Reads a signed JSON calendar event.
pub fn parse_event(body: &[u8]) -> Result<Incoming, String> {
    let (body, id) = json_with_id(body, "a calendar event")?;
    let meeting: Meeting =
        serde_json::from_value(body["event"].clone()).map_err(|e| format!("invalid event: {e}"))?;
    meeting.validate()?;
    Ok(Incoming {
        external_id: id,
        event_type: "calendar_event".into(),
        payload: body,
    })
}

/// Reads Graph change notifications; each must carry the integration's secret as
/// `clientState`.
pub fn parse_graph(body: &[u8], secret: &str) -> Result<Vec<Incoming>, GraphError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| GraphError::Malformed(format!("invalid JSON body: {e}")))?;
    let notes = body["value"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            GraphError::Malformed("a notification needs a non-empty value array".into())
        })?;
    let mut events = Vec::with_capacity(notes.len());
    for note in notes {
        let state = note["clientState"].as_str().unwrap_or_default();
        if !signature::same_secret(state, secret) {
            return Err(GraphError::ClientState);
        }
        let subscription = note["subscriptionId"].as_str().unwrap_or_default();
        if subscription.is_empty() {
            return Err(GraphError::Malformed(
                "a notification needs a subscriptionId".into(),
            ));
        }
        let change = note["changeType"]
            .as_str()
            .or_else(|| note["lifecycleEvent"].as_str())
            .unwrap_or_default();
        let resource = note["resource"].as_str().unwrap_or_default();
        let version = note["resourceData"]["@odata.etag"]
            .as_str()
            .unwrap_or_default();
        events.push(Incoming {
            external_id: format!("{subscription}:{change}:{resource}:{version}"),
            event_type: format!("graph:{change}"),
            payload: note.clone(),
        });
    }
    Ok(events)
}

/// Why Graph notifications were refused.
pub enum GraphError {
    /// The body is not a notification collection.
    Malformed(String),
    /// A notification's `clientState` is not the integration's secret.
    ClientState,
}

/// Processes a stored calendar event.
pub async fn apply(
    conn: &mut PgConnection,
    source: &Source,
    event_type: &str,
    payload: &Value,
) -> Result<String, Failure> {
    match event_type {
        "calendar_event" => {
            let meeting: Meeting = serde_json::from_value(payload["event"].clone())
                .map_err(|e| Failure::Permanent(format!("invalid event: {e}")))?;
            meeting::drafts_for(conn, source, &meeting).await
        }
        t if t.starts_with("graph:") => graph::apply(conn, source, payload).await,
        _ => Ok("stored".into()),
    }
}
