//! Jira webhooks: worklogs become, move or remove a draft log of their author; issue events
//! are kept as context (a worklog names only its issue's id, the issue events carry its key,
//! summary and project).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::{
    Failure, Incoming, Source,
    drafts::{self, Change, Draft},
};

/// Reads a Jira webhook body; `delivery` is the `X-Atlassian-Webhook-Identifier` header.
/// Returns the event and the body's millisecond timestamp.
pub fn parse(body: &[u8], delivery: Option<&str>) -> Result<(Incoming, i64), String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let event = body["webhookEvent"]
        .as_str()
        .filter(|e| !e.is_empty())
        .ok_or("a Jira webhook needs webhookEvent")?
        .to_owned();
    let timestamp = body["timestamp"]
        .as_i64()
        .ok_or("a Jira webhook needs a numeric timestamp")?;
    let subject = if event.starts_with("worklog_") {
        let worklog = Worklog::read(&body["worklog"])?;
        format!("worklog:{}", worklog.id)
    } else {
        body["issue"]["id"]
            .as_str()
            .map(|id| format!("issue:{id}"))
            .unwrap_or_default()
    };
    let external_id = match delivery.filter(|d| !d.is_empty()) {
        Some(d) => d.to_owned(),
        None => format!("{event}:{subject}:{timestamp}"),
    };
    Ok((
        Incoming {
            external_id,
            event_type: event,
            payload: body,
        },
        timestamp,
    ))
}

/// The fields of a worklog a draft needs.
struct Worklog {
    id: String,
    issue_id: String,
    account: String,
    email: Option<String>,
    comment: String,
    started: Option<DateTime<Utc>>,
    minutes: Option<i32>,
}

impl Worklog {
    fn read(w: &Value) -> Result<Self, String> {
        let id = text_or_number(&w["id"]).ok_or("a worklog needs an id")?;
        let started = match w["started"].as_str() {
            Some(s) => Some(
                DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
                    .or_else(|_| DateTime::parse_from_rfc3339(s))
                    .map_err(|_| format!("worklog started \"{s}\" is not a date-time"))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let minutes = match &w["timeSpentSeconds"] {
            Value::Null => None,
            v => {
                let secs = v
                    .as_i64()
                    .filter(|s| *s >= 0)
                    .ok_or("timeSpentSeconds must be a whole number")?;
                Some(i32::try_from((secs + 30) / 60).map_err(|_| "timeSpentSeconds is too large")?)
            }
        };
        Ok(Self {
            id,
            issue_id: text_or_number(&w["issueId"]).unwrap_or_default(),
            account: w["author"]["accountId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            email: w["author"]["emailAddress"].as_str().map(str::to_owned),
            comment: comment_text(&w["comment"]),
            started,
            minutes,
        })
    }
}

fn text_or_number(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A comment as plain text: a string, or the text nodes of an Atlassian document.
fn comment_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        if let Some(t) = v["text"].as_str() {
            out.push(t.to_owned());
        }
        for child in v["content"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Object(_) => {
            let mut parts = Vec::new();
            walk(v, &mut parts);
            parts.join(" ").trim().to_owned()
        }
        _ => String::new(),
    }
}

/// Processes a stored Jira event.
pub async fn apply(
    conn: &mut PgConnection,
    source: &Source,
    event_type: &str,
    payload: &Value,
) -> Result<String, Failure> {
    if !event_type.starts_with("worklog_") {
        return Ok("kept as issue context".into());
    }
    let worklog = Worklog::read(&payload["worklog"]).map_err(Failure::Permanent)?;
    let key = format!("worklog:{}", worklog.id);
    if event_type == "worklog_deleted" {
        let removed = drafts::remove_linked(conn, source.id, &key, &[], source.received_at).await?;
        return Ok(summary(&removed));
    }
    let user = source
        .person(conn, &worklog.account, worklog.email.as_deref())
        .await?
        .ok_or_else(|| {
            Failure::Permanent(format!(
                "Jira account {} is not linked to a Tally member",
                worklog.account
            ))
        })?;
    let issue = issue_context(conn, source, payload, &worklog.issue_id).await?;
    let issue_key = issue["key"].as_str().unwrap_or_default();
    let project_key = issue["fields"]["project"]["key"]
        .as_str()
        .or_else(|| issue_key.split_once('-').map(|(p, _)| p))
        .unwrap_or_default();
    let project_id = if project_key.is_empty() {
        None
    } else {
        drafts::project_by_key(conn, source.org, project_key).await?
    };
    let title = [
        issue_key,
        issue["fields"]["summary"].as_str().unwrap_or_default(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let comment = match (title.is_empty(), worklog.comment.is_empty()) {
        (false, false) => format!("{title}: {}", worklog.comment),
        (false, true) => title,
        (true, false) => worklog.comment.clone(),
        (true, true) => format!("Jira worklog {}", worklog.id),
    };
    let draft = Draft {
        user,
        comment,
        started_at: worklog.started,
        duration_minutes: worklog.minutes,
        project_id,
        work_mode: None,
        activity_type: None,
        source: "jira",
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

/// The issue a worklog belongs to: in the payload when Jira sent it, else from the latest
/// stored issue event of this integration.
async fn issue_context(
    conn: &mut PgConnection,
    source: &Source,
    payload: &Value,
    issue_id: &str,
) -> Result<Value, sqlx::Error> {
    if payload["issue"].is_object() {
        return Ok(payload["issue"].clone());
    }
    let stored: Option<Value> = sqlx::query_scalar(
        "select payload -> 'issue' from public.external_events \
         where integration_id = $1 and event_type like 'jira:issue%' and payload #>> '{issue,id}' = $2 \
         order by created_at desc limit 1",
    )
    .bind(source.id)
    .bind(issue_id)
    .fetch_optional(conn)
    .await?;
    Ok(stored.unwrap_or(Value::Null))
}

/// Changes in words.
pub fn summary(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no draft to change".into();
    }
    changes
        .iter()
        .map(|c| match c {
            Change::Created(id) => format!("draft {id} created"),
            Change::Updated(id) => format!("draft {id} updated"),
            Change::Removed(id) => format!("draft {id} removed"),
            Change::Finalized(id) => format!("log {id} is finalized; left as it is"),
            Change::Outdated(id) => format!("draft {id} already reflects a newer event"),
            Change::Gone => "removed by a newer event; no draft".into(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worklogs_are_read() {
        let body = br#"{"timestamp":1700000000000,"webhookEvent":"worklog_created","worklog":{"id":"100","issueId":"7","author":{"accountId":"acc-1"},"comment":{"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":"Fixed"},{"type":"text","text":"the bug"}]}]},"started":"2026-11-20T09:00:00.000+0100","timeSpentSeconds":5400}}"#;
        let (event, ts) = parse(body, None).unwrap();
        assert_eq!(ts, 1_700_000_000_000);
        assert_eq!(
            event.external_id,
            "worklog_created:worklog:100:1700000000000"
        );
        let w = Worklog::read(&event.payload["worklog"]).unwrap();
        assert_eq!(w.minutes, Some(90));
        assert_eq!(w.comment, "Fixed the bug");
        assert_eq!(w.started.unwrap().to_rfc3339(), "2026-11-20T08:00:00+00:00");
        assert!(parse(br#"{"webhookEvent":"worklog_created","timestamp":1}"#, None).is_err());
        assert!(parse(br#"{"timestamp":1}"#, None).is_err());
    }
}
