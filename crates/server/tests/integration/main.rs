//! The server crate's integration tests: one binary, one module per area. Every test runs
//! against a real PostgreSQL (the embedded test cluster) in a database of its own.

mod api_tokens;
mod cli;
mod compat_py;
mod constraints;
mod demo;
mod docs;
mod embedded;
mod eval;
mod fixture;
mod health;
mod jobs;
mod layout;
mod metrics;
mod mfa;
mod openapi;
mod refusals;
mod replicas;
mod request_tx;
mod rls_matrix;
mod rls_plans;
mod schema;
mod signing_keys;
mod web;
mod web_e2e;
