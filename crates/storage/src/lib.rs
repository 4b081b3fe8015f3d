//! `/storage/v1`: Supabase Storage's API, so storage-js and storage3 work unchanged.
//!
//! Buckets and objects are rows in `storage.buckets` / `storage.objects` under forced RLS; every
//! operation runs in the caller's transaction and the policies decide (the migration says who
//! may do what). The bytes live in an `object_store` backend ([`backend`]: local files by
//! default, S3-compatible by config) under `{bucket}/{name}/{version}`. Signed URLs are tokens
//! signed with the project's secret over path, operation and expiry ([`token`]). Uploads are
//! streamed: in the buckets Tally reads, type sniffed from the first bytes; size enforced as
//! they arrive ([`write`]); large files may also come in pieces over the tus protocol
//! (`/upload/resumable`). Images are resized and re-encoded on request ([`transform`],
//! `/render/image/…`).
//!
//! Its doors for other services: [`StorageState::sign_upload`] (used by `upload-presign`),
//! [`StorageState::put_stream`] and [`StorageState::sign_download`] (files the server makes:
//! exports). [`openapi`] describes the routes for `/openapi.json`.

pub mod backend;
mod buckets;
mod download;
pub mod error;
mod listing;
pub mod names;
mod objects;
pub mod openapi;
mod render;
mod resumable;
mod rows;
pub mod sniff;
mod state;
pub mod token;
pub mod transform;
mod upload;
pub mod write;

use std::collections::HashMap;

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, Method},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use backend::Backend;
pub use error::{StorageError, StorageResult};
pub use state::{Declared, SignedUpload, StorageState};

use crate::{
    download::Options,
    objects::Relocation,
    token::Scope,
    upload::{Uploaded, Writer},
};

/// JSON bodies larger than this are refused.
const MAX_JSON_BODY: usize = 1024 * 1024;

/// The `/storage/v1` router.
pub fn router(state: StorageState) -> Router {
    Router::new()
        .route("/bucket", get(bucket_list).post(bucket_create))
        .route(
            "/bucket/{id}",
            get(bucket_get).put(bucket_update).delete(bucket_delete),
        )
        .route("/bucket/{id}/empty", post(bucket_empty))
        .route("/object/{*path}", any(object))
        .route("/render/image/{*path}", get(render_image))
        .route("/upload/resumable", any(resumable_upload))
        .route("/upload/resumable/{id}", any(resumable_part))
        .with_state(state)
}

fn answer(result: StorageResult<Value>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn json_body<T: DeserializeOwned>(body: Body) -> StorageResult<T> {
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|_| StorageError::invalid("The body is larger than 1 MiB or was cut off"))?;
    let bytes = if bytes.is_empty() {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(bytes).map_err(|e| StorageError::invalid(format!("Invalid body: {e}")))
}

async fn bucket_list(State(state): State<StorageState>, headers: HeaderMap) -> Response {
    answer(
        async {
            let ctx = state.caller(&headers, "GET", "/bucket").await?;
            buckets::list(&state, &ctx).await
        }
        .await,
    )
}

async fn bucket_get(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            let ctx = state.caller(&headers, "GET", "/bucket").await?;
            buckets::get(&state, &ctx, &id).await
        }
        .await,
    )
}

async fn bucket_create(
    State(state): State<StorageState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        async {
            let ctx = state.caller(&headers, "POST", "/bucket").await?;
            buckets::create(&state, &ctx, &json_body(body).await?).await
        }
        .await,
    )
}

async fn bucket_update(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        async {
            let ctx = state.caller(&headers, "PUT", "/bucket").await?;
            buckets::update(&state, &ctx, &id, &json_body(body).await?).await
        }
        .await,
    )
}

async fn bucket_empty(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            let ctx = state.caller(&headers, "POST", "/bucket").await?;
            buckets::empty(&state, &ctx, &id).await
        }
        .await,
    )
}

async fn bucket_delete(
    State(state): State<StorageState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            let ctx = state.caller(&headers, "DELETE", "/bucket").await?;
            buckets::delete(&state, &ctx, &id).await
        }
        .await,
    )
}

async fn object(
    State(state): State<StorageState>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let sends_body = matches!(method, Method::POST | Method::PUT);
    match dispatch(&state, &method, &path, &query, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = e.into_response();
            // An upload refused before its body was read to the end: the connection cannot be
            // reused, and saying so keeps clients from sending the next request down it.
            if sends_body {
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            response
        }
    }
}

