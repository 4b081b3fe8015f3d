//! The auth service's shared state.

use std::sync::Arc;

use sqlx::PgPool;
use tally_core::{Config, JwtKeys};

use tokio::sync::Notify;

use crate::{smtp::Sender, sso::oidc::MetadataCache};

/// What the auth handlers reach.
#[derive(Clone)]
pub struct AuthState(Arc<Inner>);

struct Inner {
    pool: PgPool,
    keys: JwtKeys,
    config: Config,
    http: reqwest::Client,
    oidc_metadata: MetadataCache,
    mail_wake: Arc<Notify>,
}

impl AuthState {
    /// State over the request pool.
    pub fn new(pool: PgPool, keys: JwtKeys, config: Config) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self(Arc::new(Inner {
            pool,
            keys,
            config,
            http,
            oidc_metadata: MetadataCache::default(),
            mail_wake: Arc::new(Notify::new()),
        })))
    }

    /// The task that delivers the mail outbox over SMTP, when `TALLY_SMTP_HOST` is set; a bad
    /// SMTP setting is an error naming it.
    pub fn mail_sender(&self) -> Result<Option<tally_core::Task>, String> {
        let Some(sender) = Sender::from_settings(&self.0.config.auth, self.0.mail_wake.clone())?
        else {
            return Ok(None);
        };
        Ok(Some(Box::pin(sender.run(self.0.pool.clone()))))
    }

    /// Tells the mail sender that new mail may be waiting.
    pub fn wake_mailer(&self) {
        self.0.mail_wake.notify_one();
    }

    /// The HTTP client for identity providers (no redirects followed).
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Discovered identity-provider metadata.
    pub fn oidc_metadata(&self) -> &MetadataCache {
        &self.0.oidc_metadata
    }

    /// The request pool (`tally_authenticator`).
    pub fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    /// The project's JWT keys.
    pub fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The JWT issuer: this API's `/auth/v1`.
    pub fn issuer(&self) -> String {
        format!("{}/auth/v1", self.0.config.external_url())
    }

    /// `redirect_to` when it is the site URL or on the allow list, else the site URL.
    pub fn redirect_target(&self, requested: Option<&str>) -> String {
        let auth = &self.0.config.auth;
        let site = auth.site_url.trim_end_matches('/').to_owned();
        let Some(url) = requested.map(str::trim).filter(|u| !u.is_empty()) else {
            return site;
        };
        let allowed = url == site
            || url.starts_with(&format!("{site}/"))
            || auth
                .uri_allow_list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => url.starts_with(prefix),
                    None => url == pattern,
                });
        if allowed { url.to_owned() } else { site }
    }
}
