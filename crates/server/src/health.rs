//! `GET /health`: 200 when the database answers, 503 otherwise.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::app::AppState;

/// How long the database may take to answer a health check.
const DB_TIMEOUT: Duration = Duration::from_secs(2);

/// Reports the server's and the database's health.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ping = sqlx::query_scalar::<_, i32>("select 1").fetch_one(state.pool());
    let database_ok = matches!(tokio::time::timeout(DB_TIMEOUT, ping).await, Ok(Ok(1)));
    let version = env!("CARGO_PKG_VERSION");
    if database_ok {
        let body = json!({"status": "ok", "database": "ok", "version": version});
        (StatusCode::OK, Json(body))
    } else {
        let body = json!({"status": "unavailable", "database": "unreachable", "version": version});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
