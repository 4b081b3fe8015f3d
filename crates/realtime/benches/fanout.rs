//! postgres_changes at scale: 10,000 websocket subscribers (one per person) across 100 orgs,
//! each listening to the changes of `time_logs` its RLS lets it read (per org 1 owner and 4
//! admins, who read the whole org, and 95 members, who read their own), on a `tally serve`
//! process of its own (release build, no workers) so its memory is its own. With
//! `BENCH_BINDINGS=filtered` members subscribe with `user_id=eq.<self>` and owners and admins
//! with `org_id=eq.<org>` (as a timeline and a team dashboard would); with `unfiltered` every
//! subscriber listens to the whole table and RLS alone sorts it out. Prints the server's memory
//! per connection, and the change-to-delivery latency p50/p99 and deliveries per second while
//! 200 logs/s are written (`BENCH_WRITES` for more, several rows per insert) — overall, and by
//! 5 s of writing, where a backlog shows as a climb — next to the bare `pg_notify` → `LISTEN`
//! round trip measured in the same run.
//! Run with `scripts/bench-realtime`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::{PgPool, postgres::PgListener};
use tally_core::JwtKeys;
use tally_testkit::{ServerProcess, TEST_JWT_SECRET, TestDb};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};
use tokio_tungstenite::{connect_async, tungstenite::Message as Ws};
use uuid::Uuid;

/// Orgs (`BENCH_ORGS` to try fewer).
fn orgs() -> usize {
    std::env::var("BENCH_ORGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}
const PEOPLE_PER_ORG: usize = 100;
/// Owners and admins per org (they read every log of it).
const READ_ALL: usize = 5;
/// Logs written per second (`BENCH_WRITES`; 200 unless asked), in 200 inserts a second of
/// one or more rows each.
fn writes_per_second() -> u64 {
    std::env::var("BENCH_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}
const INSERTS_PER_SECOND: u64 = 200;
const WRITING: Duration = Duration::from_secs(20);
const CONNECTING_AT_ONCE: usize = 100;

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// The server process's resident memory in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn seed(owner: &PgPool, orgs: usize) -> anyhow::Result<Vec<(Uuid, Uuid, bool)>> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (id, email)
           select private.uuid_v7(), 'p' || g || '@bench.test' from generate_series(1, {people}) g;
         insert into organizations (name, slug)
           select 'Org ' || g, 'org-' || g from generate_series(1, {orgs}) g;
         insert into memberships (org_id, user_id, role)
           select o.id, u.id, case when (u.n - 1) % {PEOPLE_PER_ORG} = 0 then 'owner'
                                   when (u.n - 1) % {PEOPLE_PER_ORG} < {READ_ALL} then 'admin'
                                   else 'member' end::org_role
           from (select id, row_number() over (order by email) as n from auth.users) u
           join (select id, row_number() over (order by slug) as n from organizations) o
             on o.n = (u.n - 1) / {PEOPLE_PER_ORG} + 1;",
        people = orgs * PEOPLE_PER_ORG
    )))
    .execute(owner)
    .await?;
    Ok(sqlx::query_as(
        "select user_id, org_id, role in ('owner', 'admin') from memberships order by user_id",
    )
    .fetch_all(owner)
    .await?)
}

/// When each delivered change was written and its latency (µs), and how many arrived.
#[derive(Default)]
struct Received {
    latencies: Mutex<Vec<(u64, u64)>>,
    count: AtomicU64,
}

