//! Test-only helpers.
//!
//! - One embedded PostgreSQL cluster per test run, under `target/tally-test`, started by the
//!   first test process that needs it and reused by the others (`tally db stop` with
//!   `TALLY_DATA_DIR=target/tally-test` stops it; the test script does).
//! - A template database migrated once per set of migrations; each test gets its own
//!   database cloned from it ([`TestDb`]), dropped when the test ends.
//! - [`TestApp`]: the real server on a free port over a [`TestDb`].
//! - [`compat`]: the official-client suites of `tests/compat` (supabase-js, supabase-py).
//! - [`ScratchCluster`]: a throwaway cluster of its own, for benches comparing server settings.
//! - [`ServerProcess`]: a release `tally serve` as a process of its own, for benches.
//! - [`S3Server`]: a real S3-compatible server (s3rver) on loopback.
//! - [`Fixture`]: two orgs with a person in each role, loaded into a test's database.
//! - [`memory`] and [`latency`]: the process's memory and latency percentiles, for benchmarks.
//! - [`generated`] and [`rest_requests`]: generated input (any JSON, PostgREST requests) for
//!   property tests.

mod clickhouse;
mod cluster;
pub mod compat;
mod fixture;
pub mod generated;
pub mod latency;
pub mod memory;
pub mod ports;
pub mod rest_requests;
mod s3;
mod scratch_cluster;
mod server_process;
mod test_app;
mod test_db;

pub use clickhouse::ClickHouseServer;
pub use fixture::Fixture;
pub use s3::S3Server;
pub use scratch_cluster::ScratchCluster;
pub use server_process::ServerProcess;
pub use test_app::TestApp;
pub use test_db::TestDb;

/// A 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The JWT secret every test server uses.
pub const TEST_JWT_SECRET: &str = "tally-test-secret-that-is-long-enough-0123456789";
