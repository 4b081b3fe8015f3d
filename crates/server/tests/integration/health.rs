//! `GET /health` over real HTTP.

use serde_json::Value;
use tally_testkit::TestApp;

#[tokio::test]
async fn health_is_ok_while_the_database_answers_and_503_after() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = reqwest::Client::new();
    let res = client.get(app.url("/health")).send().await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    // Take the database away under the running server.
    crate::fixture::drop_database(&app).await?;
    let res = client.get(app.url("/health")).send().await?;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await?;
    assert_eq!(body["database"], "unreachable");
    app.stop().await?;
    Ok(())
}
