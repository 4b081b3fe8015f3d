//! The Parquet lake: every change of every published table as change-log files in Tally's
//! object storage (local files or S3), `_analytics/lake/<table>/date=<commit day>/` for
//! changes and `…/<table>/copy/` for the initial copy. A file is named by its first change's
//! version (commit position, then ordinal), so a replay after a crash writes the same names
//! again and overwrites rather than duplicates. Readers (DuckDB, ClickHouse, BigQuery external
//! tables) take each row's latest version and drop deleted ones.

mod parquet;

use std::sync::Arc;

use chrono::DateTime;
use futures_util::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};

pub use self::parquet::BadValue;
use self::parquet::LakeRow;
use crate::{pgoutput::Relation, stream::Transaction};

/// Where the lake lives in the store: a prefix no bucket can have (bucket names never start
/// with `_`).
pub const PREFIX: &str = "_analytics/lake";

/// A lake write that failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The store refused.
    #[error("lake store: {0}")]
    Store(#[from] object_store::Error),
    /// A file could not be encoded.
    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    /// A value did not read as its type.
    #[error(transparent)]
    Value(#[from] BadValue),
    /// The encoder met a column of a type it was not built for.
    #[error("parquet: {0}")]
    Encode(String),
}

/// The lake in one object store.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
}

/// Rows of one file: one table, one directory, one shape.
struct File<'a> {
    relation: &'a Arc<Relation>,
    dir: String,
    rows: Vec<LakeRow<'a>>,
}

impl Lake {
    /// The lake in `store`, under [`PREFIX`].
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Removes every file of the lake (before a new initial copy).
    pub async fn reset(&self) -> Result<(), LakeError> {
        self.remove(Path::from(PREFIX)).await
    }

    /// Removes every file of `table` (before that table is copied again).
    pub async fn reset_table(&self, table: &str) -> Result<(), LakeError> {
        self.remove(Path::from(PREFIX).join(table)).await
    }

    async fn remove(&self, prefix: Path) -> Result<(), LakeError> {
        let locations = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        self.store
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// Writes `transactions` as files (one per table, directory and shape); returns how many.
    pub async fn write(&self, transactions: &[Transaction]) -> Result<usize, LakeError> {
        let mut files: Vec<File<'_>> = Vec::new();
        for tx in transactions {
            let commit_lsn = tx.commit_lsn.0;
            let (dir, commit_time) = if commit_lsn == 0 {
                ("copy".to_owned(), None)
            } else {
                (
                    format!("date={}", day(tx.commit_time)),
                    Some(tx.commit_time),
                )
            };
            for change in &tx.changes {
                let row = LakeRow {
                    change,
                    commit_lsn,
                    commit_time,
                };
                // The latest file of this table and directory, unless the shape changed.
                let open = files
                    .iter_mut()
                    .rev()
                    .find(|f| f.relation.name == change.table && f.dir == dir);
                match open {
                    Some(file) if Arc::ptr_eq(file.relation, &change.relation) => {
                        file.rows.push(row)
                    }
                    _ => files.push(File {
                        relation: &change.relation,
                        dir: dir.clone(),
                        rows: vec![row],
                    }),
                }
            }
        }
        for file in &files {
            let Some(first) = file.rows.first() else {
                continue;
            };
            let name = format!(
                "{PREFIX}/{}/{}/{:016X}-{:08X}.parquet",
                file.relation.name, file.dir, first.commit_lsn, first.change.ordinal
            );
            let bytes = parquet::encode(file.relation, &file.rows)?;
            self.store
                .put(&Path::from(name), PutPayload::from(bytes))
                .await?;
        }
        Ok(files.len())
    }
}

/// The UTC day of a commit time (PostgreSQL epoch microseconds).
fn day(commit_time: i64) -> String {
    const PG_EPOCH_SECONDS: i64 = 946_684_800;
    DateTime::from_timestamp(commit_time.div_euclid(1_000_000) + PG_EPOCH_SECONDS, 0)
        .map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "unknown".into())
}
