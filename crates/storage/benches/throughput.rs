//! Upload and download throughput of a 100 MB object through `/storage/v1` (local backend),
//! next to a plain file copy on the same disk, and the process's peak memory during each.
//! Client and server run in this one process, so the peak covers both. Run with
//! `scripts/bench-storage` (release build).

use std::time::Instant;

use futures_util::StreamExt;
use serde_json::json;
use tally_testkit::{
    TestApp,
    memory::{peak_mib, reset_peak},
};
use tokio::io::AsyncWriteExt;

const SIZE: usize = 100 * 1024 * 1024;

fn mb_per_s(seconds: f64) -> f64 {
    SIZE as f64 / (1024.0 * 1024.0) / seconds
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(|c| c.ai.worker_concurrency = 0).await?;
    let dir = app.data_dir.join("bench");
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("source.bin");
    // Bytes with no recognisable signature, so the type check passes them as octet-stream.
    let block: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut file = tokio::fs::File::create(&source).await?;
    for _ in 0..SIZE / block.len() {
        file.write_all(&block).await?;
    }
    file.sync_all().await?;
    drop(file);

    let http = reqwest::Client::new();
    let service = app.keys.service_role_key();
    let created = http
        .post(app.url("/storage/v1/bucket"))
        .bearer_auth(&service)
        .json(&json!({"name": "bench"}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status().is_success(),
        "bucket: {}",
        created.text().await?
    );

    reset_peak();
    let started = Instant::now();
    let copied = dir.join("copy.bin");
    tokio::fs::copy(&source, &copied).await?;
    tokio::fs::File::open(&copied).await?.sync_all().await?;
    let copy_s = started.elapsed().as_secs_f64();
    let copy_peak = peak_mib();

    reset_peak();
    let started = Instant::now();
    let res = http
        .post(app.url("/storage/v1/object/bench/big.bin"))
        .bearer_auth(&service)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::from(tokio::fs::File::open(&source).await?))
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "upload: {}", res.text().await?);
    let upload_s = started.elapsed().as_secs_f64();
    let upload_peak = peak_mib();

    reset_peak();
    let started = Instant::now();
    let res = http
        .get(app.url("/storage/v1/object/bench/big.bin"))
        .bearer_auth(&service)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "download: {}", res.status());
    let mut out = tokio::fs::File::create(dir.join("download.bin")).await?;
    let mut body = res.bytes_stream();
    let mut received = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        received += chunk.len();
        out.write_all(&chunk).await?;
    }
    out.sync_all().await?;
    anyhow::ensure!(received == SIZE, "downloaded {received} bytes");
    let download_s = started.elapsed().as_secs_f64();
    let download_peak = peak_mib();

    println!("100 MB object, local backend, one process (client + server):");
    println!(
        "  file copy (same disk)  {:7.1} MB/s  {:6.2} s   peak RSS {:6.1} MiB",
        mb_per_s(copy_s),
        copy_s,
        copy_peak
    );
    println!(
        "  upload via /storage    {:7.1} MB/s  {:6.2} s   peak RSS {:6.1} MiB",
        mb_per_s(upload_s),
        upload_s,
        upload_peak
    );
    println!(
        "  download via /storage  {:7.1} MB/s  {:6.2} s   peak RSS {:6.1} MiB",
        mb_per_s(download_s),
        download_s,
        download_peak
    );
    app.stop().await?;
    Ok(())
}
