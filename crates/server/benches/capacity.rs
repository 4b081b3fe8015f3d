//! One capacity figure: the most active people one machine serves with p99 ≤ 200 ms on every
//! request kind and no error, on release `tally serve` processes (workers on, built-in
//! embeddings) over one database.
//!
//! Each simulated person belongs to an org of 25, keeps a realtime socket open (their own
//! `time_logs` changes) and goes through a working day in a loop, one request every 5–15 s
//! (10 s on average): of every 20 requests, 5 open the week view, 3 the dashboard, 3 log a
//! line of text, 2 start and 2 stop a timer, 3 sync a phone (`sync-pull` from its cursor),
//! 1 refreshes the session and 1 signs in again. Each step runs N people for 30 s (after
//! 15 s in which their sockets join); N doubles until a step fails, then is bisected.
//! Prints every step (requests per second, p50/p99 per kind, errors) and the largest N that
//! passed, for one instance and then for two on the same database (people split between
//! them). Client, servers and database share the machine's cores.
//! Run with `scripts/bench-capacity` (`BENCH_INSTANCES=1` for one instance only).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{Datelike, Utc};
use futures_util::{SinkExt, StreamExt};
use reqwest::Client;
use serde_json::{Value, json};
use sqlx::PgPool;
use tally_core::JwtKeys;
use tally_testkit::{ServerProcess, TEST_JWT_SECRET, TestDb, latency::percentile_ms};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_tungstenite::{connect_async, tungstenite::Message as Ws};
use uuid::Uuid;

const PEOPLE_PER_ORG: usize = 25;
const PASSWORD: &str = "bench-password-1";
const THINK_MS: std::ops::Range<u64> = 5_000..15_000;
const JOINING: Duration = Duration::from_secs(15);
const WINDOW: Duration = Duration::from_secs(30);
const P99_LIMIT_MS: f64 = 200.0;
/// Every simulated person comes from 127.0.0.1: per-IP limits would stop them.
const RATE_LIMITS_OFF: &[(&str, &str)] = &[
    ("TALLY_RATE_LIMIT_AUTH", "100000000"),
    ("TALLY_RATE_LIMIT_REFRESH", "100000000"),
];

/// What a person does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    SignIn,
    Refresh,
    RealtimeJoin,
    WeekView,
    Dashboard,
    LogText,
    TimerStart,
    TimerStop,
    SyncPull,
}

/// A day's requests, in the order a person makes them.
const DAY: [Kind; 20] = {
    use Kind::*;
    [
        WeekView, LogText, Dashboard, SyncPull, TimerStart, WeekView, Dashboard, TimerStop,
        LogText, SyncPull, WeekView, Refresh, TimerStart, Dashboard, WeekView, TimerStop, LogText,
        SyncPull, WeekView, SignIn,
    ]
};

const LINES: [&str; 6] = [
    "1h code review on the checkout page",
    "30 min standup",
    "2h deep work on the billing export",
    "45 minutes with a customer on support tickets",
    "planning for next sprint, 1h",
    "fixed the login bug, 1h30",
];

async fn wait_healthy(client: &Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("tally at {base} did not become healthy")
}

/// A simulated person and their session.
struct Person {
    id: Uuid,
    org: Uuid,
    email: String,
    session: Mutex<Session>,
}

#[derive(Default, Clone)]
struct Session {
    access: String,
    refresh: String,
    cursor: Option<String>,
    timer: bool,
}

/// `people` people in orgs of 25 (each with three projects), all with one password, and four
/// weeks of logs each.
async fn seed(owner: &PgPool, people: usize) -> anyhow::Result<Vec<Arc<Person>>> {
    let hash = tally_auth::password::hash(PASSWORD)
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e:?}"))?;
    let orgs = people.div_ceil(PEOPLE_PER_ORG);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into organizations (name, slug)
           select 'Org ' || g, 'org-' || g from generate_series(1, {orgs}) g;
         insert into projects (org_id, name)
           select o.id, p from organizations o, unnest(array['Checkout', 'Billing', 'Support']) p;"
    )))
    .execute(owner)
    .await?;
    let org_ids: Vec<Uuid> = sqlx::query_scalar("select id from organizations order by slug")
        .fetch_all(owner)
        .await?;
    let mut tx = owner.begin().await?;
    let mut out = Vec::with_capacity(people);
    for n in 0..people {
        let email = format!("p{n}@bench.test");
        let user = tally_auth::users::create(
            &mut tx,
            tally_auth::users::NewUser {
                id: None,
                email: &email,
                password_hash: Some(hash.clone()),
                user_metadata: json!({}),
                app_metadata: json!({}),
                confirmed: true,
                identity: None,
            },
        )
        .await?;
        let org = org_ids[n / PEOPLE_PER_ORG];
        let role = if n % PEOPLE_PER_ORG == 0 {
            "owner"
        } else {
            "member"
        };
        sqlx::query(
            "insert into memberships (org_id, user_id, role) values ($1, $2, $3::org_role)",
        )
        .bind(org)
        .bind(user.id)
        .bind(role)
        .execute(&mut *tx)
        .await?;
        out.push(Arc::new(Person {
            id: user.id,
            org,
            email,
            session: Mutex::new(Session::default()),
        }));
    }
    tx.commit().await?;
    sqlx::raw_sql(
        "insert into time_logs (org_id, user_id, project_id, comment, started_at, ended_at,
                                duration_minutes, status)
           select m.org_id, m.user_id,
                  (select id from projects p where p.org_id = m.org_id order by id limit 1),
                  'seeded work', now() - (d || ' days')::interval - interval '3 hours',
                  now() - (d || ' days')::interval - interval '2 hours', 60, 'ready'
           from memberships m, generate_series(1, 28) d;",
    )
    .execute(owner)
    .await?;
    Ok(out)
}

