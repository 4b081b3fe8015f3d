//! The official JavaScript client (`@supabase/supabase-js`, pinned in tests/compat) against
//! a running Tally: `tests/compat/auth.test.mjs`, with sessions signed by an ES256 key (so
//! `auth.getClaims()` verifies them through the JWKS).

use tally_core::signing_keys::generate_es256_pem;
use tally_testkit::{TestApp, compat::run_node_suite};

#[tokio::test]
async fn supabase_js_auth() {
    let app = TestApp::spawn().await.unwrap();
    sqlx::query(
        "insert into private.jwt_signing_keys (kid, algorithm, private_key_pem, status) \
         values ('compat-key', 'ES256', $1, 'current')",
    )
    .bind(generate_es256_pem().unwrap())
    .execute(&app.db.owner)
    .await
    .unwrap();
    // The instance reloads on the notification: wait until it publishes the key.
    let jwks = app.url("/auth/v1/.well-known/jwks.json");
    let mut published = false;
    for _ in 0..100 {
        let keys: serde_json::Value = reqwest::get(&jwks).await.unwrap().json().await.unwrap();
        published = keys["keys"][0]["kid"] == "compat-key";
        if published {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(published, "the key was loaded");
    let envs = vec![
        ("TALLY_URL", app.url("")),
        ("TALLY_ANON_KEY", app.keys.anon_key()),
        ("TALLY_SERVICE_ROLE_KEY", app.keys.service_role_key()),
        ("TALLY_DB_URL", app.db.owner_url().to_owned()),
    ];
    run_node_suite("auth.test.mjs", envs, 6).await;
}
