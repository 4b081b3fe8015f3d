//! Passwords: argon2id (OWASP parameters), hashed and checked on the blocking pool so the
//! async threads keep serving.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::error::{AuthError, AuthResult};

use std::sync::OnceLock;

/// A stand-in hash checked when a sign-in names no known user, so that the answer takes as
/// long either way and does not reveal which emails exist.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn dummy_hash() -> &'static str {
    DUMMY_HASH.get_or_init(|| {
        Argon2::default()
            .hash_password(b"tally-dummy-password")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Hashes a password (argon2id, random salt) off the async threads.
pub async fn hash(password: &str) -> AuthResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(AuthError::unexpected)?
    .map_err(AuthError::unexpected)
}

/// Checks a password against a stored hash (or the dummy hash when there is none) off the
/// async threads. Always spends the same work.
pub async fn verify(password: &str, hash: Option<&str>) -> AuthResult<bool> {
    let known = hash.is_some();
    let password = password.to_owned();
    let hash = hash.map(str::to_owned);
    let matches = tokio::task::spawn_blocking(move || {
        let hash = hash.as_deref().unwrap_or_else(|| dummy_hash());
        Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
    })
    .await
    .map_err(AuthError::unexpected)?;
    Ok(known && matches)
}

/// The longest password that may be set, in characters (GoTrue's limit).
pub const MAX_LENGTH: usize = 72;

/// The most bytes of a password a sign-in hashes: a longer one cannot be a password Tally
/// stored, and is refused without spending a hash on it.
pub const MAX_SIGN_IN_BYTES: usize = 1024;

/// Checks a new password against the configured minimum length and [`MAX_LENGTH`].
pub fn check_strength(password: &str, min_length: usize) -> AuthResult<()> {
    let length = password.chars().count();
    if length < min_length {
        return Err(AuthError::weak_password(min_length));
    }
    if length > MAX_LENGTH {
        return Err(AuthError::validation(format!(
            "Password cannot be longer than {MAX_LENGTH} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = hash("correct horse").await.expect("valid in this test");
        let b = hash("correct horse").await.expect("valid in this test");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salts must differ");
        assert!(
            verify("correct horse", Some(&a))
                .await
                .expect("valid in this test")
        );
        assert!(
            !verify("wrong horse", Some(&a))
                .await
                .expect("valid in this test")
        );
        assert!(
            !verify("correct horse", None)
                .await
                .expect("valid in this test")
        );
    }

    #[test]
    fn short_passwords_are_weak() {
        assert_eq!(
            check_strength("short", 8)
                .expect_err("expected an error")
                .code(),
            "weak_password"
        );
        assert!(check_strength("long enough", 8).is_ok());
        assert!(check_strength(&"x".repeat(MAX_LENGTH), 8).is_ok());
        let long = check_strength(&"x".repeat(MAX_LENGTH + 1), 8).expect_err("too long");
        assert_eq!(long.code(), "validation_failed");
    }
}