/// Connects one subscriber and keeps reading (with heartbeats) until the run ends.
async fn subscriber(
    url: String,
    token: String,
    binding: Value,
    received: Arc<Received>,
    ready: Arc<Semaphore>,
    connecting: OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let (ws, _) = connect_async(url).await?;
    let (mut sink, mut stream) = ws.split();
    let join = json!(["1", "1", "realtime:logs", "phx_join", {"config": {
        "postgres_changes": [binding],
        "presence": {"enabled": false}}, "access_token": token}]);
    sink.send(Ws::Text(join.to_string().into())).await?;
    // The reply, then "Subscribed to PostgreSQL".
    let mut seen = 0;
    while seen < 2 {
        match stream.next().await {
            Some(Ok(Ws::Text(_))) => seen += 1,
            Some(Ok(_)) => {}
            _ => anyhow::bail!("the socket closed while joining"),
        }
    }
    ready.add_permits(1);
    drop(connecting);
    let mut beat = tokio::time::interval(Duration::from_secs(25));
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Ws::Text(text))) => {
                    let at = now_micros();
                    let message: Value = serde_json::from_str(text.as_str())?;
                    if message[3] == "postgres_changes"
                        && let Some(sent) = message[4]["data"]["record"]["comment"]
                            .as_str()
                            .and_then(|c| c.strip_prefix("bench "))
                            .and_then(|t| t.parse::<u64>().ok())
                    {
                        received.count.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut l) = received.latencies.lock() {
                            l.push((sent, at.saturating_sub(sent)));
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => return Ok(()),
            },
            _ = beat.tick() => {
                let heartbeat = json!([null, "hb", "phoenix", "heartbeat", {}]);
                sink.send(Ws::Text(heartbeat.to_string().into())).await?;
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The bare round trip: `select pg_notify(…)` on one connection to a LISTEN on another.
async fn notify_round_trips(owner: PgPool, until: Instant) -> anyhow::Result<Vec<u64>> {
    let mut listener = PgListener::connect_with(&owner).await?;
    listener.listen("bench_ping").await?;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut trips = Vec::new();
    while Instant::now() < until {
        tick.tick().await;
        let sent = now_micros();
        sqlx::query("select pg_notify('bench_ping', $1)")
            .bind(sent.to_string())
            .execute(&owner)
            .await?;
        let n = listener.recv().await?;
        let sent: u64 = n.payload().parse()?;
        trips.push(now_micros().saturating_sub(sent));
    }
    Ok(trips)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let orgs = orgs();
    let people = seed(&db.owner, orgs).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let data_dir = std::env::temp_dir().join(format!("tally-bench-{}", Uuid::new_v4().simple()));
    let server = ServerProcess::start(
        &db,
        port,
        &data_dir,
        &[
            ("TALLY_WORKER_CONCURRENCY", "0"),
            ("TALLY_EMBEDDINGS", "none"),
        ],
    )?;
    let http = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/health");
    let started = Instant::now();
    while !http
        .get(&health)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = server.id();
    let idle = rss_mib(pid);

    let keys = JwtKeys::new(TEST_JWT_SECRET);
    let exp = chrono::Utc::now().timestamp() + 3600;
    let url = format!(
        "ws://127.0.0.1:{port}/realtime/v1/websocket?apikey={}&vsn=2.0.0",
        keys.anon_key()
    );
    let received = Arc::new(Received::default());
    let ready = Arc::new(Semaphore::new(0));
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut clients = JoinSet::new();
    let connecting = Instant::now();
    let filtered = std::env::var("BENCH_BINDINGS").as_deref() != Ok("unfiltered");
    println!(
        "bindings: {}",
        if filtered {
            "members user_id=eq.<self>, owners and admins org_id=eq.<org>"
        } else {
            "the whole table for everyone (RLS alone decides)"
        }
    );
    for (user, org, reads_all) in &people {
        let token = keys.sign(&json!({"sub": user, "role": "authenticated", "exp": exp}))?;
        let mut binding = json!({"event": "*", "schema": "public", "table": "time_logs"});
        if filtered {
            binding["filter"] = if *reads_all {
                json!(format!("org_id=eq.{org}"))
            } else {
                json!(format!("user_id=eq.{user}"))
            };
        }
        let (url, received, ready, gate) =
            (url.clone(), received.clone(), ready.clone(), gate.clone());
        clients.spawn(async move {
            let permit = gate.acquire_owned().await?;
            subscriber(url, token, binding, received, ready, permit).await
        });
    }
    // Wait for every subscriber to be subscribed.
    let all = u32::try_from(people.len())?;
    tokio::time::timeout(Duration::from_secs(600), ready.acquire_many(all))
        .await??
        .forget();
    let connect_s = connecting.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let subscribed = rss_mib(pid);
    println!(
        "{} subscribers across {orgs} orgs subscribed in {connect_s:.1} s",
        people.len()
    );
    println!(
        "server RSS: {idle:.1} MiB idle, {subscribed:.1} MiB with every subscriber → {:.1} KiB per connection",
        (subscribed - idle) * 1024.0 / people.len() as f64
    );

    // BENCH_WRITES logs/s by random people, and the bare NOTIFY round trip beside them.
    let rate = writes_per_second();
    let rows_per_insert = rate.div_ceil(INSERTS_PER_SECOND) as usize;
    let until = Instant::now() + WRITING;
    let pings = tokio::spawn(notify_round_trips(db.owner.clone(), until));
    let mut tick = tokio::time::interval(Duration::from_micros(
        1_000_000 * rows_per_insert as u64 / rate,
    ));
    let mut written = 0u64;
    let mut expected = 0u64;
    let mut n = 0usize;
    while Instant::now() < until {
        tick.tick().await;
        let (mut users, mut orgs) = (Vec::new(), Vec::new());
        for _ in 0..rows_per_insert {
            n = (n * 7919 + 104_729) % people.len();
            let (user, org, reads_all) = people[n];
            users.push(user);
            orgs.push(org);
            written += 1;
            // The org's owner and admins, and the author if a member.
            expected += READ_ALL as u64 + u64::from(!reads_all);
        }
        let owner = db.owner.clone();
        tokio::spawn(async move {
            let _ = sqlx::query(
                "insert into time_logs (org_id, user_id, comment, duration_minutes, status)
                 select o, u, $3, 15, 'ready' from unnest($1::uuid[], $2::uuid[]) x (o, u)",
            )
            .bind(orgs)
            .bind(users)
            .bind(format!("bench {}", now_micros()))
            .execute(&owner)
            .await;
        });
    }
    let mut trips = pings.await??;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = rss_mib(pid);
    let delivered = received.count.load(Ordering::Relaxed);
    let timed = received
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let mut latencies: Vec<u64> = timed.iter().map(|(_, l)| *l).collect();
    latencies.sort_unstable();
    trips.sort_unstable();
    println!(
        "\nwrote {written} logs in {:.0} s ({rate}/s, {rows_per_insert} per insert); {delivered} of {expected} expected deliveries arrived: {:.0} deliveries/s",
        WRITING.as_secs_f64(),
        delivered as f64 / WRITING.as_secs_f64()
    );
    println!(
        "change → delivery (insert to the subscriber's socket): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "bare pg_notify → LISTEN round trip (same run): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&trips, 0.5),
        percentile(&trips, 0.99)
    );
    // Latency by when the change was written, in 5 s windows: a backlog shows as a climb.
    let first = timed.iter().map(|(s, _)| *s).min().unwrap_or_default();
    let mut windows: Vec<Vec<u64>> = Vec::new();
    for (sent, latency) in &timed {
        let w = usize::try_from((sent - first) / 5_000_000).unwrap_or(0);
        if windows.len() <= w {
            windows.resize(w + 1, Vec::new());
        }
        windows[w].push(*latency);
    }
    let by_window: Vec<String> = windows
        .iter_mut()
        .map(|w| {
            w.sort_unstable();
            format!(
                "p50 {:.0} / p99 {:.0}",
                percentile(w, 0.5),
                percentile(w, 0.99)
            )
        })
        .collect();
    println!("by 5 s of writing (ms): {}", by_window.join(", "));
    println!("server RSS after the writes: {during:.1} MiB");
    clients.abort_all();
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}
