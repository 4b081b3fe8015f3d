//! A logical slot's changes over the streaming replication protocol (`pgwire-replication` for
//! the wire, [`crate::pgoutput`] for the messages), assembled into committed transactions:
//! each row change with its position in the transaction, so (commit position, ordinal) orders
//! every change and a later one always wins. The consumer confirms a transaction's end once
//! its destination holds it; the slot then lets that WAL go, and a new stream resumes after it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use pgwire_replication::{
    PgWireError,
    client::{ReplicationClient, ReplicationEvent},
    config::{ReplicationConfig, TlsConfig},
    lsn::Lsn as WireLsn,
};
use thiserror::Error;

use crate::pgoutput::{self, DecodeError, Lsn, Message, Relation, Value};

/// A stream that cannot go on.
#[derive(Debug, Error)]
pub enum StreamError {
    /// The database URL is not one this stream can use.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The replication connection failed.
    #[error("logical replication: {0}")]
    Wire(#[from] pgwire_replication::PgWireError),
    /// A message could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A change named a table the stream was never told about.
    #[error("a change for relation {0} arrived before its description")]
    UnknownRelation(u32),
}

/// What a row change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A row as the initial copy found it (version 0: any change wins over it).
    Copy,
    /// A new row.
    Insert,
    /// A changed row (its new values).
    Update,
    /// A removed row (its old values: the identity, or all of it).
    Delete,
}

/// One row change of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// The table (in `public`).
    pub table: String,
    /// The table as the stream described it when the change was made (its columns' types).
    pub relation: Arc<Relation>,
    /// What happened.
    pub op: Op,
    /// Its position among the transaction's changes, from 0.
    pub ordinal: u32,
    /// The row's columns and values (for a delete, the old row's).
    pub values: Vec<(String, Value)>,
}

impl RowChange {
    /// The text of `column`, if the change carries it.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.values.iter().find_map(|(name, value)| match value {
            Value::Text(t) if name == column => Some(t.as_str()),
            _ => None,
        })
    }
}

/// A committed transaction's changes to published tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Its commit record's position: with a change's ordinal, the change's version.
    pub commit_lsn: Lsn,
    /// Where its commit record ends: what to confirm once it is stored.
    pub end_lsn: Lsn,
    /// When it committed, in microseconds since 2000-01-01 UTC.
    pub commit_time: i64,
    /// Its row changes, in order.
    pub changes: Vec<RowChange>,
    /// Tables it truncated.
    pub truncated: Vec<String>,
}

/// Where the stream connects (from a `postgres://` URL).
#[derive(Debug, Clone)]
struct Source {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
}

