//! postgres_changes: the join reply's ids, each operation, filters, the payload's shape in both
//! serializers, rows over NOTIFY's 8 KB limit, many rows in one statement, and the metrics.

use serde_json::{Value, json};
use tally_testkit::Fixture;
use uuid::Uuid;

use crate::{changes, connect, drain, drain_some, join, next, parts, sql, subscribe};

fn is_commit_timestamp(value: &Value) -> bool {
    let s = value.as_str().unwrap_or_default();
    s.len() == 24
        && s.ends_with('Z')
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
        && s.as_bytes()[19] == b'.'
}

#[tokio::test]
async fn each_operation_reaches_the_bindings_it_matches_in_both_serializers() {
    let app = crate::app().await;
    let f = Fixture::load(&app).await.unwrap();
    let owner = f.token(&app, "owner_a");
    let (org, member, member2) = (f.id("org_a"), f.id("member_a"), f.id("member2_a"));

    let bindings = json!([
        {"event": "INSERT", "schema": "public", "table": "time_logs"},
        {"event": "UPDATE", "schema": "public", "table": "time_logs", "filter": "duration_minutes=gte.60"},
        {"event": "DELETE", "schema": "public", "table": "time_logs"},
        {"event": "*", "schema": "public", "table": "projects", "filter": "code=in.(APO,ZEU)"}
    ]);
    let mut js = connect(&app, "2.0.0").await;
    let reply = join(
        &mut js,
        true,
        "realtime:logs",
        json!({"config": {"postgres_changes": bindings, "presence": {"enabled": false}}, "access_token": owner}),
    )
    .await;
    assert_eq!(reply["status"], "ok");
    let echoed = reply["response"]["postgres_changes"].as_array().unwrap();
    assert_eq!(echoed.len(), 4);
    let mut ids = Vec::new();
    for (sent, got) in bindings.as_array().unwrap().iter().zip(echoed) {
        let mut without_id = got.clone();
        let id = without_id.as_object_mut().unwrap().remove("id").unwrap();
        assert_eq!(&without_id, sent, "the params come back unchanged");
        assert!(id.is_u64(), "an integer id: {id}");
        ids.push(id);
    }
    let system = next(&mut js).await;
    assert_eq!(
        system,
        json!([null, null, "realtime:logs", "system", {"extension": "postgres_changes",
            "status": "ok", "message": "Subscribed to PostgreSQL", "channel": "logs"}])
    );
    let mut py = connect(&app, "1.0.0").await;
    subscribe(
        &mut py,
        false,
        "realtime:mine",
        &owner,
        json!([{"event": "*", "schema": "public", "table": "time_logs", "filter": format!("user_id=eq.{member}")}]),
    )
    .await;
    // What the fixture's inserts may have sent is not part of the test.
    drain(&mut js).await;
    drain(&mut py).await;

    let log = Uuid::now_v7();
    sql(
        &app,
        &format!(
            "insert into time_logs (id, org_id, user_id, comment, duration_minutes, status)
        values ('{log}', '{org}', '{member}', 'Apollo review', 30, 'pending')"
        ),
    )
    .await;
    let got = drain_some(&mut js).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0][0].clone(), got[0][1].clone()),
        (Value::Null, Value::Null),
        "pushes have no refs"
    );
    let (_, event, payload) = parts(&got[0]);
    assert_eq!(event, "postgres_changes");
    assert_eq!(payload["ids"], json!([ids[0]]));
    let data = &payload["data"];
    assert_eq!(
        (
            data["schema"].as_str(),
            data["table"].as_str(),
            data["type"].as_str()
        ),
        (Some("public"), Some("time_logs"), Some("INSERT"))
    );
    assert!(
        is_commit_timestamp(&data["commit_timestamp"]),
        "{}",
        data["commit_timestamp"]
    );
    assert_eq!(data["record"]["comment"], "Apollo review");
    assert_eq!(data["record"]["duration_minutes"], 30, "typed values");
    assert_eq!(data["record"]["status"], "pending");
    assert!(data.get("old_record").is_none());
    assert!(data["errors"].is_null());
    let columns = data["columns"].as_array().unwrap();
    assert!(columns.contains(&json!({"name": "duration_minutes", "type": "int4"})));
    assert!(columns.contains(&json!({"name": "id", "type": "uuid"})));
    assert!(columns.contains(&json!({"name": "tags", "type": "_text"})));
    // supabase-py's socket has it too, as an object without refs.
    let heard = drain_some(&mut py).await;
    assert_eq!(
        changes(&heard),
        [("INSERT".into(), "time_logs".into(), log.to_string())]
    );
    assert!(heard[0]["ref"].is_null());

    // An update matching the filter, one not matching it, then a delete.
    sql(
        &app,
        &format!("update time_logs set duration_minutes = 90 where id = '{log}'"),
    )
    .await;
    let got = drain_some(&mut js).await;
    let (_, _, payload) = parts(&got[0]);
    assert_eq!(payload["ids"], json!([ids[1]]));
    assert_eq!(payload["data"]["type"], "UPDATE");
    assert_eq!(payload["data"]["record"]["duration_minutes"], 90);
    assert_eq!(payload["data"]["old_record"], json!({"id": log}));
    sql(
        &app,
        &format!("update time_logs set duration_minutes = 45 where id = '{log}'"),
    )
    .await;
    assert!(
        drain(&mut js).await.is_empty(),
        "45 < 60: the UPDATE binding's filter says no"
    );
    sql(&app, &format!("delete from time_logs where id = '{log}'")).await;
    let got = drain_some(&mut js).await;
    let (_, _, payload) = parts(&got[0]);
    assert_eq!(payload["ids"], json!([ids[2]]));
    assert_eq!(payload["data"]["type"], "DELETE");
    assert_eq!(payload["data"]["old_record"], json!({"id": log}));
    assert!(payload["data"].get("record").is_none());
    let heard: Vec<String> = changes(&drain_some(&mut py).await)
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(heard, ["UPDATE", "UPDATE", "DELETE"]);

    // Another table, with an `in` filter; another person's log reaches js, not py's filter.
    sql(
        &app,
        &format!(
            "insert into projects (org_id, name, code) values
        ('{org}', 'Apollo', 'APO'), ('{org}', 'Other', 'OTH')"
        ),
    )
    .await;
    let got = changes(&drain_some(&mut js).await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "projects");
    sql(
        &app,
        &format!(
            "insert into time_logs (org_id, user_id, comment, duration_minutes)
        values ('{org}', '{member2}', 'other', 5)"
        ),
    )
    .await;
    assert_eq!(changes(&drain_some(&mut js).await).len(), 1);
    assert!(drain(&mut py).await.is_empty());

    // The metrics count what happened.
    let metrics = crate::metrics(&app).await;
    for name in [
        "realtime_connections",
        "realtime_channels",
        "realtime_messages_in_total",
        "realtime_messages_out_total",
        "realtime_change_to_send_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
}

