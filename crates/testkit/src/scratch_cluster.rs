//! A throwaway cluster of its own, for benchmarks that compare server settings (which the
//! shared test cluster cannot change under the tests using it).

use std::os::unix::fs::PermissionsExt;

use anyhow::Context;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tally_core::db::{self, MIGRATOR};
use tally_server::embedded::{Cluster, ClusterOptions};

use crate::TestDb;
use tempfile::TempDir;

/// An embedded cluster in a temporary folder under the test folder, on a free port, without
/// fsync (full-page writes stay on, so WAL volumes are the production ones) plus the settings
/// it was (re)started with. Removed with its folder when stopped.
pub struct ScratchCluster {
    cluster: Cluster,
    dir: TempDir,
}

impl ScratchCluster {
    /// Creates and starts a cluster with `settings` (`name=value`).
    pub async fn start(settings: &[&str]) -> anyhow::Result<Self> {
        let dir = scratch_dir()?;
        let cluster = launch(&dir, settings).await?;
        Ok(Self { cluster, dir })
    }

    /// Stops the server and starts it again on the same data with `settings`.
    pub async fn restart(self, settings: &[&str]) -> anyhow::Result<Self> {
        let Self { cluster, dir } = self;
        cluster.stop().await?;
        let cluster = launch(&dir, settings).await?;
        Ok(Self { cluster, dir })
    }

    /// A streaming replica of this cluster (`pg_basebackup`), on a free port, with
    /// `settings` (`recovery_min_apply_delay=2s`, say).
    pub async fn replica(&self, settings: &[&str]) -> anyhow::Result<Self> {
        let dir = scratch_dir()?;
        let port = crate::ports::free_port();
        let cluster = self
            .cluster
            .start_replica(&ClusterOptions {
                data_dir: dir.path().to_path_buf(),
                port,
                pg_bin: std::env::var_os("TALLY_PG_BIN").map(Into::into),
                settings: settings.iter().map(|s| s.to_string()).collect(),
            })
            .await
            .context("starting a replica")?;
        Ok(Self { cluster, dir })
    }

    /// The superuser's URL for `database`.
    pub fn url_for(&self, database: &str) -> String {
        self.cluster.url_for(database)
    }

    /// A [`TestDb`] in this cluster: database `name`, migrated, dropped with the value.
    pub async fn test_db(&self, name: &str) -> anyhow::Result<TestDb> {
        let url = self.migrated_database(name).await?;
        TestDb::at(url, self.cluster.url()).await
    }

    /// Creates database `name`, migrated as Tally migrates its own; returns its superuser URL.
    pub async fn migrated_database(&self, name: &str) -> anyhow::Result<String> {
        let mut admin = PgConnection::connect(&self.cluster.url()).await?;
        sqlx::query(AssertSqlSafe(format!("create database \"{name}\"")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let url = self.cluster.url_for(name);
        let mut conn = PgConnection::connect(&url).await?;
        MIGRATOR.run(&mut conn).await.context("migrating")?;
        db::apply_replaceable(&mut conn).await?;
        conn.close().await?;
        Ok(url)
    }

    /// Stops the server; the folder goes with `self`.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cluster.stop().await?;
        Ok(())
    }
}

/// A folder of its own under the test folder.
fn scratch_dir() -> anyhow::Result<TempDir> {
    let parent = crate::cluster::test_dir();
    std::fs::create_dir_all(&parent)?;
    let dir = tempfile::Builder::new()
        .prefix("scratch-")
        .tempdir_in(&parent)?;
    // Reachable by the `tally` system user the cluster runs as when this runs as root.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

async fn launch(dir: &TempDir, settings: &[&str]) -> anyhow::Result<Cluster> {
    let port = crate::ports::free_port();
    let settings = ["fsync=off", "synchronous_commit=off"]
        .iter()
        .chain(settings)
        .map(|s| s.to_string())
        .collect();
    Cluster::start(&ClusterOptions {
        data_dir: dir.path().to_path_buf(),
        port,
        pg_bin: std::env::var_os("TALLY_PG_BIN").map(Into::into),
        settings,
    })
    .await
    .context("starting a scratch cluster")
}