/// Latencies and errors by kind, for one step.
#[derive(Default)]
struct Stats {
    latencies: Mutex<BTreeMap<Kind, Vec<Duration>>>,
    errors: Mutex<BTreeMap<Kind, (u64, String)>>,
    delivered: AtomicU64,
}

impl Stats {
    fn record(&self, kind: Kind, took: Duration, outcome: anyhow::Result<()>) {
        match outcome {
            Ok(()) => {
                if let Ok(mut l) = self.latencies.lock() {
                    l.entry(kind).or_default().push(took);
                }
            }
            Err(e) => {
                if let Ok(mut errors) = self.errors.lock() {
                    let entry = errors.entry(kind).or_insert((0, e.to_string()));
                    entry.0 += 1;
                }
            }
        }
    }
}

/// Whether a response is a success; its body as JSON.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

struct Target {
    client: Client,
    base: String,
    anon: String,
}

impl Target {
    async fn sign_in(&self, person: &Person) -> anyhow::Result<()> {
        let body = answer(
            self.client
                .post(format!("{}/auth/v1/token?grant_type=password", self.base))
                .header("apikey", &self.anon)
                .json(&json!({"email": person.email, "password": PASSWORD}))
                .send()
                .await?,
        )
        .await?;
        self.keep(person, &body)
    }

    fn keep(&self, person: &Person, body: &Value) -> anyhow::Result<()> {
        let (Some(access), Some(refresh)) = (
            body["access_token"].as_str(),
            body["refresh_token"].as_str(),
        ) else {
            anyhow::bail!("no tokens in {body}");
        };
        if let Ok(mut s) = person.session.lock() {
            s.access = access.to_owned();
            s.refresh = refresh.to_owned();
        }
        Ok(())
    }

