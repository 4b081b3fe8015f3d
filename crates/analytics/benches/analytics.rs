//! Analytics phase 2 into the Parquet lake: the initial copy of 1,000,000 time logs (100 orgs,
//! 1,000 people) — time, rows per second and this process's peak memory (it runs the
//! replicator) — then the steady lag while 500 row changes per second (70 % inserts, 25 %
//! updates, 5 % soft deletes) stream for 60 s: the age of the newest stored commit, sampled
//! every 250 ms. Then the same logs into ClickHouse (the engine of chDB behind the test-only
//! HTTP front, or the server `TALLY_TEST_CLICKHOUSE_URL` names): the copy's time, and a
//! 12-week ad-hoc query (minutes by week, one org and all orgs) from ClickHouse's current view
//! next to the same from PostgreSQL's raw logs. Last, the WAL that logical decoding adds: one
//! workload (a bulk insert, a steady mix of inserts, updates and soft deletes, hard deletes) on
//! a scratch cluster at `wal_level=replica`, then again at `wal_level=logical`, WAL bytes
//! compared. Run with `scripts/bench-analytics` (release build; `scripts/bench-analytics wal`
//! for the last part only).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use object_store::{ObjectStore, local::LocalFileSystem};
use tally_analytics::{
    clickhouse::{ClickHouse, ClickHouseSettings},
    lake::Lake,
    progress,
    replicator::{Destination, Options, Replicator},
};
use tally_testkit::{
    ClickHouseServer, ScratchCluster, TestDb,
    latency::percentile_ms,
    memory::{peak_mib, reset_peak, status_mib},
};
use tokio::sync::watch;

const ORGS: i64 = 100;
const USERS_PER_ORG: i64 = 10;
const LOGS_PER_USER: i64 = 1_000;
const WRITES_PER_SECOND: u64 = 500;
const STEADY: Duration = Duration::from_secs(60);
const QUERY_RUNS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var("BENCH_ONLY").as_deref() == Ok("wal") {
        return wal_overhead().await;
    }
    let db = TestDb::new().await?;
    let started = Instant::now();
    load(&db).await?;
    let logs = ORGS * USERS_PER_ORG * LOGS_PER_USER;
    println!(
        "loaded {logs} logs of {} people in {ORGS} orgs in {:.1} s",
        ORGS * USERS_PER_ORG,
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path())?);
    let replicator = Replicator::new(
        db.owner.clone(),
        db.owner_url().to_owned(),
        Destination::Lake(Lake::new(store)),
        Options::default(),
    );
    let (stop, stopped) = watch::channel(false);
    reset_peak();
    let before = status_mib("VmRSS");
    let started = Instant::now();
    let running = tokio::spawn(replicator.run(stopped));
    loop {
        if progress::load(&db.owner, "lake")
            .await?
            .is_some_and(|p| p.copied)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let copy = started.elapsed();
    let bytes = dir_bytes(dir.path());
    println!(
        "\ninitial copy into the lake: {logs} logs (and the other published tables) in {:.1} s \
         — {:.0} logs/s; {:.1} MiB of Parquet; peak memory {:.0} MiB (was {before:.0} MiB \
         before the copy)",
        copy.as_secs_f64(),
        logs as f64 / copy.as_secs_f64(),
        bytes as f64 / 1_048_576.0,
        peak_mib()
    );

    // Steady load: every 20 ms a transaction of 10 row changes (7 inserts, 2 updates, 1 soft
    // delete) — 500 changes per second.
    let writer = {
        let pool = db.owner.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let until = Instant::now() + STEADY;
            let mut n = 0u64;
            while Instant::now() < until {
                tick.tick().await;
                sqlx::raw_sql(
                    "begin;
                     insert into time_logs (org_id, user_id, comment, duration_minutes, status)
                       select org_id, user_id, 'steady', 30, 'ready'
                         from memberships order by random() limit 7;
                     update time_logs set duration_minutes = duration_minutes + 1,
                                          ended_at = ended_at + interval '1 minute'
                      where id in (select id from time_logs tablesample system (0.01) limit 2);
                     update time_logs set deleted_at = now()
                      where id in (select id from time_logs tablesample system (0.01)
                                    where deleted_at is null limit 1);
                     commit;",
                )
                .execute(&pool)
                .await?;
                n += 10;
            }
            anyhow::Ok(n)
        })
    };
    let mut lags = Vec::new();
    let started = Instant::now();
    while !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if started.elapsed() < Duration::from_secs(5) {
            continue; // the first seconds: the stream starting
        }
        let lag: Option<f64> = sqlx::query_scalar(
            "select extract(epoch from clock_timestamp() - committed_at)::float8
               from private.analytics_progress where destination = 'lake'",
        )
        .fetch_one(&db.owner)
        .await?;
        lags.push(Duration::from_secs_f64(lag.unwrap_or(0.0).max(0.0)));
    }
    let written = writer.await??;
    lags.sort();
    println!(
        "\nsteady stream: {written} row changes in {:.0} s ({:.0}/s); lag (age of the newest \
         stored commit while writes go on, {} samples): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        STEADY.as_secs_f64(),
        written as f64 / STEADY.as_secs_f64(),
        lags.len(),
        percentile_ms(&lags, 0.50),
        percentile_ms(&lags, 0.95),
        lags.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    println!("(target: {WRITES_PER_SECOND} writes/s with p95 ≤ 2 s; copy of 1M ≤ 30 s; ≤ 200 MB)");
    let _ = stop.send(true);
    running.await?;

    clickhouse(&db).await?;
    drop(db);
    wal_overhead().await
}

