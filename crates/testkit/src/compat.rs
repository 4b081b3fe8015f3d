//! The official-client suites in `tests/compat` (supabase-js under node), run against a
//! running Tally.

use std::{path::PathBuf, process::Command};

/// Runs `node --test <script>` in `tests/compat` with `envs`; fails the calling test with
/// node's report unless every one of `expected` tests passed.
pub async fn run_node_suite(script: &str, envs: Vec<(&'static str, String)>, expected: usize) {
    let compat = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat");
    assert!(
        compat.join("node_modules/@supabase/supabase-js").exists(),
        "run `npm ci --prefix tests/compat` first (scripts/test does)"
    );
    let script = script.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args([
                "--test",
                "--test-reporter=spec",
                "--test-timeout=60000",
                &script,
            ])
            .current_dir(&compat)
            .envs(envs)
            .output()
    })
    .await
    .expect("the node task")
    .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the supabase-js suite failed:\n{report}"
    );
    assert!(
        report.contains(&format!("pass {expected}")) && report.contains("fail 0"),
        "expected {expected} passing supabase-js tests:\n{report}"
    );
}
