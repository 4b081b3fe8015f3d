//! Steps 2 and 3 of the pipeline: plan the parsed request against the schema cache (names
//! resolved, relationships found, columns typed) and build ONE SQL statement. Identifiers
//! come only from the schema cache and are quoted; every value is a bind parameter.

pub mod builder;
pub mod embed;
pub mod read;
pub mod rpc;
pub mod suggest;
pub mod write;

pub use builder::{Bind, CountQuery, Sql};

#[cfg(test)]
mod generated;
#[cfg(test)]
mod tests;