/// The WAL of one workload at `wal_level=replica` and at `wal_level=logical` (no slot: what
/// the setting and the publication's replica identities add, not what a slot retains).
async fn wal_overhead() -> anyhow::Result<()> {
    let cluster = ScratchCluster::start(&["wal_level=replica"]).await?;
    let replica = wal_of_workload(&cluster.migrated_database("replica").await?).await?;
    let cluster = cluster.restart(&["wal_level=logical"]).await?;
    let logical = wal_of_workload(&cluster.migrated_database("logical").await?).await?;
    cluster.stop().await?;
    println!(
        "\nWAL written, wal_level=replica → logical (same workload, checkpoint before each step):"
    );
    for ((step, r), (_, l)) in replica.iter().zip(&logical) {
        println!(
            "  {step}: {:.1} MiB → {:.1} MiB ({:+.0} %)",
            *r as f64 / 1_048_576.0,
            *l as f64 / 1_048_576.0,
            (*l as f64 / *r as f64 - 1.0) * 100.0
        );
    }
    Ok(())
}

/// WAL bytes of each step of a fixed workload on the migrated database at `url`.
async fn wal_of_workload(url: &str) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    sqlx::raw_sql(
        "insert into auth.users (email)
           select 'user' || g || '@wal.test' from generate_series(1, 100) g;
         insert into organizations (name, slug) select 'Org ' || g, 'org-' || g
           from generate_series(1, 10) g;
         insert into memberships (org_id, user_id, role)
           select o.id, u.id, 'member'
           from (select id, row_number() over (order by id) - 1 as n from organizations) o
           join (select id, row_number() over (order by id) - 1 as n from auth.users) u
             on u.n / 10 = o.n;",
    )
    .execute(&pool)
    .await?;
    let bulk = "alter table time_logs disable trigger time_logs_prepare;
         insert into time_logs (org_id, user_id, comment, started_at, ended_at,
                                duration_minutes, status)
           select m.org_id, m.user_id, 'log ' || g, now() - g * interval '1 hour',
                  now() - g * interval '1 hour' + interval '30 minutes', 30, 'ready'
           from memberships m cross join generate_series(1, 1000) g;
         alter table time_logs enable trigger time_logs_prepare;";
    // 1,000 transactions of 7 inserts, 2 updates and 1 soft delete each.
    let steady = (0..1_000)
        .map(|i| {
            format!(
                "begin;
                 insert into time_logs (org_id, user_id, comment, duration_minutes, status)
                   select org_id, user_id, 'steady', 30, 'ready'
                     from memberships order by user_id offset {} limit 7;
                 update time_logs set duration_minutes = duration_minutes + 1,
                                      ended_at = ended_at + interval '1 minute'
                  where id in (select id from time_logs order by id offset {} limit 2);
                 update time_logs set deleted_at = now()
                  where id in (select id from time_logs order by id offset {} limit 1);
                 commit;",
                i % 93,
                i * 37 % 100_000,
                i * 91 % 100_000
            )
        })
        .collect::<String>();
    let hard =
        "delete from time_logs where id in (select id from time_logs order by id limit 20000)";
    let mut steps = Vec::new();
    for (step, sql) in [
        ("bulk insert of 100,000 logs", bulk.to_owned()),
        ("10,000 steady changes (70 % inserts)", steady),
        ("hard delete of 20,000 logs", hard.to_owned()),
    ] {
        sqlx::raw_sql("checkpoint").execute(&pool).await?;
        let before: String = sqlx::query_scalar("select pg_current_wal_insert_lsn()::text")
            .fetch_one(&pool)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await?;
        let bytes: i64 = sqlx::query_scalar(
            "select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::int8",
        )
        .bind(before)
        .fetch_one(&pool)
        .await?;
        steps.push((step, u64::try_from(bytes)?));
    }
    pool.close().await;
    Ok(steps)
}

