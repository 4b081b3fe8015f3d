//! Content types: the bucket's allow-list, and the declared type checked against the bytes
//! (magic numbers, through the `infer` crate), so a script named `photo.png` is refused.

use crate::error::{StorageError, StorageResult};

/// How many leading bytes the check needs.
pub const HEAD_BYTES: usize = 8192;

/// The type without parameters, lower-cased: `Image/PNG; q=1` → `image/png`.
pub fn essence(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Is `mime` in the bucket's allow-list (`type/*` patterns allowed)? No list allows all.
pub fn allowed(allow_list: Option<&[String]>, mime: &str) -> bool {
    let Some(list) = allow_list else {
        return true;
    };
    let mime = essence(mime);
    list.iter().any(|pattern| {
        let pattern = essence(pattern);
        match pattern.strip_suffix("/*") {
            Some(kind) => mime.split('/').next() == Some(kind),
            None => pattern == mime,
        }
    })
}

/// One name per type where several are in use.
fn canonical(mime: &str) -> &str {
    match mime {
        "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
        "audio/mp3" | "audio/x-mp3" => "audio/mpeg",
        "audio/x-m4a" | "audio/m4a" | "video/mp4" | "audio/x-mp4" => "audio/mp4",
        "audio/webm" => "video/webm",
        "audio/x-flac" => "audio/flac",
        "audio/opus" => "audio/ogg",
        "audio/x-aac" => "audio/aac",
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "application/zip",
        other => other,
    }
}

/// Types whose bytes always start with a signature: one that cannot be found is a lie.
fn has_signature(mime: &str) -> bool {
    ["image/", "audio/", "video/"]
        .iter()
        .any(|p| mime.starts_with(p))
        || matches!(
            mime,
            "application/pdf" | "application/zip" | "application/vnd.apache.parquet"
        )
}

/// Checks that `head` (the first [`HEAD_BYTES`] of the object, or all of it) is what
/// `declared` says.
pub fn check(declared: &str, head: &[u8]) -> StorageResult<()> {
    let declared = essence(declared);
    if declared == "application/vnd.apache.parquet" {
        return if head.starts_with(b"PAR1") {
            Ok(())
        } else {
            Err(mismatch(&declared, None))
        };
    }
    let found = infer::get(head).map(|t| t.mime_type());
    let want = canonical(&declared);
    match found {
        Some(found) if canonical(found) == want => Ok(()),
        Some(found) => Err(mismatch(&declared, Some(found))),
        None if has_signature(want) => Err(mismatch(&declared, None)),
        None if is_text(&declared) && head.contains(&0) => Err(StorageError::mime(format!(
            "The content is binary, not {declared}"
        ))),
        None => Ok(()),
    }
}

fn is_text(mime: &str) -> bool {
    mime.starts_with("text/") || mime == "application/json"
}

fn mismatch(declared: &str, found: Option<&str>) -> StorageError {
    StorageError::mime(match found {
        Some(found) => format!("The content is {found}, not the declared {declared}"),
        None => format!("The content does not look like {declared}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0";
    const WAV: &[u8] = b"RIFF\x24\0\0\0WAVEfmt ";

    #[test]
    fn allow_lists_match_exact_types_and_wildcards() {
        let voices = ["audio/*".to_owned()];
        assert!(allowed(Some(&voices), "audio/wav"));
        assert!(allowed(Some(&voices), "Audio/Webm; codecs=opus"));
        assert!(!allowed(Some(&voices), "image/png"));
        assert!(!allowed(Some(&voices), "audiox/wav"));
        let images = ["image/png".to_owned(), "image/jpeg".to_owned()];
        assert!(allowed(Some(&images), "image/png"));
        assert!(!allowed(Some(&images), "image/gif"));
        assert!(allowed(None, "application/x-anything"));
    }

    #[test]
    fn the_bytes_must_match_the_declared_type() {
        assert!(check("image/png", PNG).is_ok());
        assert!(check("image/jpeg", JPEG).is_ok());
        assert!(check("image/jpg", JPEG).is_ok());
        assert!(check("audio/wav", WAV).is_ok());
        assert!(check("audio/x-wav", WAV).is_ok());
        let spoofed = check("image/png", JPEG).expect_err("a JPEG is not a PNG");
        assert_eq!(spoofed.status, 415);
        assert!(
            spoofed.message.contains("image/jpeg"),
            "{}",
            spoofed.message
        );
        assert!(check("image/png", b"<script>alert(1)</script>").is_err());
        assert!(check("audio/wav", b"#!/bin/sh\nrm -rf /").is_err());
        assert!(check("text/csv", b"day,minutes\n2026-11-25,90\n").is_ok());
        assert!(check("text/csv", PNG).is_err());
        assert!(check("application/json", b"{\"a\":\0}").is_err());
        assert!(check("application/vnd.apache.parquet", b"PAR1\x15\x04").is_ok());
        assert!(check("application/vnd.apache.parquet", b"a,b\n").is_err());
    }
}
