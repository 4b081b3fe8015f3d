//! Microsoft Graph calendar notifications turned into meetings. A notification names only the
//! event (`resource`); with an app registered in the tenant (`config.graph: {tenant_id,
//! client_id}`, its client secret given to `integration-secret` as `api_token`) Tally takes a
//! token by the client-credentials grant and reads the event, in UTC. A deleted event (or one
//! Graph no longer has) removes its drafts. Without the app the notification is only stored.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::{
    Egress, Failure, Source, egress,
    meeting::{self, Attendee, Meeting},
};

/// Processes a stored Graph notification.
pub async fn apply(
    conn: &mut PgConnection,
    source: &Source,
    payload: &Value,
) -> Result<String, Failure> {
    let resource = payload["resource"].as_str().unwrap_or_default();
    let id = payload["resourceData"]["id"]
        .as_str()
        .or_else(|| resource.rsplit('/').next())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Failure::Permanent("the notification names no event".into()))?;
    let uid = format!("graph:{id}");
    if payload["changeType"] == "deleted" {
        return meeting::drafts_for(conn, source, &gone(uid)).await;
    }
    let Some(app) = GraphApp::from_config(&source.config, source.token.as_deref()) else {
        return Ok("stored; no Graph app configured to read the event".into());
    };
    let token = app.token(&source.http).await?;
    let res = source
        .http
        .get(&app.url(resource))
        .map_err(|refused| Failure::Permanent(format!("Graph is not called: {refused}")))?
        .bearer_auth(token)
        .header("prefer", "outlook.timezone=\"UTC\"")
        .send()
        .await
        .map_err(|e| {
            Failure::Transient(format!("Graph is unreachable: {}", egress::explain(&e)))
        })?;
    if res.status() == reqwest::StatusCode::NOT_FOUND {
        return meeting::drafts_for(conn, source, &gone(uid)).await;
    }
    let event: Value = res
        .error_for_status()
        .map_err(|e| Failure::Transient(format!("Graph refused to read the event: {e}")))?
        .json()
        .await
        .map_err(|e| Failure::Transient(format!("Graph answered no JSON: {e}")))?;
    let meeting = meeting(uid, &event).map_err(Failure::Permanent)?;
    meeting::drafts_for(conn, source, &meeting).await
}

/// A Graph app registered in the tenant (`config.graph: {tenant_id, client_id}`, its client
/// secret the integration's API token): where Tally takes tokens and calls the API
/// (`token_url` and `api_url` override Microsoft's).
pub struct GraphApp {
    token_url: String,
    api: String,
    client_id: String,
    secret: String,
}

impl GraphApp {
    /// The app an integration's `config` names, with its client secret; `None` without.
    pub fn from_config(config: &Value, secret: Option<&str>) -> Option<Self> {
        let graph = &config["graph"];
        let tenant = graph["tenant_id"].as_str()?;
        Some(Self {
            token_url: graph["token_url"].as_str().map_or_else(
                || format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
                str::to_owned,
            ),
            api: graph["api_url"]
                .as_str()
                .unwrap_or("https://graph.microsoft.com/v1.0")
                .trim_end_matches('/')
                .to_owned(),
            client_id: graph["client_id"].as_str()?.to_owned(),
            secret: secret?.to_owned(),
        })
    }

    /// The API's URL of `path` (`users/…/events/…`, `subscriptions`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.api, path.trim_start_matches('/'))
    }

    /// An app token, by the client-credentials grant.
    pub async fn token(&self, http: &Egress) -> Result<String, Failure> {
        let form = serde_urlencoded::to_string([
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .map_err(|e| Failure::Permanent(e.to_string()))?;
        let answer: Value = http
            .post(&self.token_url)
            .map_err(|refused| Failure::Permanent(format!("no Graph token: {refused}")))?
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Failure::Transient(format!("no Graph token: {}", egress::explain(&e))))?
            .json()
            .await
            .map_err(|e| Failure::Transient(format!("no Graph token: {e}")))?;
        answer["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure::Transient("the token answer has no access_token".into()))
    }
}

/// A meeting that no longer exists: its drafts go.
fn gone(uid: String) -> Meeting {
    let start = Utc::now();
    Meeting {
        uid,
        title: String::new(),
        start,
        end: start + chrono::Duration::minutes(1),
        cancelled: true,
        attendees: Vec::new(),
    }
}

/// A Graph `event` as a meeting.
fn meeting(uid: String, event: &Value) -> Result<Meeting, String> {
    let mut attendees: Vec<Attendee> = event["attendees"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let email = a["emailAddress"]["address"].as_str()?.to_lowercase();
            let declined = a["status"]["response"] == "declined";
            Some(Attendee { email, declined })
        })
        .collect();
    if let Some(email) = event["organizer"]["emailAddress"]["address"].as_str() {
        attendees.push(Attendee {
            email: email.to_lowercase(),
            declined: false,
        });
    }
    Ok(Meeting {
        uid,
        title: event["subject"].as_str().unwrap_or_default().to_owned(),
        start: instant(&event["start"])?,
        end: instant(&event["end"])?,
        cancelled: event["isCancelled"] == true,
        attendees,
    })
}

/// Graph's `dateTimeTimeZone`: a local time and an IANA or `UTC` zone.
fn instant(v: &Value) -> Result<DateTime<Utc>, String> {
    let local = v["dateTime"]
        .as_str()
        .ok_or("an event time has no dateTime")?;
    let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|_| format!("\"{local}\" is not a date-time"))?;
    match v["timeZone"].as_str().unwrap_or("UTC") {
        "UTC" | "Etc/UTC" => Ok(Utc.from_utc_datetime(&local)),
        zone => zone
            .parse::<chrono_tz::Tz>()
            .ok()
            .and_then(|tz| tz.from_local_datetime(&local).earliest())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("unknown time zone \"{zone}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graph_events_become_meetings() {
        let event = json!({
            "subject": "Budget review", "isCancelled": false,
            "start": {"dateTime": "2026-11-20T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-20T10:30:00.0000000", "timeZone": "Europe/Berlin"},
            "organizer": {"emailAddress": {"address": "Ann@A.test"}},
            "attendees": [
                {"emailAddress": {"address": "bob@a.test"}, "status": {"response": "accepted"}},
                {"emailAddress": {"address": "cy@a.test"}, "status": {"response": "declined"}}
            ]
        });
        let m = meeting("graph:e1".into(), &event).unwrap();
        assert_eq!(m.start.to_rfc3339(), "2026-11-20T09:00:00+00:00");
        assert_eq!(m.end.to_rfc3339(), "2026-11-20T09:30:00+00:00");
        assert_eq!(m.attending(), ["ann@a.test", "bob@a.test"]);
        assert!(meeting("x".into(), &json!({"start": {"dateTime": "soon"}})).is_err());
    }
}
