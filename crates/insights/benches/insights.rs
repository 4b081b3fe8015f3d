//! Insights at scale: 1,000,000 time logs (100 orgs in four time zones, 1,000 people, a year).
//! Prints the full rollup's time (day summaries with their weekly/monthly periods, risk scores), the
//! incremental rollup after 10,000 single-log edits, an org's weekly summaries for 12 weeks
//! read through `/rest/v1` next to the same numbers computed from the raw logs over the same
//! pool and role, and exporting 1,000,000 logs of one org to CSV and to Parquet (time and the
//! peak memory of this process, which runs the server). Run with `scripts/bench-insights`
//! (release build).

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use tally_core::{Claims, RequestContext};
use tally_testkit::{
    TestApp,
    latency::percentile_ms,
    memory::{peak_mib, reset_peak, status_mib},
};
use tokio::task::JoinSet;
use uuid::Uuid;

const ORGS: i64 = 100;
const USERS_PER_ORG: i64 = 10;
const LOGS_PER_USER: i64 = 1_000;
const EDITS: usize = 10_000;
const EDITORS: usize = 8;
const DASHBOARD_CALLS: usize = 200;
/// The export org: 100 people with 10,000 logs each over the same year.
const EXPORT_USERS: i64 = 100;
const EXPORT_LOGS_PER_USER: i64 = 10_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| c.ai.worker_concurrency = 0).await?;
    let owner = &app.db.owner;
    let today = Utc::now().date_naive();
    let from = today.checked_sub_days(Days::new(365)).unwrap_or(today);

    let started = Instant::now();
    load(owner).await?;
    println!(
        "loaded {} logs of {} people in {ORGS} orgs in {:.1} s",
        ORGS * USERS_PER_ORG * LOGS_PER_USER,
        ORGS * USERS_PER_ORG,
        started.elapsed().as_secs_f64()
    );

    // The full rollup, step by step (what `insights-rollup` does for every org).
    let pool = &app.db.requests;
    sqlx::query("truncate private.dirty_days")
        .execute(owner)
        .await?;
    let (days, rollup) = timed_scalar(
        pool,
        "select private.rollup_range(null, $1, $2)",
        from,
        today,
    )
    .await?;
    let (_, rebuild) = timed(pool, "select private.refresh_summaries()").await?;
    let (_, scores) = timed_scalar(
        pool,
        "select count(*)::int from (select private.score_range(null, $1, $2)) s",
        from,
        today,
    )
    .await?;
    let weeks: i64 = sqlx::query_scalar("select count(*) from risk_scores")
        .fetch_one(owner)
        .await?;
    println!(
        "\nfull rollup of a year: {days} person-days with their weekly and monthly periods in \
         {:.1} s ({:.0} person-days/s); {weeks} person-weeks scored in {:.1} s — {:.1} s in all; \
         every period rebuilt whole (the repair) in {:.1} s",
        rollup.as_secs_f64(),
        f64::from(days) / rollup.as_secs_f64(),
        scores.as_secs_f64(),
        (rollup + scores).as_secs_f64(),
        rebuild.as_secs_f64()
    );

    // 10,000 edits, one statement each from 8 connections, then the incremental rollup.
    let ids: Vec<Uuid> =
        sqlx::query_scalar("select id from time_logs tablesample system (2) limit $1")
            .bind(EDITS as i64)
            .fetch_all(owner)
            .await?;
    let started = Instant::now();
    edit(owner, ids).await?;
    let edits = started.elapsed();
    let (dirty, orgs, people, days): (i64, Vec<Uuid>, Vec<Uuid>, Vec<NaiveDate>) = sqlx::query_as(
        "select count(*), array_agg(org_id), array_agg(user_id), array_agg(day) \
             from private.dirty_days",
    )
    .fetch_one(owner)
    .await?;
    let started = Instant::now();
    let recomputed = tally_insights::rollup::dirty(pool).await?;
    let incremental = started.elapsed();
    // The periods' share: the same periods recomputed again on their own.
    let started = Instant::now();
    sqlx::query("select private.refresh_periods($1, $2, $3)")
        .bind(&orgs)
        .bind(&people)
        .bind(&days)
        .execute(owner)
        .await?;
    let periods = started.elapsed();
    println!(
        "incremental: {EDITS} edits ({:.0} edits/s with the dirty-day triggers) marked {dirty} \
         person-days; recomputed {recomputed} with their periods in {:.2} s, of which the \
         periods {:.2} s",
        EDITS as f64 / edits.as_secs_f64(),
        incremental.as_secs_f64(),
        periods.as_secs_f64()
    );

    dashboard(&app, today).await?;
    export(&app, today, from).await?;
    app.stop().await?;
    Ok(())
}

