//! The S3 backend against a real S3-compatible server (s3rver) on loopback: multipart uploads,
//! downloads, presigned redirects for signed URLs, replacements, moves and removals, and
//! nothing left behind by a refused upload.

use futures_util::{StreamExt, stream};
use object_store::{ObjectStore, path::Path};
use reqwest::{Method, redirect::Policy};
use serde_json::json;
use tally_storage::Backend;
use tally_testkit::{S3Server, TestApp};

use crate::{World, assert_error, json_of, wav};

/// Every key in the S3 bucket.
async fn keys(store: &dyn ObjectStore) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(Some(&Path::from("voices")))
        .map(|meta| meta.unwrap().location.to_string())
        .collect()
        .await;
    keys.sort();
    keys
}

#[tokio::test]
async fn the_s3_backend_streams_signs_replaces_moves_and_removes() {
    let s3 = S3Server::start("tally-files").await.unwrap();
    let mut settings = None;
    let app = TestApp::spawn_with(|config| {
        s3.configure(config);
        settings = Some(config.clone());
    })
    .await
    .unwrap();
    let config = settings.unwrap();
    let store = Backend::from_settings(&config.storage, &config.data_dir).unwrap();
    let store = store.store().as_ref();
    let w = World::with_app(app).await;
    let note = w.path("org_a", "log_ma", "long-note.wav");

    // 12 MB streamed in 64 KB chunks: two multipart parts on S3.
    let body = wav(12 * 1024 * 1024);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let (status, uploaded) = json_of(
        w.request("member_a", Method::POST, &format!("/object/voices/{note}"))
            .header("content-type", "audio/wav")
            .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{uploaded}");
    assert!(w.files("voices").is_empty(), "nothing on the local disk");
    let stored = keys(store).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0].starts_with(&format!("voices/{note}/")),
        "{stored:?}"
    );
    let (status, back) = w.get("member_a", &format!("/object/voices/{note}")).await;
    assert_eq!(status, 200);
    assert!(
        back == body,
        "the bytes came back changed ({} bytes)",
        back.len()
    );

    // A signed URL redirects to the object store's own presigned URL, which serves the bytes
    // with the type they were stored with.
    let (_, signed) = w
        .post(
            "member_a",
            &format!("/object/sign/voices/{note}"),
            json!({"expiresIn": 60}),
        )
        .await;
    let url = w.app.url(&format!(
        "/storage/v1{}",
        signed["signedURL"].as_str().unwrap()
    ));
    let no_follow = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let redirect = no_follow.get(&url).send().await.unwrap();
    assert_eq!(redirect.status(), 307);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&s3.endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let followed = reqwest::get(&url).await.unwrap();
    assert_eq!(followed.status(), 200);
    assert_eq!(followed.headers()["content-type"], "audio/wav");
    assert_eq!(followed.bytes().await.unwrap().len(), body.len());

    // A replacement leaves only the new version; a move and a copy write new keys.
    let short = wav(1000);
    assert_eq!(
        w.upload(
            "member_a",
            "voices",
            &note,
            short.clone(),
            "audio/wav",
            true
        )
        .await
        .0,
        200
    );
    assert_eq!(keys(store).await.len(), 1);
    assert_eq!(
        w.get("member_a", &format!("/object/voices/{note}")).await.1,
        short
    );
    let moved = w.path("org_a", "log_ma", "moved.wav");
    let (status, _) = w
        .post(
            "member_a",
            "/object/move",
            json!({"bucketId": "voices", "sourceKey": note, "destinationKey": moved}),
        )
        .await;
    assert_eq!(status, 200);
    let copied = w.path("org_a", "log_ma", "copied.wav");
    let (status, _) = w
        .post(
            "member_a",
            "/object/copy",
            json!({"bucketId": "voices", "sourceKey": moved, "destinationKey": copied}),
        )
        .await;
    assert_eq!(status, 200);
    let after: Vec<String> = keys(store).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after
            .iter()
            .any(|k| k.starts_with(&format!("voices/{moved}/")))
    );
    assert!(
        after
            .iter()
            .any(|k| k.starts_with(&format!("voices/{copied}/")))
    );
    assert_eq!(
        w.get("member_a", &format!("/object/voices/{copied}"))
            .await
            .1,
        short
    );

    // Over the limit mid-stream: refused, the multipart upload aborted, nothing stored.
    let (status, _) = json_of(
        w.request("service", Method::PUT, "/bucket/voices")
            .json(&json!({"file_size_limit": 1024 * 1024}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let big = wav(3 * 1024 * 1024);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let refused = json_of(
        w.request(
            "member_a",
            Method::POST,
            &format!("/object/voices/{}", w.path("org_a", "log_ma", "big.wav")),
        )
        .header("content-type", "audio/wav")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_error(&refused, "413", "EntityTooLarge");

    // Removal removes the bytes too.
    let (status, removed) = w
        .delete(
            "member_a",
            "/object/voices",
            json!({"prefixes": [moved, copied]}),
        )
        .await;
    assert_eq!((status, removed.as_array().map(Vec::len)), (200, Some(2)));
    assert!(keys(store).await.is_empty());
}
