//! Refresh rotation, reuse detection and sign-out scopes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Api, error_of, ok_json};

async fn refresh(api: &Api, token: &str) -> reqwest::Response {
    api.req(Method::POST, "/token?grant_type=refresh_token")
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let api = Api::with(|c| c.auth.refresh_reuse_interval = 0).await;
    let first = api.sign_up("r@example.com").await;
    let t1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = ok_json(refresh(&api, &t1).await).await;
    let t2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t2);
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    let claims = api
        .app
        .keys
        .verify(second["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        claims.0["session_id"],
        api.app
            .keys
            .verify(first["access_token"].as_str().unwrap())
            .unwrap()
            .0["session_id"]
    );

    // t1 again: a stolen token. The whole session is revoked, t2 included.
    let (status, code, _) = error_of(refresh(&api, &t1).await).await;
    assert_eq!((status, code.as_str()), (400, "refresh_token_already_used"));
    let (_, code, _) = error_of(refresh(&api, &t2).await).await;
    assert_eq!(code, "refresh_token_not_found");
    let res = api
        .as_user(
            Method::GET,
            "/user",
            second["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (403, "session_not_found"));
}

/// Refreshes `session`'s token once, waits out the reuse interval (1 s) and presents the
/// rotated-out token again: refused, and the family (the session and its newer token) with it.
pub(crate) async fn reuse_after_the_interval_revokes(
    api: &Api,
    flow: &str,
    session: &serde_json::Value,
) {
    let t1 = session["refresh_token"].as_str().unwrap().to_owned();
    let second = ok_json(refresh(api, &t1).await).await;
    let t2 = second["refresh_token"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, code, _) = error_of(refresh(api, &t1).await).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "refresh_token_already_used"),
        "{flow}"
    );
    let (_, code, _) = error_of(refresh(api, t2).await).await;
    assert_eq!(
        code, "refresh_token_not_found",
        "{flow}: the newer token dies too"
    );
    let access = second["access_token"].as_str().unwrap();
    let (status, code, _) = error_of(
        api.as_user(Method::GET, "/user", access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (403, "session_not_found"),
        "{flow}"
    );
}

/// Every flow that starts a session (sign-up, password, email code, magic link by hash, an
/// admin's generated link, PKCE) hands out tokens that rotate with reuse detection.
#[tokio::test]
async fn every_flow_that_issues_refresh_tokens_detects_reuse() {
    let api = Api::with(|c| c.auth.refresh_reuse_interval = 1).await;
    let signed_up = api.sign_up("flows@example.com").await;
    reuse_after_the_interval_revokes(&api, "signup", &signed_up).await;
    let password = api.sign_in("flows@example.com").await;
    reuse_after_the_interval_revokes(&api, "password", &password).await;

    let otp_body = json!({"email": "flows@example.com"});
    ok_json(
        api.req(Method::POST, "/otp")
            .json(&otp_body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (_, _, otp) = api.last_mail("flows@example.com").await;
    let by_code = ok_json(
        api.req(Method::POST, "/verify")
            .json(&json!({"type": "email", "email": "flows@example.com", "token": otp}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reuse_after_the_interval_revokes(&api, "otp", &by_code).await;

    let link = ok_json(
        api.as_admin(Method::POST, "/admin/generate_link")
            .json(&json!({"type": "magiclink", "email": "flows@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let by_link = ok_json(
        api.req(Method::POST, "/verify")
            .json(&json!({"type": "magiclink", "token_hash": link["hashed_token"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reuse_after_the_interval_revokes(&api, "admin link", &by_link).await;

    let verifier = "v".repeat(20) + &"0123456789abcdef".repeat(6);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    ok_json(
        api.req(Method::POST, "/otp")
            .json(
                &json!({"email": "flows@example.com", "code_challenge": challenge,
                "code_challenge_method": "s256"}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let location = api.follow_mail_link("flows@example.com").await;
    let code = location
        .split_once("code=")
        .map(|(_, c)| c.to_owned())
        .unwrap();
    let pkce = ok_json(
        api.req(Method::POST, "/token?grant_type=pkce")
            .json(&json!({"auth_code": code, "code_verifier": verifier}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reuse_after_the_interval_revokes(&api, "pkce", &pkce).await;
}

#[tokio::test]
async fn concurrent_refreshes_within_the_grace_period_all_succeed() {
    let api = Api::new().await;
    let session = api.sign_up("c@example.com").await;
    let token = session["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&api, token), refresh(&api, token));
    let (a, b) = (ok_json(a).await, ok_json(b).await);
    assert_ne!(a["refresh_token"], b["refresh_token"]);
    // Both new tokens keep working.
    ok_json(refresh(&api, a["refresh_token"].as_str().unwrap()).await).await;
    ok_json(refresh(&api, b["refresh_token"].as_str().unwrap()).await).await;
}

#[tokio::test]
async fn refresh_errors() {
    let api = Api::new().await;
    let (status, code, _) = error_of(refresh(&api, "no-such-token").await).await;
    assert_eq!((status, code.as_str()), (400, "refresh_token_not_found"));
    // An empty token is an OAuth-style error.
    let res = refresh(&api, "").await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "refresh_token required"})
    );
}

#[tokio::test]
async fn logout_scopes() {
    let api = Api::new().await;
    let a = api.sign_up("l@example.com").await;
    let b = api.sign_in("l@example.com").await;
    let c = api.sign_in("l@example.com").await;
    let token = |s: &serde_json::Value| s["access_token"].as_str().unwrap().to_owned();
    let user_status = |t: String| {
        let req = api.as_user(Method::GET, "/user", &t);
        async move { req.send().await.unwrap().status().as_u16() }
    };

    // others: every session but b's ends.
    let res = api
        .as_user(Method::POST, "/logout?scope=others", &token(&b))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(user_status(token(&a)).await, 403);
    assert_eq!(user_status(token(&c)).await, 403);
    assert_eq!(user_status(token(&b)).await, 200);

    // local: b's session ends; a new one is unaffected.
    let d = api.sign_in("l@example.com").await;
    let res = api
        .as_user(Method::POST, "/logout?scope=local", &token(&b))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(user_status(token(&b)).await, 403);
    assert_eq!(user_status(token(&d)).await, 200);

    // global (the default): everything ends, refresh tokens too.
    let e = api.sign_in("l@example.com").await;
    let res = api
        .as_user(Method::POST, "/logout", &token(&d))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(user_status(token(&e)).await, 403);
    let (_, code, _) = error_of(refresh(&api, e["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(code, "refresh_token_not_found");

    let res = api
        .as_user(Method::POST, "/logout?scope=everything", &token(&e))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "a signed-out token cannot sign out again"
    );
    let f = api.sign_in("l@example.com").await;
    let res = api
        .as_user(Method::POST, "/logout?scope=everything", &token(&f))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "validation_failed");
}

/// A signed-out session's token is refused by the rest of Tally too (through the shared
/// caller check), not only by /auth/v1.
#[tokio::test]
async fn revoked_sessions_are_refused_by_the_shared_caller_check() {
    let api = Api::new().await;
    let session = api.sign_up("s@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let ctx = tally_core::gateway::resolve_caller(&api.app.db.requests, &api.app.keys, token).await;
    assert!(ctx.is_ok());
    api.as_user(Method::POST, "/logout", token)
        .send()
        .await
        .unwrap();
    let ctx = tally_core::gateway::resolve_caller(&api.app.db.requests, &api.app.keys, token).await;
    assert!(matches!(
        ctx,
        Err(tally_core::gateway::CallerError::SessionRevoked)
    ));
}

/// A token whose `session_id` is not a UUID names no session and could never be revoked: the
/// auth service refuses it as GoTrue does (403 `session_not_found`), and so does every other
/// service, each in its own error shape.
#[tokio::test]
async fn a_session_id_that_is_not_a_uuid_is_refused_everywhere() {
    let api = Api::new().await;
    let session = api.sign_up("n@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let mut claims = api.app.keys.verify(token).unwrap().0;
    claims["session_id"] = json!("not-a-session");
    let forged = api.app.keys.sign(&Value::Object(claims)).unwrap();

    let (status, code, _) = error_of(
        api.as_user(Method::GET, "/user", &forged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "session_not_found"));

    let anon = api.app.keys.anon_key();
    let http = reqwest::Client::new();
    // Each service's own refusal of a bad token: PostgREST 401, Storage 400 `InvalidJWT`.
    for (method, path, expected, field) in [
        (Method::GET, "/rest/v1/time_logs", 401, "code"),
        (Method::GET, "/storage/v1/bucket", 400, "statusCode"),
        (Method::POST, "/functions/v1/log-create", 401, "error"),
    ] {
        let res = http
            .request(method, api.app.url(path))
            .header("apikey", &anon)
            .bearer_auth(&forged)
            .json(&json!({"comment": "1h review"}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body.get(field).is_some(), "{path}: {body}");
    }
}
