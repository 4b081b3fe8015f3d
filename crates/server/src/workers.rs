//! The background workers: every job kind Tally runs, each crate registering its own. `tally
//! serve` runs them in-process; `tally worker` runs only them.

use sqlx::PgPool;
use tally_core::Config;
use tally_functions::Providers;
use tally_jobs::{WorkerOptions, Workers};
use tally_storage::StorageState;

/// Workers over the request pool with every handler registered (and every kind they run
/// reported by `/metrics`, an empty queue as 0).
pub fn workers(
    pool: &PgPool,
    config: &Config,
    providers: &Providers,
    storage: &StorageState,
) -> anyhow::Result<Workers> {
    let workers = Workers::new(
        pool.clone(),
        WorkerOptions {
            concurrency: config.ai.worker_concurrency,
            ..WorkerOptions::default()
        },
    );
    let workers = tally_functions::jobs(workers, pool, config, providers, storage);
    let doors = tally_integrations::Doors::new(pool.clone(), config)?;
    let workers = tally_integrations::jobs(workers, &doors, &config.integrations);
    let workers = tally_sync::jobs(workers, pool, &config.sync);
    let workers = tally_insights::jobs(workers, pool);
    crate::metrics::job_kinds(workers.registered().into_iter().map(|(kind, _)| kind));
    Ok(workers)
}
