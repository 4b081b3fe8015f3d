//! Refusals the framework makes before a service's handler runs (no route 404, 405, a body
//! over the limit 413, a body too slow 408, a URI or headers too large 414/431) answered in
//! the error shape of the service the path belongs to, as a Supabase client parses it.

use axum::{
    Json,
    extract::Request,
    http::{Method, StatusCode, header::CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// The longest request target (path and query) served; longer ones are 414.
pub const MAX_URI: usize = 32 * 1024;
/// The most header bytes (names and values) served; more is 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The message of the router's 404: no route for the path.
pub const NO_ROUTE: &str = "No route matches this path";
/// The message of the router's 405: the path is routed for other methods.
pub const NO_METHOD: &str = "This method is not allowed on this path";
/// The most of a plain-text refusal kept as its message.
const MAX_MESSAGE: usize = 512;

/// Middleware: refuses oversized URIs and headers, and gives framework refusals without a JSON
/// body the shape of their service's errors. Answers to HEAD keep their empty body.
pub async fn shape(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        return refusal(
            &path,
            StatusCode::URI_TOO_LONG,
            &format!("The request URI is longer than {MAX_URI} bytes"),
        );
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return refusal(
            &path,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("The request headers are larger than {MAX_HEADER_BYTES} bytes"),
        );
    }
    let head = request.method() == Method::HEAD;
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    if head || json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), MAX_MESSAGE * 4)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match text.char_indices().nth(MAX_MESSAGE) {
        _ if text.is_empty() => default_message(status),
        Some((end, _)) => text[..end].to_owned(),
        None => text,
    };
    refusal(&path, status, &message)
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => NO_ROUTE.to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => NO_METHOD.to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("The request was refused")
            .to_owned(),
    }
}

/// A refusal of `status` with `message` in the shape of the service that owns `path`.
pub fn refusal(path: &str, status: StatusCode, message: &str) -> Response {
    let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match service {
        "auth" => {
            tally_auth::error::AuthError::new(status, auth_code(status), message).into_response()
        }
        "rest" => {
            let code = match status {
                StatusCode::NOT_FOUND => "PGRST125".to_owned(),
                StatusCode::METHOD_NOT_ALLOWED => "PGRST117".to_owned(),
                other => other.as_str().to_owned(),
            };
            tally_rest::error::RestError::new(status, &code, message).into_response()
        }
        "storage" => {
            let (code, error) = storage_code(status);
            tally_storage::StorageError::new(status.as_u16(), code, error, message).into_response()
        }
        "functions" => {
            tally_functions::FnError::new(status, functions_code(status), message).into_response()
        }
        "realtime" => (status, Json(json!({ "error": message }))).into_response(),
        _ => (status, Json(json!({ "message": message }))).into_response(),
    }
}

fn auth_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
        StatusCode::URI_TOO_LONG => "request_uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "request_headers_too_large",
        s if s.is_server_error() => "unexpected_failure",
        _ => "validation_failed",
    }
}

fn storage_code(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("NotFound", "not_found"),
        StatusCode::PAYLOAD_TOO_LARGE => ("EntityTooLarge", "Payload too large"),
        s if s.is_server_error() => ("InternalError", "internal"),
        _ => ("InvalidRequest", "Bad Request"),
    }
}

fn functions_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("a body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn each_service_gets_its_own_shape() {
        let rest = body(refusal("/rest/v1/x/y", StatusCode::NOT_FOUND, "m")).await;
        assert_eq!(rest["code"], "PGRST125");
        assert!(rest.get("details").is_some() && rest.get("hint").is_some());
        let auth = body(refusal(
            "/auth/v1/nope",
            StatusCode::METHOD_NOT_ALLOWED,
            "m",
        ))
        .await;
        assert_eq!(
            (&auth["code"], &auth["msg"]),
            (&json!("method_not_allowed"), &json!("m"))
        );
        let storage = body(refusal("/storage/v1/x", StatusCode::PAYLOAD_TOO_LARGE, "m")).await;
        assert_eq!(storage["statusCode"], "413");
        assert_eq!(storage["code"], "EntityTooLarge");
        let functions = body(refusal("/functions/v1/x", StatusCode::URI_TOO_LONG, "m")).await;
        assert_eq!(functions, json!({"error": "uri_too_long", "message": "m"}));
        let other = body(refusal("/nowhere", StatusCode::NOT_FOUND, "m")).await;
        assert_eq!(other, json!({"message": "m"}));
    }
}
