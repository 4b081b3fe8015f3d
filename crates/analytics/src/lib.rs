//! Analytics phase 2: the changes of the `tally_analytics` publication, as a logical
//! replication slot streams them (pgoutput), for the warehouse and the lake PostgreSQL feeds.
//! [`pgoutput`]: the stream's messages, decoded.

pub mod pgoutput;
