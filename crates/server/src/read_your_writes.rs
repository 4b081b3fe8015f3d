//! Read-your-writes with replicas: after a request that may write, its caller's reads stay on
//! the primary until a replica has replayed past the moment it ended (see
//! [`tally_core::replicas`]).

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use tally_core::{gateway::bearer_token, replicas::writer_key};

use crate::app::AppState;

/// Middleware: notes the caller of every request that may write, once it has been answered.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.reads().has_replicas() || !may_write(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let claims = bearer_token(request.headers()).and_then(|t| state.keys().verify(t).ok());
    let key = writer_key(claims.as_ref().and_then(|c| c.sub()));
    let response = next.run(request).await;
    state.reads().wrote(&key);
    response
}

/// Whether a request may write: any but GET, HEAD and OPTIONS, except the functions that only
/// read.
pub(crate) fn may_write(method: &Method, path: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    !path
        .strip_prefix("/functions/v1/")
        .is_some_and(tally_functions::registry::only_reads)
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::may_write;

    #[test]
    fn reads_are_gets_and_the_functions_that_only_read() {
        assert!(!may_write(&Method::GET, "/rest/v1/time_logs"));
        assert!(!may_write(&Method::HEAD, "/rest/v1/time_logs"));
        assert!(!may_write(&Method::POST, "/functions/v1/sync-pull"));
        assert!(!may_write(&Method::POST, "/functions/v1/sync.pull"));
        assert!(may_write(&Method::POST, "/functions/v1/sync-push"));
        assert!(may_write(&Method::POST, "/rest/v1/time_logs"));
        assert!(may_write(&Method::PATCH, "/rest/v1/time_logs"));
        assert!(may_write(&Method::POST, "/auth/v1/token"));
        assert!(may_write(&Method::POST, "/rest/v1/rpc/anything"));
    }
}
