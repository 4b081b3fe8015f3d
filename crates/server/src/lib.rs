//! The `tally` binary's library: the CLI, the embedded PostgreSQL, and the HTTP server that
//! wires every service together.
//!
//! - [`cli`]: `tally serve | migrate | keys | db | …`; [`signing_key_commands`]: `tally
//!   signing-keys`.
//! - [`embedded`]: the private PostgreSQL cluster used when no `DATABASE_URL` is given.
//! - [`database`]: which database to use, and bringing it up to date.
//! - [`app`]: the shared state; [`router`]: the routes and layers; [`health`]: `GET /health`;
//!   [`metrics`]: `GET /metrics`; [`web`]: the web app at `/`; [`read_your_writes`]: who
//!   just wrote, so that replicas never serve them a stale read; [`api_tokens`]: personal API
//!   tokens at the door, [`token_limits`] their rate limits.
//! - [`openapi`]: `GET /openapi.json`, the services' parts put together; [`refusals`]: the
//!   framework's refusals in each service's error shape; [`bare_refusals`]: those hyper writes
//!   itself, given the same shape.
//! - [`serve`]: binding, serving and graceful shutdown; [`connections`]: HTTP connections
//!   under a cap and time-outs.
//! - [`models`]: the model files fetched from PyPI (whisper's converted by `tally_ai::ggml`).
//! - [`analytics`]: analytics phase 2 — the replicators serve and worker run, their slots
//!   dropped when it is off, `tally analytics status`.

pub mod access;
pub mod analytics;
pub mod api_tokens;
pub mod app;
pub mod bare_refusals;
pub mod cli;
pub mod connections;
pub mod database;
pub mod demo;
pub mod embedded;
pub mod eval;
pub mod health;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod read_your_writes;
pub mod refusals;
pub mod router;
pub mod serve;
pub mod signing_key_commands;
pub mod token_limits;
pub mod web;
pub mod wheel;
pub mod workers;
