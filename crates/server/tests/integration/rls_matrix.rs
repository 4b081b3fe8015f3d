//! The role matrix of DESIGN §2, table by table: each row is one statement and what each
//! actor may do with it (Y: it succeeds and touches the row, N: it fails or sees nothing).
//! Actors, in column order: owner, admin, manager, member (m1, in the team the manager
//! leads), viewer, other (owner of another org), anon. Every statement runs through the
//! per-request transaction as the real request role, and is rolled back.

use crate::fixture::{ACTORS, Fixture};
use tally_testkit::TestDb;

/// (what, SQL, expectations for owner admin manager member viewer other anon).
const MATRIX: &[(&str, &str, &str)] = &[
    // organizations: read by the org; owners and admins write; owners delete; created only
    // through create_organization().
    (
        "org A: select",
        "select id from organizations where id = {org_a}",
        "YYYYYNN",
    ),
    (
        "org B: select",
        "select id from organizations where id = {org_b}",
        "NNNNNYN",
    ),
    (
        "org A: update",
        "update organizations set name = name where id = {org_a} returning id",
        "YYNNNNN",
    ),
    (
        "org A: delete",
        "delete from organizations where id = {org_a} returning id",
        "YNNNNNN",
    ),
    (
        "org: insert",
        "insert into organizations (name, slug) values ('X', '{slug}')",
        "NNNNNNN",
    ),
    // memberships: read by the org; owners manage all; admins manage manager/member/viewer.
    (
        "membership m1: select",
        "select id from memberships where org_id = {org_a} and user_id = {member}",
        "YYYYYNN",
    ),
    (
        "membership: add member",
        "insert into memberships (org_id, user_id, role) values ({org_a}, {newbie}, 'member')",
        "YYNNNNN",
    ),
    (
        "membership: add admin",
        "insert into memberships (org_id, user_id, role) values ({org_a}, {newbie}, 'admin')",
        "YNNNNNN",
    ),
    (
        "membership m1: make viewer",
        "update memberships set role = 'viewer' where org_id = {org_a} and user_id = {member} returning id",
        "YYNNNNN",
    ),
    (
        "membership m1: make admin",
        "update memberships set role = 'admin' where org_id = {org_a} and user_id = {member} returning id",
        "YNNNNNN",
    ),
    (
        "membership admin: demote",
        "update memberships set role = 'member' where org_id = {org_a} and user_id = {admin} returning id",
        "YNNNNNN",
    ),
    (
        "membership m1: remove",
        "delete from memberships where org_id = {org_a} and user_id = {member} returning id",
        "YYNNNNN",
    ),
    (
        "membership admin: remove",
        "delete from memberships where org_id = {org_a} and user_id = {admin} returning id",
        "YNNNNNN",
    ),
    // departments, teams, team members: read by the org; owners and admins write.
    (
        "department: select",
        "select id from departments where id = {dept_a}",
        "YYYYYNN",
    ),
    (
        "department: insert",
        "insert into departments (org_id, name) values ({org_a}, 'Sales')",
        "YYNNNNN",
    ),
    (
        "department: update",
        "update departments set name = 'Eng' where id = {dept_a} returning id",
        "YYNNNNN",
    ),
    (
        "department: delete",
        "delete from departments where id = {dept_a} returning id",
        "YYNNNNN",
    ),
    (
        "team: select",
        "select id from teams where id = {team_1}",
        "YYYYYNN",
    ),
    (
        "team: insert",
        "insert into teams (org_id, name) values ({org_a}, 'T3')",
        "YYNNNNN",
    ),
    (
        "team: update",
        "update teams set name = 'T1b' where id = {team_1} returning id",
        "YYNNNNN",
    ),
    (
        "team: delete",
        "delete from teams where id = {team_2} returning id",
        "YYNNNNN",
    ),
    (
        "team member: select",
        "select id from team_members where id = {tm_m1}",
        "YYYYYNN",
    ),
    (
        "team member: insert",
        "insert into team_members (org_id, team_id, user_id) values ({org_a}, {team_1}, {m2})",
        "YYNNNNN",
    ),
    (
        "team member: update",
        "update team_members set is_lead = true where id = {tm_m1} returning id",
        "YYNNNNN",
    ),
    (
        "team member: delete",
        "delete from team_members where id = {tm_m1} returning id",
        "YYNNNNN",
    ),
    // projects and the org's vocabulary: read by the org; managers also create.
    (
        "project: select",
        "select id from projects where id = {project_a}",
        "YYYYYNN",
    ),
    (
        "project B: select",
        "select id from projects where id = {project_b}",
        "NNNNNYN",
    ),
    (
        "project: insert",
        "insert into projects (org_id, name) values ({org_a}, 'New')",
        "YYYNNNN",
    ),
    (
        "project: update",
        "update projects set name = 'Apollo 2' where id = {project_a} returning id",
        "YYNNNNN",
    ),
    (
        "project: delete",
        "delete from projects where id = {project_a} returning id",
        "YYNNNNN",
    ),
    (
        "activity type A: select",
        "select id from activity_types where id = {activity_a}",
        "YYYYYNN",
    ),
    (
        "activity type: insert",
        "insert into activity_types (org_id, key, name) values ({org_a}, 'k_{slug}', 'K')",
        "YYYNNNN",
    ),
    (
        "activity type A: update",
        "update activity_types set name = 'C' where id = {activity_a} returning id",
        "YYNNNNN",
    ),
    (
        "activity type A: delete",
        "delete from activity_types where id = {activity_a} returning id",
        "YYNNNNN",
    ),
    (
        "work mode A: select",
        "select id from work_modes where id = {work_mode_a}",
        "YYYYYNN",
    ),
    (
        "work mode: insert",
        "insert into work_modes (org_id, key, name) values ({org_a}, 'k_{slug}', 'K')",
        "YYYNNNN",
    ),
    (
        "work mode A: update",
        "update work_modes set name = 'C' where id = {work_mode_a} returning id",
        "YYNNNNN",
    ),
    (
        "work mode A: delete",
        "delete from work_modes where id = {work_mode_a} returning id",
        "YYNNNNN",
    ),
    (
        "category A: select",
        "select id from task_categories where id = {category_a}",
        "YYYYYNN",
    ),
    (
        "category: insert",
        "insert into task_categories (org_id, key, name) values ({org_a}, 'k_{slug}', 'K')",
        "YYYNNNN",
    ),
    (
        "category A: update",
        "update task_categories set name = 'C' where id = {category_a} returning id",
        "YYNNNNN",
    ),
    (
        "category A: delete",
        "delete from task_categories where id = {category_a} returning id",
        "YYNNNNN",
    ),
    // The default vocabulary: every signed-in user reads it; no client writes it.
    (
        "default activity: select",
        "select id from activity_types where org_id is null and key = 'development'",
        "YYYYYYN",
    ),
    (
        "default work mode: select",
        "select id from work_modes where org_id is null and key = 'deep_work'",
        "YYYYYYN",
    ),
    (
        "default category: select",
        "select id from task_categories where org_id is null and key = 'internal'",
        "YYYYYYN",
    ),
    (
        "default activity: insert",
        "insert into activity_types (org_id, key, name) values (null, 'k_{slug}', 'K')",
        "NNNNNNN",
    ),
    (
        "default activity: update",
        "update activity_types set name = 'X' where org_id is null and key = 'development' returning id",
        "NNNNNNN",
    ),
    (
        "default work mode: delete",
        "delete from work_modes where org_id is null and key = 'deep_work' returning id",
        "NNNNNNN",
    ),
    // timesheet periods: read like a person's data; the person submits, the managers of their
    // teams (never for themselves), owners and admins decide; owners and admins delete.
    (
        "timesheet of m1 (led team): select",
        "select id from timesheet_periods where id = {ts_m1}",
        "YYYYNNN",
    ),
    (
        "timesheet of m2 (other team): select",
        "select id from timesheet_periods where id = {ts_m2}",
        "YYNNNNN",
    ),
    (
        "timesheet of m1: approve",
        "update timesheet_periods set status = 'approved' where id = {ts_m1} returning id",
        "YYYNNNN",
    ),
    (
        "timesheet of m2: approve",
        "update timesheet_periods set status = 'approved' where id = {ts_m2} returning id",
        "YYNNNNN",
    ),
    (
        "timesheet of the manager: approve",
        "update timesheet_periods set status = 'approved' where id = {ts_mgr} returning id",
        "YYNNNNN",
    ),
    (
        "own timesheet in org A: submit",
        "insert into timesheet_periods (org_id, user_id, period_start, status) \
         values ({org_a}, {uid}, '2026-11-09', 'submitted') returning id",
        "YYYYNNN",
    ),
    (
        "timesheet of m1: delete",
        "delete from timesheet_periods where id = {ts_m1} returning id",
        "YYNNNNN",
    ),
    // time logs: owners/admins all in the org; managers their own and (read) their team's;
    // members their own; viewers none.
    (
        "log of m1 (led team): select",
        "select id from time_logs where id = {log_m1}",
        "YYYYNNN",
    ),
    (
        "log of m2 (other team): select",
        "select id from time_logs where id = {log_m2}",
        "YYNNNNN",
    ),
    (
        "log of manager: select",
        "select id from time_logs where id = {log_mgr}",
        "YYYNNNN",
    ),
    (
        "log of org B: select",
        "select id from time_logs where id = {log_b}",
        "NNNNNYN",
    ),
    (
        "log of m1: update",
        "update time_logs set comment = 'edited' where id = {log_m1} returning id",
        "YYNYNNN",
    ),
    (
        "log of manager: update",
        "update time_logs set comment = 'edited' where id = {log_mgr} returning id",
        "YYYNNNN",
    ),
    (
        "log of m1: delete",
        "delete from time_logs where id = {log_m1} returning id",
        "YYNYNNN",
    ),
    (
        "own log in org A: insert",
        "insert into time_logs (org_id, user_id, comment) values ({org_a}, {uid}, 'mine')",
        "YYYYNNN",
    ),
    (
        "log for m1: insert",
        "insert into time_logs (org_id, user_id, comment) values ({org_a}, {member}, 'for m1')",
        "YYNYNNN",
    ),
    (
        "own log in org B: insert",
        "insert into time_logs (org_id, user_id, comment) values ({org_b}, {uid}, 'sneaky')",
        "NNNNNYN",
    ),
    // AI extractions, embeddings, attachments: as the logs they belong to.
    (
        "extraction of m1: select",
        "select id from ai_extractions where id = {extraction_m1}",
        "YYYYNNN",
    ),
    (
        "extraction of m1: update",
        "update ai_extractions set error = 'x' where id = {extraction_m1} returning id",
        "YYNYNNN",
    ),
    (
        "extraction of m1: delete",
        "delete from ai_extractions where id = {extraction_m1} returning id",
        "YYNYNNN",
    ),
    (
        "extraction for m1: insert",
        "insert into ai_extractions (org_id, user_id, time_log_id, provider, status) values ({org_a}, {member}, {log_m1}, 'builtin', 'ok')",
        "YYNYNNN",
    ),
    (
        "embedding of m1: select",
        "select id from time_log_embeddings where id = {embedding_m1}",
        "YYYYNNN",
    ),
    (
        "embedding of m1: delete",
        "delete from time_log_embeddings where id = {embedding_m1} returning id",
        "YYNYNNN",
    ),
    (
        "attachment of m1: select",
        "select id from attachments where id = {attachment_m1}",
        "YYYYNNN",
    ),
    (
        "attachment of m1: update",
        "update attachments set status = 'processed' where id = {attachment_m1} returning id",
        "YYNYNNN",
    ),
    (
        "attachment of m1: delete",
        "delete from attachments where id = {attachment_m1} returning id",
        "YYNYNNN",
    ),
    (
        "own attachment: insert",
        "insert into attachments (org_id, user_id, kind, bucket, object_path) values ({org_a}, {uid}, 'image', 'images', '{slug}.png')",
        "YYYYNNN",
    ),
    // Day summaries and risk scores are a person's: viewers read only aggregates (through the
    // insights views). Both computed only by the server.
    (
        "summary of m1: select",
        "select id from user_day_summaries where id = {summary_m1}",
        "YYYYNNN",
    ),
    (
        "summary of m2: select",
        "select id from user_day_summaries where id = {summary_m2}",
        "YYNNNNN",
    ),
    (
        "summary: insert",
        "insert into user_day_summaries (org_id, user_id, day) values ({org_a}, {uid}, '2026-11-03')",
        "NNNNNNN",
    ),
    (
        "summary of m1: update",
        "update user_day_summaries set total_minutes = 1 where id = {summary_m1} returning id",
        "NNNNNNN",
    ),
    (
        "summary of m1: delete",
        "delete from user_day_summaries where id = {summary_m1} returning id",
        "NNNNNNN",
    ),
    (
        "risk of m1: select",
        "select id from risk_scores where id = {risk_m1}",
        "YYYYNNN",
    ),
    (
        "risk of m2: select",
        "select id from risk_scores where id = {risk_m2}",
        "YYNNNNN",
    ),
    (
        "risk: insert",
        "insert into risk_scores (org_id, user_id, week_start, burnout_score) values ({org_a}, {uid}, '2026-11-09', 1)",
        "NNNNNNN",
    ),
    // API tokens: their person reads them (the hashes are elsewhere); nobody writes them but through
    // the token functions.
    (
        "token of m1: select",
        "select id from api_tokens where id = {token_m1}",
        "NNNYNNN",
    ),
    (
        "token: insert",
        "insert into api_tokens (user_id, name, scopes, prefix) values ({uid}, 'x', '{logs:read}', 'p')",
        "NNNNNNN",
    ),
    (
        "token of m1: revoke by update",
        "update api_tokens set revoked_at = now() where id = {token_m1} returning id",
        "NNNNNNN",
    ),
    (
        "token of m1: delete",
        "delete from api_tokens where id = {token_m1} returning id",
        "NNNNNNN",
    ),
    // Integrations: owners and admins only; the secret is never readable.
    (
        "integration: select",
        "select id from integrations where id = {integration_a}",
        "YYNNNNN",
    ),
    (
        "integration secret: select",
        "select sealed from private.integration_secrets where integration_id = {integration_a}",
        "NNNNNNN",
    ),
    (
        "integration: insert",
        "insert into integrations (org_id, provider, name, config) values ({org_a}, 'jira', 'Jira', '{}')",
        "YYNNNNN",
    ),
    // The secret is sealed by the server (integration-secret), never written directly.
    (
        "integration secret: insert",
        "insert into private.integration_secrets (integration_id, sealed) values ({integration_a}, '\\x01'::bytea)",
        "NNNNNNN",
    ),
    (
        "integration secret: update",
        "update private.integration_secrets set sealed = '\\x01'::bytea where integration_id = {integration_a} returning integration_id",
        "NNNNNNN",
    ),
    (
        "integration: switch deliveries back on",
        "update integrations set deliveries_disabled_at = null where id = {integration_a} returning id",
        "YYNNNNN",
    ),
    (
        "integration: update",
        "update integrations set name = 'Slack 2' where id = {integration_a} returning id",
        "YYNNNNN",
    ),
    (
        "integration: delete",
        "delete from integrations where id = {integration_a} returning id",
        "YYNNNNN",
    ),
    (
        "external event: select",
        "select id from external_events where id = {event_a}",
        "YYNNNNN",
    ),
    (
        "identity: select",
        "select id from integration_identities where id = {identity_a}",
        "YYNNNNN",
    ),
    (
        "identity: map a member",
        "insert into integration_identities (org_id, integration_id, external_id, user_id) values ({org_a}, {integration_a}, 'U-M2', {m2})",
        "YYNNNNN",
    ),
    (
        "identity: map someone of another org",
        "insert into integration_identities (org_id, integration_id, external_id, user_id) values ({org_a}, {integration_a}, 'U-OTHER', {other})",
        "NNNNNNN",
    ),
    (
        "identity: delete",
        "delete from integration_identities where id = {identity_a} returning id",
        "YYNNNNN",
    ),
    (
        "delivery: select",
        "select id from webhook_deliveries where id = {delivery_a}",
        "YYNNNNN",
    ),
    (
        "delivery: insert",
        "insert into webhook_deliveries (org_id, integration_id, event, payload) values ({org_a}, {integration_a}, 'x', '{}')",
        "NNNNNNN",
    ),
    (
        "external event: insert",
        "insert into external_events (org_id, integration_id, external_id, payload) values ({org_a}, {integration_a}, '{slug}', '{}')",
        "NNNNNNN",
    ),
    (
        "audit entry: select",
        "select id from audit_log where id = {audit_a}",
        "YYNNNNN",
    ),
    (
        "audit entry: insert",
        "insert into audit_log (org_id, action) values ({org_a}, 'forged')",
        "NNNNNNN",
    ),
    // Profiles: yours and your co-members'; you edit only your own.
    (
        "profile of m1: select",
        "select id from profiles where id = {member}",
        "YYYYYNN",
    ),
    (
        "profile of m1: update",
        "update profiles set full_name = 'M One' where id = {member} returning id",
        "NNNYNNN",
    ),
];

