//! The embedded PostgreSQL cluster Tally runs when no `DATABASE_URL` is given.
//!
//! Layout under the data directory:
//! - `postgres/data/`: the cluster (owned by the `tally` system user when Tally is root);
//! - `postgres/postgres.log`: the server's log;
//! - `postgres-password`: the superuser's password (mode 600).
//!
//! When the data directory cannot be reached by the unprivileged user (a private home), the
//! cluster lives under `/var/lib/tally/clusters/<hash>/` instead.

mod install;
pub(crate) mod system_user;

use std::{
    fs::File,
    hash::{DefaultHasher, Hash, Hasher},
    io::Write,
    net::TcpListener,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Stdio,
};

use tokio::process::Command;

pub use crate::access::is_root;
pub use install::{POSTGRES, ensure_binaries};
use system_user::SystemUser;

/// The embedded cluster's superuser, which owns Tally's schema.
pub const SUPERUSER: &str = "postgres";

/// An error starting or stopping the embedded cluster; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EmbeddedError(String);

impl EmbeddedError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    fn io(context: impl std::fmt::Display, e: std::io::Error) -> Self {
        Self(format!("{context}: {e}"))
    }
}

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Tally's data directory.
    pub data_dir: PathBuf,
    /// Port to listen on (127.0.0.1 only).
    pub port: u16,
    /// A PostgreSQL bin directory to use instead of the wheel.
    pub pg_bin: Option<PathBuf>,
    /// Extra server settings (`name=value`), e.g. to trade durability for speed in tests.
    pub settings: Vec<String>,
}

/// A running embedded cluster.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    home: PathBuf,
    port: u16,
    password: String,
    run_as: Option<SystemUser>,
    started_here: bool,
}

impl Cluster {
    /// Installs the binaries if needed, creates the cluster on first use, and starts it — or
    /// reuses it when another Tally already runs it.
    pub async fn start(options: &ClusterOptions) -> Result<Self, EmbeddedError> {
        let run_as = if is_root() {
            Some(system_user::ensure().await?)
        } else {
            None
        };
        let bin = ensure_binaries(options.pg_bin.as_deref(), run_as.is_some()).await?;
        std::fs::create_dir_all(&options.data_dir).map_err(|e| {
            EmbeddedError::io(format!("cannot create {}", options.data_dir.display()), e)
        })?;
        let home = cluster_home(&options.data_dir, run_as.is_some())?;
        let _lock = lock_file(&options.data_dir.join("postgres.lock")).await?;
        let password = superuser_password(&options.data_dir)?;
        let mut cluster = Cluster {
            bin,
            home,
            port: options.port,
            password,
            run_as,
            started_here: false,
        };
        cluster.prepare_home()?;
        if !cluster.data().join("PG_VERSION").exists() {
            cluster.initdb().await?;
        }
        if let Some(port) = cluster.running_port() {
            tracing::info!(
                port,
                "reusing the embedded PostgreSQL that is already running"
            );
            cluster.port = port;
            return Ok(cluster);
        }
        cluster.clear_stale_pid_file();
        cluster.remember_bin_dir()?;
        cluster.start_server(&options.settings).await?;
        cluster.started_here = true;
        Ok(cluster)
    }

