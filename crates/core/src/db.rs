//! Database connections and migrations.
//!
//! Two kinds of connection: the *owner* (the role in `DATABASE_URL`, or the embedded
//! cluster's superuser) runs migrations; every request runs on the *request pool*, logged in
//! as `tally_authenticator`, which is no superuser, owns nothing, cannot bypass RLS and can
//! only switch to `anon`, `authenticated`, `service_role` or `tally_auth`. Its password is
//! derived from the project's JWT secret, so every instance of a project agrees on it.

use std::{borrow::Cow, time::Duration};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sqlx::{
    AssertSqlSafe, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{Error, config::redact_url};

/// The SQL migrations in `migrations/`, compiled into the binary. They are tracked in
/// `tally.schema_migrations`, a schema no API role can reach.
pub static MIGRATOR: Migrator = Migrator {
    table_name: Cow::Borrowed("tally.schema_migrations"),
    create_schemas: Cow::Borrowed(&[Cow::Borrowed("tally")]),
    ..sqlx::migrate!("../../migrations")
};

/// Functions and triggers that migrations replace, each defined once in
/// `migrations/replaceable/` and applied after the numbered migrations on every [`migrate`], in
/// this order: the current definition of each is in one place, and a fresh database and an
/// upgraded one end the same. (A numbered migration keeps the definitions it had when it was
/// applied: its checksum is recorded.)
pub const REPLACEABLE: [(&str, &str); 6] = [
    (
        "uuid_v7",
        include_str!("../../../migrations/replaceable/uuid_v7.sql"),
    ),
    (
        "jobs",
        include_str!("../../../migrations/replaceable/jobs.sql"),
    ),
    (
        "storage",
        include_str!("../../../migrations/replaceable/storage.sql"),
    ),
    (
        "realtime",
        include_str!("../../../migrations/replaceable/realtime.sql"),
    ),
    (
        "day_summaries",
        include_str!("../../../migrations/replaceable/day_summaries.sql"),
    ),
    (
        "time_log_rules",
        include_str!("../../../migrations/replaceable/time_log_rules.sql"),
    ),
];

/// The login role of request connections.
pub const AUTHENTICATOR: &str = "tally_authenticator";

/// How long to wait for a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects as the owner (for migrations and administration).
pub async fn connect_owner(url: &str) -> Result<PgPool, Error> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| Error::Config(format!("DATABASE_URL is not a valid URL: {e}")))?;
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| unreachable_db(url, e))
}

/// Applies pending migrations, each in its own transaction, tracked in
/// `tally.schema_migrations`, then the [`REPLACEABLE`] definitions.
pub async fn migrate(owner: &PgPool) -> Result<(), Error> {
    MIGRATOR.run(owner).await?;
    let mut conn = owner.acquire().await?;
    apply_replaceable(&mut conn).await
}

/// Applies the [`REPLACEABLE`] definitions in one transaction (one instance at a time).
pub async fn apply_replaceable(conn: &mut sqlx::PgConnection) -> Result<(), Error> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tally.replaceable'))",
    )
    .execute(&mut *tx)
    .await?;
    for (_, sql) in REPLACEABLE {
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The request role's password for a project secret.
pub fn authenticator_password(secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"tally-authenticator-password");
    hex::encode(mac.finalize().into_bytes())
}

/// Connects the request pool: the owner URL's host and database, as `tally_authenticator`.
/// When the role's password does not match `secret` yet (a new cluster, or a new secret), it
/// is set through the owner connection first.
pub async fn connect_requests(
    owner: &PgPool,
    owner_url: &str,
    secret: &str,
    max_connections: u32,
) -> Result<PgPool, Error> {
    let options: PgConnectOptions = owner_url
        .parse()
        .map_err(|e| Error::Config(format!("DATABASE_URL is not a valid URL: {e}")))?;
    let password = authenticator_password(secret);
    let options = options
        .username(AUTHENTICATOR)
        .password(&password)
        .application_name("tally");
    let pool_options = || {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
    };
    match pool_options().connect_with(options.clone()).await {
        Ok(pool) => return Ok(pool),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("28P01") => {}
        Err(e) => return Err(unreachable_db(owner_url, e)),
    }
    // The password is hex, so it cannot break out of the literal. Another process starting
    // at the same moment may be setting the same password ("tuple concurrently updated"):
    // that is only an error when the connection still fails afterwards.
    let altered = sqlx::query(AssertSqlSafe(format!(
        "alter role {AUTHENTICATOR} with login password '{password}'"
    )))
    .execute(owner)
    .await;
    match (pool_options().connect_with(options).await, altered) {
        (Ok(pool), _) => Ok(pool),
        (Err(_), Err(alter)) => Err(alter.into()),
        (Err(e), Ok(_)) => Err(unreachable_db(owner_url, e)),
    }
}

fn unreachable_db(url: &str, e: sqlx::Error) -> Error {
    Error::Config(format!(
        "cannot connect to the database at {}: {e} — check that it is running and that \
         DATABASE_URL is right",
        redact_url(url)
    ))
}