/// Runs one statement as `actor`; true when it succeeded and touched at least one row.
async fn allowed(db: &TestDb, fixture: &Fixture, actor: &str, sql: &str) -> anyhow::Result<bool> {
    let sql = fixture.render(sql, fixture.actor_id(actor));
    let mut tx = fixture.begin_as(&db.requests, actor).await?;
    let result = if sql.starts_with("insert") {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *tx)
            .await
            .map(|done| done.rows_affected() > 0)
    } else {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&mut *tx)
            .await
            .map(|rows| !rows.is_empty())
    };
    tx.rollback().await.ok();
    match result {
        Ok(touched) => Ok(touched),
        Err(sqlx::Error::Database(e)) => {
            // Refusals come as privilege errors, policy violations or the rules' own checks
            // (PT403: the timesheet rules' "not yours to decide"); anything else is a broken
            // statement in this table, not a refusal.
            let code = e.code().unwrap_or_default().into_owned();
            anyhow::ensure!(
                matches!(code.as_str(), "42501" | "23514" | "23503" | "PT403"),
                "{actor}: unexpected error {code} {}: {}",
                e.message(),
                sql
            );
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[tokio::test]
async fn role_matrix_holds_for_every_table_and_actor() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let fixture = Fixture::create(&db.owner).await?;
    let mut failures = Vec::new();
    for (what, sql, expected) in MATRIX {
        assert_eq!(
            expected.len(),
            ACTORS.len(),
            "{what}: one expectation per actor"
        );
        for (actor, expect) in ACTORS.iter().zip(expected.chars()) {
            let got = allowed(&db, &fixture, actor, sql).await?;
            if got != (expect == 'Y') {
                failures.push(format!(
                    "{what} as {actor}: expected {}, got {}",
                    if expect == 'Y' { "allowed" } else { "refused" },
                    if got { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn the_matrix_covers_every_table_in_public() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "select relname::text from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' order by 1",
    )
    .fetch_all(&db.owner)
    .await?;
    let missing: Vec<&String> = tables
        .iter()
        .filter(|table| {
            !MATRIX.iter().any(|(_, sql, _)| {
                sql.contains(&format!(" from {table} "))
                    || sql.contains(&format!("update {table} "))
                    || sql.contains(&format!("into {table} "))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "tables without matrix rows: {missing:?}"
    );
    Ok(())
}

/// An outsider sees no row of org A in any table, not even as a count.
#[tokio::test]
async fn another_org_sees_no_rows_and_no_counts() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let fixture = Fixture::create(&db.owner).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_attribute a on a.attrelid = c.oid \
         where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and a.attname = 'org_id'",
    )
    .fetch_all(&db.owner)
    .await?;
    assert!(tables.len() >= 15, "org-scoped tables: {tables:?}");
    for table in &tables {
        let sql = format!("select count(*) from {table} where org_id = {{org_a}}");
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(fixture.render(&sql, None)))
            .fetch_one(&db.owner)
            .await?;
        let mut tx = fixture.begin_as(&db.requests, "other").await?;
        let seen = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(fixture.render(&sql, None)))
            .fetch_one(&mut *tx)
            .await
            .unwrap_or(0);
        tx.rollback().await?;
        assert_eq!(
            seen, 0,
            "{table}: the outsider counts {seen} of org A's {total} rows"
        );
    }
    Ok(())
}

/// A viewer reads the org's totals, but not one person's day summary nor a single log comment.
#[tokio::test]
async fn viewer_reads_org_totals_but_no_persons_rows() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let fixture = Fixture::create(&db.owner).await?;
    sqlx::query("select private.refresh_summaries()")
        .execute(&db.owner)
        .await?;
    let mut tx = fixture.begin_as(&db.requests, "viewer").await?;
    let summaries: i64 = sqlx::query_scalar("select count(*) from user_day_summaries")
        .fetch_one(&mut *tx)
        .await?;
    let comments: Vec<Option<String>> = sqlx::query_scalar("select comment from time_logs")
        .fetch_all(&mut *tx)
        .await?;
    let org_weeks: i64 =
        sqlx::query_scalar("select count(*) from org_period_summaries where period = 'week'")
            .fetch_one(&mut *tx)
            .await?;
    assert_eq!(summaries, 0);
    assert!(comments.is_empty(), "the viewer read {comments:?}");
    assert!(org_weeks >= 1, "the org's weekly totals");
    Ok(())
}
