//! Analytics phase 2 in the binary: the replicators `tally serve` and `tally worker` run when
//! `TALLY_ANALYTICS` is on (each destination held by one instance; the others wait), Tally's
//! slots dropped when it is off, and `tally analytics status`.

use std::time::Duration;

use sqlx::PgPool;
use tally_analytics::{
    clickhouse::{ClickHouse, ClickHouseSettings},
    lake::Lake,
    progress,
    replicator::{self, Destination, Options, Replicator},
    slot,
};
use tally_core::Config;
use tokio::{sync::watch, task::JoinSet};

/// The destinations the configuration turns on.
fn destinations(config: &Config, owner: &PgPool) -> anyhow::Result<Vec<Destination>> {
    let settings = &config.analytics;
    let mut destinations = Vec::new();
    if settings.analytics_lake {
        let backend = tally_storage::Backend::from_settings(&config.storage, &config.data_dir)?;
        destinations.push(Destination::Lake(Lake::new(backend.store().clone())));
    }
    if let Some(clickhouse) = ClickHouseSettings::from_config(settings) {
        destinations.push(Destination::ClickHouse(Box::new(ClickHouse::new(
            &clickhouse,
            owner.clone(),
        ))));
    }
    Ok(destinations)
}

/// Starts a replicator per configured destination when analytics is on (they run until `stop`
/// turns true); when it is off, drops the slots and progress analytics left behind. In the
/// background: whatever happens to analytics, the API serves.
pub fn start(config: &Config, owner_url: &str, stop: watch::Receiver<bool>) -> JoinSet<()> {
    let (config, owner_url) = (config.clone(), owner_url.to_owned());
    let mut running = JoinSet::new();
    running.spawn(async move {
        if let Err(e) = supervise(&config, &owner_url, stop).await {
            tracing::error!(error = %e, "analytics did not start");
        }
    });
    running
}

/// Runs the replicators (or turns analytics off) until stopped.
async fn supervise(
    config: &Config,
    owner_url: &str,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let owner = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(owner_url)
        .await?;
    if !config.analytics.analytics {
        turn_off(&owner).await?;
        owner.close().await;
        return Ok(());
    }
    let mut running = JoinSet::new();
    for destination in destinations(config, &owner)? {
        let replicator = Replicator::new(
            owner.clone(),
            owner_url.to_owned(),
            destination,
            Options::default(),
        );
        running.spawn(replicator.run(stop.clone()));
    }
    while running.join_next().await.is_some() {}
    owner.close().await;
    Ok(())
}

/// Drops this database's analytics slots (none left holding WAL) and forgets their progress.
async fn turn_off(owner: &PgPool) -> anyhow::Result<()> {
    let database: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(owner)
        .await?;
    for name in ["lake", "clickhouse"] {
        let slot = replicator::slot_name(name, &database);
        if slot::drop(owner, &slot).await? {
            tracing::info!(%slot, "analytics is off: its replication slot was dropped");
        }
        progress::forget(owner, name).await?;
    }
    Ok(())
}

/// `tally analytics status`: each destination's slot and progress, as text or JSON.
pub async fn status(owner: &PgPool, as_json: bool) -> anyhow::Result<()> {
    let database: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(owner)
        .await?;
    let mut rows = Vec::new();
    for name in ["lake", "clickhouse"] {
        let stored = progress::load(owner, name).await?;
        let state = slot::state(owner, &replicator::slot_name(name, &database)).await?;
        if stored.is_none() && state.is_none() {
            continue;
        }
        rows.push(serde_json::json!({
            "destination": name,
            "slot": replicator::slot_name(name, &database),
            "slot_exists": state.is_some(),
            "streaming": state.as_ref().is_some_and(|s| s.active),
            "wal_status": state.as_ref().map(|s| s.wal_status.clone()),
            "lag_bytes": state.as_ref().map(|s| s.lag_bytes),
            "safe_wal_size": state.as_ref().and_then(|s| s.safe_wal_size),
            "copied": stored.as_ref().is_some_and(|p| p.copied),
            "position": stored.as_ref().map(|p| p.lsn.to_string()),
            "last_commit_age_seconds": stored
                .as_ref()
                .and_then(|p| p.committed_at)
                .map(|at| (replicator::lag_seconds(at) * 10.0).round() / 10.0),
            "resyncs": stored.as_ref().map_or(0, |p| p.resyncs),
        }));
    }
    if as_json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        println!("analytics has never run on this database (TALLY_ANALYTICS turns it on)");
    }
    for row in rows {
        println!("{}", row["destination"].as_str().unwrap_or_default());
        for (key, value) in row.as_object().into_iter().flatten().skip(1) {
            println!("  {key:<26} {value}");
        }
    }
    Ok(())
}

/// Waits (up to `timeout`) for the replicators to stop.
pub async fn join(mut running: JoinSet<()>, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, async {
        while running.join_next().await.is_some() {}
    })
    .await;
}