#[tokio::test]
async fn rows_over_the_notify_limit_and_whole_statements_arrive() {
    let app = crate::app().await;
    let f = Fixture::load(&app).await.unwrap();
    let (org, member) = (f.id("org_a"), f.id("member_a"));
    let mut ws = connect(&app, "2.0.0").await;
    subscribe(
        &mut ws,
        true,
        "realtime:all",
        &f.token(&app, "admin_a"),
        json!([{"event": "*", "schema": "public", "table": "time_logs"}]),
    )
    .await;
    drain(&mut ws).await; // what the fixture's inserts may have sent

    // A 10,000-character comment (a payload over 8 KB): the row is read from the table, not from the notification.
    let long = "x".repeat(10_000);
    let log = Uuid::now_v7();
    sql(
        &app,
        &format!(
            "insert into time_logs (id, org_id, user_id, comment, duration_minutes)
        values ('{log}', '{org}', '{member}', '{long}', 10)"
        ),
    )
    .await;
    let got = drain_some(&mut ws).await;
    let (_, _, payload) = parts(&got[0]);
    assert_eq!(
        payload["data"]["record"]["comment"].as_str().map(str::len),
        Some(10_000)
    );

    // 300 rows in one statement, then deleting 40 fat rows in one (their old images spill).
    sql(&app, &format!("insert into time_logs (org_id, user_id, comment, duration_minutes)
        select '{org}', '{member}', 'bulk ' || g || ' ' || repeat('y', case when g <= 40 then 2000 else 1 end), 1
        from generate_series(1, 300) g")).await;
    let mut inserted = Vec::new();
    while inserted.len() < 300 {
        let batch = changes(&drain_some(&mut ws).await);
        assert!(
            !batch.is_empty(),
            "{} of 300 inserts arrived",
            inserted.len()
        );
        inserted.extend(batch);
    }
    assert!(inserted.iter().all(|c| c.0 == "INSERT"));
    let distinct: std::collections::HashSet<&String> = inserted.iter().map(|c| &c.2).collect();
    assert_eq!(distinct.len(), 300, "each row once");
    sql(
        &app,
        "delete from time_logs where comment like 'bulk %' and length(comment) > 1000",
    )
    .await;
    let deleted = changes(&drain_some(&mut ws).await);
    assert_eq!(deleted.len(), 40);
    assert!(deleted.iter().all(|c| c.0 == "DELETE"));
    let spilled: i64 = sqlx::query_scalar("select count(*) from realtime.spill")
        .fetch_one(&app.db.owner)
        .await
        .unwrap();
    assert!(spilled > 0, "the big deletes went through realtime.spill");
}
