//! PKCE flow states: a client that sends `code_challenge` gets an auth code instead of
//! tokens in the redirect, and exchanges it with its verifier at `/token?grant_type=pkce`.

use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{AuthError, AuthResult};

/// How long an auth code may wait to be exchanged.
const FLOW_LIFETIME_SECS: f64 = 300.0;

/// A client's PKCE challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The challenge.
    pub challenge: String,
    /// `s256` or `plain`.
    pub method: String,
}

/// Reads `code_challenge` and `code_challenge_method`: both or neither.
pub fn challenge(
    code_challenge: Option<&str>,
    method: Option<&str>,
) -> AuthResult<Option<Challenge>> {
    let code_challenge = code_challenge.filter(|c| !c.is_empty());
    let method = method.filter(|m| !m.is_empty());
    match (code_challenge, method) {
        (None, None) => Ok(None),
        (Some(challenge), Some(method)) => {
            let method = method.to_lowercase();
            if method != "s256" && method != "plain" {
                return Err(AuthError::validation("Code challenge method not supported"));
            }
            let valid = (43..=128).contains(&challenge.len())
                && challenge
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'));
            if !valid {
                return Err(AuthError::validation(
                    "Code challenge has to be between 43 and 128 characters and only use [a-zA-Z0-9._~-]",
                ));
            }
            Ok(Some(Challenge {
                challenge: challenge.to_owned(),
                method,
            }))
        }
        _ => Err(AuthError::validation(
            "PKCE flow requires code_challenge_method and code_challenge",
        )),
    }
}

/// Stores a flow for `user`; returns its auth code.
pub async fn create(
    conn: &mut PgConnection,
    user: Uuid,
    challenge: &Challenge,
    method: &str,
) -> sqlx::Result<String> {
    let code = Uuid::new_v4().to_string();
    sqlx::query(
        "insert into auth.flow_state (user_id, auth_code, code_challenge, code_challenge_method, \
             authentication_method) values ($1, $2, $3, $4, $5)",
    )
    .bind(user)
    .bind(&code)
    .bind(&challenge.challenge)
    .bind(&challenge.method)
    .bind(method)
    .execute(conn)
    .await?;
    Ok(code)
}

/// The auth code of the user's newest pending flow for `method`, marked as issued.
pub async fn pending_code(
    conn: &mut PgConnection,
    user: Uuid,
    method: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "update auth.flow_state set auth_code_issued_at = now() where id = ( \
           select id from auth.flow_state where user_id = $1 and authentication_method = $2 \
             and created_at > now() - make_interval(secs => $3) \
           order by created_at desc limit 1) returning auth_code",
    )
    .bind(user)
    .bind(method)
    .bind(FLOW_LIFETIME_SECS * 12.0)
    .fetch_optional(conn)
    .await
}

/// A flow as its exchange finds it.
#[derive(sqlx::FromRow)]
struct ExchangedFlow {
    user_id: Option<Uuid>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    authentication_method: String,
    fresh: bool,
}

/// Exchanges an auth code and verifier for the flow's user and sign-in method. The flow is
/// used up either way.
pub async fn exchange(
    conn: &mut PgConnection,
    auth_code: &str,
    verifier: &str,
) -> AuthResult<(Uuid, String)> {
    if auth_code.is_empty() || verifier.is_empty() {
        return Err(AuthError::validation(
            "invalid request: both auth code and code verifier should be non-empty",
        ));
    }
    let row: Option<ExchangedFlow> = sqlx::query_as(
        "delete from auth.flow_state where auth_code = $1 \
         returning user_id, code_challenge, code_challenge_method, authentication_method, \
                   coalesce(auth_code_issued_at, created_at) > now() - make_interval(secs => $2) as fresh",
    )
    .bind(auth_code)
    .bind(FLOW_LIFETIME_SECS)
    .fetch_optional(conn)
    .await?;
    let Some(ExchangedFlow {
        user_id: Some(user),
        code_challenge: Some(challenge),
        code_challenge_method: Some(method),
        authentication_method,
        fresh,
    }) = row
    else {
        return Err(AuthError::new(
            StatusCode::NOT_FOUND,
            "flow_state_not_found",
            "invalid flow state, no valid flow state found",
        ));
    };
    if !fresh {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "flow_state_expired",
            "invalid flow state, flow state has expired",
        ));
    }
    let computed = if method == "s256" {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    } else {
        verifier.to_owned()
    };
    if computed != challenge {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "bad_code_verifier",
            "code challenge does not match previously saved code verifier",
        ));
    }
    Ok((user, authentication_method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_needs_both_parts_and_a_valid_shape() {
        assert!(challenge(None, None).expect("valid in this test").is_none());
        assert_eq!(
            challenge(Some("x"), None)
                .expect_err("expected an error")
                .code(),
            "validation_failed"
        );
        assert_eq!(
            challenge(Some("short"), Some("s256"))
                .expect_err("expected an error")
                .code(),
            "validation_failed"
        );
        let ok = challenge(Some(&"a".repeat(43)), Some("S256"))
            .expect("valid in this test")
            .expect("valid in this test");
        assert_eq!(ok.method, "s256");
    }
}
