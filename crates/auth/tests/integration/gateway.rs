//! The key check and token verification: missing or bad keys, and expired, forged,
//! `alg: none` and wrong-audience tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use tally_core::JwtKeys;

use crate::support::{Api, error_of, ok_json};

#[tokio::test]
async fn requests_without_a_valid_apikey_are_refused() {
    let api = Api::new().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = api.app.url("/auth/v1/settings");
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"], "No API key found in request");

    let forged = JwtKeys::new("a-different-secret-of-at-least-32-chars").anon_key();
    let user_token = api.sign_up("k@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for key in ["nonsense", forged.as_str(), user_token.as_str()] {
        let res = http.get(&url).header("apikey", key).send().await.unwrap();
        assert_eq!(res.status(), 401, "{key}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["message"], "Invalid API key");
    }
    // The key may come in the query string; the open paths need none.
    let res = http
        .get(format!("{url}?apikey={}", api.app.keys.anon_key()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(api.app.url("/auth/v1/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"keys": []}));
    let res = http
        .get(api.app.url("/auth/v1/verify?token=x&type=signup"))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 401);
}

fn unsigned(header: Value, claims: Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test]
async fn bad_tokens_are_refused_by_user() {
    let api = Api::new().await;
    let session = api.sign_up("t@example.com").await;
    let good = api
        .app
        .keys
        .verify(session["access_token"].as_str().unwrap())
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let with = |changes: Value| {
        let mut claims = good.0.clone();
        if let Value::Object(changes) = changes {
            claims.extend(changes);
        }
        Value::Object(claims)
    };
    let cases = [
        (
            "expired",
            api.app
                .keys
                .sign(&with(json!({"exp": now - 3600})))
                .unwrap(),
            403,
            "bad_jwt",
        ),
        (
            "forged",
            JwtKeys::new("a-different-secret-of-at-least-32-chars")
                .sign(&with(json!({})))
                .unwrap(),
            403,
            "bad_jwt",
        ),
        (
            "alg none",
            unsigned(json!({"alg": "none", "typ": "JWT"}), with(json!({}))),
            403,
            "bad_jwt",
        ),
        (
            "wrong audience",
            api.app
                .keys
                .sign(&with(json!({"aud": "someone-else"})))
                .unwrap(),
            403,
            "bad_jwt",
        ),
        (
            "sub not a uuid",
            api.app.keys.sign(&with(json!({"sub": "42"}))).unwrap(),
            400,
            "bad_jwt",
        ),
        (
            "unknown session",
            api.app
                .keys
                .sign(&with(json!({"session_id": uuid::Uuid::new_v4()})))
                .unwrap(),
            403,
            "session_not_found",
        ),
        (
            "unknown user",
            api.app
                .keys
                .sign(&with(
                    json!({"sub": uuid::Uuid::new_v4(), "session_id": null}),
                ))
                .unwrap(),
            403,
            "user_not_found",
        ),
    ];
    for (what, token, status, code) in cases {
        let res = api
            .as_user(Method::GET, "/user", &token)
            .send()
            .await
            .unwrap();
        let (got_status, got_code, message) = error_of(res).await;
        assert_eq!(
            (got_status, got_code.as_str()),
            (status, code),
            "{what}: {message}"
        );
    }
    let res = reqwest::Client::new()
        .get(api.app.url("/auth/v1/user"))
        .header("apikey", api.app.keys.anon_key())
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (401, "no_authorization"));
    ok_json(
        api.as_user(
            Method::GET,
            "/user",
            session["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn cors_preflight_allows_the_clients_headers() {
    let api = Api::new().await;
    let res = reqwest::Client::new()
        .request(
            Method::OPTIONS,
            api.app.url("/auth/v1/token?grant_type=password"),
        )
        .header("origin", "null")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "apikey, authorization, x-client-info, content-type, x-supabase-api-version",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in [
        "apikey",
        "authorization",
        "x-client-info",
        "x-supabase-api-version",
    ] {
        assert!(allowed.contains(header), "{allowed}");
    }
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let res = api
        .req(Method::GET, "/settings")
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-supabase-api-version"), "{exposed}");
}
