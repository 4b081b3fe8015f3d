//! `tally eval`'s labelled set through the real classification code with the built-in embedder
//! (fetched by `tally models`, as the test script does first): the targets hold on the file the
//! classifier is tuned on (a regression guard for the extractor, the ensemble and the default
//! vocabulary), the scratch org is gone afterwards, and the expression set meets its targets.

use std::path::PathBuf;

use tally_functions::Providers;
use tally_server::{eval, models};
use tally_testkit::TestDb;

fn set() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../eval")
}

#[tokio::test]
async fn the_labelled_set_meets_the_targets_and_leaves_nothing_behind() {
    let db = TestDb::new().await.unwrap();
    let providers = Providers {
        embeddings: models::builtin_embeddings(),
        ..Providers::rules_only()
    };
    let report = eval::run(&db.owner, &db.requests, &providers, &set(), "logs.tsv", 0.6)
        .await
        .unwrap();
    assert!(report.total >= 150, "{} cases", report.total);
    assert!(report.meets_targets(), "{report}");
    let (orgs, logs): (i64, i64) = sqlx::query_as(
        "select (select count(*) from organizations), (select count(*) from time_logs)",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((orgs, logs), (0, 0));
}

#[test]
fn a_malformed_case_names_its_line() {
    let dir = std::env::temp_dir().join(format!("tally-eval-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.tsv"), "# header\n60\tAPL\tdevelopment\n").unwrap();
    let err = eval::read_cases(&dir.join("bad.tsv"))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("bad.tsv:2: expected 5 tab-separated columns"),
        "{err}"
    );
}

#[test]
fn the_expression_set_meets_the_targets() {
    let expressions = eval::times::read(&set().join("times.tsv")).unwrap();
    assert!(
        expressions.len() >= 150,
        "{} expressions",
        expressions.len()
    );
    let report = eval::times::score(&expressions);
    let misses: Vec<String> = report
        .misses
        .iter()
        .map(|(text, expected, got)| format!("{text:?}: expected {expected}, got {got}"))
        .collect();
    assert!(report.meets_targets(), "{report}{}", misses.join("\n"));
}
