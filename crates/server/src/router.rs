//! The router: every service under its prefix, the server's own routes, the web app for the
//! rest, and the layers every
//! request passes (framework refusals in the service's shape, metrics, CORS, tracing with a
//! request id).

use axum::{
    Router,
    body::Body,
    http::{HeaderName, HeaderValue, Request},
    middleware::from_fn,
    routing::get,
};
use tower_http::{
    cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
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
    let web = crate::web::Web::new(state.config().web_dir.clone());
    let routed = |router: Router| router.route_layer(from_fn(crate::metrics::route));
    routed(
        Router::new()
            .route("/health", get(crate::health::health))
            .route("/openapi.json", get(crate::openapi::openapi))
            .route("/app-config.json", get(crate::web::app_config))
            .with_state(state.clone())
            .merge(crate::metrics::router(
                state.keys().clone(),
                state.pool().clone(),
            )),
    )
    .nest("/auth/v1", routed(tally_auth::router(auth)))
    .nest("/rest/v1", routed(tally_rest::router(rest)))
    .nest("/storage/v1", routed(tally_storage::router(storage)))
    .nest("/realtime/v1", routed(tally_realtime::router(realtime)))
    .nest("/functions/v1", routed(tally_functions::router(functions)))
    .fallback(move |request: Request<Body>| {
        crate::web::fallback(axum::extract::State(web.clone()), request)
    })
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::read_your_writes::track,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::api_tokens::admit,
    ))
    .layer(from_fn(crate::refusals::shape))
    .layer(from_fn(crate::metrics::track))
    .layer(cors)
    // Every line logged while a request is served carries its id: the client's
    // `x-request-id`, or one made here; the answer carries it back.
    .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
        let id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
    }))
    .layer(PropagateRequestIdLayer::new(REQUEST_ID))
    .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The header a request's id travels in.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
                "x-request-id",
            ]
            .map(HeaderName::from_static),
        )
        .max_age(std::time::Duration::from_secs(86400))
}
