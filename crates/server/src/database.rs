//! Which database Tally uses: `DATABASE_URL` (managed by someone else) or the embedded
//! cluster (started, and later stopped, by Tally).

use sqlx::PgPool;
use tally_core::{Config, db};

use crate::embedded::{Cluster, ClusterOptions};

/// The database in use.
#[derive(Debug)]
pub struct Database {
    /// The owner's URL: it runs migrations.
    pub owner_url: String,
    /// The embedded cluster, when Tally runs one.
    pub cluster: Option<Cluster>,
}

impl Database {
    /// Uses `DATABASE_URL` when set; otherwise starts (or reuses) the embedded cluster.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        if let Some(url) = &config.database_url {
            return Ok(Self {
                owner_url: url.clone(),
                cluster: None,
            });
        }
        config.ensure_data_dir()?;
        let cluster = Cluster::start(&ClusterOptions {
            data_dir: config.data_dir.clone(),
            port: config.pg_port,
            pg_bin: config.pg_bin.clone(),
            settings: embedded_settings(config),
        })
        .await?;
        Ok(Self {
            owner_url: cluster.url(),
            cluster: Some(cluster),
        })
    }

    /// Refuses to go on when analytics is on and the database cannot decode its WAL.
    pub async fn check_analytics(config: &Config, owner: &PgPool) -> anyhow::Result<()> {
        if !config.analytics.analytics {
            return Ok(());
        }
        let level: String = sqlx::query_scalar("select current_setting('wal_level')")
            .fetch_one(owner)
            .await?;
        anyhow::ensure!(
            level == "logical",
            "analytics (TALLY_ANALYTICS) needs the database to run with wal_level = logical; \
             it runs with wal_level = {level}: `ALTER SYSTEM SET wal_level = logical` and restart \
             PostgreSQL (on a managed database, its logical replication setting), or turn \
             analytics off"
        );
        Ok(())
    }

    /// Migrates the database, then connects the owner pool and a request pool of `size`
    /// connections (as `tally_authenticator`).
    pub async fn pools(&self, config: &Config, size: u32) -> anyhow::Result<(PgPool, PgPool)> {
        let secret = config.jwt_secret()?;
        let owner = db::connect_owner(&self.owner_url).await?;
        Self::check_analytics(config, &owner).await?;
        db::migrate(&owner).await?;
        let requests = db::connect_requests(&owner, &self.owner_url, &secret, size).await?;
        Ok((owner, requests))
    }

    /// Stops the embedded cluster if Tally started it.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster {
            cluster.stop().await?;
        }
        Ok(())
    }
}

/// The embedded cluster's settings: query identifiers always; with analytics on, logical WAL
/// and the cap on what a replication slot may hold back.
fn embedded_settings(config: &Config) -> Vec<String> {
    // As on Supabase (where pg_stat_statements turns it on): `EXPLAIN VERBOSE`, through
    // `/rest/v1`'s plans too, shows each statement's query identifier.
    let mut settings = vec!["compute_query_id=on".to_owned()];
    if config.analytics.analytics {
        settings.push("wal_level=logical".to_owned());
        settings.push(format!(
            "max_slot_wal_keep_size={}",
            config.analytics.analytics_max_slot_wal_keep_size
        ));
    }
    settings
}
