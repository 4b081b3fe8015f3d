//! The schema's promises: RLS everywhere, the roles, the default vocabulary, profiles and
//! create_organization().

use crate::fixture::context_for;
use serde_json::Value;
use tally_testkit::TestDb;
use uuid::Uuid;

#[tokio::test]
async fn every_reachable_table_has_rls_enabled_and_forced() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        "select relname::text, relrowsecurity, relforcerowsecurity from pg_class \
         where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') order by 1",
    )
    .fetch_all(&db.owner)
    .await?;
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    // Every table of DESIGN §3 and the personal API tokens, and nothing else.
    assert_eq!(
        names,
        [
            "activity_types",
            "ai_extractions",
            "api_tokens",
            "attachments",
            "audit_log",
            "departments",
            "external_events",
            "integration_identities",
            "integrations",
            "memberships",
            "organizations",
            "profiles",
            "projects",
            "risk_scores",
            "task_categories",
            "team_members",
            "teams",
            "time_log_embeddings",
            "time_logs",
            "timesheet_periods",
            "user_day_summaries",
            "webhook_deliveries",
            "work_modes",
        ]
    );
    let open: Vec<_> = rows
        .iter()
        .filter(|(_, on, forced)| !on || !forced)
        .collect();
    assert!(open.is_empty(), "tables without forced RLS: {open:?}");
    // Every table of public feeds realtime's postgres_changes (insert, update, delete).
    let unwatched: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c \
         where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' \
           and (select count(*) from pg_trigger t where t.tgrelid = c.oid \
                and t.tgname in ('realtime_insert', 'realtime_update', 'realtime_delete')) <> 3",
    )
    .fetch_all(&db.owner)
    .await?;
    assert!(
        unwatched.is_empty(),
        "tables without realtime triggers (call private.watch_changes): {unwatched:?}"
    );
    // So does every table a client role (anon, authenticated) may touch, in any schema.
    let reachable: Vec<(String, bool)> = sqlx::query_as(
        "select n.nspname || '.' || c.relname, c.relrowsecurity and c.relforcerowsecurity \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where c.relkind in ('r', 'p') \
           and n.nspname not in ('pg_catalog', 'information_schema') \
           and (has_table_privilege('anon', c.oid, 'SELECT,INSERT,UPDATE,DELETE') \
                or has_table_privilege('authenticated', c.oid, 'SELECT,INSERT,UPDATE,DELETE')) \
         order by 1",
    )
    .fetch_all(&db.owner)
    .await?;
    for table in ["storage.buckets", "storage.objects", "public.time_logs"] {
        assert!(
            reachable.iter().any(|(t, _)| t == table),
            "{table} is not reachable"
        );
    }
    let open: Vec<_> = reachable.iter().filter(|(_, forced)| !forced).collect();
    assert!(
        open.is_empty(),
        "reachable tables without forced RLS: {open:?}"
    );
    Ok(())
}

/// Every text, array of texts and JSON value a signed-in client may write in `public` has a
/// bound the database checks (so 100,000 tags or a megabyte of metadata is a 400 through every
/// door, never a stored row).
#[tokio::test]
async fn every_column_a_client_writes_is_bounded() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let unbounded: Vec<String> = sqlx::query_scalar(
        "select c.relname || '.' || a.attname \
         from pg_attribute a join pg_class c on c.oid = a.attrelid \
         where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' \
           and a.attnum > 0 and not a.attisdropped \
           and a.atttypid in ('text'::regtype, 'text[]'::regtype, 'jsonb'::regtype) \
           and (has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT') \
                or has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE')) \
           and not exists (select from pg_constraint k where k.conrelid = c.oid \
                           and k.contype = 'c' and a.attnum = any (k.conkey)) \
         order by 1",
    )
    .fetch_all(&db.owner)
    .await?;
    assert!(
        unbounded.is_empty(),
        "columns without a bound: {unbounded:?}"
    );
    Ok(())
}

