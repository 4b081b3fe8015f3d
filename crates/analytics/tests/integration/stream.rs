//! A slot on `tally_analytics` read over the replication protocol: committed transactions in
//! order with each change's ordinal, and a new stream resuming after what was confirmed.

use std::time::Duration;

use tally_analytics::{
    pgoutput::Lsn,
    slot,
    stream::{ChangeStream, Op, Transaction},
};
use tally_testkit::TestDb;
use uuid::Uuid;

async fn next(stream: &mut ChangeStream) -> anyhow::Result<Transaction> {
    tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await??
        .ok_or_else(|| anyhow::anyhow!("the stream ended"))
}

#[tokio::test]
async fn transactions_arrive_in_commit_order_and_a_new_stream_resumes_after_the_confirmed()
-> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let slot = format!("s_{}", Uuid::new_v4().simple());
    slot::create(&db.owner, &slot).await?;
    let (org, team, project) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    sqlx::query("insert into organizations (id, name, slug) values ($1, 'R', 'r')")
        .bind(org)
        .execute(&db.owner)
        .await?;
    sqlx::query("insert into teams (id, org_id, name) values ($1, $2, 'Core')")
        .bind(team)
        .bind(org)
        .execute(&db.owner)
        .await?;
    sqlx::query("update teams set name = 'Platform' where id = $1")
        .bind(team)
        .execute(&db.owner)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "begin;
         insert into projects (id, org_id, name) values ('{project}', '{org}', 'Short-lived');
         delete from projects where id = '{project}';
         commit;"
    )))
    .execute(&db.owner)
    .await?;

    let mut stream = ChangeStream::open(db.owner_url(), &slot, "tally_analytics", Lsn(0)).await?;
    let inserted = next(&mut stream).await?;
    let updated = next(&mut stream).await?;
    let both = next(&mut stream).await?;
    assert_eq!(inserted.changes.len(), 1);
    assert_eq!(inserted.changes[0].table, "teams");
    assert_eq!(inserted.changes[0].op, Op::Insert);
    assert_eq!(
        inserted.changes[0].text("org_id"),
        Some(org.to_string().as_str())
    );
    assert_eq!(updated.changes[0].op, Op::Update);
    assert_eq!(updated.changes[0].text("name"), Some("Platform"));
    let ops: Vec<(Op, u32)> = both.changes.iter().map(|c| (c.op, c.ordinal)).collect();
    assert_eq!(ops, [(Op::Insert, 0), (Op::Delete, 1)]);
    assert_eq!(
        both.changes[1].text("org_id"),
        Some(org.to_string().as_str())
    );
    assert!(inserted.commit_lsn < updated.commit_lsn && updated.commit_lsn < both.commit_lsn);

    // The first two are stored downstream: confirmed, then a new stream starts with the third.
    stream.confirm(updated.end_lsn);
    let mut confirmed = Lsn(0);
    for _ in 0..100 {
        confirmed = slot::state(&db.owner, &slot)
            .await?
            .map(|s| s.confirmed_flush)
            .unwrap_or(Lsn(0));
        if confirmed >= updated.end_lsn {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        confirmed >= updated.end_lsn,
        "{confirmed} < {}",
        updated.end_lsn
    );
    stream.close().await?;
    let mut again = ChangeStream::open(db.owner_url(), &slot, "tally_analytics", Lsn(0)).await?;
    let resumed = next(&mut again).await?;
    assert_eq!(resumed.commit_lsn, both.commit_lsn);
    assert_eq!(resumed.changes, both.changes);
    again.close().await?;

    // Stored downstream but not yet confirmed to the slot (a crash in between): a stream
    // opened from the stored position skips what the slot would send again.
    sqlx::query("insert into teams (org_id, name) values ($1, 'Later')")
        .bind(org)
        .execute(&db.owner)
        .await?;
    let mut third =
        ChangeStream::open(db.owner_url(), &slot, "tally_analytics", both.end_lsn).await?;
    let later = next(&mut third).await?;
    assert!(later.commit_lsn > both.commit_lsn);
    assert_eq!(later.changes[0].text("name"), Some("Later"));
    third.close().await?;

    assert!(slot::drop(&db.owner, &slot).await?, "the slot was there");
    assert_eq!(slot::state(&db.owner, &slot).await?, None);
    Ok(())
}
