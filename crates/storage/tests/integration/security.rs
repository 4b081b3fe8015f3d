//! RLS decides: another org reaches nothing, and inside an org each role gets DESIGN §2.

use reqwest::Method;
use serde_json::json;

use crate::{World, assert_error, wav};

#[tokio::test]
async fn another_org_cannot_download_sign_list_overwrite_or_delete() {
    let w = World::new().await;
    let note = w.path("org_a", "log_ma", "note.wav");
    let (status, body) = w
        .upload("member_a", "voices", &note, wav(2000), "audio/wav", false)
        .await;
    assert_eq!(status, 200, "{body}");
    let org_a = w.id("org_a").to_string();

    for stranger in ["owner_b", "anon"] {
        assert_error(
            &w.get_json(stranger, &format!("/object/voices/{note}"))
                .await,
            "404",
            "NoSuchKey",
        );
        assert_error(
            &w.get_json(stranger, &format!("/object/authenticated/voices/{note}"))
                .await,
            "404",
            "NoSuchKey",
        );
        assert_error(
            &w.get_json(stranger, &format!("/object/info/voices/{note}"))
                .await,
            "404",
            "NoSuchKey",
        );
        assert_error(
            &w.post(
                stranger,
                &format!("/object/sign/voices/{note}"),
                json!({"expiresIn": 60}),
            )
            .await,
            "404",
            "NoSuchKey",
        );
        let (status, many) = w
            .post(
                stranger,
                "/object/sign/voices",
                json!({"expiresIn": 60, "paths": [note]}),
            )
            .await;
        assert_eq!(status, 200);
        assert!(
            many[0]["signedURL"].is_null() && many[0]["error"].is_string(),
            "{many}"
        );
        let (status, listed) = w
            .post(stranger, "/object/list/voices", json!({"prefix": org_a}))
            .await;
        assert_eq!((status, listed.clone()), (200, json!([])), "{stranger}");
        let (status, root) = w
            .post(stranger, "/object/list/voices", json!({"prefix": ""}))
            .await;
        assert_eq!(
            (status, root),
            (200, json!([])),
            "not even the org's folder name"
        );
        for upsert in [false, true] {
            let overwrite = w
                .upload(stranger, "voices", &note, wav(10), "audio/wav", upsert)
                .await;
            assert_error(&overwrite, "403", "AccessDenied");
        }
        let (status, removed) = w
            .delete(stranger, "/object/voices", json!({"prefixes": [note]}))
            .await;
        assert_eq!((status, removed), (200, json!([])));
        assert_error(
            &w.delete(stranger, &format!("/object/voices/{note}"), json!({}))
                .await,
            "404",
            "NoSuchKey",
        );
        let moved = w
            .post(
                stranger,
                "/object/move",
                json!({"bucketId": "voices", "sourceKey": note,
                "destinationKey": w.path("org_b", "log_b", "stolen.wav")}),
            )
            .await;
        assert_error(&moved, "404", "NoSuchKey");
        let copied = w
            .post(
                stranger,
                "/object/copy",
                json!({"bucketId": "voices", "sourceKey": note,
                "destinationKey": w.path("org_b", "log_b", "stolen.wav")}),
            )
            .await;
        assert_error(&copied, "404", "NoSuchKey");
    }
    // Nothing changed: the one row, the one file, the original bytes.
    assert_eq!(w.rows("voices").await, vec![note.clone()]);
    assert_eq!(w.files("voices").len(), 1);
    assert_eq!(
        w.get("member_a", &format!("/object/voices/{note}")).await.1,
        wav(2000)
    );
}

#[tokio::test]
async fn inside_an_org_each_role_reaches_what_design_says() {
    let w = World::new().await;
    let note = w.path("org_a", "log_ma", "note.wav");
    assert_eq!(
        w.upload("member_a", "voices", &note, wav(100), "audio/wav", false)
            .await
            .0,
        200
    );
    let url = format!("/object/voices/{note}");
    // The team's manager, admins and owners read it; another member and the viewer do not.
    for reader in ["member_a", "manager_a", "admin_a", "owner_a"] {
        assert_eq!(w.get(reader, &url).await.0, 200, "{reader}");
    }
    for outsider in ["member2_a", "viewer_a"] {
        assert_error(&w.get_json(outsider, &url).await, "404", "NoSuchKey");
    }
    // Members write only under their own logs; not under a colleague's, another org's, or a
    // made-up folder.
    for (who, path) in [
        ("member2_a", w.path("org_a", "log_ma", "mine.wav")),
        ("member_a", w.path("org_a", "log_m2", "theirs.wav")),
        ("member_a", w.path("org_b", "log_b", "there.wav")),
        (
            "member_a",
            format!("{}/{}/x.wav", w.id("org_a"), uuid::Uuid::now_v7()),
        ),
        ("member_a", "loose.wav".to_owned()),
        ("viewer_a", w.path("org_a", "log_ma", "v.wav")),
        ("manager_a", w.path("org_a", "log_ma", "m.wav")),
    ] {
        let refused = w
            .upload(who, "voices", &path, wav(10), "audio/wav", false)
            .await;
        assert_error(&refused, "403", "AccessDenied");
    }
    // Another member cannot replace or remove it; an admin can.
    assert_error(
        &w.upload("member2_a", "voices", &note, wav(10), "audio/wav", true)
            .await,
        "403",
        "AccessDenied",
    );
    let (_, removed) = w
        .delete("member2_a", "/object/voices", json!({"prefixes": [note]}))
        .await;
    assert_eq!(removed, json!([]));
    let (status, removed) = w
        .delete("admin_a", "/object/voices", json!({"prefixes": [note]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(removed[0]["name"], note);
    assert!(w.files("voices").is_empty());
}

#[tokio::test]
async fn exports_are_written_by_the_server_and_read_through_signed_urls_by_admins() {
    let w = World::new().await;
    let report = format!("{}/2026-11/report.csv", w.id("org_a"));
    let csv = b"day,minutes\n2026-11-24,420\n".to_vec();
    let (status, body) = w
        .upload(
            "service",
            "exports",
            &report,
            csv.clone(),
            "text/csv",
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Nobody else writes there.
    let other = format!("{}/mine.csv", w.id("org_a"));
    assert_error(
        &w.upload("owner_a", "exports", &other, csv.clone(), "text/csv", false)
            .await,
        "403",
        "AccessDenied",
    );
    // Owners and admins sign; the signed URL downloads without a token.
    let (status, signed) = w
        .post(
            "owner_a",
            &format!("/object/sign/exports/{report}"),
            json!({"expiresIn": 60}),
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    let url = w.app.url(&format!(
        "/storage/v1{}",
        signed["signedURL"].as_str().unwrap()
    ));
    assert_eq!(w.fetch(&url).await, (200, csv.clone()));
    // …but do not download directly; members and other orgs cannot sign.
    assert_error(
        &w.get_json("owner_a", &format!("/object/exports/{report}"))
            .await,
        "404",
        "NoSuchKey",
    );
    for who in ["member_a", "viewer_a", "owner_b"] {
        assert_error(
            &w.post(
                who,
                &format!("/object/sign/exports/{report}"),
                json!({"expiresIn": 60}),
            )
            .await,
            "404",
            "NoSuchKey",
        );
    }
    let res = w
        .request(
            "admin_a",
            Method::POST,
            &format!("/object/sign/exports/{report}"),
        )
        .json(&json!({"expiresIn": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
