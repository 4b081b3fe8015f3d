//! What the functions reach: the request pool, the project's keys, the extraction settings.

use sqlx::PgPool;
use tally_core::{JwtKeys, config::AiSettings};

use crate::providers::Providers;

/// The functions' shared state.
#[derive(Clone)]
pub struct FunctionsState {
    pool: PgPool,
    keys: JwtKeys,
    ai: AiSettings,
    providers: Providers,
}

impl FunctionsState {
    /// State over the request pool.
    pub fn new(pool: PgPool, keys: JwtKeys, ai: AiSettings, providers: Providers) -> Self {
        Self {
            pool,
            keys,
            ai,
            providers,
        }
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
