//! Storage's one error type, answered as Supabase Storage does: HTTP 400 for every handled
//! error, the real status in the string `statusCode`, plus `code`, `error` and `message`
//! (5xx stay 5xx, and their details go to the log, not the client).

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use tally_core::failure::{self, DbFailure};

/// An error of `/storage/v1`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StorageError {
    /// The status Supabase puts in `statusCode`.
    pub status: u16,
    /// Supabase's error code (`NoSuchKey`, `AccessDenied`, …).
    pub code: &'static str,
    /// The short error name (`not_found`, `Unauthorized`, …).
    pub error: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

/// Results of storage code.
pub type StorageResult<T> = Result<T, StorageError>;

impl StorageError {
    /// An error with all its parts.
    pub fn new(
        status: u16,
        code: &'static str,
        error: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            error,
            message: message.into(),
        }
    }

    /// 400 InvalidRequest.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidRequest", "Bad Request", message)
    }

    /// 400 InvalidKey: an object name Tally refuses.
    pub fn invalid_key(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidKey", "Invalid Input", message)
    }

    /// 404 NoSuchKey: no object the caller may see has this name.
    pub fn no_such_key() -> Self {
        Self::new(404, "NoSuchKey", "not_found", "Object not found")
    }

    /// 404 NoSuchBucket.
    pub fn no_such_bucket() -> Self {
        Self::new(404, "NoSuchBucket", "Bucket not found", "Bucket not found")
    }

    /// 403 AccessDenied: row-level security refused the write.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(403, "AccessDenied", "Unauthorized", message)
    }

    /// 409 ResourceAlreadyExists.
    pub fn duplicate() -> Self {
        Self::new(
            409,
            "ResourceAlreadyExists",
            "Duplicate",
            "The resource already exists",
        )
    }

    /// 413 EntityTooLarge (in Supabase's words; the limit is the bucket's `file_size_limit`).
    pub fn too_large() -> Self {
        Self::new(
            413,
            "EntityTooLarge",
            "Payload too large",
            "The object exceeded the maximum allowed size",
        )
    }

    /// 415 InvalidMimeType.
    pub fn mime(message: impl Into<String>) -> Self {
        Self::new(415, "InvalidMimeType", "invalid_mime_type", message)
    }

    /// 400 InvalidJWT.
    pub fn jwt(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidJWT", "Unauthorized", message)
    }

    /// 403 for a signed-in action tried without a user or service token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(403, "AccessDenied", "Unauthorized", message)
    }

    /// 500: our fault; the details are logged.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "storage failed");
        Self::new(
            500,
            "InternalError",
            "internal",
            "Internal Server Error; the error was logged",
        )
    }
}

impl From<sqlx::Error> for StorageError {
    /// Database errors the caller caused become their storage codes; the rest are 500.
    fn from(e: sqlx::Error) -> Self {
        match failure::classify(&e) {
            DbFailure::BadData { message, .. } => return Self::invalid(message),
            DbFailure::Unavailable => {
                return Self::new(503, "DatabaseError", "unavailable", failure::UNAVAILABLE);
            }
            DbFailure::Other => {}
        }
        let Some(db) = e.as_database_error() else {
            return Self::internal(e);
        };
        match db.code().as_deref() {
            // 25006: a read-only API token's transaction refused a write.
            Some("42501" | "25006") => Self::access_denied(db.message()),
            Some("23505") => Self::duplicate(),
            Some("23503") => Self::no_such_bucket(),
            Some("23514" | "23502") => Self::invalid(db.message()),
            _ => Self::internal(e),
        }
    }
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::no_such_key(),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        let http = if self.status >= 500 {
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        } else {
            StatusCode::BAD_REQUEST
        };
        (
            http,
            Json(json!({
                "statusCode": self.status.to_string(),
                "code": self.code,
                "error": self.error,
                "message": self.message,
            })),
        )
            .into_response()
    }
}
