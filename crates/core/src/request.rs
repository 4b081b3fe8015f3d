//! The per-request transaction: every service runs a caller's work as
//! `BEGIN; set_config('role', …, true); set_config('request.jwt.claims', …, true); …; COMMIT`,
//! as PostgREST does, so the database's row-level security decides what the caller sees.

use axum::http::HeaderMap;
use serde_json::{Map, Value};
use sqlx::{PgPool, Postgres, Transaction};

use crate::{Claims, JwtError};

/// The database role a request runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRole {
    /// No user: the anon key alone.
    Anon,
    /// A signed-in user.
    Authenticated,
    /// The server or a trusted backend: bypasses row-level security.
    ServiceRole,
}

impl DbRole {
    /// The role's name in PostgreSQL.
    pub fn as_str(self) -> &'static str {
        match self {
            DbRole::Anon => "anon",
            DbRole::Authenticated => "authenticated",
            DbRole::ServiceRole => "service_role",
        }
    }

    /// Parses a JWT `role` claim; only the three API roles are accepted.
    pub fn from_claim(role: &str) -> Option<Self> {
        match role {
            "anon" => Some(DbRole::Anon),
            "authenticated" => Some(DbRole::Authenticated),
            "service_role" => Some(DbRole::ServiceRole),
            _ => None,
        }
    }
}

/// Who is calling and how: everything the transaction sets before the work runs.
#[derive(Debug, Clone)]
pub struct RequestContext {
    role: DbRole,
    claims: Map<String, Value>,
    method: String,
    path: String,
    headers: Map<String, Value>,
    search_path: Option<String>,
}

impl RequestContext {
    /// A caller identified by verified claims. With no `role` claim the caller is anon; a
    /// role other than the three API roles is refused.
    pub fn from_claims(claims: Claims) -> Result<Self, JwtError> {
        let role = match claims.role() {
            None => DbRole::Anon,
            Some(role) => DbRole::from_claim(role)
                .ok_or_else(|| JwtError::Invalid(format!("role \"{role}\" does not exist")))?,
        };
        Ok(Self::new(role, claims.0))
    }

    /// The server itself, acting as service_role.
    pub fn service() -> Self {
        let mut claims = Map::new();
        claims.insert("role".into(), Value::from("service_role"));
        Self::new(DbRole::ServiceRole, claims)
    }

    fn new(role: DbRole, mut claims: Map<String, Value>) -> Self {
        // PostgREST forces the role claim to the role in use.
        claims.insert("role".into(), Value::from(role.as_str()));
        Self {
            role,
            claims,
            method: String::new(),
            path: String::new(),
            headers: Map::new(),
            search_path: None,
        }
    }

