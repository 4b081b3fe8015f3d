//! `tally serve`: bring the database up to date, bind, serve until SIGINT/SIGTERM, then stop
//! accepting, finish the requests in flight and stop the embedded database.

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use tally_core::{Config, JwtKeys, db};
use tokio::net::TcpListener;

use crate::{app::AppState, connections, database::Database};

/// Connections in the request pool.
const REQUEST_POOL_SIZE: u32 = 16;

/// How long the analytics replicators get to stop at shutdown (what they had not stored is
/// streamed again on the next start).
const ANALYTICS_STOP: std::time::Duration = std::time::Duration::from_secs(10);

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    /// The owner's URL (the analytics replicators stream and copy as the owner).
    owner_url: String,
    state: AppState,
    /// The services' background tasks, run by [`Server::run`] until shutdown.
    tasks: Vec<tally_core::Task>,
}

impl Server {
    /// Applies pending migrations to the database at `owner_url`, connects the request pool
    /// and binds `config.host:config.port`.
    pub async fn build(config: Config, owner_url: &str) -> anyhow::Result<Self> {
        let secret = config.jwt_secret()?;
        let owner = db::connect_owner(owner_url).await?;
        crate::database::Database::check_analytics(&config, &owner).await?;
        db::migrate(&owner).await?;
        let pool = db::connect_requests(&owner, owner_url, &secret, REQUEST_POOL_SIZE).await?;
        owner.close().await;
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{} — set TALLY_PORT to a free port",
                    config.host, config.port
                )
            })?;
        let mut config = config;
        if config.api_external_url.is_none() && config.port == 0 {
            // Links (email, redirects) must name the port actually bound.
            config.api_external_url = Some(format!("http://{}", listener.local_addr()?));
        }
        let (state, tasks) = AppState::new(pool, JwtKeys::new(&secret), config)
            .await
            .context("loading the schema cache")?;
        Ok(Self {
            listener,
            owner_url: owner_url.to_owned(),
            state,
            tasks,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = crate::router::router(self.state.clone());
        let mut background = tokio::task::JoinSet::new();
        for task in self.tasks {
            background.spawn(task);
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        // With a concurrency of 0 this instance only serves HTTP.
        let workers = if self.state.config().ai.worker_concurrency > 0 {
            let workers = crate::workers::workers(
                self.state.pool(),
                self.state.config(),
                self.state.functions().providers(),
                self.state.storage(),
            )?;
            Some(tokio::spawn(workers.run(stopped)))
        } else {
            None
        };
        let metrics = match &self.state.config().metrics_addr {
            Some(addr) => Some(tokio::spawn(
                serve_metrics(addr.clone(), self.state.pool().clone(), stop.subscribe()).await?,
            )),
            None => None,
        };
        let analytics =
            crate::analytics::start(self.state.config(), &self.owner_url, stop.subscribe());
        let settings = self.state.config().http;
        connections::serve(self.listener, router, settings, async move {
            shutdown.await;
            // Workers stop claiming while requests in flight finish.
            let _ = stop.send(true);
        })
        .await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        crate::analytics::join(analytics, ANALYTICS_STOP).await;
        if let Some(workers) = workers
            && let Err(e) = workers.await
        {
            tracing::error!(error = %e, "the workers ended abnormally");
        }
        // The listeners and senders loop until stopped.
        background.shutdown().await;
        self.state.pool().close().await;
        Ok(())
    }
}

/// Runs Tally: the database (embedded unless `DATABASE_URL` is set), then the server.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let database = Database::open(&config).await?;
    let result = async {
        let server = Server::build(config, &database.owner_url).await?;
        let addr = server.local_addr()?;
        let keys = server.state().keys();
        println!("Tally is running at http://{addr}");
        println!("  anon key:         {}", keys.anon_key());
        println!("  service_role key: {}", keys.service_role_key());
        tracing::info!(%addr, "listening");
        // The workers' first classification would otherwise wait for the prototypes.
        let warm = (server.state().config().ai.worker_concurrency > 0).then(|| {
            tokio::spawn(tally_functions::classify::warm_prototypes(
                server.state().pool().clone(),
                server.state().functions().providers().embeddings.clone(),
            ))
        });
        let served = server.run(shutdown_signal()).await;
        if let Some(warm) = warm {
            warm.abort();
        }
        served
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

/// Runs only the background workers (`tally worker`) until SIGINT/SIGTERM.
pub async fn work(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.ai.worker_concurrency > 0,
        "`tally worker` needs TALLY_WORKER_CONCURRENCY of at least 1"
    );
    let database = Database::open(&config).await?;
    let result = async {
        let (owner, pool) = database.pools(&config, REQUEST_POOL_SIZE).await?;
        owner.close().await;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let providers = crate::models::providers(&config)?;
        let storage =
            crate::app::storage_state(pool.clone(), JwtKeys::new(&config.jwt_secret()?), &config)?;
        let metrics = match &config.metrics_addr {
            Some(addr) => Some(tokio::spawn(
                serve_metrics(addr.clone(), pool.clone(), stop.subscribe()).await?,
            )),
            None => None,
        };
        let workers = tokio::spawn(
            crate::workers::workers(&pool, &config, &providers, &storage)?.run(stopped),
        );
        let analytics = crate::analytics::start(&config, &database.owner_url, stop.subscribe());
        let warm = tokio::spawn(tally_functions::classify::warm_prototypes(
            pool.clone(),
            providers.embeddings.clone(),
        ));
        println!("Tally workers are running");
        shutdown_signal().await;
        let _ = stop.send(true);
        workers.await.context("the workers ended abnormally")?;
        crate::analytics::join(analytics, ANALYTICS_STOP).await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        warm.abort();
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Binds `TALLY_METRICS_ADDR` and returns the server of keyless `/metrics` there, which stops
/// when `stop` turns true.
async fn serve_metrics(
    addr: String,
    pool: sqlx::PgPool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    crate::metrics::install();
    let listener = TcpListener::bind(addr.as_str())
        .await
        .with_context(|| format!("cannot listen on TALLY_METRICS_ADDR {addr}"))?;
    tracing::info!(%addr, "serving /metrics");
    Ok(async move {
        let served = axum::serve(listener, crate::metrics::private_router(pool))
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the metrics listener ended");
        }
    })
}