/// Foreign keys a delete (or a join) follows have an index (Supabase's linter, lint 0001): one
/// that leads with the key's columns, or — where the linter still flags the key — a key of
/// several columns (each carries `org_id`) whose rows an index leading with one of them finds
/// (an org's, an integration's). Left without one, with the README's reason: the vocabulary
/// terms of a log (archived rather than deleted; a delete rewrites the logs that used it).
#[tokio::test]
async fn foreign_keys_have_an_index_a_delete_can_use() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let unserved: Vec<String> = sqlx::query_scalar(
        "with fk as ( \
           select conname::text as name, conrelid, conkey from pg_constraint \
           where contype = 'f' \
             and connamespace in ('public'::regnamespace, 'private'::regnamespace, 'storage'::regnamespace) \
         ), idx as ( \
           select indrelid, string_to_array(indkey::text, ' ')::smallint[] as cols \
           from pg_index where indisvalid \
         ) \
         select fk.name from fk where not exists ( \
           select from idx where idx.indrelid = fk.conrelid and ( \
             idx.cols[1:array_length(fk.conkey, 1)] = fk.conkey \
             or (array_length(fk.conkey, 1) > 1 and idx.cols[1] = any (fk.conkey)))) \
         order by 1",
    )
    .fetch_all(&db.owner)
    .await?;
    assert_eq!(
        unserved,
        [
            "time_logs_activity_type_id_fkey",
            "time_logs_task_category_id_fkey",
            "time_logs_work_mode_id_fkey",
        ]
    );
    Ok(())
}

/// Supabase's linter (lint 0011): a function whose `search_path` the caller decides can be
/// made to call the caller's objects. Every function in every schema Tally owns pins it.
#[tokio::test]
async fn every_function_has_a_fixed_search_path() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let (count, mutable): (i64, Vec<String>) = sqlx::query_as(
        "select count(*), coalesce(array_agg(n.nspname || '.' || p.proname) filter ( \
                  where not exists (select from unnest(coalesce(p.proconfig, '{}')) c \
                                    where c like 'search_path=%')), '{}') \
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
         where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') \
           and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')",
    )
    .fetch_one(&db.owner)
    .await?;
    assert!(count > 50, "only {count} functions found");
    assert!(
        mutable.is_empty(),
        "functions with a role-mutable search_path: {mutable:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_request_role_cannot_bypass_rls() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let (superuser, bypass, owns): (bool, bool, i64) = sqlx::query_as(
        "select rolsuper, rolbypassrls, \
                (select count(*) from pg_class where relowner = r.oid) \
         from pg_roles r where rolname = current_user",
    )
    .fetch_one(&db.requests)
    .await?;
    assert!(
        !superuser && !bypass,
        "tally_authenticator must be a plain role"
    );
    assert_eq!(owns, 0, "tally_authenticator owns tables");
    let user: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&db.requests)
        .await?;
    assert_eq!(user, "tally_authenticator");
    // Outside a request transaction it reads nothing at all.
    let err = sqlx::query("select count(*) from public.time_logs")
        .fetch_one(&db.requests)
        .await
        .expect_err("the login role read a table");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501")
    );
    Ok(())
}

#[tokio::test]
async fn default_vocabulary_has_every_key() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let expected: &[(&str, &[&str], usize)] = &[
        (
            "work_modes",
            &[
                "deep_work",
                "collaboration",
                "meeting",
                "communication",
                "admin",
                "learning",
                "break",
            ],
            8,
        ),
        (
            "activity_types",
            &[
                "development",
                "design",
                "code_review",
                "testing",
                "research",
                "planning",
                "meeting",
                "writing",
                "support",
                "sales",
                "recruiting",
                "admin",
                "learning",
                "travel",
            ],
            8,
        ),
        (
            "task_categories",
            &[
                "client_work",
                "internal",
                "sales_marketing",
                "operations",
                "people",
                "learning",
            ],
            8,
        ),
    ];
    for (table, keys, min_keywords) in expected {
        let rows: Vec<(String, String, String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select key, name, description, cardinality(keywords) from {table} where org_id is null order by key"
        )))
        .fetch_all(&db.owner)
        .await?;
        let mut got: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let mut want = keys.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{table} keys");
        for (key, name, description, keywords) in &rows {
            assert!(
                !name.is_empty() && !description.is_empty(),
                "{table}.{key} lacks a name or description"
            );
            assert!(
                *keywords as usize >= *min_keywords,
                "{table}.{key} has {keywords} keywords"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn new_users_get_a_profile() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let id: Uuid = sqlx::query_scalar(
        "insert into auth.users (email, raw_user_meta_data) values ('Ada@Example.com', '{\"full_name\":\"Ada\"}') returning id",
    )
    .fetch_one(&db.owner)
    .await?;
    let (email, name): (String, String) =
        sqlx::query_as("select email, full_name from profiles where id = $1")
            .bind(id)
            .fetch_one(&db.owner)
            .await?;
    assert_eq!((email.as_str(), name.as_str()), ("Ada@Example.com", "Ada"));
    // Emails are unique whatever their case.
    let err = sqlx::query("insert into auth.users (email) values ('ada@example.com')")
        .execute(&db.owner)
        .await
        .expect_err("a duplicate email");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("23505")
    );
    Ok(())
}

