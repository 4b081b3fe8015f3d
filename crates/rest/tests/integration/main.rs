//! `/rest/v1` over real HTTP against a real database: a fixture schema of our own (one-to-many,
//! many-to-one, many-to-many, a view, functions, arrays, jsonb) for the features and status
//! codes, and Tally's own schema for row-level security across orgs and roles.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any surprise")]

mod compat;
mod fixture;
mod generated;
mod reads;
mod rls;
mod rpc;
mod writes;
