//! Day summaries on the real server and database: a hand-computed week in Europe/Berlin (an
//! after-hours evening, a log across midnight, a weekend, the March DST change, a pending, a
//! deleted and an untimed log), incremental upkeep against a full recomputation over random
//! edits, and who may run `insights-rollup`.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod exports;

use serde_json::{Value, json};
use tally_testkit::TestApp;
use uuid::Uuid;

/// A Berlin org with an owner, a member, a member of another org, and a project.
struct World {
    app: TestApp,
    org: Uuid,
    owner: Uuid,
    member: Uuid,
    stranger: Uuid,
    project: Uuid,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::spawn_with(|c| c.ai.worker_concurrency = 0)
            .await
            .unwrap();
        let (org, other, owner, member, stranger, project) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        sql(&app, &format!(
            "insert into auth.users (id, email) values ('{owner}', 'o@a.test'), ('{member}', 'm@a.test'),
               ('{stranger}', 's@b.test');
             insert into organizations (id, name, slug, timezone) values
               ('{org}', 'A', 'a', 'Europe/Berlin'), ('{other}', 'B', 'b', 'UTC');
             insert into memberships (org_id, user_id, role) values ('{org}', '{owner}', 'owner'),
               ('{org}', '{member}', 'member'), ('{other}', '{stranger}', 'owner');
             insert into projects (id, org_id, name, code) values ('{project}', '{org}', 'Apollo', 'APO');"
        ))
        .await;
        Self {
            app,
            org,
            owner,
            member,
            stranger,
            project,
        }
    }

    async fn rollup(&self, who: Option<Uuid>, body: Value) -> (u16, Value) {
        let token = who.map_or_else(
            || self.app.keys.service_role_key(),
            |u| self.app.user_token(u),
        );
        let res = reqwest::Client::new()
            .post(self.app.url("/functions/v1/insights-rollup"))
            .bearer_auth(token)
            .header("apikey", self.app.keys.anon_key())
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// A ready log of the member's: `[start, end)` in Berlin time (or untimed), a work mode,
    /// and `extra` columns `(names, values)`.
    async fn log(&self, span: Option<(&str, &str)>, mode: &str, extra: (&str, &str)) -> Uuid {
        let id = Uuid::now_v7();
        let (start, end) = span.map_or(("null".to_owned(), "null".to_owned()), |(s, e)| {
            (
                format!("'{s}'::timestamp at time zone 'Europe/Berlin'"),
                format!("'{e}'::timestamp at time zone 'Europe/Berlin'"),
            )
        });
        sql(&self.app, &format!(
            "insert into time_logs (id, org_id, user_id, started_at, ended_at, status, work_mode_id {cols})
             values ('{id}', '{org}', '{member}', {start}, {end}, 'ready',
                     (select id from work_modes where org_id is null and key = '{mode}') {vals})",
            org = self.org,
            member = self.member,
            cols = if extra.0.is_empty() { String::new() } else { format!(", {}", extra.0) },
            vals = if extra.1.is_empty() { String::new() } else { format!(", {}", extra.1) },
        ))
        .await;
        id
    }

    async fn day(&self, day: &str) -> Option<Value> {
        sqlx::query_scalar(
            "select to_jsonb(s) - 'id' - 'org_id' - 'user_id' - 'created_at' - 'updated_at'
             from user_day_summaries s where user_id = $1 and day = $2::date",
        )
        .bind(self.member)
        .bind(day)
        .fetch_optional(&self.app.db.owner)
        .await
        .unwrap()
    }
}

