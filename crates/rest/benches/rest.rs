//! REST over 1,000,000 time logs in 100 orgs of unequal size — one holds half the logs and
//! 100 people, the other 99 hold 5,056 logs and 9 people each; every org has an owner, an
//! admin, a manager leading a team of five, a viewer and members. Concurrent clients on
//! loopback (a) list a member's 50 newest logs with the project embedded, and (b) insert one
//! log with `return=representation` — through `/rest/v1`, and side by side the same SQL over
//! the same pool with the same role and claims; then (c) the newest 50 as row-level security
//! decides, for a member and an admin of the big org and of a small one, unfiltered and with
//! the filter a client adds (`user_id=eq.`/`org_id=eq.`): the plan, the latency of the SQL as
//! that person one call at a time, and `/rest/v1` next to the same rows read by index without
//! row-level security. Prints requests/s, p50, p99 and the ratios. The server runs no workers
//! (`TALLY_WORKER_CONCURRENCY=0`, as an HTTP-only instance would), so classifying the inserted
//! logs does not share its cores. Run with `scripts/bench-rest` (release build).

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
/// Rounds of section (c), shorter: it compares eight cases.
const LIST_ROUND: Duration = Duration::from_secs(2);
const LIST_ROUNDS: usize = 2;
/// Sequential calls timed per case of section (c).
const LATENCY_CALLS: usize = 200;
const ORGS: i64 = 100;
/// People of the big org, and of each other org.
const BIG_ORG_PEOPLE: i64 = 100;
const ORG_PEOPLE: i64 = 9;
/// Logs of the big org, and of each other org (about 1,000,000 in all).
const BIG_ORG_LOGS: i64 = 500_000;
const ORG_LOGS: i64 = 5_056;

