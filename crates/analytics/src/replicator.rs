//! The replicator: one destination fed from its own slot. It holds the slot alone (an
//! advisory lock; another instance waits), copies every published table at version 0 when
//! the destination is new or its slot was lost, then streams committed transactions through
//! a bounded buffer, writes them in batches (by size and by time) and stores its progress only
//! after the destination confirmed a batch; the slot is confirmed after that. A destination
//! that fails is retried with the same batch (writes are idempotent by version) while the
//! buffer fills and the reader stops: the lag grows, the API never notices, then it drains.

use std::{collections::HashMap, sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::sync::{mpsc, watch};

use crate::{
    backfill,
    clickhouse::{ClickHouse, ClickHouseError},
    lake::{Lake, LakeError},
    pgoutput::{Lsn, Relation},
    progress::{self, Progress},
    schema, slot,
    stream::{ChangeStream, Op, StreamError, Transaction},
};

/// How often the slot's gauges are read.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// The publication every destination streams.
pub const PUBLICATION: &str = "tally_analytics";

/// Where changes go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Parquet change-log files in the object store.
    Lake(Lake),
    /// ClickHouse over HTTP.
    ClickHouse(Box<ClickHouse>),
}

impl Destination {
    /// Its name: the key of its progress; its slot is `tally_analytics_<name>_<database>`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Lake(_) => "lake",
            Self::ClickHouse(_) => "clickhouse",
        }
    }

    async fn reset(&self) -> Result<(), ReplicatorError> {
        match self {
            Self::Lake(lake) => Ok(lake.reset().await?),
            Self::ClickHouse(ch) => Ok(ch.reset().await?),
        }
    }

    async fn reset_table(&self, table: &str) -> Result<(), ReplicatorError> {
        match self {
            Self::Lake(lake) => Ok(lake.reset_table(table).await?),
            Self::ClickHouse(ch) => Ok(ch.reset_table(table).await?),
        }
    }

    async fn write(&self, batch: &[Transaction]) -> Result<(), ReplicatorError> {
        match self {
            Self::Lake(lake) => lake.write(batch).await.map(drop).map_err(Into::into),
            Self::ClickHouse(ch) => Ok(ch.write(batch).await?),
        }
    }
}

/// Why a replicator session ended (it starts again after a pause).
#[derive(Debug, thiserror::Error)]
pub enum ReplicatorError {
    /// The database.
    #[error("analytics: {0}")]
    Database(#[from] sqlx::Error),
    /// The change stream.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The lake.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// ClickHouse.
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
}

/// How a replicator batches and buffers.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Rows that make a batch full (written at once).
    pub batch_rows: usize,
    /// The longest a change waits in a batch before it is written.
    pub flush_interval: Duration,
    /// Transactions buffered between the stream and the destination.
    pub buffer: usize,
    /// Rows per chunk of the initial copy.
    pub copy_chunk_rows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch_rows: 10_000,
            flush_interval: Duration::from_millis(500),
            buffer: 256,
            copy_chunk_rows: 10_000,
        }
    }
}

/// One destination's replicator.
pub struct Replicator {
    pool: PgPool,
    url: String,
    destination: Destination,
    options: Options,
}

impl Replicator {
    /// A replicator of `destination` over the database at `url` (a role that may replicate;
    /// `pool` connects as it).
    pub fn new(pool: PgPool, url: String, destination: Destination, options: Options) -> Self {
        Self {
            pool,
            url,
            destination,
            options,
        }
    }

