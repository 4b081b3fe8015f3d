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
    assert!(user["invited_at"].is_string(), "{user}");
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

#[tokio::test]
async fn an_anonymous_person_becomes_permanent_with_what_they_made() {
    // Off by default, as on Supabase.
    let off = Api::new().await;
    let res = off
        .req(Method::POST, "/signup")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "anonymous_provider_disabled");

    let api = Api::with(|c| c.auth.anonymous_sign_ins = true).await;
    let settings = ok_json(api.req(Method::GET, "/settings").send().await.unwrap()).await;
    assert_eq!(settings["external"]["anonymous_users"], true);
    let res = api
        .req(Method::POST, "/signup")
        .json(&json!({"data": {"color": "teal"}}))
        .send()
        .await
        .unwrap();
    let session = ok_json(res).await;
    let token = session["access_token"].as_str().unwrap();
    let claims = api.app.keys.verify(token).unwrap();
    assert_eq!(claims.0["is_anonymous"], true);
    assert_eq!(claims.0["amr"][0]["method"], "anonymous");
    assert_eq!(session["user"]["is_anonymous"], true);
    assert_eq!(session["user"]["user_metadata"]["color"], "teal");
    assert_eq!(session["user"]["identities"], json!([]));
    let id = session["user"]["id"].as_str().unwrap().to_owned();

    // They track time before deciding to keep it: an org of their own and a log in it.
    let rest = |method: Method, path: &str, token: &str| {
        reqwest::Client::new()
            .request(method, api.app.url(path))
            .header("apikey", api.app.keys.anon_key())
            .bearer_auth(token.to_owned())
    };
    let org: String = rest(Method::POST, "/rest/v1/rpc/create_organization", token)
        .json(&json!({"name": "Side project"}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = rest(Method::POST, "/rest/v1/time_logs", token)
        .json(
            &json!({"org_id": org, "user_id": id, "comment": "sketching", "duration_minutes": 40}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // A password alone cannot make them permanent; an email and a password do.
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 422);
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"email": "kept@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let user = ok_json(res).await;
    assert_eq!(
        (user["id"].as_str(), user["is_anonymous"].as_bool()),
        (Some(id.as_str()), Some(false))
    );
    assert_eq!(user["identities"][0]["provider"], "email");
    assert_eq!(user["app_metadata"]["provider"], "email");

    // Signed in with the password: the same person, no longer anonymous, with their log.
    let signed_in = api.sign_in("kept@example.com").await;
    let token = signed_in["access_token"].as_str().unwrap();
    assert_eq!(signed_in["user"]["id"], id.as_str());
    assert_eq!(api.app.keys.verify(token).unwrap().0["is_anonymous"], false);
    let logs: serde_json::Value = rest(Method::GET, "/rest/v1/time_logs?select=comment", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs, json!([{"comment": "sketching"}]));
}
