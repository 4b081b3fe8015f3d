//! Sign-up and password sign-in.

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, PASSWORD, error_of, ok_json};

#[tokio::test]
async fn signup_returns_a_session_and_the_user_can_sign_in() {
    let api = Api::new().await;
    let session = api.sign_up("Ada@Example.com").await;
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["expires_in"], 3600);
    assert!(session["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    assert!(session["refresh_token"].as_str().unwrap().len() >= 12);
    let user = &session["user"];
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "providers": ["email"]})
    );
    assert_eq!(user["user_metadata"]["full_name"], "Test");
    assert!(user["email_confirmed_at"].is_string());
    let identity = &user["identities"][0];
    assert_eq!(identity["provider"], "email");
    assert_eq!(identity["user_id"], user["id"]);
    assert_eq!(identity["identity_data"]["email"], "ada@example.com");

    // The access token carries GoTrue's claims.
    let token = session["access_token"].as_str().unwrap();
    let claims = api.app.keys.verify(token).unwrap();
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "email",
        "phone",
        "app_metadata",
        "user_metadata",
        "role",
        "aal",
        "amr",
        "session_id",
        "is_anonymous",
    ] {
        assert!(claims.0.contains_key(claim), "missing claim {claim}");
    }
    assert_eq!(claims.str("aud"), Some("authenticated"));
    assert_eq!(claims.str("aal"), Some("aal1"));
    assert_eq!(claims.0["amr"][0]["method"], "password");

    // A profile row exists for RLS to use.
    let profiles: i64 =
        sqlx::query_scalar("select count(*) from profiles where email = 'ada@example.com'")
            .fetch_one(&api.app.db.owner)
            .await
            .unwrap();
    assert_eq!(profiles, 1);

    let signed_in = api.sign_in("ADA@example.com").await;
    assert_eq!(signed_in["user"]["id"], user["id"]);
    assert_ne!(signed_in["refresh_token"], session["refresh_token"]);
    assert!(signed_in["user"]["last_sign_in_at"].is_string());
}

#[tokio::test]
async fn signup_errors_match_gotrue() {
    let api = Api::new().await;
    api.sign_up("taken@example.com").await;
    let cases = [
        (
            json!({"email": "taken@example.com", "password": PASSWORD}),
            422,
            "user_already_exists",
        ),
        (
            json!({"email": "new@example.com", "password": "short"}),
            422,
            "weak_password",
        ),
        (
            json!({"email": "new@example.com"}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "a@example.com", "phone": "+1555", "password": PASSWORD}),
            400,
            "validation_failed",
        ),
        (
            json!({"email": "b@example.com", "password": PASSWORD, "code_challenge": "x"}),
            400,
            "validation_failed",
        ),
    ];
    for (body, status, code) in cases {
        let res = api
            .req(Method::POST, "/signup")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (got_status, got_code, message) = error_of(res).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{body}: {message}"
        );
    }
    // The weak-password error lists its reasons, as auth-js expects.
    let res = api
        .req(Method::POST, "/signup")
        .json(&json!({"email": "weak@example.com", "password": "123"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["weak_password"]["reasons"], json!(["length"]));
    assert_eq!(body["message"], "Password should be at least 8 characters.");
    // Unparseable JSON is a 400, not a 500.
    let res = api
        .req(Method::POST, "/signup")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "bad_json");
}

