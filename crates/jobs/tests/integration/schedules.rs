use serde_json::json;
use tally_jobs::schedule;
use tally_testkit::TestDb;

#[tokio::test]
async fn a_due_schedule_fires_once_across_instances_and_moves_on() {
    let db = TestDb::new().await.unwrap();
    // Only this test's schedule (the migrations seed Tally's own).
    sqlx::query("delete from private.schedules")
        .execute(&db.owner)
        .await
        .unwrap();
    schedule::upsert(
        &db.requests,
        "nightly",
        "0 3 * * *",
        "Europe/Berlin",
        "rollup",
        &json!({"x": 1}),
    )
    .await
    .unwrap();
    // Not due yet: nothing fires.
    assert_eq!(schedule::tick(&db.requests).await.unwrap(), 0);
    sqlx::query("update private.schedules set next_run_at = now() - interval '1 minute'")
        .execute(&db.owner)
        .await
        .unwrap();
    // Two instances tick at the same moment.
    let (a, b) = tokio::join!(schedule::tick(&db.requests), schedule::tick(&db.requests));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let jobs: Vec<(String, serde_json::Value)> =
        sqlx::query_as("select kind, payload from private.jobs")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(jobs, [("rollup".to_owned(), json!({"x": 1}))]);
    let (next, hour): (bool, f64) = sqlx::query_as(
        "select next_run_at > now(), extract(hour from next_run_at at time zone 'Europe/Berlin')::float8 \
         from private.schedules",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(next);
    assert_eq!(hour, 3.0);
}
