//! An OpenAI-compatible `/v1/embeddings` provider (`{model, input: [...]}` →
//! `data[i].embedding`), for llama.cpp, Ollama, vLLM, LocalAI or a hosted API.

use serde::Deserialize;
use serde_json::json;

use super::{DIM, EmbedError, EmbedFuture, Embedder};

/// Embeddings from `{base_url}/v1/embeddings`.
pub struct OpenAiEmbedder {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    model: String,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

impl OpenAiEmbedder {
    /// A provider at `base_url` (without `/v1`) using `model`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: Option<String>,
        model: &str,
    ) -> Self {
        Self {
            http,
            url: format!("{}/v1/embeddings", base_url.trim_end_matches('/')),
            api_key,
            model: model.to_owned(),
        }
    }
}

impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            let mut request = self
                .http
                .post(&self.url)
                .json(&json!({"model": self.model, "input": texts}));
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let response = request
                .send()
                .await
                .map_err(|e| EmbedError::Provider(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(EmbedError::Provider(format!(
                    "{} answered {status}",
                    self.url
                )));
            }
            let mut body: Response = response
                .json()
                .await
                .map_err(|e| EmbedError::Provider(format!("unexpected answer: {e}")))?;
            body.data.sort_by_key(|i| i.index);
            if body.data.len() != texts.len() || body.data.iter().any(|i| i.embedding.len() != DIM)
            {
                return Err(EmbedError::Provider(format!(
                    "expected {} vectors of {DIM} dimensions",
                    texts.len()
                )));
            }
            Ok(body
                .data
                .into_iter()
                .map(|i| normalized(i.embedding))
                .collect())
        })
    }
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
