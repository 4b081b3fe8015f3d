//! The real server, on a free port, over a test database.

use std::net::SocketAddr;

use tally_core::{Config, JwtKeys};
use tally_server::{app::AppState, serve::Server};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{TEST_JWT_SECRET, TestDb};

/// A running Tally for one test; shut down when dropped.
pub struct TestApp {
    /// The test's database.
    pub db: TestDb,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The project's keys (anon and service_role keys, signing user tokens).
    pub keys: JwtKeys,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts a server over a fresh test database.
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server with settings changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let db = TestDb::new().await?;
        let data_dir =
            std::env::temp_dir().join(format!("tally-test-{}", uuid::Uuid::new_v4().simple()));
        let mut config = Config::defaults()?.with_jwt_secret(TEST_JWT_SECRET)?;
        config.port = 0;
        config.data_dir = data_dir;
        config.database_url = Some(db.owner_url().to_owned());
        configure(&mut config);
        let server = Server::build(config, db.owner_url()).await?;
        let addr = server.local_addr()?;
        let state = server.state().clone();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Ok(Self {
            db,
            addr,
            keys: JwtKeys::new(TEST_JWT_SECRET),
            state,
            shutdown: Some(tx),
            handle: Some(handle),
        })
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Reloads the REST schema cache (after a test changed the schema).
    pub async fn reload_schema(&self) -> anyhow::Result<()> {
        Ok(self.state.rest().reload().await?)
    }

    /// Stops the server and waits for requests in flight to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
