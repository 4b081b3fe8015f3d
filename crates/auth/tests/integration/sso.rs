//! SSO end to end against an OpenID Connect provider that the test runs on loopback: its
//! discovery document, JWKS, authorize and token endpoints, and real RS256 ID tokens. Bad
//! signatures, wrong nonces and expired tokens must all be refused.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Api, PASSWORD, error_of, ok_json};

/// How the fake provider misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Good,
    BadSignature,
    WrongNonce,
    Expired,
    UnverifiedEmail,
}

struct Idp {
    issuer: String,
    key: EncodingKey,
    other_key: EncodingKey,
    jwk: Value,
    mode: Mutex<Mode>,
    subject: Mutex<(String, String)>,
    codes: Mutex<HashMap<String, (String, String)>>,
}

type Shared = Arc<Idp>;

async fn discovery(State(idp): State<Shared>) -> Json<Value> {
    Json(json!({
        "issuer": idp.issuer,
        "authorization_endpoint": format!("{}/authorize", idp.issuer),
        "token_endpoint": format!("{}/token", idp.issuer),
        "jwks_uri": format!("{}/jwks", idp.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(idp): State<Shared>) -> Json<Value> {
    Json(json!({"keys": [idp.jwk]}))
}

/// Approves at once (the person "logs in") and sends the browser back with a code.
async fn authorize(
    State(idp): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let code = uuid::Uuid::new_v4().to_string();
    idp.codes.lock().unwrap().insert(
        code.clone(),
        (q["nonce"].clone(), q["code_challenge"].clone()),
    );
    let location = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
    (StatusCode::FOUND, [(LOCATION, location)]).into_response()
}

async fn token(State(idp): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let Some((nonce, challenge)) = idp.codes.lock().unwrap().remove(&form["code"]) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "PKCE"})),
        )
            .into_response();
    }
    let mode = *idp.mode.lock().unwrap();
    let (subject, email) = idp.subject.lock().unwrap().clone();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": idp.issuer,
        "sub": subject,
        "aud": "tally-client",
        "iat": now - 10,
        "exp": if mode == Mode::Expired { now - 600 } else { now + 300 },
        "nonce": if mode == Mode::WrongNonce { "not-the-nonce".to_owned() } else { nonce },
        "email": email,
        "email_verified": mode != Mode::UnverifiedEmail,
        "name": "Ada Lovelace",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("idp-key".into());
    let key = if mode == Mode::BadSignature {
        &idp.other_key
    } else {
        &idp.key
    };
    let id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    Json(json!({"access_token": "idp-access-token", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})).into_response()
}

