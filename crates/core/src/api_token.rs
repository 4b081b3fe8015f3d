//! Personal API tokens: their shape, their hash, and what their scopes allow. A token is
//! `tally_pat_` and 48 hex digits; only its SHA-256 is stored. A request with one runs with
//! the claims `private.api_token_claims` gives (the person, `token_id`, `scopes`).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How every token begins (what tells it from a JWT).
pub const PREFIX: &str = "tally_pat_";

/// The characters of a token shown in lists, to tell tokens apart.
const SHOWN: usize = PREFIX.len() + 6;

/// What a token may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read logs and what goes with them (projects, vocabularies, attachments, sync).
    LogsRead,
    /// Also write them (logs, timers, attachments, sync-push).
    LogsWrite,
    /// Read summaries, periods, risk scores; export.
    ReportsRead,
    /// Everything the person may do (only owners and admins may create one).
    Admin,
}

impl Scope {
    /// Its name in a token's `scopes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LogsRead => "logs:read",
            Scope::LogsWrite => "logs:write",
            Scope::ReportsRead => "reports:read",
            Scope::Admin => "admin",
        }
    }
}

/// Whether `token` is shaped as an API token.
pub fn is_api_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// A fresh token.
pub fn generate() -> String {
    format!("{PREFIX}{}", crate::config::random_hex(24))
}

/// What is stored of a token.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The part of a token shown in lists.
pub fn shown(token: &str) -> &str {
    token.get(..SHOWN).unwrap_or(token)
}

/// The scopes of claims that came from an API token; `None` for any other caller.
pub fn scopes(claims: &Map<String, Value>) -> Option<Vec<&str>> {
    claims
        .get("scopes")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).collect())
}

/// Whether claims with these `scopes` allow `needed` (`admin` allows everything, a write scope
/// its reads).
pub fn allows(scopes: &[&str], needed: Scope) -> bool {
    let has = |s: Scope| scopes.contains(&s.as_str());
    has(Scope::Admin) || has(needed) || (needed == Scope::LogsRead && has(Scope::LogsWrite))
}

/// Whether a caller with these claims may write at all: any caller but an API token with
/// neither `logs:write` nor `admin`.
pub fn may_write(claims: &Map<String, Value>) -> bool {
    scopes(claims).is_none_or(|s| allows(&s, Scope::LogsWrite))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn admin_allows_all_and_writing_logs_allows_reading_them() {
        assert!(allows(&["admin"], Scope::ReportsRead));
        assert!(allows(&["logs:write"], Scope::LogsRead));
        assert!(!allows(&["logs:write"], Scope::ReportsRead));
        assert!(!allows(&["logs:read", "reports:read"], Scope::LogsWrite));
    }

    #[test]
    fn only_tokens_without_a_write_scope_are_read_only() {
        let claims = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(may_write(&claims(json!({"sub": "x"}))));
        assert!(may_write(&claims(json!({"scopes": ["logs:write"]}))));
        assert!(may_write(&claims(json!({"scopes": ["admin"]}))));
        assert!(!may_write(&claims(
            json!({"scopes": ["logs:read", "reports:read"]})
        )));
    }

    #[test]
    fn tokens_are_recognised_hashed_and_shown_by_their_start() {
        let token = generate();
        assert!(is_api_token(&token) && token.len() == PREFIX.len() + 48);
        assert_eq!(hash(&token).len(), 32);
        assert_ne!(hash(&token), hash(&generate()));
        assert_eq!(shown(&token).len(), PREFIX.len() + 6);
        assert!(!is_api_token("eyJhbGciOiJIUzI1NiJ9.e30.x"));
    }
}
