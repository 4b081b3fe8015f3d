//! Resumable uploads over tus at `/storage/v1/upload/resumable`: created where the caller may
//! write, sent in pieces (a piece cut off is sent again; a wrong offset is 409), visible to
//! nobody else, completed into an ordinary object (checked like any upload), or abandoned
//! leaving nothing behind.

use base64::Engine;
use reqwest::{Method, Response};
use serde_json::json;

use crate::{World, assert_error, json_of, wav};

/// `Upload-Metadata` for `bucket/name` of `content_type`.
fn metadata(bucket: &str, name: &str, content_type: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "bucketName {},objectName {},contentType {},cacheControl {}",
        b64(bucket),
        b64(name),
        b64(content_type),
        b64("3600")
    )
}

fn tus(w: &World, who: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    w.request(who, method, &format!("/upload/resumable{path}"))
        .header("tus-resumable", "1.0.0")
}

async fn create(
    w: &World,
    who: &str,
    bucket: &str,
    name: &str,
    kind: &str,
    length: usize,
) -> Response {
    tus(w, who, Method::POST, "")
        .header("upload-length", length.to_string())
        .header("upload-metadata", metadata(bucket, name, kind))
        .send()
        .await
        .unwrap()
}

async fn patch(w: &World, who: &str, id: &str, offset: usize, bytes: &[u8]) -> Response {
    tus(w, who, Method::PATCH, &format!("/{id}"))
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_voice_note_arrives_in_pieces_and_becomes_an_object() {
    let w = World::new().await;
    let note = wav(300_000);
    let name = w.path("org_a", "log_ma", "note.wav");
    let created = create(&w, "member_a", "voices", &name, "audio/wav", note.len()).await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let location = header(&created, "location");
    assert!(header(&created, "upload-expires").ends_with("GMT"));
    let id = location
        .strip_prefix("/storage/v1/upload/resumable/")
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();

    // Nobody else sees it, not even another member of the org.
    for stranger in ["owner_b", "member2_a"] {
        let res = tus(&w, stranger, Method::HEAD, &format!("/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{stranger}");
    }

    // The first piece; then one sent at a wrong offset; then the rest in two.
    let res = patch(&w, "member_a", &id, 0, &note[..100_000]).await;
    assert_eq!(
        (res.status().as_u16(), header(&res, "upload-offset")),
        (204, "100000".into())
    );
    let res = patch(&w, "member_a", &id, 50_000, &note[50_000..150_000]).await;
    assert_eq!(res.status(), 409);
    let res = tus(&w, "member_a", Method::HEAD, &format!("/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (header(&res, "upload-offset"), header(&res, "upload-length")),
        ("100000".into(), note.len().to_string())
    );
    assert!(
        w.rows("voices").await.is_empty(),
        "no object before the last byte"
    );
    let res = patch(&w, "member_a", &id, 100_000, &note[100_000..200_000]).await;
    assert_eq!(res.status(), 204);
    // More than the upload's length is refused and counts nothing.
    let mut too_much = note[200_000..].to_vec();
    too_much.extend_from_slice(b"extra");
    let res = patch(&w, "member_a", &id, 200_000, &too_much).await;
    assert_eq!(res.status(), 413);
    let res = patch(&w, "member_a", &id, 200_000, &note[200_000..]).await;
    assert_eq!(
        (res.status().as_u16(), header(&res, "upload-offset")),
        (204, note.len().to_string())
    );

    // An ordinary object now, byte for byte; the upload and its parts are gone.
    assert_eq!(w.rows("voices").await, vec![name.clone()]);
    let (status, bytes) = w.get("member_a", &format!("/object/voices/{name}")).await;
    assert_eq!((status, bytes == note), (200, true));
    let res = tus(&w, "member_a", Method::HEAD, &format!("/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        w.files("_resumable").is_empty(),
        "parts left: {:?}",
        w.files("_resumable")
    );
}

#[tokio::test]
async fn refused_uploads_leave_nothing() {
    let w = World::new().await;
    let name = w.path("org_a", "log_ma", "n.wav");
    // Where RLS refuses a write (another org's folder), it never starts.
    let foreign = w.path("org_a", "log_ma", "x.wav");
    let res = create(&w, "owner_b", "voices", &foreign, "audio/wav", 10).await;
    let status = res.status().as_u16();
    assert_error(&(400, json_of(res).await.1), "403", "AccessDenied");
    assert_eq!(status, 403);
    // A type the bucket does not take, or a size over its limit.
    let res = create(&w, "member_a", "voices", &name, "image/png", 10).await;
    assert_eq!(res.status(), 415);
    let res = create(
        &w,
        "member_a",
        "voices",
        &name,
        "audio/wav",
        26 * 1024 * 1024,
    )
    .await;
    assert_eq!(res.status(), 413);
    // Bytes that are not what they claim, in a bucket Tally reads, fail at the last byte.
    let res = create(&w, "member_a", "voices", &name, "audio/wav", 11).await;
    let id = header(&res, "location")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let res = patch(&w, "member_a", &id, 0, b"not a wave!").await;
    assert_eq!(res.status(), 415);
    // Abandoned: gone with its parts.
    let res = create(&w, "member_a", "voices", &name, "audio/wav", 1000).await;
    let id = header(&res, "location")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    patch(&w, "member_a", &id, 0, &wav(500)[..500]).await;
    let res = tus(&w, "member_a", Method::DELETE, &format!("/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(w.rows("voices").await.is_empty());
    assert!(w.files("_resumable").is_empty());
    let uploads: i64 = sqlx::query_scalar("select count(*) from storage.resumable_uploads")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(uploads, 0);
    // Without the protocol's version header, nothing is done.
    let res = w
        .request("member_a", Method::POST, "/upload/resumable")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
}