    /// Starts a streaming replica of this running cluster: a hot standby in
    /// `options.data_dir`, copied by `pg_basebackup` on first use, listening on
    /// `options.port` with `options.settings` (`recovery_min_apply_delay=…`, say). Its
    /// superuser and password are this cluster's.
    pub async fn start_replica(&self, options: &ClusterOptions) -> Result<Cluster, EmbeddedError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|e| {
            EmbeddedError::io(format!("cannot create {}", options.data_dir.display()), e)
        })?;
        write_private(&options.data_dir.join("postgres-password"), &self.password)?;
        let mut replica = Cluster {
            bin: self.bin.clone(),
            home: cluster_home(&options.data_dir, self.run_as.is_some())?,
            port: options.port,
            password: self.password.clone(),
            run_as: self.run_as,
            started_here: false,
        };
        replica.prepare_home()?;
        if !replica.data().join("PG_VERSION").exists() {
            replica.base_backup(self).await?;
        }
        replica.start_server(&options.settings).await?;
        replica.started_here = true;
        Ok(replica)
    }

    /// Copies `primary` into this cluster's data directory, set up to follow it (`-R`).
    async fn base_backup(&self, primary: &Cluster) -> Result<(), EmbeddedError> {
        let output = self
            .command("pg_basebackup")
            .arg("-D")
            .arg(self.data())
            .args(["-R", "-X", "stream", "-c", "fast", "-h", "127.0.0.1"])
            .args(["-p", &primary.port.to_string(), "-U", SUPERUSER])
            .env("PGPASSWORD", &self.password)
            .output()
            .await
            .map_err(|e| EmbeddedError::io("cannot run pg_basebackup", e))?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(self.data());
            return Err(EmbeddedError::new(format!(
                "pg_basebackup failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Stops the server running on this cluster, whoever started it.
    async fn stop_server(&self) -> Result<(), EmbeddedError> {
        let status = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60"])
            .stdout(Stdio::null())
            .status()
            .await
            .map_err(|e| EmbeddedError::io("cannot run pg_ctl stop", e))?;
        if !status.success() {
            return Err(EmbeddedError::new(format!(
                "pg_ctl stop failed ({status}); see {}",
                self.log().display()
            )));
        }
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }

    /// The superuser's connection URL.
    pub fn url(&self) -> String {
        url(&self.password, self.port, "postgres")
    }

    /// The superuser's URL for another database of this cluster.
    pub fn url_for(&self, database: &str) -> String {
        url(&self.password, self.port, database)
    }

    /// The port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the cluster if this process started it (fast shutdown: sessions end, data is
    /// flushed). A cluster this process merely reused is left running.
    pub async fn stop(self) -> Result<(), EmbeddedError> {
        if self.started_here {
            self.stop_server().await?;
        }
        Ok(())
    }

    /// Whether the cluster has replication slots (PGDATA's `pg_replslot` has entries).
    fn has_slots(&self) -> bool {
        std::fs::read_dir(self.data().join("pg_replslot"))
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false)
    }

    /// The cluster's data directory (PGDATA).
    pub fn data(&self) -> PathBuf {
        self.home.join("data")
    }

    fn log(&self) -> PathBuf {
        self.home.join("postgres.log")
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.current_dir(&self.home).env_remove("PGDATA");
        if let Some(user) = self.run_as {
            // std drops root's supplementary groups when it switches user.
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }

    /// Notes which binaries run this cluster, for `tally db stop`.
    fn remember_bin_dir(&self) -> Result<(), EmbeddedError> {
        std::fs::write(
            self.home.join("bin-dir"),
            self.bin.as_os_str().as_encoded_bytes(),
        )
        .map_err(|e| EmbeddedError::io("cannot write the cluster's bin-dir note", e))
    }

    fn prepare_home(&self) -> Result<(), EmbeddedError> {
        std::fs::create_dir_all(&self.home)
            .map_err(|e| EmbeddedError::io(format!("cannot create {}", self.home.display()), e))?;
        std::fs::set_permissions(&self.home, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| EmbeddedError::io("cannot set the cluster folder's mode", e))?;
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(&self.home, Some(user.uid), Some(user.gid)).map_err(|e| {
                EmbeddedError::io(
                    format!("cannot give {} to the `tally` user", self.home.display()),
                    e,
                )
            })?;
        }
        Ok(())
    }

    async fn initdb(&self) -> Result<(), EmbeddedError> {
        let _ = std::fs::remove_dir_all(self.data());
        let pwfile = self.home.join(".pwfile");
        write_private(&pwfile, &self.password)?;
        if let Some(user) = self.run_as {
            std::os::unix::fs::chown(&pwfile, Some(user.uid), Some(user.gid))
                .map_err(|e| EmbeddedError::io("cannot hand the password file over", e))?;
        }
        eprintln!(
            "Creating the embedded PostgreSQL cluster in {}",
            self.data().display()
        );
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", SUPERUSER, "--auth=scram-sha-256", "-E", "UTF8"])
            .args([
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .await
            .map_err(|e| EmbeddedError::io("cannot run initdb", e))?;
        let _ = std::fs::remove_file(&pwfile);
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(self.data());
            return Err(EmbeddedError::new(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    /// The port of a server already running on this cluster, if any.
    fn running_port(&self) -> Option<u16> {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let mut lines = pid_file.lines();
        let pid: u32 = lines.next()?.trim().parse().ok()?;
        if !is_postgres_process(pid) {
            return None;
        }
        lines.nth(2)?.trim().parse().ok()
    }

    /// A crash can leave postmaster.pid behind, naming a process that is gone or that is now
    /// something else; PostgreSQL would then refuse to start.
    fn clear_stale_pid_file(&self) {
        let path = self.data().join("postmaster.pid");
        if path.exists() {
            tracing::warn!(path = %path.display(), "removing a stale postmaster.pid");
            let _ = std::fs::remove_file(path);
        }
    }

    async fn start_server(&self, settings: &[String]) -> Result<(), EmbeddedError> {
        if TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            return Err(EmbeddedError::new(format!(
                "port {} is in use by another program: set TALLY_PG_PORT to a free port for the \
                 embedded PostgreSQL, or set DATABASE_URL to use an existing server",
                self.port
            )));
        }
        let mut options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories=",
            self.port
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        // PostgreSQL does not start below wal_level=logical while a logical slot exists: one
        // left by analytics (dropped once Tally runs with it off) or by another consumer.
        if !settings.iter().any(|s| s.starts_with("wal_level=")) && self.has_slots() {
            options.push_str(" -c wal_level=logical");
        }
        let output = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "60", "-o", &options])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| EmbeddedError::io("cannot run pg_ctl start", e))?;
        if !output.status.success() {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(EmbeddedError::new(format!(
                "the embedded PostgreSQL did not start ({}): {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        Ok(())
    }
}

/// Stops the cluster of `data_dir` if one is running; returns whether one was.
pub async fn stop_running(data_dir: &Path) -> Result<bool, EmbeddedError> {
    let run_as = if is_root() {
        Some(system_user::ensure().await?)
    } else {
        None
    };
    let home = cluster_home(data_dir, run_as.is_some())?;
    let pg_ctl_dir = std::fs::read_to_string(home.join("bin-dir"))
        .map(PathBuf::from)
        .map_err(|_| {
            EmbeddedError::new("no embedded cluster has been created in this data directory")
        })?;
    let cluster = Cluster {
        bin: pg_ctl_dir,
        home,
        port: 0,
        password: String::new(),
        run_as,
        started_here: false,
    };
    if cluster.running_port().is_none() {
        return Ok(false);
    }
    cluster.stop_server().await?;
    Ok(true)
}

fn url(password: &str, port: u16, database: &str) -> String {
    format!("postgres://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}")
}

fn is_postgres_process(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim() == "postgres")
        .unwrap_or(false)
}

/// The cluster's folder: `<data_dir>/postgres`, or a folder under `/var/lib/tally` when the
/// unprivileged user could not reach the data directory.
fn cluster_home(data_dir: &Path, as_root: bool) -> Result<PathBuf, EmbeddedError> {
    // Absolute: the server's tools run with the cluster folder as their working directory.
    // Canonical where it exists, so that every spelling of one folder (`target/x`,
    // `crates/y/../../target/x`, a symlink) finds the same relocated cluster.
    let absolute = std::fs::canonicalize(data_dir)
        .or_else(|_| std::path::absolute(data_dir))
        .map_err(|e| EmbeddedError::io("cannot resolve the data directory", e))?;
    if !as_root || crate::access::traversable_by_others(&absolute) {
        return Ok(absolute.join("postgres"));
    }
    let mut hasher = DefaultHasher::new();
    absolute.hash(&mut hasher);
    let home = PathBuf::from(format!("/var/lib/tally/clusters/{:016x}", hasher.finish()));
    tracing::info!(
        data_dir = %absolute.display(),
        cluster = %home.display(),
        "the data directory is private to root; keeping the cluster where the `tally` user can reach it"
    );
    Ok(home)
}

/// The embedded cluster's superuser URL for a data directory and port (the password is
/// generated on first use).
pub fn superuser_url(data_dir: &Path, port: u16) -> Result<String, EmbeddedError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| EmbeddedError::io(format!("cannot create {}", data_dir.display()), e))?;
    Ok(url(&superuser_password(data_dir)?, port, "postgres"))
}

/// The superuser's password, generated on first use and kept in the data directory.
fn superuser_password(data_dir: &Path) -> Result<String, EmbeddedError> {
    let path = data_dir.join("postgres-password");
    match std::fs::read_to_string(&path) {
        Ok(password) if !password.trim().is_empty() => Ok(password.trim().to_owned()),
        _ => {
            let password = tally_core::config::random_hex(24);
            write_private(&path, &password)?;
            Ok(password)
        }
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), EmbeddedError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| EmbeddedError::io(format!("cannot write {}", path.display()), e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| EmbeddedError::io(format!("cannot write {}", path.display()), e))
}

/// Takes an exclusive lock on `path`, waiting for another process that holds it.
async fn lock_file(path: &Path) -> Result<File, EmbeddedError> {
    crate::wheel::lock_file(path)
        .await
        .map_err(EmbeddedError::new)
}
