//! `GET /user` and `PUT /user`.

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, PASSWORD, error_of, ok_json};

#[tokio::test]
async fn get_and_update_the_user() {
    let api = Api::new().await;
    let session = api.sign_up("u@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let user = api.user(token).await;
    assert_eq!(user["id"], session["user"]["id"]);

    // data merges into user_metadata; null removes a key.
    let body = json!({"data": {"team": "core", "full_name": null}});
    let user = ok_json(
        api.as_user(Method::PUT, "/user", token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["user_metadata"], json!({"team": "core"}));

    // A new password works for sign-in; the same password again is refused.
    let body = json!({"password": "a-brand-new-password"});
    ok_json(
        api.as_user(Method::PUT, "/user", token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "same_password");
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "weak_password");
    let res = api
        .req(Method::POST, "/token?grant_type=password")
        .json(&json!({"email": "u@example.com", "password": "a-brand-new-password"}))
        .send()
        .await
        .unwrap();
    ok_json(res).await;

    // With autoconfirm the email changes at once; a taken one is refused.
    api.sign_up("other@example.com").await;
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"email": "other@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "email_exists");
    let user = ok_json(
        api.as_user(Method::PUT, "/user", token)
            .json(&json!({"email": "New@Example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["email"], "new@example.com");

    // app_metadata is for admins.
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"app_metadata": {"plan": "pro"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "not_admin");
}

#[tokio::test]
async fn password_change_can_require_the_current_password() {
    let api = Api::with(|c| c.auth.password_require_current = true).await;
    let session = api.sign_up("p@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"password": "another-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "current_password_required");
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"password": "another-password", "current_password": "not-it-at-all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "current_password_mismatch");
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"password": "another-password", "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    ok_json(res).await;
}

#[tokio::test]
async fn email_change_without_autoconfirm_waits_for_the_link() {
    let api = Api::with(|c| c.auth.autoconfirm = false).await;
    let (_, _, otp) = {
        api.req(Method::POST, "/signup")
            .json(&json!({"email": "e@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        api.last_mail("e@example.com").await
    };
    let session = ok_json(
        api.req(Method::POST, "/verify")
            .json(&json!({"type": "signup", "email": "e@example.com", "token": otp}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let token = session["access_token"].as_str().unwrap();
    let user = ok_json(
        api.as_user(Method::PUT, "/user", token)
            .json(&json!({"email": "f@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["email"], "e@example.com");
    assert_eq!(user["new_email"], "f@example.com");
    let (template, _, otp) = api.last_mail("f@example.com").await;
    assert_eq!(template, "email_change");
    let session = ok_json(
        api.req(Method::POST, "/verify")
            .json(&json!({"type": "email_change", "email": "f@example.com", "token": otp}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(session["user"]["email"], "f@example.com");
    assert!(session["user"]["new_email"].is_null());
}
