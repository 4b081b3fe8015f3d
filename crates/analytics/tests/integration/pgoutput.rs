//! A pgoutput slot on the `tally_analytics` publication, read with
//! `pg_logical_slot_get_binary_changes` and decoded: what each change carries.

use std::collections::HashMap;

use tally_analytics::{
    pgoutput::{Message, OldRow, Relation, Value, decode},
    slot,
};
use tally_testkit::TestDb;
use uuid::Uuid;

/// Every message the slot holds now, decoded. Decoding reads the WAL written to disk, and the
/// test cluster commits without waiting for that (`synchronous_commit=off`): wait for it.
async fn changes(db: &TestDb, slot: &str) -> anyhow::Result<Vec<Message>> {
    let written: String = sqlx::query_scalar("select pg_current_wal_insert_lsn()::text")
        .fetch_one(&db.owner)
        .await?;
    for _ in 0..100 {
        let flushed: bool =
            sqlx::query_scalar("select pg_current_wal_flush_lsn() >= $1::text::pg_lsn")
                .bind(&written)
                .fetch_one(&db.owner)
                .await?;
        if flushed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let raw: Vec<Vec<u8>> = sqlx::query_scalar(
        "select data from pg_logical_slot_get_binary_changes($1, null, null, \
           'proto_version', '1', 'publication_names', 'tally_analytics')",
    )
    .bind(slot)
    .fetch_all(&db.owner)
    .await?;
    Ok(raw.iter().map(|m| decode(m)).collect::<Result<_, _>>()?)
}

fn text(values: &[Value], relation: &Relation, column: &str) -> Option<String> {
    let i = relation.columns.iter().position(|c| c.name == column)?;
    match &values[i] {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn the_stream_carries_org_id_into_deletes_and_never_a_comment() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let slot = format!("t_{}", Uuid::new_v4().simple());
    slot::create(&db.owner, &slot).await?;
    let (org, user, log) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // 50 tags of 96 random characters: too large to stay in the row even compressed.
    let big_tags: Vec<String> = (0..50)
        .map(|_| {
            (0..3)
                .map(|_| Uuid::new_v4().simple().to_string())
                .collect()
        })
        .collect();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (id, email) values ('{user}', 's@s.test');
         insert into organizations (id, name, slug) values ('{org}', 'S', 's');
         insert into memberships (org_id, user_id, role) values ('{org}', '{user}', 'member');
         insert into time_logs (id, org_id, user_id, comment, duration_minutes, status)
           values ('{log}', '{org}', '{user}', 'a private comment', 30, 'ready');"
    )))
    .execute(&db.owner)
    .await?;
    // A log whose tags are stored out of line, then changed elsewhere; then deleted for good.
    sqlx::query("update time_logs set tags = $2 where id = $1")
        .bind(log)
        .bind(&big_tags)
        .execute(&db.owner)
        .await?;
    sqlx::query("update time_logs set duration_minutes = 45 where id = $1")
        .bind(log)
        .execute(&db.owner)
        .await?;
    sqlx::query("delete from time_logs where id = $1")
        .bind(log)
        .execute(&db.owner)
        .await?;
    sqlx::query("delete from memberships where org_id = $1")
        .bind(org)
        .execute(&db.owner)
        .await?;

    let messages = changes(&db, &slot).await?;
    let relations: HashMap<u32, Relation> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Relation(r) => Some((r.oid, r.clone())),
            _ => None,
        })
        .collect();
    let logs = relations
        .values()
        .find(|r| r.name == "time_logs")
        .unwrap_or_else(|| panic!("time_logs described: {messages:#?}"));
    assert!(logs.columns.iter().all(|c| c.name != "comment"));
    let keys: Vec<&str> = logs
        .columns
        .iter()
        .filter(|c| c.key)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(keys, ["id", "org_id", "user_id"]);
    assert_eq!(logs.replica_identity, 'i');

    let on_logs: Vec<&Message> = messages
        .iter()
        .filter(|m| match m {
            Message::Insert { relation, .. }
            | Message::Update { relation, .. }
            | Message::Delete { relation, .. } => *relation == logs.oid,
            _ => false,
        })
        .collect();
    assert_eq!(on_logs.len(), 4, "{on_logs:#?}");
    let Message::Insert { new, .. } = on_logs[0] else {
        panic!("an insert first: {on_logs:#?}")
    };
    assert_eq!(text(new, logs, "org_id"), Some(org.to_string()));
    assert_eq!(text(new, logs, "duration_minutes").as_deref(), Some("30"));
    // The second update left the out-of-line tags alone, yet they come in full: time_logs'
    // BEFORE UPDATE triggers set NEW's version and times, and PostgreSQL then writes every
    // column anew — so "unchanged TOAST" (and its known CDC failure, values arriving as NULL)
    // does not happen on this table.
    let Message::Update { new, .. } = on_logs[2] else {
        panic!("updates next: {on_logs:#?}")
    };
    assert_eq!(
        text(new, logs, "tags"),
        Some(format!("{{{}}}", big_tags.join(",")))
    );
    assert_eq!(text(new, logs, "duration_minutes").as_deref(), Some("45"));
    // The hard delete carries the identity: id, org and person.
    let Message::Delete {
        old: (kind, old), ..
    } = on_logs[3]
    else {
        panic!("a delete last: {on_logs:#?}")
    };
    assert_eq!(*kind, OldRow::Key);
    assert_eq!(text(old, logs, "id"), Some(log.to_string()));
    assert_eq!(text(old, logs, "org_id"), Some(org.to_string()));

    // A FULL identity's delete carries the whole row.
    let memberships = relations
        .values()
        .find(|r| r.name == "memberships")
        .expect("memberships described");
    let deleted = messages
        .iter()
        .find_map(|m| match m {
            Message::Delete { relation, old } if *relation == memberships.oid => Some(old),
            _ => None,
        })
        .expect("the membership's delete");
    assert_eq!(deleted.0, OldRow::Full);
    assert_eq!(
        text(&deleted.1, memberships, "role").as_deref(),
        Some("member")
    );
    assert_eq!(
        text(&deleted.1, memberships, "org_id"),
        Some(org.to_string())
    );

    // Each transaction is framed by its begin and commit, in commit order.
    let commits: Vec<u64> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Commit { commit_lsn, .. } => Some(commit_lsn.0),
            _ => None,
        })
        .collect();
    assert!(commits.len() >= 5, "{commits:?}");
    assert!(commits.windows(2).all(|w| w[0] < w[1]));

    slot::drop(&db.owner, &slot).await?;
    Ok(())
}
