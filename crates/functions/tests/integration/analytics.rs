//! `analytics-query` from the phase-1 rollups (no ClickHouse configured): each role gets what
//! row-level security gives it of the day summaries — a member their own minutes, a manager
//! theirs and their team's, an owner the org's, a viewer org-wide aggregates only, another
//! org nothing — and the same from ClickHouse when analytics streams there.

use serde_json::{Value, json};

use crate::world::World;

/// A team led by the manager with member_a in it, and two logs without times (so on today):
/// member_a's 15 minutes and admin_a's 30.
async fn logs(w: &World) {
    let sql = format!(
        "insert into teams (id, org_id, name) values ('{t}', '{a}', 'Web');
         insert into team_members (org_id, team_id, user_id, is_lead) values
           ('{a}', '{t}', '{mg}', true), ('{a}', '{t}', '{ma}', false);
         insert into time_logs (org_id, user_id, comment, duration_minutes, status) values
           ('{a}', '{ma}', 'standup', 15, 'ready'), ('{a}', '{ad}', 'review', 30, 'ready');",
        t = uuid::Uuid::now_v7(),
        a = w.id("org_a"),
        mg = w.id("manager_a"),
        ma = w.id("member_a"),
        ad = w.id("admin_a"),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&w.app.db.owner)
        .await
        .unwrap();
}

/// The org's day now, in its time zone: the day a log without times falls on (past 23:00 UTC
/// it is already tomorrow in Europe).
async fn org_today(w: &World) -> chrono::NaiveDate {
    sqlx::query_scalar(
        "select (now() at time zone timezone)::date from organizations where id = $1",
    )
    .bind(w.id("org_a"))
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap()
}

/// `{person: minutes}` of a person-grouped answer.
fn by_person(body: &Value) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = body["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["person"].as_str().unwrap_or_default().to_owned(),
                r["minutes"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn each_role_reads_what_rls_gives_it_of_the_rollups() {
    let w = World::new().await;
    logs(&w).await;
    let today = org_today(&w).await;
    let org = w.id("org_a");
    let (status, rolled) = w
        .call(
            "owner_a",
            "insights-rollup",
            json!({"org_id": org, "from": today, "to": today}),
        )
        .await;
    assert_eq!(status, 200, "{rolled}");
    sqlx::query("select private.refresh_summaries()")
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    let query = |group_by: Value, interval: &str| {
        json!({"org_id": org, "from": today, "to": today, "interval": interval,
               "group_by": group_by})
    };
    let (ma, m2) = (w.id("member_a").to_string(), w.id("admin_a").to_string());

    let (status, owner) = w
        .call(
            "owner_a",
            "analytics-query",
            query(json!(["person"]), "day"),
        )
        .await;
    assert_eq!(status, 200, "{owner}");
    assert_eq!(owner["source"], "rollups");
    assert_eq!(owner["scope"], "org");
    let mut both = vec![(ma.clone(), 15), (m2.clone(), 30)];
    both.sort();
    assert_eq!(by_person(&owner), both);
    assert_eq!(owner["rows"][0]["period"], json!(today));

    let (_, member) = w
        .call(
            "member_a",
            "analytics-query",
            query(json!(["person"]), "day"),
        )
        .await;
    assert_eq!(member["scope"], "self");
    assert_eq!(by_person(&member), [(ma.clone(), 15)], "{member}");
    let (_, month) = w
        .call("member_a", "analytics-query", query(json!([]), "month"))
        .await;
    assert_eq!(month["rows"][0]["minutes"], 15, "{month}");

    let (_, manager) = w
        .call(
            "manager_a",
            "analytics-query",
            query(json!(["person"]), "week"),
        )
        .await;
    assert_eq!(manager["scope"], "led");
    assert_eq!(by_person(&manager), [(ma.clone(), 15)], "{manager}");

    let (status, viewer) = w
        .call("viewer_a", "analytics-query", query(json!([]), "week"))
        .await;
    assert_eq!(status, 200, "{viewer}");
    assert_eq!(viewer["scope"], "aggregate");
    let total: i64 = viewer["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["minutes"].as_i64().unwrap_or_default())
        .sum();
    assert_eq!(total, 45, "{viewer}");
    for refused in [query(json!(["person"]), "week"), query(json!([]), "day")] {
        let (status, body) = w.call("viewer_a", "analytics-query", refused).await;
        assert_eq!(status, 403, "{body}");
    }

    let (status, other) = w
        .call("owner_b", "analytics-query", query(json!([]), "week"))
        .await;
    assert_eq!(status, 403, "another org's: {other}");

    for bad in [
        query(json!(["colour"]), "week"),
        query(json!([]), "year"),
        query(json!(["project", "activity"]), "week"),
        json!({"org_id": org, "from": today, "to": today.pred_opt()}),
    ] {
        let (status, body) = w.call("owner_a", "analytics-query", bad).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn on_clickhouse_each_role_reads_the_same_as_from_the_rollups() {
    let clickhouse = tally_testkit::ClickHouseServer::start().await.unwrap();
    let url = clickhouse.url.clone();
    let app = tally_testkit::TestApp::spawn_with(|c| {
        c.analytics.analytics = true;
        c.analytics.analytics_lake = false;
        c.analytics.analytics_clickhouse_url = Some(url);
        c.analytics.analytics_clickhouse_database = format!("t_{}", uuid::Uuid::new_v4().simple());
    })
    .await
    .unwrap();
    let w = World::with_app(app).await;
    logs(&w).await;
    let today = org_today(&w).await;
    let org = w.id("org_a");
    let query = |group_by: Value, interval: &str| {
        json!({"org_id": org, "from": today, "to": today, "interval": interval,
               "group_by": group_by})
    };
    let (ma, m2) = (w.id("member_a").to_string(), w.id("admin_a").to_string());
    let mut both = vec![(ma.clone(), 15), (m2.clone(), 30)];
    both.sort();

    // The server streams the fixture's logs into ClickHouse; the owner's answer fills up.
    let mut owner = Value::Null;
    for _ in 0..120 {
        let (status, body) = w
            .call(
                "owner_a",
                "analytics-query",
                query(json!(["person"]), "day"),
            )
            .await;
        // 503 until the first copy made the table: the warehouse is not ready yet.
        assert!(status == 200 || status == 503, "{status} {body}");
        owner = body;
        if by_person(&owner) == both {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(owner["source"], "clickhouse");
    assert_eq!(by_person(&owner), both, "{owner}");
    assert_eq!(owner["rows"][0]["period"], json!(today));

    let (_, member) = w
        .call(
            "member_a",
            "analytics-query",
            query(json!(["person"]), "day"),
        )
        .await;
    assert_eq!(
        (member["source"].as_str(), member["scope"].as_str()),
        (Some("clickhouse"), Some("self"))
    );
    assert_eq!(by_person(&member), [(ma.clone(), 15)], "{member}");
    let (_, manager) = w
        .call(
            "manager_a",
            "analytics-query",
            query(json!(["person", "project"]), "week"),
        )
        .await;
    assert_eq!(by_person(&manager), [(ma.clone(), 15)], "{manager}");
    let (status, viewer) = w
        .call("viewer_a", "analytics-query", query(json!([]), "month"))
        .await;
    assert_eq!(status, 200, "{viewer}");
    assert_eq!(viewer["rows"][0]["minutes"], 45, "{viewer}");
    let (status, _) = w
        .call(
            "viewer_a",
            "analytics-query",
            query(json!(["person"]), "week"),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = w
        .call("owner_b", "analytics-query", query(json!([]), "week"))
        .await;
    assert_eq!(status, 403);
}
