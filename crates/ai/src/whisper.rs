//! The built-in offline speech engine: whisper.cpp (through whisper-rs) with whisper tiny.en.
//! Voice notes arrive as browsers and phones record them (WAV, WebM, Ogg, MP4: [`crate::audio`]),
//! become 16 kHz mono samples, and are transcribed greedily in English, with the encoder's window cut
//! to the clip's length (a short note costs a fraction of the 30 s window) and a prompt naming
//! the org's projects so that their names come out spelled right.

use std::path::Path;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::{
    audio::{RATE, pcm_16k_mono},
    stt::SttError,
};

/// Encoder frames per second of audio (1500 for 30 s).
const FRAMES_PER_SECOND: f64 = 50.0;
/// Frames added to a short clip's window, so its end is not clipped.
const FRAME_MARGIN: i32 = 64;

/// A loaded model.
pub struct Whisper {
    context: WhisperContext,
    threads: i32,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Whisper")
    }
}

impl Whisper {
    /// Loads a ggml model file; transcriptions use `threads` threads.
    pub fn load(path: &Path, threads: i32) -> Result<Self, SttError> {
        whisper_rs::install_logging_hooks();
        let context = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| SttError::Failed(format!("loading {}: {e}", path.display())))?;
        Ok(Self { context, threads })
    }

    /// The words of a recording (blocking: run it off the async threads).
    pub fn transcribe(&self, recording: &[u8], prompt: &str) -> Result<String, SttError> {
        let samples = pcm_16k_mono(recording)?;
        if samples.is_empty() {
            return Ok(String::new());
        }
        let mut state = self
            .context
            .create_state()
            .map_err(|e| SttError::Failed(e.to_string()))?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_language(Some("en"));
        params.set_n_threads(self.threads);
        params.set_no_context(true);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        if !prompt.is_empty() {
            params.set_initial_prompt(prompt);
        }
        let seconds = samples.len() as f64 / f64::from(RATE);
        if seconds < 25.0 {
            params.set_audio_ctx(
                ((seconds * FRAMES_PER_SECOND).ceil() as i32 + FRAME_MARGIN).min(1500),
            );
        }
        state
            .full(params, &samples)
            .map_err(|e| SttError::Failed(format!("transcribing: {e}")))?;
        let text: Vec<String> = state
            .as_iter()
            .filter_map(|segment| segment.to_str_lossy().ok().map(|s| s.trim().to_owned()))
            .filter(|s| !s.is_empty())
            .collect();
        Ok(text.join(" "))
    }
}
