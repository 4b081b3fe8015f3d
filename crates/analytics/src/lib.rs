//! Analytics phase 2: the changes of the `tally_analytics` publication, as a logical
//! replication slot streams them (pgoutput), for the warehouse and the lake PostgreSQL feeds.
//! [`pgoutput`]: the stream's messages, decoded; [`stream`]: a slot's committed transactions
//! over the replication protocol, confirmed once stored; [`slot`]: slots over SQL;
//! [`schema`] and [`backfill`]: the initial copy at version 0; [`lake`]: Parquet change-log
//! files in the object store; [`clickhouse`]: ReplacingMergeTree tables over HTTP;
//! [`progress`]: where each destination stands; [`replicator`]:
//! one destination fed from its own slot, resumable, back-pressured.

pub mod backfill;
pub mod clickhouse;
pub mod lake;
pub mod pgoutput;
pub mod progress;
pub mod replicator;
pub mod schema;
pub mod slot;
pub mod stream;
