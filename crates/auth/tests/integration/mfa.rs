//! Multi-factor sign-in with TOTP, as auth-js's `mfa.*` methods drive it: enroll, challenge,
//! verify with a code computed from the secret, aal2 in the tokens, a replayed code refused,
//! the rules on enrolling and unenrolling, the admin reset, and the rate limit.

use reqwest::Method;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};

use crate::support::{Api, error_of, ok_json};

/// The code an authenticator app shows for the base32 `secret` at `time`.
fn code_at(secret: &str, time: u64) -> String {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate(time)
        .to_string()
}

fn now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap()
}

/// Enrolls a TOTP factor for the session `token`: (factor id, secret).
async fn enroll(api: &Api, token: &str, name: &str) -> (String, String) {
    let res = api
        .as_user(Method::POST, "/factors", token)
        .json(&json!({"factor_type": "totp", "friendly_name": name}))
        .send()
        .await
        .unwrap();
    let body = ok_json(res).await;
    (
        body["id"].as_str().unwrap().to_owned(),
        body["totp"]["secret"].as_str().unwrap().to_owned(),
    )
}

/// Opens a challenge and answers it with `code`.
async fn challenge_and_verify(
    api: &Api,
    token: &str,
    factor: &str,
    code: &str,
) -> reqwest::Response {
    let res = api
        .as_user(Method::POST, &format!("/factors/{factor}/challenge"), token)
        .send()
        .await
        .unwrap();
    let challenge = ok_json(res).await;
    api.as_user(Method::POST, &format!("/factors/{factor}/verify"), token)
        .json(&json!({"challenge_id": challenge["id"], "code": code}))
        .send()
        .await
        .unwrap()
}

fn claims(api: &Api, session: &Value) -> Value {
    let token = session["access_token"].as_str().unwrap();
    Value::Object(api.app.keys.verify(token).unwrap().0)
}

