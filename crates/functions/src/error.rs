//! The functions' one error type: `{error, message}` with a 4xx status for the caller's
//! mistakes, 500 (details logged, not leaked) for ours.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use tally_core::failure::{self, DbFailure};

/// An error answered as `{"error": code, "message": message}`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FnError {
    /// HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

/// Results of function code.
pub type FnResult<T> = Result<T, FnError>;

impl FnError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404: nothing the caller may see has this id.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 403: the caller sees it but may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 `insufficient_aal`: the org requires MFA and the session is at aal1.
    pub fn insufficient_aal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "insufficient_aal", message)
    }

    /// 401: a signed-in user is needed.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 503: the database is out of reach; worth retrying.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            failure::UNAVAILABLE,
        )
    }

    /// 500: our fault; the details go to the log, not the client.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "function failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The function failed; the error was logged",
        )
    }
}

impl From<sqlx::Error> for FnError {
    /// Database errors the caller caused become 4xx; the rest are 500.
    fn from(e: sqlx::Error) -> Self {
        match failure::classify(&e) {
            DbFailure::BadData { message, .. } => return Self::bad_request(message),
            DbFailure::Unavailable => return Self::unavailable(),
            DbFailure::Other => {}
        }
        let Some(db) = e.as_database_error() else {
            return Self::internal(e);
        };
        let message = db.message().to_owned();
        match db.code().as_deref() {
            // The database's own refusals, PostgREST-style (PT + the HTTP status).
            Some("PT423") => Self::new(StatusCode::LOCKED, "locked", message),
            Some("PT409") => Self::new(StatusCode::CONFLICT, "conflict", message),
            // 25006: a read-only API token's transaction refused a write.
            Some("PT403" | "42501" | "25006") => Self::forbidden(message),
            Some("23505") => Self::new(StatusCode::CONFLICT, "conflict", message),
            Some("23503") => Self::new(StatusCode::BAD_REQUEST, "invalid_reference", message),
            Some("23514" | "23502") => Self::bad_request(message),
            _ => Self::internal(e),
        }
    }
}

impl IntoResponse for FnError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

impl From<tally_sync::SyncError> for FnError {
    /// Sync's errors in the functions' shape.
    fn from(e: tally_sync::SyncError) -> Self {
        use tally_sync::SyncError as E;
        let message = e.to_string();
        match e {
            E::BadRequest(message) => Self::bad_request(message),
            E::TooManyMutations(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            E::RateLimited => Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message),
            E::ResyncRequired => Self::new(StatusCode::GONE, "resync_required", message),
            E::NeedsUser => Self::unauthorized(message),
            E::NotMember => Self::forbidden(message),
            E::MfaRequired => Self::insufficient_aal(message),
            E::Database(e) => Self::from(e),
        }
    }
}

impl From<tally_integrations::IntegrationError> for FnError {
    /// The integrations' errors in the functions' shape.
    fn from(e: tally_integrations::IntegrationError) -> Self {
        use tally_integrations::IntegrationError as E;
        let message = e.to_string();
        match e {
            E::BadRequest(message) => Self::bad_request(message),
            E::InvalidSignature(message) => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_signature", message)
            }
            E::Unauthorized(message) => Self::unauthorized(message),
            E::NeedsUser => Self::unauthorized(message),
            E::NotFound(what) => Self::not_found(what),
            E::TooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message),
            E::Database(e) => Self::from(e),
            E::Internal(message) => Self::internal(message),
        }
    }
}
