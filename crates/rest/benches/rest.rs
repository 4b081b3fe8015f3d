//! REST vs direct SQL: 1,000,000 time logs across 100 orgs and 1,000 users; concurrent
//! clients on loopback (a) list a member's 50 newest logs with the project embedded, and
//! (b) insert one log with `return=representation` — through `/rest/v1`, and side by side
//! the same SQL over the same pool with the same role and claims. Prints requests/s, p50,
//! p99 and the ratio. The server runs no workers (`TALLY_WORKER_CONCURRENCY=0`, as an
//! HTTP-only instance would), so classifying the inserted logs does not share its cores. Run with `scripts/bench-rest` (release build).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};
use sqlx::PgPool;
use tally_core::{Claims, RequestContext};
use tally_rest::{
    query::{Bind, Sql},
    request,
    schema::SchemaCache,
};
use tally_testkit::TestApp;
use tokio::task::JoinSet;
use uuid::Uuid;

const CONCURRENCY: usize = 8;
/// Each side runs this long per round, after an unmeasured warm-up of the same length.
const ROUND: Duration = Duration::from_secs(3);
/// Rounds alternate REST and direct, so drift (autovacuum, caches) hits both alike.
const ROUNDS: usize = 4;
const ORGS: i64 = 100;
const USERS_PER_ORG: i64 = 10;
const LOGS: i64 = 1_000_000;

struct Person {
    id: Uuid,
    org: Uuid,
    token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // An HTTP-only instance: the classification of the inserted logs is measured by
    // `scripts/bench-pipeline`, not here.
    let app = TestApp::spawn_with(|c| c.ai.worker_concurrency = 0).await?;
    let started = Instant::now();
    load(&app.db.owner).await?;
    println!(
        "loaded {LOGS} time logs, {} users, {ORGS} orgs in {:.1}s",
        ORGS * USERS_PER_ORG,
        started.elapsed().as_secs_f64()
    );
    let people: Vec<(Uuid, Uuid)> =
        sqlx::query_as("select user_id, org_id from memberships order by user_id")
            .fetch_all(&app.db.owner)
            .await?;
    let now = chrono::Utc::now().timestamp();
    let people: Arc<Vec<Person>> = Arc::new(
        people
            .into_iter()
            .map(|(id, org)| {
                let claims = json!({"sub": id, "role": "authenticated", "aud": "authenticated", "exp": now + 3600});
                Person { id, org, token: app.keys.sign(&claims).unwrap_or_default() }
            })
            .collect(),
    );
    let cache = Arc::new(SchemaCache::load(&app.db.requests, &["public".to_owned()]).await?);
    let http = reqwest::Client::new();
    let base = app.url("/rest/v1");
    let anon = app.keys.anon_key();

    println!("\n(a) a member's 50 newest logs with the project embedded");
    let list_query = |p: &Person| {
        format!(
            "select=id,comment,started_at,project:projects(name)&user_id=eq.{}&order=started_at.desc&limit=50",
            p.id
        )
    };
    let rest_a = {
        let (people, http, base, anon) = (people.clone(), http.clone(), base.clone(), anon.clone());
        move |i: usize| {
            let p = &people[i % people.len()];
            let request = http
                .get(format!("{base}/time_logs?{}", list_query(p)))
                .header("apikey", &anon)
                .header("authorization", format!("Bearer {}", p.token));
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        }
    };
    let direct_a = {
        let (people, cache, pool) = (people.clone(), cache.clone(), app.db.requests.clone());
        move |i: usize| {
            let p = &people[i % people.len()];
            let (sql, ctx) = prepare(&cache, Method::GET, &list_query(p), None, p);
            let pool = pool.clone();
            async move { direct(&pool, ctx, sql, true).await }
        }
    };
    compare(rest_a, direct_a).await;

    println!("\n(b) insert one log with return=representation");
    let body = |p: &Person| json!({"org_id": p.org, "user_id": p.id, "comment": "bench", "duration_minutes": 30});
    let rest_b = {
        let (people, http, base, anon) = (people.clone(), http.clone(), base.clone(), anon.clone());
        move |i: usize| {
            let p = &people[i % people.len()];
            let request = http
                .post(format!("{base}/time_logs"))
                .header("apikey", &anon)
                .header("authorization", format!("Bearer {}", p.token))
                .header("prefer", "return=representation")
                .json(&body(p));
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        }
    };
    let direct_b = {
        let (people, cache, pool) = (people.clone(), cache.clone(), app.db.requests.clone());
        move |i: usize| {
            let p = &people[i % people.len()];
            let (sql, ctx) = prepare(&cache, Method::POST, "", Some(body(p)), p);
            let pool = pool.clone();
            async move { direct(&pool, ctx, sql, false).await }
        }
    };
    compare(rest_b, direct_b).await;
    app.stop().await?;
    Ok(())
}

