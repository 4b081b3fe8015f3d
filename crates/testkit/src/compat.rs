//! The official-client suites in `tests/compat`, run against a running Tally: supabase-js
//! under node, and supabase-py (`tests/compat/python`) under python3.

use std::{path::PathBuf, process::Command};

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat")
}

/// Runs `command` off the async runtime; returns its whole report, or fails the calling test
/// with it when the command fails.
pub async fn report_of(mut command: Command, suite: &str) -> String {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the suite's task")
        .unwrap_or_else(|e| panic!("{suite} could not start: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the {suite} suite failed:\n{report}"
    );
    report
}

/// Runs `node --test <script>` in `tests/compat` with `envs`; fails the calling test with
/// node's report unless every one of `expected` tests passed.
pub async fn run_node_suite(script: &str, envs: Vec<(&'static str, String)>, expected: usize) {
    let compat = compat_dir();
    assert!(
        compat.join("node_modules/@supabase/supabase-js").exists(),
        "run `npm ci --prefix tests/compat` first (scripts/test does)"
    );
    let mut node = Command::new("node");
    node.args([
        "--test",
        "--test-reporter=spec",
        "--test-timeout=60000",
        script,
    ])
    .current_dir(&compat)
    .envs(envs);
    let report = report_of(node, "supabase-js").await;
    assert!(
        report.contains(&format!("pass {expected}")) && report.contains("fail 0"),
        "expected {expected} passing supabase-js tests:\n{report}"
    );
}

/// Runs `python3 -m unittest <module>` in `tests/compat/python` with supabase-py from
/// `tests/compat/python/.deps` (installed by `scripts/test`, pinned with hashes) and `envs`;
/// fails the calling test with the report unless all `expected` tests passed.
pub async fn run_python_suite(module: &str, envs: Vec<(&'static str, String)>, expected: usize) {
    let python = compat_dir().join("python");
    let deps = python.join(".deps");
    assert!(
        deps.join("supabase").exists(),
        "install supabase-py first (scripts/test does: pip install --target tests/compat/python/.deps)"
    );
    let mut run = Command::new("python3");
    run.args(["-W", "ignore", "-m", "unittest", "-v", module])
        .current_dir(&python)
        .env("PYTHONPATH", &deps)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(envs);
    let report = report_of(run, "supabase-py").await;
    assert!(
        report.contains(&format!("Ran {expected} test")) && report.trim_end().ends_with("OK"),
        "expected {expected} passing supabase-py tests:\n{report}"
    );
}