/// The copy into ClickHouse, then the 12-week query there and in PostgreSQL.
async fn clickhouse(db: &TestDb) -> anyhow::Result<()> {
    let server = ClickHouseServer::start().await?;
    let database = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let ch = ClickHouse::new(
        &ClickHouseSettings {
            url: server.url.clone(),
            database,
            user: None,
            password: None,
        },
        db.owner.clone(),
    );
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let running = tokio::spawn(
        Replicator::new(
            db.owner.clone(),
            db.owner_url().to_owned(),
            Destination::ClickHouse(Box::new(ch.clone())),
            Options::default(),
        )
        .run(stopped),
    );
    loop {
        if progress::load(&db.owner, "clickhouse")
            .await?
            .is_some_and(|p| p.copied)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let copy = started.elapsed();
    let rows: i64 = sqlx::query_scalar("select count(*) from time_logs")
        .fetch_one(&db.owner)
        .await?;
    println!(
        "\ninitial copy into ClickHouse: {rows} logs in {:.1} s — {:.0} logs/s",
        copy.as_secs_f64(),
        rows as f64 / copy.as_secs_f64()
    );
    let _ = stop.send(true);
    running.await?;

    let org: uuid::Uuid = sqlx::query_scalar("select org_id from time_logs limit 1")
        .fetch_one(&db.owner)
        .await?;
    let logs = ch.table("time_logs__current");
    for (what, ch_sql, pg_sql) in [
        (
            "one org, minutes by week",
            format!(
                "SELECT toStartOfWeek(started_at) AS week, sum(duration_minutes) FROM {logs} \
                 WHERE org_id = '{org}' AND deleted_at IS NULL \
                   AND started_at >= now() - INTERVAL 12 WEEK GROUP BY week ORDER BY week"
            ),
            format!(
                "select date_trunc('week', started_at) as week, sum(duration_minutes) \
                 from time_logs where org_id = '{org}' and deleted_at is null \
                   and started_at >= now() - interval '12 weeks' group by week order by week"
            ),
        ),
        (
            "all orgs, minutes by org and week",
            format!(
                "SELECT org_id, toStartOfWeek(started_at) AS week, sum(duration_minutes) \
                 FROM {logs} WHERE deleted_at IS NULL \
                   AND started_at >= now() - INTERVAL 12 WEEK GROUP BY org_id, week"
            ),
            "select org_id, date_trunc('week', started_at) as week, sum(duration_minutes) \
             from time_logs where deleted_at is null \
               and started_at >= now() - interval '12 weeks' group by org_id, week"
                .to_owned(),
        ),
    ] {
        let mut from_ch = Vec::new();
        let mut from_pg = Vec::new();
        for _ in 0..QUERY_RUNS {
            let started = Instant::now();
            ch.client()
                .query(&ch_sql)
                .fetch_bytes("TabSeparated")?
                .collect()
                .await?;
            from_ch.push(started.elapsed());
            let started = Instant::now();
            sqlx::query(sqlx::AssertSqlSafe(pg_sql.clone()))
                .fetch_all(&db.owner)
                .await?;
            from_pg.push(started.elapsed());
        }
        from_ch.sort();
        from_pg.sort();
        println!(
            "12 weeks, {what} ({QUERY_RUNS} runs): ClickHouse p50 {:.1} ms, p95 {:.1} ms; \
             PostgreSQL raw logs p50 {:.1} ms, p95 {:.1} ms",
            percentile_ms(&from_ch, 0.50),
            percentile_ms(&from_ch, 0.95),
            percentile_ms(&from_pg, 0.50),
            percentile_ms(&from_pg, 0.95)
        );
    }
    Ok(())
}

/// 100 orgs of 10 people with 1,000 logs each over the last year, 15 to 180 minutes each.
async fn load(db: &TestDb) -> anyhow::Result<()> {
    let users = ORGS * USERS_PER_ORG;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (email)
           select 'user' || g || '@bench.test' from generate_series(1, {users}) g;
         insert into organizations (name, slug) select 'Org ' || g, 'org-' || g
           from generate_series(1, {ORGS}) g;
         insert into memberships (org_id, user_id, role)
           select o.id, u.id, 'member'
           from (select id, row_number() over (order by id) - 1 as n from organizations) o
           join (select id, row_number() over (order by id) - 1 as n from auth.users) u
             on u.n / {USERS_PER_ORG} = o.n;
         alter table time_logs disable trigger time_logs_prepare;
         insert into time_logs (org_id, user_id, comment, started_at, ended_at,
                                duration_minutes, status)
           select m.org_id, m.user_id, 'log ' || g, x.start,
                  x.start + x.minutes * interval '1 minute', x.minutes, 'ready'
           from memberships m cross join generate_series(1, {LOGS_PER_USER}) g
           cross join lateral (
             select (current_date - (g * 365 / {LOGS_PER_USER})::int)::timestamptz
                      + interval '7 hours' + ((g * 37) % 660) * interval '1 minute' as start,
                    15 + (g * 53) % 166 as minutes) x;
         alter table time_logs enable trigger time_logs_prepare;"
    )))
    .execute(&db.owner)
    .await?;
    sqlx::raw_sql("vacuum (analyze) time_logs")
        .execute(&db.owner)
        .await?;
    Ok(())
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
