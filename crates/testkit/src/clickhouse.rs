//! A ClickHouse for tests: the server `TALLY_TEST_CLICKHOUSE_URL` names, or the ClickHouse
//! engine of chDB (PyPI, installed by `./scripts/test`) behind the test-only HTTP front in
//! `crates/analytics/tests/python/clickhouse_shim.py`, one per test, stopped when dropped.

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context;

/// A running ClickHouse to write to and read from.
pub struct ClickHouseServer {
    /// `http://127.0.0.1:port` (or the real server's URL).
    pub url: String,
    shim: Option<(Child, tempfile::TempDir)>,
}

impl ClickHouseServer {
    /// The real server when `TALLY_TEST_CLICKHOUSE_URL` is set, else chDB behind the front.
    pub async fn start() -> anyhow::Result<Self> {
        if let Ok(url) = std::env::var("TALLY_TEST_CLICKHOUSE_URL") {
            return Ok(Self { url, shim: None });
        }
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../analytics/tests/python");
        let deps = here.join(".deps");
        anyhow::ensure!(
            deps.join("chdb").exists(),
            "chDB is not installed in {}: ./scripts/test installs it",
            deps.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data = tempfile::tempdir()?;
        let child = Command::new("python3")
            .arg(here.join("clickhouse_shim.py"))
            .arg(port.to_string())
            .arg(data.path())
            .env("PYTHONPATH", &deps)
            .stdout(Stdio::null())
            .spawn()
            .context("starting the chDB front")?;
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            shim: Some((child, data)),
        };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the chDB front did not start at {}", server.url)
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.shim {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
