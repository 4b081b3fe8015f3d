//! `tally eval`'s labelled set through the real classification code with the built-in embedder
//! (fetched by `tally models`, as the test script does first): the targets hold on the file the
//! classifier is tuned on (a regression guard for the extractor, the ensemble and the default
//! vocabulary) and the activity and work-mode ones on the two held-out files, the scratch org is
//! gone afterwards, and the expression set meets its targets.

use std::path::PathBuf;

use tally_functions::Providers;
use tally_server::{eval, models};
use tally_testkit::TestDb;

fn set() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../eval")
}

/// Rules and the built-in embedder.
fn builtin() -> Providers {
    Providers {
        embeddings: models::builtin_embeddings(),
        ..Providers::rules_only()
    }
}

/// The test database's pools with `providers`, at the default review threshold.
fn setup<'a>(db: &'a TestDb, providers: &'a Providers) -> eval::Setup<'a> {
    eval::Setup {
        owner: &db.owner,
        requests: &db.requests,
        providers,
        threshold: 0.6,
    }
}

#[tokio::test]
async fn the_labelled_set_meets_the_targets_and_leaves_nothing_behind() {
    let db = TestDb::new().await.unwrap();
    let providers = builtin();
    let setup = setup(&db, &providers);
    let report = eval::run(&setup, &set(), "logs.tsv", None).await.unwrap();
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

/// Issue 19's targets on the two files never tuned on: activity types 85 %, work modes 80 %.
/// Only totals are printed on failure: `sealed.tsv`'s misses stay unread.
#[tokio::test]
async fn the_held_out_files_meet_the_activity_and_work_mode_targets() {
    let db = TestDb::new().await.unwrap();
    let providers = builtin();
    let setup = setup(&db, &providers);
    for file in ["holdout.tsv", "sealed.tsv"] {
        let report = eval::run(&setup, &set(), file, None).await.unwrap();
        assert!(report.total >= 75, "{file}: {} cases", report.total);
        let (activity, mode) = (report.accuracy(2), report.accuracy(3));
        assert!(
            activity >= 0.85 && mode >= 0.80,
            "{file}: activity {activity:.3}, work mode {mode:.3}"
        );
    }
}

/// A line no keyword or example names is filed by what the org's finalized logs say: the
/// history's votes decide it, and without the history nothing does.
#[tokio::test]
async fn an_org_history_votes_for_what_the_vocabulary_cannot_tell() {
    let db = TestDb::new().await.unwrap();
    let providers = builtin();
    let setup = setup(&db, &providers);
    let dir = std::env::temp_dir().join(format!("tally-eval-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(set().join("fixture.json"), dir.join("fixture.json")).unwrap();
    std::fs::write(
        dir.join("history.tsv"),
        "60\t-\tsupport\tcommunication\t1h zorblax wibble\n\
         30\t-\tsupport\tcommunication\t30m zorblax wibble again\n\
         45\t-\tsupport\tcommunication\t45m the zorblax wibble\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("cases.tsv"),
        "90\t-\tsupport\tcommunication\t1.5h zorblax wibble\n",
    )
    .unwrap();
    let cold = eval::run(&setup, &dir, "cases.tsv", None).await.unwrap();
    let warm = eval::run(&setup, &dir, "cases.tsv", Some("history.tsv"))
        .await
        .unwrap();
    // Duration, project, activity type, work mode.
    assert_eq!(warm.correct, [1, 1, 1, 1], "{warm}");
    assert_eq!(cold.correct[2], 0, "{cold}");
    let logs: i64 = sqlx::query_scalar("select count(*) from time_logs")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(logs, 0);
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
