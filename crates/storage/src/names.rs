//! Bucket ids and object names, checked before they reach SQL or a path in the backend.

use crate::error::{StorageError, StorageResult};

/// The longest object name, in bytes (the backend key adds the bucket and a version).
pub const MAX_NAME_BYTES: usize = 900;
/// The longest folder or file name within an object name, in bytes (file systems allow 255).
pub const MAX_SEGMENT_BYTES: usize = 255;

/// An object name as Supabase joins it: leading slashes dropped, `//` collapsed, a trailing
/// `/` removed — then refused if it could escape its folder or upset a file system: `.` or `..`
/// segments, backslashes, control characters, over-long names or segments.
pub fn object_name(raw: &str) -> StorageResult<String> {
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Err(StorageError::invalid_key("The object name is empty"));
    }
    for segment in &segments {
        if *segment == "." || *segment == ".." {
            return Err(StorageError::invalid_key(format!(
                "Invalid key: \"{raw}\": `.` and `..` are not allowed in object names"
            )));
        }
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err(StorageError::invalid_key(format!(
                "Invalid key: a folder or file name is longer than {MAX_SEGMENT_BYTES} bytes"
            )));
        }
        if segment.chars().any(|c| c.is_control() || c == '\\') {
            return Err(StorageError::invalid_key(format!(
                "Invalid key: \"{}\": control characters and backslashes are not allowed",
                raw.escape_debug()
            )));
        }
    }
    let name = segments.join("/");
    if name.len() > MAX_NAME_BYTES {
        return Err(StorageError::invalid_key(format!(
            "Invalid key: the object name is longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(name)
}

/// First segments of `/object/…` routes, so no bucket may take them as its id.
const RESERVED: [&str; 8] = [
    "list",
    "move",
    "copy",
    "sign",
    "upload",
    "info",
    "authenticated",
    "public",
];

/// A bucket id: lower-case letters, digits, `.`, `_`, `-`, at most 63 characters, not a
/// route's name.
pub fn bucket_id(raw: &str) -> StorageResult<String> {
    let ok = !raw.is_empty()
        && !RESERVED.contains(&raw)
        && raw.len() <= 63
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !raw.starts_with(['.', '_', '-']);
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(StorageError::invalid(format!(
            "Bucket name invalid: \"{}\"",
            raw.escape_debug()
        )))
    }
}

/// Splits `{bucket}/{name…}` (a route's wildcard) into a checked bucket id and object name.
pub fn bucket_and_name(path: &str) -> StorageResult<(String, String)> {
    let path = path.trim_start_matches('/');
    let (bucket, name) = path
        .split_once('/')
        .ok_or_else(|| StorageError::invalid_key("The path needs a bucket and an object name"))?;
    Ok((bucket_id(bucket)?, object_name(name)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_joined_as_supabase_joins_them() {
        assert_eq!(
            object_name("/a//b/c.png/").ok().as_deref(),
            Some("a/b/c.png")
        );
        assert_eq!(object_name("note.wav").ok().as_deref(), Some("note.wav"));
        assert_eq!(
            object_name("org/log/Voice note 1 (ü).m4a").ok().as_deref(),
            Some("org/log/Voice note 1 (ü).m4a")
        );
    }

    #[test]
    fn escaping_and_odd_names_are_refused() {
        for bad in [
            "",
            "/",
            "../etc/passwd",
            "a/../../b",
            "a/./b",
            "a\\b",
            "a\u{0}b",
            "line\nbreak",
            "tab\tname",
            "del\u{7f}",
        ] {
            let e = object_name(bad).expect_err(bad);
            assert_eq!(e.code, "InvalidKey", "{bad:?}");
        }
        assert!(object_name(&"x".repeat(256)).is_err());
        assert!(object_name(&["y"; 500].join("/")).is_err());
        assert!(object_name(&"z".repeat(255)).is_ok());
    }

    #[test]
    fn buckets_and_paths() {
        assert_eq!(
            bucket_and_name("voices/org/log/a.wav").ok(),
            Some(("voices".to_owned(), "org/log/a.wav".to_owned()))
        );
        assert!(bucket_and_name("voices").is_err());
        assert!(bucket_and_name("Voices/a").is_err());
        assert!(bucket_and_name("../a").is_err());
        assert!(bucket_id("-x").is_err());
        assert!(bucket_id("sign").is_err());
    }
}
