//! An OpenAI-compatible `/v1/embeddings` provider (`{model, input: [...]}` →
//! `data[i].embedding`), for llama.cpp, Ollama, vLLM, LocalAI or a hosted API.

use serde::Deserialize;
use serde_json::json;

use std::time::Duration;

use super::{DIM, EmbedError, EmbedFuture, Embedder};
use crate::endpoint::Endpoint;

/// Embeddings from `{base_url}/v1/embeddings`.
pub struct OpenAiEmbedder {
    endpoint: Endpoint,
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
    /// A provider at `base_url` (without `/v1`) using `model`; calls time out after `timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Endpoint::new(base_url, "embeddings", api_key, model, timeout)
            .map(|endpoint| Self { endpoint })
    }
}

impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.endpoint.model
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            let response = self
                .endpoint
                .post()
                .json(&json!({"model": self.endpoint.model, "input": texts}))
                .send()
                .await
                .map_err(|e| EmbedError::Provider(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(EmbedError::Provider(format!(
                    "{} answered {status}",
                    self.endpoint.url
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{EmbedError, Embedder, OpenAiEmbedder};

    #[tokio::test]
    async fn a_provider_that_never_answers_is_given_up_after_the_time_out() {
        // Accepts connections and reads nothing: the request hangs until the time-out.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let embedder =
            OpenAiEmbedder::new(&url, None, "m", Duration::from_millis(300)).expect("a client");
        let started = Instant::now();
        let result = embedder.embed(&["2h on apollo".to_owned()]).await;
        held.abort();
        assert!(matches!(result, Err(EmbedError::Provider(_))), "{result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
