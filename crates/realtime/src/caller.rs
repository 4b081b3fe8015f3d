//! Who a channel acts as: the role and claims of its token, as a request would run.

use serde_json::{Map, Value, json};
use tally_core::{Claims, DbRole};

/// Claims that change with every token of one session and never decide what RLS shows; callers
/// differing only in them are checked once.
const PER_TOKEN: [&str; 5] = ["exp", "iat", "nbf", "jti", "session_id"];

/// A channel's caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The database role.
    pub role: DbRole,
    /// The token's claims (with `role` set to the role in use).
    pub claims: Map<String, Value>,
    /// Callers with one key see the same rows (shared with the registry's index of callers).
    pub key: std::sync::Arc<str>,
    /// When the token expires (seconds since the epoch).
    pub exp: i64,
    /// The auth session of a user token, whose sign-out closes the channel.
    pub session: Option<String>,
    /// The signing key of the token (none for HS256), whose revocation closes the channel.
    pub kid: Option<String>,
}

impl Caller {
    /// A caller from verified claims of a token signed with the key `kid`; the role must be
    /// one of the API roles.
    pub fn from_claims(claims: Claims, kid: Option<String>) -> Result<Self, String> {
        let role = claims
            .role()
            .and_then(DbRole::from_claim)
            .ok_or_else(|| "Fields `role` and `exp` are required in JWT".to_owned())?;
        let exp = claims
            .0
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| "Fields `role` and `exp` are required in JWT".to_owned())?;
        let session = claims.str("session_id").map(str::to_owned);
        let mut claims = claims.0;
        claims.insert("role".into(), Value::from(role.as_str()));
        let mut stable = claims.clone();
        for name in PER_TOKEN {
            stable.remove(name);
        }
        Ok(Self {
            role,
            key: Value::Object(stable).to_string().into(),
            claims,
            exp,
            session,
            kid,
        })
    }

    /// `{role, claims}`, as `realtime.authorize` takes it.
    pub fn to_json(&self) -> Value {
        json!({ "role": self.role.as_str(), "claims": self.claims })
    }
}
