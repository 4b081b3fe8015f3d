//! The log pipeline's speed. (1) The built-in extractor's throughput on one core over the
//! labelled set (the three log files of eval/, the fixture's projects and the default
//! vocabulary), without embeddings, then with the built-in embedder and the ensemble (the
//! vocabulary's prototypes embedded once, as the cache does). (2) `log-create` → classified (`ready`/`needs_review`)
//! latency under load — concurrent clients create logs through `/functions/v1` while the
//! in-process workers classify them — next to a bare insert + select round trip run directly
//! over the same pool as the same role in the same run. Run with `scripts/bench-pipeline`.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use serde_json::{Value, json};
use tally_ai::{Given, Input, embed::MiniLm, extract};
use tally_core::{Claims, RequestContext};
use tally_testkit::TestApp;
use tokio::task::JoinSet;
use uuid::Uuid;

const CLIENTS: usize = 8;
const LOGS_PER_CLIENT: usize = 50;

fn comments() -> anyhow::Result<Vec<String>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../eval");
    let mut out = Vec::new();
    for file in ["logs.tsv", "holdout.tsv", "sealed.tsv"] {
        for line in std::fs::read_to_string(dir.join(file))?.lines() {
            if let Some(comment) = line.splitn(5, '\t').nth(4)
                && !line.starts_with('#')
            {
                out.push(comment.to_owned());
            }
        }
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let comments = Arc::new(comments()?);
    let (org, user) = fixture(&app).await?;

    // (1) The extractor alone, on one core.
    let candidates = {
        let mut tx = RequestContext::service().begin(&app.db.requests).await?;
        let log = sqlx::query_scalar::<_, Uuid>(
            "insert into time_logs (org_id, user_id, comment, status) values ($1, $2, 'x', 'ready') returning id",
        )
        .bind(org)
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        let row = tally_functions::classify::load_log(&mut tx, log).await?;
        let context = tally_functions::classify::context::load(&mut tx, &row).await?;
        tx.rollback().await?;
        context.candidates
    };
    let given = Given::default();
    let now = Utc::now();
    let rounds = 30;
    let started = Instant::now();
    let mut found = 0usize;
    for _ in 0..rounds {
        for text in comments.iter() {
            let e = extract(
                &Input {
                    text,
                    given: &given,
                    now,
                    tz: chrono_tz::Europe::Berlin,
                },
                &candidates,
                0.6,
            );
            found += usize::from(e.duration_minutes.is_some());
        }
    }
    let n = rounds * comments.len();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "extractor (built-in, no embeddings, one core): {n} logs in {secs:.2} s = {:.0} logs/s, {:.1} µs/log ({found} with a duration)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );

    // (1b) With embeddings: the built-in all-MiniLM-L6-v2, one log at a time, then the
    // ensemble against the vocabulary's prototypes.
    let dir = tally_server::models::minilm_dir()
        .await
        .map_err(anyhow::Error::msg)?;
    let model = MiniLm::load(&dir)?;
    let mut candidates = candidates;
    let started = Instant::now();
    let mut prototypes = 0;
    for term in candidates
        .activity_types
        .iter_mut()
        .chain(candidates.work_modes.iter_mut())
    {
        term.prototypes = model
            .embed_blocking(&term.prototype_texts())?
            .into_iter()
            .map(Arc::new)
            .collect();
        prototypes += term.prototypes.len();
    }
    println!(
        "  the vocabulary's {prototypes} prototypes embedded once in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    for text in comments.iter() {
        // As `classify` does: the log is embedded without the times it states.
        let embedded = tally_ai::time::without_times(text, now, chrono_tz::Europe::Berlin);
        let vector = model.embed_blocking(&[embedded])?;
        candidates.embedding = vector.into_iter().next();
        anyhow::ensure!(candidates.embedding.is_some(), "one vector per text");
        extract(
            &Input {
                text,
                given: &given,
                now,
                tz: chrono_tz::Europe::Berlin,
            },
            &candidates,
            0.6,
        );
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "extractor with embeddings (all-MiniLM-L6-v2 on the CPU, one log at a time): {} logs in {secs:.2} s = {:.0} logs/s, {:.1} ms/log",
        comments.len(),
        comments.len() as f64 / secs,
        secs * 1e3 / comments.len() as f64
    );
    let batch: Vec<String> = comments.iter().take(32).cloned().collect();
    let started = Instant::now();
    model.embed_blocking(&batch)?;
    println!(
        "  a batch of 32 embeds in {:.1} ms ({:.1} ms/log)",
        started.elapsed().as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3 / 32.0
    );

    // (2) log-create → classified, under load, next to a bare insert + select.
    let token = app.keys.sign(&json!({
        "sub": user, "role": "authenticated", "aud": "authenticated",
        "exp": Utc::now().timestamp() + 3600,
    }))?;
    let http = reqwest::Client::new();
    let url = app.url("/functions/v1/log-create");
    let anon = app.keys.anon_key();
    let mut clients = JoinSet::new();
    let started = Instant::now();
    for c in 0..CLIENTS {
        let (http, url, anon, token, comments) = (
            http.clone(),
            url.clone(),
            anon.clone(),
            token.clone(),
            comments.clone(),
        );
        clients.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..LOGS_PER_CLIENT {
                let comment = &comments[(c * LOGS_PER_CLIENT + i) % comments.len()];
                let res: Value = http
                    .post(&url)
                    .header("apikey", &anon)
                    .bearer_auth(&token)
                    .json(&json!({"org_id": org, "comment": comment}))
                    .send()
                    .await?
                    .json()
                    .await?;
                ids.push(res["log"]["id"].as_str().unwrap_or_default().to_owned());
            }
            anyhow::Ok(ids)
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = clients.join_next().await {
        ids.extend(done??);
    }
    let created_in = started.elapsed().as_secs_f64();
    // Wait for the workers to drain the queue.
    loop {
        let pending: i64 =
            sqlx::query_scalar("select count(*) from time_logs where status = 'pending'")
                .fetch_one(&app.db.owner)
                .await?;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_in = started.elapsed().as_secs_f64();
    // Created (insert transaction) → classified (the classification's write transaction).
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from e.created_at - l.created_at)::float8 * 1000 \
         from time_logs l join ai_extractions e on e.time_log_id = l.id \
         where l.id = any($1::uuid[])",
    )
    .bind(&ids)
    .fetch_all(&app.db.owner)
    .await?;
    latencies.sort_by(f64::total_cmp);
    println!(
        "log-create → classified, {CLIENTS} clients × {LOGS_PER_CLIENT} logs: created in {created_in:.2} s ({:.0}/s), all classified after {drained_in:.2} s; latency p50 {:.1} ms, p99 {:.1} ms",
        ids.len() as f64 / created_in,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );

    let ctx = RequestContext::from_claims(Claims(
        json!({"sub": user, "role": "authenticated"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ))?;
    let mut bare = Vec::new();
    for i in 0..(CLIENTS * LOGS_PER_CLIENT) {
        let started = Instant::now();
        let mut tx = ctx.begin(&app.db.requests).await?;
        let id: Uuid = sqlx::query_scalar(
            "insert into time_logs (org_id, user_id, comment, duration_minutes, status) \
             values ($1, $2, $3, 30, 'ready') returning id",
        )
        .bind(org)
        .bind(user)
        .bind(&comments[i % comments.len()])
        .fetch_one(&mut *tx)
        .await?;
        let _: Value = sqlx::query_scalar("select to_jsonb(l) from time_logs l where id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        bare.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    bare.sort_by(f64::total_cmp);
    println!(
        "bare insert + select as the same role (one client): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&bare, 0.5),
        percentile(&bare, 0.99)
    );
    Ok(())
}

/// An org with the eval fixture's projects and one member.
async fn fixture(app: &TestApp) -> anyhow::Result<(Uuid, Uuid)> {
    let user = Uuid::now_v7();
    let org = Uuid::now_v7();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (id, email) values ('{user}', 'bench@tally.invalid');
         insert into organizations (id, name, slug, timezone) values ('{org}', 'Bench', 'bench', 'Europe/Berlin');
         insert into memberships (org_id, user_id, role) values ('{org}', '{user}', 'member');
         insert into projects (org_id, name, code, aliases, billable) values
           ('{org}', 'Apollo Redesign', 'APL', '{{apollo,\"new website\"}}', true),
           ('{org}', 'Billing Service', 'BILL', '{{payments}}', false),
           ('{org}', 'Mobile App', 'MOB', '{{\"ios app\",\"android app\"}}', true),
           ('{org}', 'Internal Tools', 'TOOLS', '{{tooling}}', false),
           ('{org}', 'Data Platform', 'DATA', '{{warehouse,etl}}', false);"
    )))
    .execute(&app.db.owner)
    .await?;
    Ok((org, user))
}
