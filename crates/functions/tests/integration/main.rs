//! `/functions/v1` through HTTP on the real server: the log pipeline end to end, RLS, errors.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod analytics;
mod audit;
mod compat;
mod embeddings;
mod extraction;
mod generated;
mod integrations;
mod llm;
mod orgs;
mod pipeline;
mod sync;
mod timers;
mod timesheets;
mod uploads;
mod world;
