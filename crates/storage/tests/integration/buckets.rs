//! Buckets: the three of DESIGN §3 exist, private, with their limits; only the service role
//! changes buckets.

use reqwest::Method;
use serde_json::json;

use crate::{World, assert_error, json_of};

#[tokio::test]
async fn buckets_are_managed_by_the_service_role_only() {
    let w = World::new().await;
    let (status, all) = w.get_json("service", "/bucket").await;
    assert_eq!(status, 200, "{all}");
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["exports", "images", "voices"]);
    assert!(all.as_array().unwrap().iter().all(|b| b["public"] == false));
    let (_, voices) = w.get_json("member_a", "/bucket/voices").await;
    assert_eq!(voices["file_size_limit"], 25 * 1024 * 1024);
    assert_eq!(voices["allowed_mime_types"], json!(["audio/*"]));
    let (_, images) = w.get_json("service", "/bucket/images").await;
    assert_eq!(images["file_size_limit"], 10 * 1024 * 1024);
    assert_error(
        &w.get_json("service", "/bucket/nope").await,
        "404",
        "NoSuchBucket",
    );

    // Users cannot create, change, empty or delete buckets.
    assert_error(
        &w.post("owner_a", "/bucket", json!({"name": "mine"})).await,
        "403",
        "AccessDenied",
    );
    let changed = json_of(
        w.request("owner_a", Method::PUT, "/bucket/voices")
            .json(&json!({"public": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&changed, "403", "AccessDenied");
    assert_error(
        &w.delete("owner_a", "/bucket/voices", json!({})).await,
        "403",
        "AccessDenied",
    );

    // The service role creates a public bucket; its files are then readable without a token.
    let (status, created) = w
        .post(
            "service",
            "/bucket",
            json!({"id": "scratch", "name": "scratch", "public": true,
            "file_size_limit": "1MB", "allowed_mime_types": ["text/plain"]}),
        )
        .await;
    assert_eq!((status, created), (200, json!({"name": "scratch"})));
    assert_error(
        &w.post("service", "/bucket", json!({"name": "scratch"}))
            .await,
        "409",
        "ResourceAlreadyExists",
    );
    assert_error(
        &w.post("service", "/bucket", json!({"name": "Bad Name"}))
            .await,
        "400",
        "InvalidRequest",
    );
    assert_eq!(
        w.upload(
            "service",
            "scratch",
            "hello.txt",
            b"hello".to_vec(),
            "text/plain",
            false
        )
        .await
        .0,
        200
    );
    let public = w
        .fetch(&w.app.url("/storage/v1/object/public/scratch/hello.txt"))
        .await;
    assert_eq!(public, (200, b"hello".to_vec()));
    let private = json_of(
        reqwest::get(w.app.url("/storage/v1/object/public/voices/anything.wav"))
            .await
            .unwrap(),
    )
    .await;
    assert_error(&private, "404", "NoSuchBucket");

    // A bucket with objects is not deleted; emptied, it is.
    let (status, refused) = w.delete("service", "/bucket/scratch", json!({})).await;
    assert_eq!(
        (status, refused["statusCode"].as_str()),
        (400, Some("409")),
        "{refused}"
    );
    let (status, emptied) = w.post("service", "/bucket/scratch/empty", json!({})).await;
    assert_eq!(
        (status, emptied["message"].as_str()),
        (
            200,
            Some("Empty bucket has been queued. Completion may take up to an hour.")
        )
    );
    let (status, deleted) = w.delete("service", "/bucket/scratch", json!({})).await;
    assert_eq!(
        (status, deleted["message"].as_str()),
        (200, Some("Successfully deleted"))
    );
    assert_error(
        &w.get_json("service", "/bucket/scratch").await,
        "404",
        "NoSuchBucket",
    );
    assert!(w.files("scratch").is_empty());
}

/// A NUL character in a bucket's name or id is the caller's mistake (PostgreSQL's 22021): a
/// 400 in the storage shape, and no bucket.
#[tokio::test]
async fn nul_characters_in_bucket_names_are_400() {
    let w = World::new().await;
    for body in [
        json!({"name": "nul\u{0}bucket"}),
        json!({"id": "nul\u{0}id", "name": "fine"}),
    ] {
        let (status, err) = w.post("service", "/bucket", body.clone()).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["statusCode"], "400", "{err}");
    }
    let (_, all) = w.get_json("service", "/bucket").await;
    assert_eq!(all.as_array().unwrap().len(), 3, "no bucket was made");
}
