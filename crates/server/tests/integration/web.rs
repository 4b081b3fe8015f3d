//! The web app at `/` and what front ends outside it need: a build's files with the right
//! cache headers, page routes answered with the app, the services untouched; `/` saying how to
//! build when there is none; CORS for a Figma plugin's `null` origin on every service; and a
//! function reached through a sub-path, as Supabase routes it.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tally_testkit::{Fixture, TestApp};

/// A build of the app: `index.html`, a hashed asset, a service worker, a manifest.
fn build() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("assets")).expect("a build folder");
    let files = [
        (
            "index.html",
            "<!doctype html><title>Tally</title><div id=app></div>",
        ),
        ("assets/index-3f9a1c.js", "console.log('tally')"),
        ("sw.js", "self.addEventListener('fetch', () => {})"),
        ("manifest.webmanifest", "{\"name\":\"Tally\"}"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("a file");
    }
    // The build's precompressed copy of the asset (its bytes are sent as they are).
    std::fs::write(dir.join("assets/index-3f9a1c.js.gz"), GZIPPED).expect("a file");
    dir
}

/// Stands for the gzipped asset: what matters is that exactly these bytes are sent.
const GZIPPED: &[u8] = b"\x1f\x8b precompressed copy";

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_app_is_served_with_cache_headers_beside_the_services() -> anyhow::Result<()> {
    let dir = build();
    let web = dir.clone();
    let app = TestApp::spawn_with(move |c| c.web_dir = web).await?;
    let http = Client::new();
    let get = |path: &str, accept: &str| {
        http.get(app.url(path))
            .header("accept", accept.to_owned())
            .send()
    };

    let index = get("/", "text/html").await?;
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, "cache-control"), "no-cache");
    assert!(header(&index, "content-type").starts_with("text/html"));
    assert!(index.text().await?.contains("<title>Tally</title>"));

    let asset = get("/assets/index-3f9a1c.js", "*/*").await?;
    assert_eq!(asset.status(), 200);
    assert_eq!(
        header(&asset, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(header(&asset, "content-type").contains("javascript"));
    // A browser that takes gzip gets the build's gzipped copy.
    let zipped = http
        .get(app.url("/assets/index-3f9a1c.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert!(
        header(&zipped, "vary")
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
    assert_eq!(zipped.bytes().await?.as_ref(), GZIPPED);
    let plain = get("/assets/index-3f9a1c.js", "*/*").await?;
    assert_eq!(header(&plain, "content-encoding"), "");
    for never_cached in ["/sw.js", "/manifest.webmanifest"] {
        let res = get(never_cached, "*/*").await?;
        assert_eq!(res.status(), 200, "{never_cached}");
        assert_eq!(header(&res, "cache-control"), "no-cache", "{never_cached}");
    }

    // A page route of the app is the app, for a browser; a missing file is a 404.
    let page = get("/week/2026-12-07", "text/html,application/xhtml+xml").await?;
    assert_eq!(page.status(), 200);
    assert!(page.text().await?.contains("<div id=app>"));
    let missing = get("/assets/gone-000000.js", "*/*").await?;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await?;
    assert_eq!(body["message"], "No route matches this path");
    // Nothing outside the build is served, however the path is spelled.
    for escape in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
    ] {
        let res = get(escape, "*/*").await?;
        assert_ne!(res.status(), 200, "{escape}");
        assert!(!res.text().await?.contains("[package]"), "{escape}");
    }

    // The services keep their own answers, HTML asked for or not.
    let with_key = |path: &str| {
        http.get(app.url(path))
            .header("accept", "text/html")
            .header("apikey", app.keys.anon_key())
            .send()
    };
    // (REST refuses an HTML answer as PostgREST does, never with the app.)
    let rest = with_key("/rest/v1/no_such_table").await?;
    assert_eq!(rest.status(), 406);
    assert_eq!(rest.json::<Value>().await?["code"], "PGRST107");
    let auth = with_key("/auth/v1/nowhere").await?;
    assert_eq!(auth.status(), 404);
    assert!(auth.json::<Value>().await?["msg"].is_string());
    let health = get("/health", "text/html").await?;
    assert_eq!(health.json::<Value>().await?["status"], "ok");
    let post = http.post(app.url("/")).send().await?;
    assert!(post.status().is_client_error());
    assert!(post.json::<Value>().await?["message"].is_string());

    app.stop().await?;
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[tokio::test]
async fn without_a_build_the_root_says_how_to_make_one() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| c.web_dir = "/nonexistent/tally-web".into()).await?;
    let res = reqwest::get(app.url("/")).await?;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await?;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("./scripts/run")),
        "{body}"
    );
    assert_eq!(
        reqwest::get(app.url("/health")).await?.status(),
        StatusCode::OK
    );
    // What a front end may know of this Tally: the anon key and the review threshold, never
    // the service key, never cached.
    let config = reqwest::get(app.url("/app-config.json")).await?;
    assert_eq!(header(&config, "cache-control"), "no-cache");
    let text = config.text().await?;
    let body: Value = serde_json::from_str(&text)?;
    assert_eq!(body["anon_key"], app.keys.anon_key());
    assert!(
        body["review_threshold"]
            .as_f64()
            .is_some_and(|t| t > 0.0 && t < 1.0)
    );
    assert!(!text.contains(&app.keys.service_role_key()));
    assert!(!text.contains("service_role"));
    app.stop().await
}

