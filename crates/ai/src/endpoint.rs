//! One OpenAI-compatible endpoint: its URL, key and model, behind a client with a time-out.

use std::time::Duration;

/// `{base_url}/v1/{path}` with an optional bearer key and a model name.
pub(crate) struct Endpoint {
    http: reqwest::Client,
    /// The full URL requests are posted to.
    pub(crate) url: String,
    api_key: Option<String>,
    /// The model asked for.
    pub(crate) model: String,
}

impl Endpoint {
    /// An endpoint at `base_url` (without `/v1`); calls time out after `timeout`. A client that
    /// cannot be built is an error, never a fallback without the time-out.
    pub(crate) fn new(
        base_url: &str,
        path: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            url: format!("{}/v1/{path}", base_url.trim_end_matches('/')),
            api_key,
            model: model.to_owned(),
        })
    }

    /// A POST to the endpoint, with the key when there is one.
    pub(crate) fn post(&self) -> reqwest::RequestBuilder {
        let request = self.http.post(&self.url);
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }
}
