//! Downloads: `GET|HEAD /object/{bucket}/{name}` (and `/object/authenticated/…`) as the
//! caller, `GET /object/sign/…?token=` and `/object/public/…` as the server. The row decides
//! (RLS for callers); the bytes are streamed from the backend, never held whole in memory.
//!
//! Whatever a bucket stores, it is served so that it cannot run as a page of the API's origin
//! (stored XSS): every response says `X-Content-Type-Options: nosniff`, so a browser takes the
//! stored type at its word, and a type a browser would run (HTML, SVG, XML — see
//! [`is_active`]) is served as an attachment under `Content-Security-Policy: sandbox`, so it
//! is downloaded, or at worst shown with no script and no origin of its own.

use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use tally_core::RequestContext;

use crate::{
    backend::key,
    error::{StorageError, StorageResult},
    rows::{self, Object},
    state::StorageState,
};

/// How the response is asked for.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// `HEAD`: headers only.
    pub head_only: bool,
    /// `?download` / `?download=name`: served as an attachment.
    pub download: Option<String>,
    /// A signed URL's download: where the object store signs URLs itself (S3), answer with a
    /// redirect to one, so the bytes do not pass through Tally.
    pub redirect: bool,
}

/// How long the object store's own URL lives: it is followed at once.
const REDIRECT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// The object at `bucket/name` as `ctx` may read it.
pub async fn download(
    state: &StorageState,
    ctx: &RequestContext,
    bucket: &str,
    name: &str,
    options: &Options,
) -> StorageResult<Response> {
    let object = {
        let mut tx = ctx.begin_read_only(state.pool()).await?;
        rows::bucket(&mut tx, bucket).await?;
        let object = rows::object(&mut tx, bucket, name).await?;
        tx.commit().await?;
        object.ok_or_else(StorageError::no_such_key)?
    };
    respond(state, bucket, name, &object, options).await
}

/// The object at `bucket/name` for a public bucket (no caller needed).
pub async fn public(
    state: &StorageState,
    bucket: &str,
    name: &str,
    options: &Options,
) -> StorageResult<Response> {
    let ctx = RequestContext::service();
    let mut tx = ctx.begin_read_only(state.pool()).await?;
    let found = rows::bucket(&mut tx, bucket).await?;
    let object = rows::object(&mut tx, bucket, name).await?;
    tx.commit().await?;
    match (found.public, object) {
        (true, Some(object)) => respond(state, bucket, name, &object, options).await,
        (false, _) => Err(StorageError::no_such_bucket()),
        (true, None) => Err(StorageError::no_such_key()),
    }
}

async fn respond(
    state: &StorageState,
    bucket: &str,
    name: &str,
    object: &Object,
    options: &Options,
) -> StorageResult<Response> {
    let path = key(bucket, name, &object.version);
    if options.redirect
        && !options.head_only
        && options.download.is_none()
        && let Some(url) = state
            .backend()
            .presigned_get(&path, REDIRECT_LIFETIME)
            .await
    {
        let url = url.map_err(StorageError::internal)?;
        return Ok(axum::response::Redirect::temporary(&url).into_response());
    }
    let mut response = if options.head_only {
        StatusCode::OK.into_response()
    } else {
        let got = state.backend().store().get(&path).await?;
        metrics::counter!("tally_storage_bytes_total", "direction" => "out")
            .increment(object.size().unwrap_or_default());
        Body::from_stream(got.into_stream()).into_response()
    };
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    let mimetype = object
        .meta("mimetype")
        .unwrap_or("application/octet-stream");
    set(headers, header::CONTENT_TYPE, mimetype);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let active = is_active(mimetype);
    if active {
        set(
            headers,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        );
    }
    if let Some(size) = object.size() {
        set(headers, header::CONTENT_LENGTH, &size.to_string());
    }
    set(
        headers,
        header::CACHE_CONTROL,
        object.meta("cacheControl").unwrap_or("no-cache"),
    );
    if let Some(etag) = object.meta("eTag") {
        set(headers, header::ETAG, etag);
    }
    if let Some(modified) = object
        .meta("lastModified")
        .and_then(|m| DateTime::parse_from_rfc3339(m).ok())
    {
        let http_date = modified
            .with_timezone(&Utc)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        set(headers, header::LAST_MODIFIED, &http_date);
    }
    let download = options.download.as_deref().or(active.then_some(""));
    if let Some(download) = download {
        let file = if download.is_empty() {
            name.rsplit('/').next().unwrap_or(name)
        } else {
            download
        };
        let file: String = file
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        set(
            headers,
            header::CONTENT_DISPOSITION,
            &format!("attachment; filename=\"{file}\""),
        );
    }
    Ok(response)
}

/// Types a browser would run as a document of the origin that served it: HTML, SVG and any
/// XML (which may carry XHTML or XSLT).
pub fn is_active(mimetype: &str) -> bool {
    let essence = crate::sniff::essence(mimetype);
    matches!(
        essence.as_str(),
        "text/html" | "application/xhtml+xml" | "image/svg+xml" | "text/xml" | "application/xml"
    ) || essence.ends_with("+xml")
        || essence.ends_with("/xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_a_browser_would_run_are_active() {
        for active in [
            "text/html",
            "Text/HTML; charset=utf-8",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/rss+xml",
        ] {
            assert!(is_active(active), "{active}");
        }
        for inert in [
            "text/plain;charset=UTF-8",
            "image/png",
            "application/json",
            "application/octet-stream",
            "text/csv",
        ] {
            assert!(!is_active(inert), "{inert}");
        }
    }
}
