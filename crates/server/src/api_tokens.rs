//! Personal API tokens at the door: a request whose bearer token is an API token is looked up
//! (every time, so a revocation holds at once on every instance), counted against the token's
//! rate limit, checked against its scopes for what it asks, and then carried through as a
//! short-lived access token of its person with the token's claims, so every service and RLS
//! see an ordinary signed-in person (plus `token_id` and `scopes`; a token that may not write
//! gets read-only transactions, see [`tally_core::api_token::may_write`]).

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};
use serde_json::Value;
use tally_core::{
    api_token::{self, Scope},
    gateway::bearer_token,
};

use crate::{app::AppState, read_your_writes, refusals::refusal};

/// How long the access token a request carries on lives (it never leaves the server).
const CARRIED_FOR_SECS: i64 = 60;

/// The reports: summaries, periods and risk scores.
const REPORTS: [&str; 6] = [
    "user_day_summaries",
    "person_period_summaries",
    "team_period_summaries",
    "project_period_summaries",
    "org_period_summaries",
    "risk_scores",
];

/// Logs and what hangs off them, which `logs:write` writes.
const LOGS: [&str; 2] = ["time_logs", "attachments"];

/// Storage's `POST`s that only read: listing and signing download URLs.
const STORAGE_READS: [&str; 2] = ["/storage/v1/object/list/", "/storage/v1/object/sign/"];

/// Functions by the scope they need (others need `admin`).
const LOG_FUNCTIONS: [&str; 9] = [
    "log-create",
    "sync-push",
    "log-finalize",
    "ai-classify",
    "recall",
    "timer-start",
    "timer-stop",
    "timesheet-submit",
    "upload-presign",
];
const REPORT_FUNCTIONS: [&str; 2] = ["export-create", "analytics-query"];

/// Middleware: admits requests carrying an API token as described above; leaves every other
/// request as it is.
pub async fn admit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(token) = bearer_token(request.headers())
        .filter(|t| api_token::is_api_token(t))
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    let Some(needed) = needed(request.method(), &path) else {
        return refusal(
            &path,
            StatusCode::FORBIDDEN,
            "API tokens cannot be used here; sign in instead",
        );
    };
    let claims: Option<Value> = match sqlx::query_scalar("select private.api_token_claims($1)")
        .bind(api_token::hash(&token))
        .fetch_one(state.pool())
        .await
    {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(error = %e, "looking up an API token failed");
            return refusal(
                &path,
                StatusCode::SERVICE_UNAVAILABLE,
                "The token could not be checked; try again",
            );
        }
    };
    let Some(Value::Object(mut claims)) = claims else {
        return refusal(
            &path,
            StatusCode::UNAUTHORIZED,
            "Invalid API token: unknown, revoked or expired",
        );
    };
    let token_id = claims
        .get("token_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(wait) = state.token_limits().take(&token_id) {
        let mut refused = refusal(
            &path,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests with this API token; slow down",
        );
        if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            refused.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return refused;
    }
    let scopes = api_token::scopes(&claims).unwrap_or_default();
    if !api_token::allows(&scopes, needed) {
        let message = format!("This API token lacks the {} scope", needed.as_str());
        return refusal(&path, StatusCode::FORBIDDEN, &message);
    }
    let now = chrono::Utc::now().timestamp();
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + CARRIED_FOR_SECS).into());
    let carried = state
        .keys()
        .sign(&Value::Object(claims))
        .ok()
        .and_then(|jwt| HeaderValue::from_str(&format!("Bearer {jwt}")).ok());
    let Some(carried) = carried else {
        return refusal(
            &path,
            StatusCode::INTERNAL_SERVER_ERROR,
            "The token could not be carried",
        );
    };
    request.headers_mut().insert(header::AUTHORIZATION, carried);
    next.run(request).await
}

/// The scope a request needs; `None` where tokens are not accepted (`/auth/v1`: a token does
/// not manage its person's account).
fn needed(method: &Method, path: &str) -> Option<Scope> {
    let reads = !read_your_writes::may_write(method, path)
        || (method == Method::POST && STORAGE_READS.iter().any(|p| path.starts_with(p)));
    let mut parts = path.trim_start_matches('/').split('/');
    let service = parts.next().unwrap_or_default();
    let _version = parts.next();
    let name = parts.next().unwrap_or_default();
    Some(match service {
        "auth" => return None,
        "rest" if REPORTS.contains(&name) => Scope::ReportsRead,
        "rest" if reads => Scope::LogsRead,
        "rest" if LOGS.contains(&name) => Scope::LogsWrite,
        "functions" if REPORT_FUNCTIONS.contains(&name) => Scope::ReportsRead,
        "functions" if LOG_FUNCTIONS.contains(&name) => Scope::LogsWrite,
        "storage" if !reads => Scope::LogsWrite,
        _ if reads => Scope::LogsRead,
        _ => Scope::Admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_door_asks_the_scope_of_what_it_does() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(needed(&get, "/rest/v1/time_logs"), Some(Scope::LogsRead));
        assert_eq!(needed(&post, "/rest/v1/time_logs"), Some(Scope::LogsWrite));
        assert_eq!(
            needed(&Method::PATCH, "/rest/v1/projects"),
            Some(Scope::Admin)
        );
        assert_eq!(
            needed(&get, "/rest/v1/risk_scores"),
            Some(Scope::ReportsRead)
        );
        assert_eq!(needed(&post, "/rest/v1/rpc/anything"), Some(Scope::Admin));
        assert_eq!(
            needed(&post, "/functions/v1/log-create"),
            Some(Scope::LogsWrite)
        );
        assert_eq!(
            needed(&post, "/functions/v1/sync-pull"),
            Some(Scope::LogsRead)
        );
        assert_eq!(
            needed(&post, "/functions/v1/sync-push"),
            Some(Scope::LogsWrite)
        );
        assert_eq!(
            needed(&post, "/functions/v1/timesheet-review"),
            Some(Scope::Admin)
        );
        assert_eq!(
            needed(&post, "/functions/v1/export-create"),
            Some(Scope::ReportsRead)
        );
        assert_eq!(
            needed(&get, "/storage/v1/object/voices/x"),
            Some(Scope::LogsRead)
        );
        assert_eq!(
            needed(&post, "/storage/v1/object/voices/x"),
            Some(Scope::LogsWrite)
        );
        assert_eq!(needed(&get, "/auth/v1/user"), None);
    }
}
