//! The OpenID Connect client side, on the `openidconnect` crate over Tally's reqwest client:
//! discovery (cached), the authorization URL, and the code exchange with ID-token checks
//! (signature from the provider's JWKS, issuer, audience, nonce, expiry).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http;
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
    core::{CoreClient, CoreProviderMetadata, CoreResponseType},
};

use super::providers::Provider;

/// How long discovered metadata is reused.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// Why the provider could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider's configuration (issuer URL, discovery) is unusable.
    #[error("identity provider configuration: {0}")]
    Config(String),
    /// The provider refused or answered something unusable.
    #[error("identity provider: {0}")]
    Provider(String),
    /// The ID token failed verification.
    #[error("ID token rejected: {0}")]
    IdToken(String),
}

/// An HTTP error of the adapter below.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// Sends an `openidconnect` request with reqwest.
async fn send(
    client: reqwest::Client,
    request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, HttpError> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    builder
        .body(body.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}

/// Discovery results per issuer.
#[derive(Default)]
pub struct MetadataCache(Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>);

/// What the redirect to the provider needs remembered until the callback.
pub struct Started {
    /// Where to send the browser.
    pub url: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// Tally's PKCE verifier towards the provider.
    pub pkce_verifier: String,
}

/// The verified identity from a provider.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The provider's subject.
    pub subject: String,
    /// The email, when given.
    pub email: Option<String>,
    /// Whether the provider vouches for the email.
    pub email_verified: bool,
    /// A display name, when given.
    pub name: Option<String>,
    /// The provider's access token.
    pub access_token: String,
    /// The ID token's claims, kept as identity data.
    pub claims: serde_json::Value,
}

/// The OIDC client for one provider.
pub struct Oidc<'a> {
    http: &'a reqwest::Client,
    cache: &'a MetadataCache,
    provider: &'a Provider,
    redirect_uri: String,
}

impl<'a> Oidc<'a> {
    /// A client for `provider`, whose callback is `redirect_uri`.
    pub fn new(
        http: &'a reqwest::Client,
        cache: &'a MetadataCache,
        provider: &'a Provider,
        redirect_uri: String,
    ) -> Self {
        Self {
            http,
            cache,
            provider,
            redirect_uri,
        }
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        let issuer = &self.provider.issuer;
        if let Ok(cache) = self.cache.0.lock()
            && let Some((at, metadata)) = cache.get(issuer)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata.clone());
        }
        let issuer_url =
            IssuerUrl::new(issuer.clone()).map_err(|e| OidcError::Config(e.to_string()))?;
        let client = self.http.clone();
        let http = move |request| send(client.clone(), request);
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .map_err(|e| OidcError::Config(format!("discovery failed: {e}")))?;
        if let Ok(mut cache) = self.cache.0.lock() {
            cache.insert(issuer.clone(), (Instant::now(), metadata.clone()));
        }
        Ok(metadata)
    }

    /// The authorization URL with a fresh state (`state`), nonce and PKCE challenge.
    pub async fn start(&self, state: &str) -> Result<Started, OidcError> {
        let metadata = self.metadata().await?;
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.provider.client_id.clone()),
            Some(ClientSecret::new(self.provider.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state.clone()),
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.provider.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, nonce) = request.url();
        Ok(Started {
            url: url.to_string(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the provider's code and verifies the ID token it returns.
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Verified, OidcError> {
        let metadata = self.metadata().await?;
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.provider.client_id.clone()),
            Some(ClientSecret::new(self.provider.client_secret.clone())),
        )
        .set_redirect_uri(redirect);
        let http_client = self.http.clone();
        let http = move |request| send(http_client.clone(), request);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Provider(format!("code exchange failed: {e}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Provider("no ID token in the token response".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
            .map_err(|e| OidcError::IdToken(e.to_string()))?;
        Ok(Verified {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_lowercase()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            access_token: response.access_token().secret().clone(),
            claims: serde_json::to_value(claims).unwrap_or_default(),
        })
    }
}
