//! JWTs: the project secret (HS256) mints the anon and service_role API keys (JWTs whose
//! `role` is `anon` / `service_role`) and verifies HS256 tokens; the asymmetric signing keys
//! ([`crate::signing_keys`]), when a project has them, sign sessions' tokens and verify them by
//! `kid`.

use std::sync::{Arc, RwLock};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode_header, errors::ErrorKind,
};
use serde_json::{Map, Value, json};

use crate::signing_keys::SigningKeys;

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// `iat` of the API keys: fixed, so the keys stay the same for a given secret.
const API_KEY_IAT: i64 = 1_764_547_200; // 2025-12-01T00:00:00Z
/// The API keys are valid for ten years from [`API_KEY_IAT`].
const API_KEY_LIFETIME: i64 = 10 * 365 * 24 * 3600;

/// Why a token was refused. The messages are PostgREST's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token could not be decoded or its signature is wrong.
    #[error("{0}")]
    Invalid(String),
    /// `exp` is in the past.
    #[error("JWT expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("JWT not yet valid")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("JWT issued at future")]
    IssuedInFuture,
}

/// A verified token's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// The `role` claim, when it is a string.
    pub fn role(&self) -> Option<&str> {
        self.0.get("role").and_then(Value::as_str)
    }

    /// The `sub` claim, when it is a string.
    pub fn sub(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    /// A string claim by name.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

/// The project's keys. Clones share the signing keys: a reload reaches every service at once,
/// and [`JwtKeys::changes`] tells them it happened.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    signing: Arc<RwLock<Arc<SigningKeys>>>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    /// Keys for an HS256 secret.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            signing: Arc::default(),
            generation: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Changes each time the signing keys are replaced (a rotation or a revocation), for
    /// what holds verified tokens open (realtime's channels) to check them again.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Replaces the asymmetric signing keys (for this value and every clone).
    pub fn set_signing_keys(&self, keys: SigningKeys) {
        let mut slot = self
            .signing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Arc::new(keys);
        drop(slot);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Whether a token signed with the key `kid` (or with the secret, for `None`) would still
    /// verify: its key is not revoked.
    pub fn still_trusts(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|kid| self.signing_keys().verifying(kid).is_some())
    }

    /// The asymmetric signing keys as they stand.
    pub fn signing_keys(&self) -> Arc<SigningKeys> {
        self.signing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Signs `claims` (a JSON object) with HS256.
    pub fn sign(&self, claims: &Value) -> Result<String, JwtError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| JwtError::Invalid(e.to_string()))
    }

    /// Signs a session's `claims` with the current signing key (its `kid` in the header), or
    /// with HS256 when the project has none.
    pub fn sign_session(&self, claims: &Value) -> Result<String, JwtError> {
        let keys = self.signing_keys();
        let Some(key) = keys.current() else {
            return self.sign(claims);
        };
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| JwtError::Invalid(e.to_string()))
    }

    /// Verifies the signature — HS256 with the secret, or an asymmetric token with the signing
    /// key its `kid` names, unless that key is revoked — and `exp`/`nbf`/`iat` (with
    /// [`LEEWAY_SECS`] of skew).
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let header = decode_header(token)
            .map_err(|e| JwtError::Invalid(format!("JWT cannot be decoded: {e}")))?;
        if header.alg == Algorithm::HS256 {
            return self.verify_with(token, &self.decoding, &self.validation);
        }
        let keys = self.signing_keys();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keys.verifying(kid))
            .filter(|key| key.algorithm == header.alg)
            .ok_or_else(|| JwtError::Invalid("JWT signing key is unknown or revoked".to_owned()))?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.algorithm];
        self.verify_with(token, &key.decoding, &validation)
    }

    /// The `kid` in a token's header, if any (not verified).
    pub fn key_id(token: &str) -> Option<String> {
        decode_header(token).ok()?.kid
    }

    fn verify_with(
        &self,
        token: &str,
        decoding: &DecodingKey,
        validation: &Validation,
    ) -> Result<Claims, JwtError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, decoding, validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                ErrorKind::InvalidSignature => JwtError::Invalid("JWSInvalidSignature".to_owned()),
                ErrorKind::InvalidAlgorithm => {
                    JwtError::Invalid("Wrong or unsupported encoding algorithm".to_owned())
                }
                _ => JwtError::Invalid(format!("JWT cannot be decoded: {e}")),
            })?;
        let claims = data.claims;
        if let Some(iat) = claims.get("iat").and_then(Value::as_i64) {
            let now = chrono::Utc::now().timestamp();
            if iat > now + LEEWAY_SECS as i64 {
                return Err(JwtError::IssuedInFuture);
            }
        }
        Ok(Claims(claims))
    }

    /// The anon API key.
    pub fn anon_key(&self) -> String {
        self.api_key("anon")
    }

    /// The service_role API key: for servers only, it bypasses row-level security.
    pub fn service_role_key(&self) -> String {
        self.api_key("service_role")
    }

    fn api_key(&self, role: &str) -> String {
        let claims = json!({
            "iss": "tally",
            "ref": "tally",
            "role": role,
            "iat": API_KEY_IAT,
            "exp": API_KEY_IAT + API_KEY_LIFETIME,
        });
        // Signing a fixed JSON object with an HMAC key cannot fail.
        self.sign(&claims).expect("HS256 signing of a JSON object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "an-example-secret-of-at-least-32-characters";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn api_keys_carry_their_role_and_are_stable() {
        let keys = JwtKeys::new(SECRET);
        let anon = keys.verify(&keys.anon_key()).expect("valid in this test");
        assert_eq!(anon.role(), Some("anon"));
        let service = keys
            .verify(&keys.service_role_key())
            .expect("valid in this test");
        assert_eq!(service.role(), Some("service_role"));
        assert_eq!(keys.anon_key(), JwtKeys::new(SECRET).anon_key());
    }

    #[test]
    fn refuses_other_secrets_expired_and_future_tokens() {
        let keys = JwtKeys::new(SECRET);
        let other = JwtKeys::new("another-secret-that-is-also-32-chars-long");
        let token = other
            .sign(&json!({"role": "anon", "exp": now() + 60}))
            .expect("valid in this test");
        assert!(matches!(keys.verify(&token), Err(JwtError::Invalid(_))));

        let expired = keys
            .sign(&json!({"role": "anon", "exp": now() - 120}))
            .expect("valid in this test");
        assert_eq!(keys.verify(&expired), Err(JwtError::Expired));

        // Within the allowed skew an expired token still passes.
        let skewed = keys
            .sign(&json!({"role": "anon", "exp": now() - 5}))
            .expect("valid in this test");
        assert!(keys.verify(&skewed).is_ok());

        let early = keys
            .sign(&json!({"role": "anon", "nbf": now() + 600}))
            .expect("valid in this test");
        assert_eq!(keys.verify(&early), Err(JwtError::NotYetValid));

        let future = keys
            .sign(&json!({"role": "anon", "iat": now() + 600}))
            .expect("valid in this test");
        assert_eq!(keys.verify(&future), Err(JwtError::IssuedInFuture));

        assert!(matches!(
            keys.verify("not-a-jwt"),
            Err(JwtError::Invalid(_))
        ));
    }
}
