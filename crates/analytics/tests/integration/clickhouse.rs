//! The replicator into ClickHouse through the official Rust client over HTTP: a real server
//! where `TALLY_TEST_CLICKHOUSE_URL` names one, otherwise the ClickHouse engine of chDB behind
//! a small test-only HTTP front (tests/python/clickhouse_shim.py). After the initial copy,
//! inserts, updates, soft and hard deletes and the replicator dropped mid-stream three times,
//! the current view per org equals PostgreSQL, with no id twice; a person's rows erased leave
//! the current views.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value as Json;
use tally_analytics::{
    clickhouse::{ClickHouse, ClickHouseSettings},
    progress,
    replicator::{Destination, Options, Replicator},
};
use tally_testkit::{ClickHouseServer, TestDb};
use tokio::sync::watch;
use uuid::Uuid;

use crate::lake::{churn, postgres_totals, seed, small_batches};

/// A ClickHouse destination in a database of its own on `server`.
fn destination(server: &ClickHouseServer, db: &TestDb) -> ClickHouse {
    ClickHouse::new(
        &ClickHouseSettings {
            url: server.url.clone(),
            database: format!("t_{}", Uuid::new_v4().simple()),
            user: None,
            password: None,
        },
        db.owner.clone(),
    )
}

/// Per org: [count, sum of minutes, sum of versions] of the live logs in the current view,
/// and how many ids the view holds more than once.
async fn clickhouse_totals(ch: &ClickHouse) -> anyhow::Result<(Json, i64)> {
    let logs = ch.table("time_logs__current");
    let bytes = ch
        .client()
        .query(&format!(
            "SELECT toString(org_id) AS org, count() AS n, sum(duration_minutes) AS minutes, \
             sum(version) AS versions FROM {logs} WHERE deleted_at IS NULL GROUP BY org_id"
        ))
        .fetch_bytes("JSONEachRow")?
        .collect()
        .await?;
    let mut totals = serde_json::Map::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let row: Json = serde_json::from_slice(line)?;
        let number = |key: &str| -> i64 {
            match &row[key] {
                Json::Number(n) => n.as_i64().unwrap_or_default(),
                Json::String(s) => s.parse().unwrap_or_default(),
                _ => 0,
            }
        };
        totals.insert(
            row["org"].as_str().unwrap_or_default().to_owned(),
            serde_json::json!([number("n"), number("minutes"), number("versions")]),
        );
    }
    let twice = ch
        .client()
        .query(&format!(
            "SELECT count() - uniqExact(id) AS twice FROM {logs}"
        ))
        .fetch_bytes("TabSeparated")?
        .collect()
        .await?;
    let twice = String::from_utf8_lossy(&twice).trim().parse().unwrap_or(-1);
    Ok((totals.into(), twice))
}

