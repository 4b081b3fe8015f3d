//! Test-only helpers.
//!
//! - One embedded PostgreSQL cluster per test run, under `target/tally-test`, started by the
//!   first test process that needs it and reused by the others (`tally db stop` with
//!   `TALLY_DATA_DIR=target/tally-test` stops it; the test script does).
//! - A template database migrated once per set of migrations; each test gets its own
//!   database cloned from it ([`TestDb`]), dropped when the test ends.
//! - [`TestApp`]: the real server on a free port over a [`TestDb`].
//! - [`compat`]: the official-client suites of `tests/compat` (supabase-js, supabase-py).
//! - [`S3Server`]: a real S3-compatible server (s3rver) on loopback.
//! - [`Fixture`]: two orgs with a person in each role, loaded into a test's database.
//! - [`memory`] and [`latency`]: the process's memory and latency percentiles, for benchmarks.

mod cluster;
pub mod compat;
mod fixture;
pub mod latency;
pub mod memory;
mod s3;
mod test_app;
mod test_db;

pub use fixture::Fixture;
pub use s3::S3Server;
pub use test_app::TestApp;
pub use test_db::TestDb;

/// The JWT secret every test server uses.
pub const TEST_JWT_SECRET: &str = "tally-test-secret-that-is-long-enough-0123456789";
