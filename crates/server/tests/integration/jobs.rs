//! Job kinds, spelled in SQL (triggers, schedules) and in Rust (payload types): every kind the
//! migrations queue has a registered handler, and every handler has something that queues it.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use regex::Regex;
use tally_core::{Config, JwtKeys};
use tally_testkit::TEST_JWT_SECRET;

fn files(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, extension, found);
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
}

fn read_all(dir: &Path, extension: &str) -> String {
    let mut found = Vec::new();
    files(dir, extension, &mut found);
    found
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("a readable file"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_queued_kind_has_a_handler_and_every_handler_an_enqueuer() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut config = Config::defaults()?.with_jwt_secret(TEST_JWT_SECRET)?;
    config.data_dir = std::env::temp_dir().join(format!("tally-jobs-{}", uuid::Uuid::new_v4()));
    let pool = sqlx::PgPool::connect_lazy("postgres://localhost/unused")?;
    let providers = tally_server::models::providers(&config)?;
    let storage =
        tally_server::app::storage_state(pool.clone(), JwtKeys::new(TEST_JWT_SECRET), &config)?;
    let workers = tally_server::workers::workers(&pool, &config, &providers, &storage)?;
    let registered = workers.registered();
    let handled: BTreeSet<&str> = registered.iter().map(|(kind, _)| kind.as_str()).collect();

    let sql = read_all(&root.join("migrations"), "sql");
    let queued = Regex::new(r"enqueue_job\(\s*'([a-z_]+)'")?;
    let scheduled = Regex::new(
        r"insert into private\.schedules \([^)]*\)\s*values \('[^']*', '[^']*', '[^']*', '([a-z_]+)'",
    )?;
    let from_sql: BTreeSet<&str> = queued
        .captures_iter(&sql)
        .chain(scheduled.captures_iter(&sql))
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    assert!(
        from_sql.len() >= 7,
        "the migrations' kinds were found: {from_sql:?}"
    );
    for kind in &from_sql {
        assert!(
            handled.contains(kind),
            "the migrations queue `{kind}`, which no handler runs (handled: {handled:?})"
        );
    }

    // A kind SQL never queues must be queued from Rust, with its payload type.
    let rust = read_all(&root.join("crates"), "rs");
    for (kind, payload) in &registered {
        let short = payload.rsplit("::").next().unwrap_or(payload);
        let from_rust = rust.contains(&format!("NewJob::of(&{short} "))
            || rust.contains(&format!("NewJob::of(&{short}{{"));
        assert!(
            from_sql.contains(kind.as_str()) || from_rust,
            "nothing queues `{kind}` ({payload}): no migration and no `NewJob::of(&{short} …)`"
        );
    }
    std::fs::remove_dir_all(&config.data_dir).ok();
    Ok(())
}
