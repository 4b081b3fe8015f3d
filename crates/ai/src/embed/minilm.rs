//! all-MiniLM-L6-v2 (6 layers, 384 dimensions) on the CPU with candle: BERT, mean pooling over
//! the attention mask, L2 normalisation — the sentence-transformers recipe.

use std::{path::Path, sync::Arc};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use super::{EmbedError, EmbedFuture, Embedder};

/// The model id stored with its vectors.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";

/// How many texts go through the model at once.
const BATCH: usize = 16;

/// The tokens of an encoding that are not padding.
fn real_len(encoding: &tokenizers::Encoding) -> usize {
    encoding
        .get_attention_mask()
        .iter()
        .filter(|m| **m != 0)
        .count()
}

/// The loaded model; cheap to clone.
#[derive(Clone)]
pub struct MiniLm(Arc<Inner>);

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
}

fn model_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(e.to_string())
}

fn inference_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Inference(e.to_string())
}

impl MiniLm {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .map_err(|e| EmbedError::Model(format!("{}: {e}", dir.join(name).display())))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(model_err)?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(model_err)?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: 256,
                ..TruncationParams::default()
            }))
            .map_err(model_err)?;
        let weights = read("model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(model_err)?;
        let model = BertModel::load(vb, &config).map_err(model_err)?;
        Ok(Self(Arc::new(Inner { model, tokenizer })))
    }

    /// Embeds `texts` on the calling thread (CPU-bound: call it off the async executor). Texts
    /// of like length go through the model together, [`BATCH`] at a time, so a long one does
    /// not pad every other.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .0
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(inference_err)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| real_len(&encodings[i]));
        let mut out = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&tokenizers::Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            for (&i, vector) in chunk.iter().zip(self.forward(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// Unit mean-pooled vectors of one batch of encodings (padded on the right to the longest
    /// of the whole call; cut here to the longest of this batch).
    fn forward(&self, encodings: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let len = encodings.iter().map(|e| real_len(e)).max().unwrap_or(0);
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbedError> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(&f(e)[..len], &Device::Cpu))
                .collect::<Result<_, _>>()
                .map_err(inference_err)?;
            Tensor::stack(&rows, 0).map_err(inference_err)
        };
        let ids = rows(&|e| e.get_ids())?;
        let types = rows(&|e| e.get_type_ids())?;
        let mask = rows(&|e| e.get_attention_mask())?;
        let hidden = self
            .0
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(inference_err)?;
        // Mean over the real tokens, then unit length.
        let mask = mask
            .to_dtype(DType::F32)
            .and_then(|m| m.unsqueeze(2))
            .map_err(inference_err)?;
        let summed = hidden
            .broadcast_mul(&mask)
            .and_then(|h| h.sum(1))
            .map_err(inference_err)?;
        let counts = mask.sum(1).map_err(inference_err)?;
        let mean = summed.broadcast_div(&counts).map_err(inference_err)?;
        let norm = mean
            .sqr()
            .and_then(|s| s.sum_keepdim(1))
            .and_then(|s| s.sqrt())
            .map_err(inference_err)?;
        mean.broadcast_div(&norm)
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(inference_err)
    }
}

impl Embedder for MiniLm {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        let model = self.clone();
        let texts = texts.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || model.embed_blocking(&texts))
                .await
                .map_err(inference_err)?
        })
    }
}
