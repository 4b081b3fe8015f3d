//! Slack: the Events API (`url_verification`, app mentions, direct messages) and the `/log`
//! slash command. Each becomes a pending log of the mapped person, classified like any other.

use serde_json::{Value, json};
use sqlx::PgConnection;

use super::{
    Egress, Failure, Incoming, Source,
    drafts::{self, Draft},
    egress,
};

/// What a Slack request is.
pub enum Request {
    /// The Events API's handshake: answer with the challenge.
    Challenge(String),
    /// Events to store.
    Events(Vec<Incoming>),
    /// A slash command, processed at once and answered in the channel.
    Command(Incoming),
}

/// Reads a Slack request's body (form-encoded commands, JSON events).
pub fn parse(form: bool, body: &[u8]) -> Result<Request, String> {
    if form {
        let fields: serde_json::Map<String, Value> =
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .map_err(|e| format!("invalid form body: {e}"))?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
        let field = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default();
        if field("command").is_empty()
            || field("user_id").is_empty()
            || field("trigger_id").is_empty()
        {
            return Err("a slash command needs command, user_id and trigger_id".into());
        }
        return Ok(Request::Command(Incoming {
            external_id: format!("command:{}", field("trigger_id")),
            event_type: "slash_command".into(),
            payload: Value::Object(fields),
        }));
    }
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    match body["type"].as_str() {
        Some("url_verification") => body["challenge"]
            .as_str()
            .map(|c| Request::Challenge(c.to_owned()))
            .ok_or_else(|| "url_verification needs a challenge".into()),
        Some("event_callback") => {
            let id = body["event_id"]
                .as_str()
                .filter(|id| !id.is_empty())
                .ok_or("an event_callback needs an event_id")?;
            let kind = body["event"]["type"]
                .as_str()
                .ok_or("an event_callback needs an event with a type")?;
            Ok(Request::Events(vec![Incoming {
                external_id: format!("event:{id}"),
                event_type: format!("event_callback:{kind}"),
                payload: body.clone(),
            }]))
        }
        Some(other) => Err(format!("unsupported Slack request type \"{other}\"")),
        None => Err("a Slack event needs a type".into()),
    }
}

/// Processes a stored Slack event; returns what happened, in words for the person.
pub async fn apply(
    conn: &mut PgConnection,
    source: &Source,
    event_type: &str,
    payload: &Value,
) -> Result<String, Failure> {
    match event_type {
        "slash_command" => {
            let user = payload["user_id"].as_str().unwrap_or_default();
            log(
                conn,
                source,
                user,
                payload["text"].as_str().unwrap_or_default(),
            )
            .await
        }
        "event_callback:app_mention" | "event_callback:message" => {
            let event = &payload["event"];
            match event["user"].as_str() {
                Some(user) if addressed(event) => {
                    log(
                        conn,
                        source,
                        user,
                        event["text"].as_str().unwrap_or_default(),
                    )
                    .await
                }
                _ => Ok("not a message to Tally; stored".into()),
            }
        }
        _ => Ok("stored".into()),
    }
}

/// Whether a message event is a person's words to Tally: a mention of the app, or a direct
/// message (not a bot's, not an edit or other subtype).
fn addressed(event: &Value) -> bool {
    let direct = event["type"] == "app_mention" || event["channel_type"] == "im";
    direct && event.get("bot_id").is_none() && event.get("subtype").is_none()
}

/// Where to tell the person what became of what they sent.
pub struct Reply {
    url: String,
    /// The bot token for the Web API; none for a command's `response_url`.
    token: Option<String>,
    body: Value,
}

impl Reply {
    /// The answer a processed event awaits: a mention or direct message to Tally, when the
    /// integration has a bot token (`chat:write`), mentions in their thread; a slash command
    /// through its `response_url` (used when its processing was left to the job).
    pub fn to(source: &Source, event_type: &str, payload: &Value) -> Option<Self> {
        if source.provider != "slack" {
            return None;
        }
        if event_type == "slash_command" {
            return Some(Self {
                url: payload["response_url"].as_str()?.to_owned(),
                token: None,
                body: json!({ "response_type": "ephemeral" }),
            });
        }
        let event = &payload["event"];
        let message = matches!(
            event_type,
            "event_callback:app_mention" | "event_callback:message"
        );
        if !message || !addressed(event) {
            return None;
        }
        let mut body = json!({ "channel": event["channel"].as_str()? });
        let thread = event["thread_ts"].as_str().or_else(|| {
            (event["channel_type"] != "im")
                .then(|| event["ts"].as_str())
                .flatten()
        });
        if let Some(thread) = thread {
            body["thread_ts"] = json!(thread);
        }
        Some(Self {
            url: format!("{}/chat.postMessage", api(source)),
            token: Some(source.token.clone()?),
            body,
        })
    }

