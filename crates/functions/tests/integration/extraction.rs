//! Text from attachments, end to end with real files: a screenshot rendered by the test goes
//! through `upload-presign`, the upload, OCR by tesseract and classification; a voice note made
//! with espeak-ng is transcribed offline by whisper.cpp; another goes to a local fake of an
//! OpenAI-compatible `/v1/audio/transcriptions`; a format the built-in engine cannot read fails
//! with the reason.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use axum::{Json, Router, body::Bytes, routing::post};
use serde_json::{Value, json};
use tally_testkit::TestApp;

use crate::world::World;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// `text` in black on white, 28 px DejaVu Sans, as a PNG.
fn screenshot(text: &str) -> Vec<u8> {
    let data = std::fs::read(FONT).expect("DejaVu Sans (apt-get install fonts-dejavu-core)");
    let font = FontRef::try_from_slice(&data).unwrap();
    let scale = PxScale::from(28.0);
    let scaled = font.as_scaled(scale);
    let (width, height) = (1000u32, 80u32);
    let mut pixels = vec![255u8; (width * height) as usize];
    let mut x = 20.0f32;
    let baseline = 50.0f32;
    for c in text.chars() {
        let glyph = scaled.scaled_glyph(c);
        let advance = scaled.h_advance(glyph.id);
        let glyph = ab_glyph::Glyph {
            position: ab_glyph::point(x, baseline),
            ..glyph
        };
        if let Some(outlined) = font.outline_glyph(glyph) {
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                if (0..i64::from(width)).contains(&px) && (0..i64::from(height)).contains(&py) {
                    let i = (py as u32 * width + px as u32) as usize;
                    pixels[i] = pixels[i].min((255.0 * (1.0 - coverage)) as u8);
                }
            });
        }
        x += advance;
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
    }
    png
}

/// A short WAV of silence (the fake transcriber does not listen).
fn wav() -> Vec<u8> {
    let samples = 1600usize;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&u32::try_from(36 + samples * 2).unwrap().to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in [16_000u32, 32_000] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in [2u16, 16] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&u32::try_from(samples * 2).unwrap().to_le_bytes());
    bytes.resize(44 + samples * 2, 0);
    bytes
}

/// Presigns, uploads `bytes` and creates a log with the attachment; returns (attachment, log).
async fn attach(w: &World, kind: &str, file: &str, mime: &str, bytes: Vec<u8>) -> (String, String) {
    let (status, presigned) = w
        .call(
            "member_a",
            "upload-presign",
            json!({"org_id": w.id("org_a"), "kind": kind,
            "filename": file, "content_type": mime, "size_bytes": bytes.len()}),
        )
        .await;
    assert_eq!(status, 201, "{presigned}");
    let res = reqwest::Client::new()
        .put(presigned["signed_url"].as_str().unwrap())
        .header("content-type", mime)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let attachment = presigned["attachment_id"].as_str().unwrap().to_owned();
    let (status, created) = w
        .call("member_a", "log-create", json!({"org_id": w.id("org_a"), "source": if kind == "image" { "screenshot" } else { "voice" },
            "attachment_ids": [attachment]}))
        .await;
    assert_eq!(status, 201, "{created}");
    (
        attachment,
        created["log"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn row(w: &World, table: &str, id: &str) -> Value {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select to_jsonb(t) from {table} t where id = $1::uuid"
    )))
    .bind(id)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap()
}

