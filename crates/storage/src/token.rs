//! Signed-URL tokens, as Supabase Storage makes them: JWTs signed (HMAC-SHA256) with the
//! project's secret over the object's `{bucket}/{name}`, the operation (`scope`: download or
//! upload, so a download URL cannot be replayed as an upload), an expiry, and for a download
//! of a transformed image the transformation (which the URL's holder cannot change).

use chrono::Utc;
use serde_json::{Value, json};
use tally_core::{JwtError, JwtKeys};
use uuid::Uuid;

use crate::{
    error::{StorageError, StorageResult},
    transform::Transform,
};

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `GET /object/sign/{bucket}/{name}`.
    Download,
    /// `PUT /object/upload/sign/{bucket}/{name}`.
    Upload,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Upload => "upload",
        }
    }
}

/// What a verified token grants.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Who asked for an upload URL: the object's owner.
    pub owner: Option<Uuid>,
    /// May the upload replace an existing object.
    pub upsert: bool,
    /// The transformation a download applies.
    pub transform: Option<Transform>,
}

/// The path a signed download opens (relative to `/storage/v1`): the object, or with a
/// transformation its rendering.
pub fn signed_path(bucket: &str, name: &str, token: &str, transformed: bool) -> String {
    let route = if transformed {
        "render/image"
    } else {
        "object"
    };
    format!("/{route}/sign/{bucket}/{name}?token={token}")
}

/// Signs a download token for `bucket/name` (with a transformation, if any), valid
/// `expires_in` seconds.
pub fn sign_download(
    keys: &JwtKeys,
    bucket: &str,
    name: &str,
    expires_in: i64,
    transform: Option<&Transform>,
) -> StorageResult<String> {
    let iat = Utc::now().timestamp();
    let mut claims = json!({
        "url": format!("{bucket}/{name}"),
        "scope": Scope::Download.as_str(),
        "iat": iat,
        "exp": iat + expires_in,
    });
    if let (Some(transform), Value::Object(map)) = (transform, &mut claims) {
        map.insert("transform".into(), transform.to_json());
    }
    keys.sign(&claims).map_err(StorageError::internal)
}

/// Signs an upload token for `bucket/name` on behalf of `owner`; returns it and its expiry
/// (unix seconds).
pub fn sign_upload(
    keys: &JwtKeys,
    bucket: &str,
    name: &str,
    owner: Option<Uuid>,
    upsert: bool,
    expires_in: i64,
) -> StorageResult<(String, i64)> {
    let iat = Utc::now().timestamp();
    let exp = iat + expires_in;
    let token = keys
        .sign(&json!({
            "owner": owner,
            "url": format!("{bucket}/{name}"),
            "upsert": upsert,
            "scope": Scope::Upload.as_str(),
            "iat": iat,
            "exp": exp,
        }))
        .map_err(StorageError::internal)?;
    Ok((token, exp))
}

/// Verifies a token for `scope` on exactly `bucket/name`.
pub fn verify(
    keys: &JwtKeys,
    token: &str,
    scope: Scope,
    bucket: &str,
    name: &str,
) -> StorageResult<Grant> {
    let claims = keys.verify(token).map_err(|e| match e {
        JwtError::Expired => StorageError::new(400, "ExpiredToken", "Unauthorized", "jwt expired"),
        JwtError::Invalid(m) if m == "JWSInvalidSignature" => {
            StorageError::new(400, "InvalidSignature", "Unauthorized", "invalid signature")
        }
        other => StorageError::jwt(other.to_string()),
    })?;
    let claims = claims.0;
    if claims.get("exp").and_then(Value::as_i64).is_none() {
        return Err(StorageError::jwt("The token has no expiry"));
    }
    if claims.get("scope").and_then(Value::as_str) != Some(scope.as_str()) {
        return Err(StorageError::jwt(format!(
            "The token is not for {}",
            scope.as_str()
        )));
    }
    if claims.get("url").and_then(Value::as_str) != Some(format!("{bucket}/{name}").as_str()) {
        return Err(StorageError::new(
            400,
            "InvalidSignature",
            "Unauthorized",
            "The url does not match the signature",
        ));
    }
    Ok(Grant {
        owner: claims
            .get("owner")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        upsert: claims
            .get("upsert")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        transform: claims
            .get("transform")
            .map(Transform::from_json)
            .transpose()?
            .flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new("a-test-secret-that-is-long-enough-for-hs256")
    }

    #[test]
    fn a_token_opens_only_its_own_object_for_its_own_operation() {
        let keys = keys();
        let token = sign_download(&keys, "images", "o/l/a.png", 60, None).expect("signs");
        assert!(verify(&keys, &token, Scope::Download, "images", "o/l/a.png").is_ok());
        let other = verify(&keys, &token, Scope::Download, "images", "o/l/b.png")
            .expect_err("another path");
        assert_eq!(other.code, "InvalidSignature");
        assert!(verify(&keys, &token, Scope::Upload, "images", "o/l/a.png").is_err());
        assert!(verify(&keys, &token, Scope::Download, "voices", "o/l/a.png").is_err());
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(verify(&keys, &tampered, Scope::Download, "images", "o/l/a.png").is_err());
        let foreign = JwtKeys::new("another-secret-that-is-long-enough-for-hs256");
        assert!(verify(&foreign, &token, Scope::Download, "images", "o/l/a.png").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = keys();
        let token = sign_download(&keys, "images", "a.png", -120, None).expect("signs");
        let e = verify(&keys, &token, Scope::Download, "images", "a.png").expect_err("expired");
        assert_eq!(e.code, "ExpiredToken");
    }

    #[test]
    fn upload_tokens_carry_owner_and_upsert() {
        let keys = keys();
        let owner = Uuid::new_v4();
        let (token, exp) =
            sign_upload(&keys, "voices", "o/l/n.wav", Some(owner), true, 60).expect("signs");
        assert!(exp > Utc::now().timestamp());
        let grant = verify(&keys, &token, Scope::Upload, "voices", "o/l/n.wav").expect("valid");
        assert_eq!(grant.owner, Some(owner));
        assert!(grant.upsert);
        assert!(verify(&keys, &token, Scope::Download, "voices", "o/l/n.wav").is_err());
    }
}
