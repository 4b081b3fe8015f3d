//! `tally demo`: a demo organization — a person in each role, a team, projects with aliases —
//! and a month of varied logs, classified through the pipeline (the `classify_log` jobs the
//! logs enqueue, run here), the older ones finalized as people would.

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use sqlx::PgPool;
use tally_jobs::Workers;
use uuid::Uuid;

/// Everyone's password in the demo.
pub const PASSWORD: &str = "tally-demo-password";

/// The demo's time zone.
const TZ: Tz = chrono_tz::Europe::Berlin;

/// The people: email, display name, role, whether they log time.
const PEOPLE: &[(&str, &str, &str, bool)] = &[
    ("owner@demo.tally.localhost", "Olivia Owner", "owner", false),
    ("admin@demo.tally.localhost", "Adam Admin", "admin", true),
    (
        "manager@demo.tally.localhost",
        "Maya Manager",
        "manager",
        true,
    ),
    ("sam@demo.tally.localhost", "Sam Member", "member", true),
    ("alex@demo.tally.localhost", "Alex Member", "member", true),
    (
        "viewer@demo.tally.localhost",
        "Vera Viewer",
        "viewer",
        false,
    ),
];

/// Projects: name, code, aliases, billable.
const PROJECTS: &[(&str, &str, &[&str], bool)] = &[
    ("Apollo Redesign", "APL", &["apollo", "new website"], true),
    (
        "Billing Service",
        "BILL",
        &["payments", "invoicing service"],
        false,
    ),
    ("Mobile App", "MOB", &["ios app", "android app"], true),
    ("Internal Tools", "TOOLS", &["tooling", "dev tools"], false),
    ("Data Platform", "DATA", &["warehouse", "etl"], false),
    ("Acme Onboarding", "ACME", &["acme"], true),
];

/// What people write, without the time (the demo puts each line in a slot of the day).
const LINES: &[&str] = &[
    "standup",
    "fixing the login bug on apollo",
    "code review for the billing service",
    "implementing refunds in payments",
    "testing the ios app release",
    "apollo mockups in figma",
    "etl pipeline refactor",
    "emails and slack",
    "sprint planning",
    "acme kickoff call",
    "writing docs for the warehouse",
    "debugging push notifications in the mobile app",
    "reviewing tooling PRs",
    "customer support tickets for acme",
    "research on streaming for the data platform",
    "1:1 with my manager",
    "expenses and timesheet",
    "new deploy script for the dev tools",
    "android app offline mode",
    "retro",
    "interview with a candidate",
    "qa on the new website",
    "optimizing warehouse queries",
    "reading the postgres docs",
];

/// What was created.
#[derive(Debug)]
pub struct Demo {
    /// The organization.
    pub org: Uuid,
    /// Logs written.
    pub logs: usize,
    /// Logs finalized.
    pub finalized: u64,
}