    /// Runs until `stop` turns true: sessions one after another, pausing (up to 30 s) after
    /// one that failed.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut pause = Duration::from_secs(1);
        loop {
            if *stop.borrow() {
                return;
            }
            match self.session(&mut stop).await {
                Ok(()) => return,
                Err(e) => {
                    metrics::counter!("tally_analytics_errors_total", "destination" => self.destination.name())
                        .increment(1);
                    tracing::warn!(destination = self.destination.name(), error = %e, "analytics replication paused");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }

    /// Takes the slot's lock (waiting while another instance holds it), then replicates; `Ok`
    /// once stopped.
    async fn session(&self, stop: &mut watch::Receiver<bool>) -> Result<(), ReplicatorError> {
        // Its own connection, not the pool's: the lock goes when the connection goes, also
        // when this session is dropped half way.
        let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url).await?;
        let key = format!("tally_analytics:{}", self.destination.name());
        loop {
            let held: bool = sqlx::query_scalar("select pg_try_advisory_lock(hashtext($1))")
                .bind(&key)
                .fetch_one(&mut lock)
                .await?;
            if held {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return Ok(()),
            }
        }
        let result = self.replicate(stop).await;
        let _ = sqlx::Connection::close(lock).await;
        result
    }

    /// Copies when needed, then streams until stopped or failed.
    async fn replicate(&self, stop: &mut watch::Receiver<bool>) -> Result<(), ReplicatorError> {
        let name = self.destination.name();
        let database: String = sqlx::query_scalar("select current_database()::text")
            .fetch_one(&self.pool)
            .await?;
        let slot = slot_name(name, &database);
        let stored = progress::load(&self.pool, name).await?;
        let state = slot::state(&self.pool, &slot).await?;
        let progress = match (stored, state) {
            (Some(p), Some(s)) if p.copied && p.slot == slot && !s.is_lost() => p,
            (stored, _) => {
                // A new destination, an unfinished copy, or a slot that is gone or lost: the
                // destination starts again from a fresh slot and a full copy. Never a resume
                // from an old position on a new slot (etl#935).
                let resync = stored.as_ref().is_some_and(|p| p.copied);
                let resyncs = stored.map_or(0, |p| p.resyncs) + i32::from(resync);
                if resync {
                    metrics::counter!("tally_analytics_resyncs_total", "destination" => name)
                        .increment(1);
                    tracing::warn!(destination = name, "analytics slot lost: copying again");
                }
                self.copy(&slot, resyncs).await?
            }
        };
        self.stream(progress, stop).await
    }

    /// A fresh slot, an emptied destination and every published row at version 0.
    async fn copy(&self, slot: &str, resyncs: i32) -> Result<Progress, ReplicatorError> {
        let name = self.destination.name();
        slot::drop(&self.pool, slot).await?;
        self.destination.reset().await?;
        let point = slot::create(&self.pool, slot).await?;
        let mut progress = Progress {
            slot: slot.to_owned(),
            lsn: point,
            copied: false,
            resyncs,
            committed_at: None,
        };
        progress::save(&self.pool, name, &progress).await?;
        let relations = schema::published(&self.pool, PUBLICATION).await?;
        let copied = self.copy_relations(&relations).await?;
        progress.copied = true;
        progress::save(&self.pool, name, &progress).await?;
        tracing::info!(
            destination = name,
            rows = copied,
            "analytics initial copy done"
        );
        Ok(progress)
    }

    /// Copies every row of `relations` into the destination at version 0; the rows copied.
    async fn copy_relations(&self, relations: &[Arc<Relation>]) -> Result<u64, ReplicatorError> {
        let name = self.destination.name();
        backfill::copy(
            &self.pool,
            relations,
            self.options.copy_chunk_rows,
            |chunk| async move {
                self.destination.write(std::slice::from_ref(&chunk)).await?;
                metrics::counter!("tally_analytics_rows_total", "destination" => name, "op" => "copy")
                    .increment(chunk.changes.len() as u64);
                Ok::<_, ReplicatorError>(())
            },
        )
        .await
    }

    /// Empties `table` in the destination and copies it again (its column types changed).
    async fn resync_table(&self, table: &str) -> Result<(), ReplicatorError> {
        let name = self.destination.name();
        tracing::info!(
            destination = name,
            table,
            "a column's type changed: copying the table again"
        );
        self.destination.reset_table(table).await?;
        let relations: Vec<Arc<Relation>> = schema::published(&self.pool, PUBLICATION)
            .await?
            .into_iter()
            .filter(|r| r.name == table)
            .collect();
        self.copy_relations(&relations).await?;
        metrics::counter!("tally_analytics_table_resyncs_total", "destination" => name)
            .increment(1);
        Ok(())
    }

    /// Streams from `progress` until stopped or failed.
    async fn stream(
        &self,
        mut progress: Progress,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), ReplicatorError> {
        let stream =
            ChangeStream::open(&self.url, &progress.slot, PUBLICATION, progress.lsn).await?;
        let (sender, mut received) = mpsc::channel(self.options.buffer);
        let (confirm, confirmed) = watch::channel(progress.lsn);
        let reader = tokio::spawn(read(stream, sender, confirmed));
        let mut batch: Vec<Transaction> = Vec::new();
        let mut rows = 0;
        let mut due: Option<tokio::time::Instant> = None;
        let mut gauges = tokio::time::interval(GAUGE_INTERVAL);
        let mut types = ColumnTypes::new(&schema::published(&self.pool, PUBLICATION).await?);
        let ended = loop {
            tokio::select! {
                _ = stop.changed() => break Ok(()),
                _ = gauges.tick() => {
                    let idle = batch.is_empty() && received.is_empty();
                    self.report(&progress.slot, idle).await?;
                }
                next = received.recv() => match next {
                    Some(tx) => {
                        let changed = types.changed_by(&tx);
                        if !changed.is_empty() {
                            // What came before the change is stored first, in its old types.
                            self.flush(&mut batch, &mut progress, &confirm, stop).await?;
                            (rows, due) = (0, None);
                            for table in changed {
                                self.resync_table(&table).await?;
                            }
                        }
                        rows += tx.changes.len();
                        batch.push(tx);
                        due.get_or_insert_with(|| tokio::time::Instant::now() + self.options.flush_interval);
                        if rows >= self.options.batch_rows {
                            self.flush(&mut batch, &mut progress, &confirm, stop).await?;
                            (rows, due) = (0, None);
                        }
                    }
                    None => break Ok(()),
                },
                () = sleep_until(due) => {
                    self.flush(&mut batch, &mut progress, &confirm, stop).await?;
                    (rows, due) = (0, None);
                }
            }
        };
        // The reader ends once both its ends are gone (it may be waiting on either).
        drop(received);
        drop(confirm);
        match reader.await {
            Ok(Err(e)) if !*stop.borrow() => Err(e.into()),
            _ => ended,
        }
    }

    /// Sets the slot's gauges: WAL bytes behind and WAL it may still hold back; the lag in
    /// seconds is 0 when nothing waits.
    async fn report(&self, slot: &str, idle: bool) -> Result<(), ReplicatorError> {
        let name = self.destination.name();
        if let Some(state) = slot::state(&self.pool, slot).await? {
            metrics::gauge!("tally_analytics_lag_bytes", "destination" => name)
                .set(state.lag_bytes as f64);
            if let Some(safe) = state.safe_wal_size {
                metrics::gauge!("tally_analytics_safe_wal_bytes", "destination" => name)
                    .set(safe as f64);
            }
        }
        if idle {
            metrics::gauge!("tally_analytics_lag_seconds", "destination" => name).set(0.0);
        }
        Ok(())
    }

    /// Writes `batch` (retrying while the destination fails, until stopped), stores the
    /// progress, then confirms it to the slot.
    async fn flush(
        &self,
        batch: &mut Vec<Transaction>,
        progress: &mut Progress,
        confirm: &watch::Sender<Lsn>,
        stop: &watch::Receiver<bool>,
    ) -> Result<(), ReplicatorError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let name = self.destination.name();
        let mut pause = Duration::from_millis(200);
        while let Err(e) = self.destination.write(batch).await {
            if *stop.borrow() {
                return Err(e);
            }
            metrics::counter!("tally_analytics_errors_total", "destination" => name).increment(1);
            tracing::warn!(destination = name, error = %e, "analytics destination failed: retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
        progress.lsn = last.end_lsn;
        progress.committed_at = Some(last.commit_time);
        progress::save(&self.pool, name, progress).await?;
        let _ = confirm.send(last.end_lsn);
        for tx in batch.iter() {
            for change in &tx.changes {
                let op = match change.op {
                    Op::Copy => "copy",
                    Op::Insert => "insert",
                    Op::Update => "update",
                    Op::Delete => "delete",
                };
                metrics::counter!("tally_analytics_rows_total", "destination" => name, "op" => op)
                    .increment(1);
            }
        }
        metrics::gauge!("tally_analytics_lag_seconds", "destination" => name)
            .set(lag_seconds(last.commit_time));
        batch.clear();
        Ok(())
    }
}

/// Each published table's column types as last seen (from the catalog at start, then from
/// the stream): a column whose type changes makes its table be copied again, an added or
/// dropped column does not (files of the new shape sit beside the old ones).
struct ColumnTypes {
    known: HashMap<String, Vec<(String, u32)>>,
    /// The description each table's last change came with: the stream shares one until the
    /// table changes, so a change with the same one needs no comparing.
    seen: HashMap<String, Arc<Relation>>,
}

impl ColumnTypes {
    fn new(relations: &[Arc<Relation>]) -> Self {
        Self {
            known: relations
                .iter()
                .map(|r| (r.name.clone(), columns(r)))
                .collect(),
            seen: HashMap::new(),
        }
    }

    /// The tables whose column types `tx` shows changed; remembers what it shows.
    fn changed_by(&mut self, tx: &Transaction) -> Vec<String> {
        let mut changed = Vec::new();
        for change in &tx.changes {
            if self
                .seen
                .get(&change.table)
                .is_some_and(|r| Arc::ptr_eq(r, &change.relation))
            {
                continue;
            }
            self.seen
                .insert(change.table.clone(), change.relation.clone());
            let now = columns(&change.relation);
            let known = self
                .known
                .entry(change.table.clone())
                .or_insert_with(|| now.clone());
            if *known == now {
                continue;
            }
            let retyped = now
                .iter()
                .any(|(column, oid)| known.iter().any(|(name, was)| name == column && was != oid));
            if retyped && !changed.contains(&change.table) {
                changed.push(change.table.clone());
            }
            *known = now;
        }
        changed
    }
}

/// A relation's columns and their types.
fn columns(relation: &Relation) -> Vec<(String, u32)> {
    relation
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.type_oid))
        .collect()
}