    /// Posts `text`. Best effort: the event is processed whatever Slack answers, so a
    /// failure is logged, not retried.
    pub async fn send(mut self, http: &Egress, text: &str) {
        self.body["text"] = json!(text);
        let mut request = match http.post(&self.url) {
            Ok(request) => request.json(&self.body),
            Err(refused) => {
                tracing::warn!(%refused, "Slack answer not sent");
                return;
            }
        };
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let answer = async {
            let res = request.send().await?.error_for_status()?;
            // The Web API says `ok` in JSON; a response URL's 2xx is enough.
            match self.token {
                Some(_) => res.json::<Value>().await,
                None => Ok(json!({ "ok": true })),
            }
        };
        match answer.await {
            Ok(answer) if answer["ok"] == true => {}
            Ok(answer) => tracing::warn!(error = %answer["error"], "Slack refused the answer"),
            Err(e) => tracing::warn!(error = %egress::explain(&e), "Slack answer not sent"),
        }
    }
}

/// Slack's Web API: `config.slack_api_url` (default `https://slack.com/api`).
fn api(source: &Source) -> &str {
    source.config["slack_api_url"]
        .as_str()
        .unwrap_or("https://slack.com/api")
        .trim_end_matches('/')
}

async fn log(
    conn: &mut PgConnection,
    source: &Source,
    slack_user: &str,
    text: &str,
) -> Result<String, Failure> {
    let text = strip_mentions(text);
    if text.is_empty() {
        return Err(Failure::Permanent(
            "Nothing to log. Try `/log 2h reviewing the Apollo designs`.".into(),
        ));
    }
    let mut user = source.person(conn, slack_user, None).await?;
    if user.is_none()
        && let Some(email) = email_of(source, slack_user).await?
    {
        user = source.person(conn, slack_user, Some(&email)).await?;
    }
    let user = user.ok_or_else(|| {
        Failure::Permanent(format!(
            "Slack user {slack_user} is not linked to a Tally account yet: an admin can map it \
             in the integration's identities, or give Tally a bot token to match emails."
        ))
    })?;
    let draft = Draft {
        user,
        comment: text.clone(),
        started_at: None,
        duration_minutes: None,
        project_id: None,
        work_mode: None,
        activity_type: None,
        source: "slack",
    };
    drafts::create(conn, source.org, &draft).await?;
    Ok(format!("Logged “{text}”. Tally is classifying it now."))
}

/// The Slack user's email from `users.info` (needs the bot token and the `users:read.email`
/// scope); `None` without a token or when Slack knows no email.
async fn email_of(source: &Source, slack_user: &str) -> Result<Option<String>, Failure> {
    let Some(token) = &source.token else {
        return Ok(None);
    };
    let api = api(source);
    let query = serde_urlencoded::to_string([("user", slack_user)])
        .map_err(|e| Failure::Permanent(e.to_string()))?;
    let answer: Value = source
        .http
        .get(&format!("{api}/users.info?{query}"))
        .map_err(|refused| Failure::Permanent(format!("Slack is not called: {refused}")))?
        .bearer_auth(token)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| {
            Failure::Transient(format!("Slack users.info failed: {}", egress::explain(&e)))
        })?
        .json()
        .await
        .map_err(|e| Failure::Transient(format!("Slack users.info answered no JSON: {e}")))?;
    if answer["ok"] != true {
        tracing::warn!(error = %answer["error"], "Slack users.info refused");
        return Ok(None);
    }
    Ok(answer["user"]["profile"]["email"]
        .as_str()
        .map(str::to_owned))
}

/// The message's text without user mentions (`<@U123>`, `<@U123|name>`).
fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("<@") {
        out.push_str(&rest[..at]);
        match rest[at..].find('>') {
            Some(end) => rest = &rest[at + end + 1..],
            None => {
                rest = &rest[at..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Slack's answer to a slash command: only the person sees it.
pub fn ephemeral(text: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_removed() {
        assert_eq!(strip_mentions("<@U0BOT> 2h  code review"), "2h code review");
        assert_eq!(strip_mentions("hi <@U1|ann> and <@U2>!"), "hi and !");
        assert_eq!(strip_mentions("broken <@U1"), "broken <@U1");
    }

    #[test]
    fn commands_and_events_are_read() {
        let form = b"command=%2Flog&text=2h+review&user_id=U1&trigger_id=T.1&team_id=X";
        let Ok(Request::Command(c)) = parse(true, form) else {
            panic!("not a command")
        };
        assert_eq!(c.external_id, "command:T.1");
        assert_eq!(c.payload["text"], "2h review");
        assert!(parse(true, b"text=hi").is_err());
        let Ok(Request::Challenge(c)) =
            parse(false, br#"{"type":"url_verification","challenge":"abc"}"#)
        else {
            panic!("not a challenge")
        };
        assert_eq!(c, "abc");
        assert!(parse(false, b"{not json").is_err());
        assert!(
            parse(
                false,
                br#"{"type":"event_callback","event":{"type":"message"}}"#
            )
            .is_err()
        );
    }
}
