//! Bad data is refused by the database itself, with its own error, and nothing is written.

use crate::fixture::Fixture;
use tally_testkit::TestDb;

/// (what, SQL run as member m1, expected SQLSTATE).
const BAD_LOGS: &[(&str, &str, &str)] = &[
    (
        "negative duration",
        "insert into time_logs (org_id, user_id, duration_minutes) values ({org_a}, {uid}, -5)",
        "23514",
    ),
    (
        "duration over a day",
        "insert into time_logs (org_id, user_id, duration_minutes) values ({org_a}, {uid}, 1441)",
        "23514",
    ),
    (
        "end before start",
        "insert into time_logs (org_id, user_id, started_at, ended_at) values ({org_a}, {uid}, '2026-11-02 10:00Z', '2026-11-02 09:00Z')",
        "23514",
    ),
    (
        "end equal to start",
        "insert into time_logs (org_id, user_id, started_at, ended_at) values ({org_a}, {uid}, '2026-11-02 10:00Z', '2026-11-02 10:00Z')",
        "23514",
    ),
    (
        "duration that disagrees with start and end",
        "insert into time_logs (org_id, user_id, started_at, ended_at, duration_minutes) values ({org_a}, {uid}, '2026-11-02 09:00Z', '2026-11-02 10:00Z', 90)",
        "23514",
    ),
    (
        "unknown status",
        "insert into time_logs (org_id, user_id, status) values ({org_a}, {uid}, 'done')",
        "22P02",
    ),
    (
        "unknown source",
        "insert into time_logs (org_id, user_id, source) values ({org_a}, {uid}, 'fax')",
        "22P02",
    ),
    (
        "confidence above 1",
        "insert into time_logs (org_id, user_id, ai_confidence) values ({org_a}, {uid}, 1.5)",
        "23514",
    ),
    (
        "a log in an org the user is not in",
        "insert into time_logs (org_id, user_id) values ({org_b}, {uid})",
        "42501",
    ),
    (
        "another org's project",
        "insert into time_logs (org_id, user_id, project_id) values ({org_a}, {uid}, {project_b})",
        "23503",
    ),
    (
        "a made-up activity type",
        "insert into time_logs (org_id, user_id, activity_type_id) values ({org_a}, {uid}, {new})",
        "23503",
    ),
    (
        "an update to a bad duration",
        "update time_logs set duration_minutes = 2000 where id = {log_m1}",
        "23514",
    ),
    (
        "an update moving the end before the start",
        "update time_logs set ended_at = '2026-11-01 00:00Z' where id = {log_m1}",
        "23514",
    ),
];

#[tokio::test]
async fn bad_time_logs_are_refused_and_nothing_is_written() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let fixture = Fixture::create(&db.owner).await?;
    let count_and_checksum =
        "select count(*)::text || md5(string_agg(t::text, ',' order by id)) from time_logs t";
    let before: String = sqlx::query_scalar(count_and_checksum)
        .fetch_one(&db.owner)
        .await?;
    for (what, sql, code) in BAD_LOGS {
        let sql = fixture.render(sql, Some(fixture.id("member")));
        let mut tx = fixture.begin_as(&db.requests, "member").await?;
        let result = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{what}: was accepted"));
        let db_err = err
            .as_database_error()
            .unwrap_or_else(|| panic!("{what}: {err}"));
        assert_eq!(
            db_err.code().as_deref(),
            Some(*code),
            "{what}: {}",
            db_err.message()
        );
        // The transaction is aborted: the request layer rolls it back.
        tx.rollback().await?;
    }
    let after: String = sqlx::query_scalar(count_and_checksum)
        .fetch_one(&db.owner)
        .await?;
    assert_eq!(before, after, "a refused statement changed time_logs");
    Ok(())
}

#[tokio::test]
async fn duration_is_filled_from_start_and_end() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let fixture = Fixture::create(&db.owner).await?;
    let duration: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(fixture.render(
        "select duration_minutes from time_logs where id = {log_m1}",
        None,
    )))
    .fetch_one(&db.owner)
    .await?;
    assert_eq!(duration, 90);
    Ok(())
}

#[tokio::test]
async fn an_org_keeps_at_least_one_owner() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let fixture = Fixture::create(&db.owner).await?;
    // The only owner cannot step down or leave...
    for sql in [
        "update memberships set role = 'admin' where org_id = {org_a} and user_id = {owner}",
        "delete from memberships where org_id = {org_a} and user_id = {owner}",
    ] {
        let mut tx = fixture.begin_as(&db.requests, "owner").await?;
        let err = sqlx::query(sqlx::AssertSqlSafe(fixture.render(sql, None)))
            .execute(&mut *tx)
            .await
            .expect_err("the last owner left");
        assert_eq!(
            err.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("23514")
        );
        assert!(err.to_string().contains("at least one owner"), "{err}");
        tx.rollback().await?;
    }
    // ...but can once another owner exists, and deleting the org itself is fine.
    let mut tx = fixture.begin_as(&db.requests, "owner").await?;
    for sql in [
        "update memberships set role = 'owner' where org_id = {org_a} and user_id = {admin}",
        "update memberships set role = 'member' where org_id = {org_a} and user_id = {owner}",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(fixture.render(sql, None)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let mut tx = fixture.begin_as(&db.requests, "admin").await?;
    let deleted = sqlx::query(sqlx::AssertSqlSafe(
        fixture.render("delete from organizations where id = {org_a}", None),
    ))
    .execute(&mut *tx)
    .await?;
    assert_eq!(deleted.rows_affected(), 1);
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn versions_count_updates_whatever_the_client_sends() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let fixture = Fixture::create(&db.owner).await?;
    let mut tx = fixture.begin_as(&db.requests, "member").await?;
    let (version, updated_later): (i32, bool) =
        sqlx::query_as(sqlx::AssertSqlSafe(fixture.render(
            "update time_logs set comment = 'v2', version = 99 where id = {log_m1} \
         returning version, updated_at > created_at",
            None,
        )))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    assert_eq!(version, 2);
    assert!(updated_later);
    Ok(())
}