/// The slot of destination `name` in `database`: slots are named cluster-wide, so two Tally
/// databases in one cluster (or two test databases) never share one.
pub fn slot_name(name: &str, database: &str) -> String {
    let database: String = database
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        })
        .collect();
    let mut slot = format!("tally_analytics_{name}_{database}");
    slot.truncate(63);
    slot
}

/// Seconds from a commit (PostgreSQL epoch microseconds) to now.
pub fn lag_seconds(commit_time: i64) -> f64 {
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let now = chrono::Utc::now().timestamp_micros();
    ((now - commit_time - PG_EPOCH_MICROS) as f64 / 1e6).max(0.0)
}

/// Completes at `due`, never when there is none.
async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads the stream into `sender` (waiting while the buffer is full) and confirms what the
/// writer stored, until the writer goes away or the stream fails.
async fn read(
    mut stream: ChangeStream,
    sender: mpsc::Sender<Transaction>,
    mut confirmed: watch::Receiver<Lsn>,
) -> Result<(), StreamError> {
    let result = loop {
        tokio::select! {
            changed = confirmed.changed() => {
                if changed.is_err() {
                    break Ok(());
                }
                let at = *confirmed.borrow_and_update();
                stream.confirm(at);
            }
            next = stream.next() => match next {
                Ok(Some(tx)) => {
                    if sender.send(tx).await.is_err() {
                        break Ok(());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
        }
    };
    let closed = stream.close().await;
    result.and(closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(name: &str, columns: &[(&str, u32)]) -> Arc<Relation> {
        Arc::new(Relation {
            oid: 1,
            namespace: "public".into(),
            name: name.into(),
            replica_identity: 'f',
            columns: columns
                .iter()
                .map(|(n, oid)| crate::pgoutput::Column {
                    name: (*n).into(),
                    type_oid: *oid,
                    type_modifier: -1,
                    key: false,
                })
                .collect(),
        })
    }

    fn touching(relation: &Arc<Relation>) -> Transaction {
        Transaction {
            commit_lsn: Lsn(1),
            end_lsn: Lsn(2),
            commit_time: 0,
            changes: vec![crate::stream::RowChange {
                table: relation.name.clone(),
                relation: relation.clone(),
                op: Op::Insert,
                ordinal: 0,
                values: Vec::new(),
            }],
            truncated: Vec::new(),
        }
    }

    #[test]
    fn a_retyped_column_resyncs_its_table_and_an_added_one_does_not() {
        let teams = relation("teams", &[("id", 2950), ("name", 25)]);
        let mut types = ColumnTypes::new(std::slice::from_ref(&teams));
        assert!(types.changed_by(&touching(&teams)).is_empty());
        let added = relation("teams", &[("id", 2950), ("name", 25), ("rank", 23)]);
        assert!(types.changed_by(&touching(&added)).is_empty());
        let retyped = relation("teams", &[("id", 2950), ("name", 25), ("rank", 25)]);
        assert_eq!(types.changed_by(&touching(&retyped)), ["teams"]);
        assert!(types.changed_by(&touching(&retyped)).is_empty(), "once");
    }

    #[test]
    fn slots_are_named_per_destination_and_database_within_postgres_limits() {
        assert_eq!(slot_name("lake", "tally"), "tally_analytics_lake_tally");
        assert_eq!(slot_name("lake", "My-DB"), "tally_analytics_lake_my_db");
        assert_eq!(slot_name("clickhouse", &"x".repeat(80)).len(), 63);
    }
}
