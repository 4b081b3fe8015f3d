//! `tally demo`: everyone in each role, classified logs, nothing left pending, and a second
//! run changes nothing.

use chrono::Utc;
use tally_core::{Config, JwtKeys};
use tally_functions::Providers;
use tally_server::{app::storage_state, demo, workers::workers};
use tally_testkit::TestDb;

#[tokio::test]
async fn the_demo_seeds_an_org_with_classified_logs_once() {
    let db = TestDb::new().await.unwrap();
    let mut config = Config::defaults()
        .unwrap()
        .with_jwt_secret(tally_testkit::TEST_JWT_SECRET)
        .unwrap();
    config.data_dir = std::env::temp_dir().join(format!("tally-demo-{}", uuid::Uuid::new_v4()));
    let keys = JwtKeys::new(tally_testkit::TEST_JWT_SECRET);
    let storage = storage_state(db.requests.clone(), keys, &config).unwrap();
    let workers = workers(&db.requests, &config, &Providers::rules_only(), &storage).unwrap();
    let seeded = demo::seed(&db.owner, &workers, 10, Utc::now())
        .await
        .unwrap()
        .expect("a fresh database gets the demo");
    assert!(seeded.logs >= 4 * 4 * 6, "{seeded:?}");

    let roles: Vec<String> = sqlx::query_scalar(
        "select role::text from memberships where org_id = $1 order by memberships.role",
    )
    .bind(seeded.org)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        roles,
        ["owner", "admin", "manager", "member", "member", "viewer"]
    );
    let (pending, classified, with_project, with_duration): (i64, i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'pending'), \
                count(*) filter (where status in ('ready', 'needs_review', 'finalized')), \
                count(*) filter (where project_id is not null), \
                count(*) filter (where duration_minutes is not null) \
         from time_logs where org_id = $1",
    )
    .bind(seeded.org)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(pending, 0);
    assert_eq!(classified as usize, seeded.logs);
    assert!(with_project > 0);
    assert_eq!(
        with_duration as usize, seeded.logs,
        "every line has its time range"
    );

    // People sign in with the printed password.
    let hash: Option<String> = sqlx::query_scalar(
        "select encrypted_password from auth.users where email = 'sam@demo.tally.localhost'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(
        tally_auth::password::verify(demo::PASSWORD, hash.as_deref())
            .await
            .unwrap()
    );

    assert!(
        demo::seed(&db.owner, &workers, 10, Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    let _ = std::fs::remove_dir_all(&config.data_dir);
}