async fn sql(app: &TestApp, statement: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&app.db.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_week_in_berlin_sums_up_to_the_minute() {
    let w = World::new().await;
    let p = w.project;
    // Monday 23 March 2026: deep work 09:00–11:00 (billable, Apollo, code review) and
    // 11:00–12:30 (one 210-minute stretch), a meeting 14:00–15:00, collaboration 17:00–20:00
    // (two hours after 18:00).
    w.log(Some(("2026-03-23 09:00", "2026-03-23 11:00")), "deep_work",
        ("project_id, billable, activity_type_id",
         &format!("'{p}', true, (select id from activity_types where org_id is null and key = 'code_review')"))).await;
    w.log(
        Some(("2026-03-23 11:00", "2026-03-23 12:30")),
        "deep_work",
        ("", ""),
    )
    .await;
    w.log(
        Some(("2026-03-23 14:00", "2026-03-23 15:00")),
        "meeting",
        ("", ""),
    )
    .await;
    w.log(
        Some(("2026-03-23 17:00", "2026-03-23 20:00")),
        "collaboration",
        ("", ""),
    )
    .await;
    // Tuesday 22:00 to Wednesday 01:30: split at midnight, all after hours.
    w.log(
        Some(("2026-03-24 22:00", "2026-03-25 01:30")),
        "deep_work",
        ("", ""),
    )
    .await;
    // Thursday: an untimed 30 minutes, and a pending log that does not count yet.
    w.log(
        None,
        "admin",
        ("duration_minutes, created_at", "30, '2026-03-26 15:00+01'"),
    )
    .await;
    w.log(
        Some(("2026-03-26 10:00", "2026-03-26 11:00")),
        "admin",
        ("", ""),
    )
    .await;
    sql(
        &w.app,
        "update time_logs set status = 'pending' where started_at = '2026-03-26 10:00+01'",
    )
    .await;
    // Friday: a deleted log.
    w.log(
        Some(("2026-03-27 10:00", "2026-03-27 11:00")),
        "admin",
        ("", ""),
    )
    .await;
    sql(
        &w.app,
        "update time_logs set deleted_at = now() where started_at = '2026-03-27 10:00+01'",
    )
    .await;
    // The weekend: Saturday 10:00–12:00; Sunday 01:00–04:00 across the DST change (2 hours).
    w.log(
        Some(("2026-03-28 10:00", "2026-03-28 12:00")),
        "communication",
        ("", ""),
    )
    .await;
    w.log(
        Some(("2026-03-29 01:00", "2026-03-29 04:00")),
        "communication",
        ("", ""),
    )
    .await;

    let (status, answer) = w
        .rollup(
            Some(w.owner),
            json!({"org_id": w.org, "from": "2026-03-23", "to": "2026-03-29"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["days"], 7, "Monday to Sunday: every day with a log");

    let monday = w.day("2026-03-23").await.unwrap();
    assert_eq!(
        monday,
        json!({"day": "2026-03-23", "total_minutes": 450, "focus_minutes": 210, "meeting_minutes": 60,
            "collaboration_minutes": 180, "after_hours_minutes": 120, "weekend_minutes": 0,
            "billable_minutes": 120, "log_count": 4, "by_project": {p.to_string(): 120},
            "by_activity": {"code_review": 120},
            "by_work_mode": {"deep_work": 210, "meeting": 60, "collaboration": 180},
            "longest_focus_minutes": 210, "deep_work_blocks": 1,
            "first_start": "2026-03-23T08:00:00+00:00", "last_end": "2026-03-23T19:00:00+00:00"})
    );
    let tuesday = w.day("2026-03-24").await.unwrap();
    assert_eq!(
        (
            &tuesday["total_minutes"],
            &tuesday["after_hours_minutes"],
            &tuesday["focus_minutes"],
            &tuesday["longest_focus_minutes"],
            &tuesday["deep_work_blocks"],
            &tuesday["last_end"]
        ),
        (
            &json!(120),
            &json!(120),
            &json!(120),
            &json!(120),
            &json!(1),
            &json!("2026-03-24T23:00:00+00:00")
        )
    );
    let wednesday = w.day("2026-03-25").await.unwrap();
    assert_eq!(
        (
            &wednesday["total_minutes"],
            &wednesday["after_hours_minutes"],
            &wednesday["deep_work_blocks"],
            &wednesday["first_start"],
            &wednesday["last_end"]
        ),
        (
            &json!(90),
            &json!(90),
            &json!(1),
            &json!("2026-03-24T23:00:00+00:00"),
            &json!("2026-03-25T00:30:00+00:00")
        )
    );
    let thursday = w.day("2026-03-26").await.unwrap();
    assert_eq!(
        (
            &thursday["total_minutes"],
            &thursday["log_count"],
            &thursday["after_hours_minutes"],
            &thursday["first_start"]
        ),
        (&json!(30), &json!(1), &json!(0), &Value::Null),
        "the untimed log counts; the pending one does not"
    );
    assert!(
        w.day("2026-03-27").await.is_none(),
        "a deleted log leaves no day"
    );
    let saturday = w.day("2026-03-28").await.unwrap();
    assert_eq!(
        (
            &saturday["weekend_minutes"],
            &saturday["after_hours_minutes"]
        ),
        (&json!(120), &json!(0))
    );
    let sunday = w.day("2026-03-29").await.unwrap();
    assert_eq!(
        (&sunday["total_minutes"], &sunday["weekend_minutes"]),
        (&json!(120), &json!(120)),
        "01:00 to 04:00 on the night the clocks go forward is two hours"
    );
}

/// How many summaries differ from a recomputation from scratch.
async fn drift(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "with keys as (
           select distinct l.org_id, l.user_id, d as day from time_logs l
           join organizations o on o.id = l.org_id left join profiles p on p.id = l.user_id,
           lateral private.log_days(l.started_at, l.ended_at, l.duration_minutes, l.created_at,
                                    coalesce(p.timezone, o.timezone)) d
           union select org_id, user_id, day from user_day_summaries),
         fresh as (select * from private.compute_days(
           (select array_agg(org_id) from keys), (select array_agg(user_id) from keys),
           (select array_agg(day) from keys))),
         a as (select to_jsonb(f) - 'id' - 'created_at' - 'updated_at' as j from fresh f),
         b as (select to_jsonb(s) - 'id' - 'created_at' - 'updated_at' as j from user_day_summaries s)
         select (select count(*) from (select * from a except select * from b) x)
              + (select count(*) from (select * from b except select * from a) y)",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap()
}

/// How many period rows differ from the weekly and monthly sums of the day summaries as they
/// are now (what refreshing the former materialized views gave).
async fn period_drift(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "with people as (
           select s.org_id, s.user_id, p.period, private.period_start(p.period, s.day, o.settings) as starts,
                  sum(s.total_minutes)::int as total_minutes, sum(s.focus_minutes)::int as focus_minutes,
                  sum(s.meeting_minutes)::int as meeting_minutes,
                  sum(s.collaboration_minutes)::int as collaboration_minutes,
                  sum(s.after_hours_minutes)::int as after_hours_minutes,
                  sum(s.weekend_minutes)::int as weekend_minutes, sum(s.billable_minutes)::int as billable_minutes,
                  sum(s.log_count)::int as log_count, count(*)::int as days_worked,
                  max(s.longest_focus_minutes)::int as longest_focus_minutes,
                  sum(s.deep_work_blocks)::int as deep_work_blocks
           from user_day_summaries s join organizations o on o.id = s.org_id
           cross join (values ('week'), ('month')) p (period)
           group by 1, 2, 3, 4),
         projects as (
           select s.org_id, b.key::uuid as project_id, p.period,
                  private.period_start(p.period, s.day, o.settings) as starts,
                  sum(b.value::int)::int as total_minutes, count(distinct s.user_id)::int as people
           from user_day_summaries s join organizations o on o.id = s.org_id
           cross join lateral jsonb_each_text(s.by_project) b
           cross join (values ('week'), ('month')) p (period)
           group by 1, 2, 3, 4),
         kept as (select org_id, user_id, period, starts, total_minutes, focus_minutes,
                         meeting_minutes, collaboration_minutes, after_hours_minutes,
                         weekend_minutes, billable_minutes, log_count, days_worked,
                         longest_focus_minutes, deep_work_blocks from insights.person_periods),
         kept_projects as (select * from insights.project_periods)
         select (select count(*) from (select * from people except select * from kept) a)
              + (select count(*) from (select * from kept except select * from people) b)
              + (select count(*) from (select * from projects except select * from kept_projects) c)
              + (select count(*) from (select * from kept_projects except select * from projects) d)",
    )
    .fetch_one(&app.db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn incremental_upkeep_equals_a_full_recomputation_over_random_edits() {
    let w = World::new().await;
    let modes = ["deep_work", "meeting", "collaboration", "admin"];
    let mut logs = Vec::new();
    // A fixed seed: the same edits every run (a small linear congruential generator).
    let mut seed: u64 = 0x7a11_7a11;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for round in 0..12 {
        for _ in 0..10 {
            let action = if logs.is_empty() { 0 } else { next(5) };
            // 20 March to 2 April, across the DST change.
            let start = format!(
                "('2026-03-20'::date + {})::timestamp + interval '{} hours'",
                next(14),
                next(24)
            );
            let minutes = 15 + next(240);
            match action {
                0 | 1 => {
                    let end_at = format!("{start} + interval '{minutes} minutes'");
                    let id = Uuid::now_v7();
                    sql(&w.app, &format!(
                        "insert into time_logs (id, org_id, user_id, started_at, ended_at, status, work_mode_id, billable, project_id)
                         values ('{id}', '{}', '{}', ({start}) at time zone 'Europe/Berlin',
                                 ({end_at}) at time zone 'Europe/Berlin', 'ready',
                                 (select id from work_modes where org_id is null and key = '{}'), {}, {})",
                        w.org, if next(3) == 0 { w.owner } else { w.member },
                        modes[usize::try_from(next(4)).unwrap()], next(2) == 0,
                        if next(2) == 0 { format!("'{}'", w.project) } else { "null".to_owned() }
                    )).await;
                    logs.push(id);
                }
                2 => {
                    // Move a log to another day and length.
                    let id = logs[usize::try_from(next(logs.len() as u64)).unwrap()];
                    sql(&w.app, &format!(
                        "update time_logs set started_at = ({start}) at time zone 'Europe/Berlin',
                           ended_at = ({start} + interval '{minutes} minutes') at time zone 'Europe/Berlin',
                           duration_minutes = null where id = '{id}'"
                    )).await;
                }
                3 => {
                    let id = logs.swap_remove(usize::try_from(next(logs.len() as u64)).unwrap());
                    if next(2) == 0 {
                        sql(&w.app, &format!("delete from time_logs where id = '{id}'")).await;
                    } else {
                        sql(
                            &w.app,
                            &format!("update time_logs set deleted_at = now() where id = '{id}'"),
                        )
                        .await;
                    }
                }
                _ => {
                    let id = logs[usize::try_from(next(logs.len() as u64)).unwrap()];
                    let status =
                        ["finalized", "pending", "needs_review"][usize::try_from(next(3)).unwrap()];
                    sql(&w.app, &format!(
                        "update time_logs set status = '{status}',
                           finalized_at = case when '{status}' = 'finalized' then now() end where id = '{id}'"
                    )).await;
                }
            }
        }
        // Only the dirty days are recomputed, as the scheduled job does.
        sql(&w.app, "select private.rollup_dirty(100000)").await;
        assert_eq!(
            drift(&w.app).await,
            0,
            "round {round}: the summaries drifted"
        );
        assert_eq!(
            period_drift(&w.app).await,
            0,
            "round {round}: the periods drifted"
        );
    }
    // One log edited: only the periods of its day are written again.
    let versions = || async {
        sqlx::query_as::<_, (String, String)>(
            "select period || ' ' || starts, xmin::text from insights.person_periods
             order by 1",
        )
        .fetch_all(&w.app.db.owner)
        .await
        .unwrap()
    };
    let before = versions().await;
    let moved = logs[0];
    sql(&w.app, &format!(
        "update time_logs set started_at = '2026-03-24T10:00:00+01', ended_at = '2026-03-24T11:00:00+01',
           duration_minutes = null, user_id = '{}', status = 'ready' where id = '{moved}'",
        w.member
    )).await;
    let old_day: Option<String> = sqlx::query_scalar(
        "select min(day)::text from private.dirty_days where day <> '2026-03-24'",
    )
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    sql(&w.app, "select private.rollup_dirty(100000)").await;
    assert_eq!(period_drift(&w.app).await, 0);
    let after = versions().await;
    let rewritten: Vec<&String> = after
        .iter()
        .filter(|row| !before.contains(row))
        .map(|(key, _)| key)
        .collect();
    let weeks: std::collections::BTreeSet<&str> = rewritten
        .iter()
        .filter_map(|k| {
            k.strip_prefix("week ")
                .or_else(|| k.strip_prefix("project week "))
        })
        .collect();
    assert!(weeks.contains("2026-03-23"), "{rewritten:?}");
    assert!(
        weeks.len() <= 1 + usize::from(old_day.is_some()),
        "only the weeks of the log's old and new day: {rewritten:?} (old day {old_day:?})"
    );
    assert!(after.len() > rewritten.len() + 2, "{after:?}");
    // The weeks follow the org's week start (Sunday).
    sql(&w.app, &format!(
        "update organizations set settings = settings || '{{\"week_start\": 7}}' where id = '{}'",
        w.org
    )).await;
    assert_eq!(period_drift(&w.app).await, 0, "after the week start moved");
    let projects: i64 = sqlx::query_scalar("select count(*) from insights.project_periods")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert!(projects > 0, "the edits left project periods to compare");
    // The comparison does see a period that is off by a minute.
    sql(&w.app, "update insights.person_periods set total_minutes = total_minutes + 1 where starts = (select min(starts) from insights.person_periods)").await;
    assert!(period_drift(&w.app).await > 0);
    let kept: i64 = sqlx::query_scalar("select count(*) from user_day_summaries")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert!(kept > 5, "the edits left days to compare ({kept})");
    // The comparison does see a summary that is off by a minute.
    sql(&w.app, "update user_day_summaries set total_minutes = total_minutes + 1 where day = (select min(day) from user_day_summaries)").await;
    assert!(drift(&w.app).await > 0);
}

#[tokio::test]
async fn only_owners_admins_and_the_service_role_run_rollups() {
    let w = World::new().await;
    let range = json!({"org_id": w.org, "from": "2026-03-01", "to": "2026-03-31"});
    let (status, body) = w.rollup(Some(w.member), range.clone()).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, _) = w.rollup(Some(w.stranger), range.clone()).await;
    assert_eq!(status, 403, "another org's owner");
    let (status, body) = w.rollup(Some(w.owner), json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = w
        .rollup(
            Some(w.owner),
            json!({"org_id": w.org, "from": "2026-04-01", "to": "2026-03-01"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = w
        .rollup(
            Some(w.owner),
            json!({"org_id": w.org, "from": "2024-01-01", "to": "2026-03-01"}),
        )
        .await;
    assert_eq!(status, 400, "more than a year: {body}");
    let (status, body) = w
        .rollup(Some(w.owner), json!({"org_id": w.org, "nope": 1}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = w.rollup(Some(w.owner), range).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w
        .rollup(None, json!({"from": "2026-03-01", "to": "2026-03-31"}))
        .await;
    assert_eq!(
        (status, body["org_id"].clone()),
        (200, Value::Null),
        "the service role, every org"
    );
}

/// Rows of a summary view as `who` reads it through `/rest/v1`.
async fn read(app: &TestApp, who: Uuid, view: &str) -> Vec<Value> {
    let res = reqwest::Client::new()
        .get(app.url(&format!("/rest/v1/{view}?period=eq.week")))
        .bearer_auth(app.user_token(who))
        .header("apikey", app.keys.anon_key())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{view}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn weekly_views_show_each_role_what_it_may_read() {
    let w = World::new().await;
    // A manager leading a small team (the manager and the member), a viewer, and five people
    // in a big team; everyone logs an hour on Monday 23 March on Apollo, one person also an
    // hour on a side project.
    let big: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let (manager, viewer, small, large, side) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let mut people = vec![(manager, "manager"), (viewer, "viewer")];
    people.extend(big.iter().map(|b| (*b, "member")));
    for (id, role) in &people {
        sql(
            &w.app,
            &format!(
                "insert into auth.users (id, email) values ('{id}', '{id}@a.test');
             insert into memberships (org_id, user_id, role) values ('{}', '{id}', '{role}');",
                w.org
            ),
        )
        .await;
    }
    sql(&w.app, &format!(
        "insert into teams (id, org_id, name) values ('{small}', '{org}', 'Small'), ('{large}', '{org}', 'Big');
         insert into team_members (org_id, team_id, user_id, is_lead) values
           ('{org}', '{small}', '{manager}', true), ('{org}', '{small}', '{member}', false);
         insert into team_members (org_id, team_id, user_id) select '{org}', '{large}', u from unnest('{{{bigs}}}'::uuid[]) u;
         insert into projects (id, org_id, name, code) values ('{side}', '{org}', 'Side', 'SID');
         insert into time_logs (org_id, user_id, project_id, started_at, ended_at, status)
           select '{org}', u, '{p}', '2026-03-23 09:00+01', '2026-03-23 10:00+01', 'ready'
           from unnest('{{{everyone}}}'::uuid[]) u;
         insert into time_logs (org_id, user_id, project_id, started_at, ended_at, status) values
           ('{org}', '{member}', '{side}', '2026-03-23 11:00+01', '2026-03-23 12:00+01', 'ready');",
        org = w.org, member = w.member, p = w.project,
        bigs = big.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","),
        everyone = big.iter().chain([&manager, &w.member, &w.owner]).map(Uuid::to_string).collect::<Vec<_>>().join(","),
    )).await;
    let (status, body) = w
        .rollup(
            Some(w.owner),
            json!({"org_id": w.org, "from": "2026-03-23", "to": "2026-03-29"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let people_of = |rows: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = rows
            .iter()
            .map(|r| r["user_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |ids: &[Uuid]| -> Vec<String> {
        let mut ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        ids.sort();
        ids
    };
    let all: Vec<Uuid> = big
        .iter()
        .copied()
        .chain([manager, w.member, w.owner])
        .collect();
    // People: the owner all; the manager themself and the member they lead; the member
    // themself; the viewer and another org's owner no one.
    assert_eq!(
        people_of(&read(&w.app, w.owner, "person_period_summaries").await),
        sorted(&all)
    );
    assert_eq!(
        people_of(&read(&w.app, manager, "person_period_summaries").await),
        sorted(&[manager, w.member])
    );
    let mine = read(&w.app, w.member, "person_period_summaries").await;
    assert_eq!(people_of(&mine), sorted(&[w.member]));
    assert_eq!(
        (mine[0]["total_minutes"].clone(), mine[0]["starts"].clone()),
        (json!(120), json!("2026-03-23"))
    );
    assert!(
        read(&w.app, viewer, "person_period_summaries")
            .await
            .is_empty()
    );
    assert!(
        read(&w.app, w.stranger, "person_period_summaries")
            .await
            .is_empty()
    );

    // Teams: the viewer sees the big team only (5 people; the small one has 2).
    let teams = |rows: Vec<Value>| -> Vec<String> {
        rows.iter()
            .map(|r| r["team_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        teams(read(&w.app, viewer, "team_period_summaries").await),
        [large.to_string()]
    );
    assert_eq!(
        teams(read(&w.app, manager, "team_period_summaries").await),
        [small.to_string()]
    );
    assert_eq!(
        read(&w.app, w.owner, "team_period_summaries").await.len(),
        2
    );
    assert!(
        read(&w.app, w.member, "team_period_summaries")
            .await
            .is_empty()
    );
    let big_team = read(&w.app, viewer, "team_period_summaries").await;
    assert_eq!(
        (
            big_team[0]["total_minutes"].clone(),
            big_team[0]["people"].clone()
        ),
        (json!(300), json!(5))
    );

    // Projects: the viewer sees Apollo (8 people), not Side (one person's hours).
    let projects = read(&w.app, viewer, "project_period_summaries").await;
    assert_eq!(projects.len(), 1);
    assert_eq!(
        (
            projects[0]["project_id"].clone(),
            projects[0]["total_minutes"].clone()
        ),
        (json!(w.project), json!(480))
    );
    assert_eq!(
        read(&w.app, w.owner, "project_period_summaries")
            .await
            .len(),
        2
    );
    assert!(
        read(&w.app, w.member, "project_period_summaries")
            .await
            .is_empty()
    );

    // The org's total: owners, admins and viewers.
    let org = read(&w.app, viewer, "org_period_summaries").await;
    assert_eq!(
        (org[0]["total_minutes"].clone(), org[0]["people"].clone()),
        (json!(540), json!(8))
    );
    assert!(
        read(&w.app, w.member, "org_period_summaries")
            .await
            .is_empty()
    );
    assert!(
        read(&w.app, w.stranger, "org_period_summaries")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn four_weeks_give_an_exact_burnout_score_with_its_reasons() {
    let w = World::new().await;
    sql(
        &w.app,
        &format!(
            "update organizations set timezone = 'UTC' where id = '{}'",
            w.org
        ),
    )
    .await;
    let span = |from: &str, to: &str, day: &str, mode: &str| {
        format!(
            "insert into time_logs (org_id, user_id, started_at, ended_at, status, work_mode_id)
             select '{org}', '{member}', d + time '{from}', d + time '{to}', 'ready',
                    (select id from work_modes where org_id is null and key = '{mode}')
             from ({day}) days (d);",
            org = w.org,
            member = w.member
        )
    };
    let weekdays =
        |monday: &str| format!("select '{monday}'::date + i from generate_series(0, 4) i");
    // Weeks of 40, 45 and 50 hours (the 50 with an hour a day before nine), then a week of
    // 67: Monday to Friday 07:00–19:00 (meetings until 14:00, then deep work), Saturday
    // 10:00–14:00 and Sunday 10:00–13:00.
    let mut script = span("09:00", "17:00", &weekdays("2026-03-02"), "deep_work");
    script += &span("09:00", "18:00", &weekdays("2026-03-09"), "deep_work");
    script += &span("08:00", "18:00", &weekdays("2026-03-16"), "deep_work");
    script += &span("07:00", "14:00", &weekdays("2026-03-23"), "meeting");
    script += &span("14:00", "19:00", &weekdays("2026-03-23"), "deep_work");
    script += &span("10:00", "14:00", "select '2026-03-28'::date", "deep_work");
    script += &span("10:00", "13:00", "select '2026-03-29'::date", "deep_work");
    sql(&w.app, &script).await;
    let (status, body) = w
        .rollup(
            Some(w.owner),
            json!({"org_id": w.org, "from": "2026-03-02", "to": "2026-03-29"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (score, utilization, focus, meeting, factors): (i16, f32, f32, f32, Value) = sqlx::query_as(
        "select burnout_score, utilization, focus_share, meeting_share, factors from risk_scores
         where user_id = $1 and week_start = '2026-03-23'",
    )
    .bind(w.member)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    let points: Vec<(String, i64)> = factors
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["factor"].as_str().unwrap().to_owned(),
                f["points"].as_i64().unwrap(),
            )
        })
        .collect();
    // 202 h over 4 weeks is 50.5 h a week, 10.5 above 40: 5 points an hour, capped at 25.
    // After hours: 5 × 180 min over 7 days worked = 129 min a day > 120: 15. Two days off
    // worked: 10. Five days over 10 h: 15 (capped). Seven days in a row (the Sunday before
    // was off): 0. 45 < 50 < 67 h: 10. Meetings 35 of 67 h, 52 %: 10. Deep work 32 h: 0.
    assert_eq!(
        points,
        [
            ("overtime", 25),
            ("after_hours", 15),
            ("weekend_days", 10),
            ("long_days", 15),
            ("no_day_off", 0),
            ("rising_hours", 10),
            ("meeting_share", 10),
            ("low_focus", 0)
        ]
        .map(|(f, p)| (f.to_owned(), p))
    );
    assert_eq!(score, 85);
    let overtime = &factors[0];
    assert_eq!(
        (overtime["value"].as_f64(), overtime["threshold"].as_f64()),
        (Some(50.5), Some(40.0))
    );
    assert_eq!(
        overtime["sentence"],
        "Worked 50.5 h a week on average over 4 weeks, against 40 contracted hours."
    );
    assert_eq!(factors[1]["value"], 129);
    assert_eq!(factors[4]["value"], 7);
    assert_eq!(factors[5]["value"], json!([45.0, 50.0, 67.0]));
    assert_eq!(
        (
            utilization,
            (focus * 1000.0).round(),
            (meeting * 1000.0).round()
        ),
        (0.0, 478.0, 522.0)
    );

    // Members read their own score, not other people's; the owner reads the org's.
    let mine = read_scores(&w.app, w.member).await;
    assert_eq!(mine.len(), 4, "a score for each of the four weeks");
    assert!(read_scores(&w.app, w.stranger).await.is_empty());
    assert_eq!(read_scores(&w.app, w.owner).await.len(), 4);
}

async fn read_scores(app: &TestApp, who: Uuid) -> Vec<Value> {
    reqwest::Client::new()
        .get(app.url("/rest/v1/risk_scores?select=week_start,burnout_score,factors"))
        .bearer_auth(app.user_token(who))
        .header("apikey", app.keys.anon_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Two instances rolling up at once share the dirty days out: none is computed twice, none
/// is left, and the result equals a recomputation from scratch.
#[tokio::test]
async fn two_instances_rolling_up_at_once_never_take_a_day_twice() {
    let w = World::new().await;
    sql(
        &w.app,
        &format!(
            "insert into time_logs (org_id, user_id, started_at, ended_at, status)
             select '{org}', '{member}', '2025-06-01 08:00+00'::timestamptz + g * interval '1 day',
                    '2025-06-01 09:30+00'::timestamptz + g * interval '1 day', 'ready'
             from generate_series(0, 2999) g",
            org = w.org,
            member = w.member,
        ),
    )
    .await;
    let marked: i64 = sqlx::query_scalar("select count(*) from private.dirty_days")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert!(marked >= 3000);
    // Two pools, as two instances would have, each running the rollup loop.
    let other = w.app.db.requests.clone();
    let (a, b) = tokio::join!(
        tally_insights::rollup::dirty(&w.app.db.requests),
        tokio::spawn(async move { tally_insights::rollup::dirty(&other).await })
    );
    let (a, b) = (a.unwrap(), b.unwrap().unwrap());
    assert_eq!(
        a + b,
        u64::try_from(marked).unwrap(),
        "each day once: {a} + {b}"
    );
    let left: i64 = sqlx::query_scalar("select count(*) from private.dirty_days")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(drift(&w.app).await, 0);
}
