//! The shared test cluster and its migrated template database.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
};

use anyhow::Context;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tally_core::db::{self, MIGRATOR};
use tally_server::embedded::{Cluster, ClusterOptions};
use tokio::sync::OnceCell;

/// The cluster as this test process sees it.
pub struct TestCluster {
    cluster: Cluster,
    /// Name of the migrated template database.
    pub template: String,
}

impl TestCluster {
    /// The superuser's URL for `database`.
    pub fn url_for(&self, database: &str) -> String {
        self.cluster.url_for(database)
    }
}

static CLUSTER: OnceCell<TestCluster> = OnceCell::const_new();

/// The test cluster, started (or joined) once per process.
pub async fn get() -> anyhow::Result<&'static TestCluster> {
    CLUSTER.get_or_try_init(start).await
}

pub(crate) fn test_dir() -> PathBuf {
    // CARGO_MANIFEST_DIR is crates/testkit; the workspace's target dir is two levels up.
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("tally-test")
}

async fn start() -> anyhow::Result<TestCluster> {
    let dir = test_dir();
    let port = std::env::var("TALLY_TEST_PG_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| port_for(&dir));
    let cluster = Cluster::start(&ClusterOptions {
        data_dir: dir.clone(),
        port,
        pg_bin: std::env::var_os("TALLY_PG_BIN").map(PathBuf::from),
        // Test data is thrown away: trade durability for speed.
        settings: [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=300",
            // Logical decoding, for analytics' change stream (tally_analytics), with room
            // for the slots and streams of tests running side by side.
            "wal_level=logical",
            "max_replication_slots=64",
            "max_wal_senders=64",
        ]
        .map(String::from)
        .to_vec(),
    })
    .await
    .context("starting the test cluster")?;
    let template = template_name();
    let lock = dir.join("template.lock");
    let file = std::fs::File::create(&lock)?;
    let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file)).await??;
    ensure_template(&cluster, &template).await?;
    // Roles are cluster-wide: set the request role's password once, under the lock, so that
    // test processes starting together never race on it.
    let mut admin = PgConnection::connect(&cluster.url()).await?;
    sqlx::query(AssertSqlSafe(format!(
        "alter role {} with login password '{}'",
        db::AUTHENTICATOR,
        db::authenticator_password(crate::TEST_JWT_SECRET)
    )))
    .execute(&mut admin)
    .await
    .context("setting the request role's password")?;
    admin.close().await?;
    drop(file);
    Ok(TestCluster { cluster, template })
}

/// A port in 40000..50000 derived from the test folder, so that two checkouts on one machine
/// run their test clusters side by side.
fn port_for(dir: &std::path::Path) -> u16 {
    let mut hasher = DefaultHasher::new();
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .hash(&mut hasher);
    40000 + (hasher.finish() % 10000) as u16
}

/// The template's name changes with the migrations, so an edited migration gets a new one.
fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    MIGRATOR.table_name.hash(&mut hasher);
    for migration in MIGRATOR.iter() {
        migration.version.hash(&mut hasher);
        migration.checksum.hash(&mut hasher);
    }
    db::REPLACEABLE.hash(&mut hasher);
    format!("tally_template_{:016x}", hasher.finish())
}

async fn ensure_template(cluster: &Cluster, template: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(&cluster.url()).await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(template)
            .fetch_one(&mut admin)
            .await?;
    if exists {
        return Ok(());
    }
    let building = format!("{template}_building");
    sqlx::query(AssertSqlSafe(format!(
        "drop database if exists \"{building}\" with (force)"
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(AssertSqlSafe(format!("create database \"{building}\"")))
        .execute(&mut admin)
        .await?;
    let mut conn = PgConnection::connect(&cluster.url_for(&building)).await?;
    MIGRATOR
        .run(&mut conn)
        .await
        .context("migrating the template")?;
    db::apply_replaceable(&mut conn)
        .await
        .context("applying the replaceable definitions to the template")?;
    conn.close().await?;
    sqlx::query(AssertSqlSafe(format!(
        "alter database \"{building}\" rename to \"{template}\""
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(AssertSqlSafe(format!(
        "alter database \"{template}\" with is_template true"
    )))
    .execute(&mut admin)
    .await?;
    Ok(())
}
