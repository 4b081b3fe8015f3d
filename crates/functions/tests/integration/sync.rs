//! Offline sync: pulls (snapshot, paging, RLS, late commits, resync after purge), pushes
//! (applied, conflict, rejected, duplicate, limits), and a simulation of offline clients with
//! flaky networks against a server that edits too — run with a fixed seed here, and with many
//! seeds by `TALLY_SYNC_SEEDS=200 cargo nextest run -p tally-functions sync::`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::world::World;

/// A client's copy: (table, id) → row.
type Store = BTreeMap<(String, Uuid), Value>;

/// Pulls until `has_more` is false, applying each change to `store`; returns the last cursor.
async fn pull_all(w: &World, who: &str, cursor: Option<String>, store: &mut Store) -> String {
    let mut cursor = cursor;
    loop {
        let mut body = json!({"org_id": w.id("org_a"), "limit": 7});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let (status, page) = w.invoke("sync-pull", &w.token(who), body).await;
        assert_eq!(status, 200, "{page}");
        for change in page["changes"].as_array().unwrap() {
            let table = change["table"].as_str().unwrap().to_owned();
            if change["op"] == "upsert" {
                let id = change["row"]["id"].as_str().unwrap().parse().unwrap();
                store.insert((table, id), change["row"].clone());
            } else {
                let id = change["id"].as_str().unwrap().parse().unwrap();
                store.remove(&(table, id));
            }
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_owned());
        if page["has_more"] == false {
            return cursor.unwrap_or_default();
        }
    }
}

/// What `who` may read of the synced tables, straight from the database (not deleted).
async fn server_state(w: &World, who: &str) -> Store {
    let mut tx = w.app.db.requests.begin().await.unwrap();
    sqlx::query(
        "select set_config('role', 'authenticated', true),
                set_config('request.jwt.claims', json_build_object('sub', $1::text, 'role', 'authenticated')::text, true)",
    )
    .bind(w.id(who).to_string())
    .execute(&mut *tx)
    .await
    .unwrap();
    let rows: Vec<(String, Uuid, Value)> = sqlx::query_as(
        "select 'time_logs', id, to_jsonb(t) from time_logs t where org_id = $1 and deleted_at is null
         union all select 'projects', id, to_jsonb(t) from projects t where org_id = $1 and deleted_at is null
         union all select 'teams', id, to_jsonb(t) from teams t where org_id = $1 and deleted_at is null
         union all select 'attachments', id, to_jsonb(t) from attachments t where org_id = $1 and deleted_at is null
         union all select 'work_modes', id, to_jsonb(t) from work_modes t where (org_id = $1 or org_id is null) and deleted_at is null
         union all select 'activity_types', id, to_jsonb(t) from activity_types t where (org_id = $1 or org_id is null) and deleted_at is null
         union all select 'task_categories', id, to_jsonb(t) from task_categories t where (org_id = $1 or org_id is null) and deleted_at is null",
    )
    .bind(w.id("org_a"))
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    rows.into_iter()
        .map(|(t, id, row)| ((t, id), row))
        .collect()
}

