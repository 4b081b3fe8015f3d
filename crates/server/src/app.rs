//! The shared state: every service's, built once, for the router and the server.

use std::sync::Arc;

use anyhow::Context;
use sqlx::PgPool;
use tally_auth::AuthState;
use tally_core::{Config, JwtKeys, replicas::Reads};
use tally_functions::FunctionsState;
use tally_integrations::Doors;
use tally_realtime::RealtimeState;
use tally_rest::{Features, RestState};
use tally_storage::{Backend, StorageState};

use crate::token_limits::TokenLimits;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    pool: PgPool,
    reads: Reads,
    token_limits: TokenLimits,
    keys: JwtKeys,
    config: Config,
    auth: AuthState,
    rest: RestState,
    storage: StorageState,
    functions: FunctionsState,
    realtime: RealtimeState,
}

impl AppState {
    /// State over the request pool (logged in as `tally_authenticator`), and the services'
    /// background tasks (the REST schema reload, the signing keys' reload, realtime's feed
    /// and relay, the SMTP sender)
    /// for the server to run.
    pub async fn new(
        pool: PgPool,
        keys: JwtKeys,
        config: Config,
    ) -> anyhow::Result<(Self, Vec<tally_core::Task>)> {
        // The asymmetric signing keys, before the first token is signed or checked.
        tally_core::signing_keys::reload(&pool, &keys)
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the signing keys: {e}"))?;
        let auth = AuthState::new(pool.clone(), keys.clone(), config.clone())?;
        let schemas = config
            .rest_schemas
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let features = Features {
            aggregates: config.rest_aggregates,
            plan: config.rest_plan,
        };
        let reads = Reads::connect(
            pool.clone(),
            &config.read_urls(),
            &config.jwt_secret()?,
            pool.options().get_max_connections(),
            config.read_max_lag(),
        )?;
        let rest = RestState::new(reads.clone(), keys.clone(), schemas, features).await?;
        let storage = storage_state(pool.clone(), keys.clone(), &config)?;
        let functions = FunctionsState::new(
            reads.clone(),
            keys.clone(),
            &config,
            crate::models::providers(&config)?,
            storage.clone(),
            Doors::new(pool.clone(), &config)?,
        );
        crate::metrics::install();
        let (realtime, mut tasks) = tally_realtime::start(pool.clone(), keys.clone());
        tasks.push(rest.reload_listener());
        tasks.push(tally_core::signing_keys::watch(pool.clone(), keys.clone()));
        tasks.push(reads.watcher());
        if let Some(mailer) = auth.mail_sender().map_err(anyhow::Error::msg)? {
            tracing::info!("auth mails are delivered over SMTP");
            tasks.push(mailer);
        }
        let state = Self(Arc::new(Inner {
            realtime,
            pool,
            reads,
            token_limits: TokenLimits::new(config.api_token_requests_per_minute),
            keys,
            config,
            auth,
            rest,
            storage,
            functions,
        }));
        Ok((state, tasks))
    }

    /// The REST service's state.
    pub fn rest(&self) -> &RestState {
        &self.0.rest
    }

    /// The storage service's state.
    pub fn storage(&self) -> &StorageState {
        &self.0.storage
    }

    /// The functions' state.
    pub fn functions(&self) -> &FunctionsState {
        &self.0.functions
    }

    /// The realtime service's state.
    pub fn realtime(&self) -> &RealtimeState {
        &self.0.realtime
    }

    /// The auth service's state.
    pub fn auth(&self) -> &AuthState {
        &self.0.auth
    }

    /// The request pool.
    pub fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    /// Where reads go: the primary, or a replica that is fresh enough for the caller.
    pub fn reads(&self) -> &Reads {
        &self.0.reads
    }

    /// The API tokens' rate limits.
    pub fn token_limits(&self) -> &TokenLimits {
        &self.0.token_limits
    }

    /// The project's JWT keys.
    pub fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
}

/// The storage service over the configured backend.
pub fn storage_state(pool: PgPool, keys: JwtKeys, config: &Config) -> anyhow::Result<StorageState> {
    let backend = Backend::from_settings(&config.storage, &config.data_dir)
        .context("opening the storage backend")?;
    Ok(StorageState::new(
        pool,
        keys,
        backend,
        config.storage.storage_upload_url_expiry,
    ))
}
