//! GoTrue's `/resend`, `/invite` and `/reauthenticate`, as auth-js calls them.

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, PASSWORD, error_of, ok_json};

/// How many mails the outbox holds for `to`, once it has at least `at_least` (up to 5 s).
async fn mails(api: &Api, to: &str, at_least: i64) -> i64 {
    let mut count = 0;
    for _ in 0..100 {
        count = sqlx::query_scalar("select count(*) from auth.mail_outbox where recipient = $1")
            .bind(to)
            .fetch_one(&api.app.db.owner)
            .await
            .unwrap();
        if count >= at_least {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    count
}

#[tokio::test]
async fn resend_mails_a_pending_confirmation_again_and_nothing_else() {
    let api = Api::with(|c| c.auth.autoconfirm = false).await;
    let resend = |body: serde_json::Value| api.req(Method::POST, "/resend").json(&body).send();
    api.req(Method::POST, "/signup")
        .json(&json!({"email": "late@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(mails(&api, "late@example.com", 1).await, 1);

    let answer = resend(json!({"type": "signup", "email": "late@example.com"}))
        .await
        .unwrap();
    assert_eq!(ok_json(answer).await, json!({}));
    assert_eq!(mails(&api, "late@example.com", 2).await, 2);
    let (template, _, _) = api.last_mail("late@example.com").await;
    assert_eq!(template, "confirmation");
    // The resent link confirms the account.
    let location = api.follow_mail_link("late@example.com").await;
    assert!(location.contains("access_token="), "{location}");
    // Confirmed, or unknown: the same answer and no mail.
    for email in ["late@example.com", "ghost@example.com"] {
        let answer = resend(json!({"type": "signup", "email": email}))
            .await
            .unwrap();
        assert_eq!(ok_json(answer).await, json!({}));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mails(&api, "late@example.com", 3).await, 2);
    assert_eq!(mails(&api, "ghost@example.com", 1).await, 0);

    let (status, code, _) = error_of(
        resend(json!({"type": "other", "email": "a@example.com"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "validation_failed"));
    let (status, code, _) = error_of(resend(json!({"type": "signup"})).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "validation_failed"));
    let (status, code, _) = error_of(
        resend(json!({"type": "sms", "phone": "+15555550100"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "phone_provider_disabled"));
}

#[tokio::test]
async fn invite_creates_the_user_and_mails_a_link_that_signs_them_in() {
    let api = Api::new().await;
    let invite = |email: &str| {
        api.as_admin(Method::POST, "/invite")
            .json(&json!({"email": email, "data": {"full_name": "New Person"}}))
            .send()
    };
    let user = ok_json(invite("new@example.com").await.unwrap()).await;
    assert_eq!(user["email"], "new@example.com");
    assert_eq!(user["user_metadata"]["full_name"], "New Person");
    assert!(user["email_confirmed_at"].is_null(), "{user}");
    let (template, _, _) = api.last_mail("new@example.com").await;
    assert_eq!(template, "invite");
    // Not accepted yet: invited again, with a fresh link.
    ok_json(invite("new@example.com").await.unwrap()).await;
    assert_eq!(mails(&api, "new@example.com", 2).await, 2);
    let location = api.follow_mail_link("new@example.com").await;
    assert!(
        location.contains("type=invite") && location.contains("access_token="),
        "{location}"
    );
    // Accepted: the address is taken.
    let (status, code, _) = error_of(invite("new@example.com").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (422, "email_exists"));
    // Only the service role invites.
    let refused = api
        .req(Method::POST, "/invite")
        .json(&json!({"email": "other@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (status, code, _) = error_of(invite("not an email").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "validation_failed"));
}

#[tokio::test]
async fn a_reauthentication_nonce_stands_for_the_current_password_once() {
    let api = Api::with(|c| c.auth.password_require_current = true).await;
    let session = api.sign_up("me@example.com").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let change =
        |body: serde_json::Value| api.as_user(Method::PUT, "/user", &token).json(&body).send();

    let answer = api
        .as_user(Method::GET, "/reauthenticate", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(answer).await, json!({}));
    let (template, _, nonce) = api.last_mail("me@example.com").await;
    assert_eq!(template, "reauthentication");
    assert_eq!(nonce.len(), 6);

    let (status, code, _) = error_of(
        change(json!({"password": "another-horse-battery", "nonce": "000000"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "reauthentication_not_valid"));
    ok_json(
        change(json!({"password": "another-horse-battery", "nonce": nonce}))
            .await
            .unwrap(),
    )
    .await;
    let signed_in = api
        .req(Method::POST, "/token?grant_type=password")
        .json(&json!({"email": "me@example.com", "password": "another-horse-battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    // Used once: the same nonce no longer works, and without one the current password is asked.
    let (status, code, _) = error_of(
        change(json!({"password": "third-horse-battery", "nonce": nonce}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "reauthentication_not_valid"));
    let (status, code, _) = error_of(
        change(json!({"password": "third-horse-battery"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "current_password_required"));
    let anonymous = api
        .req(Method::GET, "/reauthenticate")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);
}
