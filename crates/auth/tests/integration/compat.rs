//! The official JavaScript client (`@supabase/supabase-js`, pinned in tests/compat) against
//! a running Tally: `tests/compat/auth.test.mjs`.

use tally_testkit::{TestApp, compat::run_node_suite};

#[tokio::test]
async fn supabase_js_auth() {
    let app = TestApp::spawn().await.unwrap();
    let envs = vec![
        ("TALLY_URL", app.url("")),
        ("TALLY_ANON_KEY", app.keys.anon_key()),
        ("TALLY_SERVICE_ROLE_KEY", app.keys.service_role_key()),
        ("TALLY_DB_URL", app.db.owner_url().to_owned()),
    ];
    run_node_suite("auth.test.mjs", envs, 5).await;
}
