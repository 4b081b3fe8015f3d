//! The refusals hyper writes itself, before any handler or middleware runs — a request line
//! it cannot parse (400: a raw `0xff` in the path, say), a URI over 64 KiB (414), more or
//! larger headers than it reads (431) — answered in the error shape of the service the path
//! belongs to, as [`crate::refusals`] answers the framework's other refusals.
//!
//! hyper answers such a request with a bare head (no body, `content-length: 0`, no type) and
//! closes the connection. [`Shaped`] wraps a connection's stream: it keeps the start of what
//! the client sent since the last answer (to know the path), and when a bare 400, 414 or 431
//! head is written — which nothing else in Tally writes: every refusal of Tally's own has its
//! service's JSON body — it writes in its place one with that body.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::http::StatusCode;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much of a request's start is kept (its request line, for the path).
const KEPT: usize = 1024;

/// A connection's stream whose bare refusals get a body.
pub struct Shaped<S> {
    inner: S,
    /// The first bytes the client sent since the last answer.
    request: Vec<u8>,
    /// Whether an answer was written since the client last sent something.
    answered: bool,
    /// A shaped refusal still being written, and the length of hyper's head it stands for.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> Shaped<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            request: Vec::new(),
            answered: false,
            pending: None,
        }
    }
}

/// The status of a bare head hyper writes for a request it refuses, if `head` is one.
fn bare_refusal(head: &[u8]) -> Option<StatusCode> {
    let status = match head.get(..13)? {
        b"HTTP/1.1 400 " => StatusCode::BAD_REQUEST,
        b"HTTP/1.1 414 " => StatusCode::URI_TOO_LONG,
        b"HTTP/1.1 431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let bare = text.ends_with("\r\n\r\n")
        && text.contains("\r\ncontent-length: 0\r\n")
        && !text.contains("\r\ncontent-type:");
    bare.then_some(status)
}

/// The path of a request line (`GET /rest/v1/x?y HTTP/1.1`), as far as it can be read.
fn path_of(request: &[u8]) -> String {
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let target = line.split(|b| *b == b' ').nth(1).unwrap_or_default();
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    String::from_utf8_lossy(path).into_owned()
}

/// The whole answer for a refusal of `status` of the request that began with `request`.
fn answer(status: StatusCode, request: &[u8]) -> Vec<u8> {
    let message = match status {
        StatusCode::URI_TOO_LONG => "The request URI is too long".to_owned(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "The request has too many headers, or headers too large".to_owned()
        }
        _ => "The request could not be read: its line or a header is not valid HTTP".to_owned(),
    };
    let response = crate::refusals::refusal(&path_of(request), status, &message);
    let (parts, body) = response.into_parts();
    // The refusal's body is JSON already in memory: collected without waiting.
    let body = axum::body::to_bytes(body, 64 * 1024)
        .now_or_never()
        .and_then(Result::ok)
        .unwrap_or_default();
    // The service's own status (Storage answers its refusals as 400, the real one inside).
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or_default()
    );
    for (name, value) in &parts.headers {
        if name != "content-length"
            && let Ok(value) = value.to_str()
        {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    out
}

impl<S: AsyncRead + Unpin> AsyncRead for Shaped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            if this.answered {
                this.request.clear();
                this.answered = false;
            }
            let room = KEPT.saturating_sub(this.request.len());
            this.request
                .extend_from_slice(&read[..read.len().min(room)]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shaped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none()
            && let Some(status) = bare_refusal(buf)
        {
            this.pending = Some((answer(status, &this.request), buf.len()));
        }
        if let Some((out, stands_for)) = &mut this.pending {
            while !out.is_empty() {
                let written = ready!(Pin::new(&mut this.inner).poll_write(cx, out))?;
                if written == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                out.drain(..written);
            }
            let stands_for = *stands_for;
            this.pending = None;
            this.answered = true;
            return Poll::Ready(Ok(stands_for));
        }
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.answered = true;
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // A bare refusal is a head alone: shaped as a plain write.
        let head_only = bufs.iter().filter(|b| !b.is_empty()).count() <= 1;
        let first = bufs.iter().find(|b| !b.is_empty());
        if let Some(first) = first
            && (self.pending.is_some() || (head_only && bare_refusal(first).is_some()))
        {
            let first: &[u8] = first;
            return self.poll_write(cx, first);
        }
        let written = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        self.answered = true;
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bare_heads_of_the_three_refusals_are_shaped() {
        let bare =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(
            bare_refusal(bare),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let shaped = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_refusal(shaped), None);
        assert_eq!(
            bare_refusal(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(
            path_of(b"GET /rest/v1/time_logs?select=* HTTP/1.1\r\nhost: x"),
            "/rest/v1/time_logs"
        );
        assert_eq!(path_of(b"GET /auth/v1/\xff HTTP/1.1"), "/auth/v1/\u{fffd}");
    }

    #[test]
    fn a_shaped_answer_carries_the_services_body() {
        let out = answer(
            StatusCode::URI_TOO_LONG,
            b"GET /rest/v1/x?aaaa HTTP/1.1\r\n",
        );
        let text = String::from_utf8(out).expect("text");
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(text.contains("content-type: application/json"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["code"], "414");
        assert!(json.get("hint").is_some(), "{json}");
    }
}
