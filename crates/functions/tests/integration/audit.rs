//! The audit trail: every door's writes leave one audit row per changed row, with the diff,
//! readable by the org's owners and admins only.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    integrations::{send_generic, until, verify_emails},
    world::World,
};

/// The audit rows `actor` wrote about row `id`, oldest first, read as the database owner.
async fn trail(w: &World, actor: &str, id: &str) -> Vec<(String, String, Value)> {
    sqlx::query_as(
        "select action, table_name, details from audit_log \
         where actor_id = $1 and row_id = $2::uuid order by created_at, id",
    )
    .bind(w.id(actor))
    .bind(id)
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap()
}

/// PATCHes one time log through /rest/v1 as `who`.
async fn patch(w: &World, who: &str, id: &str, values: Value) -> u16 {
    reqwest::Client::new()
        .patch(w.app.url(&format!("/rest/v1/time_logs?id=eq.{id}")))
        .header("apikey", w.app.keys.anon_key())
        .bearer_auth(w.token(who))
        .json(&values)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn every_door_writes_one_audit_row_per_changed_row_readable_by_admins_only() {
    let w = World::new().await;

    // Functions: log-create inserts one log, audited as its author's insert.
    let (status, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": w.id("org_a"), "comment": "2h fixing the login bug on apollo"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let created = body["log"]["id"].as_str().unwrap().to_owned();
    let rows = trail(&w, "member_a", &created).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("insert", "time_logs")
    );
    assert_eq!(rows[0].2["before"], Value::Null);
    assert_eq!(
        rows[0].2["after"]["comment"],
        "2h fixing the login bug on apollo"
    );
    w.classified(&created).await;

    // Sync-push: an offline upsert is one insert.
    let pushed = Uuid::now_v7().to_string();
    let (status, body) = w
        .call(
            "member_a",
            "sync-push",
            json!({"org_id": w.id("org_a"), "mutations": [
                {"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "upsert", "id": pushed,
                 "values": {"comment": "1h standup", "duration_minutes": 60}}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "applied", "{body}");
    let rows = trail(&w, "member_a", &pushed).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "insert");

    // REST: an update is one row holding only the changed columns, bookkeeping aside.
    assert_eq!(
        patch(&w, "member_a", &created, json!({"tags": ["review"]})).await,
        204
    );
    let rows = trail(&w, "member_a", &created).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let diff = &rows[1].2;
    assert_eq!(rows[1].0, "update");
    assert_eq!(diff["before"]["tags"], json!([]), "{diff}");
    assert_eq!(diff["after"]["tags"], json!(["review"]), "{diff}");
    for unchanged in ["comment", "updated_at", "version", "org_id"] {
        assert!(
            diff["after"].get(unchanged).is_none(),
            "{unchanged} in {diff}"
        );
    }
    // An update that changes nothing writes nothing.
    assert_eq!(
        patch(&w, "member_a", &created, json!({"tags": ["review"]})).await,
        204
    );
    assert_eq!(trail(&w, "member_a", &created).await.len(), 2);

    // REST: a delete is one row holding the row as it was.
    let request = reqwest::Client::new()
        .delete(w.app.url(&format!("/rest/v1/time_logs?id=eq.{pushed}")))
        .header("apikey", w.app.keys.anon_key())
        .bearer_auth(w.token("member_a"));
    assert_eq!(request.send().await.unwrap().status().as_u16(), 204);
    let rows = trail(&w, "member_a", &pushed).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].0, "delete");
    assert_eq!(rows[1].2["before"]["comment"], "1h standup");
    assert_eq!(rows[1].2["after"], Value::Null);

    // Integrations: a custom tool's time entry becomes a draft, one insert by no actor (the
    // server wrote it), and the integration itself one insert by the admin who made it.
    verify_emails(&w).await;
    let hook_id = send_generic(
        &w,
        &json!({"id": "evt-audit", "type": "time_entry", "entry_id": "e-a",
            "user_email": "ma@a.test", "comment": "Imported pairing", "duration_minutes": 40}),
    )
    .await;
    until(
        &w,
        "the draft",
        "select count(*) = 1 from time_logs where source = 'api'",
    )
    .await;
    let (draft, inserts): (String, i64) = sqlx::query_as(
        "select l.id::text, (select count(*) from audit_log a where a.row_id = l.id \
           and a.action = 'insert' and a.actor_id is null) from time_logs l where l.source = 'api'",
    )
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!(inserts, 1, "draft {draft}");
    let made: Vec<(String, Option<uuid::Uuid>)> =
        sqlx::query_as("select action, actor_id from audit_log where row_id = $1")
            .bind(hook_id)
            .fetch_all(&w.app.db.owner)
            .await
            .unwrap();
    assert!(
        made.contains(&("insert".to_owned(), Some(w.id("admin_a")))),
        "{made:?}"
    );

    // Owners and admins read their org's trail; members, viewers and other orgs read none of it.
    let (a, b) = (w.id("org_a").to_string(), w.id("org_b").to_string());
    // (Between the author's insert and update, the worker's classification: no actor.)
    for who in ["owner_a", "admin_a"] {
        let seen = w
            .rest(
                who,
                &format!("audit_log?row_id=eq.{created}&order=created_at"),
            )
            .await;
        let actors: Vec<&Value> = seen
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["actor_id"])
            .collect();
        let member = json!(w.id("member_a"));
        assert_eq!(actors, [&member, &Value::Null, &member], "{who}: {seen}");
    }
    for who in ["manager_a", "member_a", "viewer_a"] {
        assert_eq!(w.rest(who, "audit_log").await, json!([]), "{who}");
    }
    let other = w.rest("owner_b", "audit_log").await;
    let orgs: Vec<&str> = other
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["org_id"].as_str())
        .collect();
    assert!(!orgs.is_empty() && orgs.iter().all(|o| *o == b), "{other}");
    assert!(!orgs.contains(&a.as_str()));

    // The other audited tables: the fixture's org, memberships and projects, by no actor.
    let inserted: Vec<(String, i64)> = sqlx::query_as(
        "select table_name, count(*) from audit_log where org_id = $1::uuid and action = 'insert' \
         and table_name <> 'time_logs' group by 1 order by 1",
    )
    .bind(&a)
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap();
    let inserted: Vec<(&str, i64)> = inserted.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert_eq!(
        inserted,
        [
            ("integrations", 1),
            ("memberships", 5),
            ("organizations", 1),
            ("projects", 2)
        ]
    );

    // Deleting an org takes its rows and its trail with it.
    sqlx::query("delete from organizations where id = $1::uuid")
        .bind(&b)
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("select count(*) from audit_log where org_id = $1::uuid")
        .bind(&b)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_trail_keeps_rows_for_the_retention_then_the_daily_job_removes_them() {
    let w = World::new().await;
    let org = w.id("org_a");
    sqlx::query(
        "insert into audit_log (org_id, action, table_name, created_at) values \
         ($1, 'update', 'projects', now() - interval '400 days'), \
         ($1, 'update', 'projects', now() - interval '300 days')",
    )
    .bind(org)
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    let scheduled: String =
        sqlx::query_scalar("select kind from private.schedules where name = 'audit.purge'")
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
    assert_eq!(scheduled, "audit_purge");
    let before: i64 = sqlx::query_scalar("select count(*) from audit_log")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    let removed = tally_functions::audit::purge(&w.app.db.requests, 365)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let ages: Vec<i32> = sqlx::query_scalar(
        "select extract(day from now() - created_at)::int from audit_log order by created_at",
    )
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!(ages.len() as i64, before - 1);
    assert_eq!(ages[0], 300, "the younger old row stays: {ages:?}");
}
