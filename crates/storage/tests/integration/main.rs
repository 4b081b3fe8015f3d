//! `/storage/v1` through HTTP on the real server, local backend on a real disk: every endpoint,
//! the error shapes storage-js reads, RLS across roles and orgs, signed URLs, safety checks.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod buckets;
mod compat;
mod objects;
mod resumable;
mod s3;
mod safety;
mod security;
mod signed;
mod wire;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
pub use tally_testkit::PNG;
use tally_testkit::{Fixture, TestApp};
use uuid::Uuid;

/// A WAV header and `samples` bytes of silence.
pub fn wav(samples: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(44 + samples);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&u32::try_from(36 + samples).unwrap().to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&8u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&u32::try_from(samples).unwrap().to_le_bytes());
    bytes.resize(44 + samples, 128);
    bytes
}

/// Two organizations: A with a person in each role (the manager leads a team with member_a),
/// B with its owner; a time log of member_a's and one of member2_a's.
pub struct World {
    /// The server.
    pub app: TestApp,
    fixture: Fixture,
    http: reqwest::Client,
}

impl World {
    /// Starts a server and loads the fixture.
    pub async fn new() -> Self {
        Self::with_app(TestApp::spawn().await.unwrap()).await
    }

    /// Loads the fixture into a server started by the caller.
    pub async fn with_app(app: TestApp) -> Self {
        let fixture = Fixture::load(&app).await.unwrap();
        Self {
            app,
            fixture,
            http: reqwest::Client::new(),
        }
    }

    /// The id of a fixture's person, org, team or log.
    pub fn id(&self, name: &str) -> Uuid {
        self.fixture.id(name)
    }

    /// `{org}/{log}/{file}` for a log of the fixture.
    pub fn path(&self, org: &str, log: &str, file: &str) -> String {
        format!("{}/{}/{file}", self.id(org), self.id(log))
    }

    /// A person's access token (`service` for the service_role key, `anon` for the anon key).
    pub fn token(&self, who: &str) -> String {
        self.fixture.token(&self.app, who)
    }

    /// A request to `/storage/v1{path}` as `who`, with the headers storage-js sends.
    pub fn request(&self, who: &str, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.app.url(&format!("/storage/v1{path}")))
            .header("apikey", self.app.keys.anon_key())
            .bearer_auth(self.token(who))
    }

    /// Uploads raw bytes (as storage-js does for a Buffer).
    pub async fn upload(
        &self,
        who: &str,
        bucket: &str,
        name: &str,
        bytes: Vec<u8>,
        content_type: &str,
        upsert: bool,
    ) -> (u16, Value) {
        json_of(
            self.request(who, Method::POST, &format!("/object/{bucket}/{name}"))
                .header("content-type", content_type)
                .header("cache-control", "max-age=3600")
                .header("x-upsert", if upsert { "true" } else { "false" })
                .body(bytes)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POST JSON.
    pub async fn post(&self, who: &str, path: &str, body: Value) -> (u16, Value) {
        json_of(
            self.request(who, Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET, answering status and bytes.
    pub async fn get(&self, who: &str, path: &str) -> (u16, Vec<u8>) {
        let res = self.request(who, Method::GET, path).send().await.unwrap();
        (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
    }

    /// GET a JSON answer.
    pub async fn get_json(&self, who: &str, path: &str) -> (u16, Value) {
        json_of(self.request(who, Method::GET, path).send().await.unwrap()).await
    }

    /// DELETE with a JSON body.
    pub async fn delete(&self, who: &str, path: &str, body: Value) -> (u16, Value) {
        json_of(
            self.request(who, Method::DELETE, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A plain GET of an absolute URL (signed URLs need no token).
    pub async fn fetch(&self, url: &str) -> (u16, Vec<u8>) {
        let res = self.http.get(url).send().await.unwrap();
        (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
    }

    /// Object rows in a bucket, read as the database owner.
    pub async fn rows(&self, bucket: &str) -> Vec<String> {
        sqlx::query_scalar("select name from storage.objects where bucket_id = $1 order by name")
            .bind(bucket)
            .fetch_all(&self.app.db.owner)
            .await
            .unwrap()
    }

    /// Files under the local backend's bucket directory.
    pub fn files(&self, bucket: &str) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.app.data_dir.join("storage").join(bucket), &mut out);
        out
    }
}

/// Status and JSON body (Null when the body is not JSON).
pub async fn json_of(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Asserts storage's error shape: HTTP 400 with the real status as a string.
#[track_caller]
pub fn assert_error(answer: &(u16, Value), status: &str, code: &str) {
    assert_eq!(answer.0, 400, "{answer:?}");
    assert_eq!(answer.1["statusCode"], status, "{answer:?}");
    assert_eq!(answer.1["code"], code, "{answer:?}");
    assert!(answer.1["message"].is_string(), "{answer:?}");
}
