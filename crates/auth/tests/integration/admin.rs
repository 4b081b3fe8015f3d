//! The admin API, service_role only.

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, PASSWORD, error_of, ok_json};

#[tokio::test]
async fn admin_manages_users() {
    let api = Api::new().await;
    let body = json!({"email": "Made@Example.com", "password": PASSWORD, "email_confirm": true,
                      "user_metadata": {"a": 1}, "app_metadata": {"plan": "pro"}});
    let user = ok_json(
        api.as_admin(Method::POST, "/admin/users")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["email"], "made@example.com");
    assert_eq!(user["app_metadata"]["plan"], "pro");
    assert_eq!(user["app_metadata"]["provider"], "email");
    let id = user["id"].as_str().unwrap().to_owned();
    api.sign_in("made@example.com").await;
    let res = api
        .as_admin(Method::POST, "/admin/users")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "email_exists");

    for n in 0..3 {
        api.sign_up(&format!("u{n}@example.com")).await;
    }
    let res = api
        .as_admin(Method::GET, "/admin/users?page=1&per_page=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-total-count"], "4");
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(
        link,
        "</admin/users?page=2&per_page=2>; rel=\"next\", </admin/users?page=2&per_page=2>; rel=\"last\""
    );
    let page = ok_json(res).await;
    assert_eq!(page["aud"], "authenticated");
    assert_eq!(page["users"].as_array().unwrap().len(), 2);

    let got = ok_json(
        api.as_admin(Method::GET, &format!("/admin/users/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got["id"], id.as_str());
    let updated = ok_json(
        api.as_admin(Method::PUT, &format!("/admin/users/{id}"))
            .json(&json!({"user_metadata": {"b": 2}, "ban_duration": "24h"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(updated["user_metadata"], json!({"a": 1, "b": 2}));
    assert!(updated["banned_until"].is_string());
    let res = api
        .req(Method::POST, "/token?grant_type=password")
        .json(&json!({"email": "made@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "user_banned");
    ok_json(
        api.as_admin(Method::PUT, &format!("/admin/users/{id}"))
            .json(&json!({"ban_duration": "none"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    api.sign_in("made@example.com").await;

    assert_eq!(
        ok_json(
            api.as_admin(Method::DELETE, &format!("/admin/users/{id}"))
                .send()
                .await
                .unwrap()
        )
        .await,
        json!({})
    );
    let res = api
        .as_admin(Method::GET, &format!("/admin/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(res).await,
        (404, "user_not_found".into(), "User not found".into())
    );
    let res = api
        .as_admin(Method::GET, "/admin/users/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "validation_failed");
}

#[tokio::test]
async fn soft_delete_keeps_the_row_but_ends_the_account() {
    let api = Api::new().await;
    let session = api.sign_up("soft@example.com").await;
    let id = session["user"]["id"].as_str().unwrap();
    let res = api
        .as_admin(Method::DELETE, &format!("/admin/users/{id}"))
        .json(&json!({"should_soft_delete": true}))
        .send()
        .await
        .unwrap();
    ok_json(res).await;
    let res = api
        .as_user(
            Method::GET,
            "/user",
            session["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let kept: i64 = sqlx::query_scalar(
        "select count(*) from auth.users where id = $1::uuid and deleted_at is not null",
    )
    .bind(id)
    .fetch_one(&api.app.db.owner)
    .await
    .unwrap();
    assert_eq!(kept, 1);
    api.sign_up("soft@example.com").await;
}

#[tokio::test]
async fn generate_link_returns_a_working_link_without_sending_mail() {
    let api = Api::new().await;
    api.sign_up("g@example.com").await;
    let res = api
        .as_admin(Method::POST, "/admin/generate_link")
        .json(&json!({"type": "magiclink", "email": "g@example.com"}))
        .send()
        .await
        .unwrap();
    let out = ok_json(res).await;
    assert_eq!(out["email"], "g@example.com");
    assert_eq!(out["verification_type"], "magiclink");
    assert_eq!(out["email_otp"].as_str().unwrap().len(), 6);
    let link = out["action_link"].as_str().unwrap();
    assert!(link.contains(out["hashed_token"].as_str().unwrap()));
    let mails: i64 = sqlx::query_scalar("select count(*) from auth.mail_outbox")
        .fetch_one(&api.app.db.owner)
        .await
        .unwrap();
    assert_eq!(mails, 0);
    let session = ok_json(
        api.req(Method::POST, "/verify")
            .json(&json!({"type": "magiclink", "token_hash": out["hashed_token"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(session["user"]["email"], "g@example.com");

    let invite = ok_json(
        api.as_admin(Method::POST, "/admin/generate_link")
            .json(&json!({"type": "invite", "email": "new@example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(invite["verification_type"], "invite");
    let res = api
        .as_admin(Method::POST, "/admin/generate_link")
        .json(&json!({"type": "recovery", "email": "ghost@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "user_not_found");
}

#[tokio::test]
async fn only_the_service_role_reaches_the_admin_api() {
    let api = Api::new().await;
    let session = api.sign_up("x@example.com").await;
    let res = api
        .as_user(
            Method::GET,
            "/admin/users",
            session["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(res).await,
        (403, "not_admin".into(), "User not allowed".into())
    );
    let res = api.req(Method::GET, "/admin/users").send().await.unwrap();
    assert_eq!(error_of(res).await.1, "not_admin");
}

/// GoTrue's admin roles are `service_role` and `supabase_admin` (its `JWT_ADMIN_ROLES`): a
/// `supabase_admin` token (as auth-js's suite signs one) reaches the admin API.
#[tokio::test]
async fn the_supabase_admin_role_reaches_the_admin_api() {
    let api = Api::new().await;
    let admin = api
        .app
        .keys
        .sign(&json!({"sub": "1234567890", "role": "supabase_admin", "exp": 4102444800_i64}))
        .unwrap();
    let res = api
        .as_user(Method::GET, "/admin/users", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(res).await["aud"], "authenticated");
}

/// Bad input to the admin API answers as GoTrue does: an address outside its format is 400
/// `validation_failed` (and no user is made, so a link for it fails the same way); empty
/// paging parameters (as supabase-js sends them) are the defaults.
#[tokio::test]
async fn admin_input_is_checked_as_gotrue_checks_it() {
    let api = Api::new().await;
    let res = api
        .as_admin(Method::POST, "/admin/users")
        .json(&json!({"email": "xx:;x@x.x", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(res).await,
        (
            400,
            "validation_failed".into(),
            "Unable to validate email address: invalid format".into()
        )
    );
    let res = api
        .as_admin(Method::POST, "/admin/generate_link")
        .json(&json!({"type": "signup", "email": "xx:;x@x.x", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "validation_failed");

    api.sign_up("listed@example.com").await;
    let res = api
        .as_admin(Method::GET, "/admin/users?page=&per_page=")
        .send()
        .await
        .unwrap();
    let page = ok_json(res).await;
    assert_eq!(page["users"][0]["email"], "listed@example.com");

    // A password longer than GoTrue's 72 characters is refused, and no user is made.
    let res = api
        .as_admin(Method::POST, "/admin/users")
        .json(&json!({"email": "long@example.com", "password": "p".repeat(73)}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 400);
}