/// Waits (up to 90 s: transcriptions queue on a loaded 2-core machine) until `done` holds for the attachment and its log.
async fn settled(
    w: &World,
    attachment: &str,
    log: &str,
    done: impl Fn(&Value, &Value) -> bool,
) -> (Value, Value) {
    for _ in 0..900 {
        let (a, l) = (
            row(w, "attachments", attachment).await,
            row(w, "time_logs", log).await,
        );
        if done(&a, &l) {
            return (a, l);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (a, l) = (
        row(w, "attachments", attachment).await,
        row(w, "time_logs", log).await,
    );
    panic!("not settled after 90 s:\nattachment {a}\nlog {l}");
}

#[tokio::test]
async fn a_screenshot_is_read_by_ocr_and_its_log_classified_from_the_text() {
    let w = World::new().await;
    let image = screenshot("2h 15m code review for the Apollo redesign");
    let (attachment, log) = attach(&w, "image", "screen.png", "image/png", image).await;
    let (a, l) = settled(&w, &attachment, &log, |a, l| {
        a["status"] == "processed" && l["status"] != "pending" && l["duration_minutes"] == 135
    })
    .await;
    let text = a["extracted_text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("code review") && text.contains("apollo"),
        "{text}"
    );
    assert_eq!(l["project_id"], w.id("apollo").to_string(), "{l}");
    assert_eq!(l["duration_minutes"], 135);
}

#[tokio::test]
async fn a_voice_note_goes_to_the_configured_transcriber() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let router = Router::new().route(
        "/v1/audio/transcriptions",
        post(move |body: Bytes| {
            let log = log.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                Json(json!({"text": "An hour and a half of planning for internal tools."}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = TestApp::spawn_with(|c| {
        c.ai.stt_url = Some(url);
        c.ai.stt_model = "fake-whisper".into();
    })
    .await
    .unwrap();
    let w = World::with_app(app).await;
    let (attachment, log) = attach(&w, "voice", "note.wav", "audio/wav", wav()).await;
    let (a, l) = settled(&w, &attachment, &log, |a, l| {
        a["status"] == "processed" && l["status"] != "pending" && l["duration_minutes"] == 90
    })
    .await;
    assert_eq!(
        a["extracted_text"],
        "An hour and a half of planning for internal tools."
    );
    assert_eq!(l["project_id"], w.id("tools").to_string(), "{l}");
    let request = seen.lock().unwrap()[0].clone();
    assert!(
        request.contains("name=\"model\"\r\n\r\nfake-whisper"),
        "{request}"
    );
    assert!(request.contains("filename=\"note.wav\""), "{request}");
    assert!(
        request.contains("Apollo Redesign, Internal Tools"),
        "the prompt names the projects"
    );
}

/// `text` spoken by espeak-ng, as a WAV file.
fn spoken(text: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("tally-voice-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("note.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&file)
        .arg(text)
        .status()
        .expect("espeak-ng (apt-get install espeak-ng; scripts/test does)");
    assert!(status.success());
    let bytes = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// `wav` encoded by ffmpeg as `codec` in `format`, as browsers and phones record: WebM/Opus
/// (Chromium, Firefox — written as a stream, as `MediaRecorder` writes it: sizes unknown, no
/// index), Ogg/Opus, MP4/AAC (Safari).
fn encoded(wav: &[u8], codec: &str, format: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("tally-voice-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in.wav"), wav).unwrap();
    let mut ffmpeg = std::process::Command::new("ffmpeg");
    ffmpeg
        .args(["-loglevel", "error", "-i"])
        .arg(dir.join("in.wav"))
        .args(["-c:a", codec, "-b:a", "64k"]);
    let bytes = if format == "webm" {
        // To a pipe, which cannot be rewound: a live stream.
        let out = ffmpeg
            .args(["-f", "webm", "-"])
            .output()
            .expect("ffmpeg (apt-get install ffmpeg; scripts/test does)");
        assert!(out.status.success(), "ffmpeg made the WebM");
        out.stdout
    } else {
        let file = dir.join(format!("note.{format}"));
        let status = ffmpeg
            .arg(&file)
            .status()
            .expect("ffmpeg (apt-get install ffmpeg; scripts/test does)");
        assert!(status.success(), "ffmpeg made the {format}");
        std::fs::read(file).unwrap()
    };
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

#[tokio::test]
async fn spoken_voice_notes_in_every_recorded_format_are_transcribed_offline() {
    let w = World::new().await;
    let wav = spoken("Two hours of code review for the Apollo redesign.");
    let notes = [
        ("note.wav", "audio/wav", wav.clone()),
        (
            "note.webm",
            "audio/webm",
            encoded(&wav, "libopus", "note.webm"),
        ),
        (
            "note.ogg",
            "audio/ogg",
            encoded(&wav, "libopus", "note.ogg"),
        ),
        ("note.m4a", "audio/mp4", encoded(&wav, "aac", "note.m4a")),
    ];
    let mut attached = Vec::new();
    for (file, mime, bytes) in notes {
        attached.push((file, attach(&w, "voice", file, mime, bytes).await));
    }
    for (file, (attachment, log)) in attached {
        let (a, l) = settled(&w, &attachment, &log, |a, l| {
            (a["status"] == "processed" || a["status"] == "failed") && l["status"] != "pending"
        })
        .await;
        assert_eq!(a["status"], "processed", "{file}: {a}");
        let text = a["extracted_text"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        eprintln!("whisper tiny.en heard {file}: {text}");
        assert!(
            text.contains("hours") && text.contains("review"),
            "{file}: {text}"
        );
        assert_eq!(l["duration_minutes"], 120, "{file}: {l}");
    }
}

#[tokio::test]
async fn a_voice_note_the_built_in_engine_cannot_read_fails_with_the_reason() {
    let w = World::new().await;
    // A WebM header and nothing after it: a real audio type, but no recording in it.
    let webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02".to_vec();
    let (attachment, log) = attach(&w, "voice", "note.webm", "audio/webm", webm).await;
    let (a, _) = settled(&w, &attachment, &log, |a, _| a["status"] == "failed").await;
    assert!(
        a["error"].as_str().unwrap().contains("TALLY_STT_URL"),
        "{a}"
    );
    assert!(a["extracted_text"].is_null());
}