#[tokio::test]
async fn signup_can_be_disabled_and_the_minimum_length_configured() {
    let api = Api::with(|c| {
        c.auth.disable_signup = true;
    })
    .await;
    let res = api
        .req(Method::POST, "/signup")
        .json(&json!({"email": "x@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "signup_disabled");
    let settings = ok_json(api.req(Method::GET, "/settings").send().await.unwrap()).await;
    assert_eq!(settings["disable_signup"], true);
    assert_eq!(settings["external"]["email"], true);

    let api = Api::with(|c| c.auth.password_min_length = 30).await;
    let res = api
        .req(Method::POST, "/signup")
        .json(&json!({"email": "x@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!((status, code.as_str()), (422, "weak_password"));
    assert_eq!(message, "Password should be at least 30 characters.");
}

#[tokio::test]
async fn sign_in_errors_do_not_reveal_which_emails_exist() {
    let api = Api::new().await;
    api.sign_up("known@example.com").await;
    for body in [
        json!({"email": "known@example.com", "password": "wrong-password"}),
        json!({"email": "unknown@example.com", "password": PASSWORD}),
        json!({"email": "known@example.com"}),
    ] {
        let res = api
            .req(Method::POST, "/token?grant_type=password")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(res).await;
        assert_eq!(
            (status, code.as_str(), message.as_str()),
            (400, "invalid_credentials", "Invalid login credentials")
        );
    }
    let res = api
        .req(Method::POST, "/token?grant_type=magic")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (400, "invalid_credentials", "unsupported_grant_type")
    );
}

#[tokio::test]
async fn unconfirmed_users_cannot_sign_in_until_they_confirm() {
    let api = Api::with(|c| c.auth.autoconfirm = false).await;
    let res = api
        .req(Method::POST, "/signup")
        .json(&json!({"email": "new@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let user = ok_json(res).await;
    // Without autoconfirm the answer is the flat user, and a confirmation mail is queued.
    assert!(user.get("access_token").is_none());
    assert_eq!(user["email"], "new@example.com");
    assert!(user["confirmation_sent_at"].is_string());
    assert!(user["email_confirmed_at"].is_null());
    let (template, link, otp) = api.last_mail("new@example.com").await;
    assert_eq!(template, "confirmation");
    assert!(
        link.contains("/auth/v1/verify?token=") && link.contains("type=signup"),
        "{link}"
    );
    assert_eq!(otp.len(), 6);

    let res = api
        .req(Method::POST, "/token?grant_type=password")
        .json(&json!({"email": "new@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "email_not_confirmed");

    // Signing up again with a confirmed address answers a user with no identities.
    let res = api
        .req(Method::POST, "/verify")
        .json(&json!({"type": "signup", "email": "new@example.com", "token": otp}))
        .send()
        .await
        .unwrap();
    let session = ok_json(res).await;
    assert!(session["user"]["email_confirmed_at"].is_string());
    let res = api
        .req(Method::POST, "/signup")
        .json(&json!({"email": "new@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let fake = ok_json(res).await;
    assert_eq!(fake["identities"], json!([]));
    assert_ne!(fake["id"], session["user"]["id"]);
    api.sign_in("new@example.com").await;
}

/// Wrong passwords are limited per client address (and address and email), never per email
/// alone: an attacker failing on purpose locks themselves out, not the account's owner.
#[tokio::test]
async fn sign_in_is_rate_limited_per_ip_and_email() {
    let api = Api::with(|c| {
        c.auth.rate_limit_auth = 3;
        c.auth.trust_proxy = true;
    })
    .await;
    api.sign_up("limited@example.com").await;
    let sign_in = |from: &'static str, password: &'static str| {
        api.req(Method::POST, "/token?grant_type=password")
            .header("x-forwarded-for", from)
            .json(&json!({"email": "limited@example.com", "password": password}))
            .send()
    };
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(error_of(sign_in("203.0.113.9", "wrong-password").await.unwrap()).await);
    }
    assert_eq!(codes[2].1, "invalid_credentials");
    assert_eq!(
        (codes[3].0, codes[3].1.as_str()),
        (429, "over_request_rate_limit")
    );
    // The attacker stays locked out, even with the right password...
    let (status, _, _) = error_of(sign_in("203.0.113.9", PASSWORD).await.unwrap()).await;
    assert_eq!(status, 429);
    // ...while the owner, from their own address, signs in.
    let session = ok_json(sign_in("198.51.100.7", PASSWORD).await.unwrap()).await;
    assert_eq!(session["user"]["email"], "limited@example.com");
}

/// A NUL character (PostgreSQL's 22021 in text, 22P05 in jsonb) is a 400 in GoTrue's shape
/// wherever it comes: sign-up email and data, sign-in email, `PUT /user`; nothing is written.
#[tokio::test]
async fn nul_characters_are_400_and_write_nothing() {
    let api = Api::new().await;
    let cases = [
        (
            "/signup",
            json!({"email": "n\u{0}ul@example.com", "password": PASSWORD}),
        ),
        (
            "/signup",
            json!({"email": "nul@example.com", "password": PASSWORD, "data": {"k": "a\u{0}b"}}),
        ),
        (
            "/token?grant_type=password",
            json!({"email": "x\u{0}@example.com", "password": PASSWORD}),
        ),
    ];
    for (path, body) in cases {
        let res = api
            .req(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, _, message) = error_of(res).await;
        assert_eq!(status, 400, "{path} {body}: {message}");
    }
    let users: i64 = sqlx::query_scalar("select count(*) from auth.users")
        .fetch_one(&api.app.db.owner)
        .await
        .unwrap();
    assert_eq!(users, 0);
    let session = api.sign_up("put@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"data": {"nick": "x\u{0}y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 400);
    let meta: serde_json::Value = sqlx::query_scalar(
        "select raw_user_meta_data from auth.users where email = 'put@example.com'",
    )
    .fetch_one(&api.app.db.owner)
    .await
    .unwrap();
    assert!(meta.get("nick").is_none(), "{meta}");
}

/// Every password and metadata object a client sends is bounded: a 1 MB password is refused
/// at sign-up and sign-in without being hashed, metadata over 16 KiB at sign-up and on
/// `PUT /user`; nothing is written.
#[tokio::test]
async fn oversized_passwords_and_metadata_are_400() {
    let api = Api::new().await;
    let huge = "p".repeat(1024 * 1024);
    for (path, body) in [
        (
            "/signup",
            json!({"email": "big@example.com", "password": huge}),
        ),
        (
            "/signup",
            json!({"email": "big@example.com", "password": "p".repeat(73)}),
        ),
        (
            "/signup",
            json!({"email": "big@example.com", "password": PASSWORD,
                   "data": {"bio": "b".repeat(17 * 1024)}}),
        ),
        (
            "/token?grant_type=password",
            json!({"email": "big@example.com", "password": huge}),
        ),
    ] {
        let res = api
            .req(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(res).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "validation_failed"),
            "{path}: {message}"
        );
    }
    let users: i64 = sqlx::query_scalar("select count(*) from auth.users")
        .fetch_one(&api.app.db.owner)
        .await
        .unwrap();
    assert_eq!(users, 0);

    let session = api.sign_up("big@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let res = api
        .as_user(Method::PUT, "/user", token)
        .json(&json!({"data": {"bio": "b".repeat(17 * 1024)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "validation_failed");
}

/// What Tally does not offer answers as a GoTrue with it switched off: wallet (Web3) and
/// social ID-token sign-ins, and codes sent by SMS (after the number's E.164 check).
#[tokio::test]
async fn sign_ins_tally_does_not_offer_answer_as_gotrue_does() {
    let api = Api::new().await;
    let cases = [
        (
            "/token?grant_type=web3",
            json!({"chain": "solana", "message": "m", "signature": "s"}),
            (422, "web3_provider_disabled", "Web3 provider is disabled"),
        ),
        (
            "/token?grant_type=id_token",
            json!({"provider": "google", "id_token": "t", "nonce": "n"}),
            (
                400,
                "provider_disabled",
                "Provider (issuer \"https://accounts.google.com\") is not enabled",
            ),
        ),
        (
            "/verify",
            json!({"type": "sms", "phone": "+1 555 0100 123", "token": "123456"}),
            (403, "otp_expired", "Token has expired or is invalid"),
        ),
        (
            "/verify",
            json!({"type": "phone_change", "phone": "15550100123", "token": "123456"}),
            (403, "otp_expired", "Token has expired or is invalid"),
        ),
        (
            "/verify",
            json!({"type": "sms", "phone": "15550100123-invalid", "token": "123456"}),
            (
                400,
                "validation_failed",
                "Invalid phone number format (E.164 required)",
            ),
        ),
    ];
    for (path, body, (status, code, message)) in cases {
        let res = api
            .req(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(res).await,
            (status, code.into(), message.into()),
            "{path} {body}"
        );
    }
}
