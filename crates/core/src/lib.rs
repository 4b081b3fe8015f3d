//! Tally's core: what every service shares.
//!
//! - [`api_token`]: personal API tokens (their shape, hash and scopes).
//! - [`config`]: settings from `TALLY_*`/`DATABASE_URL` over `tally.toml` over defaults,
//!   and the project's JWT secret.
//! - [`jwt`]: signing and verification, the anon and service_role keys;
//!   [`signing_keys`]: the asymmetric keys that sign sessions' tokens, their JWKS and reload.
//! - [`db`]: the owner and request pools, migrations, the request role's password.
//! - [`replicas`]: reads on streaming replicas, with read-your-writes.
//! - [`request`]: the per-request transaction that runs work as the caller (role + claims),
//!   which is how every service lets row-level security decide.
//! - [`error`]: the core error type; [`failure`]: what a database error means for the
//!   caller (bad data 400, unavailable 503), for every service alike.
//! - [`openapi`]: how each service describes its operations for `/openapi.json`.
//! - [`urls`]: percent-encoding of URL components.

pub mod api_token;
pub mod config;
pub mod db;
pub mod error;
pub mod failure;
pub mod gateway;
pub mod jwt;
pub mod openapi;
pub mod replicas;
pub mod request;
pub mod signing_keys;
pub mod urls;

/// A service's background loop (a listener, a sender), started and stopped by the server.
pub type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

pub use config::Config;
pub use error::Error;
pub use jwt::{Claims, JwtError, JwtKeys};
pub use request::{DbRole, RequestContext};
