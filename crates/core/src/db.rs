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
/// upgraded one end the same. Numbered migrations keep tables, types, indexes, grants and the
/// first definition of what later ones need; the later redefinitions were moved out (see
/// [`REWRITTEN`]).
pub const REPLACEABLE: [(&str, &str); 9] = [
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
        "timers",
        include_str!("../../../migrations/replaceable/timers.sql"),
    ),
    (
        "timesheets",
        include_str!("../../../migrations/replaceable/timesheets.sql"),
    ),
    (
        "day_summaries",
        include_str!("../../../migrations/replaceable/day_summaries.sql"),
    ),
    (
        "time_log_rules",
        include_str!("../../../migrations/replaceable/time_log_rules.sql"),
    ),
    (
        "audit",
        include_str!("../../../migrations/replaceable/audit.sql"),
    ),
    (
        "log_events",
        include_str!("../../../migrations/replaceable/log_events.sql"),
    ),
];

/// Numbered migrations whose text changed after release (the function definitions moved to
/// `migrations/replaceable/`), with the SHA-384 checksum of the text as released. A database
/// that recorded that checksum is brought to the current one before migrating; any other
/// mismatch still stops [`migrate`].
pub const REWRITTEN: [(i64, &str); 5] = [
    (
        20261128000002,
        "bdd9d365cd9025940092e7bcfa16514d7e2484a1abc5157fefc6f30052386d67e9943458289d48104670d49a30510a81",
    ),
    (
        20261128000003,
        "eecfeb11fa506ce6801efb7a37301df76a68382a23e784377140dcf1b2e86047fbe7af1ad774c3b152259a926e72ebd6",
    ),
    (
        20261130000005,
        "82ef4f01f60200f8f2cf90bf0b315d2e226807d9272888405b01867480db516ca5b33cff1dd9e6d6b6e037ea921a6fe5",
    ),
    (
        20261202000002,
        "4715fd4c04f02a8430d4cabaf989dfca457b5ae85abedcbac423dc13df12e8dee33e5cbd60588f050afaed524747ddb7",
    ),
    (
        20261204000002,
        "e27075b455f31a2a32b4020ce18ca881abda80e64d9e5b1c2ba57c7ffa9f77ac8b233c815ff4590630ddd41473d68369",
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
    // Migrations' `if exists`/`if not exists` notices say nothing a user can act on.
    let options = options.options([("client_min_messages", "warning")]);
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
    accept_rewritten(owner).await?;
    MIGRATOR.run(owner).await?;
    let mut conn = owner.acquire().await?;
    apply_replaceable(&mut conn).await
}

/// Records the current checksum of each [`REWRITTEN`] migration where its released one is
/// recorded (a database migrated by an earlier release).
async fn accept_rewritten(owner: &PgPool) -> Result<(), Error> {
    let tracked: Option<String> =
        sqlx::query_scalar("select pg_catalog.to_regclass('tally.schema_migrations')::text")
            .fetch_one(owner)
            .await?;
    if tracked.is_none() {
        return Ok(());
    }
    for (version, released) in REWRITTEN {
        let (Some(current), Ok(released)) = (
            MIGRATOR.iter().find(|m| m.version == version),
            hex::decode(released),
        ) else {
            continue;
        };
        sqlx::query(
            "update tally.schema_migrations set checksum = $1 \
             where version = $2 and checksum = $3",
        )
        .bind(current.checksum.as_ref())
        .bind(version)
        .bind(released)
        .execute(owner)
        .await?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::{MIGRATOR, REWRITTEN};

    #[test]
    fn every_rewritten_migration_exists_and_changed() {
        for (version, released) in REWRITTEN {
            let migration = MIGRATOR.iter().find(|m| m.version == version);
            let current = migration.map(|m| hex::encode(&m.checksum));
            assert!(current.is_some(), "{version} is a migration");
            assert_ne!(
                current.as_deref(),
                Some(released),
                "{version} was rewritten"
            );
            assert_eq!(hex::decode(released).map(|c| c.len()).ok(), Some(48));
        }
    }
}
