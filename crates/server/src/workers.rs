//! The background workers: every job kind Tally runs, registered in one place. `tally serve`
//! runs them in-process; `tally worker` runs only them.

use sqlx::PgPool;
use tally_core::Config;
use tally_functions::{
    Providers,
    extract::{EXTRACT_ATTACHMENT, ExtractAttachmentJob},
    integrations::{
        Egress, SecretBox, Tools,
        ics::{POLL_ICS, PollIcsJob},
        outbound::{DELIVER_WEBHOOK, DeliverWebhookJob},
        process::{PROCESS_EVENT, ProcessEventJob},
        subscriptions::{RENEW_GRAPH, RenewGraphJob},
    },
    job::{CLASSIFY_LOG, ClassifyLogJob, EMBED_LOG, EmbedLogJob},
    sync::purge::{SYNC_PURGE, SyncPurgeJob},
};
use tally_insights::rollup::{INSIGHTS_ROLLUP, RollupJob};
use tally_jobs::{WorkerOptions, Workers};
use tally_storage::StorageState;

/// Workers over the request pool with every handler registered.
pub fn workers(
    pool: &PgPool,
    config: &Config,
    providers: &Providers,
    storage: &StorageState,
) -> anyhow::Result<Workers> {
    let secrets = SecretBox::from_project_secret(&config.jwt_secret()?)?;
    let http = Egress::from_settings(&config.integrations)?;
    Ok(Workers::new(
        pool.clone(),
        WorkerOptions {
            concurrency: config.ai.worker_concurrency,
            ..WorkerOptions::default()
        },
    )
    .register(
        CLASSIFY_LOG,
        ClassifyLogJob::new(
            pool.clone(),
            providers.clone(),
            config.ai.ai_review_threshold,
        ),
    )
    .register(EMBED_LOG, EmbedLogJob::new(pool.clone(), providers.clone()))
    .register(
        EXTRACT_ATTACHMENT,
        ExtractAttachmentJob::new(pool.clone(), storage.clone(), providers.clone()),
    )
    .register(INSIGHTS_ROLLUP, RollupJob::new(pool.clone()))
    .register(
        SYNC_PURGE,
        SyncPurgeJob::new(pool.clone(), config.sync.sync_tombstone_retention_days),
    )
    .register(
        PROCESS_EVENT,
        ProcessEventJob::new(
            pool.clone(),
            Tools {
                secrets: secrets.clone(),
                http: http.clone(),
            },
        ),
    )
    .register(
        POLL_ICS,
        PollIcsJob::new(
            pool.clone(),
            http.clone(),
            config.integrations.ics_lookback_days,
        ),
    )
    .register(
        RENEW_GRAPH,
        RenewGraphJob::new(
            pool.clone(),
            secrets.clone(),
            http.clone(),
            config.external_url(),
        ),
    )
    .register(
        DELIVER_WEBHOOK,
        DeliverWebhookJob::new(
            pool.clone(),
            secrets,
            http,
            config.integrations.webhook_disable_after,
        ),
    ))
}