#[tokio::test]
async fn create_organization_makes_the_caller_owner_with_a_unique_slug() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let user: Uuid =
        sqlx::query_scalar("insert into auth.users (email) values ('founder@x.test') returning id")
            .fetch_one(&db.owner)
            .await?;
    let ctx = context_for(Some(user));
    let mut slugs = Vec::new();
    for _ in 0..2 {
        let mut tx = ctx.begin(&db.requests).await?;
        let org: Value = sqlx::query_scalar(
            "select to_jsonb(o) from create_organization('Acme Corp!', timezone => 'Europe/Berlin') o",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        assert_eq!(org["timezone"], "Europe/Berlin");
        slugs.push(org["slug"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(slugs, ["acme-corp", "acme-corp-2"]);
    let mut tx = ctx.begin_read_only(&db.requests).await?;
    let roles: Vec<String> =
        sqlx::query_scalar("select role::text from memberships where user_id = auth.uid()")
            .fetch_all(&mut *tx)
            .await?;
    assert_eq!(roles, ["owner", "owner"]);
    tx.rollback().await?;

    // Bad input: an unknown time zone and an empty name are 22023; anon may not call it.
    for sql in [
        "select create_organization('X', timezone => 'Mars/Olympus')",
        "select create_organization('  ')",
    ] {
        let mut tx = ctx.begin(&db.requests).await?;
        let err = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .expect_err(sql);
        assert_eq!(
            err.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("22023"),
            "{sql}"
        );
    }
    let mut tx = context_for(None).begin(&db.requests).await?;
    let err = sqlx::query("select create_organization('X')")
        .execute(&mut *tx)
        .await
        .expect_err("anon created an org");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501")
    );
    Ok(())
}

/// The function definitions of a database, by signature.
async fn functions(pool: &sqlx::PgPool) -> anyhow::Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', \
                pg_get_functiondef(p.oid) \
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
         where n.nspname in ('private', 'public', 'realtime', 'auth', 'storage') \
           and p.prokind in ('f', 'p') order by 1",
    )
    .fetch_all(pool)
    .await?)
}

/// A database migrated from an older release and a fresh one end with the same functions: the
/// replaceable definitions (`migrations/replaceable/`) are applied after the numbered
/// migrations either way.
#[tokio::test]
async fn a_fresh_database_and_an_upgraded_one_have_the_same_functions() -> anyhow::Result<()> {
    use std::borrow::Cow;
    use tally_core::db::{MIGRATOR, REWRITTEN, migrate};
    let fresh = TestDb::new().await?;
    let name = format!("tally_upgrade_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{name}\"")))
        .execute(&fresh.owner)
        .await?;
    let server = fresh
        .owner_url()
        .rsplit_once('/')
        .map_or(fresh.owner_url(), |(server, _)| server);
    let upgraded = sqlx::PgPool::connect(&format!("{server}/{name}")).await?;
    // The release before the incremental periods (20261212000002), then an upgrade to this one.
    let older = sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            MIGRATOR
                .migrations
                .iter()
                .filter(|m| m.version < 20261212000002)
                .cloned()
                .collect(),
        ),
        table_name: MIGRATOR.table_name.clone(),
        create_schemas: MIGRATOR.create_schemas.clone(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    older.run(&upgraded).await?;
    // A day an older release rolled up: its weekly and monthly periods are filled on upgrade.
    sqlx::raw_sql(
        "insert into auth.users (id, email) values ('00000000-0000-4000-8000-0000000000a1', 'u@up.test');
         insert into organizations (id, name, slug) values ('00000000-0000-4000-8000-0000000000b1', 'Up', 'up');
         insert into user_day_summaries (org_id, user_id, day, total_minutes)
           values ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1', '2026-03-04', 90);",
    )
    .execute(&upgraded)
    .await?;
    // That release recorded the text of the migrations that were rewritten since.
    for (version, released) in REWRITTEN {
        sqlx::query("update tally.schema_migrations set checksum = $1 where version = $2")
            .bind(hex::decode(released)?)
            .bind(version)
            .execute(&upgraded)
            .await?;
    }
    migrate(&upgraded).await?;
    let recorded: Vec<Vec<u8>> =
        sqlx::query_scalar("select checksum from tally.schema_migrations order by version")
            .fetch_all(&upgraded)
            .await?;
    let expected: Vec<Vec<u8>> = MIGRATOR.iter().map(|m| m.checksum.to_vec()).collect();
    assert_eq!(recorded, expected, "the current checksums are recorded");
    let periods: Vec<(String, i32)> = sqlx::query_as(
        "select period || ' ' || starts, total_minutes from insights.person_periods order by 1",
    )
    .fetch_all(&upgraded)
    .await?;
    assert_eq!(
        periods,
        [
            ("month 2026-03-01".to_owned(), 90),
            ("week 2026-03-02".to_owned(), 90)
        ]
    );
    // A migration changed in any other way still stops the upgrade.
    sqlx::query("update tally.schema_migrations set checksum = '\\x00' where version = $1")
        .bind(REWRITTEN[0].0)
        .execute(&upgraded)
        .await?;
    let refused = migrate(&upgraded).await;
    let (now, then) = (functions(&fresh.owner).await?, functions(&upgraded).await?);
    upgraded.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database \"{name}\" with (force)"
    )))
    .execute(&fresh.owner)
    .await?;
    let refused = refused
        .expect_err("a foreign checksum is refused")
        .to_string();
    assert!(refused.contains("was previously applied"), "{refused}");
    assert!(now.len() > 50, "the functions were read: {}", now.len());
    let differing: Vec<&str> = now
        .iter()
        .zip(&then)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(now.len(), then.len(), "the same functions");
    assert!(differing.is_empty(), "different definitions: {differing:?}");
    Ok(())
}

