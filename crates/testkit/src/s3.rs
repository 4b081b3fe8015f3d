//! A real S3-compatible server on loopback: s3rver, from npm (pinned by `tests/compat`'s
//! lockfile), one per test, with its files in a temporary directory.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context;
use tally_core::{
    Config,
    config::{Redacted, StorageBackend},
};

/// s3rver's fixed credentials.
const KEY: &str = "S3RVER";

/// A running s3rver with one bucket; stopped (and its files removed) when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
    child: Child,
    dir: PathBuf,
}

impl S3Server {
    /// Starts s3rver with `bucket` and waits until it accepts connections.
    pub async fn start(bucket: &str) -> anyhow::Result<Self> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/compat/node_modules/s3rver/bin/s3rver.js");
        anyhow::ensure!(
            script.exists(),
            "run `npm ci --prefix tests/compat` first (scripts/test does): s3rver is missing"
        );
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("tally-s3-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("node")
            .arg(&script)
            .args(["-d"])
            .arg(&dir)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--silent"])
            .args(["--no-vhost-buckets", "--configure-bucket", bucket])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting s3rver with node")?;
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
            child,
            dir,
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            // The bucket answers once s3rver has created it.
            if let Ok(res) = http
                .head(format!("{}/{bucket}", server.endpoint))
                .send()
                .await
                && res.status().is_success()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("s3rver did not start on port {port}")
    }

    /// Points `config`'s storage at this server.
    pub fn configure(&self, config: &mut Config) {
        config.storage.storage_backend = StorageBackend::S3;
        config.storage.storage_s3_bucket = Some(self.bucket.clone());
        config.storage.storage_s3_endpoint = Some(self.endpoint.clone());
        config.storage.storage_s3_region = "us-east-1".to_owned();
        config.storage.storage_s3_access_key_id = Some(KEY.to_owned());
        config.storage.storage_s3_secret_access_key = Some(Redacted(KEY.to_owned()));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