/// Seeds the demo over `days` days before `now`; `None` when a demo is already there.
/// The logs' classification jobs run on `workers`.
pub async fn seed(
    owner: &PgPool,
    workers: &Workers,
    days: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Demo>> {
    let exists: bool =
        sqlx::query_scalar("select exists (select from auth.users where email = $1)")
            .bind(PEOPLE[0].0)
            .fetch_one(owner)
            .await?;
    if exists {
        return Ok(None);
    }
    let hash = tally_auth::password::hash(PASSWORD)
        .await
        .map_err(|e| anyhow::anyhow!("hashing the demo password: {e:?}"))?;
    let mut tx = owner.begin().await?;
    let org: Uuid = sqlx::query_scalar(
        "insert into public.organizations (name, slug, timezone) \
         values ('Demo Co', 'demo-' || substr(md5(random()::text), 1, 6), $1) returning id",
    )
    .bind(TZ.name())
    .fetch_one(&mut *tx)
    .await?;
    let team: Uuid = sqlx::query_scalar(
        "insert into public.teams (org_id, name) values ($1, 'Platform') returning id",
    )
    .bind(org)
    .fetch_one(&mut *tx)
    .await?;
    let mut loggers = Vec::new();
    for (email, name, role, logs) in PEOPLE {
        let user = tally_auth::users::create(
            &mut tx,
            tally_auth::users::NewUser {
                id: None,
                email,
                password_hash: Some(hash.clone()),
                user_metadata: serde_json::json!({"full_name": name}),
                app_metadata: serde_json::json!({}),
                confirmed: true,
                identity: None,
            },
        )
        .await?;
        sqlx::query(
            "insert into public.memberships (org_id, user_id, role) \
             values ($1, $2, $3::public.org_role)",
        )
        .bind(org)
        .bind(user.id)
        .bind(role)
        .execute(&mut *tx)
        .await?;
        if matches!(*role, "manager" | "member") {
            sqlx::query(
                "insert into public.team_members (org_id, team_id, user_id, is_lead) \
                 values ($1, $2, $3, $4)",
            )
            .bind(org)
            .bind(team)
            .bind(user.id)
            .bind(*role == "manager")
            .execute(&mut *tx)
            .await?;
        }
        if *logs {
            loggers.push(user.id);
        }
    }
    for (name, code, aliases, billable) in PROJECTS {
        sqlx::query(
            "insert into public.projects (org_id, team_id, name, code, aliases, billable) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(org)
        .bind(team)
        .bind(name)
        .bind(code)
        .bind(aliases)
        .bind(billable)
        .execute(&mut *tx)
        .await?;
    }

    // Weekdays of the last `days` days: a working day of 4–6 lines per person, in order.
    let mut logs = 0usize;
    let today = now.with_timezone(&TZ).date_naive();
    for back in (1..=days).rev() {
        let Some(day) = today.checked_sub_days(Days::new(back)) else {
            continue;
        };
        if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            continue;
        }
        for (p, user) in loggers.iter().enumerate() {
            let seed = day.ordinal() as usize * 7 + p * 13;
            let mut minute = 9 * 60 + (seed % 4) * 15;
            for k in 0..(4 + seed % 3) {
                let line = LINES[(seed + k * 5) % LINES.len()];
                let length = [30, 45, 60, 90, 120][(seed + k) % 5];
                let (start, end) = (minute, minute + length);
                let comment = format!(
                    "{:02}:{:02}-{:02}:{:02} {line}",
                    start / 60,
                    start % 60,
                    end / 60,
                    end % 60
                );
                let written = TZ
                    .from_local_datetime(
                        &day.and_time(NaiveTime::from_hms_opt(18, 30, 0).unwrap_or(NaiveTime::MIN)),
                    )
                    .earliest()
                    .map_or(now, |t| t.with_timezone(&Utc));
                sqlx::query(
                    "insert into public.time_logs (org_id, user_id, comment, created_at, \
                            user_locked, source) \
                     values ($1, $2, $3, $4, '{comment}', 'manual')",
                )
                .bind(org)
                .bind(user)
                .bind(&comment)
                .bind(written)
                .execute(&mut *tx)
                .await?;
                logs += 1;
                minute = end + [0, 15, 30][(seed + k) % 3];
            }
        }
    }
    tx.commit().await?;
    eprintln!("demo: {logs} logs written; classifying them through the pipeline…");

    // The logs enqueued their classification: run those jobs here.
    let mut done = 0usize;
    while workers.run_one().await? {
        done += 1;
        if done.is_multiple_of(100) {
            eprintln!("demo: {done}/{logs} classified");
        }
    }
    // People finalize most of what is older than a week.
    let finalized = sqlx::query(
        "update public.time_logs set status = 'finalized' \
         where org_id = $1 and created_at < $2 - interval '7 days' \
           and status in ('ready', 'needs_review') and abs(hashtext(id::text)) % 10 < 7",
    )
    .bind(org)
    .bind(now)
    .execute(owner)
    .await?
    .rows_affected();
    Ok(Some(Demo {
        org,
        logs,
        finalized,
    }))
}

/// `tally demo`: seeds the configured database and prints how to sign in.
pub async fn command(config: tally_core::Config) -> anyhow::Result<()> {
    let database = crate::database::Database::open(&config).await?;
    let result = async {
        let (owner, requests) = database.pools(&config, 4).await?;
        let providers = crate::models::providers(&config)?;
        let storage = crate::app::storage_state(
            requests.clone(),
            tally_core::JwtKeys::new(&config.jwt_secret()?),
            &config,
        )?;
        let workers = crate::workers::workers(&requests, &config, &providers, &storage)?;
        match seed(&owner, &workers, 30, Utc::now()).await? {
            Some(demo) => println!(
                "Demo Co is ready: {} logs over the last 30 days ({} finalized).",
                demo.logs, demo.finalized
            ),
            None => println!("The demo organization is already there."),
        }
        println!("Start Tally with `tally serve`, then sign in as any of (password {PASSWORD}):");
        for (email, name, role, _) in PEOPLE {
            println!("  {role:<8} {email:<32} {name}");
        }
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}
