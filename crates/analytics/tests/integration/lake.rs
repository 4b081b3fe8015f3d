//! The replicator into the Parquet lake, read back by DuckDB (an independent reader): after
//! the initial copy, inserts, updates, soft and hard deletes, and the replicator dropped mid-
//! stream three times, the lake's current state per org equals PostgreSQL's, and no change
//! appears twice across files.

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use anyhow::Context;
use object_store::{ObjectStore, local::LocalFileSystem};
use serde_json::Value as Json;
use tally_analytics::{
    lake::Lake,
    progress,
    replicator::{Destination, Options, PUBLICATION, Replicator},
    slot,
    stream::ChangeStream,
};
use tally_testkit::TestDb;
use tokio::sync::watch;
use uuid::Uuid;

/// Per org: [count, sum of minutes, sum of versions] of the live logs, as PostgreSQL has them.
pub async fn postgres_totals(db: &TestDb) -> anyhow::Result<Json> {
    let rows: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "select org_id, count(*), sum(duration_minutes)::int8, sum(version)::int8
           from time_logs where deleted_at is null group by org_id",
    )
    .fetch_all(&db.owner)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(org, n, minutes, versions)| {
            (org.to_string(), serde_json::json!([n, minutes, versions]))
        })
        .collect::<serde_json::Map<_, _>>()
        .into())
}

/// What DuckDB reads in the lake under `root` (`args`: none for the logs' totals, or a table
/// and a column).
fn lake(root: &Path) -> anyhow::Result<Json> {
    read_lake(root, &[])
}

