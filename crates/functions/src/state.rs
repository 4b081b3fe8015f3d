//! What the functions reach: the request pool (and the replicas, for reads), the project's keys, the extraction, sync and
//! integration settings, the storage service.

use sqlx::PgPool;
use tally_core::{
    Config, JwtKeys,
    config::{AiSettings, IntegrationSettings, SyncSettings},
    replicas::Reads,
};
use tally_storage::StorageState;

use crate::{integrations::Doors, providers::Providers};

/// The functions' shared state.
#[derive(Clone)]
pub struct FunctionsState {
    reads: Reads,
    keys: JwtKeys,
    ai: AiSettings,
    providers: Providers,
    storage: StorageState,
    external_url: String,
    sync: SyncSettings,
    integrations: IntegrationSettings,
    doors: Doors,
    clickhouse: Option<tally_analytics::clickhouse::ClickHouse>,
}

impl tally_core::gateway::Gateway for FunctionsState {
    fn pool(&self) -> &PgPool {
        FunctionsState::pool(self)
    }

    fn keys(&self) -> &JwtKeys {
        FunctionsState::keys(self)
    }
}

impl FunctionsState {
    /// State over the request pool and the replicas (`reads`), with `config`'s settings; `doors` are what the
    /// integrations' doors reach.
    pub fn new(
        reads: Reads,
        keys: JwtKeys,
        config: &Config,
        providers: Providers,
        storage: StorageState,
        doors: Doors,
    ) -> Self {
        Self {
            clickhouse: clickhouse(config, reads.primary()),
            reads,
            keys,
            ai: config.ai.clone(),
            providers,
            storage,
            external_url: config.external_url(),
            sync: config.sync,
            integrations: config.integrations,
            doors,
        }
    }

    /// ClickHouse, when analytics streams to it (what `analytics-query` reads).
    pub fn clickhouse(&self) -> Option<&tally_analytics::clickhouse::ClickHouse> {
        self.clickhouse.as_ref()
    }

    /// Integration settings (deliveries, ICS feeds).
    pub fn integrations(&self) -> &IntegrationSettings {
        &self.integrations
    }

    /// What the integrations' doors reach (sealed secrets, the outbound client).
    pub fn integration_doors(&self) -> &Doors {
        &self.doors
    }

    /// Offline sync's limits.
    pub fn sync(&self) -> &SyncSettings {
        &self.sync
    }

    /// The storage service (signed upload URLs).
    pub fn storage(&self) -> &StorageState {
        &self.storage
    }

    /// The URL clients reach this API at.
    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    /// The AI providers.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// The primary's request pool (logged in as `tally_authenticator`).
    pub fn pool(&self) -> &PgPool {
        self.reads.primary()
    }

    /// Where reads go (the primary or a replica).
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// The project's keys.
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    /// The extraction settings.
    pub fn ai(&self) -> &AiSettings {
        &self.ai
    }
}

/// The ClickHouse destination the configuration names, when analytics is on.
fn clickhouse(config: &Config, pool: &PgPool) -> Option<tally_analytics::clickhouse::ClickHouse> {
    let settings = tally_analytics::clickhouse::ClickHouseSettings::from_config(&config.analytics)?;
    Some(tally_analytics::clickhouse::ClickHouse::new(
        &settings,
        pool.clone(),
    ))
}
