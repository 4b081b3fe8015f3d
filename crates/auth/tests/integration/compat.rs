//! The official JavaScript client (`@supabase/supabase-js`, pinned in tests/compat) against
//! a running Tally: `node --test tests/compat/auth.test.mjs`.

use std::{path::PathBuf, process::Command};

use tally_testkit::TestApp;

#[tokio::test]
async fn supabase_js_auth() {
    let compat = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
    assert!(
        compat.join("node_modules/@supabase/supabase-js").exists(),
        "run `npm ci --prefix tests/compat` first (scripts/test does)"
    );
    let app = TestApp::spawn().await.unwrap();
    let url = app.url("");
    let output = tokio::task::spawn_blocking({
        let (anon, service, db) = (
            app.keys.anon_key(),
            app.keys.service_role_key(),
            app.db.owner_url().to_owned(),
        );
        move || {
            Command::new("node")
                .args(["--test", "--test-reporter=spec", "auth.test.mjs"])
                .current_dir(&compat)
                .env("TALLY_URL", url)
                .env("TALLY_ANON_KEY", anon)
                .env("TALLY_SERVICE_ROLE_KEY", service)
                .env("TALLY_DB_URL", db)
                .output()
        }
    })
    .await
    .unwrap()
    .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "supabase-js suite failed:\n{report}"
    );
    assert!(
        report.contains("pass 4") && report.contains("fail 0"),
        "expected 4 passing supabase-js tests:\n{report}"
    );
}
