//! The embedded cluster's life: first start (initdb), a second start that reuses it, a
//! crash that leaves a stale postmaster.pid, and a clean stop.

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Command};

use sqlx::{Connection, PgConnection};
use tally_server::embedded::{Cluster, ClusterOptions, stop_running};

#[tokio::test]
async fn cluster_starts_is_reused_survives_a_crash_and_stops() -> anyhow::Result<()> {
    // Inside a folder only its owner may enter: run as root (as CI is), the cluster is kept
    // under /var/lib/tally instead, where the unprivileged user can reach it.
    let private = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/tally-test")
        .join(format!("lifecycle-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&private)?;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))?;
    let data_dir = private.join("data");
    let port = tally_testkit::ports::free_port();
    let options = ClusterOptions {
        data_dir: data_dir.clone(),
        port,
        pg_bin: std::env::var_os("TALLY_PG_BIN").map(PathBuf::from),
        settings: vec!["fsync=off".into()],
    };

    let first = Cluster::start(&options).await?;
    let mut conn = PgConnection::connect(&first.url()).await?;
    let extensions: Vec<String> = sqlx::query_scalar("select name::text from pg_available_extensions where name in ('vector', 'pg_trgm') order by 1")
        .fetch_all(&mut conn)
        .await?;
    assert_eq!(extensions, ["pg_trgm", "vector"]);
    conn.close().await?;

    // A second start on the same data directory reuses the running server...
    let second = Cluster::start(&options).await?;
    assert_eq!(second.port(), port);
    PgConnection::connect(&second.url()).await?.close().await?;
    // ...and stopping it leaves the first one's server running.
    second.stop().await?;
    PgConnection::connect(&first.url()).await?.close().await?;

    // A crash: the postmaster dies and leaves its pid file behind.
    let pid_file = first.data().join("postmaster.pid");
    let pid = std::fs::read_to_string(&pid_file)?
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()?
            .success()
    );
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(pid_file.exists(), "the crash should leave postmaster.pid");
    drop(first);

    let third = Cluster::start(&options).await?;
    PgConnection::connect(&third.url()).await?.close().await?;
    // `tally db stop` finds it under another spelling of the same folder (as the test script
    // names it: relative, without the `..`).
    let respelled = private.canonicalize()?.join("data/../data");
    assert!(
        stop_running(&respelled).await?,
        "the cluster was not found through {}",
        respelled.display()
    );
    assert!(
        PgConnection::connect(&third.url()).await.is_err(),
        "the cluster still answers"
    );
    assert!(
        !stop_running(&data_dir).await?,
        "the cluster should be stopped"
    );
    // The cluster's own folder, wherever it was kept.
    if let Some(home) = third.data().parent() {
        std::fs::remove_dir_all(home)?;
    }
    std::fs::remove_dir_all(&private)?;
    Ok(())
}
