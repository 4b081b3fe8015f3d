//! Where the bytes live: one `object_store` interface over the local file system (under
//! `TALLY_DATA_DIR/storage`, the default) or an S3-compatible service. An object's bytes are
//! kept at `{bucket}/{name}/{version}`, so a replacement is written beside the old bytes and
//! the old ones are removed only after the database has switched to the new version.

use std::sync::Arc;

use std::time::Duration;

use axum::http::Method;
use object_store::{
    Attribute, ObjectStore, PutMultipartOptions, aws::AmazonS3Builder, local::LocalFileSystem,
    path::Path, signer::Signer,
};
use tally_core::config::{StorageBackend, StorageSettings};

/// The object store, and for S3 its URL signer.
#[derive(Debug, Clone)]
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
}

impl Backend {
    /// Files under `dir` (created when missing).
    pub fn local(dir: &std::path::Path) -> object_store::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            signer: None,
        })
    }

    /// The backend the settings name: local files under `storage_dir` (default
    /// `<data_dir>/storage`) or an S3-compatible bucket.
    pub fn from_settings(
        settings: &StorageSettings,
        data_dir: &std::path::Path,
    ) -> object_store::Result<Self> {
        match settings.storage_backend {
            StorageBackend::Local => Self::local(
                &settings
                    .storage_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("storage")),
            ),
            StorageBackend::S3 => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(settings.storage_s3_bucket.clone().unwrap_or_default())
                    .with_region(&settings.storage_s3_region);
                if let Some(endpoint) = &settings.storage_s3_endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(id) = &settings.storage_s3_access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = &settings.storage_s3_secret_access_key {
                    builder = builder.with_secret_access_key(&secret.0);
                }
                let store = Arc::new(builder.build()?);
                Ok(Self {
                    store: store.clone(),
                    signer: Some(store),
                })
            }
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// How a new object is written: on S3 with its type and caching, so presigned downloads
    /// serve them (the local store keeps no attributes; Tally serves them from the row).
    pub fn put_options(&self, content_type: &str, cache_control: &str) -> PutMultipartOptions {
        let mut options = PutMultipartOptions::default();
        if self.signer.is_some() {
            options
                .attributes
                .insert(Attribute::ContentType, content_type.to_owned().into());
            options
                .attributes
                .insert(Attribute::CacheControl, cache_control.to_owned().into());
        }
        options
    }

    /// A URL the object store itself signs for downloading `path` (S3 only).
    pub async fn presigned_get(
        &self,
        path: &Path,
        expires_in: Duration,
    ) -> Option<object_store::Result<String>> {
        let signer = self.signer.as_ref()?;
        Some(
            signer
                .signed_url(Method::GET, path, expires_in)
                .await
                .map(String::from),
        )
    }
}

/// The key of one version of an object. Names were checked by [`crate::names`], so each
/// segment is a plain, non-empty part.
pub fn key(bucket: &str, name: &str, version: &str) -> Path {
    Path::from_iter(
        std::iter::once(bucket)
            .chain(name.split('/'))
            .chain(std::iter::once(version)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_each_version_apart() {
        assert_eq!(
            key("images", "org/log/a.png", "v1").as_ref(),
            "images/org/log/a.png/v1"
        );
        assert_ne!(key("images", "a.png", "v1"), key("images", "a.png", "v2"));
    }
}
