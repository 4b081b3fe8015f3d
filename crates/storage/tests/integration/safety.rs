//! Names that could escape, bytes that lie about their type, sizes over the limit mid-stream,
//! uploads cut off: each refused, and none leaves a row or a file.

use std::time::Duration;

use futures_util::stream;
use reqwest::Method;
use serde_json::json;

use crate::{PNG, World, assert_error, json_of, wav};

#[tokio::test]
async fn odd_names_lying_types_and_oversized_or_broken_uploads_leave_nothing() {
    let w = World::new().await;
    let dir = format!("{}/{}", w.id("org_a"), w.id("log_ma"));

    // Names: encoded backslashes, control characters, over-long segments; `..` in move/copy.
    for bad in [
        format!("{dir}/a%5Cb.png"),
        format!("{dir}/line%0Abreak.png"),
        format!("{dir}/nul%00.png"),
        format!("{dir}/{}.png", "x".repeat(300)),
    ] {
        let refused = w
            .upload("member_a", "images", &bad, PNG.to_vec(), "image/png", false)
            .await;
        assert_error(&refused, "400", "InvalidKey");
    }
    let good = format!("{dir}/ok.png");
    assert_eq!(
        w.upload(
            "member_a",
            "images",
            &good,
            PNG.to_vec(),
            "image/png",
            false
        )
        .await
        .0,
        200
    );
    for bad in ["../../etc/passwd", "a/../../b.png", "./x.png", "a\\b.png"] {
        let moved = w
            .post("member_a", "/object/move", json!({"bucketId": "images", "sourceKey": good, "destinationKey": format!("{dir}/{bad}")}))
            .await;
        assert_error(&moved, "400", "InvalidKey");
    }

    // Types: the bytes must be what the header says, and the bucket must allow it.
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
    for (bytes, declared) in [
        (jpeg.clone(), "image/png"),
        (b"<script>alert(1)</script>".to_vec(), "image/png"),
        (b"#!/bin/sh\nrm -rf /\n".to_vec(), "audio/wav"),
        (wav(100), "image/png"),
    ] {
        let spoofed = w
            .upload(
                "member_a",
                "images",
                &format!("{dir}/spoof.png"),
                bytes,
                declared,
                false,
            )
            .await;
        assert_error(&spoofed, "415", "InvalidMimeType");
    }
    for declared in ["image/gif", "audio/wav", "text/plain"] {
        let refused = w
            .upload(
                "member_a",
                "images",
                &format!("{dir}/x"),
                PNG.to_vec(),
                declared,
                false,
            )
            .await;
        assert_error(&refused, "415", "InvalidMimeType");
    }
    let wrong_bucket = w
        .upload(
            "member_a",
            "voices",
            &format!("{dir}/shot.png"),
            PNG.to_vec(),
            "image/png",
            false,
        )
        .await;
    assert_error(&wrong_bucket, "415", "InvalidMimeType");

    // Size: a small limit, then a streamed body (no Content-Length) that crosses it mid-way.
    let (status, _) = json_of(
        w.request("service", Method::PUT, "/bucket/images")
            .json(&json!({"file_size_limit": 64 * 1024}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(PNG.to_vec()))
        .chain((0..40).map(|_| Ok(vec![0u8; 4096])))
        .collect();
    let streamed = json_of(
        w.request(
            "member_a",
            Method::POST,
            &format!("/object/images/{dir}/big.png"),
        )
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_error(&streamed, "413", "EntityTooLarge");
    // With a Content-Length over the limit it is refused before the body is read.
    let declared = w
        .upload(
            "member_a",
            "images",
            &format!("{dir}/big.png"),
            vec![0u8; 70 * 1024],
            "image/png",
            false,
        )
        .await;
    assert_error(&declared, "413", "EntityTooLarge");

    // A client that dies mid-upload: the stream fails after 200 KB.
    let (status, _) = json_of(
        w.request("service", Method::PUT, "/bucket/images")
            .json(&json!({"file_size_limit": "10MB"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let broken: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(PNG.to_vec()))
        .chain((0..50).map(|_| Ok(vec![0u8; 4096])))
        .chain(std::iter::once(Err(std::io::Error::other(
            "connection lost",
        ))))
        .collect();
    let cut = w
        .request(
            "member_a",
            Method::POST,
            &format!("/object/images/{dir}/cut.png"),
        )
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(stream::iter(broken)))
        .send()
        .await;
    assert!(cut.is_err() || cut.is_ok_and(|r| r.status() != 200));
    // The server notices the broken body and aborts; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Of all this, only ok.png exists: one row, one file (no staging leftovers).
    assert_eq!(w.rows("images").await, vec![good]);
    assert_eq!(w.files("images").len(), 1, "{:?}", w.files("images"));
    let staged: Vec<_> = w
        .files("images")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains('#'))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}
