//! The web app (`web/`) and the Figma plugin end to end: Playwright drives Debian's Chromium
//! (never a downloaded browser) against this Tally, on a fresh database, serving the built app.
//! `scripts/test` installs and builds `web/` first; the tests themselves are `web/e2e/*.spec.ts`.

use std::{path::PathBuf, process::Command};

use tally_testkit::{TestApp, compat::report_of};

fn web() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

#[tokio::test]
async fn the_web_app_and_the_figma_plugin_in_chromium() -> anyhow::Result<()> {
    let web = web();
    let cli = web.join("node_modules/@playwright/test/cli.js");
    assert!(
        web.join("dist/index.html").is_file() && cli.is_file(),
        "build the app first: npm ci --prefix web && npm run build --prefix web (scripts/test does)"
    );
    let dist = web.join("dist");
    // Every browser and helper signs in from 127.0.0.1: the per-IP sign-in limit is for
    // people, not for a suite that signs dozens of them in within minutes.
    let app = TestApp::spawn_with(move |c| {
        c.web_dir = dist;
        c.auth.rate_limit_auth = 10_000;
    })
    .await?;
    let mut run = Command::new("node");
    run.arg(&cli)
        .arg("test")
        .current_dir(&web)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("TALLY_URL", app.url(""))
        .env("TALLY_ANON_KEY", app.keys.anon_key())
        .env("TALLY_SERVICE_KEY", app.keys.service_role_key());
    let report = report_of(run, "end-to-end (web/e2e)").await;
    assert!(
        !report.contains(" skipped"),
        "no test may be skipped:\n{report}"
    );
    app.stop().await
}