/// Analytics' source: the `tally_analytics` publication holds exactly the tables analytics
/// needs, every column of them but the logs' `comment` — so a column added to any of them is
/// published (a migration adding one to `time_logs` must add it to the column list too) — and
/// every table's replica identity carries `org_id`, so an update's old row and a hard delete
/// can be placed by (org_id, id) downstream.
#[tokio::test]
async fn the_analytics_publication_is_the_contract() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let published: Vec<(String, Vec<String>, Vec<String>, String)> = sqlx::query_as(
        "select p.tablename::text, p.attnames::text[], \
           (select array_agg(a.attname::text order by a.attnum) from pg_attribute a \
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), \
           c.relreplident::text \
         from pg_publication_tables p \
         join pg_class c on c.relname = p.tablename and c.relnamespace = 'public'::regnamespace \
         where p.pubname = 'tally_analytics' and p.schemaname = 'public' order by 1",
    )
    .fetch_all(&db.owner)
    .await?;
    let tables: Vec<&str> = published.iter().map(|(t, ..)| t.as_str()).collect();
    assert_eq!(
        tables,
        [
            "activity_types",
            "memberships",
            "projects",
            "task_categories",
            "team_members",
            "teams",
            "time_logs",
            "timesheet_periods",
            "user_day_summaries",
            "work_modes",
        ]
    );
    for (table, columns, all, identity) in &published {
        let expected: Vec<String> = all
            .iter()
            .filter(|c| !(table == "time_logs" && *c == "comment"))
            .cloned()
            .collect();
        assert_eq!(
            columns, &expected,
            "{table}: every column but a log's comment"
        );
        if table == "time_logs" {
            assert_eq!(identity, "i", "{table}: an index identity");
        } else {
            assert_eq!(identity, "f", "{table}: the whole row as identity");
        }
    }
    let identity_index: Vec<String> = sqlx::query_scalar(
        "select a.attname::text from pg_index i \
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey) \
         where i.indrelid = 'public.time_logs'::regclass and i.indisreplident order by a.attnum",
    )
    .fetch_all(&db.owner)
    .await?;
    assert_eq!(identity_index, ["id", "org_id", "user_id"]);
    let (inserts, updates, deletes, truncates): (bool, bool, bool, bool) = sqlx::query_as(
        "select pubinsert, pubupdate, pubdelete, pubtruncate from pg_publication \
         where pubname = 'tally_analytics'",
    )
    .fetch_one(&db.owner)
    .await?;
    assert!(inserts && updates && deletes && truncates);
    // Publishing changes nothing for writers: a log's update and delete still go through.
    let org: Uuid =
        sqlx::query_scalar("insert into organizations (name, slug) values ('P', 'p') returning id")
            .fetch_one(&db.owner)
            .await?;
    let user: Uuid =
        sqlx::query_scalar("insert into auth.users (email) values ('p@p.test') returning id")
            .fetch_one(&db.owner)
            .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into memberships (org_id, user_id, role) values ('{org}', '{user}', 'member'); \
         insert into time_logs (org_id, user_id, comment, duration_minutes, status) \
           values ('{org}', '{user}', 'published', 30, 'ready'); \
         update time_logs set comment = 'changed', tags = '{{a}}' where org_id = '{org}'; \
         delete from time_logs where org_id = '{org}'; \
         update projects set name = name where false;"
    )))
    .execute(&db.owner)
    .await?;
    Ok(())
}
