//! What the functions reach: the request pool, the project's keys, the extraction and sync
//! settings, the storage service.

use sqlx::PgPool;
use tally_core::{
    JwtKeys,
    config::{AiSettings, SyncSettings},
};
use tally_storage::StorageState;

use crate::providers::Providers;

/// The functions' shared state.
#[derive(Clone)]
pub struct FunctionsState {
    pool: PgPool,
    keys: JwtKeys,
    ai: AiSettings,
    providers: Providers,
    storage: StorageState,
    external_url: String,
    sync: SyncSettings,
}

impl FunctionsState {
    /// State over the request pool; `external_url` is how clients reach this API.
    pub fn new(
        pool: PgPool,
        keys: JwtKeys,
        ai: AiSettings,
        providers: Providers,
        storage: StorageState,
        external_url: String,
        sync: SyncSettings,
    ) -> Self {
        Self {
            pool,
            keys,
            ai,
            providers,
            storage,
            external_url,
            sync,
        }
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

    /// The request pool (logged in as `tally_authenticator`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
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