#[tokio::test]
async fn a_verified_totp_code_raises_the_session_to_aal2_once() {
    let api = Api::new().await;
    let email = "mfa-totp@example.com";
    let signed_up = api.sign_up(email).await;
    let token = signed_up["access_token"].as_str().unwrap();

    // Enroll: a base32 secret, its otpauth URI and an SVG QR code, as GoTrue answers.
    let res = api
        .as_user(Method::POST, "/factors", token)
        .json(&json!({"factor_type": "totp", "friendly_name": "phone", "issuer": "Tally"}))
        .send()
        .await
        .unwrap();
    let enrolled = ok_json(res).await;
    assert_eq!(enrolled["type"], "totp");
    assert_eq!(enrolled["friendly_name"], "phone");
    let secret = enrolled["totp"]["secret"].as_str().unwrap();
    let uri = enrolled["totp"]["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Tally:mfa-totp%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(
        enrolled["totp"]["qr_code"]
            .as_str()
            .unwrap()
            .contains("<svg")
    );
    let factor = enrolled["id"].as_str().unwrap();

    // The user lists it, unverified.
    let user = api.user(token).await;
    assert_eq!(user["factors"][0]["id"], factor);
    assert_eq!(user["factors"][0]["status"], "unverified");

    // A wrong code is refused as GoTrue refuses it.
    let wrong = if code_at(secret, now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, code, message) =
        error_of(challenge_and_verify(&api, token, factor, wrong).await).await;
    assert_eq!((status, code.as_str()), (422, "mfa_verification_failed"));
    assert!(message.contains("Invalid TOTP code"), "{message}");

    // The right one: a new pair at aal2, the factor verified, totp first in amr.
    let code = code_at(secret, now());
    let raised = ok_json(challenge_and_verify(&api, token, factor, &code).await).await;
    let claims_now = claims(&api, &raised);
    assert_eq!(claims_now["aal"], "aal2");
    assert_eq!(claims_now["amr"][0]["method"], "totp");
    assert_eq!(claims_now["amr"][1]["method"], "password");
    assert_eq!(raised["user"]["factors"][0]["status"], "verified");
    let aal2 = raised["access_token"].as_str().unwrap();

    // The same code again (still within its step) is a replay.
    let (status, code_name, message) =
        error_of(challenge_and_verify(&api, aal2, factor, &code).await).await;
    assert_eq!(
        (status, code_name.as_str()),
        (422, "mfa_verification_failed")
    );
    assert!(message.contains("already used"), "{message}");

    // The aal1 refresh token of before cannot mint tokens any more; the new one mints aal2.
    let old = api
        .req(Method::POST, "/token?grant_type=refresh_token")
        .json(&json!({"refresh_token": signed_up["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 400);
    let refreshed = ok_json(
        api.req(Method::POST, "/token?grant_type=refresh_token")
            .json(&json!({"refresh_token": raised["refresh_token"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(claims(&api, &refreshed)["aal"], "aal2");

    // A password sign-in is aal1 again: it may neither add a factor nor remove the verified one.
    let aal1 = api.sign_in(email).await;
    let aal1 = aal1["access_token"].as_str().unwrap();
    let res = api
        .as_user(Method::POST, "/factors", aal1)
        .json(&json!({"factor_type": "totp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "insufficient_aal");
    let res = api
        .as_user(Method::DELETE, &format!("/factors/{factor}"), aal1)
        .send()
        .await
        .unwrap();
    let (status, code_name, _) = error_of(res).await;
    assert_eq!((status, code_name.as_str()), (422, "insufficient_aal"));

    // From the aal2 session it goes; that session is aal1 from its next refresh on.
    let aal2_now = refreshed["access_token"].as_str().unwrap();
    let res = api
        .as_user(Method::DELETE, &format!("/factors/{factor}"), aal2_now)
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(res).await["id"], factor);
    let after = ok_json(
        api.req(Method::POST, "/token?grant_type=refresh_token")
            .json(&json!({"refresh_token": refreshed["refresh_token"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(claims(&api, &after)["aal"], "aal1");
    assert!(after["user"].get("factors").is_none(), "{}", after["user"]);

    // Every step left an account event.
    let actions: Vec<String> = sqlx::query_scalar(
        "select payload ->> 'action' from auth.audit_log_entries \
         where payload ->> 'actor_id' = $1 order by created_at",
    )
    .bind(signed_up["user"]["id"].as_str().unwrap())
    .fetch_all(&api.app.db.owner)
    .await
    .unwrap();
    for action in [
        "factor_in_progress",
        "challenge_created",
        "verification_attempted",
        "factor_unenrolled",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn factors_are_refused_without_a_session_and_another_persons_are_not_found() {
    let api = Api::new().await;
    // As auth-js calls it with no session: the apikey and no bearer token.
    let res = reqwest::Client::new()
        .post(api.app.url("/auth/v1/factors"))
        .header("apikey", api.app.keys.anon_key())
        .header("x-supabase-api-version", "2024-01-01")
        .json(&json!({"factor_type": "totp"}))
        .send()
        .await
        .unwrap();
    let (status, _, message) = error_of(res).await;
    assert_eq!(status, 401);
    assert!(message.contains("Bearer token"), "{message}");

    let ada = api.sign_up("mfa-ada@example.com").await;
    let bob = api.sign_up("mfa-bob@example.com").await;
    let ada = ada["access_token"].as_str().unwrap();
    let bob = bob["access_token"].as_str().unwrap();
    let (factor, _) = enroll(&api, ada, "").await;
    for path in [
        format!("/factors/{factor}/challenge"),
        "/factors/nope/challenge".to_owned(),
    ] {
        let res = api.as_user(Method::POST, &path, bob).send().await.unwrap();
        assert_eq!(error_of(res).await.0, 404, "{path}");
    }
    let res = api
        .as_user(Method::POST, "/factors", ada)
        .json(&json!({"factor_type": "sms"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "validation_failed");
    // Two factors may not share a name.
    enroll(&api, ada, "laptop").await;
    let res = api
        .as_user(Method::POST, "/factors", ada)
        .json(&json!({"factor_type": "totp", "friendly_name": "laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "mfa_factor_name_conflict");
}

#[tokio::test]
async fn an_admin_removes_a_lost_factor_and_guessing_codes_is_rate_limited() {
    let api = Api::with(|c| c.auth.rate_limit_auth = 5).await;
    let session = api.sign_up("mfa-lost@example.com").await;
    let token = session["access_token"].as_str().unwrap();
    let user = session["user"]["id"].as_str().unwrap();
    let (factor, secret) = enroll(&api, token, "").await;
    let raised =
        ok_json(challenge_and_verify(&api, token, &factor, &code_at(&secret, now())).await).await;
    let aal2 = raised["access_token"].as_str().unwrap();

    // Guessing: the sixth try in five minutes is refused, whatever the code.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            challenge_and_verify(&api, aal2, &factor, "000001")
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(
        statuses.iter().all(|s| *s == 422 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // The person lost their phone: the admin lists and removes the factor.
    let res = api
        .as_admin(Method::GET, &format!("/admin/users/{user}/factors"))
        .send()
        .await
        .unwrap();
    let listed = ok_json(res).await;
    assert_eq!(listed[0]["id"], factor.as_str());
    assert_eq!(listed[0]["status"], "verified");
    let res = api
        .as_user(Method::GET, &format!("/admin/users/{user}/factors"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "not_admin");
    let res = api
        .as_admin(
            Method::DELETE,
            &format!("/admin/users/{user}/factors/{factor}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(res).await["id"], factor.as_str());
    let user_now = api.user(aal2).await;
    assert!(user_now.get("factors").is_none(), "{user_now}");
}
