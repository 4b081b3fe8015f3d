//! The ClickHouse destination, over HTTP with the official `clickhouse` client: per published
//! table a `ReplacingMergeTree(_version, _deleted)` ordered by the table's primary key (org
//! first), where `_version` = commit position << 64 | ordinal (the initial copy at 0), so the
//! latest change of a row wins at merge or `FINAL`; deletes are rows with `_deleted = 1`; a
//! view `<table>__current` reads the current state. Columns are typed from PostgreSQL's (the
//! others as String); a column that appears in the stream is added to the table.

use std::{collections::HashMap, sync::Arc};

use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::{
    pgoutput::{Relation, Value},
    stream::{Op, Transaction},
};

/// A ClickHouse write that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    /// The server refused or could not be reached.
    #[error("clickhouse: {0}")]
    Client(#[from] clickhouse::error::Error),
    /// Reading a table's primary key failed.
    #[error("clickhouse: reading the primary key: {0}")]
    Catalog(#[from] sqlx::Error),
}

/// Where the destination is.
#[derive(Debug, Clone)]
pub struct ClickHouseSettings {
    /// `http://host:8123`.
    pub url: String,
    /// The database its tables go in (created when missing).
    pub database: String,
    /// The user, when not `default`.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
}

impl ClickHouseSettings {
    /// The destination the configuration names, when analytics is on and has a URL for it.
    pub fn from_config(settings: &tally_core::config::AnalyticsSettings) -> Option<Self> {
        let url = settings
            .analytics_clickhouse_url
            .as_ref()
            .filter(|_| settings.analytics)?;
        Some(Self {
            url: url.clone(),
            database: settings.analytics_clickhouse_database.clone(),
            user: settings.analytics_clickhouse_user.clone(),
            password: settings
                .analytics_clickhouse_password
                .as_ref()
                .map(|p| p.0.clone()),
        })
    }
}

/// The ClickHouse destination.
#[derive(Clone)]
pub struct ClickHouse {
    client: clickhouse::Client,
    database: String,
    pool: PgPool,
    /// Each table's columns as created or altered so far.
    known: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl ClickHouse {
    /// The destination `settings` name; `pool` reads the source tables' primary keys.
    pub fn new(settings: &ClickHouseSettings, pool: PgPool) -> Self {
        let mut client = clickhouse::Client::default().with_url(&settings.url);
        if let Some(user) = &settings.user {
            client = client.with_user(user);
        }
        if let Some(password) = &settings.password {
            client = client.with_password(password);
        }
        Self {
            client,
            database: settings.database.clone(),
            pool,
            known: Arc::default(),
        }
    }

    /// The client, for reading.
    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// `database.table`, quoted.
    pub fn table(&self, table: &str) -> String {
        format!("{}.{}", ident(&self.database), ident(table))
    }

    /// Drops every table (before a new initial copy).
    pub async fn reset(&self) -> Result<(), ClickHouseError> {
        self.client
            .query(&format!(
                "DROP DATABASE IF EXISTS {} SYNC",
                ident(&self.database)
            ))
            .execute()
            .await?;
        self.known.lock().await.clear();
        Ok(())
    }

    /// Drops `table` and its view (before it is copied again).
    pub async fn reset_table(&self, table: &str) -> Result<(), ClickHouseError> {
        for sql in [
            format!(
                "DROP VIEW IF EXISTS {}",
                self.table(&format!("{table}__current"))
            ),
            format!("DROP TABLE IF EXISTS {} SYNC", self.table(table)),
        ] {
            self.client.query(&sql).execute().await?;
        }
        self.known.lock().await.remove(table);
        Ok(())
    }

    /// Inserts `transactions`' changes, one INSERT per table (JSONEachRow).
    pub async fn write(&self, transactions: &[Transaction]) -> Result<(), ClickHouseError> {
        let mut by_table: Vec<(Arc<Relation>, Vec<u8>)> = Vec::new();
        for tx in transactions {
            for change in &tx.changes {
                let index = match by_table
                    .iter()
                    .position(|(r, _)| Arc::ptr_eq(r, &change.relation))
                {
                    Some(i) => i,
                    None => {
                        by_table.push((change.relation.clone(), Vec::new()));
                        by_table.len() - 1
                    }
                };
                let mut row = serde_json::Map::new();
                for ((column, value), described) in
                    change.values.iter().zip(&change.relation.columns)
                {
                    row.insert(column.clone(), json(described.type_oid, value));
                }
                let (lsn, ordinal) = match change.op {
                    Op::Copy => (0, 0),
                    _ => (tx.commit_lsn.0, change.ordinal),
                };
                row.insert("_commit_lsn".into(), lsn.into());
                row.insert("_tx_ordinal".into(), ordinal.into());
                row.insert("_deleted".into(), u8::from(change.op == Op::Delete).into());
                let lines = &mut by_table[index].1;
                serde_json::to_writer(&mut *lines, &row).map_err(|e| {
                    clickhouse::error::Error::Custom(format!("encoding a row: {e}"))
                })?;
                lines.push(b'\n');
            }
        }
        for (relation, lines) in by_table {
            self.ensure(&relation).await?;
            let columns: Vec<String> = relation
                .columns
                .iter()
                .map(|c| ident(&c.name))
                .chain(["_commit_lsn", "_tx_ordinal", "_deleted"].map(str::to_owned))
                .collect();
            let mut insert = self
                .client
                .insert_formatted_with(format!(
                    "INSERT INTO {} ({}) FORMAT JSONEachRow",
                    self.table(&relation.name),
                    columns.join(", ")
                ))
                .with_setting("date_time_input_format", "best_effort");
            insert.send(lines.into()).await?;
            insert.end().await?;
        }
        Ok(())
    }

    /// Creates `relation`'s table and view, or adds the columns it gained (also those added
    /// while no replicator ran: on a table's first write of a session every column is made
    /// sure of).
    async fn ensure(&self, relation: &Relation) -> Result<(), ClickHouseError> {
        let mut known = self.known.lock().await;
        let had = known.get(&relation.name);
        let missing: Vec<&crate::pgoutput::Column> = relation
            .columns
            .iter()
            .filter(|c| had.is_none_or(|had| !had.contains(&c.name)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if had.is_none() {
            self.create(relation).await?;
        }
        let additions: Vec<String> = missing
            .iter()
            .map(|c| {
                format!(
                    "ADD COLUMN IF NOT EXISTS {} Nullable({})",
                    ident(&c.name),
                    clickhouse_type(c.type_oid)
                )
            })
            .collect();
        // The view lists the columns it was made with: made again with the new ones.
        for sql in [
            format!(
                "ALTER TABLE {} {}",
                self.table(&relation.name),
                additions.join(", ")
            ),
            format!(
                "CREATE OR REPLACE VIEW {} AS SELECT * EXCEPT (_commit_lsn, _tx_ordinal, \
                 _deleted) FROM {} FINAL WHERE _deleted = 0",
                self.table(&format!("{}__current", relation.name)),
                self.table(&relation.name)
            ),
        ] {
            self.client.query(&sql).execute().await?;
        }
        let entry = known.entry(relation.name.clone()).or_default();
        entry.extend(missing.into_iter().map(|c| c.name.clone()));
        Ok(())
    }

    async fn create(&self, relation: &Relation) -> Result<(), ClickHouseError> {
        let key = primary_key(&self.pool, &relation.name).await?;
        let columns: Vec<String> = relation
            .columns
            .iter()
            .map(|c| {
                let kind = clickhouse_type(c.type_oid);
                if key.contains(&c.name) {
                    format!("{} {kind}", ident(&c.name))
                } else {
                    format!("{} Nullable({kind})", ident(&c.name))
                }
            })
            .collect();
        let order: Vec<String> = key.iter().map(|k| ident(k)).collect();
        for sql in [
            format!("CREATE DATABASE IF NOT EXISTS {}", ident(&self.database)),
            format!(
                "CREATE TABLE IF NOT EXISTS {} ({}, _commit_lsn UInt64, _tx_ordinal UInt64, \
                 _deleted UInt8, _version UInt128 MATERIALIZED \
                 bitShiftLeft(toUInt128(_commit_lsn), 64) + _tx_ordinal) \
                 ENGINE = ReplacingMergeTree(_version, _deleted) ORDER BY ({})",
                self.table(&relation.name),
                columns.join(", "),
                if order.is_empty() {
                    "tuple()".to_owned()
                } else {
                    order.join(", ")
                }
            ),
        ] {
            self.client.query(&sql).execute().await?;
        }
        Ok(())
    }
}

/// The ordering key of `table`: its primary key, after `org_id` when the table has a
/// non-null one (rows of an org sit together; every delete carries it).
async fn primary_key(pool: &PgPool, table: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut key: Vec<String> = sqlx::query_scalar(
        "select a.attname::text from pg_index i
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
          where i.indrelid = format('public.%I', $1::text)::regclass and i.indisprimary
          order by array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let org_not_null: bool = sqlx::query_scalar(
        "select coalesce(bool_or(attnotnull), false) from pg_attribute
          where attrelid = format('public.%I', $1::text)::regclass and attname = 'org_id'
            and not attisdropped",
    )
    .bind(table)
    .fetch_one(pool)
    .await?;
    key.retain(|k| k != "org_id");
    if org_not_null {
        key.insert(0, "org_id".into());
    }
    Ok(key)
}

/// The ClickHouse type of a PostgreSQL type (by OID); String for the others.
fn clickhouse_type(type_oid: u32) -> &'static str {
    match type_oid {
        16 => "Bool",
        21 => "Int16",
        23 => "Int32",
        20 => "Int64",
        700 => "Float32",
        701 => "Float64",
        1082 => "Date32",
        1114 => "DateTime64(6)",
        1184 => "DateTime64(6, 'UTC')",
        2950 => "UUID",
        _ => "String",
    }
}

/// A value as JSONEachRow carries it for its column's type.
fn json(type_oid: u32, value: &Value) -> serde_json::Value {
    let Value::Text(text) = value else {
        return serde_json::Value::Null;
    };
    match type_oid {
        16 => serde_json::Value::Bool(matches!(text.as_str(), "t" | "true")),
        20 | 21 | 23 => text
            .parse::<i64>()
            .map_or(serde_json::Value::Null, serde_json::Value::from),
        700 | 701 => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        _ => serde_json::Value::String(text.clone()),
    }
}

/// A quoted identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}
