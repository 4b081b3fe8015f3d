//! SSO providers in `auth.sso_providers`: an issuer, a client, and the email domains the
//! provider owns (for `signInWithSSO({domain})`).

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// A configured identity provider.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Provider {
    /// Its id (`provider_id` of `POST /sso`).
    pub id: Uuid,
    /// Its name (`provider` of `/authorize`).
    pub name: String,
    /// The OIDC issuer URL.
    pub issuer: String,
    /// Tally's client id at the provider.
    pub client_id: String,
    /// Tally's client secret at the provider.
    pub client_secret: String,
    /// Scopes to ask for.
    pub scopes: Vec<String>,
    /// Email domains the provider owns.
    pub domains: Vec<String>,
    /// Whether sign-ins are allowed.
    pub enabled: bool,
}

const COLUMNS: &str = "id, name, issuer, client_id, client_secret, scopes, domains, enabled";

impl Provider {
    /// The provider as the admin API shows it (never the secret).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "oidc",
            "name": self.name,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scopes": self.scopes,
            "domains": self.domains.iter().map(|d| json!({"domain": d})).collect::<Vec<_>>(),
            "enabled": self.enabled,
        })
    }
}

/// A provider by name.
pub async fn by_name(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<Provider>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from auth.sso_providers where name = $1"
    )))
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// Whether any provider is enabled (SSO is on).
pub async fn any_enabled(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select from auth.sso_providers where enabled)")
        .fetch_one(conn)
        .await
}

/// A provider by id.
pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Provider>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from auth.sso_providers where id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The provider owning an email domain.
pub async fn by_domain(conn: &mut PgConnection, domain: &str) -> sqlx::Result<Option<Provider>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from auth.sso_providers where lower($1) = any(domains) order by created_at limit 1"
    )))
    .bind(domain)
    .fetch_optional(conn)
    .await
}

/// Deletes a provider; returns it, or `None` when there was none.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Provider>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "delete from auth.sso_providers where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// All providers.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<Provider>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from auth.sso_providers order by created_at"
    )))
    .fetch_all(conn)
    .await
}

/// The admin API's provider body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProviderBody {
    /// Name, used as `provider` by `/authorize`.
    pub name: Option<String>,
    /// Issuer URL.
    pub issuer: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<String>,
    /// Scopes (default `openid email profile`).
    pub scopes: Option<Vec<String>>,
    /// Email domains.
    pub domains: Option<Vec<String>>,
    /// Enabled.
    pub enabled: Option<bool>,
}

/// Inserts or updates a provider (by id when given).
pub async fn save(
    conn: &mut PgConnection,
    id: Option<Uuid>,
    body: &ProviderBody,
) -> sqlx::Result<Option<Provider>> {
    let domains: Option<Vec<String>> = body.domains.as_ref().map(|ds| {
        ds.iter()
            .map(|d| d.trim().to_lowercase())
            .filter(|d| !d.is_empty())
            .collect()
    });
    let sql = match id {
        None => format!(
            "insert into auth.sso_providers (name, issuer, client_id, client_secret, scopes, domains, enabled) \
             values ($2, $3, $4, coalesce($5, ''), coalesce($6, '{{openid,email,profile}}'), coalesce($7, '{{}}'), coalesce($8, true)) \
             returning {COLUMNS}"
        ),
        Some(_) => format!(
            "update auth.sso_providers set name = coalesce($2, name), issuer = coalesce($3, issuer), \
               client_id = coalesce($4, client_id), client_secret = coalesce($5, client_secret), \
               scopes = coalesce($6, scopes), domains = coalesce($7, domains), enabled = coalesce($8, enabled) \
             where id = $1 returning {COLUMNS}"
        ),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&body.name)
        .bind(&body.issuer)
        .bind(&body.client_id)
        .bind(&body.client_secret)
        .bind(&body.scopes)
        .bind(domains)
        .bind(body.enabled)
        .fetch_optional(conn)
        .await
}
