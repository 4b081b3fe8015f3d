//! Integration secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256) from the
//! project's JWT secret. A sealed secret is `nonce (12 bytes) || ciphertext || tag`, bound to
//! its integration's id, so a secret copied onto another integration does not open.

use std::sync::Arc;

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hkdf::{HKDF_SHA256, Salt},
    rand::{SecureRandom, SystemRandom},
};
use uuid::Uuid;

/// Seals and opens integration secrets.
#[derive(Clone)]
pub struct SecretBox {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<redacted>)")
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The ciphertext was altered, belongs to another integration, or another project key.
    #[error("the stored secret does not open with this project's key")]
    Open,
    /// The system's random source or the cipher failed.
    #[error("the secret could not be sealed")]
    Seal,
}

impl SecretBox {
    /// The box of the project whose JWT secret is `project_secret`.
    pub fn from_project_secret(project_secret: &str) -> Result<Self, SecretError> {
        let prk = Salt::new(HKDF_SHA256, b"tally integrations").extract(project_secret.as_bytes());
        let okm = prk
            .expand(&[b"integration signing secrets v1"], &AES_256_GCM)
            .map_err(|_| SecretError::Seal)?;
        let key = LessSafeKey::new(UnboundKey::from(okm));
        Ok(Self { key: Arc::new(key) })
    }

    /// Seals the signing secret of integration `integration`.
    pub fn seal(&self, integration: Uuid, secret: &str) -> Result<Vec<u8>, SecretError> {
        self.seal_as(&aad(integration, Sealed::Signing), secret)
    }

    /// Opens what [`SecretBox::seal`] made for `integration`.
    pub fn open(&self, integration: Uuid, sealed: &[u8]) -> Result<String, SecretError> {
        self.open_as(&aad(integration, Sealed::Signing), sealed)
    }

    /// Seals an API token of integration `integration` (Slack's bot token, a Graph app's client secret).
    pub fn seal_token(&self, integration: Uuid, token: &str) -> Result<Vec<u8>, SecretError> {
        self.seal_as(&aad(integration, Sealed::Token), token)
    }

    /// Opens what [`SecretBox::seal_token`] made for `integration`.
    pub fn open_token(&self, integration: Uuid, sealed: &[u8]) -> Result<String, SecretError> {
        self.open_as(&aad(integration, Sealed::Token), sealed)
    }

    fn seal_as(&self, aad: &[u8], secret: &str) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Seal)?;
        let mut data = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut data,
            )
            .map_err(|_| SecretError::Seal)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(sealed)
    }

    fn open_as(&self, aad: &[u8], sealed: &[u8]) -> Result<String, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut data)
            .map_err(|_| SecretError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Open)
    }
}

/// What a sealed value is: its ciphertext opens only as that.
#[derive(Clone, Copy)]
enum Sealed {
    Signing,
    Token,
}

/// The additional data a value is sealed with: its integration and what it is.
fn aad(integration: Uuid, kind: Sealed) -> Vec<u8> {
    let mut aad = integration.as_bytes().to_vec();
    aad.extend_from_slice(match kind {
        Sealed::Signing => b"signing secret",
        Sealed::Token => b"api token",
    });
    aad
}

/// A new random signing secret: `whsec_` and 32 random bytes in hex.
pub fn generate() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretError::Seal)?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_integration_and_project() {
        let a = SecretBox::from_project_secret("project-one-secret-at-least-32-chars!").unwrap();
        let b = SecretBox::from_project_secret("project-two-secret-at-least-32-chars!").unwrap();
        let (id, other) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = a.seal(id, "s3cr3t").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(a.open(id, &sealed).unwrap(), "s3cr3t");
        assert!(a.open(other, &sealed).is_err());
        assert!(b.open(id, &sealed).is_err());
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(a.open(id, &altered).is_err());
        assert_ne!(
            a.seal(id, "s3cr3t").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert!(generate().unwrap().starts_with("whsec_"));
    }
}
