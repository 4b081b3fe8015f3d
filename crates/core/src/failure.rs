//! What a database error means for the caller, so every service answers it alike: the
//! caller's data refused (SQLSTATE class 22, such as a NUL character in text: 22021 or
//! 22P05), or the database out of reach (503), or something else.

/// A database error, as a service answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbFailure {
    /// The caller's data is not acceptable (SQLSTATE class 22): the caller's mistake, a 400.
    BadData {
        /// The SQLSTATE.
        code: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// The database cannot be reached or is shutting down: a 503, worth retrying.
    Unavailable,
    /// Anything else: the service decides.
    Other,
}

/// Classifies `e`.
pub fn classify(e: &sqlx::Error) -> DbFailure {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => DbFailure::Unavailable,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.get(..2) {
                Some("22") => DbFailure::BadData {
                    code,
                    message: db.message().to_owned(),
                },
                Some("08" | "53") => DbFailure::Unavailable,
                // Shut down, or (3D000) the database itself is gone.
                _ if matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "3D000") => {
                    DbFailure::Unavailable
                }
                _ => DbFailure::Other,
            }
        }
        _ => DbFailure::Other,
    }
}

/// The message services give when the database is out of reach.
pub const UNAVAILABLE: &str = "The database is unavailable right now; try again shortly";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), DbFailure::Unavailable);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(classify(&sqlx::Error::Io(io)), DbFailure::Unavailable);
        assert_eq!(classify(&sqlx::Error::RowNotFound), DbFailure::Other);
    }
}