/// Pulls until `store` holds what the server shows `who`: a transaction still running anywhere
/// on the cluster (another test's) holds every pull's horizon back for a moment.
async fn settle(w: &World, who: &str, cursor: Option<String>, store: &mut Store) -> String {
    let expected = server_state(w, who).await;
    let mut cursor = cursor;
    for _ in 0..300 {
        let last = pull_all(w, who, cursor.take(), store).await;
        if *store == expected {
            return last;
        }
        cursor = Some(last);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(*store, expected, "{who}'s copy never matched the server");
    cursor.unwrap_or_default()
}

fn log_ids(store: &Store) -> HashSet<Uuid> {
    store
        .keys()
        .filter(|(t, _)| t == "time_logs")
        .map(|(_, id)| *id)
        .collect()
}

async fn push(w: &World, who: &str, mutations: Value) -> (u16, Value) {
    w.invoke(
        "sync-push",
        &w.token(who),
        json!({"org_id": w.id("org_a"), "mutations": mutations}),
    )
    .await
}

#[tokio::test]
async fn a_first_pull_is_a_paged_snapshot_of_what_the_caller_may_read() {
    let w = World::new().await;
    let (a, b) = (w.id("org_a"), w.id("org_b"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into time_logs (org_id, user_id, comment, duration_minutes, status)
         select '{a}', '{ma}', 'mine ' || g, 30, 'ready' from generate_series(1, 12) g;
         insert into time_logs (org_id, user_id, comment, duration_minutes, status) values
           ('{a}', '{ad}', 'the admin''s', 30, 'ready'), ('{b}', '{ob}', 'secret of B', 30, 'ready');
         insert into teams (org_id, name) values ('{a}', 'Web'), ('{b}', 'Hidden');",
        ma = w.id("member_a"),
        ad = w.id("admin_a"),
        ob = w.id("owner_b"),
    )))
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    let mut store = Store::new();
    let cursor = settle(&w, "member_a", None, &mut store).await;
    assert_eq!(log_ids(&store).len(), 12, "only the member's own logs");
    let text = serde_json::to_string(&store.values().collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains("secret of B") && !text.contains("Hidden") && !text.contains(&b.to_string())
    );
    assert!(
        text.contains("Apollo Redesign") && text.contains("\"deep_work\""),
        "projects and vocabulary"
    );

    let mut admins = Store::new();
    settle(&w, "admin_a", None, &mut admins).await;
    assert_eq!(log_ids(&admins).len(), 13);

    // Nothing new: a pull from there brings nothing the copy does not already hold.
    let (_, again) = w
        .invoke(
            "sync-pull",
            &w.token("member_a"),
            json!({"org_id": a, "cursor": cursor}),
        )
        .await;
    for change in again["changes"].as_array().unwrap() {
        let table = change["table"].as_str().unwrap().to_owned();
        let id: Uuid = change["row"]["id"]
            .as_str()
            .or(change["id"].as_str())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(store.get(&(table, id)), change.get("row"), "{change}");
    }
    for (body, status) in [
        (json!({"org_id": a, "cursor": "yesterday"}), 400),
        (json!({"org_id": a, "limit": 0}), 400),
        (json!({"org_id": a, "limit": 100_000}), 400),
    ] {
        assert_eq!(
            w.invoke("sync-pull", &w.token("member_a"), body).await.0,
            status
        );
    }
    assert_eq!(
        w.invoke("sync-pull", &w.token("owner_b"), json!({"org_id": a}))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn pushes_apply_in_order_with_conflicts_rejections_and_no_double_apply() {
    let w = World::new().await;
    let (log, other, m) = (Uuid::now_v7(), Uuid::now_v7(), || Uuid::now_v7());
    let batch = json!([
        {"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": log,
         "values": {"comment": "2h code review", "duration_minutes": 120, "project_id": w.id("apollo")}},
        {"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": log, "base_version": 1,
         "values": {"comment": "2h code review, Apollo"}},
        {"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": log, "base_version": 1,
         "values": {"comment": "from a stale copy"}},
        {"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": other,
         "values": {"comment": "too long", "duration_minutes": 5000}},
        {"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": Uuid::now_v7(),
         "values": {"comment": "someone else's", "duration_minutes": 10, "user_id": w.id("admin_a")}},
        {"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": Uuid::now_v7(),
         "values": {"version": 7}},
        {"mutation_id": m(), "table": "payroll", "op": "delete", "id": Uuid::now_v7()},
        {"mutation_id": m(), "table": "projects", "op": "upsert", "id": w.id("apollo"), "base_version": 1,
         "values": {"name": "Renamed by a member"}},
    ]);
    let (status, first) = push(&w, "member_a", batch.clone()).await;
    assert_eq!(status, 200, "{first}");
    let statuses: Vec<&str> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "applied", "applied", "conflict", "rejected", "rejected", "rejected", "rejected",
            "rejected"
        ]
    );
    let results = first["results"].as_array().unwrap();
    assert_eq!(
        results[0]["row"]["status"], "pending",
        "a new log enters the pipeline"
    );
    assert_eq!(results[0]["row"]["user_id"], json!(w.id("member_a")));
    assert_eq!(results[1]["row"]["version"], 2);
    assert_eq!(
        results[2]["row"]["comment"], "2h code review, Apollo",
        "the server's row wins"
    );
    assert_eq!(results[3]["error"]["code"], "23514");
    assert!(
        results[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duration_minutes")
    );
    assert_eq!(
        results[4]["error"]["code"], "42501",
        "RLS: not the member's to write"
    );
    assert_eq!(results[5]["error"]["code"], "invalid_column");
    assert_eq!(results[6]["error"]["code"], "invalid_table");
    assert_eq!(
        results[7]["error"]["code"], "42501",
        "a member may not rename a project"
    );
    assert!(first["cursor"].is_string());

    // The response was lost: the same batch again applies nothing and answers the same.
    let (_, retry) = push(&w, "member_a", batch).await;
    for (again, before) in retry["results"].as_array().unwrap().iter().zip(results) {
        assert_eq!(again["status"], "duplicate");
        assert_eq!(again["original_status"], before["status"]);
        assert_eq!(again["row"], before["row"]);
    }
    let stored: Vec<(String, i32)> =
        sqlx::query_as("select comment, version from time_logs where id = $1")
            .bind(log)
            .fetch_all(&w.app.db.owner)
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, "2h code review, Apollo");
    let jobs: i64 = sqlx::query_scalar("select count(*) from private.jobs where kind = 'classify_log' and payload ->> 'log_id' = $1")
        .bind(log.to_string())
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(jobs, 1, "classified once");

    // A delete with the current version is a soft delete, pulled as a delete.
    // The classifier bumps the version once more: wait for it, so the copy is current.
    w.classified(&log.to_string()).await;
    let mut store = Store::new();
    let cursor = settle(&w, "member_a", None, &mut store).await;
    let version = store[&("time_logs".to_owned(), log)]["version"].clone();
    let (_, deleted) = push(&w, "member_a", json!([{"mutation_id": m(), "table": "time_logs", "op": "delete", "id": log, "base_version": version}])).await;
    assert_eq!(deleted["results"][0]["status"], "applied", "{deleted}");
    assert!(deleted["results"][0]["row"]["deleted_at"].is_string());
    settle(&w, "member_a", Some(cursor), &mut store).await;
    assert!(!log_ids(&store).contains(&log));

    // Limits and strangers.
    let many: Vec<Value> = (0..501)
        .map(|_| json!({"mutation_id": m(), "table": "time_logs", "op": "delete", "id": m()}))
        .collect();
    assert_eq!(push(&w, "member_a", json!(many)).await.0, 413);
    assert_eq!(push(&w, "member_a", json!([])).await.0, 400);
    assert_eq!(
        push(
            &w,
            "member_a",
            json!([{"mutation_id": m(), "op": "delete"}])
        )
        .await
        .0,
        400
    );
    assert_eq!(
        push(
            &w,
            "owner_b",
            json!([{"mutation_id": m(), "table": "time_logs", "op": "delete", "id": log}])
        )
        .await
        .0,
        403
    );
}