    fn session(person: &Person) -> Session {
        person.session.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn function(&self, person: &Person, name: &str, body: Value) -> anyhow::Result<Value> {
        answer(
            self.client
                .post(format!("{}/functions/v1/{name}", self.base))
                .header("apikey", &self.anon)
                .bearer_auth(Self::session(person).access)
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    async fn rest(&self, person: &Person, query: &str) -> anyhow::Result<()> {
        answer(
            self.client
                .get(format!("{}/rest/v1/{query}", self.base))
                .header("apikey", &self.anon)
                .bearer_auth(Self::session(person).access)
                .send()
                .await?,
        )
        .await
        .map(drop)
    }

    /// Makes one request of `kind` for `person`; returns the kind it made (a stop without a
    /// running timer starts one).
    async fn act(&self, person: &Person, kind: Kind) -> (Kind, anyhow::Result<()>) {
        let session = Self::session(person);
        let kind = match kind {
            Kind::TimerStop if !session.timer => Kind::TimerStart,
            other => other,
        };
        let org = person.org;
        let outcome = match kind {
            Kind::SignIn => self.sign_in(person).await,
            Kind::Refresh => {
                async {
                    let body = answer(
                        self.client
                            .post(format!(
                                "{}/auth/v1/token?grant_type=refresh_token",
                                self.base
                            ))
                            .header("apikey", &self.anon)
                            .json(&json!({"refresh_token": session.refresh}))
                            .send()
                            .await?,
                    )
                    .await?;
                    self.keep(person, &body)
                }
                .await
            }
            Kind::WeekView => {
                let today = Utc::now().date_naive();
                let monday = today
                    - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()) + 7);
                self.rest(
                    person,
                    &format!(
                        "time_logs?select=id,comment,started_at,ended_at,duration_minutes,status,\
                         project:projects(name)&user_id=eq.{}&started_at=gte.{monday}\
                         &deleted_at=is.null&order=started_at.desc",
                        person.id
                    ),
                )
                .await
            }
            Kind::Dashboard => {
                self.rest(
                    person,
                    &format!(
                        "org_period_summaries?select=starts,total_minutes&org_id=eq.{org}\
                         &period=eq.week&order=starts.desc&limit=12"
                    ),
                )
                .await
            }
            Kind::LogText => {
                let line = LINES[fastrand_index(LINES.len())];
                self.function(
                    person,
                    "log-create",
                    json!({"org_id": org, "comment": line}),
                )
                .await
                .map(drop)
            }
            Kind::TimerStart => {
                let started = self
                    .function(
                        person,
                        "timer-start",
                        json!({"org_id": org, "comment": "focus"}),
                    )
                    .await;
                if started.is_ok()
                    && let Ok(mut s) = person.session.lock()
                {
                    s.timer = true;
                }
                started.map(drop)
            }
            Kind::TimerStop => {
                let stopped = self
                    .function(person, "timer-stop", json!({"org_id": org}))
                    .await;
                if let Ok(mut s) = person.session.lock() {
                    s.timer = false;
                }
                stopped.map(drop)
            }
            Kind::SyncPull => {
                let pulled = self
                    .function(
                        person,
                        "sync-pull",
                        json!({"org_id": org, "cursor": session.cursor, "limit": 500}),
                    )
                    .await;
                match pulled {
                    Ok(body) => {
                        if let Ok(mut s) = person.session.lock() {
                            s.cursor = body["cursor"].as_str().map(str::to_owned);
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Kind::RealtimeJoin => Ok(()),
        };
        (kind, outcome)
    }

    /// Opens `person`'s socket and joins their channel; then keeps reading until `until`.
    async fn socket(&self, person: &Person, stats: &Stats, until: Instant) -> anyhow::Result<()> {
        let url = format!(
            "{}/realtime/v1/websocket?apikey={}&vsn=2.0.0",
            self.base.replace("http://", "ws://"),
            self.anon
        );
        let started = Instant::now();
        let (ws, _) = connect_async(url).await?;
        let (mut sink, mut stream) = ws.split();
        let join = json!(["1", "1", "realtime:mine", "phx_join", {"config": {
            "postgres_changes": [{"event": "*", "schema": "public", "table": "time_logs",
                                  "filter": format!("user_id=eq.{}", person.id)}],
            "presence": {"enabled": false}}, "access_token": Self::session(person).access}]);
        sink.send(Ws::Text(join.to_string().into())).await?;
        let mut joined = false;
        let mut beat = tokio::time::interval(Duration::from_secs(25));
        loop {
            let remaining = until.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(());
            }
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(Ws::Text(text))) => {
                        let message: Value = serde_json::from_str(text.as_str())?;
                        if !joined && message[3] == "phx_reply" && message[1] == "1" {
                            joined = true;
                            let ok = if message[4]["status"] == "ok" {
                                Ok(())
                            } else {
                                Err(anyhow::anyhow!("join refused: {message}"))
                            };
                            stats.record(Kind::RealtimeJoin, started.elapsed(), ok);
                        } else if message[3] == "postgres_changes" {
                            stats.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => anyhow::bail!("the socket closed"),
                },
                _ = beat.tick() => {
                    let heartbeat = json!([null, "hb", "phoenix", "heartbeat", {}]);
                    sink.send(Ws::Text(heartbeat.to_string().into())).await?;
                }
                () = tokio::time::sleep(remaining) => return Ok(()),
            }
        }
    }
}

fn fastrand_index(n: usize) -> usize {
    (Uuid::new_v4().as_u128() % n as u128) as usize
}

fn fastrand_ms(range: std::ops::Range<u64>) -> Duration {
    let span = u128::from(range.end - range.start);
    Duration::from_millis(range.start + (Uuid::new_v4().as_u128() % span) as u64)
}

/// One person's step: socket joined at a random moment of the joining time, then requests
/// with think times; only requests that start inside the window count.
async fn live(target: Arc<Target>, person: Arc<Person>, stats: Arc<Stats>, start: Instant) {
    let measure_from = start + JOINING;
    let until = measure_from + WINDOW;
    tokio::time::sleep(fastrand_ms(0..JOINING.as_millis() as u64 - 1_000)).await;
    let socket = {
        let (target, person, stats) = (target.clone(), person.clone(), stats.clone());
        tokio::spawn(async move {
            if let Err(e) = target.socket(&person, &stats, until).await {
                stats.record(Kind::RealtimeJoin, Duration::ZERO, Err(e));
            }
        })
    };
    let mut next = fastrand_index(DAY.len());
    tokio::time::sleep_until((measure_from - Duration::from_secs(5)).into()).await;
    tokio::time::sleep(fastrand_ms(0..THINK_MS.end)).await;
    while Instant::now() < until {
        let began = Instant::now();
        let (kind, outcome) = target.act(&person, DAY[next % DAY.len()]).await;
        next += 1;
        if began >= measure_from {
            stats.record(kind, began.elapsed(), outcome);
        }
        tokio::time::sleep(fastrand_ms(THINK_MS)).await;
    }
    let _ = socket.await;
}

/// Runs `n` people (person k on instance k mod the instances' count) for a step; prints it;
/// returns whether it passed.
async fn step(targets: &[Arc<Target>], people: &[Arc<Person>], n: usize) -> bool {
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let mut running = JoinSet::new();
    for (k, person) in people.iter().take(n).enumerate() {
        running.spawn(live(
            targets[k % targets.len()].clone(),
            person.clone(),
            stats.clone(),
            start,
        ));
    }
    while running.join_next().await.is_some() {}
    let latencies = stats
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let errors = stats.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let requests: usize = latencies
        .iter()
        .filter(|(k, _)| **k != Kind::RealtimeJoin)
        .map(|(_, v)| v.len())
        .sum();
    let mut passed = errors.is_empty();
    let mut line = format!(
        "  {n:>5} people: {:>6.1} requests/s, {} changes delivered;",
        requests as f64 / WINDOW.as_secs_f64(),
        stats.delivered.load(Ordering::Relaxed)
    );
    for (kind, mut taken) in latencies {
        taken.sort();
        let p99 = percentile_ms(&taken, 0.99);
        passed &= p99 <= P99_LIMIT_MS;
        line.push_str(&format!(
            " {kind:?} {:.0}/{:.0}",
            percentile_ms(&taken, 0.5),
            p99
        ));
    }
    println!(
        "{line} (p50/p99 ms) → {}",
        if passed { "ok" } else { "over" }
    );
    for (kind, (count, first)) in errors {
        println!("         {count} {kind:?} errors, e.g. {first}");
    }
    passed
}

/// The largest passing N: doubling from `from`, then bisecting to within an eighth.
async fn capacity(targets: &[Arc<Target>], people: &[Arc<Person>], from: usize) -> usize {
    let (mut good, mut bad) = (0, None);
    let mut n = from;
    while bad.is_none() && n <= people.len() {
        if step(targets, people, n).await {
            good = n;
            n *= 2;
        } else {
            bad = Some(n);
        }
    }
    let Some(mut bad) = bad else {
        println!("  (every step passed: BENCH_PEOPLE limits the search)");
        return good;
    };
    while bad - good > good.max(from) / 8 {
        let mid = (good + bad) / 2;
        if step(targets, people, mid).await {
            good = mid;
        } else {
            bad = mid;
        }
    }
    good
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total = env_usize("BENCH_PEOPLE", 3_000);
    let from = env_usize("BENCH_FROM", 100);
    let instances = env_usize("BENCH_INSTANCES", 2);
    let db = TestDb::new().await?;
    let seeding = Instant::now();
    let people = seed(&db.owner, total).await?;
    println!(
        "capacity: {total} people in {} orgs seeded in {:.1} s; a person makes one request \
         every 5–15 s and keeps a socket open; pass = every kind's p99 ≤ {P99_LIMIT_MS} ms and \
         no error",
        total.div_ceil(PEOPLE_PER_ORG),
        seeding.elapsed().as_secs_f64()
    );
    let anon = JwtKeys::new(TEST_JWT_SECRET).anon_key();
    let client = Client::builder().pool_max_idle_per_host(4096).build()?;
    let dirs = tempfile::tempdir()?;
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    for i in 0..instances {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        servers.push(ServerProcess::start(
            &db,
            port,
            &dirs.path().join(i.to_string()),
            RATE_LIMITS_OFF,
        )?);
        let base = format!("http://127.0.0.1:{port}");
        wait_healthy(&client, &base).await?;
        targets.push(Arc::new(Target {
            client: client.clone(),
            base,
            anon: anon.clone(),
        }));
        if i == 0 {
            // Everyone signs in once (not measured), for a session to refresh.
            let signing = Arc::new(Semaphore::new(4));
            let mut signed = JoinSet::new();
            for person in &people {
                let (target, person, signing) =
                    (targets[0].clone(), person.clone(), signing.clone());
                signed.spawn(async move {
                    let _permit = signing.acquire_owned().await?;
                    target.sign_in(&person).await
                });
            }
            while let Some(done) = signed.join_next().await {
                done??;
            }
        }
    }
    let mut found = Vec::new();
    for count in 1..=instances {
        println!("{count} instance(s):");
        let n = capacity(&targets[..count], &people, from).await;
        println!("  → {n} active people with p99 ≤ {P99_LIMIT_MS} ms on every kind");
        found.push((count, n));
    }
    let summary: Vec<String> = found
        .iter()
        .map(|(count, n)| format!("{count} instance(s): {n} people"))
        .collect();
    println!("capacity: {}", summary.join(", "));
    drop(servers);
    Ok(())
}
