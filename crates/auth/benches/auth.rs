//! Auth throughput: password sign-ins and refresh-token rotations per second against a real
//! Tally (real HTTP, real PostgreSQL), next to the cost of one argon2id hash, which is what
//! bounds sign-in; TOTP verifications per second (challenge and verify, each raising a
//! session to aal2); and a REST read with a personal API token next to the same read with a
//! JWT. Run with `scripts/bench-auth` (release build).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tally_testkit::{Fixture, TestApp};
use tokio::task::JoinSet;
use totp_rs::{Algorithm, Builder, Secret};

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
        self.post_as(&self.anon, path, body).await
    }

    /// Posts to `/auth/v1{path}` with `bearer` (and the anon key).
    async fn post_as(&self, bearer: &str, path: &str, body: Value) -> Option<Value> {
        let response = self
            .http
            .post(format!("{}/auth/v1{path}", self.base))
            .header("apikey", &self.anon)
            .header("authorization", format!("Bearer {bearer}"))
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
        c.api_token_requests_per_minute = u32::MAX / 2;
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

    let verifications = totp_verifications(&client).await?;
    let (jwt_reads, token_reads) = token_and_jwt_reads(&app, &client).await?;

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
    println!(
        "  TOTP     challenge + verify (to aal2)           {:8.1} /s     ({} ok, {} failed)",
        verifications.0, verifications.1, verifications.2
    );
    println!(
        "  REST read, 10 of a member's logs, with a JWT    {:8.1} req/s  ({} ok, {} failed)",
        jwt_reads.0, jwt_reads.1, jwt_reads.2
    );
    println!(
        "  the same read with a personal API token         {:8.1} req/s  ({} ok, {} failed)  = {:.2}x",
        token_reads.0,
        token_reads.1,
        token_reads.2,
        token_reads.0 / jwt_reads.0.max(f64::MIN_POSITIVE)
    );
    app.stop().await?;
    Ok(())
}

/// People with one enrolled TOTP factor each, per worker.
const TOTP_PEOPLE: usize = 50;

/// First verifications of [`TOTP_PEOPLE`] × [`CONCURRENCY`] people's factors (a code's time
/// step is accepted once per factor, so each person verifies once): signed up and enrolled
/// beforehand, then timed challenge + verify.
async fn totp_verifications(client: &Client) -> anyhow::Result<(f64, u64, u64)> {
    let mut people = Vec::new();
    for n in 0..TOTP_PEOPLE * CONCURRENCY {
        let body = json!({"email": format!("totp-{n}@example.com"), "password": PASSWORD});
        let session = client
            .post("/signup", body)
            .await
            .ok_or_else(|| anyhow::anyhow!("sign-up"))?;
        let token = session["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let factor = client
            .post_as(&token, "/factors", json!({"factor_type": "totp"}))
            .await
            .ok_or_else(|| anyhow::anyhow!("enroll"))?;
        let secret =
            Secret::try_from_base32(factor["totp"]["secret"].as_str().unwrap_or_default())?;
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_secret(secret)
            .build()?;
        people.push((
            token,
            factor["id"].as_str().unwrap_or_default().to_owned(),
            totp,
        ));
    }
    let shares: Vec<Vec<_>> = people.chunks(TOTP_PEOPLE).map(<[_]>::to_vec).collect();
    let shares = std::sync::Arc::new(std::sync::Mutex::new(shares));
    Ok(run(|| {
        let (client, shares) = (client.clone(), shares.clone());
        async move {
            let share = shares
                .lock()
                .map(|mut s| s.pop().unwrap_or_default())
                .unwrap_or_default();
            let (mut ok, mut failed) = (0u64, 0u64);
            for (token, factor, totp) in share {
                let challenge = client
                    .post_as(&token, &format!("/factors/{factor}/challenge"), json!({}))
                    .await;
                let body = json!({"challenge_id": challenge.map(|c| c["id"].clone()),
                                  "code": totp.generate_current().to_string()});
                match client
                    .post_as(&token, &format!("/factors/{factor}/verify"), body)
                    .await
                {
                    Some(_) => ok += 1,
                    None => failed += 1,
                }
            }
            (ok, failed)
        }
    })
    .await)
}

/// `GET /rest/v1/time_logs?select=id&limit=10` as a fixture member: with their JWT, then
/// with a personal API token of theirs (looked up and checked on every request).
async fn token_and_jwt_reads(
    app: &TestApp,
    client: &Client,
) -> anyhow::Result<((f64, u64, u64), (f64, u64, u64))> {
    let fixture = Fixture::load(app).await?;
    let jwt = fixture.token(app, "member_a");
    let made: Value = client
        .http
        .post(app.url("/functions/v1/token-create"))
        .header("apikey", &client.anon)
        .bearer_auth(&jwt)
        .json(&json!({"name": "bench", "scopes": ["logs:read"]}))
        .send()
        .await?
        .json()
        .await?;
    let token = made["token"].as_str().unwrap_or_default().to_owned();
    let url = app.url("/rest/v1/time_logs?select=id&limit=10");
    let read = |bearer: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            let started = Instant::now();
            while started.elapsed() < RUN_FOR {
                let answer = client
                    .http
                    .get(&url)
                    .header("apikey", &client.anon)
                    .bearer_auth(&bearer)
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }
    };
    let with_jwt = run(|| read(jwt.clone())).await;
    let with_token = run(|| read(token.clone())).await;
    Ok((with_jwt, with_token))
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