#[derive(Clone)]
struct Person {
    id: Uuid,
    org: Uuid,
    role: String,
    big_org: bool,
    token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // An HTTP-only instance: the classification of the inserted logs is measured by
    // `scripts/bench-pipeline`, not here.
    let app = TestApp::spawn_with(|c| c.ai.worker_concurrency = 0).await?;
    let started = Instant::now();
    load(&app.db.owner).await?;
    let logs: i64 = sqlx::query_scalar("select count(*) from time_logs")
        .fetch_one(&app.db.owner)
        .await?;
    println!(
        "loaded {logs} time logs, {} people, {ORGS} orgs in {:.1}s",
        BIG_ORG_PEOPLE + (ORGS - 1) * ORG_PEOPLE,
        started.elapsed().as_secs_f64()
    );
    let rows: Vec<(Uuid, Uuid, String, bool)> = sqlx::query_as(
        "select m.user_id, m.org_id, m.role::text, m.org_id = (select min(id::text)::uuid from organizations) \
         from memberships m order by m.user_id",
    )
    .fetch_all(&app.db.owner)
    .await?;
    let now = chrono::Utc::now().timestamp();
    let everyone: Vec<Person> = rows
        .into_iter()
        .map(|(id, org, role, big_org)| {
            let claims = json!({"sub": id, "role": "authenticated", "aud": "authenticated", "exp": now + 3600});
            Person { id, org, role, big_org, token: app.keys.sign(&claims).unwrap_or_default() }
        })
        .collect();
    let people: Arc<Vec<Person>> = Arc::new(
        everyone
            .iter()
            .filter(|p| p.role == "member")
            .cloned()
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

    println!("\n(c) the newest 50 logs with the project embedded, as row-level security decides");
    let owner = PgPool::connect(app.db.owner_url()).await?;
    for (big_org, role) in [
        (true, "member"),
        (true, "admin"),
        (false, "member"),
        (false, "admin"),
    ] {
        let Some(p) = everyone
            .iter()
            .find(|p| p.big_org == big_org && p.role == role)
        else {
            continue;
        };
        let filter = if role == "admin" {
            format!("org_id=eq.{}", p.org)
        } else {
            format!("user_id=eq.{}", p.id)
        };
        for filtered in [false, true] {
            let query = format!(
                "select=id,comment,started_at,project:projects(name)&order=started_at.desc&limit=50{}",
                if filtered {
                    format!("&{filter}")
                } else {
                    String::new()
                }
            );
            println!(
                "\n  {} of the {} org, {}:",
                role,
                if big_org { "big" } else { "small" },
                if filtered {
                    filter.split('=').next().unwrap_or_default()
                } else {
                    "unfiltered"
                }
            );
            list_reads(&app, &cache, &owner, p, &query).await?;
        }
    }
    app.stop().await?;
    Ok(())
}

/// One case of section (c): the plan, the latency as the person, and `/rest/v1` next to the
/// same rows read by index without row-level security.
async fn list_reads(
    app: &TestApp,
    cache: &Arc<SchemaCache>,
    owner: &PgPool,
    p: &Person,
    query: &str,
) -> anyhow::Result<()> {
    let (sql, ctx) = prepare(cache, Method::GET, query, None, p);
    print_plan(&app.db.requests, &ctx, &sql).await?;
    let mut latencies = Vec::with_capacity(LATENCY_CALLS);
    for _ in 0..LATENCY_CALLS {
        let (sql, ctx) = prepare(cache, Method::GET, query, None, p);
        let t = Instant::now();
        if direct(&app.db.requests, ctx, sql, true).await {
            latencies.push(t.elapsed());
        }
    }
    latencies.sort();
    let ms = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "    as the person, one at a time: p50 {:.2} ms, p99 {:.2} ms ({} calls)",
        ms(0.5),
        ms(0.99),
        latencies.len()
    );
    let rest = {
        let (http, url, anon, token) = (
            reqwest::Client::new(),
            app.url(&format!("/rest/v1/time_logs?{query}")),
            app.keys.anon_key(),
            p.token.clone(),
        );
        move |_: usize| {
            let request = http
                .get(&url)
                .header("apikey", &anon)
                .header("authorization", format!("Bearer {token}"));
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        }
    };
    // What the caller may read, written out and read by the table's owner (no RLS) by index:
    // an admin's org, a member's own logs.
    let by_index = {
        let (owner, org, user) = (owner.clone(), p.org, p.id);
        let whose = if p.role == "admin" {
            "l.org_id = $1"
        } else {
            "l.org_id = $1 and l.user_id = $2"
        };
        let sql = format!(
            "select json_agg(t) from (select l.id, l.comment, l.started_at, \
               json_build_object('name', pr.name) as project \
             from time_logs l left join projects pr on pr.id = l.project_id \
             where {whose} order by l.started_at desc limit 50) t"
        );
        move |_: usize| {
            let (owner, sql) = (owner.clone(), sql.clone());
            async move {
                sqlx::query_scalar::<_, Option<Value>>(sqlx::AssertSqlSafe(sql))
                    .bind(org)
                    .bind(user)
                    .fetch_one(&owner)
                    .await
                    .is_ok()
            }
        }
    };
    compare_rounds(rest, by_index, LIST_ROUND, LIST_ROUNDS, "by index, no RLS").await;
    Ok(())
}

