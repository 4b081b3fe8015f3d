//! The object endpoints storage-js calls, as a member working on their own log.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{PNG, World, assert_error, json_of};

/// A form like storage-js's for a Blob: `cacheControl`, then the file under the name "".
fn form(boundary: &str, bytes: &[u8], content_type: &str) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"cacheControl\"\r\n\r\n60\r\n\
         --{boundary}\r\ncontent-disposition: form-data; name=\"metadata\"\r\n\r\n{{\"source\":\"phone\"}}\r\n\
         --{boundary}\r\ncontent-disposition: form-data; name=\"\"; filename=\"blob\"\r\n\
         content-type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn a_member_uploads_reads_lists_moves_copies_and_removes_their_files() {
    let w = World::new().await;
    let shot = w.path("org_a", "log_ma", "shot.png");

    // Upload: {Id, Key}; the bytes come back with their type and caching headers.
    let (status, body) = w
        .upload(
            "member_a",
            "images",
            &shot,
            PNG.to_vec(),
            "image/png",
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Key"], format!("images/{shot}"));
    assert!(
        body["Id"].as_str().is_some_and(|id| id.len() == 36),
        "{body}"
    );
    for route in [
        format!("/object/images/{shot}"),
        format!("/object/authenticated/images/{shot}"),
    ] {
        let res = w
            .request("member_a", Method::GET, &route)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/png");
        assert_eq!(res.headers()["cache-control"], "max-age=3600");
        assert!(res.headers().contains_key("etag"));
        assert!(res.headers().contains_key("last-modified"));
        assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    }
    let head = w
        .request("member_a", Method::HEAD, &format!("/object/images/{shot}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        PNG.len().to_string().as_str()
    );
    let attachment = w
        .request(
            "member_a",
            Method::GET,
            &format!("/object/images/{shot}?download=screen.png"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        attachment.headers()["content-disposition"],
        "attachment; filename=\"screen.png\""
    );

    // Info: FileObjectV2.
    let (status, info) = w
        .get_json("member_a", &format!("/object/info/images/{shot}"))
        .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["name"], shot);
    assert_eq!(info["bucket_id"], "images");
    assert_eq!(info["size"], PNG.len());
    assert_eq!(info["content_type"], "image/png");

    // The same name again without upsert is a conflict; nothing changes.
    let mut bigger = PNG.to_vec();
    bigger.extend_from_slice(b"trailing");
    let again = w
        .upload(
            "member_a",
            "images",
            &shot,
            bigger.clone(),
            "image/png",
            false,
        )
        .await;
    assert_error(&again, "409", "ResourceAlreadyExists");
    assert_eq!(
        w.get("member_a", &format!("/object/images/{shot}")).await.1,
        PNG
    );
    // With upsert it replaces the bytes, and the old version's file is gone.
    let (status, replaced) = w
        .upload(
            "member_a",
            "images",
            &shot,
            bigger.clone(),
            "image/png",
            true,
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        replaced["Id"], body["Id"],
        "an upsert keeps the object's id"
    );
    assert_eq!(
        w.get("member_a", &format!("/object/images/{shot}")).await.1,
        bigger
    );
    assert_eq!(w.files("images").len(), 1, "{:?}", w.files("images"));
    // PUT (storage-js `update`) replaces too.
    let (status, _) = json_of(
        w.request("member_a", Method::PUT, &format!("/object/images/{shot}"))
            .header("content-type", "image/png")
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        w.get("member_a", &format!("/object/images/{shot}")).await.1,
        PNG
    );

    // A multipart form (storage-js with a Blob): type from the part, cacheControl and metadata
    // from their fields.
    let boundary = "----tally-test-boundary";
    let form_name = w.path("org_a", "log_ma", "form.png");
    let (status, uploaded) = json_of(
        w.request(
            "member_a",
            Method::POST,
            &format!("/object/images/{form_name}"),
        )
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form(boundary, PNG, "image/png"))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{uploaded}");
    let res = w
        .request(
            "member_a",
            Method::GET,
            &format!("/object/images/{form_name}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "max-age=60");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    let (_, info) = w
        .get_json("member_a", &format!("/object/info/images/{form_name}"))
        .await;
    assert_eq!(info["metadata"], json!({"source": "phone"}));

    // List: direct children of the prefix, folders with a null id; search, sort, paging.
    let deep = w.path("org_a", "log_ma", "sub/deep.png");
    assert_eq!(
        w.upload(
            "member_a",
            "images",
            &deep,
            PNG.to_vec(),
            "image/png",
            false
        )
        .await
        .0,
        200
    );
    let prefix = format!("{}/{}", w.id("org_a"), w.id("log_ma"));
    let list = |body: Value| w.post("member_a", "/object/list/images", body);
    let (status, listed) = list(json!({"prefix": prefix, "limit": 100, "offset": 0,
        "sortBy": {"column": "name", "order": "asc"}, "search": ""}))
    .await;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["form.png", "shot.png", "sub"]);
    assert!(listed[2]["id"].is_null() && listed[2]["metadata"].is_null());
    assert_eq!(listed[1]["metadata"]["size"], PNG.len());
    assert_eq!(listed[1]["metadata"]["mimetype"], "image/png");
    let (_, desc) = list(
        json!({"prefix": prefix, "sortBy": {"column": "name", "order": "desc"},
        "limit": 1, "offset": 1}),
    )
    .await;
    assert_eq!(desc[0]["name"], "shot.png");
    let (_, searched) = list(json!({"prefix": prefix, "search": "sho"})).await;
    assert_eq!(searched.as_array().unwrap().len(), 1);
    let (_, root) = list(json!({"prefix": ""})).await;
    assert_eq!(root[0]["name"], w.id("org_a").to_string());
    assert!(root[0]["id"].is_null());

    // Move, then copy.
    let moved = w.path("org_a", "log_ma", "moved.png");
    let (status, answer) = w
        .post(
            "member_a",
            "/object/move",
            json!({"bucketId": "images", "sourceKey": shot, "destinationKey": moved}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"], "Successfully moved");
    assert_error(
        &w.get_json("member_a", &format!("/object/images/{shot}"))
            .await,
        "404",
        "NoSuchKey",
    );
    assert_eq!(
        w.get("member_a", &format!("/object/images/{moved}"))
            .await
            .1,
        PNG
    );
    let copied = w.path("org_a", "log_ma", "copy.png");
    let (status, answer) = w
        .post(
            "member_a",
            "/object/copy",
            json!({"bucketId": "images", "sourceKey": moved, "destinationKey": copied}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Key"], format!("images/{copied}"));
    assert_eq!(
        w.get("member_a", &format!("/object/images/{copied}"))
            .await
            .1,
        PNG
    );
    let taken = w
        .post(
            "member_a",
            "/object/copy",
            json!({"bucketId": "images", "sourceKey": moved, "destinationKey": copied}),
        )
        .await;
    assert_error(&taken, "409", "ResourceAlreadyExists");

    // Remove many (answers the removed objects), then one.
    let (status, removed) = w
        .delete(
            "member_a",
            "/object/images",
            json!({"prefixes": [copied, moved, "nope.png"]}),
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    let mut gone: Vec<&str> = removed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    gone.sort_unstable();
    let mut expected = [copied.as_str(), moved.as_str()];
    expected.sort_unstable();
    assert_eq!(gone, expected);
    let (status, one) = w
        .delete("member_a", &format!("/object/images/{deep}"), json!({}))
        .await;
    assert_eq!(
        (status, one["message"].as_str()),
        (200, Some("Successfully deleted"))
    );
    assert_eq!(w.rows("images").await, vec![form_name.clone()]);
    assert_eq!(w.files("images").len(), 1, "only form.png's bytes remain");
}
