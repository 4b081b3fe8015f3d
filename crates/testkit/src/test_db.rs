//! A database of its own for one test, cloned from the migrated template.

use anyhow::Context;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tally_core::db;

use crate::{TEST_JWT_SECRET, cluster};

/// A fresh, migrated database, dropped when this value is.
pub struct TestDb {
    name: String,
    owner_url: String,
    admin_url: String,
    /// A superuser pool (bypasses RLS): for fixtures and checks behind the API's back.
    pub owner: PgPool,
    /// A pool logged in as `tally_authenticator`, like the server's request pool.
    pub requests: PgPool,
}

impl TestDb {
    /// Clones the template into a new database.
    pub async fn new() -> anyhow::Result<Self> {
        let cluster = cluster::get().await?;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = cluster.url_for("postgres");
        let mut admin = PgConnection::connect(&admin_url).await?;
        sqlx::query(AssertSqlSafe(format!(
            "create database \"{name}\" template \"{}\"",
            cluster.template
        )))
        .execute(&mut admin)
        .await
        .context("cloning the template database")?;
        admin.close().await?;
        Self::at(cluster.url_for(&name), admin_url).await
    }

    /// The migrated database at `owner_url`, dropped through `admin_url` (a superuser's URL
    /// for another database of its cluster) with the value.
    pub async fn at(owner_url: String, admin_url: String) -> anyhow::Result<Self> {
        let name = owner_url
            .rsplit('/')
            .next()
            .context("a database URL names its database")?
            .to_owned();
        let owner = PgPool::connect(&owner_url).await?;
        let requests = db::connect_requests(&owner, &owner_url, TEST_JWT_SECRET, 8).await?;
        Ok(Self {
            name,
            owner_url,
            admin_url,
            owner,
            requests,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The owner's (superuser's) URL of this database.
    pub fn owner_url(&self) -> &str {
        &self.owner_url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let admin_url = self.admin_url.clone();
        // Drop runs outside any runtime guarantee: do the cleanup on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await?;
                // A logical replication slot left by a test would keep its database alive:
                // its stream (if one still runs) is ended, then the slot dropped once free.
                for _ in 0..100 {
                    let left: Vec<(String, Option<i32>)> = sqlx::query_as(
                        "select slot_name::text, active_pid from pg_replication_slots \
                         where database = $1",
                    )
                    .bind(&name)
                    .fetch_all(&mut admin)
                    .await?;
                    if left.is_empty() {
                        break;
                    }
                    for (slot, pid) in left {
                        let dropped = match pid {
                            Some(pid) => sqlx::query("select pg_terminate_backend($1)")
                                .bind(pid)
                                .execute(&mut admin)
                                .await
                                .map(drop),
                            None => sqlx::query("select pg_drop_replication_slot($1)")
                                .bind(&slot)
                                .execute(&mut admin)
                                .await
                                .map(drop),
                        };
                        // A slot taken again or released meanwhile: the next round sees it.
                        let _ = dropped;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                sqlx::query(AssertSqlSafe(format!(
                    "drop database if exists \"{name}\" with (force)"
                )))
                .execute(&mut admin)
                .await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("warning: could not drop a test database: {e:#}");
        }
    }
}
