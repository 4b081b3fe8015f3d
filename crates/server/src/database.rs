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
            // As on Supabase (where pg_stat_statements turns it on): `EXPLAIN VERBOSE`, through
            // `/rest/v1`'s plans too, shows each statement's query identifier.
            settings: vec!["compute_query_id=on".to_owned()],
        })
        .await?;
        Ok(Self {
            owner_url: cluster.url(),
            cluster: Some(cluster),
        })
    }

    /// Migrates the database, then connects the owner pool and a request pool of `size`
    /// connections (as `tally_authenticator`).
    pub async fn pools(&self, config: &Config, size: u32) -> anyhow::Result<(PgPool, PgPool)> {
        let secret = config.jwt_secret()?;
        let owner = db::connect_owner(&self.owner_url).await?;
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