/// A Figma plugin's iframe has the origin `null`: every service answers its preflight and its
/// requests with `*`, the headers supabase-js sends, and never credentials.
#[tokio::test]
async fn a_null_origin_passes_cors_on_every_service() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let fx = Fixture::load(&app).await?;
    let http = Client::new();
    for (method, path) in [
        ("POST", "/auth/v1/token?grant_type=password"),
        ("GET", "/rest/v1/time_logs"),
        ("POST", "/storage/v1/object/images/a/b.png"),
        ("POST", "/realtime/v1/api/broadcast"),
        ("POST", "/functions/v1/log-create"),
    ] {
        let res = http
            .request(Method::OPTIONS, app.url(path))
            .header("origin", "null")
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization, apikey, x-client-info, content-type",
            )
            .send()
            .await?;
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(header(&res, "access-control-allow-origin"), "*", "{path}");
        let allowed = header(&res, "access-control-allow-headers").to_lowercase();
        for wanted in ["authorization", "apikey", "x-client-info", "content-type"] {
            assert!(allowed.contains(wanted), "{path}: {allowed}");
        }
        assert!(
            header(&res, "access-control-allow-methods").contains(method),
            "{path}"
        );
        assert!(
            res.headers()
                .get("access-control-allow-credentials")
                .is_none(),
            "{path}"
        );
    }
    // The request itself, as the plugin sends it.
    let res = http
        .post(app.url("/functions/v1/log-create"))
        .header("origin", "null")
        .header("apikey", app.keys.anon_key())
        .bearer_auth(fx.token(&app, "member_a"))
        .json(&json!({"org_id": fx.id("org_a"), "comment": "30m design review"}))
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    app.stop().await
}

/// `/functions/v1/<name>/<sub/path>` reaches `<name>`, as on Supabase.
#[tokio::test]
async fn a_sub_path_reaches_its_function() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let fx = Fixture::load(&app).await?;
    let res = Client::new()
        .post(app.url("/functions/v1/log-create/make/v1/entries"))
        .header("apikey", app.keys.anon_key())
        .bearer_auth(fx.token(&app, "member_a"))
        .json(&json!({"org_id": fx.id("org_a"), "comment": "1h planning"}))
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await?;
    assert_eq!(body["log"]["comment"], "1h planning");
    let unknown = Client::new()
        .post(app.url("/functions/v1/no-such-function/a/b"))
        .header("apikey", app.keys.anon_key())
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await?["error"], "not_found");
    app.stop().await
}
