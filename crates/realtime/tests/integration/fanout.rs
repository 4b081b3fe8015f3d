//! The fan-out guard: many subscribers, concurrent writers, every delivery made and in order
//! per row (a small run of `scripts/bench-realtime`, asserting completeness, not speed).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as Ws;
use uuid::Uuid;

use crate::{Client, changes, connect, sql, subscribe};

const ORGS: usize = 3;
const PEOPLE_PER_ORG: usize = 12;
/// Owners and admins per org, who read every log of it; the others are members.
const READ_ALL: usize = 3;
const WRITERS: usize = 4;
const LOGS_PER_WRITER: usize = 30;

/// Reads a socket until it has heard `expected` changes (or is quiet for 20 s), then for half
/// a second more, to hear anything extra.
async fn collect(mut ws: Client, expected: usize) -> Vec<(String, String)> {
    let mut heard = Vec::new();
    loop {
        let wait = if heard.len() < expected { 20_000 } else { 500 };
        let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_millis(wait), ws.next()).await
        else {
            break;
        };
        if let Ws::Text(text) = frame {
            let message: Value = serde_json::from_str(&text).unwrap();
            heard.extend(changes(&[message]).into_iter().map(|(op, _, id)| (op, id)));
        }
    }
    heard
}

#[tokio::test]
async fn every_reader_hears_every_change_it_may_read_in_order_under_concurrent_writes() {
    let app = crate::app().await;
    sql(
        &app,
        &format!(
            "insert into auth.users (id, email)
               select private.uuid_v7(), 'fan' || g || '@test.dev'
               from generate_series(1, {people}) g;
             insert into organizations (name, slug)
               select 'Fan ' || g, 'fan-' || g from generate_series(1, {ORGS}) g;
             insert into memberships (org_id, user_id, role)
               select o.id, u.id, case when (u.n - 1) % {PEOPLE_PER_ORG} = 0 then 'owner'
                                       when (u.n - 1) % {PEOPLE_PER_ORG} < {READ_ALL} then 'admin'
                                       else 'member' end::org_role
               from (select id, row_number() over (order by email) as n from auth.users
                     where email like 'fan%') u
               join (select id, row_number() over (order by slug) as n from organizations
                     where slug like 'fan-%') o
                 on o.n = (u.n - 1) / {PEOPLE_PER_ORG} + 1;",
            people = ORGS * PEOPLE_PER_ORG
        ),
    )
    .await;
    let people: Vec<(Uuid, Uuid, bool)> = sqlx::query_as(
        "select m.user_id, m.org_id, m.role in ('owner', 'admin') from memberships m
         join organizations o on o.id = m.org_id where o.slug like 'fan-%' order by m.user_id",
    )
    .fetch_all(&app.db.owner)
    .await
    .unwrap();

    // Half of the people filter (members by themselves, owners and admins by their org), the
    // other half listen to the whole table and RLS alone decides.
    let mut sockets = Vec::new();
    for (n, (user, org, reads_all)) in people.iter().enumerate() {
        let mut binding = json!({"event": "*", "schema": "public", "table": "time_logs"});
        if n % 2 == 0 {
            binding["filter"] = if *reads_all {
                json!(format!("org_id=eq.{org}"))
            } else {
                json!(format!("user_id=eq.{user}"))
            };
        }
        let mut ws = connect(&app, "1.0.0").await;
        subscribe(
            &mut ws,
            false,
            "realtime:fan",
            &app.user_token(*user),
            json!([binding]),
        )
        .await;
        sockets.push(ws);
    }

    // Writers side by side: each inserts a log for someone, then updates it.
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        let (pool, people) = (app.db.owner.clone(), people.clone());
        writers.spawn(async move {
            let mut written = Vec::new();
            for i in 0..LOGS_PER_WRITER {
                let (user, org, _) = people[(w * 7 + i * 5) % people.len()];
                let id: Uuid = sqlx::query_scalar(
                    "insert into time_logs (org_id, user_id, comment, duration_minutes, status)
                     values ($1, $2, 'fan', 15, 'ready') returning id",
                )
                .bind(org)
                .bind(user)
                .fetch_one(&pool)
                .await
                .unwrap();
                sqlx::query("update time_logs set duration_minutes = 20 where id = $1")
                    .bind(id)
                    .execute(&pool)
                    .await
                    .unwrap();
                written.push((id, user, org));
            }
            written
        });
    }
    let written: Vec<(Uuid, Uuid, Uuid)> = writers.join_all().await.into_iter().flatten().collect();

    let mut expected: Vec<BTreeSet<String>> = Vec::new();
    for (user, org, reads_all) in &people {
        expected.push(
            written
                .iter()
                .filter(|(_, author, log_org)| log_org == org && (*reads_all || author == user))
                .map(|(id, _, _)| id.to_string())
                .collect(),
        );
    }
    let mut readers = JoinSet::new();
    for (n, ws) in sockets.into_iter().enumerate() {
        let wanted = expected[n].len() * 2;
        readers.spawn(async move { (n, collect(ws, wanted).await) });
    }
    let mut total = 0;
    for (n, heard) in readers.join_all().await {
        total += heard.len();
        // Per row: its insert, then its update, nothing else and nothing more.
        let mut per_row: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (op, id) in heard {
            per_row.entry(id).or_default().push(op);
        }
        let rows: BTreeSet<String> = per_row.keys().cloned().collect();
        assert_eq!(
            rows, expected[n],
            "subscriber {n} heard other rows than it may read"
        );
        for (id, ops) in per_row {
            assert_eq!(ops, ["INSERT", "UPDATE"], "subscriber {n}, row {id}");
        }
    }
    let all: usize = expected.iter().map(|e| e.len() * 2).sum();
    assert_eq!(total, all);
}