fn read_lake(root: &Path, args: &[&str]) -> anyhow::Result<Json> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let deps = here.join(".deps");
    anyhow::ensure!(
        deps.join("duckdb").exists(),
        "DuckDB is not installed in {}: ./scripts/test installs it",
        deps.display()
    );
    let out = Command::new("python3")
        .arg(here.join("lake.py"))
        .arg(root)
        .args(args)
        .env("PYTHONPATH", &deps)
        .output()
        .context("running python3")?;
    anyhow::ensure!(
        out.status.success(),
        "lake.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Waits (up to 60 s) until the lake's totals equal PostgreSQL's; returns the lake's reading.
async fn caught_up(db: &TestDb, root: &Path) -> anyhow::Result<Json> {
    let expected = postgres_totals(db).await?;
    let mut seen = Json::Null;
    for _ in 0..120 {
        // A folder whose first file is still being written reads as an error: not yet.
        if root.join("_analytics/lake/time_logs").exists() {
            match lake(root) {
                Ok(read) if read["totals"] == expected => return Ok(read),
                Ok(read) => seen = read,
                Err(e) => seen = Json::from(e.to_string()),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the lake never caught up: {seen} against {expected}")
}

pub async fn seed(
    db: &TestDb,
    orgs: &[Uuid],
    users: &[Uuid],
    logs_each: usize,
) -> anyhow::Result<()> {
    for (i, (org, user)) in orgs.iter().zip(users).enumerate() {
        sqlx::query("insert into auth.users (id, email) values ($1, $2)")
            .bind(user)
            .bind(format!("u{i}@lake.test"))
            .execute(&db.owner)
            .await?;
        sqlx::query("insert into organizations (id, name, slug) values ($1, $2, $2)")
            .bind(org)
            .bind(format!("lake{i}"))
            .execute(&db.owner)
            .await?;
        sqlx::query("insert into memberships (org_id, user_id, role) values ($1, $2, 'member')")
            .bind(org)
            .bind(user)
            .execute(&db.owner)
            .await?;
        insert_logs(db, *org, *user, logs_each).await?;
    }
    Ok(())
}

async fn insert_logs(db: &TestDb, org: Uuid, user: Uuid, n: usize) -> anyhow::Result<()> {
    sqlx::query(
        "insert into time_logs (org_id, user_id, comment, duration_minutes, status)
         select $1, $2, 'private', 5 + (g % 90), 'ready' from generate_series(1, $3) g",
    )
    .bind(org)
    .bind(user)
    .bind(i32::try_from(n)?)
    .execute(&db.owner)
    .await?;
    Ok(())
}

/// Some of every kind of change, in several transactions.
pub async fn churn(db: &TestDb, org: Uuid, user: Uuid) -> anyhow::Result<()> {
    insert_logs(db, org, user, 40).await?;
    sqlx::query(
        "update time_logs set duration_minutes = duration_minutes + 7
          where id in (select id from time_logs where org_id = $1 and deleted_at is null
                        order by id limit 25)",
    )
    .bind(org)
    .execute(&db.owner)
    .await?;
    sqlx::query(
        "update time_logs set deleted_at = now()
          where id in (select id from time_logs where org_id = $1 and deleted_at is null
                        order by id desc limit 5)",
    )
    .bind(org)
    .execute(&db.owner)
    .await?;
    sqlx::query(
        "delete from time_logs
          where id in (select id from time_logs where org_id = $1 order by id limit 4)",
    )
    .bind(org)
    .execute(&db.owner)
    .await?;
    Ok(())
}

/// A replicator into the lake in `store`, with small batches so that a few hundred changes
/// make many files.
fn into_lake(db: &TestDb, store: &Arc<dyn ObjectStore>) -> Replicator {
    Replicator::new(
        db.owner.clone(),
        db.owner_url().to_owned(),
        Destination::Lake(Lake::new(store.clone())),
        small_batches(250),
    )
}

/// Small batches, a short flush interval and a small buffer, so that a few hundred changes
/// make many batches; the initial copy in chunks of `copy_chunk_rows`.
pub fn small_batches(copy_chunk_rows: usize) -> Options {
    Options {
        batch_rows: 60,
        flush_interval: Duration::from_millis(100),
        buffer: 8,
        copy_chunk_rows,
    }
}

#[tokio::test]
async fn the_lake_holds_what_postgres_holds_through_copy_changes_and_restarts() -> anyhow::Result<()>
{
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path())?);
    let orgs = [Uuid::now_v7(), Uuid::now_v7()];
    let users = [Uuid::now_v7(), Uuid::now_v7()];
    seed(&db, &orgs, &users, 300).await?;

    let replicator = || into_lake(&db, &store);
    let (stop, stopped) = watch::channel(false);
    let mut running = tokio::spawn(replicator().run(stopped.clone()));
    let copied = caught_up(&db, dir.path()).await?;
    assert_eq!(copied["duplicates"], 0);
    let stored = progress::load(&db.owner, "lake")
        .await?
        .context("progress stored")?;
    assert!(stored.copied);
    assert_eq!(stored.slot, format!("tally_analytics_lake_{}", db.name()));

    for (org, user) in orgs.iter().zip(&users) {
        churn(&db, *org, *user).await?;
    }
    caught_up(&db, dir.path()).await?;

    // Dropped mid-stream, three times, with writes before and after each drop.
    for round in 0..3u64 {
        churn(&db, orgs[0], users[0]).await?;
        tokio::time::sleep(Duration::from_millis(40 * (round + 1))).await;
        running.abort();
        let _ = running.await;
        churn(&db, orgs[1], users[1]).await?;
        running = tokio::spawn(replicator().run(stopped.clone()));
    }
    let last = caught_up(&db, dir.path()).await?;
    assert_eq!(last["duplicates"], 0, "a change in two files: {last}");
    let after = progress::load(&db.owner, "lake")
        .await?
        .context("progress stored")?;
    assert_eq!(after.resyncs, 0, "no restart copied again");
    assert!(after.lsn > stored.lsn);

    let _ = stop.send(true);
    running.await?;
    Ok(())
}

#[tokio::test]
async fn a_crash_between_a_lake_file_and_its_progress_writes_no_change_twice() -> anyhow::Result<()>
{
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path())?);
    let (org, user) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&db, &[org], &[user], 50).await?;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(into_lake(&db, &store).run(stopped));
    caught_up(&db, dir.path()).await?;
    let _ = stop.send(true);
    running.await?;
    let stored = progress::load(&db.owner, "lake")
        .await?
        .context("progress stored")?;

    // Changes arrive and reach the lake, and the replicator dies before storing its progress:
    // exactly what a kill -9 between the file and the progress record leaves behind.
    for _ in 0..3 {
        churn(&db, org, user).await?;
    }
    let mut stream =
        ChangeStream::open(db.owner_url(), &stored.slot, PUBLICATION, stored.lsn).await?;
    let mut written = Vec::new();
    for _ in 0..5 {
        let tx = tokio::time::timeout(Duration::from_secs(15), stream.next())
            .await??
            .context("the stream ended")?;
        written.push(tx);
    }
    Lake::new(store.clone()).write(&written).await?;
    stream.close().await?;
    assert_eq!(progress::load(&db.owner, "lake").await?, Some(stored));

    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(into_lake(&db, &store).run(stopped));
    let last = caught_up(&db, dir.path()).await?;
    assert_eq!(last["duplicates"], 0, "a change in two files: {last}");
    let _ = stop.send(true);
    running.await?;
    Ok(())
}

#[tokio::test]
async fn a_lost_slot_makes_one_full_copy_and_the_lake_still_equals_postgres() -> anyhow::Result<()>
{
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path())?);
    let (org, user) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&db, &[org], &[user], 80).await?;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(into_lake(&db, &store).run(stopped));
    caught_up(&db, dir.path()).await?;
    let _ = stop.send(true);
    running.await?;
    let before = progress::load(&db.owner, "lake")
        .await?
        .context("progress stored")?;

    // While it is stopped its slot goes (as when the WAL cap takes it: PostgreSQL removes
    // the WAL it would stream next), and writes go on.
    slot::drop(&db.owner, &before.slot).await?;
    churn(&db, org, user).await?;

    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(into_lake(&db, &store).run(stopped));
    let last = caught_up(&db, dir.path()).await?;
    assert_eq!(last["duplicates"], 0, "{last}");
    let after = progress::load(&db.owner, "lake")
        .await?
        .context("progress stored")?;
    assert_eq!(after.resyncs, 1, "one full copy");
    assert!(after.copied);
    // Changes made after the new copy stream as before.
    churn(&db, org, user).await?;
    caught_up(&db, dir.path()).await?;
    assert_eq!(
        progress::load(&db.owner, "lake").await?.map(|p| p.resyncs),
        Some(1)
    );
    let _ = stop.send(true);
    running.await?;
    Ok(())
}

