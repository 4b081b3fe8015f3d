//! `GET /render/image/{authenticated|public|sign}/{bucket}/{name}`: an image object
//! transformed ([`crate::transform`]) — as the caller (RLS deciding), from a public bucket, or
//! through a signed URL whose token carries the transformation. The answer says what was
//! applied in `x-transformations`, as Supabase Storage does.

use std::collections::HashMap;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use object_store::ObjectStoreExt;
use tally_core::RequestContext;

use crate::{
    backend::key,
    error::{StorageError, StorageResult},
    names, rows,
    state::StorageState,
    token::{self, Scope},
    transform::{MAX_SOURCE_BYTES, Transform},
};

/// Renders `path` (`{authenticated|public|sign}/{bucket}/{name}`) with the query's (or the
/// signed token's) transformation.
pub async fn render(
    state: &StorageState,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> StorageResult<Response> {
    let (access, rest) = path.split_once('/').unwrap_or((path, ""));
    let (bucket, name) = names::bucket_and_name(rest)?;
    let (ctx, transform, public) = match access {
        "authenticated" => {
            let ctx = state
                .caller(headers, "GET", &format!("/render/image/{path}"))
                .await?;
            (ctx, Transform::from_query(query)?, false)
        }
        "public" => (
            RequestContext::service(),
            Transform::from_query(query)?,
            true,
        ),
        "sign" => {
            let token = query.get("token").ok_or_else(|| {
                StorageError::invalid("querystring must have required property 'token'")
            })?;
            let grant = token::verify(state.keys(), token, Scope::Download, &bucket, &name)?;
            (RequestContext::service(), grant.transform, false)
        }
        _ => {
            return Err(StorageError::new(
                404,
                "NotFound",
                "not_found",
                "No route matches this path",
            ));
        }
    };
    let object = {
        let mut tx = ctx.begin_read_only(state.pool()).await?;
        let found = rows::bucket(&mut tx, &bucket).await?;
        let object = rows::object(&mut tx, &bucket, &name).await?;
        tx.commit().await?;
        if public && !found.public {
            return Err(StorageError::no_such_bucket());
        }
        object.ok_or_else(StorageError::no_such_key)?
    };
    if object.size().is_some_and(|size| size > MAX_SOURCE_BYTES) {
        return Err(StorageError::new(
            413,
            "EntityTooLarge",
            "Payload too large",
            "The source image file is too large to process",
        ));
    }
    let source = state
        .backend()
        .store()
        .get(&key(&bucket, &name, &object.version))
        .await?
        .bytes()
        .await?;
    let transform = transform.unwrap_or_default();
    let rendered = transform.render(source.to_vec()).await?;
    metrics::counter!("tally_storage_bytes_total", "direction" => "out")
        .increment(rendered.bytes.len() as u64);
    let mut response = (StatusCode::OK, Body::from(rendered.bytes)).into_response();
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, rendered.content_type);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        header::CACHE_CONTROL,
        object.meta("cacheControl").unwrap_or("no-cache"),
    );
    set(
        header::HeaderName::from_static("x-transformations"),
        &transform.header(),
    );
    Ok(response)
}
