//! The web app at `/`: the built files of `web/` (`TALLY_WEB_DIR`, default `web/dist`), for
//! every GET that no service or server route takes. Hashed assets (`/assets/…`) are cached for
//! a year as immutable; everything else — `index.html`, the service worker, the manifest — is
//! revalidated on every load (`no-cache`), so a new build reaches people on their next visit.
//! Text files go out compressed (brotli or gzip, made at build time) to browsers that accept it.
//! A page route of the app (`/week`, `/admin`) that is no file answers `index.html`, for a
//! browser asking for HTML. With no build, `/` says how to make one and the API serves as ever.
//! `/app-config.json` tells the app what it may know of this Tally: the anon key (never the
//! service key) and the review threshold — so one build serves any Tally.

use std::path::PathBuf;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tower::ServiceExt;

use crate::app::AppState;
use tower_http::services::{ServeDir, ServeFile};

/// How to build the app, for `/` when there is no build.
pub const NOT_BUILT: &str = "The web app is not built here: `./scripts/run` builds it \
     (or `npm ci --prefix web && npm run build --prefix web`); the API is at /auth/v1, \
     /rest/v1, /storage/v1, /realtime/v1 and /functions/v1";

/// Where the built app lives.
#[derive(Clone)]
pub struct Web {
    dir: PathBuf,
}

impl Web {
    /// The app built into `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

/// `GET /app-config.json`: what the web app and other front ends need to talk to this Tally.
pub async fn app_config(State(state): State<AppState>) -> Response {
    let body = json!({
        "anon_key": state.keys().anon_key(),
        // As written in the settings (an f32 widened keeps its binary tail: 0.6000000238).
        "review_threshold": (f64::from(state.config().ai.ai_review_threshold) * 1e4).round() / 1e4,
    });
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        axum::Json(body),
    )
        .into_response()
}

/// Paths the app never answers: the services' and the server's own.
const NOT_THE_APP: [&str; 8] = [
    "/auth/",
    "/rest/",
    "/storage/",
    "/realtime/",
    "/functions/",
    "/health",
    "/metrics",
    "/openapi.json",
];

/// The router's fallback: a file of the build, the app's page for a page route, or the plain
/// 404 the refusals layer shapes.
pub async fn fallback(State(web): State<Web>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if !matches!(method, Method::GET | Method::HEAD)
        || NOT_THE_APP.iter().any(|p| path.starts_with(p))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let index = web.dir.join("index.html");
    if !index.is_file() {
        return if path == "/" {
            (StatusCode::NOT_FOUND, NOT_BUILT).into_response()
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    }
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let headers = request.headers().clone();
    // The build ships each text file gzipped and brotli'd beside itself (vite.config.ts): the
    // smaller one a browser accepts is sent, with `Vary: Accept-Encoding`.
    let files = ServeDir::new(&web.dir)
        .precompressed_br()
        .precompressed_gzip();
    let served = match files.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    let response = if served.status() == StatusCode::NOT_FOUND && wants_html {
        let mut page = Request::new(Body::empty());
        *page.method_mut() = method;
        *page.headers_mut() = headers;
        match ServeFile::new(index)
            .precompressed_br()
            .precompressed_gzip()
            .oneshot(page)
            .await
        {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        }
    } else {
        served
    };
    cached(&path, response)
}

/// Sets how long a browser may keep `response` of `path`.
fn cached(path: &str, mut response: Response) -> Response {
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let policy = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    } else if response.status() == StatusCode::NOT_FOUND {
        // The refusals layer shapes a plain 404.
        return StatusCode::NOT_FOUND.into_response();
    }
    response
}
