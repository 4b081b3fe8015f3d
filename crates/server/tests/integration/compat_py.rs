//! supabase-py, the official Python client (`tests/compat/python/test_supabase_py.py`): auth,
//! REST, functions, storage and realtime against one Tally.

use tally_testkit::{TestApp, compat::run_python_suite};

#[tokio::test]
async fn supabase_py() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let envs = vec![
        ("TALLY_URL", app.url("")),
        ("TALLY_ANON_KEY", app.keys.anon_key()),
    ];
    run_python_suite("test_supabase_py", envs, 5).await;
    app.stop().await?;
    Ok(())
}