/// `realtime_slow_clients_dropped_total` in the server's metrics (0 before the first).
async fn dropped(app: &tally_testkit::TestApp) -> f64 {
    crate::metrics(app)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("realtime_slow_clients_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_dropped_and_the_others_hear_everything() {
    let app = crate::app().await;
    let service = app.keys.service_role_key();
    let binding = json!([{"event": "*", "schema": "public", "table": "time_logs"}]);
    let mut reader = connect(&app, "1.0.0").await;
    subscribe(
        &mut reader,
        false,
        "realtime:all",
        &service,
        binding.clone(),
    )
    .await;
    let mut sleeper = connect(&app, "1.0.0").await;
    subscribe(&mut sleeper, false, "realtime:all", &service, binding).await;
    let before = dropped(&app).await;

    // 50 logs with 10,000-character comments, then 30 updates of all of them: 1,550 changes of
    // about 10 KB, more than the sleeper's buffer (4 MiB) and the kernel's socket buffers hold.
    sql(
        &app,
        "insert into auth.users (id, email) values ('00000000-0000-7000-8000-00000000f10d', 'slow@test.dev');
         insert into organizations (id, name, slug) values ('00000000-0000-7000-8000-00000000f10e', 'Slow', 'slow');
         insert into memberships (org_id, user_id, role)
           values ('00000000-0000-7000-8000-00000000f10e', '00000000-0000-7000-8000-00000000f10d', 'member');",
    )
    .await;
    sql(
        &app,
        "insert into time_logs (org_id, user_id, comment, duration_minutes, status)
         select '00000000-0000-7000-8000-00000000f10e', '00000000-0000-7000-8000-00000000f10d',
                repeat('x', 10000), 15, 'ready' from generate_series(1, 50)",
    )
    .await;
    for n in 0..30 {
        sql(
            &app,
            &format!(
                "update time_logs set duration_minutes = {} where user_id = '00000000-0000-7000-8000-00000000f10d'",
                16 + n
            ),
        )
        .await;
    }
    let heard = collect(reader, 50 * 31).await;
    assert_eq!(heard.len(), 50 * 31, "the reader heard every change");
    assert_eq!(dropped(&app).await, before + 1.0, "the sleeper was dropped");
    // What the sleeper finds when it wakes: what was queued, then the end of its socket.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match sleeper.next().await {
                Some(Ok(Ws::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the sleeper's socket was closed");
}