async fn load(owner: &PgPool) -> anyhow::Result<()> {
    let users = ORGS * USERS_PER_ORG;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (email) select 'user' || g || '@bench.test' from generate_series(1, {users}) g;
         insert into organizations (name, slug, timezone)
           select 'Org ' || g, 'org-' || g,
                  (array['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo'])[1 + g % 4]
           from generate_series(1, {ORGS}) g;
         insert into memberships (org_id, user_id, role)
           select o.id, u.id, (case when u.n % {USERS_PER_ORG} = 0 then 'admin' else 'member' end)::org_role
           from (select id, row_number() over (order by id) - 1 as n from organizations) o
           join (select id, row_number() over (order by id) - 1 as n from auth.users) u
             on u.n / {USERS_PER_ORG} = o.n;
         insert into teams (org_id, name) select o.id, t from organizations o, unnest(array['Web', 'Data']) t;
         insert into team_members (org_id, team_id, user_id)
           select m.org_id, t.id, m.user_id
           from (select org_id, user_id, row_number() over (partition by org_id order by user_id) as n
                 from memberships) m
           join teams t on t.org_id = m.org_id and t.name = case when m.n <= 5 then 'Web' else 'Data' end;
         insert into projects (org_id, name, code, billable)
           select o.id, 'Project ' || p, 'P' || p, p % 2 = 0 from organizations o, generate_series(1, 10) p;"
    )))
    .execute(owner)
    .await?;
    let members: Vec<(Uuid, Uuid)> =
        sqlx::query_as("select org_id, user_id from memberships order by org_id, user_id")
            .fetch_all(owner)
            .await?;
    insert_logs(owner, members, LOGS_PER_USER).await?;
    sqlx::raw_sql("vacuum (analyze)").execute(owner).await?;
    Ok(())
}

/// `per_person` ready logs for each (org, person), spread over the last 365 days in the
/// mornings and afternoons (UTC), 15 to 180 minutes, across projects and work modes.
async fn insert_logs(
    owner: &PgPool,
    people: Vec<(Uuid, Uuid)>,
    per_person: i64,
) -> anyhow::Result<()> {
    sqlx::raw_sql("alter table time_logs disable trigger time_logs_prepare")
        .execute(owner)
        .await?;
    for chunk in people.chunks(100) {
        let (orgs, users): (Vec<Uuid>, Vec<Uuid>) = chunk.iter().copied().unzip();
        sqlx::query(
            "with modes as (select array_agg(id order by key) as a from work_modes where org_id is null),
                  projects as (select org_id, array_agg(id order by id) as a from projects group by org_id),
                  people as (select * from unnest($1::uuid[], $2::uuid[]) as p (org_id, user_id))
             insert into time_logs (org_id, user_id, project_id, work_mode_id, comment, started_at,
                                    ended_at, duration_minutes, status, billable)
             select p.org_id, p.user_id, pr.a[1 + (g * 7 + length(p.user_id::text)) % 10],
                    modes.a[1 + g % cardinality(modes.a)], 'log ' || g, x.start,
                    x.start + x.minutes * interval '1 minute', x.minutes, 'ready', g % 3 = 0
             from people p join projects pr using (org_id) cross join modes
             cross join generate_series(1, $3) g
             cross join lateral (
               select ((current_date - (g * 365 / $3)::int)::timestamp + interval '7 hours'
                       + ((g * 37) % 660) * interval '1 minute') at time zone 'UTC' as start,
                      15 + (g * 53) % 166 as minutes) x",
        )
        .bind(orgs)
        .bind(users)
        .bind(per_person)
        .execute(owner)
        .await?;
    }
    sqlx::raw_sql("alter table time_logs enable trigger time_logs_prepare")
        .execute(owner)
        .await?;
    Ok(())
}

