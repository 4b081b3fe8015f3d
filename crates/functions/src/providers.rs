//! The AI providers classification uses: the embedder, loaded on first use (the built-in model
//! is read from disk, or fetched once, only when a log is first embedded — when it cannot be
//! loaded, classification goes on without nearest-neighbour votes and `recall` answers 503),
//! the optional LLM, OCR (tesseract) and the optional speech-to-text service.

use std::{collections::HashMap, sync::Arc};

use tally_ai::{embed::Embedder, llm::Llm, ocr::Tesseract, stt::Transcriber, whisper::Whisper};
use tally_jobs::BoxFuture;
use tokio::sync::{Mutex, OnceCell};

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
    /// Vectors of vocabulary texts (names, descriptions, examples), which every log is
    /// compared with: embedded once per process and text.
    cache: Mutex<HashMap<String, Arc<Vec<f32>>>>,
}

/// How many cached vocabulary vectors are kept before the cache starts over.
const CACHE_LIMIT: usize = 20_000;

impl Embeddings {
    /// No embeddings.
    pub fn off() -> Self {
        Self(Arc::new(Inner {
            loader: None,
            loaded: OnceCell::new(),
            cache: Mutex::default(),
        }))
    }

    /// Embeddings from `loader`, called once, on first use.
    pub fn new(loader: Loader) -> Self {
        Self(Arc::new(Inner {
            loader: Some(loader),
            loaded: OnceCell::new(),
            cache: Mutex::default(),
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

    /// The vectors of `texts` and the model that made them, from the cache where it has them
    /// and embedded in one call where not; `None` when off or failing (logged). Concurrent
    /// callers wait for one another, so each text is embedded once.
    pub async fn embed_cached(&self, texts: &[String]) -> Option<(String, Vec<Arc<Vec<f32>>>)> {
        let embedder = self.get().await?;
        let mut cache = self.0.cache.lock().await;
        let mut missing: Vec<String> = texts
            .iter()
            .filter(|t| !cache.contains_key(*t))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            let vectors = match embedder.embed(&missing).await {
                Ok(v) if v.len() == missing.len() => v,
                Ok(_) => {
                    tracing::warn!("embedding failed: the embedder answered the wrong count");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "embedding failed");
                    return None;
                }
            };
            if cache.len() + missing.len() > CACHE_LIMIT {
                cache.clear();
            }
            cache.extend(missing.into_iter().zip(vectors.into_iter().map(Arc::new)));
        }
        let found: Option<Vec<_>> = texts.iter().map(|t| cache.get(t).cloned()).collect();
        found.map(|v| (embedder.model_id().to_owned(), v))
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
