//! Errors in GoTrue's shape: `{"code", "message"}` (plus the legacy `error_code`/`msg`
//! copies), the `x-sb-error-code` header and `X-Supabase-Api-Version: 2024-01-01`, so that
//! auth-js and supabase-py read the code either way.

use axum::{
    Json,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tally_core::failure::{self, DbFailure};

/// The API version GoTrue's clients ask for and the server echoes.
pub const API_VERSION: &str = "2024-01-01";

/// An auth error: a status, a stable code and a message.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AuthError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Option<Value>,
    oauth: bool,
}

/// Results of the auth layer.
pub type AuthResult<T> = Result<T, AuthError>;

impl AuthError {
    /// An error with a status, a GoTrue error code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
            oauth: false,
        }
    }

    /// 400 `validation_failed`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", message)
    }

    /// 400 `invalid_credentials` "Invalid login credentials".
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "Invalid login credentials",
        )
    }

    /// 422 `weak_password` with the reasons.
    pub fn weak_password(min_length: usize) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            format!("Password should be at least {min_length} characters."),
        );
        err.extra = Some(json!({"weak_password": {"reasons": ["length"]}}));
        err
    }

    /// An OAuth-style error: `{"error": "invalid_request", "error_description": …}`.
    pub fn oauth(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::BAD_REQUEST, "invalid_request", message);
        err.oauth = true;
        err
    }

    /// 401 `no_authorization`.
    pub fn no_authorization() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "no_authorization",
            "This endpoint requires a valid Bearer token",
        )
    }

    /// 403 `bad_jwt`.
    pub fn bad_jwt(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "bad_jwt",
            format!("invalid JWT: unable to parse or verify signature, {detail}"),
        )
    }

    /// 403 `not_admin`.
    pub fn not_admin() -> Self {
        Self::new(StatusCode::FORBIDDEN, "not_admin", "User not allowed")
    }

    /// 404 `user_not_found`.
    pub fn user_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "user_not_found", "User not found")
    }

    /// 429 `over_request_rate_limit`.
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "over_request_rate_limit",
            "Request rate limit reached",
        )
    }

    /// 500 `unexpected_failure`; the cause goes to the log, not to the client.
    pub fn unexpected(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "auth: unexpected failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
        )
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<sqlx::Error> for AuthError {
    /// Data the database refuses (a NUL in text, say) is the caller's 400; a database out of
    /// reach is a 503; the rest is ours.
    fn from(e: sqlx::Error) -> Self {
        match failure::classify(&e) {
            DbFailure::BadData { message, .. } => Self::validation(message),
            DbFailure::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                failure::UNAVAILABLE,
            ),
            DbFailure::Other => Self::unexpected(e),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut body = if self.oauth {
            json!({"error": self.code, "error_description": self.message})
        } else {
            json!({
                "code": self.code,
                "error_code": self.code,
                "message": self.message,
                "msg": self.message,
            })
        };
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.extra, &mut body) {
            map.extend(extra);
        }
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            "x-supabase-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        headers.insert("x-sb-error-code", HeaderValue::from_static(self.code));
        response
    }
}
