//! Speech to text through an OpenAI-compatible `POST /v1/audio/transcriptions` (OpenAI,
//! faster-whisper-server, LocalAI, …): multipart `file`, `model`, `language`, `prompt`,
//! answered `{"text": …}`.

use std::time::Duration;

use serde_json::Value;

use crate::endpoint::Endpoint;

/// Why no transcript came back.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    /// A time-out, 429 or 5xx: worth retrying later.
    #[error("speech-to-text unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a 4xx (wrong key or model, audio refused) or an answer without text.
    #[error("speech-to-text failed: {0}")]
    Failed(String),
}

/// An OpenAI-compatible transcription service.
pub struct Transcriber {
    endpoint: Endpoint,
}

impl Transcriber {
    /// A service at `base_url` (without `/v1`); calls time out after `timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Endpoint::new(base_url, "audio/transcriptions", api_key, model, timeout)
            .map(|endpoint| Self { endpoint })
    }

    /// The model's name.
    pub fn model(&self) -> &str {
        &self.endpoint.model
    }

    /// The words of `audio` (named `filename`, of type `content_type`), in English; `prompt`
    /// (the org's project names, say) steers the spelling of names.
    pub async fn transcribe(
        &self,
        audio: Vec<u8>,
        filename: &str,
        content_type: &str,
        prompt: &str,
    ) -> Result<String, SttError> {
        let file = reqwest::multipart::Part::bytes(audio)
            .file_name(filename.to_owned())
            .mime_str(content_type)
            .map_err(|e| SttError::Failed(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .part("file", file)
            .text("model", self.endpoint.model.clone())
            .text("language", "en")
            .text("prompt", prompt.to_owned())
            .text("response_format", "json");
        let response = self
            .endpoint
            .post()
            .multipart(form)
            .send()
            .await
            .map_err(|e| SttError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(SttError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(SttError::Failed(format!(
                "HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| SttError::Failed(format!("the answer is not JSON: {e}")))?;
        answer["text"]
            .as_str()
            .map(|t| t.trim().to_owned())
            .ok_or_else(|| SttError::Failed("the answer has no text".into()))
    }
}
