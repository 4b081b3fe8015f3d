//! `GET /openapi.json`: the whole API in OpenAPI 3.1 — each service's part nested under its
//! prefix, the REST part generated from the live schema cache (so it follows migrations), and
//! the two credentials every Supabase client sends.

use axum::{Json, extract::State};
use tally_core::openapi::{APIKEY, BEARER};
use utoipa::openapi::{
    ComponentsBuilder, Content, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, PathItem,
    PathsBuilder, ResponseBuilder, Schema, Server,
    path::OperationBuilder,
    security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    },
    tag::TagBuilder,
};

use crate::app::AppState;

/// Serves the document.
pub async fn openapi(State(state): State<AppState>) -> Json<OpenApi> {
    Json(document(&state))
}

/// The document, as of the schema cache's current state.
pub fn document(state: &AppState) -> OpenApi {
    let rest = state.rest();
    let schema = rest.schemas().first().map_or("public", String::as_str);
    let tag = |name: &str, text: &str| TagBuilder::new().name(name).description(Some(text)).build();
    let components = ComponentsBuilder::new()
        .security_scheme(
            APIKEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("apikey"))),
        )
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A user's access token, or the anon or service_role key",
                    ))
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tally")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A Supabase-compatible API for time tracking: the official Supabase clients work against it unchanged. Send the project's anon or service_role key as `apikey`, and a user's access token as `Authorization: Bearer`.",
                ))
                .build(),
        )
        .servers(state.config().api_external_url.as_deref().map(|url| vec![Server::new(url)]))
        .tags(Some([
            tag("auth", "Sign-up, sign-in and sessions (GoTrue-compatible)"),
            tag("rest", "Tables, views and functions of the database (PostgREST-compatible); row-level security decides what each caller sees"),
            tag("storage", "Buckets and files behind signed URLs (Supabase Storage-compatible)"),
            tag("realtime", "Database changes, broadcast and presence over a websocket"),
            tag("functions", "Tally's functions: logging work, classification, sync, exports, webhooks"),
            tag("server", "Health and metrics"),
        ]))
        .components(Some(components))
        .paths(
            PathsBuilder::new()
                .path("/health", plain("server_get_health", "The server's and the database's health", "application/json", "`{status, database, version}`; 503 when the database does not answer"))
                .path("/metrics", metrics()),
        )
        .build()
        .nest("/auth/v1", tally_auth::openapi::openapi())
        .nest("/rest/v1", tally_rest::openapi::openapi(&rest.cache(), schema))
        .nest("/storage/v1", tally_storage::openapi::openapi())
        .nest("/realtime/v1", tally_realtime::openapi::openapi())
        .nest("/functions/v1", tally_functions::openapi::openapi())
}

/// A GET of the server's own that needs no credentials.
fn plain(id: &str, summary: &str, content_type: &str, answer: &str) -> PathItem {
    PathItem::new(
        HttpMethod::Get,
        get(id, summary, content_type, answer).build(),
    )
}

/// `GET /metrics`: for the service_role key (as a bearer token, or Basic `service_role:<key>`).
fn metrics() -> PathItem {
    let operation = get(
        "server_get_metrics",
        "Prometheus metrics, for the service_role key",
        "text/plain",
        "The text exposition format",
    )
    .securities(Some([SecurityRequirement::new(
        BEARER,
        Vec::<String>::new(),
    )]))
    .response(
        "401",
        ResponseBuilder::new()
            .description("Without the service_role key")
            .build(),
    );
    PathItem::new(HttpMethod::Get, operation.build())
}

fn get(id: &str, summary: &str, content_type: &str, answer: &str) -> OperationBuilder {
    OperationBuilder::new()
        .tag("server")
        .operation_id(Some(id))
        .summary(Some(summary))
        .response(
            "200",
            ResponseBuilder::new()
                .description(answer)
                .content(content_type, Content::new(None::<Schema>))
                .build(),
        )
}
