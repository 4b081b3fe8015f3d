//! Text from screenshots: tesseract (Debian's `tesseract-ocr` + `tesseract-ocr-eng`), run as
//! a process with the image on stdin — no native bindings to build. One thread per run
//! (`OMP_THREAD_LIMIT=1`: several times faster on two cores, same output).

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::{io::AsyncWriteExt, process::Command};

/// A run longer than this is abandoned.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Why no text came out.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// tesseract is not installed.
    #[error("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")]
    Missing,
    /// It ran and failed, or took too long.
    #[error("tesseract failed: {0}")]
    Failed(String),
}

/// The tesseract command line.
#[derive(Debug, Clone)]
pub struct Tesseract {
    binary: PathBuf,
}

impl Default for Tesseract {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("tesseract"),
        }
    }
}

impl Tesseract {
    /// The text of `image` (PNG, JPEG, WebP, …), lines joined with newlines, trimmed.
    pub async fn recognize(&self, image: &[u8]) -> Result<String, OcrError> {
        let mut child = Command::new(&self.binary)
            // A block of UI text ("--psm 6") reads screenshots best.
            .args(["stdin", "stdout", "-l", "eng", "--psm", "6"])
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OcrError::Missing,
                _ => OcrError::Failed(e.to_string()),
            })?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| OcrError::Failed("no stdin".into()))?;
        let image = image.to_vec();
        let feed = tokio::spawn(async move {
            let written = stdin.write_all(&image).await;
            drop(stdin);
            written
        });
        let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| OcrError::Failed(format!("no answer within {} s", TIMEOUT.as_secs())))?
            .map_err(|e| OcrError::Failed(e.to_string()))?;
        // A write error only matters if tesseract failed too (it may stop reading early).
        let fed = feed.await.map_err(|e| OcrError::Failed(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = stderr
                .lines()
                .last()
                .unwrap_or("no message")
                .trim()
                .to_owned();
            return Err(OcrError::Failed(match fed {
                Err(e) => format!("{reason} (writing the image: {e})"),
                Ok(()) => reason,
            }));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
