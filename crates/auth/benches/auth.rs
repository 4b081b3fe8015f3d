//! Auth throughput: password sign-ins and refresh-token rotations per second against a real
//! Tally (real HTTP, real PostgreSQL), next to the cost of one argon2id hash, which is what
//! bounds sign-in. Run with `scripts/bench-auth` (release build).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tally_testkit::TestApp;
use tokio::task::JoinSet;

const CONCURRENCY: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(5);
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench-password-123";

/// Posts to `/auth/v1{path}` with the anon key.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    anon: String,
}

impl Client {
    async fn post(&self, path: &str, body: Value) -> Option<Value> {
        let response = self
            .http
            .post(format!("{}/auth/v1{path}", self.base))
            .header("apikey", &self.anon)
            .header("authorization", format!("Bearer {}", self.anon))
            .json(&body)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| {
        c.auth.rate_limit_auth = u32::MAX / 2;
        c.auth.rate_limit_refresh = u32::MAX / 2;
    })
    .await?;
    let client = Client {
        http: reqwest::Client::new(),
        base: app.url(""),
        anon: app.keys.anon_key(),
    };
    let signup = client
        .post("/signup", json!({"email": EMAIL, "password": PASSWORD}))
        .await;
    anyhow::ensure!(signup.is_some(), "sign-up failed");

    let hashes = 20;
    let started = Instant::now();
    for _ in 0..hashes {
        tally_auth::password::hash(PASSWORD).await?;
    }
    let hash_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(hashes);

    let sign_in = json!({"email": EMAIL, "password": PASSWORD});
    let sign_ins = run(|| {
        let (client, body) = (client.clone(), sign_in.clone());
        async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let started = Instant::now();
            while started.elapsed() < RUN_FOR {
                match client
                    .post("/token?grant_type=password", body.clone())
                    .await
                {
                    Some(_) => ok += 1,
                    None => failed += 1,
                }
            }
            (ok, failed)
        }
    })
    .await;

    let refreshes = run(|| {
        let (client, body) = (client.clone(), sign_in.clone());
        async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let Some(session) = client.post("/token?grant_type=password", body).await else {
                return (0, 1);
            };
            let mut token = session["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let started = Instant::now();
            while started.elapsed() < RUN_FOR {
                match client
                    .post(
                        "/token?grant_type=refresh_token",
                        json!({"refresh_token": token}),
                    )
                    .await
                {
                    Some(next) => {
                        ok += 1;
                        token = next["refresh_token"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                    }
                    None => failed += 1,
                }
            }
            (ok, failed)
        }
    })
    .await;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "tally auth bench: {cores} cores, {CONCURRENCY} concurrent clients, {}s per run",
        RUN_FOR.as_secs()
    );
    println!(
        "  argon2id hash (m=19456 KiB, t=2, p=1)  {hash_ms:8.1} ms     = {:.0} hashes/s per core",
        1000.0 / hash_ms
    );
    println!(
        "  sign-in  POST /token?grant_type=password       {:8.1} req/s  ({} ok, {} failed)",
        sign_ins.0, sign_ins.1, sign_ins.2
    );
    println!(
        "  refresh  POST /token?grant_type=refresh_token  {:8.1} req/s  ({} ok, {} failed)",
        refreshes.0, refreshes.1, refreshes.2
    );
    app.stop().await?;
    Ok(())
}

/// Runs [`CONCURRENCY`] workers made by `worker`; returns (ok per second, ok, failed).
async fn run<F, Fut>(worker: F) -> (f64, u64, u64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u64, u64)> + Send + 'static,
{
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..CONCURRENCY {
        set.spawn(worker());
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(result) = set.join_next().await {
        let (o, f) = result.unwrap_or((0, 1));
        ok += o;
        failed += f;
    }
    (ok as f64 / started.elapsed().as_secs_f64(), ok, failed)
}
