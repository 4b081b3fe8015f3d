//! Recovery, magic links, email links (implicit and PKCE) and the code exchange.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{Api, error_of, ok_json};

fn fragment_params(location: &str) -> std::collections::HashMap<String, String> {
    let fragment = location.split_once('#').map(|(_, f)| f).unwrap_or_default();
    fragment
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn recovery_link_signs_in_with_tokens_in_the_fragment() {
    let api = Api::with(|c| c.auth.uri_allow_list = "http://localhost:5173/*".into()).await;
    api.sign_up("r@example.com").await;
    let res = api
        .req(
            Method::POST,
            "/recover?redirect_to=http://localhost:5173/reset",
        )
        .json(&json!({"email": "r@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(res).await, json!({}));
    let (template, link, _) = api.last_mail("r@example.com").await;
    assert_eq!(template, "recovery");
    let path = link.split_once("/auth/v1").unwrap().1;
    let res = api.req(Method::GET, path).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://localhost:5173/reset#"),
        "{location}"
    );
    let params = fragment_params(&location);
    assert_eq!(params["type"], "recovery");
    assert_eq!(params["token_type"], "bearer");
    assert_eq!(params["expires_in"], "3600");
    let user = ok_json(
        api.as_user(Method::GET, "/user", &params["access_token"])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(user["email"], "r@example.com");
    let claims = api.app.keys.verify(&params["access_token"]).unwrap();
    assert_eq!(claims.0["amr"][0]["method"], "recovery");

    // The link works once; the second click comes back with an error in query and fragment.
    let res = api.req(Method::GET, path).send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("?error=access_denied&error_code=otp_expired"),
        "{location}"
    );
    assert!(location.contains("#error=access_denied"), "{location}");
}

#[tokio::test]
async fn recover_answers_the_same_for_unknown_addresses_and_redirects_stay_on_the_allow_list() {
    let api = Api::new().await;
    let res = api
        .req(Method::POST, "/recover")
        .json(&json!({"email": "ghost@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(res).await, json!({}));
    let mails: i64 = sqlx::query_scalar("select count(*) from auth.mail_outbox")
        .fetch_one(&api.app.db.owner)
        .await
        .unwrap();
    assert_eq!(mails, 0);

    api.sign_up("a@example.com").await;
    api.req(
        Method::POST,
        "/recover?redirect_to=https://evil.example/steal",
    )
    .json(&json!({"email": "a@example.com"}))
    .send()
    .await
    .unwrap();
    let (_, link, _) = api.last_mail("a@example.com").await;
    assert!(
        link.ends_with("redirect_to=http%3A%2F%2F127.0.0.1%3A3000"),
        "{link}"
    );
}

/// Whether an address has an account shows in neither the answer nor its time. Asked in pairs
/// (a known and an unknown address, in turns of who goes first), the known one is not the
/// slower of the two more often than chance allows: 40 pairs, at most 30 (a path with the
/// account's mail work in it, ~2.7 ms more, is slower in nearly every pair).
#[tokio::test]
async fn recover_takes_as_long_for_known_and_unknown_addresses() {
    let api = Api::with(|c| {
        c.auth.rate_limit_auth = 1000;
        c.auth.rate_limit_email = 1000;
    })
    .await;
    api.sign_up("known@example.com").await;
    let time = |email: String| {
        let request = api
            .req(Method::POST, "/recover")
            .json(&json!({"email": email}));
        async move {
            let start = std::time::Instant::now();
            let res = request.send().await.unwrap();
            let elapsed = start.elapsed();
            assert_eq!(ok_json(res).await, json!({}));
            elapsed
        }
    };
    let mut known_slower = 0;
    for i in 0..40 {
        let (known, unknown) = if i % 2 == 0 {
            let known = time("known@example.com".into()).await;
            (known, time(format!("ghost{i}@example.com")).await)
        } else {
            let unknown = time(format!("ghost{i}@example.com")).await;
            (time("known@example.com".into()).await, unknown)
        };
        if known > unknown {
            known_slower += 1;
        }
    }
    assert!(
        known_slower <= 30,
        "the known address was slower in {known_slower} of 40 pairs"
    );
    // The known address got its mails all the same.
    let mails: i64 = sqlx::query_scalar(
        "select count(*) from auth.mail_outbox where recipient = 'known@example.com'",
    )
    .fetch_one(&api.app.db.owner)
    .await
    .unwrap();
    assert!(mails >= 1, "no recovery mail was queued");
}

#[tokio::test]
async fn pkce_recovery_returns_a_code_that_only_the_verifier_redeems() {
    let api = Api::new().await;
    api.sign_up("p@example.com").await;
    let verifier = "a".repeat(20) + &"0123456789abcdef".repeat(6);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let res = api
        .req(Method::POST, "/recover")
        .json(&json!({"email": "p@example.com", "code_challenge": challenge, "code_challenge_method": "s256"}))
        .send()
        .await
        .unwrap();
    ok_json(res).await;
    let location = api.follow_mail_link("p@example.com").await;
    let code = location
        .split_once("?code=")
        .map(|(_, c)| c.to_owned())
        .unwrap_or_else(|| panic!("{location}"));
    assert!(!location.contains("access_token"));

    let exchange = |code: &str, verifier: &str| {
        api.req(Method::POST, "/token?grant_type=pkce")
            .json(&json!({"auth_code": code, "code_verifier": verifier}))
            .send()
    };
    let (status, code_name, _) = error_of(exchange(&code, "wrong-verifier").await.unwrap()).await;
    assert_eq!((status, code_name.as_str()), (400, "bad_code_verifier"));
    let session = ok_json(exchange(&code, &verifier).await.unwrap()).await;
    assert_eq!(session["user"]["email"], "p@example.com");
    let (status, code_name, _) = error_of(exchange(&code, &verifier).await.unwrap()).await;
    assert_eq!((status, code_name.as_str()), (404, "flow_state_not_found"));
    let (status, code_name, _) = error_of(exchange("", "").await.unwrap()).await;
    assert_eq!((status, code_name.as_str()), (400, "validation_failed"));
}

#[tokio::test]
async fn magic_link_by_token_hash_and_by_code() {
    let api = Api::new().await;
    // signInWithOtp creates the user when needed.
    let res = api
        .req(Method::POST, "/otp")
        .json(&json!({"email": "m@example.com", "data": {"k": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(res).await, json!({}));
    let (template, link, _) = api.last_mail("m@example.com").await;
    assert_eq!(template, "magiclink");
    let token_hash = link
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let session = ok_json(
        api.req(Method::POST, "/verify")
            .json(&json!({"type": "magiclink", "token_hash": token_hash}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(session["user"]["user_metadata"]["k"], 1);
    assert!(session["user"]["email_confirmed_at"].is_string());

    // The code from the mail works too (type "email"), once.
    api.req(Method::POST, "/otp")
        .json(&json!({"email": "m@example.com"}))
        .send()
        .await
        .unwrap();
    let (_, _, otp) = api.last_mail("m@example.com").await;
    let body = json!({"type": "email", "email": "m@example.com", "token": otp});
    ok_json(
        api.req(Method::POST, "/verify")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (status, code, _) = error_of(
        api.req(Method::POST, "/verify")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "otp_expired"));

    let res = api
        .req(Method::POST, "/otp")
        .json(&json!({"email": "nobody@example.com", "create_user": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "otp_disabled");
    let res = api
        .req(Method::POST, "/verify")
        .json(&json!({"type": "sms", "token_hash": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "validation_failed");
}