    /// Adds the HTTP request's method, path and headers (names lower-cased; the
    /// `authorization` and `apikey` headers are left out).
    pub fn with_request(mut self, method: &str, path: &str, headers: &HeaderMap) -> Self {
        self.method = method.to_owned();
        self.path = path.to_owned();
        self.headers = headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "authorization" | "apikey" | "cookie"))
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), Value::from(v)))
            })
            .collect();
        self
    }

    /// Sets the transaction's `search_path` (as PostgREST does: the requested schema first).
    pub fn with_search_path(mut self, search_path: impl Into<String>) -> Self {
        self.search_path = Some(search_path.into());
        self
    }

    /// The role the request runs as.
    pub fn role(&self) -> DbRole {
        self.role
    }

    /// The claims as the database sees them.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The caller's user id (`sub`), when the caller is a user.
    pub fn user_id(&self) -> Option<uuid::Uuid> {
        self.claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    }

    /// Begins a read-write transaction as the caller (read-only for an API token that may not
    /// write).
    pub async fn begin(
        &self,
        pool: &PgPool,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        // An API token that may not write gets a read-only transaction at every door.
        let statement = (!crate::api_token::may_write(&self.claims)).then_some("begin read only");
        let tx = waiting_for_a_connection(begun(pool, statement)).await?;
        self.configure(tx).await
    }

    /// Begins a read-write transaction as the caller for the server's own bookkeeping about
    /// them (a rate limit's count), which even a read-only API token's requests make. Nothing
    /// the caller asked to write goes through it.
    pub async fn begin_bookkeeping(
        &self,
        pool: &PgPool,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let tx = waiting_for_a_connection(begun(pool, None)).await?;
        self.configure(tx).await
    }

    /// Begins a read-only transaction as the caller (for reads, as PostgREST does for GET).
    pub async fn begin_read_only(
        &self,
        pool: &PgPool,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let tx = waiting_for_a_connection(begun(pool, Some("begin read only"))).await?;
        self.configure(tx).await
    }

    async fn configure(
        &self,
        mut tx: Transaction<'static, Postgres>,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let claim = |name: &str| {
            self.claims
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        sqlx::query(
            "select set_config('role', $1, true), \
                    set_config('request.jwt.claims', $2, true), \
                    set_config('request.jwt.claim.role', $1, true), \
                    set_config('request.jwt.claim.sub', $3, true), \
                    set_config('request.jwt.claim.email', $4, true), \
                    set_config('request.method', $5, true), \
                    set_config('request.path', $6, true), \
                    set_config('request.headers', $7, true), \
                    set_config('search_path', coalesce($8, current_setting('search_path')), true)",
        )
        .bind(self.role.as_str())
        .bind(Value::Object(self.claims.clone()).to_string())
        .bind(claim("sub"))
        .bind(claim("email"))
        .bind(&self.method)
        .bind(&self.path)
        .bind(Value::Object(self.headers.clone()).to_string())
        .bind(&self.search_path)
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }
}

/// What the caller of a transaction is to an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgAccess {
    /// A member (any role), let in.
    Member,
    /// A member whose token is at aal1 while the org requires MFA: row-level security shows
    /// them nothing of it until they verify a second factor.
    MfaRequired,
    /// Not a member.
    None,
}

/// What an aal1 session of a member of an org that requires MFA is told.
pub const MFA_REQUIRED: &str = "This organization requires multi-factor authentication: verify \
     a second factor (auth.mfa.challengeAndVerify) and use the aal2 session";

/// What the caller of the transaction `conn` is to `org`.
pub async fn org_access(conn: &mut sqlx::PgConnection, org: uuid::Uuid) -> sqlx::Result<OrgAccess> {
    let access: Option<String> = sqlx::query_scalar("select private.org_access($1)")
        .bind(org)
        .fetch_one(conn)
        .await?;
    Ok(match access.as_deref() {
        Some("member") => OrgAccess::Member,
        Some(_) => OrgAccess::MfaRequired,
        None => OrgAccess::None,
    })
}

/// A transaction begun on a task of its own. sqlx 0.9 leaves a connection inside the
/// transaction when `begin` is cut short between sending BEGIN and reading its answer (its
/// rollback guard looks at a depth not yet raised), and the pool then hands that open
/// transaction — read-only, say — to the next request, whose writes fail. On its own task the
/// begin always completes, even when the request goes away; a transaction nobody took is
/// dropped there, which rolls it back.
async fn begun(
    pool: &PgPool,
    statement: Option<&'static str>,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    let begin = tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    });
    begin.await.map_err(|_| sqlx::Error::WorkerCrashed)?
}

/// Runs `begin`, counted in `tally_db_pool_waiting` (requests waiting for a connection of the
/// request pool) until it has one — or is given up, when the request goes away.
async fn waiting_for_a_connection<T>(begin: impl Future<Output = T>) -> T {
    struct Waiting(metrics::Gauge);
    impl Drop for Waiting {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    let waiting = Waiting(metrics::gauge!("tally_db_pool_waiting", "pool" => "requests"));
    waiting.0.increment(1.0);
    begin.await
}