/// Prints the lines of the statement's plan, as the person, that read `time_logs`.
async fn print_plan(pool: &PgPool, ctx: &RequestContext, sql: &Sql) -> anyhow::Result<()> {
    let mut tx = ctx.begin_read_only(pool).await?;
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
        "explain (costs off) {}",
        sql.text
    )));
    for bind in sql.binds.clone() {
        query = match bind {
            Bind::Text(v) => query.bind(v),
            Bind::TextArray(v) => query.bind(v),
            Bind::Int(v) => query.bind(v),
        };
    }
    let plan = query.fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    for line in plan
        .iter()
        .filter(|l| l.contains("time_logs") || l.contains("Bitmap") || l.contains("Sort Key"))
    {
        println!("    plan: {}", line.trim_end());
    }
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
        .with_search_path("\"public\", \"public\", \"extensions\"");
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
    let people = BIG_ORG_PEOPLE + (ORGS - 1) * ORG_PEOPLE;
    // Org 0 (the first by id) is the big one; people take their place in their org's order:
    // 0 owner, 1 admin, 2 manager (leading 4 to 8), 3 viewer (who logs nothing), the rest members.
    let sql = format!(
        "insert into auth.users (email) select 'user' || g || '@bench.test' from generate_series(1, {people}) g;
         insert into organizations (name, slug) select 'Org ' || g, 'org-' || g from generate_series(1, {ORGS}) g;
         create temp table o as select id, row_number() over (order by id) - 1 as n from organizations;
         create temp table u as select id, row_number() over (order by id) - 1 as n from auth.users;
         create temp table m as
           select o.id as org_id, o.n = 0 as big, u.id as user_id,
                  case when o.n = 0 then u.n else (u.n - {BIG_ORG_PEOPLE}) % {ORG_PEOPLE} end as pos
           from u join o on (o.n = 0 and u.n < {BIG_ORG_PEOPLE})
                         or (o.n > 0 and u.n >= {BIG_ORG_PEOPLE} and (u.n - {BIG_ORG_PEOPLE}) / {ORG_PEOPLE} = o.n - 1);
         alter table memberships disable trigger user;
         insert into memberships (org_id, user_id, role)
           select org_id, user_id, (case pos when 0 then 'owner' when 1 then 'admin' when 2 then 'manager'
                                             when 3 then 'viewer' else 'member' end)::org_role from m;
         alter table memberships enable trigger user;
         insert into teams (org_id, name) select id, 'Team' from organizations;
         insert into team_members (org_id, team_id, user_id, is_lead)
           select m.org_id, t.id, m.user_id, m.pos = 2 from m join teams t on t.org_id = m.org_id
           where m.pos in (2, 4, 5, 6, 7, 8);
         insert into projects (org_id, name, code) select o.id, 'Project ' || p, 'P' || p from organizations o, generate_series(1, 10) p;
         alter table time_logs disable trigger user;
         insert into time_logs (org_id, user_id, project_id, comment, started_at, ended_at, duration_minutes, status)
           select m.org_id, m.user_id, (select id from projects pr where pr.org_id = m.org_id order by id limit 1),
                  'log ' || g, now() - make_interval(mins => g * 97 + abs(hashtext(m.user_id::text)) % 1000),
                  now() - make_interval(mins => g * 97 + abs(hashtext(m.user_id::text)) % 1000) + interval '30 minutes',
                  30, 'ready'
           from m, generate_series(1, case when m.big then {BIG_ORG_LOGS} / ({BIG_ORG_PEOPLE} - 1)
                                           else {ORG_LOGS} / ({ORG_PEOPLE} - 1) end) g
           where m.pos <> 3;
         alter table time_logs enable trigger user;"
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
    compare_rounds(rest, direct, ROUND, ROUNDS, "direct SQL").await;
}

/// [`compare`] with `rounds` rounds of `round` each, the second side called `other`.
async fn compare_rounds<R, RF, D, DF>(
    rest: R,
    direct: D,
    round: Duration,
    rounds: usize,
    other: &str,
) where
    R: Fn(usize) -> RF + Clone + Send + 'static,
    RF: std::future::Future<Output = bool> + Send + 'static,
    D: Fn(usize) -> DF + Clone + Send + 'static,
    DF: std::future::Future<Output = bool> + Send + 'static,
{
    run(rest.clone(), round).await;
    run(direct.clone(), round).await;
    let (mut rest_total, mut direct_total) = (Run::default(), Run::default());
    for _ in 0..rounds {
        rest_total.add(run(rest.clone(), round).await);
        direct_total.add(run(direct.clone(), round).await);
    }
    report(&mut rest_total, &mut direct_total, other);
}

async fn run<F, Fut>(request: F, round: Duration) -> Run
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
            while started.elapsed() < round {
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

fn report(rest: &mut Run, direct: &mut Run, other: &str) {
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
            "    {name:<18} {rate:9.1} req/s   p50 {:7.2} ms   p99 {:7.2} ms   ({} ok, {} failed)",
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            r.latencies.len(),
            r.failed
        );
        rate
    };
    let a = line("/rest/v1", rest);
    let b = line(other, direct);
    println!("    ratio REST / {other} = {:.2}", a / b.max(f64::EPSILON));
}
