//! Analytics phase 2: the changes of the `tally_analytics` publication, as a logical
//! replication slot streams them (pgoutput), for the warehouse and the lake PostgreSQL feeds.
//! [`pgoutput`]: the stream's messages, decoded; [`stream`]: a slot's committed transactions
//! over the replication protocol, confirmed once stored.

pub mod pgoutput;
pub mod slot;
pub mod stream;
