//! What the database says about the tables of `public`: which exist, and which columns (with
//! their type names) each API role may select. Read once per table and role, then kept.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use serde_json::{Map, Value, json};
use sqlx::PgPool;
use tally_core::DbRole;

/// The columns a role may select, in table order: `(name, typname)`.
pub type Columns = Arc<Vec<(String, String)>>;

/// The catalog cache.
pub struct Catalog {
    pool: PgPool,
    columns: RwLock<HashMap<(String, &'static str), Columns>>,
}

impl Catalog {
    /// A cache over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            columns: RwLock::default(),
        }
    }

    /// Whether `public.<table>` is a table whose changes are captured.
    pub async fn watched(&self, table: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "select exists (select from pg_catalog.pg_trigger t
               join pg_catalog.pg_class c on c.oid = t.tgrelid
               join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relname = $1 and t.tgname = 'realtime_insert')",
        )
        .bind(table)
        .fetch_one(&self.pool)
        .await
    }

    /// The columns of `public.<table>` that `role` may select.
    pub async fn columns(&self, table: &str, role: DbRole) -> Result<Columns, sqlx::Error> {
        let key = (table.to_owned(), role.as_str());
        if let Some(found) = self.read().get(&key) {
            return Ok(found.clone());
        }
        let rows: Vec<(String, String)> = sqlx::query_as(
            "select a.attname::text, t.typname::text
             from pg_catalog.pg_attribute a
             join pg_catalog.pg_class c on c.oid = a.attrelid
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             join pg_catalog.pg_type t on t.oid = a.atttypid
             where n.nspname = 'public' and c.relname = $1 and a.attnum > 0 and not a.attisdropped
               and pg_catalog.has_column_privilege($2, c.oid, a.attnum, 'SELECT')
             order by a.attnum",
        )
        .bind(table)
        .bind(role.as_str())
        .fetch_all(&self.pool)
        .await?;
        let columns = Arc::new(rows);
        self.columns
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, columns.clone());
        Ok(columns)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<(String, &'static str), Columns>> {
        self.columns.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// A row cut down to `columns`.
pub fn project(row: &Map<String, Value>, columns: &Columns) -> Map<String, Value> {
    columns
        .iter()
        .filter_map(|(name, _)| row.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

/// `[{name, type}]` as the payload's `columns`.
pub fn describe(columns: &Columns) -> Value {
    Value::Array(
        columns
            .iter()
            .map(|(name, typname)| json!({ "name": name, "type": typname }))
            .collect(),
    )
}
