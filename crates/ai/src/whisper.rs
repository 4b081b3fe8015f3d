//! The built-in offline speech engine: whisper.cpp (through whisper-rs) with whisper tiny.en.
//! Voice notes arrive as WAV (any rate, mono or stereo, 8/16/24/32-bit PCM or float), become
//! 16 kHz mono samples, and are transcribed greedily in English, with the encoder's window cut
//! to the clip's length (a short note costs a fraction of the 30 s window) and a prompt naming
//! the org's projects so that their names come out spelled right.

use std::path::Path;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::stt::SttError;

/// Whisper's sample rate.
const RATE: u32 = 16_000;
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

    /// The words of a WAV file (blocking: run it off the async threads).
    pub fn transcribe_wav(&self, wav: &[u8], prompt: &str) -> Result<String, SttError> {
        let samples = pcm_16k_mono(wav)?;
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

/// A WAV file as 16 kHz mono samples in [-1, 1]: channels averaged, then resampled by linear
/// interpolation (speech survives it; whisper needs no more).
pub fn pcm_16k_mono(wav: &[u8]) -> Result<Vec<f32>, SttError> {
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).map_err(|e| {
        SttError::Failed(format!(
            "the built-in engine reads WAV files only ({e}); set TALLY_STT_URL for other formats"
        ))
    })?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| SttError::Failed(format!("reading the WAV: {e}")))?,
        hound::SampleFormat::Int => {
            let scale = 2f32.powi(i32::from(spec.bits_per_sample) - 1);
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(|e| SttError::Failed(format!("reading the WAV: {e}")))?
        }
    };
    let mono: Vec<f32> = samples
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect();
    Ok(resample(&mono, spec.sample_rate, RATE))
}

fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let step = f64::from(from) / f64::from(to);
    let len = (input.len() as f64 / step).floor() as usize;
    (0..len)
        .map(|i| {
            let at = i as f64 * step;
            let j = at.floor() as usize;
            let frac = (at - j as f64) as f32;
            let a = input[j.min(input.len() - 1)];
            let b = input[(j + 1).min(input.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, frames: usize) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut out, spec).expect("a writer");
        for i in 0..frames {
            for _ in 0..channels {
                let v = ((i as f32 / 10.0).sin() * 16_000.0) as i16;
                writer.write_sample(v).expect("a sample");
            }
        }
        writer.finalize().expect("finalized");
        out.into_inner()
    }

    #[test]
    fn any_wav_becomes_16k_mono_in_range() {
        let pcm = pcm_16k_mono(&wav(22_050, 2, 22_050)).expect("decodes");
        assert!((15_990..=16_000).contains(&pcm.len()), "{}", pcm.len());
        assert!(pcm.iter().all(|s| (-1.0..=1.0).contains(s)));
        assert!(pcm.iter().any(|s| s.abs() > 0.4));
        assert_eq!(
            pcm_16k_mono(&wav(16_000, 1, 8_000)).expect("decodes").len(),
            8_000
        );
    }

    #[test]
    fn other_formats_are_refused_with_the_way_out() {
        let e = pcm_16k_mono(b"\x1aE\xdf\xa3 webm bytes").expect_err("not a WAV");
        assert!(e.to_string().contains("TALLY_STT_URL"), "{e}");
    }
}