/// A mixed batch on fresh rows of member_a's: `(mutations, ids)`, where `ids` names the rows
/// the answers may mention (to compare two runs of it).
async fn mixed_batch(w: &World) -> (Vec<Value>, Vec<(Uuid, &'static str)>) {
    let (a, ma, ad) = (w.id("org_a"), w.id("member_a"), w.id("admin_a"));
    let [n1, n2, n3, n4, n5, e1, e2, e3, old] = [(); 9].map(|_| Uuid::now_v7());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into time_logs (id, org_id, user_id, comment, started_at, duration_minutes, status) values
           ('{e1}', '{a}', '{ma}', 'e1', '2026-11-20T09:00:00Z', 30, 'ready'),
           ('{e2}', '{a}', '{ma}', 'e2', '2026-11-20T10:00:00Z', 30, 'ready'),
           ('{e3}', '{a}', '{ma}', 'e3', '2026-11-20T11:00:00Z', 30, 'ready'),
           ('{old}', '{a}', '{ma}', 'before the lock date', '2026-10-20T09:00:00Z', 30, 'ready');"
    )))
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    let m = Uuid::now_v7;
    let first = m();
    let log = |id: Uuid, values: Value| json!({"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": id, "values": values});
    let edit = |id: Uuid, version: i32, values: Value| {
        json!({"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": id,
               "base_version": version, "values": values})
    };
    let delete = |id: Uuid, version: i32| json!({"mutation_id": m(), "table": "time_logs", "op": "delete", "id": id, "base_version": version});
    let mutations = vec![
        json!({"mutation_id": first, "table": "time_logs", "op": "upsert", "id": n1,
               "values": {"comment": "n1", "duration_minutes": 30}}),
        log(
            n2,
            json!({"comment": "n2 too long", "duration_minutes": 5000}),
        ),
        log(
            n3,
            json!({"comment": "n3", "started_at": "2026-11-21T09:00:00Z", "duration_minutes": 45}),
        ),
        log(
            n4,
            json!({"comment": "n4 in a closed period", "started_at": "2026-10-15T09:00:00Z", "duration_minutes": 30}),
        ),
        log(
            n5,
            json!({"comment": "n5 someone else's", "duration_minutes": 10, "user_id": ad}),
        ),
        edit(n1, 1, json!({"comment": "n1 edited"})),
        edit(e1, 1, json!({"comment": "e1 edited", "billable": true})),
        edit(e2, 9, json!({"comment": "from a stale copy"})),
        edit(old, 1, json!({"comment": "an edit of a closed period"})),
        edit(e3, 1, json!({"version": 3})),
        edit(e1, 2, json!({})),
        delete(e3, 1),
        delete(e2, 1),
        delete(Uuid::now_v7(), 1),
        json!({"mutation_id": first, "table": "time_logs", "op": "upsert", "id": n1, "values": {}}),
        json!({"mutation_id": m(), "table": "projects", "op": "upsert", "id": w.id("apollo"),
               "base_version": 1, "values": {"name": "Renamed by a member"}}),
        json!({"mutation_id": m(), "table": "payroll", "op": "delete", "id": Uuid::now_v7()}),
    ];
    let ids = vec![
        (n1, "n1"),
        (n2, "n2"),
        (n3, "n3"),
        (n4, "n4"),
        (n5, "n5"),
        (e1, "e1"),
        (e2, "e2"),
        (e3, "e3"),
        (old, "old"),
    ];
    (mutations, ids)
}