/// The SQL Tally builds for a request, and the caller's context.
fn prepare(
    cache: &SchemaCache,
    method: Method,
    query: &str,
    body: Option<Value>,
    p: &Person,
) -> (Sql, RequestContext) {
    let mut headers = HeaderMap::new();
    if method == Method::POST {
        headers.insert("prefer", "return=representation".parse().expect("a header"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let parsed = request::parse(
        method.clone(),
        "/time_logs",
        query,
        &headers,
        body.as_bytes(),
        &["public".to_owned()],
    )
    .expect("parses");
    let sql = if method == Method::GET {
        tally_rest::query::read::build(cache, &parsed, "time_logs")
    } else {
        tally_rest::query::write::build(cache, &parsed, "time_logs")
    }
    .expect("builds");
    let claims = json!({"sub": p.id, "role": "authenticated", "aud": "authenticated"});
    let Value::Object(map) = claims else {
        unreachable!("an object")
    };
    let ctx = RequestContext::from_claims(Claims(map))
        .expect("a role")
        .with_search_path("\"public\", extensions");
    (sql, ctx)
}

/// Runs the SQL as the caller, as the REST handler would, minus HTTP and parsing.
async fn direct(pool: &PgPool, ctx: RequestContext, sql: Sql, read_only: bool) -> bool {
    let result = async {
        let mut tx = if read_only {
            ctx.begin_read_only(pool).await?
        } else {
            ctx.begin(pool).await?
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text));
        for bind in sql.binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::TextArray(v) => query.bind(v),
                Bind::Int(v) => query.bind(v),
            };
        }
        query.fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    };
    result.await.is_ok()
}

async fn load(owner: &PgPool) -> anyhow::Result<()> {
    let users = ORGS * USERS_PER_ORG;
    let sql = format!(
        "insert into auth.users (email) select 'user' || g || '@bench.test' from generate_series(1, {users}) g;
         insert into organizations (name, slug) select 'Org ' || g, 'org-' || g from generate_series(1, {ORGS}) g;
         insert into memberships (org_id, user_id, role)
           select o.id, u.id, 'member' from
             (select id, row_number() over (order by id) - 1 as n from organizations) o
             join (select id, row_number() over (order by id) - 1 as n from auth.users) u on u.n / {USERS_PER_ORG} = o.n;
         insert into projects (org_id, name, code) select o.id, 'Project ' || p, 'P' || p from organizations o, generate_series(1, 10) p;
         alter table time_logs disable trigger time_logs_prepare;
         insert into time_logs (org_id, user_id, project_id, comment, started_at, ended_at, duration_minutes, status)
           select m.org_id, m.user_id, (select id from projects pr where pr.org_id = m.org_id order by id limit 1),
                  'log ' || g, now() - make_interval(mins => g), now() - make_interval(mins => g) + interval '30 minutes', 30, 'ready'
           from memberships m, generate_series(1, {per_user}) g;
         alter table time_logs enable trigger time_logs_prepare;",
        per_user = LOGS / users
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(owner)
        .await?;
    // Measure a settled table, not the autovacuum that a million fresh rows would start.
    sqlx::raw_sql("vacuum (analyze)").execute(owner).await?;
    Ok(())
}

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    failed: u64,
    elapsed: Duration,
}

impl Run {
    fn add(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.failed += other.failed;
        self.elapsed += other.elapsed;
    }
}

/// Warms both sides up, then runs them in alternating rounds and reports the totals.
async fn compare<R, RF, D, DF>(rest: R, direct: D)
where
    R: Fn(usize) -> RF + Clone + Send + 'static,
    RF: std::future::Future<Output = bool> + Send + 'static,
    D: Fn(usize) -> DF + Clone + Send + 'static,
    DF: std::future::Future<Output = bool> + Send + 'static,
{
    run(rest.clone()).await;
    run(direct.clone()).await;
    let (mut rest_total, mut direct_total) = (Run::default(), Run::default());
    for _ in 0..ROUNDS {
        rest_total.add(run(rest.clone()).await);
        direct_total.add(run(direct.clone()).await);
    }
    report(&mut rest_total, &mut direct_total);
}

async fn run<F, Fut>(request: F) -> Run
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let started = Instant::now();
    let mut set = JoinSet::new();
    for worker in 0..CONCURRENCY {
        let request = request.clone();
        set.spawn(async move {
            let (mut latencies, mut failed, mut i) = (Vec::new(), 0u64, worker);
            while started.elapsed() < ROUND {
                let t = Instant::now();
                if request(i).await {
                    latencies.push(t.elapsed());
                } else {
                    failed += 1;
                }
                i += CONCURRENCY;
            }
            (latencies, failed)
        });
    }
    let mut all = Run {
        latencies: Vec::new(),
        failed: 0,
        elapsed: Duration::ZERO,
    };
    while let Some(Ok((latencies, failed))) = set.join_next().await {
        all.latencies.extend(latencies);
        all.failed += failed;
    }
    all.elapsed = started.elapsed();
    all
}

fn report(rest: &mut Run, direct: &mut Run) {
    rest.latencies.sort();
    direct.latencies.sort();
    let line = |name: &str, r: &Run| {
        let pct = |p: f64| {
            r.latencies
                .get(
                    ((r.latencies.len() as f64 * p) as usize)
                        .min(r.latencies.len().saturating_sub(1)),
                )
                .copied()
                .unwrap_or_default()
        };
        let rate = r.latencies.len() as f64 / r.elapsed.as_secs_f64();
        println!(
            "  {name:<12} {rate:9.1} req/s   p50 {:7.2} ms   p99 {:7.2} ms   ({} ok, {} failed)",
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            r.latencies.len(),
            r.failed
        );
        rate
    };
    let a = line("/rest/v1", rest);
    let b = line("direct SQL", direct);
    println!("  ratio REST / direct = {:.2}", a / b.max(f64::EPSILON));
}
