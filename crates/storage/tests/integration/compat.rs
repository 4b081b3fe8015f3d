//! supabase-js's storage client (`tests/compat/storage.test.mjs`).

use tally_testkit::{TestApp, compat::run_node_suite};

#[tokio::test]
async fn supabase_js_storage() {
    let app = TestApp::spawn().await.unwrap();
    let envs = vec![
        ("TALLY_URL", app.url("")),
        ("TALLY_ANON_KEY", app.keys.anon_key()),
    ];
    run_node_suite("storage.test.mjs", envs, 3).await;
}