async fn start_idp() -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let key = EncodingKey::from_rsa_pem(&std::fs::read(format!("{fixtures}/idp-key.pem")).unwrap())
        .unwrap();
    let other_key =
        EncodingKey::from_rsa_pem(&std::fs::read(format!("{fixtures}/other-key.pem")).unwrap())
            .unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
    jwk["kid"] = json!("idp-key");
    jwk["use"] = json!("sig");
    let idp = Arc::new(Idp {
        issuer,
        key,
        other_key,
        jwk,
        mode: Mutex::new(Mode::Good),
        subject: Mutex::new(("idp-user-1".into(), "ada@acme.test".into())),
        codes: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    idp
}

struct Sso {
    api: Api,
    idp: Shared,
    http: reqwest::Client,
    provider_id: String,
}

impl Sso {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(configure: impl FnOnce(&mut tally_core::Config)) -> Self {
        let idp = start_idp().await;
        let api = Api::with(|c| {
            c.auth.uri_allow_list = "http://app.test/*".into();
            c.auth.refresh_reuse_interval = 1;
            configure(c);
        })
        .await;
        let body = json!({"name": "acme", "issuer": idp.issuer, "client_id": "tally-client",
                          "client_secret": "s3cret", "domains": ["ACME.test"]});
        let provider = ok_json(
            api.as_admin(Method::POST, "/admin/sso/providers")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(provider["domains"], json!([{"domain": "acme.test"}]));
        assert!(
            provider.get("client_secret").is_none(),
            "the secret is never shown"
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let provider_id = provider["id"].as_str().unwrap().to_owned();
        Self {
            api,
            idp,
            http,
            provider_id,
        }
    }

    /// Follows a provider URL like a browser: IdP authorize, then Tally's callback; returns
    /// where Tally sends the browser at the end.
    async fn follow(&self, idp_url: &str) -> String {
        let res = self.http.get(idp_url).send().await.unwrap();
        assert_eq!(res.status(), 302);
        let callback = res.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            callback.starts_with(&self.api.app.url("/auth/v1/callback")),
            "{callback}"
        );
        let res = self.http.get(&callback).send().await.unwrap();
        assert_eq!(res.status(), 302);
        res.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    async fn sign_in(&self, mode: Mode) -> String {
        *self.idp.mode.lock().unwrap() = mode;
        let body = json!({"domain": "acme.test", "redirect_to": "http://app.test/welcome", "skip_http_redirect": true});
        let out = ok_json(
            self.api
                .req(Method::POST, "/sso")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let url = out["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/authorize?", self.idp.issuer)),
            "{url}"
        );
        for part in [
            "state=",
            "nonce=",
            "code_challenge=",
            "code_challenge_method=S256",
            "client_id=tally-client",
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
        self.follow(url).await
    }
}

fn fragment(location: &str) -> HashMap<String, String> {
    location
        .split_once('#')
        .map(|(_, f)| f)
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn sso_signs_in_creates_then_finds_the_user() {
    let sso = Sso::new().await;
    let location = sso.sign_in(Mode::Good).await;
    assert!(
        location.starts_with("http://app.test/welcome#"),
        "{location}"
    );
    let params = fragment(&location);
    assert_eq!(params["provider_token"], "idp-access-token");
    assert_eq!(params["token_type"], "bearer");
    let user = sso.api.user(&params["access_token"]).await;
    assert_eq!(user["email"], "ada@acme.test");
    assert_eq!(user["user_metadata"]["full_name"], "Ada Lovelace");
    assert_eq!(user["app_metadata"]["provider"], "acme");
    assert_eq!(user["identities"][0]["provider"], "acme");
    assert_eq!(user["identities"][0]["id"], "idp-user-1");
    assert!(user["email_confirmed_at"].is_string());
    let claims = sso.api.app.keys.verify(&params["access_token"]).unwrap();
    assert_eq!(claims.0["amr"][0]["method"], "sso/oidc");

    let again = fragment(&sso.sign_in(Mode::Good).await);
    let claims_again = sso.api.app.keys.verify(&again["access_token"]).unwrap();
    assert_eq!(
        claims_again.sub(),
        claims.sub(),
        "the same identity finds the same user"
    );

    // The refresh token from the fragment rotates like any other, with reuse detection.
    let session = json!({"refresh_token": again["refresh_token"]});
    crate::sessions::reuse_after_the_interval_revokes(&sso.api, "sso", &session).await;
}

#[tokio::test]
async fn sso_links_to_an_existing_user_only_by_a_verified_email() {
    let sso = Sso::new().await;
    let existing = sso.api.sign_up("bob@acme.test").await;
    *sso.idp.subject.lock().unwrap() = ("idp-bob".into(), "bob@acme.test".into());

    let refused = sso.sign_in(Mode::UnverifiedEmail).await;
    assert!(
        refused.contains("error_code=provider_email_needs_verification"),
        "{refused}"
    );

    let location = sso.sign_in(Mode::Good).await;
    let params = fragment(&location);
    let user = sso.api.user(&params["access_token"]).await;
    assert_eq!(user["id"], existing["user"]["id"]);
    let providers: Vec<&str> = user["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["email", "acme"]);
    assert_eq!(user["app_metadata"]["providers"], json!(["acme", "email"]));
    // The password still works too.
    let res = sso
        .api
        .req(Method::POST, "/token?grant_type=password")
        .json(&json!({"email": "bob@acme.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    ok_json(res).await;
}

#[tokio::test]
async fn bad_id_tokens_are_refused() {
    let sso = Sso::new().await;
    for mode in [Mode::BadSignature, Mode::WrongNonce, Mode::Expired] {
        let location = sso.sign_in(mode).await;
        assert!(
            location.starts_with(
                "http://app.test/welcome?error=invalid_request&error_code=bad_oauth_callback"
            ),
            "{mode:?}: {location}"
        );
        assert!(!location.contains("access_token"), "{mode:?}: {location}");
    }
    let users: i64 = sqlx::query_scalar("select count(*) from auth.users")
        .fetch_one(&sso.api.app.db.owner)
        .await
        .unwrap();
    assert_eq!(users, 0, "no user was created from a rejected token");
}

#[tokio::test]
async fn sso_with_pkce_returns_a_code_for_the_client() {
    let sso = Sso::new().await;
    let verifier = "v".repeat(64);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = sso.api.app.url(&format!(
        "/auth/v1/authorize?provider=acme&redirect_to=http%3A%2F%2Fapp.test%2Fcb&code_challenge={challenge}&code_challenge_method=s256"
    ));
    let res = sso.http.get(&authorize).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let idp_url = res.headers()[LOCATION].to_str().unwrap().to_owned();
    let location = sso.follow(&idp_url).await;
    let code = location
        .strip_prefix("http://app.test/cb?code=")
        .unwrap_or_else(|| panic!("{location}"));
    let res = sso
        .api
        .req(Method::POST, "/token?grant_type=pkce")
        .json(&json!({"auth_code": code, "code_verifier": verifier}))
        .send()
        .await
        .unwrap();
    let session = ok_json(res).await;
    assert_eq!(session["user"]["email"], "ada@acme.test");
}

#[tokio::test]
async fn sso_request_errors() {
    let sso = Sso::new().await;
    let res = sso
        .http
        .get(sso.api.app.url("/auth/v1/authorize?provider=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "oauth_provider_not_supported");
    let res = sso
        .api
        .req(Method::POST, "/sso")
        .json(&json!({"domain": "unknown.test", "skip_http_redirect": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(res).await,
        (
            404,
            "sso_provider_not_found".into(),
            "No SSO provider assigned for this domain".into()
        )
    );
    let res = sso
        .api
        .req(Method::POST, "/sso")
        .json(&json!({"domain": "acme.test", "provider_id": sso.provider_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "validation_failed");
    // By provider id, without skip_http_redirect: a 303 to the provider.
    let res = sso
        .api
        .req(Method::POST, "/sso")
        .json(&json!({"provider_id": sso.provider_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // A callback with an unknown state goes back to the site with an error.
    let res = sso
        .http
        .get(sso.api.app.url(&format!(
            "/auth/v1/callback?code=x&state={}",
            uuid::Uuid::new_v4()
        )))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .contains("error_code=bad_oauth_state")
    );
}

/// With no SSO provider enabled, `/sso` answers as GoTrue does with SAML off (404
/// `saml_provider_disabled`), whatever the body holds: a provider id that is no UUID, a
/// domain, nothing at all.
#[tokio::test]
async fn sso_without_a_provider_is_disabled() {
    let api = Api::new().await;
    for body in [
        json!({"provider_id": "valid-provider-id", "skip_http_redirect": true}),
        json!({"domain": "acme.test"}),
        json!({}),
    ] {
        let res = api
            .req(Method::POST, "/sso")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(res).await,
            (
                404,
                "saml_provider_disabled".into(),
                "SAML 2.0 is disabled".into()
            ),
            "{body}"
        );
    }
}

/// `linkIdentity` as auth-js calls it for the signed-in `token`: where the browser ends.
async fn link(sso: &Sso, token: &str) -> String {
    let res = sso
        .api
        .as_user(
            Method::GET,
            "/user/identities/authorize?provider=acme&redirect_to=http://app.test/linked&skip_http_redirect=true",
            token,
        )
        .send()
        .await
        .unwrap();
    let url = ok_json(res).await["url"].as_str().unwrap().to_owned();
    sso.follow(&url).await
}

#[tokio::test]
async fn a_signed_in_person_links_and_unlinks_an_sso_identity() {
    let sso = Sso::with(|c| c.auth.manual_linking = true).await;
    *sso.idp.subject.lock().unwrap() = ("idp-grace".into(), "grace@acme.test".into());
    let signed_up = sso.api.sign_up("grace@example.com").await;
    let token = signed_up["access_token"].as_str().unwrap();

    // Linked: the same user, now with both identities, signed in again through the provider.
    let location = link(&sso, token).await;
    assert!(
        location.starts_with("http://app.test/linked#"),
        "{location}"
    );
    let linked = fragment(&location);
    let user = sso.api.user(&linked["access_token"]).await;
    assert_eq!(user["id"], signed_up["user"]["id"]);
    assert_eq!(user["email"], "grace@example.com");
    let providers: Vec<&str> = user["identities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["provider"].as_str())
        .collect();
    assert_eq!(providers, ["email", "acme"]);
    assert_eq!(user["app_metadata"]["providers"], json!(["acme", "email"]));
    // Signing in through the provider now finds Grace.
    let through_sso = fragment(&sso.sign_in(Mode::Good).await);
    let claims = sso
        .api
        .app
        .keys
        .verify(&through_sso["access_token"])
        .unwrap();
    assert_eq!(claims.sub(), user["id"].as_str());

    // Someone else cannot take the same identity.
    let other = sso.api.sign_up("mallory@example.com").await;
    let refused = link(&sso, other["access_token"].as_str().unwrap()).await;
    assert!(refused.contains("identity_already_exists"), "{refused}");

    // Unlinked: the provider's identity goes; the last one cannot.
    let acme = user["identities"][1]["identity_id"].as_str().unwrap();
    let email = user["identities"][0]["identity_id"].as_str().unwrap();
    let res = sso
        .api
        .as_user(Method::DELETE, &format!("/user/identities/{acme}"), token)
        .send()
        .await
        .unwrap();
    ok_json(res).await;
    let res = sso
        .api
        .as_user(Method::DELETE, &format!("/user/identities/{email}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(res).await,
        (
            422,
            "single_identity_not_deletable".into(),
            "User must have at least 1 identity after unlinking".into()
        )
    );
    let user = sso.api.user(token).await;
    assert_eq!(user["app_metadata"]["providers"], json!(["email"]));
}

#[tokio::test]
async fn manual_linking_is_off_unless_turned_on() {
    let sso = Sso::new().await;
    let token = sso.api.sign_up("off@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        (
            Method::GET,
            "/user/identities/authorize?provider=acme".to_owned(),
        ),
        (
            Method::DELETE,
            format!("/user/identities/{}", uuid::Uuid::new_v4()),
        ),
    ] {
        let res = sso.api.as_user(method, &path, &token).send().await.unwrap();
        assert_eq!(
            error_of(res).await,
            (
                404,
                "manual_linking_disabled".into(),
                "Manual linking is disabled".into()
            )
        );
    }
}