/// `GET /render/image/…`: an image transformed.
async fn render_image(
    State(state): State<StorageState>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match render::render(&state, &path, &query, &headers).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// `POST|OPTIONS /upload/resumable`: a resumable (tus) upload starts.
async fn resumable_upload(
    State(state): State<StorageState>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    resumable::handle(&state, &method, None, &headers, body).await
}

/// `HEAD|PATCH|DELETE /upload/resumable/{id}`: a resumable upload goes on.
async fn resumable_part(
    State(state): State<StorageState>,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    resumable::handle(&state, &method, Some(&id), &headers, body).await
}

fn uploaded(u: Uploaded) -> Response {
    Json(json!({"Id": u.id, "Key": u.key})).into_response()
}

/// Routes `/object/…` by its first segment, as Supabase Storage lays them out.
async fn dispatch(
    state: &StorageState,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> StorageResult<Response> {
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    let route = format!("/object/{path}");
    let caller = || state.caller(headers, method.as_str(), &route);
    let options = || Options {
        head_only: method == Method::HEAD,
        download: query.get("download").cloned(),
        redirect: false,
    };
    let token = || {
        query
            .get("token")
            .map(String::as_str)
            .ok_or_else(|| StorageError::invalid("querystring must have required property 'token'"))
    };
    match (method.clone(), first) {
        (Method::POST, "list") => {
            let bucket = names::bucket_id(rest)?;
            let ctx = caller().await?;
            let listed = listing::list(state, &ctx, &bucket, json_body(body).await?).await?;
            Ok(Json(listed).into_response())
        }
        (Method::POST, "list-v2") => {
            let bucket = names::bucket_id(rest)?;
            let ctx = caller().await?;
            let listed = listing::list_v2(state, &ctx, &bucket, json_body(body).await?).await?;
            Ok(Json(listed).into_response())
        }
        (Method::POST, "move" | "copy") if rest.is_empty() => {
            let how = if first == "move" {
                Relocation::Move
            } else {
                Relocation::Copy
            };
            let ctx = caller().await?;
            let moved = objects::relocate(state, &ctx, json_body(body).await?, how).await?;
            Ok(Json(moved).into_response())
        }
        (Method::POST, "sign") if !rest.contains('/') => {
            let bucket = names::bucket_id(rest)?;
            let ctx = caller().await?;
            let signed = objects::sign_many(state, &ctx, &bucket, &json_body(body).await?).await?;
            Ok(Json(signed).into_response())
        }
        (Method::POST, "sign") => {
            let (bucket, name) = names::bucket_and_name(rest)?;
            let ctx = caller().await?;
            let body: Value = json_body(body).await?;
            let signed = objects::sign_one(state, &ctx, &bucket, &name, &body).await?;
            Ok(Json(signed).into_response())
        }
        (Method::GET | Method::HEAD, "sign") => {
            let (bucket, name) = names::bucket_and_name(rest)?;
            let grant = token::verify(state.keys(), token()?, Scope::Download, &bucket, &name)?;
            // A transformed image's token opens its rendering only (`/render/image/sign/…`).
            if grant.transform.is_some() {
                return Err(StorageError::new(
                    400,
                    "InvalidSignature",
                    "Unauthorized",
                    "The token is for the transformed image",
                ));
            }
            let ctx = tally_core::RequestContext::service();
            let options = Options {
                redirect: true,
                ..options()
            };
            download::download(state, &ctx, &bucket, &name, &options).await
        }
        (Method::POST, "upload") if rest.starts_with("sign/") => {
            let (bucket, name) = names::bucket_and_name(&rest["sign/".len()..])?;
            let ctx = caller().await?;
            let upsert = header_flag(headers, "x-upsert");
            let mut tx = ctx.begin(state.pool()).await?;
            let signed = state
                .sign_upload(&mut tx, ctx.user_id(), &bucket, &name, upsert, None)
                .await?;
            tx.rollback().await?;
            Ok(Json(json!({"url": signed.url, "token": signed.token})).into_response())
        }
        (Method::PUT, "upload") if rest.starts_with("sign/") => {
            let (bucket, name) = names::bucket_and_name(&rest["sign/".len()..])?;
            let grant = token::verify(state.keys(), token()?, Scope::Upload, &bucket, &name)?;
            let writer = Writer::signed(grant.owner);
            let done =
                upload::upload(state, writer, &bucket, &name, grant.upsert, headers, body).await?;
            Ok(Json(json!({"Key": done.key, "Id": done.id})).into_response())
        }
        (Method::GET, "info") => {
            let rest = rest.strip_prefix("authenticated/").unwrap_or(rest);
            let (bucket, name) = names::bucket_and_name(rest)?;
            let ctx = caller().await?;
            Ok(Json(objects::info(state, &ctx, &bucket, &name).await?).into_response())
        }
        (Method::GET | Method::HEAD, "authenticated") => {
            let (bucket, name) = names::bucket_and_name(rest)?;
            let ctx = caller().await?;
            download::download(state, &ctx, &bucket, &name, &options()).await
        }
        (Method::GET | Method::HEAD, "public") => {
            let (bucket, name) = names::bucket_and_name(rest)?;
            download::public(state, &bucket, &name, &options()).await
        }
        (Method::POST | Method::PUT, _) => {
            let (bucket, name) = names::bucket_and_name(path)?;
            let ctx = caller().await?;
            let upsert = *method == Method::PUT || header_flag(headers, "x-upsert");
            let done = upload::upload(
                state,
                Writer::caller(ctx),
                &bucket,
                &name,
                upsert,
                headers,
                body,
            )
            .await?;
            Ok(uploaded(done))
        }
        (Method::GET | Method::HEAD, _) => {
            let (bucket, name) = names::bucket_and_name(path)?;
            let ctx = caller().await?;
            download::download(state, &ctx, &bucket, &name, &options()).await
        }
        (Method::DELETE, _) if rest.is_empty() => {
            let bucket = names::bucket_id(first)?;
            let ctx = caller().await?;
            let body: Value = json_body(body).await?;
            let prefixes: Vec<String> = body
                .get("prefixes")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    StorageError::invalid("body must have required property 'prefixes'")
                })?
                .iter()
                .filter_map(Value::as_str)
                .map(names::object_name)
                .collect::<StorageResult<_>>()?;
            Ok(Json(objects::remove(state, &ctx, &bucket, &prefixes).await?).into_response())
        }
        (Method::DELETE, _) => {
            let (bucket, name) = names::bucket_and_name(path)?;
            let ctx = caller().await?;
            let removed = objects::remove(state, &ctx, &bucket, &[name]).await?;
            if removed.as_array().is_none_or(Vec::is_empty) {
                return Err(StorageError::no_such_key());
            }
            Ok(Json(json!({"message": "Successfully deleted"})).into_response())
        }
        _ => Err(StorageError::new(
            405,
            "InvalidRequest",
            "Method Not Allowed",
            format!("{method} is not allowed on /object/{path}"),
        )),
    }
}

fn header_flag(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}
