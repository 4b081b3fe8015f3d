//! PostgreSQL refuses to run as root. When Tally is root it runs the cluster as an
//! unprivileged system user, `tally`, created when missing.

use tokio::process::Command;

use super::EmbeddedError;

/// The system user the cluster runs as when Tally runs as root.
pub const USER: &str = "tally";

/// A user to run the cluster as.
#[derive(Debug, Clone, Copy)]
pub struct SystemUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Finds the `tally` system user, creating it when missing.
pub async fn ensure() -> Result<SystemUser, EmbeddedError> {
    if let Some(user) = lookup().await {
        return Ok(user);
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ])
        .status()
        .await
        .map_err(|e| {
            EmbeddedError::io("cannot run useradd to create the `tally` system user", e)
        })?;
    if !status.success() && lookup().await.is_none() {
        return Err(EmbeddedError::new(format!(
            "PostgreSQL cannot run as root and `useradd {USER}` failed ({status}): create an \
             unprivileged `{USER}` user, run Tally as a normal user, or set DATABASE_URL"
        )));
    }
    lookup().await.ok_or_else(|| {
        EmbeddedError::new(format!("the `{USER}` user was created but cannot be found"))
    })
}

async fn lookup() -> Option<SystemUser> {
    let id = |flag: &'static str| async move {
        let out = Command::new("id").args([flag, USER]).output().await.ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    };
    Some(SystemUser {
        uid: id("-u").await?,
        gid: id("-g").await?,
    })
}
