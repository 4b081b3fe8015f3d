//! Account events in `auth.audit_log_entries`, GoTrue's table and action names.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records an account event in `auth.audit_log_entries` (GoTrue's action names).
pub async fn record(
    conn: &mut PgConnection,
    action: &str,
    actor: Uuid,
    traits: Value,
    ip: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into auth.audit_log_entries (payload, ip_address) \
         values (json_build_object('action', $1::text, 'actor_id', $2::uuid, 'traits', $3::json), $4)",
    )
    .bind(action)
    .bind(actor)
    .bind(traits)
    .bind(ip)
    .execute(conn)
    .await?;
    Ok(())
}
