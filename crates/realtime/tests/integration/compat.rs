//! supabase-js's realtime client (`tests/compat/realtime.test.mjs`).

use tally_testkit::{TestApp, compat::run_node_suite};

#[tokio::test]
async fn supabase_js_realtime() {
    let app = TestApp::spawn().await.unwrap();
    let envs = vec![
        ("TALLY_URL", app.url("")),
        ("TALLY_ANON_KEY", app.keys.anon_key()),
    ];
    run_node_suite("realtime.test.mjs", envs, 5).await;
}
