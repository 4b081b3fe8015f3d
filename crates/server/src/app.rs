//! The shared state and the router.

use std::sync::Arc;

use axum::{Router, routing::get};
use sqlx::PgPool;
use tally_core::{Config, JwtKeys};
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    pool: PgPool,
    keys: JwtKeys,
    config: Config,
}

impl AppState {
    /// State over the request pool (logged in as `tally_authenticator`).
    pub fn new(pool: PgPool, keys: JwtKeys, config: Config) -> Self {
        Self(Arc::new(Inner { pool, keys, config }))
    }

    /// The request pool.
    pub fn pool(&self) -> &PgPool {
        &self.0.pool
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

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(crate::health::health))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
