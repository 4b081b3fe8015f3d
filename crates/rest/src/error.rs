//! PostgREST's errors: `{code, message, details, hint}` with the status of §2.4 of the
//! protocol reference, for our own checks (PGRST codes) and for PostgreSQL's (SQLSTATE).

use axum::{
    Json,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// A REST error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RestError {
    /// HTTP status.
    pub status: StatusCode,
    /// PGRST code or SQLSTATE.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// More detail, or null: text, or (PGRST201) the candidate relationships.
    pub details: Option<Box<Value>>,
    /// A hint, or null.
    pub hint: Option<String>,
}

/// Results of the REST layer.
pub type RestResult<T> = Result<T, RestError>;

impl RestError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: None,
            hint: None,
        }
    }

    /// Adds details.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(Box::new(Value::String(details.into())));
        self
    }

    /// Adds details that are not text (PGRST201's list of relationships).
    pub fn details_value(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// PGRST100: the query string does not parse.
    pub fn parse(message: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "PGRST100", message).details(details)
    }

    /// PGRST102: the body is not valid JSON of the right shape.
    pub fn body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "PGRST102", message)
    }

    /// A column that does not exist (PostgreSQL's 42703, as PostgREST reports it).
    pub fn unknown_column(table: &str, column: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "42703",
            format!("column {table}.{column} does not exist"),
        )
    }

    /// Maps a database error by its SQLSTATE, as PostgREST does. `anon` decides 401 vs 403
    /// for privilege errors.
    pub fn from_db(e: &sqlx::Error, anon: bool) -> Self {
        let Some(db) = e.as_database_error() else {
            return match e {
                sqlx::Error::PoolTimedOut => Self::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "PGRST003",
                    "Timed out acquiring connection from connection pool.",
                ),
                _ => {
                    tracing::error!(error = %e, "rest: database failure");
                    Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "PGRST000",
                        "Database client error. Retrying the connection.",
                    )
                }
            };
        };
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
        let details = pg
            .and_then(|p| p.detail())
            .map(|d| Box::new(Value::String(d.to_owned())));
        let hint = pg.and_then(|p| p.hint()).map(str::to_owned);
        let status = status_for(&code, db.message(), anon);
        Self {
            status,
            code,
            message: db.message().to_owned(),
            details,
            hint,
        }
    }
}

/// PostgREST's SQLSTATE → HTTP table.
fn status_for(code: &str, message: &str, anon: bool) -> StatusCode {
    let class = code.get(..2).unwrap_or_default();
    match code {
        "23503" | "23505" => StatusCode::CONFLICT,
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        "42883" | "42P01" => StatusCode::NOT_FOUND,
        "42P17" => StatusCode::INTERNAL_SERVER_ERROR,
        "42501" if anon => StatusCode::UNAUTHORIZED,
        "42501" => StatusCode::FORBIDDEN,
        "P0001" => StatusCode::BAD_REQUEST,
        "21000" if message.contains("requires a WHERE clause") => StatusCode::BAD_REQUEST,
        "21000" => StatusCode::INTERNAL_SERVER_ERROR,
        "22023" if message.contains("role") && message.contains("does not exist") => {
            StatusCode::UNAUTHORIZED
        }
        "53400" => StatusCode::INTERNAL_SERVER_ERROR,
        // The database is shutting down, or gone from under the server.
        "57P01" | "3D000" => StatusCode::SERVICE_UNAVAILABLE,
        _ => match class {
            "08" | "53" => StatusCode::SERVICE_UNAVAILABLE,
            "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0"
            | "HV" | "XX" => StatusCode::INTERNAL_SERVER_ERROR,
            "0L" | "0P" | "28" => StatusCode::FORBIDDEN,
            "P0" => StatusCode::INTERNAL_SERVER_ERROR,
            c if c.starts_with("PT") => code
                .get(2..)
                .and_then(|s| s.parse::<u16>().ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::BAD_REQUEST),
            _ => StatusCode::BAD_REQUEST,
        },
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, message = %self.message, "rest: server error");
        }
        let body: Value = json!({
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "hint": self.hint,
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&format!("PostgREST; error={}", self.code)) {
            response.headers_mut().insert("proxy-status", value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_like_postgrest() {
        assert_eq!(status_for("23505", "", false), StatusCode::CONFLICT);
        assert_eq!(status_for("42501", "", false), StatusCode::FORBIDDEN);
        assert_eq!(status_for("42501", "", true), StatusCode::UNAUTHORIZED);
        assert_eq!(status_for("22P02", "", false), StatusCode::BAD_REQUEST);
        assert_eq!(status_for("23514", "", false), StatusCode::BAD_REQUEST);
        assert_eq!(status_for("42P01", "", false), StatusCode::NOT_FOUND);
        assert_eq!(status_for("PT418", "", false).as_u16(), 418);
        assert_eq!(
            status_for("57014", "", false),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