/// Waits (up to 60 s) until ClickHouse's current view equals PostgreSQL.
async fn caught_up(db: &TestDb, ch: &ClickHouse) -> anyhow::Result<()> {
    let expected = postgres_totals(db).await?;
    let mut seen = String::new();
    for _ in 0..120 {
        match clickhouse_totals(ch).await {
            Ok((totals, twice)) if totals == expected => {
                anyhow::ensure!(twice == 0, "{twice} ids twice in the current view");
                return Ok(());
            }
            Ok((totals, _)) => seen = totals.to_string(),
            Err(e) => seen = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("ClickHouse never caught up: {seen} against {expected}")
}

#[tokio::test]
async fn clickhouse_holds_what_postgres_holds_through_copy_changes_and_restarts()
-> anyhow::Result<()> {
    let server = ClickHouseServer::start().await?;
    let db = TestDb::new().await?;
    let ch = destination(&server, &db);
    let orgs = [Uuid::now_v7(), Uuid::now_v7()];
    let users = [Uuid::now_v7(), Uuid::now_v7()];
    seed(&db, &orgs, &users, 200).await?;
    let replicator = || {
        Replicator::new(
            db.owner.clone(),
            db.owner_url().to_owned(),
            Destination::ClickHouse(Box::new(ch.clone())),
            small_batches(150),
        )
    };
    let (stop, stopped) = watch::channel(false);
    let mut running = tokio::spawn(replicator().run(stopped.clone()));
    caught_up(&db, &ch).await?;
    for (org, user) in orgs.iter().zip(&users) {
        churn(&db, *org, *user).await?;
    }
    caught_up(&db, &ch).await?;
    for round in 0..3u64 {
        churn(&db, orgs[0], users[0]).await?;
        tokio::time::sleep(Duration::from_millis(40 * (round + 1))).await;
        running.abort();
        let _ = running.await;
        churn(&db, orgs[1], users[1]).await?;
        running = tokio::spawn(replicator().run(stopped.clone()));
    }
    caught_up(&db, &ch).await?;
    let stored = progress::load(&db.owner, "clickhouse")
        .await?
        .context("progress stored")?;
    assert_eq!(stored.resyncs, 0);
    // A hard delete leaves a tombstone carrying the org, and the row leaves the current view.
    let gone: Uuid = sqlx::query_scalar(
        "delete from time_logs where id = (select id from time_logs order by id limit 1) returning id",
    )
    .fetch_one(&db.owner)
    .await?;
    caught_up(&db, &ch).await?;
    let tombstone = ch
        .client()
        .query(&format!(
            "SELECT toString(org_id) FROM {} WHERE id = '{gone}' AND _deleted = 1",
            ch.table("time_logs")
        ))
        .fetch_bytes("TabSeparated")?
        .collect()
        .await?;
    assert!(
        orgs.iter()
            .any(|o| String::from_utf8_lossy(&tombstone).trim() == o.to_string()),
        "the delete carries its org: {:?}",
        String::from_utf8_lossy(&tombstone)
    );
    // A person's data erased (the rows GDPR erasure removes): none of it stays in the current
    // views, and the other person's totals still equal PostgreSQL's.
    let erased = users[1];
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "delete from time_logs where user_id = '{erased}';
         delete from memberships where user_id = '{erased}';"
    )))
    .execute(&db.owner)
    .await?;
    caught_up(&db, &ch).await?;
    for table in ["time_logs", "memberships"] {
        until_selects(
            &ch,
            &format!(
                "SELECT count() FROM {} WHERE user_id = '{erased}'",
                ch.table(&format!("{table}__current"))
            ),
            "0",
        )
        .await?;
    }
    let _ = stop.send(true);
    running.await?;
    Ok(())
}

/// The text of one value `sql` selects, polled (up to 30 s) until it is `expected`.
async fn until_selects(ch: &ClickHouse, sql: &str, expected: &str) -> anyhow::Result<()> {
    let mut seen = String::new();
    for _ in 0..60 {
        match ch.client().query(sql).fetch_bytes("TabSeparated") {
            Ok(mut cursor) => match cursor.collect().await {
                Ok(bytes) => seen = String::from_utf8_lossy(&bytes).trim().to_owned(),
                Err(e) => seen = e.to_string(),
            },
            Err(e) => seen = e.to_string(),
        }
        if seen == expected {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("{sql}: {seen:?}, expected {expected:?}")
}

#[tokio::test]
async fn clickhouse_adds_a_new_column_and_copies_a_retyped_table_again() -> anyhow::Result<()> {
    let server = ClickHouseServer::start().await?;
    let db = TestDb::new().await?;
    let ch = destination(&server, &db);
    let (org, user) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&db, &[org], &[user], 5).await?;
    let team: Uuid =
        sqlx::query_scalar("insert into teams (org_id, name) values ($1, 'Core') returning id")
            .bind(org)
            .fetch_one(&db.owner)
            .await?;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(
        Replicator::new(
            db.owner.clone(),
            db.owner_url().to_owned(),
            Destination::ClickHouse(Box::new(ch.clone())),
            Options {
                flush_interval: Duration::from_millis(100),
                ..Options::default()
            },
        )
        .run(stopped),
    );
    caught_up(&db, &ch).await?;
    let teams = ch.table("teams__current");

    sqlx::raw_sql("alter table teams add column rank int4")
        .execute(&db.owner)
        .await?;
    sqlx::query("update teams set rank = 5 where id = $1")
        .bind(team)
        .execute(&db.owner)
        .await?;
    let rank = format!("SELECT toTypeName(rank), rank FROM {teams} WHERE id = '{team}'");
    until_selects(&ch, &rank, "Nullable(Int32)\t5").await?;

    sqlx::raw_sql("alter table teams alter column rank type text using rank::text")
        .execute(&db.owner)
        .await?;
    sqlx::query("update teams set rank = 'first' where id = $1")
        .bind(team)
        .execute(&db.owner)
        .await?;
    until_selects(&ch, &rank, "Nullable(String)\tfirst").await?;
    let _ = stop.send(true);
    running.await?;
    Ok(())
}