/// What of an answer must not depend on how it was applied: ids named, times dropped.
fn shape(answer: &Value, ids: &[(Uuid, &str)]) -> Value {
    let row = &answer["row"];
    let name = |v: &Value| {
        ids.iter()
            .find(|(id, _)| v.as_str() == Some(id.to_string().as_str()))
            .map_or(json!(null), |(_, n)| json!(n))
    };
    json!({
        "status": answer["status"], "original_status": answer["original_status"],
        "code": answer["error"]["code"],
        "row": row.is_object().then(|| json!({
            "id": name(&row["id"]), "comment": row["comment"], "version": row["version"],
            "status": row["status"], "duration_minutes": row["duration_minutes"],
            "billable": row["billable"], "deleted": row["deleted_at"].is_string(),
            "user_id": row["user_id"],
            "user_locked": row["user_locked"],
        })),
    })
}

#[tokio::test]
async fn a_batch_gets_the_answers_it_would_get_a_mutation_at_a_time() {
    // No workers: classification would bump versions between the single pushes.
    let app = tally_testkit::TestApp::spawn_with(|c| c.ai.worker_concurrency = 0)
        .await
        .unwrap();
    let w = World::with_app(app).await;
    sqlx::query("update organizations set lock_date = '2026-10-31' where id = $1")
        .bind(w.id("org_a"))
        .execute(&w.app.db.owner)
        .await
        .unwrap();

    let (batch, batch_ids) = mixed_batch(&w).await;
    let (status, together) = push(&w, "member_a", json!(batch)).await;
    assert_eq!(status, 200, "{together}");
    let together: Vec<Value> = together["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| shape(r, &batch_ids))
        .collect();

    let (singles, single_ids) = mixed_batch(&w).await;
    let mut alone = Vec::new();
    for mutation in singles {
        let (status, answer) = push(&w, "member_a", json!([mutation])).await;
        assert_eq!(status, 200, "{answer}");
        alone.push(shape(&answer["results"][0], &single_ids));
    }
    for (i, (t, a)) in together.iter().zip(&alone).enumerate() {
        assert_eq!(t, a, "mutation {i}: in a batch, then alone");
    }
    let statuses: Vec<(&str, &str)> = together
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap(),
                r["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("applied", ""),
            ("rejected", "23514"),
            ("applied", ""),
            ("rejected", "locked"),
            ("rejected", "42501"),
            ("applied", ""),
            ("applied", ""),
            ("conflict", ""),
            ("rejected", "locked"),
            ("rejected", "invalid_column"),
            ("applied", ""),
            ("applied", ""),
            ("applied", ""),
            ("rejected", "not_found"),
            ("duplicate", ""),
            ("rejected", "42501"),
            ("rejected", "invalid_table"),
        ]
    );
    assert_eq!(
        together[5]["row"]["version"], 2,
        "n1 edited after its insert"
    );
    assert_eq!(together[14]["original_status"], "applied");

    // The rows themselves: the same in both runs.
    let rows = |ids: Vec<(Uuid, &'static str)>| {
        let db = w.app.db.owner.clone();
        async move {
            let mut out = Vec::new();
            for (id, name) in ids {
                let row: Option<(String, i32, bool)> = sqlx::query_as(
                    "select comment, version, deleted_at is not null from time_logs where id = $1",
                )
                .bind(id)
                .fetch_optional(&db)
                .await
                .unwrap();
                out.push((name, row));
            }
            out
        }
    };
    let (a, b) = (rows(batch_ids).await, rows(single_ids).await);
    assert_eq!(a, b);
    assert!(a.iter().any(|(n, r)| *n == "n2" && r.is_none()), "{a:?}");
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_still_delivered() {
    let w = World::new().await;
    let (a, ma) = (w.id("org_a"), w.id("member_a"));
    let mut store = Store::new();
    let cursor = settle(&w, "member_a", None, &mut store).await;

    // The slow transaction takes its position first, then a fast one commits after it.
    let mut slow = w.app.db.owner.begin().await.unwrap();
    let slow_id: Uuid = sqlx::query_scalar(
        "insert into time_logs (org_id, user_id, comment, duration_minutes, status) values ($1, $2, 'slow', 30, 'ready') returning id",
    )
    .bind(a)
    .bind(ma)
    .fetch_one(&mut *slow)
    .await
    .unwrap();
    // (Another day: the same person's same day would wait on the slow one's dirty-day mark.)
    let fast_id: Uuid = sqlx::query_scalar(
        "insert into time_logs (org_id, user_id, comment, started_at, ended_at, status)
         values ($1, $2, 'fast', now() - interval '3 days', now() - interval '3 days' + interval '30 minutes', 'ready')
         returning id",
    )
    .bind(a)
    .bind(ma)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    // A pull in between must not move its cursor past the slow transaction's change, and says
    // that committed changes are held back (the fast one's), so the client pulls again soon.
    let (status, page) = w
        .call(
            "member_a",
            "sync-pull",
            json!({"org_id": a, "cursor": cursor.clone()}),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["held_back"], true, "{page}");
    let between = pull_all(&w, "member_a", Some(cursor), &mut store).await;
    assert!(!log_ids(&store).contains(&slow_id));
    slow.commit().await.unwrap();

    let mut cursor = between;
    for _ in 0..100 {
        cursor = pull_all(&w, "member_a", Some(cursor), &mut store).await;
        if log_ids(&store).is_superset(&HashSet::from([slow_id, fast_id])) {
            return;
        }
        // Another test's transaction still running on the cluster holds the horizon back.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the late commit was never delivered");
}

#[tokio::test]
async fn a_cursor_older_than_the_purged_tombstones_must_resync() {
    let w = World::new().await;
    let m = Uuid::now_v7;
    let (kept, gone) = (m(), m());
    let create = |id: Uuid| json!({"mutation_id": m(), "table": "time_logs", "op": "upsert", "id": id, "values": {"comment": "x", "duration_minutes": 15}});
    push(&w, "member_a", json!([create(kept), create(gone)])).await;
    w.classified(&gone.to_string()).await;
    let mut store = Store::new();
    let old = settle(&w, "member_a", None, &mut store).await;
    let version = store[&("time_logs".to_owned(), gone)]["version"].clone();
    let (_, deleted) = push(&w, "member_a", json!([{"mutation_id": m(), "table": "time_logs", "op": "delete", "id": gone, "base_version": version}])).await;
    assert_eq!(deleted["results"][0]["status"], "applied");
    let mut fresh = store.clone();
    let current = settle(&w, "member_a", Some(old.clone()), &mut fresh).await;

    // Forty days later the daily purge runs (retention 30 days).
    sqlx::query(
        "update private.sync_rows set changed_at = now() - interval '40 days' where id = $1",
    )
    .bind(gone)
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    let removed = tally_functions::sync::purge::purge(&w.app.db.requests, 30)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let left: i64 = sqlx::query_scalar("select count(*) from time_logs where id = $1")
        .bind(gone)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(left, 0, "the tombstone is gone for good");

    let (status, error) = w
        .invoke(
            "sync-pull",
            &w.token("member_a"),
            json!({"org_id": w.id("org_a"), "cursor": old}),
        )
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (410, Some("resync_required")),
        "{error}"
    );
    let (status, _) = w
        .invoke(
            "sync-pull",
            &w.token("member_a"),
            json!({"org_id": w.id("org_a"), "cursor": current}),
        )
        .await;
    assert_eq!(status, 200, "a client that saw the delete goes on");
    let mut resynced = Store::new();
    settle(&w, "member_a", None, &mut resynced).await;
    assert!(log_ids(&resynced).contains(&kept) && !log_ids(&resynced).contains(&gone));
}

/// A small deterministic generator (xorshift), so a seed replays a run exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A simulated device: its person, its copy, its cursor, its queue of unsent mutations.
struct Client {
    who: &'static str,
    store: Store,
    cursor: Option<String>,
    queue: Vec<Value>,
    online: bool,
}

impl Client {
    fn logs(&self) -> Vec<(Uuid, Value)> {
        self.store
            .iter()
            .filter(|((t, _), _)| t == "time_logs")
            .map(|((_, id), row)| (*id, row.clone()))
            .collect()
    }
}

/// One run; returns how many duplicate answers and conflicts it met.
async fn simulate(seed: u64) -> (usize, usize) {
    let w = World::new().await;
    let mut rng = Rng(seed.max(1));
    let mut clients: Vec<Client> = ["member_a", "member_a", "admin_a"]
        .into_iter()
        .map(|who| Client {
            who,
            store: Store::new(),
            cursor: None,
            queue: Vec::new(),
            online: true,
        })
        .collect();
    // Every result each mutation id has been answered with (the last one counts).
    let mut answered: HashMap<Uuid, String> = HashMap::new();
    let mut duplicates = 0usize;
    // Create mutations: mutation id → the log's id.
    let mut creates: Vec<(Uuid, Uuid)> = Vec::new();
    for step in 0..120 {
        let c = rng.below(clients.len());
        match rng.below(10) {
            // Offline edits: create, edit or delete a log.
            0..=2 => {
                let (id, mutation) = (Uuid::now_v7(), Uuid::now_v7());
                creates.push((mutation, id));
                let minutes = if rng.chance(10) {
                    5000
                } else {
                    15 + rng.below(120)
                };
                clients[c].queue.push(
                    json!({"mutation_id": mutation, "table": "time_logs", "op": "upsert", "id": id,
                    "values": {"comment": format!("step {step}"), "duration_minutes": minutes}}),
                );
            }
            3..=4 => {
                let logs = clients[c].logs();
                if !logs.is_empty() {
                    let (id, row) = &logs[rng.below(logs.len())];
                    clients[c].queue.push(json!({"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "upsert", "id": id,
                        "base_version": row["version"], "values": {"comment": format!("edited at {step}")}}));
                }
            }
            5 => {
                let logs = clients[c].logs();
                if !logs.is_empty() {
                    let (id, row) = &logs[rng.below(logs.len())];
                    clients[c].queue.push(json!({"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "delete", "id": id,
                        "base_version": row["version"]}));
                }
            }
            6 => clients[c].online = !clients[c].online,
            // The server edits too: an owner's change straight in the database.
            7 => {
                sqlx::query(
                    "update time_logs set comment = comment || ' (server)' where id =
                       (select id from time_logs where org_id = $1 and deleted_at is null order by random() limit 1)",
                )
                .bind(w.id("org_a"))
                .execute(&w.app.db.owner)
                .await
                .unwrap();
            }
            // Sync: push the queue (the answer may be lost), then pull.
            _ => {
                if !clients[c].online {
                    continue;
                }
                let client = &mut clients[c];
                if !client.queue.is_empty() {
                    let (status, answer) = push(&w, client.who, json!(client.queue)).await;
                    assert_eq!(status, 200, "{answer}");
                    for r in answer["results"].as_array().unwrap() {
                        duplicates += usize::from(r["status"] == "duplicate");
                        let status = r.get("original_status").unwrap_or(&r["status"]);
                        answered.insert(
                            r["mutation_id"].as_str().unwrap().parse().unwrap(),
                            status.as_str().unwrap().to_owned(),
                        );
                    }
                    if !rng.chance(40) {
                        client.queue.clear();
                    }
                }
                let cursor =
                    pull_all(&w, client.who, client.cursor.take(), &mut client.store).await;
                client.cursor = Some(cursor);
            }
        }
    }
    // Back online: everyone sends what is left and pulls until the store settles.
    for client in &mut clients {
        if !client.queue.is_empty() {
            let (_, answer) = push(&w, client.who, json!(client.queue)).await;
            for r in answer["results"].as_array().unwrap() {
                let status = r.get("original_status").unwrap_or(&r["status"]);
                answered.insert(
                    r["mutation_id"].as_str().unwrap().parse().unwrap(),
                    status.as_str().unwrap().to_owned(),
                );
            }
            client.queue.clear();
        }
    }
    // Let the pipeline finish classifying, so the server stops changing under the check (the
    // first classification also embeds the vocabulary's prototypes: allow a minute).
    for _ in 0..600 {
        let busy: i64 = sqlx::query_scalar("select count(*) from private.jobs where kind in ('classify_log', 'embed_log') and not dead")
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for client in &mut clients {
        let expected = server_state(&w, client.who).await;
        for _ in 0..100 {
            let cursor = pull_all(&w, client.who, client.cursor.take(), &mut client.store).await;
            client.cursor = Some(cursor);
            if client.store == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            client.store, expected,
            "seed {seed}: {} differs from the server",
            client.who
        );
        let text = serde_json::to_string(&client.store.values().collect::<Vec<_>>()).unwrap();
        assert!(
            !text.contains(&w.id("org_b").to_string()),
            "seed {seed}: another org's row"
        );
    }
    // Each answered mutation is stored once, with the answer the client got.
    let stored: Vec<(Uuid, String)> =
        sqlx::query_as("select mutation_id, result ->> 'status' from private.sync_mutations")
            .fetch_all(&w.app.db.owner)
            .await
            .unwrap();
    let stored: HashMap<Uuid, String> = stored.into_iter().collect();
    for (id, status) in &answered {
        assert_eq!(stored.get(id), Some(status), "seed {seed}: mutation {id}");
    }
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for status in answered.values() {
        *tally.entry(status.as_str()).or_default() += 1;
    }
    eprintln!(
        "seed {seed}: {} mutations answered {tally:?}; {duplicates} duplicate answers",
        answered.len()
    );
    // Every create applied is exactly one row with the client's id; every one rejected, none.
    for (mutation, log) in &creates {
        let rows: i64 = sqlx::query_scalar("select count(*) from time_logs where id = $1")
            .bind(log)
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
        let expected = match answered.get(mutation).map(String::as_str) {
            Some("applied") => 1,
            Some("rejected") => 0,
            other => panic!("seed {seed}: create {mutation} answered {other:?}"),
        };
        assert_eq!(rows, expected, "seed {seed}: log {log}");
    }
    (duplicates, tally.get("conflict").copied().unwrap_or(0))
}

#[tokio::test]
async fn offline_clients_converge_on_the_servers_state() {
    let seeds: u64 = std::env::var("TALLY_SYNC_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (mut duplicates, mut conflicts) = (0, 0);
    for seed in 1..=seeds {
        let (d, c) = simulate(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)).await;
        duplicates += d;
        conflicts += c;
    }
    assert!(
        duplicates > 0 && conflicts > 0,
        "the runs must retry lost answers and meet conflicts"
    );
}

#[tokio::test]
async fn sync_calls_past_the_per_person_limit_get_429() {
    let app = tally_testkit::TestApp::spawn_with(|c| c.sync.sync_requests_per_minute = 3)
        .await
        .unwrap();
    let w = World::with_app(app).await;
    let body = json!({"org_id": w.id("org_a")});
    for _ in 0..3 {
        assert_eq!(
            w.invoke("sync-pull", &w.token("member_a"), body.clone())
                .await
                .0,
            200
        );
    }
    let (status, error) = w
        .invoke("sync-pull", &w.token("member_a"), body.clone())
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (429, Some("rate_limited"))
    );
    let (status, _) = push(&w, "member_a", json!([{"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "delete", "id": Uuid::now_v7()}])).await;
    assert_eq!(status, 429, "pushes count too");
    // Someone else's calls are their own.
    assert_eq!(
        w.invoke("sync-pull", &w.token("admin_a"), body).await.0,
        200
    );
}
