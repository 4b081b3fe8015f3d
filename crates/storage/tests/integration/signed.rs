//! Signed download and upload URLs: they work without a token, for their own path and
//! operation only, and not after they expire or once tampered with.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{PNG, World, assert_error, json_of, wav};

#[tokio::test]
async fn signed_download_urls_open_one_object_until_they_expire() {
    let w = World::new().await;
    let shot = w.path("org_a", "log_ma", "shot.png");
    let other = w.path("org_a", "log_ma", "other.png");
    for name in [&shot, &other] {
        assert_eq!(
            w.upload("member_a", "images", name, PNG.to_vec(), "image/png", false)
                .await
                .0,
            200
        );
    }
    let (status, signed) = w
        .post(
            "member_a",
            &format!("/object/sign/images/{shot}"),
            json!({"expiresIn": 60}),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    let relative = signed["signedURL"].as_str().unwrap();
    assert!(
        relative.starts_with(&format!("/object/sign/images/{shot}?token=")),
        "{relative}"
    );
    let url = w.app.url(&format!("/storage/v1{relative}"));
    assert_eq!(w.fetch(&url).await, (200, PNG.to_vec()));
    let res = reqwest::get(format!("{url}&download=")).await.unwrap();
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"shot.png\""
    );

    let token = relative.split("token=").nth(1).unwrap();
    // Another path, the upload route, a tampered signature: all refused.
    let (status, body) =
        fetch_json(&w, &format!("/object/sign/images/{other}?token={token}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidSignature")),
        "{body}"
    );
    let replay = json_of(
        reqwest::Client::new()
            .put(w.app.url(&format!(
                "/storage/v1/object/upload/sign/images/{shot}?token={token}"
            )))
            .header("content-type", "image/png")
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&replay, "400", "InvalidJWT");
    let mut tampered = token.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, body) =
        fetch_json(&w, &format!("/object/sign/images/{shot}?token={tampered}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        matches!(
            body["code"].as_str(),
            Some("InvalidSignature" | "InvalidJWT")
        ),
        "{body}"
    );
    // An expired token (signed by the project's key, past its exp).
    let now = chrono::Utc::now().timestamp();
    let expired = w
        .app
        .keys
        .sign(&json!({"url": format!("images/{shot}"), "scope": "download", "iat": now - 600, "exp": now - 300}))
        .unwrap();
    let (status, body) =
        fetch_json(&w, &format!("/object/sign/images/{shot}?token={expired}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("ExpiredToken")),
        "{body}"
    );
    // A user's access token is not a signed URL.
    let (status, _) = fetch_json(
        &w,
        &format!("/object/sign/images/{shot}?token={}", w.token("member_a")),
    )
    .await;
    assert_eq!(status, 400);
    // No token at all.
    let (status, _) = fetch_json(&w, &format!("/object/sign/images/{shot}")).await;
    assert_eq!(status, 400);

    // Many at once: an entry per path, an error where the caller sees nothing.
    let (status, many) = w
        .post(
            "member_a",
            "/object/sign/images",
            json!({"expiresIn": 60, "paths": [shot, "missing.png"]}),
        )
        .await;
    assert_eq!(status, 200, "{many}");
    assert!(
        many[0]["error"].is_null() && many[0]["signedURL"].is_string(),
        "{many}"
    );
    assert_eq!(many[1]["path"], "missing.png");
    assert!(many[1]["signedURL"].is_null() && many[1]["error"].is_string());
    let url = w.app.url(&format!(
        "/storage/v1{}",
        many[0]["signedURL"].as_str().unwrap()
    ));
    assert_eq!(w.fetch(&url).await.0, 200);
    // expiresIn is required and bounded.
    for body in [
        json!({}),
        json!({"expiresIn": 0}),
        json!({"expiresIn": "soon"}),
    ] {
        let refused = w
            .post("member_a", &format!("/object/sign/images/{shot}"), body)
            .await;
        assert_error(&refused, "400", "InvalidRequest");
    }
    // storage3 (supabase-py) sends it as a string; Supabase Storage coerces it.
    let (status, coerced) = w
        .post(
            "member_a",
            &format!("/object/sign/images/{shot}"),
            json!({"expiresIn": "60"}),
        )
        .await;
    assert_eq!(status, 200, "{coerced}");
    assert!(coerced["signedURL"].is_string());
}

async fn fetch_json(w: &World, path: &str) -> (u16, Value) {
    json_of(
        reqwest::get(w.app.url(&format!("/storage/v1{path}")))
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn signed_upload_urls_let_a_client_upload_once_checked() {
    let w = World::new().await;
    let note = w.path("org_a", "log_ma", "note.wav");
    let (status, signed) = w
        .post(
            "member_a",
            &format!("/object/upload/sign/voices/{note}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    let url = signed["url"].as_str().unwrap();
    let token = signed["token"].as_str().unwrap();
    assert!(url.starts_with(&format!("/object/upload/sign/voices/{note}?token=")));
    assert!(url.ends_with(token));
    // Signing checked nothing was written yet.
    assert!(w.rows("voices").await.is_empty());

    // Another path with this token is refused; the right one is accepted without a bearer.
    let elsewhere = w.path("org_a", "log_ma", "other.wav");
    let w = &w;
    let put = |path: String, body: Vec<u8>| async move {
        json_of(
            reqwest::Client::new()
                .put(w.app.url(&format!(
                    "/storage/v1/object/upload/sign/voices/{path}?token={token}"
                )))
                .header("content-type", "audio/wav")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    assert_error(&put(elsewhere, wav(10)).await, "400", "InvalidSignature");
    let (status, body) = put(note.clone(), wav(500)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Key"], format!("voices/{note}"));
    assert_eq!(
        w.get("member_a", &format!("/object/voices/{note}")).await.1,
        wav(500)
    );
    let owner: Option<uuid::Uuid> = sqlx::query_scalar(
        "select owner from storage.objects where bucket_id = 'voices' and name = $1",
    )
    .bind(&note)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!(owner, Some(w.id("member_a")), "the signer owns the object");
    // Without upsert in the grant, the same URL cannot overwrite it.
    assert_error(
        &put(note.clone(), wav(5)).await,
        "409",
        "ResourceAlreadyExists",
    );
    // The type is still checked.
    let fake = w.path("org_a", "log_ma", "fake.wav");
    let (_, signed) = w
        .post(
            "member_a",
            &format!("/object/upload/sign/voices/{fake}"),
            json!({}),
        )
        .await;
    let res = reqwest::Client::new()
        .put(
            w.app
                .url(&format!("/storage/v1{}", signed["url"].as_str().unwrap())),
        )
        .header("content-type", "audio/wav")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_error(&json_of(res).await, "415", "InvalidMimeType");

    // Someone who may not write there cannot get a URL at all.
    let refused = w
        .post(
            "owner_b",
            &format!("/object/upload/sign/voices/{note}"),
            json!({}),
        )
        .await;
    assert_error(&refused, "403", "AccessDenied");
    // An expired upload token.
    let now = chrono::Utc::now().timestamp();
    let expired = w
        .app
        .keys
        .sign(
            &json!({"owner": w.id("member_a"), "url": format!("voices/{fake}"), "upsert": false,
            "scope": "upload", "iat": now - 600, "exp": now - 300}),
        )
        .unwrap();
    let res = w
        .request(
            "anon",
            Method::PUT,
            &format!("/object/upload/sign/voices/{fake}?token={expired}"),
        )
        .header("content-type", "audio/wav")
        .body(wav(10))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("ExpiredToken")),
        "{body}"
    );
    assert_eq!(w.rows("voices").await, vec![note]);
}
