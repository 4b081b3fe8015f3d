//! Asymmetric signing keys, as Supabase's: sessions' access tokens are signed with the
//! *current* key (ES256 by default, RS256 imported) and carry its `kid`; *standby* keys are
//! published before they sign (so clients have them cached at rotation), *previous* keys still
//! verify what they signed, *revoked* keys verify nothing. The public halves are the JWKS.
//!
//! The keys live in `private.jwt_signing_keys` (the owner's; instances read them through a
//! definer function) and every change notifies `tally_signing_keys`: each instance reloads
//! at once ([`watch`]), so a rotation or a revocation holds on every instance.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, jwk::Jwk};
use serde_json::Value;

use crate::{JwtKeys, Task};

/// Where a key stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Published, not signing yet.
    Standby,
    /// Signs new tokens.
    Current,
    /// Verifies what it signed; signs nothing.
    Previous,
    /// Neither signs nor verifies.
    Revoked,
}

impl KeyStatus {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "standby" => Some(Self::Standby),
            "current" => Some(Self::Current),
            "previous" => Some(Self::Previous),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A key as stored: its id, algorithm, private key (PKCS#8 PEM) and status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredKey {
    /// The `kid` tokens carry.
    pub kid: String,
    /// `ES256` or `RS256`.
    pub algorithm: String,
    /// The private key, PKCS#8 PEM.
    pub private_key_pem: String,
    /// `standby`, `current`, `previous` or `revoked`.
    pub status: String,
}

/// A loaded key.
#[derive(Clone)]
pub struct SigningKey {
    /// The key id.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its status.
    pub status: KeyStatus,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    public: Jwk,
}

/// The loaded keys of a project.
#[derive(Clone, Default)]
pub struct SigningKeys(Vec<SigningKey>);

impl SigningKeys {
    /// Parses stored keys; a key that does not parse is an error naming it.
    pub fn load(stored: &[StoredKey]) -> Result<Self, String> {
        stored
            .iter()
            .map(|s| {
                let fail = |e: &dyn std::fmt::Display| format!("signing key {}: {e}", s.kid);
                let algorithm = match s.algorithm.as_str() {
                    "ES256" => Algorithm::ES256,
                    "RS256" => Algorithm::RS256,
                    other => return Err(fail(&format!("unsupported algorithm {other}"))),
                };
                let status = KeyStatus::parse(&s.status)
                    .ok_or_else(|| fail(&format!("unknown status {}", s.status)))?;
                let pem = s.private_key_pem.as_bytes();
                let encoding = match algorithm {
                    Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
                    _ => EncodingKey::from_rsa_pem(pem),
                }
                .map_err(|e| fail(&e))?;
                let mut public =
                    Jwk::from_encoding_key(&encoding, algorithm).map_err(|e| fail(&e))?;
                public.common.key_id = Some(s.kid.clone());
                public.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
                public.common.key_operations = Some(vec![jsonwebtoken::jwk::KeyOperations::Verify]);
                let decoding = DecodingKey::from_jwk(&public).map_err(|e| fail(&e))?;
                Ok(SigningKey {
                    kid: s.kid.clone(),
                    algorithm,
                    status,
                    encoding,
                    decoding,
                    public,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// The key that signs, if any.
    pub fn current(&self) -> Option<&SigningKey> {
        self.0.iter().find(|k| k.status == KeyStatus::Current)
    }

    /// The key `kid`, unless it is revoked.
    pub fn verifying(&self, kid: &str) -> Option<&SigningKey> {
        self.0
            .iter()
            .find(|k| k.kid == kid && k.status != KeyStatus::Revoked)
    }

    /// The JWKS: the public halves of every key but the revoked ones.
    pub fn jwks(&self) -> Value {
        let keys: Vec<&Jwk> = self
            .0
            .iter()
            .filter(|k| k.status != KeyStatus::Revoked)
            .map(|k| &k.public)
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// A new ES256 key (P-256), PKCS#8 PEM.
pub fn generate_es256_pem() -> Result<String, String> {
    use aws_lc_rs::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
    };
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|e| format!("cannot generate a key: {e}"))?;
    Ok(pem("PRIVATE KEY", der.as_ref()))
}

/// `der` as a PEM block of `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The stored keys, as an instance reads them.
pub async fn read(pool: &sqlx::PgPool) -> sqlx::Result<Vec<StoredKey>> {
    sqlx::query_as(
        "select kid, algorithm, private_key_pem, status from private.signing_keys_of_instance()",
    )
    .fetch_all(pool)
    .await
}

/// Loads the stored keys into `keys` (every clone sees them).
pub async fn reload(pool: &sqlx::PgPool, keys: &JwtKeys) -> Result<(), String> {
    let stored = read(pool).await.map_err(|e| e.to_string())?;
    keys.set_signing_keys(SigningKeys::load(&stored)?);
    Ok(())
}

/// Keeps `keys` in step with the stored keys: reloads on every `tally_signing_keys`
/// notification, and after a lost connection.
pub fn watch(pool: sqlx::PgPool, keys: JwtKeys) -> Task {
    Box::pin(async move {
        loop {
            if let Err(e) = listen(&pool, &keys).await {
                tracing::warn!(error = %e, "signing keys: lost the LISTEN connection; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn listen(pool: &sqlx::PgPool, keys: &JwtKeys) -> Result<(), String> {
    // A connection of its own, not one the requests (and the workers) share: a listener
    // holds its connection for good.
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener = sqlx::postgres::PgListener::connect_with(&own)
        .await
        .map_err(|e| e.to_string())?;
    listener
        .listen("tally_signing_keys")
        .await
        .map_err(|e| e.to_string())?;
    // Whatever changed while no one listened.
    reload(pool, keys).await?;
    loop {
        listener.recv().await.map_err(|e| e.to_string())?;
        if let Err(e) = reload(pool, keys).await {
            tracing::error!(error = %e, "signing keys: cannot reload; keeping the keys loaded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(kid: &str, status: &str) -> StoredKey {
        StoredKey {
            kid: kid.to_owned(),
            algorithm: "ES256".to_owned(),
            private_key_pem: generate_es256_pem().expect("a key"),
            status: status.to_owned(),
        }
    }

    #[test]
    fn sessions_are_signed_by_the_current_key_and_verified_by_kid_until_revoked() {
        let keys = JwtKeys::new("an-example-secret-of-at-least-32-characters");
        let claims = serde_json::json!({"sub": "u", "role": "authenticated"});
        // Without signing keys: HS256, as before.
        let legacy = keys.sign_session(&claims).expect("signed");
        assert_eq!(
            jsonwebtoken::decode_header(&legacy).expect("a header").alg,
            Algorithm::HS256
        );

        let (one, two) = (stored("one", "current"), stored("two", "standby"));
        keys.set_signing_keys(SigningKeys::load(&[one.clone(), two.clone()]).expect("loads"));
        let first = keys.sign_session(&claims).expect("signed");
        let header = jsonwebtoken::decode_header(&first).expect("a header");
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::ES256, Some("one"))
        );
        assert_eq!(keys.verify(&first).expect("valid").sub(), Some("u"));
        assert!(keys.verify(&legacy).is_ok(), "HS256 tokens still verify");
        let jwks = keys.signing_keys().jwks();
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "no private part: {jwks}"
        );
        assert_eq!(jwks["keys"][0]["kid"], "one");

        // Rotated: the new key signs, the old one still verifies what it signed.
        let rotated = [
            StoredKey {
                status: "previous".to_owned(),
                ..one.clone()
            },
            StoredKey {
                status: "current".to_owned(),
                ..two.clone()
            },
        ];
        keys.set_signing_keys(SigningKeys::load(&rotated).expect("loads"));
        let second = keys.sign_session(&claims).expect("signed");
        assert_eq!(
            jsonwebtoken::decode_header(&second)
                .expect("a header")
                .kid
                .as_deref(),
            Some("two")
        );
        assert!(keys.verify(&first).is_ok());

        // Revoked: refused, and gone from the JWKS; a forged kid is refused too.
        let revoked = [
            StoredKey {
                status: "revoked".to_owned(),
                ..one
            },
            rotated[1].clone(),
        ];
        keys.set_signing_keys(SigningKeys::load(&revoked).expect("loads"));
        assert!(matches!(
            keys.verify(&first),
            Err(crate::JwtError::Invalid(_))
        ));
        assert!(keys.verify(&second).is_ok());
        assert_eq!(
            keys.signing_keys().jwks()["keys"].as_array().map(Vec::len),
            Some(1)
        );
        let other = JwtKeys::new("an-example-secret-of-at-least-32-characters");
        other.set_signing_keys(SigningKeys::load(&[stored("two", "current")]).expect("loads"));
        let forged = other.sign_session(&claims).expect("signed");
        assert!(keys.verify(&forged).is_err(), "same kid, another key");
    }
}
