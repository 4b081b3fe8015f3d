//! A release `tally serve` as a process of its own over a test database, for benchmarks that
//! measure the server apart from their client (its memory, its CPU). Killed when dropped.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::{TEST_JWT_SECRET, TestDb};

/// A running `tally serve` (the binary at `TALLY_BIN`, else `target/release/tally`).
pub struct ServerProcess(Child);

impl ServerProcess {
    /// Serves `db` on `port` with its data in `data_dir`, logging warnings only, with the
    /// extra settings `env` (`TALLY_…` variables).
    pub fn start(
        db: &TestDb,
        port: u16,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let bin = std::env::var("TALLY_BIN").unwrap_or_else(|_| "target/release/tally".into());
        let child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", db.owner_url())
            .env("TALLY_JWT_SECRET", TEST_JWT_SECRET)
            .env("TALLY_PORT", port.to_string())
            .env("TALLY_DATA_DIR", data_dir)
            .env("TALLY_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self(child))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
