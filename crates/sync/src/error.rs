//! Sync's one error type; `/functions/v1` answers each as `{error, message}`.

/// What can go wrong in a pull or a push.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// More mutations than a push may hold (413).
    #[error("A push holds at most {0} mutations; send the rest in another")]
    TooManyMutations(usize),
    /// Over the per-minute limit (429).
    #[error("Too many sync requests; try again in a minute")]
    RateLimited,
    /// The cursor is older than what was purged (410).
    #[error(
        "Deleted rows older than this cursor have been purged: pull again without a cursor and replace the local copy"
    )]
    ResyncRequired,
    /// A project key alone, no signed-in user (401).
    #[error("This function needs a signed-in user's token")]
    NeedsUser,
    /// The caller is not a member of the organization (403).
    #[error("You are not a member of this organization")]
    NotMember,
    /// The org requires MFA and the caller's session is at aal1 (403).
    #[error("{}", tally_core::request::MFA_REQUIRED)]
    MfaRequired,
    /// The database refused or could not be reached.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Results of sync code.
pub type SyncResult<T> = Result<T, SyncError>;
