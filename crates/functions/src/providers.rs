//! The AI providers classification uses: the embedder, loaded on first use (the built-in model
//! is read from disk, or fetched once, only when a log is first embedded — when it cannot be
//! loaded, classification goes on without nearest-neighbour votes and `recall` answers 503),
//! the optional LLM, OCR (tesseract) and the optional speech-to-text service.

use std::sync::Arc;

use tally_ai::{embed::Embedder, llm::Llm, ocr::Tesseract, stt::Transcriber, whisper::Whisper};
use tally_jobs::BoxFuture;
use tokio::sync::OnceCell;

/// Loads the embedder.
pub type Loader =
    Box<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn Embedder>, String>> + Send + Sync>;

/// Everything classification may call out to.
#[derive(Clone)]
pub struct Providers {
    /// Sentence embeddings.
    pub embeddings: Embeddings,
    /// An OpenAI-compatible chat model, when configured.
    pub llm: Option<Arc<Llm>>,
    /// OCR for screenshots.
    pub ocr: Tesseract,
    /// Speech to text for voice notes.
    pub speech: Speech,
}

impl Providers {
    /// Rules only: no embeddings, no LLM.
    pub fn rules_only() -> Self {
        Self {
            embeddings: Embeddings::off(),
            llm: None,
            ocr: Tesseract::default(),
            speech: Speech::Off,
        }
    }
}

/// Loads the built-in speech model.
pub type WhisperLoader =
    Box<dyn Fn() -> BoxFuture<'static, Result<Arc<Whisper>, String>> + Send + Sync>;

/// Where voice notes are transcribed.
#[derive(Clone)]
pub enum Speech {
    /// An OpenAI-compatible `/v1/audio/transcriptions`.
    Service(Arc<Transcriber>),
    /// whisper.cpp in-process, its model loaded on first use.
    Builtin(Arc<BuiltinSpeech>),
    /// None: voice notes fail with the reason.
    Off,
}

/// The built-in engine, loaded once (a failed load is tried again next time).
pub struct BuiltinSpeech {
    loader: WhisperLoader,
    loaded: OnceCell<Arc<Whisper>>,
}

impl Speech {
    /// The built-in engine, loaded by `loader` on first use.
    pub fn builtin(loader: WhisperLoader) -> Self {
        Self::Builtin(Arc::new(BuiltinSpeech {
            loader,
            loaded: OnceCell::new(),
        }))
    }
}

impl BuiltinSpeech {
    /// The loaded model.
    pub async fn get(&self) -> Result<Arc<Whisper>, String> {
        self.loaded
            .get_or_try_init(|| (self.loader)())
            .await
            .cloned()
    }
}

/// The configured embedder, if any, loaded once.
#[derive(Clone)]
pub struct Embeddings(Arc<Inner>);

struct Inner {
    loader: Option<Loader>,
    loaded: OnceCell<Option<Arc<dyn Embedder>>>,
}

impl Embeddings {
    /// No embeddings.
    pub fn off() -> Self {
        Self(Arc::new(Inner {
            loader: None,
            loaded: OnceCell::new(),
        }))
    }

    /// Embeddings from `loader`, called once, on first use.
    pub fn new(loader: Loader) -> Self {
        Self(Arc::new(Inner {
            loader: Some(loader),
            loaded: OnceCell::new(),
        }))
    }

    /// The embedder, or `None` when off or when it failed to load (logged once).
    pub async fn get(&self) -> Option<Arc<dyn Embedder>> {
        let Some(loader) = &self.0.loader else {
            return None;
        };
        self.0
            .loaded
            .get_or_init(|| async {
                match loader().await {
                    Ok(embedder) => Some(embedder),
                    Err(e) => {
                        tracing::error!(error = %e, "embeddings are off: the embedder did not load");
                        None
                    }
                }
            })
            .await
            .clone()
    }

    /// One text's vector and the model that made it; `None` when off or failing (logged).
    pub async fn embed(&self, text: &str) -> Option<(String, Vec<f32>)> {
        let embedder = self.get().await?;
        match embedder.embed(&[text.to_owned()]).await {
            Ok(mut vectors) => vectors.pop().map(|v| (embedder.model_id().to_owned(), v)),
            Err(e) => {
                tracing::warn!(error = %e, "embedding failed");
                None
            }
        }
    }
}
