//! supabase-js's query builder (`tests/compat/rest.test.mjs`) against the library schema.

use std::{path::PathBuf, process::Command};

use crate::fixture::Rest;

#[tokio::test]
async fn supabase_js_rest() {
    let compat = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
    assert!(
        compat.join("node_modules/@supabase/supabase-js").exists(),
        "run `npm ci --prefix tests/compat` first (scripts/test does)"
    );
    let rest = Rest::library().await;
    let (url, anon) = (rest.app.url(""), rest.app.keys.anon_key());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "rest.test.mjs"])
            .current_dir(&compat)
            .env("TALLY_URL", url)
            .env("TALLY_ANON_KEY", anon)
            .output()
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
        "supabase-js REST suite failed:\n{report}"
    );
    assert!(
        report.contains("pass 5") && report.contains("fail 0"),
        "expected 5 passing tests:\n{report}"
    );
}