impl Source {
    fn parse(url: &str) -> Result<Self, StreamError> {
        let parsed = url::Url::parse(url).map_err(|e| StreamError::Url(e.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(StreamError::Url("not a postgres:// URL".into()));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Ok(Self {
            host: parsed.host_str().unwrap_or("localhost").to_owned(),
            port: parsed.port().unwrap_or(5432),
            user: decode(parsed.username()),
            password: decode(parsed.password().unwrap_or_default()),
            database: decode(parsed.path().trim_start_matches('/')),
        })
    }
}

/// The committed transactions of a slot, one at a time.
pub struct ChangeStream {
    client: ReplicationClient,
    relations: HashMap<u32, Arc<Relation>>,
    /// Transactions ending at or before this are stored already and skipped.
    from: Lsn,
    /// The transaction being read.
    current: Option<Transaction>,
    /// The end of the last transaction handed out.
    handed_out: Lsn,
    /// The furthest position confirmed.
    confirmed: Lsn,
}

/// How long opening a stream waits for the slot's previous holder to let go.
const HOLDER_WAIT: Duration = Duration::from_secs(10);

impl ChangeStream {
    /// Streams `slot` (which must exist) for `publication` from the database at `url`: the
    /// transactions that commit at or after `from` (the end of the last one stored), or from
    /// the slot's confirmed position when that is later. A slot its previous stream has not
    /// yet let go of (its server process exits a moment after the connection closed) is
    /// waited for, up to ten seconds.
    pub async fn open(
        url: &str,
        slot: &str,
        publication: &str,
        from: Lsn,
    ) -> Result<Self, StreamError> {
        let source = Source::parse(url)?;
        let config = ReplicationConfig::new(
            source.host,
            source.user,
            source.password,
            source.database,
            slot,
            publication,
        )
        .with_port(source.port)
        .with_tls(TlsConfig::disabled())
        .with_start_lsn(WireLsn(from.0))
        .with_status_interval(Duration::from_millis(500))
        .with_application_name("tally-analytics");
        let deadline = tokio::time::Instant::now() + HOLDER_WAIT;
        loop {
            let mut client = ReplicationClient::connect(config.clone()).await?;
            match client.wait_started().await {
                Ok(()) => {
                    return Ok(Self {
                        client,
                        relations: HashMap::new(),
                        from,
                        current: None,
                        handed_out: from,
                        confirmed: from,
                    });
                }
                Err(PgWireError::Server(message))
                    if message.contains("is active for PID")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next committed transaction with published changes that ends after the position the
    /// stream was opened from; `None` once the stream ended. Cancel-safe: a transaction half
    /// read when the future is dropped goes on with the next call. While every transaction
    /// handed out is confirmed, the server's keepalives are confirmed too, so a slot whose
    /// tables see no writes never holds back the WAL of others.
    pub async fn next(&mut self) -> Result<Option<Transaction>, StreamError> {
        while let Some(event) = self.client.recv().await? {
            match event {
                ReplicationEvent::Begin {
                    commit_time_micros, ..
                } => {
                    self.current = Some(Transaction {
                        commit_lsn: Lsn(0),
                        end_lsn: Lsn(0),
                        commit_time: commit_time_micros,
                        changes: Vec::new(),
                        truncated: Vec::new(),
                    });
                }
                ReplicationEvent::XLogData { data, .. } => {
                    let message = pgoutput::decode(&data)?;
                    self.apply(message)?;
                }
                ReplicationEvent::Commit {
                    lsn,
                    end_lsn,
                    commit_time_micros,
                } => {
                    if let Some(mut done) = self.current.take() {
                        done.commit_lsn = Lsn(lsn.as_u64());
                        done.end_lsn = Lsn(end_lsn.as_u64());
                        done.commit_time = commit_time_micros;
                        if done.end_lsn > self.from {
                            self.handed_out = done.end_lsn;
                            return Ok(Some(done));
                        }
                    }
                }
                ReplicationEvent::KeepAlive { wal_end, .. } => {
                    let idle = self.current.is_none() && self.confirmed >= self.handed_out;
                    if idle && Lsn(wal_end.as_u64()) > self.confirmed {
                        self.confirm(Lsn(wal_end.as_u64()));
                    }
                }
                ReplicationEvent::StoppedAt { .. } => return Ok(None),
                _ => {}
            }
        }
        Ok(None)
    }

    /// Folds one decoded message into the transaction being read. Begin and commit never come
    /// here: the client hands them over as its own boundary events (above).
    fn apply(&mut self, message: Message) -> Result<(), StreamError> {
        let current = self.current.as_mut();
        let (relation, op, values) = match message {
            Message::Relation(r) => {
                self.relations.insert(r.oid, Arc::new(r));
                return Ok(());
            }
            Message::Truncate { relations, .. } => {
                if let Some(tx) = current {
                    for oid in relations {
                        let table = self
                            .relations
                            .get(&oid)
                            .ok_or(StreamError::UnknownRelation(oid))?;
                        tx.truncated.push(table.name.clone());
                    }
                }
                return Ok(());
            }
            Message::Insert { relation, new } => (relation, Op::Insert, new),
            Message::Update { relation, old, new } => {
                (relation, Op::Update, fill_unchanged(new, old))
            }
            Message::Delete {
                relation,
                old: (_, old),
            } => (relation, Op::Delete, old),
            Message::Begin { .. }
            | Message::Commit { .. }
            | Message::Origin { .. }
            | Message::Type { .. }
            | Message::Logical { .. } => return Ok(()),
        };
        let table = self
            .relations
            .get(&relation)
            .ok_or(StreamError::UnknownRelation(relation))?;
        if let Some(tx) = current {
            let ordinal = u32::try_from(tx.changes.len()).unwrap_or(u32::MAX);
            tx.changes.push(RowChange {
                table: table.name.clone(),
                relation: table.clone(),
                op,
                ordinal,
                values: table
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .zip(values)
                    .collect(),
            });
        }
        Ok(())
    }

    /// Tells the slot that everything up to `end_lsn` is stored: its WAL may go, and a stream
    /// opened later starts after it.
    pub fn confirm(&mut self, end_lsn: Lsn) {
        self.confirmed = self.confirmed.max(end_lsn);
        self.client.update_applied_lsn(WireLsn(end_lsn.0));
    }

    /// Sends the last confirmation and closes the connection.
    pub async fn close(mut self) -> Result<(), StreamError> {
        self.client.shutdown().await?;
        Ok(())
    }
}

/// An update's new row with each unchanged TOASTed value (not sent) taken from the old row,
/// which a FULL replica identity carries whole: a destination never sees a NULL that was not.
fn fill_unchanged(new: Vec<Value>, old: Option<(pgoutput::OldRow, Vec<Value>)>) -> Vec<Value> {
    let Some((pgoutput::OldRow::Full, old)) = old else {
        return new;
    };
    new.into_iter()
        .zip(old.into_iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(value, was)| match (value, was) {
            (Value::Unchanged, Some(was @ Value::Text(_) | was @ Value::Binary(_))) => was,
            (value, _) => value,
        })
        .collect()
}
