//! The router: every service under its prefix, the server's own routes, and the layers every
//! request passes (framework refusals in the service's shape, CORS, tracing).

use axum::{
    Router,
    http::{HeaderName, HeaderValue},
    routing::get,
};
use tower_http::{
    cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer},
    trace::TraceLayer,
};

use crate::app::AppState;

/// All routes.
pub fn router(state: AppState) -> Router {
    let auth = state.auth().clone();
    let rest = state.rest().clone();
    let functions = state.functions().clone();
    let storage = state.storage().clone();
    let realtime = state.realtime().clone();
    let cors = cors(&state.config().cors_origins);
    Router::new()
        .route("/health", get(crate::health::health))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/openapi.json", get(crate::openapi::openapi))
        .with_state(state)
        .nest("/auth/v1", tally_auth::router(auth))
        .nest("/rest/v1", tally_rest::router(rest))
        .nest("/storage/v1", tally_storage::router(storage))
        .nest("/realtime/v1", tally_realtime::router(realtime))
        .nest("/functions/v1", tally_functions::router(functions))
        .layer(axum::middleware::from_fn(crate::refusals::shape))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
}

/// CORS as Supabase answers it: the clients' headers allowed, the headers they read exposed.
fn cors(origins: &str) -> CorsLayer {
    let origin = if origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .split(',')
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(
            [
                "x-total-count",
                "link",
                "x-supabase-api-version",
                "x-sb-error-code",
                "content-range",
                "content-location",
                "range-unit",
                "location",
                "content-encoding",
                "content-type",
                "date",
                "server",
                "transfer-encoding",
                // Storage: what was applied to an image, and the tus protocol's answers.
                "x-transformations",
                "tus-resumable",
                "upload-offset",
                "upload-length",
                "upload-expires",
            ]
            .map(HeaderName::from_static),
        )
        .max_age(std::time::Duration::from_secs(86400))
}
