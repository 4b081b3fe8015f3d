//! A person's MFA factors (`auth.mfa_factors`) as GoTrue shows them, and what changes
//! sessions when a factor is verified or removed.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    mfa,
    timestamps::{opt_time, time},
};

/// A row of `auth.mfa_factors` (the secret stays in the database but for checking a code).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Factor {
    /// The factor id.
    pub id: Uuid,
    /// Its person.
    pub user_id: Uuid,
    /// The name the person gave it ('' for none).
    pub friendly_name: String,
    /// `totp` (or GoTrue's `webauthn`, `phone`).
    pub factor_type: String,
    /// `unverified` until a first code is verified, then `verified`.
    pub status: String,
    /// When it was last challenged.
    pub last_challenged_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Updated at.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, user_id, friendly_name, factor_type, status, last_challenged_at, created_at, updated_at";

impl Factor {
    /// Whether a code was ever verified with it.
    pub fn is_verified(&self) -> bool {
        self.status == "verified"
    }

    /// GoTrue's factor JSON.
    pub fn to_json(&self) -> Value {
        let mut json = json!({
            "id": self.id,
            "status": self.status,
            "factor_type": self.factor_type,
            "created_at": time(self.created_at),
            "updated_at": time(self.updated_at),
            "last_challenged_at": opt_time(self.last_challenged_at),
        });
        if !self.friendly_name.is_empty() {
            json["friendly_name"] = json!(self.friendly_name);
        }
        json
    }
}

/// The factors of `user`, oldest first.
pub async fn of_user(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<Vec<Factor>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from auth.mfa_factors where user_id = $1 order by created_at, id"
    )))
    .bind(user)
    .fetch_all(conn)
    .await
}

/// The factor `id` of `user`, if it is theirs.
pub async fn owned(conn: &mut PgConnection, user: Uuid, id: Uuid) -> sqlx::Result<Option<Factor>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from auth.mfa_factors where id = $1 and user_id = $2"
    )))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// Removes `user`'s unverified factors older than their expiry (as GoTrue does before an
/// enrollment), so abandoned enrollments neither count nor hold their names.
pub async fn drop_expired(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "delete from auth.mfa_factors where user_id = $1 and status = 'unverified' \
           and created_at < now() - make_interval(secs => $2)",
    )
    .bind(user)
    .bind(mfa::UNVERIFIED_FACTOR_EXPIRY_SECS as f64)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a factor; the sessions it raised go back to aal1 (their later tokens say so).
pub async fn remove(conn: &mut PgConnection, factor: &Factor) -> sqlx::Result<()> {
    sqlx::query(
        "update auth.sessions set aal = 'aal1', factor_id = null, \
           amr = coalesce((select jsonb_agg(e) from jsonb_array_elements(amr) e \
                           where e ->> 'method' <> $2), '[]') \
         where factor_id = $1",
    )
    .bind(factor.id)
    .bind(&factor.factor_type)
    .execute(&mut *conn)
    .await?;
    sqlx::query("delete from auth.mfa_factors where id = $1")
        .bind(factor.id)
        .execute(conn)
        .await?;
    Ok(())
}