async fn timed(pool: &PgPool, sql: &'static str) -> anyhow::Result<((), Duration)> {
    let started = Instant::now();
    let mut tx = RequestContext::service().begin(pool).await?;
    sqlx::query(sql).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(((), started.elapsed()))
}

async fn timed_scalar(
    pool: &PgPool,
    sql: &'static str,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<(i32, Duration)> {
    let started = Instant::now();
    let mut tx = RequestContext::service().begin(pool).await?;
    let n: i32 = sqlx::query_scalar(sql)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((n, started.elapsed()))
}

/// Moves each log by a few hours (a third of them to the next day) and changes its length.
async fn edit(owner: &PgPool, ids: Vec<Uuid>) -> anyhow::Result<()> {
    let mut editors = JoinSet::new();
    for (n, chunk) in ids.chunks(ids.len().div_ceil(EDITORS)).enumerate() {
        let (owner, chunk) = (owner.clone(), chunk.to_vec());
        editors.spawn(async move {
            for (i, id) in chunk.into_iter().enumerate() {
                let hours = if (i + n) % 3 == 0 { 20 } else { 2 };
                sqlx::query(
                    "update time_logs set started_at = started_at + make_interval(hours => $2),
                       ended_at = ended_at + make_interval(hours => $2, mins => 15),
                       duration_minutes = duration_minutes + 15, version = version + 1
                     where id = $1 and duration_minutes <= 1400",
                )
                .bind(id)
                .bind(hours)
                .execute(&owner)
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = editors.join_next().await {
        done??;
    }
    Ok(())
}

fn report(name: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let total: Duration = latencies.iter().sum();
    println!(
        "  {name:<44} p50 {:>7.2} ms  p99 {:>7.2} ms  ({:.0} req/s one at a time)",
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99),
        latencies.len() as f64 / total.as_secs_f64()
    );
}

/// An admin's dashboard: the org's person weeks for 12 weeks, through `/rest/v1` (the view
/// over the materialized weekly summaries) and, beside it, the same totals computed from the
/// raw logs in the admin's transaction.
async fn dashboard(app: &TestApp, today: NaiveDate) -> anyhow::Result<()> {
    let admins: Vec<(Uuid, Uuid)> =
        sqlx::query_as("select org_id, user_id from memberships where role = 'admin' order by 1")
            .fetch_all(&app.db.owner)
            .await?;
    let since = today.checked_sub_days(Days::new(84)).unwrap_or(today);
    let http = reqwest::Client::new();
    let (mut rest, mut raw) = (Vec::new(), Vec::new());
    let mut rows = (0usize, 0usize);
    for i in 0..DASHBOARD_CALLS {
        let (org, admin) = admins[i % admins.len()];
        let url = app.url(&format!(
            "/rest/v1/person_period_summaries?select=user_id,starts,total_minutes,focus_minutes,\
             meeting_minutes,after_hours_minutes&org_id=eq.{org}&period=eq.week&starts=gte.{since}\
             &order=starts,user_id"
        ));
        let started = Instant::now();
        let body: Vec<Value> = http
            .get(url)
            .bearer_auth(app.user_token(admin))
            .header("apikey", app.keys.anon_key())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        rest.push(started.elapsed());
        rows.0 += body.len();

        let Value::Object(claims) =
            json!({"sub": admin, "role": "authenticated", "aud": "authenticated"})
        else {
            anyhow::bail!("claims are an object");
        };
        let started = Instant::now();
        let ctx = RequestContext::from_claims(Claims(claims))?;
        let mut tx = ctx.begin_read_only(&app.db.requests).await?;
        let computed: Vec<(Uuid, NaiveDate, i64)> = sqlx::query_as(
            "select l.user_id, private.period_start('week', (l.started_at at time zone o.timezone)::date, o.settings) as starts,
                    sum(l.duration_minutes)::int8
             from time_logs l join organizations o on o.id = l.org_id
             where l.org_id = $1 and l.deleted_at is null and l.status in ('ready', 'needs_review', 'finalized')
               and l.started_at >= ($2::date::timestamp at time zone o.timezone)
             group by 1, 2 order by 2, 1",
        )
        .bind(org)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        raw.push(started.elapsed());
        rows.1 += computed.len();
    }
    println!(
        "\ndashboard: an org's person weeks for 12 weeks ({DASHBOARD_CALLS} calls, {:.0} rows each)",
        rows.0 as f64 / DASHBOARD_CALLS as f64
    );
    report("/rest/v1 person_period_summaries (HTTP)", rest);
    report("raw time_logs, grouped in SQL (same role)", raw);
    Ok(())
}

/// One org with 1,000,000 logs, exported to CSV and Parquet by its owner.
async fn export(app: &TestApp, today: NaiveDate, from: NaiveDate) -> anyhow::Result<()> {
    let owner = &app.db.owner;
    let org: Uuid = sqlx::query_scalar(
        "insert into organizations (name, slug) values ('Export', 'export') returning id",
    )
    .fetch_one(owner)
    .await?;
    let people: Vec<Uuid> = sqlx::query_scalar(
        "insert into auth.users (email) select 'export' || g || '@bench.test'
         from generate_series(1, $1) g returning id",
    )
    .bind(EXPORT_USERS)
    .fetch_all(owner)
    .await?;
    sqlx::query(
        "insert into memberships (org_id, user_id, role)
         select $1, u, (case when u = $2 then 'owner' else 'member' end)::org_role from unnest($3::uuid[]) u",
    )
    .bind(org)
    .bind(people[0])
    .bind(&people)
    .execute(owner)
    .await?;
    sqlx::query(
        "insert into projects (org_id, name, code) select $1, 'Project ' || p, 'P' || p from generate_series(1, 10) p",
    )
    .bind(org)
    .execute(owner)
    .await?;
    let started = Instant::now();
    insert_logs(
        owner,
        people.iter().map(|p| (org, *p)).collect(),
        EXPORT_LOGS_PER_USER,
    )
    .await?;
    sqlx::raw_sql("vacuum (analyze) time_logs")
        .execute(owner)
        .await?;
    println!(
        "\nexport: one org with {} logs (loaded in {:.1} s); this process runs the server, \
         resident {:.1} MiB before",
        EXPORT_USERS * EXPORT_LOGS_PER_USER,
        started.elapsed().as_secs_f64(),
        status_mib("VmRSS")
    );
    let http = reqwest::Client::new();
    for format in ["csv", "parquet"] {
        reset_peak();
        let started = Instant::now();
        let answer: Value = http
            .post(app.url("/functions/v1/export-create"))
            .bearer_auth(app.user_token(people[0]))
            .header("apikey", app.keys.anon_key())
            .json(&json!({"org_id": org, "format": format, "scope": "logs", "from": from, "to": today}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let took = started.elapsed();
        println!(
            "  {format:<8} {} rows, {:.1} MB in {:.1} s ({:.0} rows/s); peak resident {:.1} MiB",
            answer["rows"],
            answer["bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
            took.as_secs_f64(),
            answer["rows"].as_f64().unwrap_or(f64::NAN) / took.as_secs_f64(),
            peak_mib()
        );
    }
    Ok(())
}
