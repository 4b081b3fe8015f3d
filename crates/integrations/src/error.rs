//! The integrations' one error type for their doors (the webhook receiver and
//! `integration-secret`); `/functions/v1` answers each as `{error, message}`.

/// What can go wrong at an integration's door.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The provider's signature does not check out (401).
    #[error("{0}")]
    InvalidSignature(String),
    /// The integration has no signing secret yet (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A project key alone, no signed-in user (401).
    #[error("This function needs a signed-in user's token")]
    NeedsUser,
    /// Nothing the caller may see has this id (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The body is larger than 1 MiB (413).
    #[error("The request body is larger than 1 MiB")]
    TooLarge,
    /// The database refused or could not be reached.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Our fault (sealing a secret, say); the message is for the log, not the caller.
    #[error("{0}")]
    Internal(String),
}

/// Results at an integration's door.
pub type IntegrationResult<T> = Result<T, IntegrationError>;

impl IntegrationError {
    /// An internal error from anything displayable.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }
}
