//! The real server, on a free port, over a test database.
//!
//! The server runs on a runtime of its own, on its own thread, as it would in its own process:
//! the test's runtime blocking (in a `Drop`, say) never stalls the server's connections, and
//! dropping the app stops the server before its database is dropped.

use std::{net::SocketAddr, sync::Arc, thread::JoinHandle, time::Duration};

use anyhow::Context;
use tally_core::{Config, JwtKeys};
use tally_server::{app::AppState, serve::Server};
use tokio::{
    runtime::Handle,
    sync::{oneshot, watch},
};

use crate::{TEST_JWT_SECRET, TestDb};

/// How long a stopping server may take to finish requests in flight.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running Tally for one test; shut down when dropped.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The project's keys (anon and service_role keys, signing user tokens).
    pub keys: JwtKeys,
    /// The server's data directory (stored files live under `storage/`); removed on drop.
    pub data_dir: std::path::PathBuf,
    state: AppState,
    runtime: Handle,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    /// The test's database (dropped after the last server over it stops).
    pub db: Arc<TestDb>,
}

impl TestApp {
    /// Starts a server over a fresh test database.
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server with settings changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        Self::start(Arc::new(TestDb::new().await?), configure).await
    }

    /// Starts a server over `db` with settings changed by `configure`.
    pub async fn spawn_on(
        db: Arc<TestDb>,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        Self::start(db, configure).await
    }

    /// A second instance over this one's database, as behind a load balancer.
    pub async fn another_instance(&self) -> anyhow::Result<Self> {
        Self::start(self.db.clone(), |_| {}).await
    }

    async fn start(db: Arc<TestDb>, configure: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let data_dir =
            std::env::temp_dir().join(format!("tally-test-{}", uuid::Uuid::new_v4().simple()));
        let mut config = Config::defaults()?.with_jwt_secret(TEST_JWT_SECRET)?;
        config.port = 0;
        config.data_dir = data_dir.clone();
        config.database_url = Some(db.owner_url().to_owned());
        // The tests' fake providers and receivers listen on loopback.
        config.integrations.webhook_allow_private = true;
        configure(&mut config);
        let url = db.owner_url().to_owned();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (shutdown, stop) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let server = match Server::build(config, &url).await {
                    Ok(server) => server,
                    Err(e) => {
                        let message = format!("{e:#}");
                        let _ = ready_tx.send(Err(e));
                        anyhow::bail!(message);
                    }
                };
                let ready = server
                    .local_addr()
                    .map(|addr| (addr, server.state().clone(), Handle::current()));
                let _ = ready_tx.send(ready);
                let mut stopping = stop.clone();
                let run = server.run(async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                });
                // Once told to stop, the server gets a grace period, then is dropped.
                let mut stop = stop;
                tokio::select! {
                    result = run => result,
                    () = async {
                        let _ = stop.wait_for(|stop| *stop).await;
                        tokio::time::sleep(STOP_GRACE).await;
                    } => Ok(()),
                }
            })
        });
        let (addr, state, runtime) = ready_rx
            .await
            .context("the test server's thread ended before it was ready")??;
        Ok(Self {
            addr,
            keys: JwtKeys::new(TEST_JWT_SECRET),
            data_dir,
            state,
            runtime,
            shutdown: Some(shutdown),
            thread: Some(thread),
            db,
        })
    }

    /// An access token for `user`, as the auth service signs one (ten minutes).
    pub fn user_token(&self, user: uuid::Uuid) -> String {
        let exp = chrono::Utc::now().timestamp() + 600;
        self.keys
            .sign(&serde_json::json!({"sub": user, "role": "authenticated", "aud": "authenticated", "exp": exp}))
            .unwrap_or_default()
    }

    /// `method path` with `token` as the bearer (and the anon key as `apikey`) and an optional
    /// JSON body, as a client calls any service: the status and the body (JSON, or its text
    /// as a JSON string).
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
        let mut request = reqwest::Client::new()
            .request(method, self.url(path))
            .header("apikey", self.keys.anon_key())
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ))
    }

    /// Signs `email` up through `/auth/v1` (autoconfirm; a fixed password): the session.
    pub async fn sign_up(&self, email: &str) -> anyhow::Result<serde_json::Value> {
        let anon = self.keys.anon_key();
        let body = serde_json::json!({"email": email, "password": "correct-horse-battery"});
        let (status, session) = self
            .call(&anon, reqwest::Method::POST, "/auth/v1/signup", Some(body))
            .await?;
        anyhow::ensure!(status.is_success(), "{status}: {session}");
        Ok(session)
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Reloads the REST schema cache (after a test changed the schema), on the server's runtime.
    pub async fn reload_schema(&self) -> anyhow::Result<()> {
        let state = self.state.clone();
        Ok(self
            .runtime
            .spawn(async move { state.rest().reload().await })
            .await??)
    }

    /// Stops the server and waits for requests in flight to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let thread = self.begin_stop();
        let stopped = match thread {
            Some(thread) => tokio::task::spawn_blocking(move || join(thread)).await?,
            None => Ok(()),
        };
        remove_data_dir(&self.data_dir);
        stopped
    }

    fn begin_stop(&mut self) -> Option<JoinHandle<anyhow::Result<()>>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        self.thread.take()
    }
}

fn remove_data_dir(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("warning: could not remove {}: {e}", dir.display());
    }
}

fn join(thread: JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the test server's thread panicked"))?
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(thread) = self.begin_stop()
            && let Err(e) = join(thread)
        {
            eprintln!("warning: the test server did not stop cleanly: {e:#}");
        }
        remove_data_dir(&self.data_dir);
    }
}
