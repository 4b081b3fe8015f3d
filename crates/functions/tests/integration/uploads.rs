//! `upload-presign`: an attachment waiting for its file and a signed URL to send it to; the
//! arrival marks the attachment uploaded with the file's size and digest.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use tally_testkit::PNG;

use crate::world::World;

async fn attachment(w: &World, id: &str) -> Value {
    sqlx::query_scalar("select to_jsonb(a) from attachments a where id = $1::uuid")
        .bind(id)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap()
}

async fn attachments(w: &World) -> i64 {
    sqlx::query_scalar("select count(*) from attachments")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn upload_presign_creates_the_attachment_and_a_url_that_completes_it() {
    let w = World::new().await;
    let log = uuid::Uuid::now_v7();
    sqlx::query("insert into time_logs (id, org_id, user_id, comment, status) values ($1, $2, $3, 'design review', 'ready')")
        .bind(log)
        .bind(w.id("org_a"))
        .bind(w.id("member_a"))
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    let (status, body) = w
        .call("member_a", "upload.presign", json!({"org_id": w.id("org_a"), "log_id": log,
            "kind": "image", "filename": "shot.png", "content_type": "image/png", "size_bytes": PNG.len()}))
        .await;
    assert_eq!(status, 201, "{body}");
    let path = format!("{}/{log}/shot.png", w.id("org_a"));
    assert_eq!(body["bucket"], "images");
    assert_eq!(body["path"], path);
    assert!(body["expires_at"].is_string());
    let id = body["attachment_id"].as_str().unwrap().to_owned();
    let pending = attachment(&w, &id).await;
    assert_eq!(pending["status"], "pending_upload");
    assert_eq!(pending["time_log_id"], log.to_string());
    assert_eq!(pending["object_path"], path);

    // The client sends the file to the URL, with no other credential.
    let url = body["signed_url"].as_str().unwrap();
    assert!(
        url.starts_with(&w.app.url("/storage/v1/object/upload/sign/images/")),
        "{url}"
    );
    assert!(url.ends_with(body["token"].as_str().unwrap()));
    let res = reqwest::Client::new()
        .put(url)
        .header("content-type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let uploaded = attachment(&w, &id).await;
    // Uploaded, and from there its text is being (or has been) extracted by a job.
    assert!(
        matches!(
            uploaded["status"].as_str(),
            Some("uploaded" | "processing" | "processed")
        ),
        "{uploaded}"
    );
    assert_eq!(uploaded["size_bytes"], PNG.len());
    assert_eq!(uploaded["content_type"], "image/png");
    assert_eq!(uploaded["sha256"], hex::encode(Sha256::digest(PNG)));

    // Without a log, the attachment's own id names the folder.
    let (status, loose) = w
        .call(
            "member_a",
            "upload-presign",
            json!({"org_id": w.id("org_a"), "kind": "voice",
            "filename": "note.wav", "content_type": "audio/wav", "size_bytes": 2048}),
        )
        .await;
    assert_eq!(status, 201, "{loose}");
    assert_eq!(
        loose["path"],
        format!(
            "{}/{}/note.wav",
            w.id("org_a"),
            loose["attachment_id"].as_str().unwrap()
        )
    );
    assert_eq!(loose["bucket"], "voices");
}

#[tokio::test]
async fn upload_presign_refuses_bad_requests_and_strangers_and_writes_nothing() {
    let w = World::new().await;
    let org = w.id("org_a");
    let good = json!({"org_id": org, "kind": "image", "filename": "a.png",
        "content_type": "image/png", "size_bytes": 100});
    let with = |patch: Value| {
        let mut body = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (who, body, status, code) in [
        (
            "member_a",
            with(json!({"kind": "video"})),
            400,
            "invalid_request",
        ),
        (
            "member_a",
            with(json!({"filename": "../a.png"})),
            400,
            "invalid_request",
        ),
        (
            "member_a",
            with(json!({"filename": "a\\b.png"})),
            400,
            "invalid_request",
        ),
        (
            "member_a",
            with(json!({"content_type": "image/gif"})),
            415,
            "unsupported_media_type",
        ),
        (
            "member_a",
            with(json!({"size_bytes": 11 * 1024 * 1024})),
            413,
            "payload_too_large",
        ),
        (
            "member_a",
            with(json!({"size_bytes": 0})),
            400,
            "invalid_request",
        ),
        (
            "member_a",
            with(json!({"log_id": uuid::Uuid::now_v7()})),
            404,
            "not_found",
        ),
        ("owner_b", good.clone(), 403, "forbidden"),
        ("viewer_a", good.clone(), 403, "forbidden"),
    ] {
        let (got, answer) = w.call(who, "upload-presign", body.clone()).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body} → {answer}"
        );
    }
    let (status, _) = w
        .invoke("upload-presign", &w.app.keys.anon_key(), good.clone())
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        attachments(&w).await,
        0,
        "no refused request left an attachment"
    );
}
