//! `tally signing-keys`: the asymmetric keys that sign sessions' tokens — list, create a
//! standby key, rotate (standby → current → previous, without signing anyone out), revoke a
//! previous key (its tokens are refused everywhere at once), import an existing key.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use sqlx::PgPool;
use tally_core::signing_keys::{self, SigningKeys, StoredKey};

/// What `tally signing-keys` does.
#[derive(Debug, Subcommand)]
pub enum SigningKeyAction {
    /// The keys, oldest first: kid, algorithm, status, created.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A new ES256 key on standby: published in the JWKS, signing nothing until a rotation.
    Create,
    /// The standby key (a new one when there is none) signs from now on; the current key
    /// becomes previous and still verifies the tokens it signed.
    Rotate,
    /// Revokes a previous or standby key: tokens it signed are refused from now on.
    Revoke {
        /// The key's id.
        kid: String,
    },
    /// Imports a private key (PKCS#8 PEM), on standby unless `--current`.
    Import {
        /// The PEM file.
        file: std::path::PathBuf,
        /// Its key id.
        #[arg(long)]
        kid: String,
        /// `ES256` or `RS256`.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// Make it the current key (the current one becomes previous).
        #[arg(long)]
        current: bool,
    },
}

/// Runs `action` against the database at `owner` (its owner's pool).
pub async fn run(owner: &PgPool, action: SigningKeyAction) -> anyhow::Result<()> {
    match action {
        SigningKeyAction::List { json } => list(owner, json).await,
        SigningKeyAction::Create => {
            let kid = insert(owner, &new_es256()?, "standby").await?;
            println!("created {kid} (standby)");
            Ok(())
        }
        SigningKeyAction::Rotate => rotate(owner).await,
        SigningKeyAction::Revoke { kid } => revoke(owner, &kid).await,
        SigningKeyAction::Import {
            file,
            kid,
            alg,
            current,
        } => import(owner, &file, kid, alg, current).await,
    }
}

async fn list(owner: &PgPool, as_json: bool) -> anyhow::Result<()> {
    let rows: Vec<(String, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select kid, algorithm, status, created_at from private.jwt_signing_keys order by created_at",
    )
    .fetch_all(owner)
    .await?;
    if as_json {
        let keys: Vec<_> = rows
            .iter()
            .map(|(kid, alg, status, created)| {
                json!({"kid": kid, "algorithm": alg, "status": status, "created_at": created})
            })
            .collect();
        println!("{}", json!(keys));
    } else if rows.is_empty() {
        println!(
            "no signing keys: sessions' tokens are HS256 (`tally signing-keys rotate` makes one)"
        );
    } else {
        for (kid, alg, status, created) in rows {
            println!(
                "{kid}  {alg}  {status:<8}  {}",
                created.format("%Y-%m-%d %H:%M")
            );
        }
    }
    Ok(())
}

fn new_es256() -> anyhow::Result<StoredKey> {
    Ok(StoredKey {
        kid: uuid::Uuid::new_v4().to_string(),
        algorithm: "ES256".to_owned(),
        private_key_pem: signing_keys::generate_es256_pem().map_err(anyhow::Error::msg)?,
        status: "standby".to_owned(),
    })
}

/// Stores `key` with `status` (after checking it loads); its kid.
async fn insert(owner: &PgPool, key: &StoredKey, status: &str) -> anyhow::Result<String> {
    SigningKeys::load(std::slice::from_ref(key)).map_err(anyhow::Error::msg)?;
    sqlx::query(
        "insert into private.jwt_signing_keys (kid, algorithm, private_key_pem, status) \
         values ($1, $2, $3, $4)",
    )
    .bind(&key.kid)
    .bind(&key.algorithm)
    .bind(&key.private_key_pem)
    .bind(status)
    .execute(owner)
    .await
    .with_context(|| format!("cannot store key {}", key.kid))?;
    Ok(key.kid.clone())
}

async fn rotate(owner: &PgPool) -> anyhow::Result<()> {
    let standby: Option<String> = sqlx::query_scalar(
        "select kid from private.jwt_signing_keys where status = 'standby' order by created_at limit 1",
    )
    .fetch_optional(owner)
    .await?;
    let next = match standby {
        Some(kid) => kid,
        None => insert(owner, &new_es256()?, "standby").await?,
    };
    promote(owner, &next).await?;
    println!("{next} signs from now on");
    Ok(())
}

/// Makes `kid` the current key, the current one previous, in one transaction.
async fn promote(owner: &PgPool, kid: &str) -> anyhow::Result<()> {
    let mut tx = owner.begin().await?;
    sqlx::query("update private.jwt_signing_keys set status = 'previous' where status = 'current'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("update private.jwt_signing_keys set status = 'current' where kid = $1")
        .bind(kid)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn revoke(owner: &PgPool, kid: &str) -> anyhow::Result<()> {
    let status: Option<String> =
        sqlx::query_scalar("select status from private.jwt_signing_keys where kid = $1")
            .bind(kid)
            .fetch_optional(owner)
            .await?;
    match status.as_deref() {
        None => anyhow::bail!("no signing key {kid}"),
        Some("current") => {
            anyhow::bail!("{kid} is the current key: rotate first (`tally signing-keys rotate`)")
        }
        Some(_) => {
            sqlx::query("update private.jwt_signing_keys set status = 'revoked' where kid = $1")
                .bind(kid)
                .execute(owner)
                .await?;
            println!("{kid} revoked: the tokens it signed are refused from now on");
            Ok(())
        }
    }
}

async fn import(
    owner: &PgPool,
    file: &Path,
    kid: String,
    algorithm: String,
    current: bool,
) -> anyhow::Result<()> {
    let private_key_pem =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let key = StoredKey {
        kid,
        algorithm,
        private_key_pem,
        status: "standby".to_owned(),
    };
    let kid = insert(owner, &key, "standby").await?;
    if current {
        promote(owner, &kid).await?;
    }
    println!(
        "imported {kid} ({})",
        if current { "current" } else { "standby" }
    );
    Ok(())
}
