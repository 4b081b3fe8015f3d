//! Generic signed JSON webhooks for custom tools: `{"id", "type", ...}`. A `time_entry`
//! (`user_email`, `comment`, optional `started_at` and `duration_minutes`) becomes a draft
//! log of that member (source `api`); a later `time_entry` with the same `id` moves it.
//! Every other type is stored for the record.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgConnection;

use super::{
    Failure, Incoming, Source,
    drafts::{self, Draft},
    jira::summary,
    json_with_id,
};

/// A custom tool's time entry.
#[derive(Debug, Deserialize)]
struct TimeEntry {
    entry_id: Option<String>,
    user_email: String,
    comment: String,
    started_at: Option<DateTime<Utc>>,
    duration_minutes: Option<i32>,
}

/// Reads a generic webhook body.
pub fn parse(body: &[u8]) -> Result<Incoming, String> {
    let (body, id) = json_with_id(body, "a webhook")?;
    let kind = body["type"]
        .as_str()
        .filter(|t| !t.is_empty() && t.len() <= 100)
        .ok_or("a webhook needs a type (1 to 100 characters)")?;
    if kind == "time_entry" {
        entry(&body)?;
    }
    Ok(Incoming {
        external_id: id,
        event_type: kind.to_owned(),
        payload: body,
    })
}

fn entry(body: &Value) -> Result<TimeEntry, String> {
    let entry: TimeEntry =
        serde_json::from_value(body.clone()).map_err(|e| format!("invalid time_entry: {e}"))?;
    if entry.comment.trim().is_empty() {
        return Err("a time_entry needs a comment".into());
    }
    if entry
        .duration_minutes
        .is_some_and(|m| !(0..=1440).contains(&m))
    {
        return Err("duration_minutes must be between 0 and 1440".into());
    }
    Ok(entry)
}

/// Processes a stored generic event.
pub async fn apply(
    conn: &mut PgConnection,
    source: &Source,
    event_type: &str,
    payload: &Value,
) -> Result<String, Failure> {
    if event_type != "time_entry" {
        return Ok("stored".into());
    }
    let entry = entry(payload).map_err(Failure::Permanent)?;
    let email = entry.user_email.trim().to_lowercase();
    let user = source
        .person(conn, &email, Some(&email))
        .await?
        .ok_or_else(|| Failure::Permanent(format!("{email} is not a verified member")))?;
    let key = format!(
        "entry:{}",
        entry
            .entry_id
            .as_deref()
            .or(payload["id"].as_str())
            .unwrap_or_default()
    );
    let draft = Draft {
        user,
        comment: entry.comment.trim().to_owned(),
        started_at: entry.started_at,
        duration_minutes: entry.duration_minutes,
        project_id: None,
        work_mode: None,
        activity_type: None,
        source: "api",
    };
    let change = drafts::upsert_linked(
        conn,
        source.org,
        source.id,
        &key,
        &draft,
        source.received_at,
    )
    .await?;
    Ok(summary(&[change]))
}
