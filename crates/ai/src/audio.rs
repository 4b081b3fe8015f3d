//! Voice notes as browsers and phones record them, decoded to what whisper hears: 16 kHz mono
//! samples in [-1, 1]. WAV (any rate, 8–32-bit PCM or float) is read by hound; WebM and Matroska
//! (Chromium's and Firefox's `MediaRecorder`), Ogg and MP4/M4A (Safari's) are demuxed by
//! symphonia, their Opus by libopus (the `opus` crate) and their AAC, Vorbis or FLAC by
//! symphonia. Channels are averaged, then resampled by linear interpolation (speech survives
//! it; whisper needs no more). Bounded: at most [`MAX_SECONDS`] of audio is decoded.

use std::io::Cursor;

use symphonia::core::{
    audio::SampleBuffer,
    codecs::{CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CodecParameters, DecoderOptions},
    errors::Error as MediaError,
    formats::{FormatOptions, FormatReader},
    io::MediaSourceStream,
    meta::MetadataOptions,
    probe::Hint,
};

use crate::stt::SttError;

/// Whisper's sample rate.
pub const RATE: u32 = 16_000;
/// The longest voice note decoded (more is cut): ten minutes.
pub const MAX_SECONDS: u32 = 600;
/// Opus always decodes at 48 kHz.
const OPUS_RATE: u32 = 48_000;
/// The most samples one Opus packet holds (120 ms at 48 kHz).
const OPUS_MAX_FRAME: usize = 5_760;

/// A recording as 16 kHz mono samples.
pub fn pcm_16k_mono(bytes: &[u8]) -> Result<Vec<f32>, SttError> {
    let (mono, rate) = if bytes.starts_with(b"RIFF") {
        wav(bytes)?
    } else {
        contained(bytes)?
    };
    Ok(resample(&mono, rate, RATE))
}

fn failed(what: impl std::fmt::Display) -> SttError {
    SttError::Failed(format!(
        "the built-in engine reads WAV, WebM, Ogg and MP4 voice notes (Opus, AAC, Vorbis, FLAC): \
         {what}; set TALLY_STT_URL for other formats"
    ))
}

/// A WAV file as mono samples and its rate.
fn wav(bytes: &[u8]) -> Result<(Vec<f32>, u32), SttError> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(failed)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let limit = (MAX_SECONDS * spec.sample_rate) as usize * channels;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .take(limit)
            .collect::<Result<_, _>>()
            .map_err(|e| SttError::Failed(format!("reading the WAV: {e}")))?,
        hound::SampleFormat::Int => {
            let scale = 2f32.powi(i32::from(spec.bits_per_sample) - 1);
            reader
                .into_samples::<i32>()
                .take(limit)
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(|e| SttError::Failed(format!("reading the WAV: {e}")))?
        }
    };
    Ok((mix(&samples, channels), spec.sample_rate))
}

/// Interleaved frames of `channels` averaged into one.
fn mix(samples: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return samples.to_vec();
    }
    samples
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect()
}

/// A recording in a container symphonia reads, as mono samples and their rate.
fn contained(bytes: &[u8]) -> Result<(Vec<f32>, u32), SttError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| failed(format!("not a recording it knows ({e})")))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| failed("no audio track"))?;
    let (id, params) = (track.id, track.codec_params.clone());
    if params.codec == CODEC_TYPE_OPUS {
        opus(format.as_mut(), id)
    } else {
        decoded(format.as_mut(), id, &params)
    }
}

/// The next packet of track `id`, or None at the end of the stream.
fn next_packet(
    format: &mut dyn FormatReader,
    id: u32,
) -> Result<Option<symphonia::core::formats::Packet>, SttError> {
    loop {
        match format.next_packet() {
            Ok(packet) if packet.track_id() == id => return Ok(Some(packet)),
            Ok(_) => {}
            Err(MediaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(None);
            }
            Err(MediaError::ResetRequired) => return Ok(None),
            Err(e) => return Err(failed(format!("a damaged recording ({e})"))),
        }
    }
}

/// Opus packets decoded by libopus, straight to mono at 48 kHz.
fn opus(format: &mut dyn FormatReader, id: u32) -> Result<(Vec<f32>, u32), SttError> {
    let mut decoder = ::opus::Decoder::new(OPUS_RATE, ::opus::Channels::Mono)
        .map_err(|e| failed(format!("Opus ({e})")))?;
    let limit = (MAX_SECONDS * OPUS_RATE) as usize;
    let mut out = Vec::new();
    let mut frame = vec![0f32; OPUS_MAX_FRAME];
    while out.len() < limit {
        let Some(packet) = next_packet(format, id)? else {
            break;
        };
        // A packet libopus refuses is skipped, as a player would: the rest still decodes.
        if let Ok(n) = decoder.decode_float(&packet.data, &mut frame, false) {
            out.extend_from_slice(&frame[..n]);
        }
    }
    out.truncate(limit);
    Ok((out, OPUS_RATE))
}

/// Packets of any other codec symphonia decodes.
fn decoded(
    format: &mut dyn FormatReader,
    id: u32,
    params: &CodecParameters,
) -> Result<(Vec<f32>, u32), SttError> {
    let mut decoder = symphonia::default::get_codecs()
        .make(params, &DecoderOptions::default())
        .map_err(|e| failed(format!("its codec ({e})")))?;
    let mut rate = params.sample_rate.unwrap_or(RATE);
    let mut out = Vec::new();
    loop {
        if out.len() >= (MAX_SECONDS * rate) as usize {
            break;
        }
        let Some(packet) = next_packet(format, id)? else {
            break;
        };
        let audio = match decoder.decode(&packet) {
            Ok(audio) => audio,
            Err(MediaError::DecodeError(_)) => continue,
            Err(e) => return Err(failed(format!("a damaged recording ({e})"))),
        };
        let spec = *audio.spec();
        rate = spec.rate;
        let mut samples = SampleBuffer::<f32>::new(audio.capacity() as u64, spec);
        samples.copy_interleaved_ref(audio);
        out.extend(mix(samples.samples(), spec.channels.count()));
    }
    out.truncate((MAX_SECONDS * rate) as usize);
    Ok((out, rate))
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
        let mut out = Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut out, spec).expect("a writer");
        for i in 0..frames * usize::from(channels) {
            writer
                .write_sample(((i % 100) as i16 - 50) * 300)
                .expect("a sample");
        }
        writer.finalize().expect("a WAV");
        out.into_inner()
    }

    #[test]
    fn any_wav_becomes_16k_mono_in_range() {
        let pcm = pcm_16k_mono(&wav(22_050, 2, 22_050)).expect("decodes");
        assert!((15_990..=16_000).contains(&pcm.len()), "{}", pcm.len());
        assert!(pcm.iter().all(|s| (-1.0..=1.0).contains(s)));
        assert_eq!(
            pcm_16k_mono(&wav(16_000, 1, 8_000)).expect("decodes").len(),
            8_000
        );
    }

    #[test]
    fn long_recordings_are_cut_at_ten_minutes() {
        let pcm = pcm_16k_mono(&wav(8_000, 1, 8_000 * 660)).expect("decodes");
        assert_eq!(pcm.len(), (MAX_SECONDS * RATE) as usize);
    }

    #[test]
    fn what_it_cannot_read_is_refused_with_the_way_out() {
        for bytes in [&b"\x1aE\xdf\xa3 not really webm"[..], b"plain text", b""] {
            let e = pcm_16k_mono(bytes).expect_err("not a recording");
            assert!(e.to_string().contains("TALLY_STT_URL"), "{e}");
        }
    }
}
