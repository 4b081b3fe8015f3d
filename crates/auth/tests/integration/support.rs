//! A client for one test's Tally, speaking like auth-js does.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tally_core::Config;
use tally_testkit::TestApp;

/// A running Tally and an HTTP client for it.
pub struct Api {
    pub app: TestApp,
    http: reqwest::Client,
}

/// A strong enough password.
pub const PASSWORD: &str = "correct-horse-battery";

impl Api {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(configure: impl FnOnce(&mut Config)) -> Self {
        let app = TestApp::spawn_with(configure).await.expect("test app");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { app, http }
    }

    /// A request with `apikey` and bearer tokens, as auth-js sends it.
    fn request(&self, method: Method, path: &str, apikey: &str, bearer: &str) -> RequestBuilder {
        self.http
            .request(method, self.app.url(&format!("/auth/v1{path}")))
            .header("apikey", apikey)
            .header("authorization", format!("Bearer {bearer}"))
            .header("x-supabase-api-version", "2024-01-01")
    }

    /// A request with the anon key.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let anon = self.app.keys.anon_key();
        self.request(method, path, &anon, &anon)
    }

    /// A request as a signed-in user.
    pub fn as_user(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.request(method, path, &self.app.keys.anon_key(), token)
    }

    /// A request with the service_role key.
    pub fn as_admin(&self, method: Method, path: &str) -> RequestBuilder {
        let key = self.app.keys.service_role_key();
        self.request(method, path, &key, &key)
    }

    /// Signs up (autoconfirm) and returns the session.
    pub async fn sign_up(&self, email: &str) -> Value {
        let res = self
            .req(Method::POST, "/signup")
            .json(&json!({"email": email, "password": PASSWORD, "data": {"full_name": "Test"}}))
            .send()
            .await
            .expect("signup");
        ok_json(res).await
    }

    /// Signs in with the password and returns the session.
    pub async fn sign_in(&self, email: &str) -> Value {
        let res = self
            .req(Method::POST, "/token?grant_type=password")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("token");
        ok_json(res).await
    }

    /// `GET /user` as the holder of `token`: the user.
    pub async fn user(&self, token: &str) -> Value {
        ok_json(
            self.as_user(Method::GET, "/user", token)
                .send()
                .await
                .expect("/user"),
        )
        .await
    }

    /// Follows the link of the newest mail to `to`; where it redirects.
    pub async fn follow_mail_link(&self, to: &str) -> String {
        let (_, link, _) = self.last_mail(to).await;
        let path = link.split_once("/auth/v1").expect("a link into /auth/v1").1;
        let res = self.req(Method::GET, path).send().await.expect("the link");
        res.headers()["location"]
            .to_str()
            .expect("a location")
            .to_owned()
    }

    /// The newest mail to `to` in the outbox: (template, link, otp). Waits up to 5 s for one
    /// (a recovery mail is queued after `/recover` has answered).
    pub async fn last_mail(&self, to: &str) -> (String, String, String) {
        for _ in 0..100 {
            let mail = sqlx::query_as(
                "select template, link, otp from auth.mail_outbox where recipient = $1 \
                 order by created_at desc limit 1",
            )
            .bind(to)
            .fetch_optional(&self.app.db.owner)
            .await
            .expect("the outbox");
            if let Some(mail) = mail {
                return mail;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no mail to {to}")
    }
}

/// The JSON of a 200 response (panics with the body otherwise).
pub async fn ok_json(res: Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    body
}

/// Status, error code and message of an error response; checks GoTrue's shape on the way.
pub async fn error_of(res: Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    assert_eq!(
        res.headers()
            .get("x-supabase-api-version")
            .and_then(|v| v.to_str().ok()),
        Some("2024-01-01"),
        "error responses echo the API version"
    );
    let header_code = res
        .headers()
        .get("x-sb-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = res.json().await.expect("a JSON error");
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    assert_eq!(header_code.as_deref(), Some(code.as_str()));
    assert_eq!(body["error_code"], body["code"]);
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    assert_eq!(body["msg"], body["message"]);
    (status, code, message)
}
