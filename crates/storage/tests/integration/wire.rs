//! What storage-js relies on, as current Supabase Storage answers it: declared types stored as
//! declared outside the buckets Tally reads, served so that no stored file runs on the API's
//! origin; sizes in decimal units; times in ISO 8601 with milliseconds; `info` without
//! `updated_at`; list-v2 with folders and cursors; the refusal of a request with no key.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{PNG, World, assert_error, json_of};

async fn bucket(w: &World, id: &str) {
    let (status, body) = w
        .post("service", "/bucket", json!({"name": id, "public": false}))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// storage-js declares `text/plain;charset=UTF-8` for a Buffer and
/// `application/octet-stream` for an untyped Blob whatever the bytes are: in a bucket Tally
/// does not read, the declared type is stored and served back; in the pipeline's buckets a
/// lie stays a clear 415.
#[tokio::test]
async fn declared_types_are_stored_where_tally_does_not_read_the_bytes() {
    let w = World::new().await;
    bucket(&w, "assets").await;
    for (name, declared) in [
        ("cat.jpg", "text/plain;charset=UTF-8"),
        ("blob.bin", "application/octet-stream"),
    ] {
        let (status, body) = w
            .upload("service", "assets", name, PNG.to_vec(), declared, false)
            .await;
        assert_eq!(status, 200, "{body}");
        let res = w
            .request("service", Method::GET, &format!("/object/assets/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], declared);
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    }
    let path = w.path("org_a", "log_ma", "shot.png");
    let refused = w
        .upload(
            "member_a",
            "images",
            &path,
            b"not a png".to_vec(),
            "image/png",
            false,
        )
        .await;
    assert_error(&refused, "415", "InvalidMimeType");
    assert!(w.rows("images").await.is_empty());
}

/// A stored page or drawing cannot run as a page of the API's origin: HTML, SVG and XML are
/// served as attachments in a sandbox, other types as they are, and nothing is sniffed.
#[tokio::test]
async fn active_types_are_served_so_a_browser_cannot_run_them() {
    let w = World::new().await;
    bucket(&w, "site").await;
    let page = b"<html><script>fetch('/auth/v1/user')</script></html>".to_vec();
    for (name, declared) in [
        ("page.html", "text/html"),
        ("logo.svg", "image/svg+xml"),
        ("feed.xml", "application/rss+xml"),
    ] {
        w.upload("service", "site", name, page.clone(), declared, false)
            .await;
        let res = w
            .request("service", Method::GET, &format!("/object/site/{name}"))
            .send()
            .await
            .unwrap();
        let headers = res.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{name}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; sandbox",
            "{name}"
        );
        assert_eq!(
            headers["content-disposition"],
            format!("attachment; filename=\"{name}\""),
            "{name}"
        );
    }
    w.upload("service", "site", "notes.txt", page, "text/plain", false)
        .await;
    let res = w
        .request("service", Method::GET, "/object/site/notes.txt")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("content-security-policy").is_none());
    assert!(res.headers().get("content-disposition").is_none());
}

/// `fileSizeLimit: '20mb'` is 20,000,000 bytes (decimal, as Supabase reads it); a larger
/// object is refused in Supabase's words; bucket times are ISO 8601 with milliseconds in UTC.
#[tokio::test]
async fn sizes_are_decimal_and_times_have_milliseconds() {
    let w = World::new().await;
    bucket(&w, "sized").await;
    let (status, body) = json_of(
        w.request("service", Method::PUT, "/bucket/sized")
            .json(&json!({"public": false, "file_size_limit": "20mb"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, sized) = w.get_json("service", "/bucket/sized").await;
    assert_eq!(sized["file_size_limit"], 20_000_000);
    for time in [&sized["created_at"], &sized["updated_at"]] {
        let text = time.as_str().unwrap_or_default();
        assert_eq!(text.len(), "2021-02-17T04:43:32.770Z".len(), "{text}");
        assert!(text.ends_with('Z') && text.as_bytes()[19] == b'.', "{text}");
    }
    json_of(
        w.request("service", Method::PUT, "/bucket/sized")
            .json(&json!({"public": false, "file_size_limit": "1kb"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let too_big = w
        .upload(
            "service",
            "sized",
            "big.bin",
            vec![0; 1001],
            "application/octet-stream",
            false,
        )
        .await;
    assert_error(&too_big, "413", "EntityTooLarge");
    assert_eq!(
        too_big.1["message"],
        "The object exceeded the maximum allowed size"
    );
}

/// `info` answers FileObjectV2: no `updated_at`, the user's metadata `{}` when none was given.
#[tokio::test]
async fn info_has_no_updated_at_and_empty_metadata() {
    let w = World::new().await;
    bucket(&w, "docs").await;
    w.upload(
        "service",
        "docs",
        "a/readme.txt",
        b"hi".to_vec(),
        "text/plain",
        false,
    )
    .await;
    let (status, info) = w
        .get_json("service", "/object/info/docs/a/readme.txt")
        .await;
    assert_eq!(status, 200, "{info}");
    assert!(info.get("updated_at").is_none(), "{info}");
    assert_eq!(info["metadata"], json!({}));
    assert_eq!(info["size"], 2);
    assert_eq!(info["content_type"], "text/plain");
}

/// A request with no key at all is refused as current Storage refuses it.
#[tokio::test]
async fn a_request_without_a_key_is_access_denied() {
    let w = World::new().await;
    let res = reqwest::Client::new()
        .get(w.app.url("/storage/v1/bucket"))
        .send()
        .await
        .unwrap();
    let answer = json_of(res).await;
    assert_error(&answer, "403", "AccessDenied");
    assert_eq!(answer.1["message"], "Invalid Compact JWS");
}

/// list-v2: every object under a prefix by its full name, or the level right under it with
/// `with_delimiter` (folders named with a trailing `/`), paged by cursor in name or time order.
#[tokio::test]
async fn list_v2_lists_levels_and_pages_by_cursor() {
    let w = World::new().await;
    bucket(&w, "files").await;
    let suffixes = ["zz", "bb", "xx", "cc", "aa"];
    for suffix in suffixes {
        w.upload(
            "service",
            "files",
            &format!("t/f-{suffix}"),
            b"x".to_vec(),
            "text/plain",
            false,
        )
        .await;
    }
    w.upload(
        "service",
        "files",
        "t/deep/g",
        b"x".to_vec(),
        "text/plain",
        false,
    )
    .await;
    let list = |body: Value| w.post("service", "/object/list-v2/files", body);

    let (status, flat) = list(json!({"prefix": "t"})).await;
    assert_eq!(status, 200, "{flat}");
    assert_eq!(flat["objects"].as_array().map(Vec::len), Some(6));
    assert_eq!(flat["folders"], json!([]));
    assert_eq!(flat["hasNext"], false);

    let (_, top) = list(json!({"with_delimiter": true})).await;
    assert_eq!(top["folders"], json!([{"key": "t", "name": "t/"}]));
    assert_eq!(top["objects"], json!([]));

    let names = |entries: &Value| -> Vec<String> {
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect()
    };
    // Six entries two a page: three pages, the files in the asked order, the folder once.
    for (sort, expected) in [
        (
            json!({"column": "name", "order": "asc"}),
            ["t/f-aa", "t/f-bb", "t/f-cc", "t/f-xx", "t/f-zz"],
        ),
        (
            json!({"column": "name", "order": "desc"}),
            ["t/f-zz", "t/f-xx", "t/f-cc", "t/f-bb", "t/f-aa"],
        ),
        (
            json!({"column": "created_at", "order": "asc"}),
            ["t/f-zz", "t/f-bb", "t/f-xx", "t/f-cc", "t/f-aa"],
        ),
        (
            json!({"column": "created_at", "order": "desc"}),
            ["t/f-aa", "t/f-cc", "t/f-xx", "t/f-bb", "t/f-zz"],
        ),
    ] {
        let (mut files, mut folders, mut cursor, mut pages) =
            (Vec::new(), Vec::new(), None::<String>, 0);
        loop {
            let mut body =
                json!({"prefix": "t/", "with_delimiter": true, "limit": 2, "sortBy": sort});
            if let Some(c) = &cursor {
                body["cursor"] = Value::from(c.clone());
            }
            let (status, page) = list(body).await;
            assert_eq!(status, 200, "{page}");
            files.extend(names(&page["objects"]));
            folders.extend(names(&page["folders"]));
            pages += 1;
            if page["hasNext"] != true {
                break;
            }
            cursor = page["nextCursor"].as_str().map(str::to_owned);
        }
        assert_eq!(
            (files, folders, pages),
            (
                expected.map(String::from).to_vec(),
                vec!["t/deep/".to_owned()],
                3
            ),
            "{sort}"
        );
    }
    let (status, bad) = list(json!({"cursor": "not-a-cursor"})).await;
    assert_eq!(status, 400, "{bad}");
    assert_error(&(status, bad), "400", "InvalidRequest");
}

/// A JPEG of `width` × `height`.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::DynamicImage::new_rgb8(width, height)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    bytes
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).unwrap();
    (image.width(), image.height())
}

/// Images are transformed as the caller (RLS deciding: another org sees nothing), from a
/// public bucket, and through signed URLs whose token fixes the transformation; the answer
/// says what was applied as Supabase does.
#[tokio::test]
async fn images_are_transformed_where_the_caller_may_read_them() {
    let w = World::new().await;
    let path = w.path("org_a", "log_ma", "photo.jpg");
    let (status, body) = w
        .upload(
            "member_a",
            "images",
            &path,
            jpeg(400, 200),
            "image/jpeg",
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let render = format!("/render/image/authenticated/images/{path}?width=100&height=100");
    let res = w
        .request("member_a", Method::GET, &render)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(
        res.headers()["x-transformations"],
        "height:100,width:100,resizing_type:fill"
    );
    assert_eq!(dimensions(&res.bytes().await.unwrap()), (100, 100));
    let stranger = json_of(
        w.request("owner_b", Method::GET, &render)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&stranger, "404", "NoSuchKey");

    let (status, signed) = w
        .post(
            "member_a",
            &format!("/object/sign/images/{path}"),
            json!({"expiresIn": 60, "transform": {"width": 50, "quality": 60}}),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    let url = signed["signedURL"].as_str().unwrap_or_default().to_owned();
    assert!(url.starts_with("/render/image/sign/images/"), "{url}");
    // Asking for another size on the signed URL changes nothing: the token holds it.
    let res = reqwest::get(w.app.url(&format!("/storage/v1{url}&width=300")))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-transformations"],
        "width:50,resizing_type:fill,quality:60"
    );
    assert_eq!(dimensions(&res.bytes().await.unwrap()), (50, 25));
    // Nor does the token open the original.
    let original = url.replacen("/render/image/sign/", "/object/sign/", 1);
    let res = reqwest::get(w.app.url(&format!("/storage/v1{original}")))
        .await
        .unwrap();
    assert_error(&json_of(res).await, "400", "InvalidSignature");

    w.post(
        "service",
        "/bucket",
        json!({"name": "gallery", "public": true}),
    )
    .await;
    w.upload(
        "service",
        "gallery",
        "cat.jpg",
        jpeg(300, 300),
        "image/jpeg",
        false,
    )
    .await;
    let res = reqwest::get(w.app.url(
        "/storage/v1/render/image/public/gallery/cat.jpg?width=30&resize=contain&format=webp",
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/webp");
    assert_eq!(dimensions(&res.bytes().await.unwrap()), (30, 30));
    let res = reqwest::get(
        w.app
            .url("/storage/v1/render/image/public/gallery/cat.jpg?format=avif"),
    )
    .await
    .unwrap();
    assert_error(&json_of(res).await, "400", "InvalidRequest");
}
