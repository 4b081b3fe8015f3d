//! The analytics change stream against the real database: what a logical slot on
//! `tally_analytics` sends, decoded.

mod clickhouse;
mod lake;
mod pgoutput;
mod stream;
