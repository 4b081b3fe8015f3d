//! The REST service's state: the pools (primary and replicas), the keys, the exposed schemas and the schema cache
//! (swapped whole on reload).

use std::sync::{Arc, RwLock};

use sqlx::PgPool;
use tally_core::{JwtKeys, replicas::Reads};

use crate::schema::SchemaCache;

/// What the REST handler reaches.
#[derive(Clone)]
pub struct RestState(Arc<Inner>);

/// Features that are off unless the project turns them on, as in PostgREST.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    /// `select=` aggregates (`db-aggregates-enabled`).
    pub aggregates: bool,
    /// `Accept: application/vnd.pgrst.plan…` (`db-plan-enabled`).
    pub plan: bool,
}

struct Inner {
    reads: Reads,
    keys: JwtKeys,
    schemas: Vec<String>,
    features: Features,
    cache: RwLock<Arc<SchemaCache>>,
}

impl tally_core::gateway::Gateway for RestState {
    fn pool(&self) -> &PgPool {
        self.0.reads.primary()
    }

    fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }
}

impl RestState {
    /// Loads the schema cache for `schemas` (from the primary).
    pub async fn new(
        reads: Reads,
        keys: JwtKeys,
        schemas: Vec<String>,
        features: Features,
    ) -> sqlx::Result<Self> {
        let cache = SchemaCache::load(reads.primary(), &schemas).await?;
        Ok(Self(Arc::new(Inner {
            reads,
            keys,
            schemas,
            features,
            cache: RwLock::new(Arc::new(cache)),
        })))
    }

    /// Reads the catalog again (after `NOTIFY pgrst, 'reload schema'` or migrations).
    pub async fn reload(&self) -> sqlx::Result<()> {
        let cache = SchemaCache::load(self.0.reads.primary(), &self.0.schemas).await?;
        if let Ok(mut slot) = self.0.cache.write() {
            *slot = Arc::new(cache);
        }
        tracing::info!("rest: schema cache reloaded");
        Ok(())
    }

    /// The task that reloads the cache on `NOTIFY pgrst, 'reload schema'`, as PostgREST does.
    pub fn reload_listener(&self) -> tally_core::Task {
        let state = self.clone();
        Box::pin(async move {
            loop {
                let listener = async {
                    let mut listener =
                        sqlx::postgres::PgListener::connect_with(state.pool()).await?;
                    listener.listen("pgrst").await?;
                    loop {
                        let note = listener.recv().await?;
                        if note.payload() == "reload schema" || note.payload().is_empty() {
                            state.reload().await?;
                        }
                    }
                };
                let result: sqlx::Result<()> = listener.await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "rest: schema reload listener failed; retrying");
                }
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        })
    }

    /// The current schema cache.
    pub fn cache(&self) -> Arc<SchemaCache> {
        self.0.cache.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The primary's request pool.
    pub fn pool(&self) -> &PgPool {
        self.0.reads.primary()
    }

    /// Where reads go (the primary or a replica).
    pub fn reads(&self) -> &Reads {
        &self.0.reads
    }

    /// The project's keys.
    pub fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }

    /// The features turned on.
    pub fn features(&self) -> Features {
        self.0.features
    }

    /// The exposed schemas, the default first.
    pub fn schemas(&self) -> &[String] {
        &self.0.schemas
    }
}
