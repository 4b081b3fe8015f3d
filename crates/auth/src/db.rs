//! Transactions of the auth service: as `tally_auth`, the only role that reads `auth.*`.

use sqlx::{PgPool, Postgres, Transaction};

/// A transaction as the auth service.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("set local role tally_auth")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
