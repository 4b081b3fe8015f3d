//! Sentence embeddings: one trait, a built-in all-MiniLM-L6-v2 that runs in pure Rust
//! (candle), and an OpenAI-compatible `/v1/embeddings` provider. Every vector is stored with
//! its model id; vectors of different models are never compared.

mod minilm;
mod openai;

use std::{future::Future, pin::Pin};

pub use minilm::{MODEL_ID as MINILM_ID, MiniLm};
pub use openai::OpenAiEmbedder;

/// The dimension every stored vector has (the `vector(384)` column).
pub const DIM: usize = 384;

/// Why an embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are missing or unreadable.
    #[error("embedding model: {0}")]
    Model(String),
    /// The model failed on the input.
    #[error("embedding failed: {0}")]
    Inference(String),
    /// A provider over HTTP failed; worth retrying.
    #[error("embedding provider: {0}")]
    Provider(String),
}

/// A boxed future.
pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, EmbedError>> + Send + 'a>>;

/// Turns texts into unit vectors of [`DIM`] dimensions.
pub trait Embedder: Send + Sync {
    /// The model id stored with each vector.
    fn model_id(&self) -> &str;

    /// One unit vector per text, in order.
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a>;
}
