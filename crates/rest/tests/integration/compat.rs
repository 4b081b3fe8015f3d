//! supabase-js's query builder (`tests/compat/rest.test.mjs`) against the library schema.

use tally_testkit::compat::run_node_suite;

use crate::fixture::Rest;

#[tokio::test]
async fn supabase_js_rest() {
    let rest = Rest::library().await;
    let envs = vec![
        ("TALLY_URL", rest.app.url("")),
        ("TALLY_ANON_KEY", rest.app.keys.anon_key()),
    ];
    run_node_suite("rest.test.mjs", envs, 6).await;
}