#[tokio::test]
async fn a_lake_that_fails_for_a_while_lets_writes_go_on_then_catches_up() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path())?);
    let (org, user) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&db, &[org], &[user], 60).await?;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(into_lake(&db, &store).run(stopped));
    caught_up(&db, dir.path()).await?;
    let stored = progress::load(&db.owner, "lake")
        .await?
        .context("progress stored")?;
    // The lake's directory becomes a file: every write to the lake fails, as a full or
    // broken disk would make it.
    let lake = dir.path().join("_analytics");
    let away = dir.path().join("_analytics.away");
    std::fs::rename(&lake, &away)?;
    std::fs::write(&lake, b"not a directory")?;
    // Where the WAL ended once the first writes committed. The slot may confirm keepalive
    // positions inside a transaction not yet whole (it is replayed from its commit), never
    // a stored one — so it stays before this point. (Not its byte lag: that counts the whole
    // cluster's WAL, which other tests write too.)
    let mut first_committed = None;
    for _ in 0..4 {
        let started = std::time::Instant::now();
        churn(&db, org, user).await?;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "writes never wait on the lake"
        );
        if first_committed.is_none() {
            let lsn: String = sqlx::query_scalar("select pg_current_wal_insert_lsn()::text")
                .fetch_one(&db.owner)
                .await?;
            first_committed = Some(lsn);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held: bool = sqlx::query_scalar(
        "select confirmed_flush_lsn < $1::pg_lsn from pg_replication_slots where slot_name = $2",
    )
    .bind(&first_committed)
    .bind(&stored.slot)
    .fetch_one(&db.owner)
    .await?;
    assert!(held, "the slot holds what the lake has not stored");
    assert_eq!(
        progress::load(&db.owner, "lake").await?.map(|p| p.lsn),
        Some(stored.lsn),
        "no progress while the lake fails"
    );

    // Back: the batch is written again and the rest drains.
    std::fs::remove_file(&lake)?;
    std::fs::rename(&away, &lake)?;
    let last = caught_up(&db, dir.path()).await?;
    assert_eq!(last["duplicates"], 0, "{last}");
    let _ = stop.send(true);
    running.await?;
    Ok(())
}

#[tokio::test]
async fn an_added_column_appears_and_a_retyped_one_copies_its_table_again() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path())?);
    let (org, user) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&db, &[org], &[user], 10).await?;
    sqlx::query("insert into teams (org_id, name) values ($1, 'Before')")
        .bind(org)
        .execute(&db.owner)
        .await?;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(into_lake(&db, &store).run(stopped));
    caught_up(&db, dir.path()).await?;
    let teams = |expect: Json| {
        let root = dir.path().to_owned();
        async move {
            let mut seen = Json::Null;
            for _ in 0..60 {
                // Until a file has the column, DuckDB cannot find it: not yet.
                seen = read_lake(&root, &["teams", "rank"])
                    .unwrap_or_else(|e| Json::String(e.to_string()));
                if seen == expect {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            anyhow::bail!("teams in the lake: {seen}, expected {expect}")
        }
    };
    let ids: Vec<(Uuid, String)> = sqlx::query_as("select id, name from teams where org_id = $1")
        .bind(org)
        .fetch_all(&db.owner)
        .await?;
    let before = ids[0].0.to_string();

    // An added column: new files carry it, the old ones read as null.
    sqlx::raw_sql("alter table teams add column rank int4")
        .execute(&db.owner)
        .await?;
    let ranked: Uuid = sqlx::query_scalar(
        "insert into teams (org_id, name, rank) values ($1, 'Ranked', 5) returning id",
    )
    .bind(org)
    .fetch_one(&db.owner)
    .await?;
    teams(serde_json::json!({
        "rows": {before.clone(): null, ranked.to_string(): "5"},
        "types": ["INT64"],
    }))
    .await?;

    // A changed type: the table is copied again, every file of it in the new type.
    sqlx::raw_sql("alter table teams alter column rank type text using rank::text")
        .execute(&db.owner)
        .await?;
    sqlx::query("update teams set rank = 'first' where id = $1")
        .bind(ranked)
        .execute(&db.owner)
        .await?;
    teams(serde_json::json!({
        "rows": {before: null, ranked.to_string(): "first"},
        "types": ["BYTE_ARRAY"],
    }))
    .await?;
    assert_eq!(
        progress::load(&db.owner, "lake").await?.map(|p| p.resyncs),
        Some(0),
        "only the table, not the lake, was copied again"
    );
    let _ = stop.send(true);
    running.await?;
    Ok(())
}
