//! `/rest/v1`: a PostgREST-compatible data API, generic over the database schema.
//!
//! Nothing is written per table and nothing here decides who sees what: every request is
//! parsed ([`request`]), planned against the [`schema`] cache and built into ONE SQL statement
//! ([`query`]), run in the caller's transaction with their role and claims ([`execute`]) —
//! where row-level security decides — and shaped into PostgREST's response ([`response`]).
//! Errors are PostgREST's ([`error`]). [`openapi`] describes the tables and functions from the
//! same cache.

pub mod error;
pub mod execute;
pub mod handler;
pub mod openapi;
pub mod query;
pub mod request;
pub mod response;
pub mod schema;
pub mod state;

use axum::{Router, extract::DefaultBodyLimit, middleware::from_fn_with_state, routing::any};
use tally_core::gateway::require_apikey;

pub use state::{Features, RestState};

/// The `/rest/v1` routes (every one needs the `apikey`).
pub fn router(state: RestState) -> Router {
    let keys = state.keys().clone();
    Router::new()
        .route("/{*path}", any(handler::handle))
        .layer(DefaultBodyLimit::max(handler::MAX_BODY + 1))
        .layer(from_fn_with_state(keys, require_apikey))
        .with_state(state)
}
