//! Classification of one log, shared by `ai-classify` and the `classify_log` job: read the log
//! and its context, run the extractor outside any transaction, then write the fields the person
//! did not lock, the new status and an `ai_extractions` row in one transaction.

pub mod context;
mod vectors;

pub use vectors::literal as vectors_literal;

use std::time::Instant;

use serde_json::{Value, json};
use sqlx::PgPool;
use tally_ai::{
    Extraction, Given, Input, RULES_VERSION, extract,
    llm::{Llm, LlmAnswer, LlmError, PROMPT_VERSION},
};
use tally_core::{DbRole, RequestContext};
use uuid::Uuid;

use crate::{
    error::{FnError, FnResult},
    providers::{Embeddings, Providers},
    time_log::{self, LogRow},
};

/// The provider name recorded for the built-in extractor.
pub const BUILTIN: &str = "builtin";

/// The provider name recorded for an OpenAI-compatible LLM.
pub const OPENAI: &str = "openai";

/// A classified log and the extraction that classified it.
pub struct Classified {
    /// The stored log.
    pub log: Value,
    /// The stored `ai_extractions` row.
    pub extraction: Value,
}

/// Classifies log `log_id` as `ctx`: the log's owner, an owner or admin of its org, or the
/// service role. Logs the caller cannot see are 404. The log is embedded (outside any
/// transaction) so that its nearest finalized logs vote, and the vector is stored with it.
pub async fn classify(
    pool: &PgPool,
    providers: &Providers,
    ctx: &RequestContext,
    log_id: Uuid,
    review_threshold: f32,
) -> FnResult<Classified> {
    let begun = Instant::now();
    let (log, context) = {
        let mut tx = ctx.begin(pool).await?;
        let log = time_log::load_for_update(&mut tx, log_id).await?;
        check_may_classify(&mut tx, ctx, &log).await?;
        let context = context::load(&mut tx, &log).await?;
        tx.commit().await?;
        (log, context)
    };
    let text = log_text(&log, context.attachment_text.as_deref());
    // A line that is only a time ("2h") says nothing to compare.
    let embedded = embedded_text(&text, &log, &context);
    let embedding = if embedded.is_empty() {
        None
    } else {
        providers.embeddings.embed(&embedded).await
    };
    // The LLM is asked outside any transaction: a slow answer holds no lock.
    let asked = match &providers.llm {
        Some(llm) => Some(ask(llm, &text, &log, &context).await?),
        None => None,
    };

    let mut candidates = context.candidates;
    if let Some((_, vector)) = &embedding {
        prototypes(&providers.embeddings, &mut candidates, vector).await;
    }

    let mut tx = ctx.begin(pool).await?;
    // The person may have edited the log meanwhile: apply to what is stored now.
    let mut current = time_log::load_for_update(&mut tx, log_id).await?;
    if let Some((model, vector)) = &embedding {
        candidates.neighbours = vectors::neighbours(&mut tx, &current, model, vector).await?;
    }
    let given = given(&log);
    let started = Instant::now();
    let mut extraction = extract(
        &Input {
            text: &text,
            given: &given,
            now: log.created_at,
            tz: context.tz,
        },
        &candidates,
        review_threshold,
    );
    let mut latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let mut source = (BUILTIN.to_owned(), RULES_VERSION.to_owned(), None);
    if let Some(asked) = &asked {
        for failure in &asked.failures {
            record_failure(&mut tx, &current, asked, failure).await?;
        }
        if let Some(answer) = &asked.answer {
            extraction = extraction.with_llm(answer, &given, review_threshold);
            latency_ms = asked.latency_ms;
            source = (OPENAI.to_owned(), asked.model.clone(), answer.tokens);
        }
    }
    let finalized = current.status == "finalized";
    apply(&mut current, &extraction);
    if !finalized {
        // Drafts made from a Jira worklog or a calendar event wait for the person's review.
        let draft = matches!(current.source.as_str(), "jira" | "calendar");
        current.status = if extraction.needs_review || draft {
            "needs_review".into()
        } else {
            "ready".into()
        };
        current.ai_confidence = Some(extraction.confidence);
    }
    let log = time_log::save(&mut tx, &current).await?;
    let extraction = sqlx::query_scalar::<_, Value>(
        "insert into public.ai_extractions as e (org_id, user_id, time_log_id, provider, model, \
                prompt_version, input, output, confidences, status, latency_ms, tokens) \
         values ($1, $2, $3, $4, $5, $10, $6, $7, $8, 'ok', $9, $11) returning to_jsonb(e)",
    )
    .bind(current.org_id)
    .bind(current.user_id)
    .bind(current.id)
    .bind(&source.0)
    .bind(&source.1)
    .bind(json!({
        "text": text, "given": given, "tz": context.tz.name(), "now": log_created(&current),
        "embedding_model": embedding.as_ref().map(|(model, _)| model),
        "neighbours": candidates.neighbours.len(),
    }))
    .bind(serde_json::to_value(&extraction).map_err(FnError::internal)?)
    .bind(confidences(&extraction))
    .bind(latency_ms)
    .bind(if source.0 == OPENAI {
        PROMPT_VERSION
    } else {
        RULES_VERSION
    })
    .bind(source.2.and_then(|t| i32::try_from(t).ok()))
    .fetch_one(&mut *tx)
    .await?;
    if let Some((model, vector)) = &embedding {
        vectors::store(&mut tx, &current, model, vector, &text).await?;
    }
    tx.commit().await?;
    // What operators watch: how long a classification takes, by who made it, and how many
    // end up waiting for a person's review.
    metrics::histogram!("tally_classification_duration_seconds", "provider" => source.0)
        .record(begun.elapsed().as_secs_f64());
    metrics::counter!("tally_classifications_total", "status" => current.status.clone())
        .increment(1);
    Ok(Classified { log, extraction })
}

/// Gives the activity types and work modes their prototype vectors (from the embedder's
/// cache) and the candidates the log's vector, so the extractor compares them. Without the
/// vectors the extractor goes on with keywords and votes.
async fn prototypes(embeddings: &Embeddings, candidates: &mut tally_ai::Candidates, log: &[f32]) {
    let terms = candidates
        .activity_types
        .iter()
        .chain(&candidates.work_modes);
    let texts: Vec<String> = terms.flat_map(|t| t.prototype_texts()).collect();
    let Some((_, mut vectors)) = embeddings.embed_cached(&texts).await else {
        return;
    };
    for term in candidates
        .activity_types
        .iter_mut()
        .chain(candidates.work_modes.iter_mut())
    {
        let n = term.prototype_texts().len().min(vectors.len());
        term.prototypes = vectors.drain(..n).collect();
    }
    candidates.embedding = Some(log.to_vec());
}

/// Embeds the default vocabulary's prototypes ahead of the first classification, so that the
/// first log after a start does not wait for them (hundreds of example lines); as the service
/// role. A failure is logged and leaves the work to the first classification.
pub async fn warm_prototypes(pool: PgPool, embeddings: Embeddings) {
    let ctx = RequestContext::service();
    let rows = async {
        let mut tx = ctx.begin_read_only(&pool).await?;
        let rows = sqlx::query_as::<_, (String, String, Vec<String>)>(
            "select name, description, examples from public.activity_types \
             where org_id is null and deleted_at is null \
             union all select name, description, examples from public.work_modes \
             where org_id is null and deleted_at is null",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(rows)
    }
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "the vocabulary's prototypes were not embedded ahead");
            return;
        }
    };
    let texts: Vec<String> = rows
        .into_iter()
        .flat_map(|(name, description, examples)| {
            tally_ai::Term {
                id: Uuid::nil(),
                key: String::new(),
                name,
                keywords: Vec::new(),
                description,
                examples,
                prototypes: Vec::new(),
            }
            .prototype_texts()
        })
        .collect();
    let started = Instant::now();
    if embeddings.embed_cached(&texts).await.is_some() {
        tracing::info!(
            prototypes = texts.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedded the vocabulary's prototypes"
        );
    }
}

/// What the LLM said: its valid answer (if any) and the attempts that failed.
struct Asked {
    model: String,
    answer: Option<LlmAnswer>,
    failures: Vec<(String, &'static str)>,
    latency_ms: i32,
}

/// Asks the LLM; an invalid answer is asked once more, then the rules' result stands. A
/// time-out, 429 or 5xx is 503, so the queue retries the job later.
async fn ask(llm: &Llm, text: &str, log: &LogRow, context: &context::Context) -> FnResult<Asked> {
    let times = tally_ai::time::parse(text, log.created_at, context.tz);
    let mut asked = Asked {
        model: llm.model().to_owned(),
        answer: None,
        failures: Vec::new(),
        latency_ms: 0,
    };
    for _ in 0..2 {
        let started = Instant::now();
        let result = llm.ask(text, &times, &context.candidates).await;
        asked.latency_ms += started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        match result {
            Ok(answer) => {
                asked.answer = Some(answer);
                break;
            }
            Err(LlmError::Invalid(e)) => asked.failures.push((e, "invalid")),
            Err(LlmError::Failed(e)) => {
                asked.failures.push((e, "error"));
                break;
            }
            Err(LlmError::Unavailable(e)) => {
                return Err(FnError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!("The language model is unavailable: {e}"),
                ));
            }
        }
    }
    Ok(asked)
}

/// Records an LLM attempt that gave nothing usable.
async fn record_failure(
    conn: &mut sqlx::PgConnection,
    log: &LogRow,
    asked: &Asked,
    (error, status): &(String, &'static str),
) -> FnResult<()> {
    sqlx::query(
        "insert into public.ai_extractions (org_id, user_id, time_log_id, provider, model, \
                prompt_version, status, error) \
         values ($1, $2, $3, $4, $5, $6, $7::public.extraction_status, $8)",
    )
    .bind(log.org_id)
    .bind(log.user_id)
    .bind(log.id)
    .bind(OPENAI)
    .bind(&asked.model)
    .bind(PROMPT_VERSION)
    .bind(status)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The text a log is classified and embedded from: its comment and its attachments' text.
pub fn log_text(log: &LogRow, attachment_text: Option<&str>) -> String {
    match (log.comment.as_deref(), attachment_text) {
        (Some(c), Some(a)) => format!("{c}\n{a}"),
        (Some(c), None) => c.to_owned(),
        (None, Some(a)) => a.to_owned(),
        (None, None) => String::new(),
    }
}

/// What a log is embedded as: its text without the times it states.
fn embedded_text(text: &str, log: &LogRow, context: &context::Context) -> String {
    tally_ai::time::without_times(text, log.created_at, context.tz)
}

/// Embeds log `log_id` again when its text changed since it was last embedded (a corrected
/// comment); as the service role.
pub async fn reembed(pool: &PgPool, embeddings: &Embeddings, log_id: Uuid) -> FnResult<()> {
    let ctx = RequestContext::service();
    let (log, text, stored, context) = {
        let mut tx = ctx.begin(pool).await?;
        let log = time_log::load_for_update(&mut tx, log_id).await?;
        let context = context::load(&mut tx, &log).await?;
        let stored: Option<String> = sqlx::query_scalar(
            "select content_hash from public.time_log_embeddings where time_log_id = $1",
        )
        .bind(log_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let text = log_text(&log, context.attachment_text.as_deref());
        (log, text, stored, context)
    };
    let embedded = embedded_text(&text, &log, &context);
    if embedded.is_empty() || stored.as_deref() == Some(vectors::content_hash(&text).as_str()) {
        return Ok(());
    }
    let Some((model, vector)) = embeddings.embed(&embedded).await else {
        return Ok(());
    };
    let mut tx = ctx.begin(pool).await?;
    vectors::store(&mut tx, &log, &model, &vector, &text).await?;
    tx.commit().await?;
    Ok(())
}

/// Loads log `id` for update as the transaction's caller (404 when not visible).
pub async fn load_log(conn: &mut sqlx::PgConnection, id: Uuid) -> FnResult<LogRow> {
    time_log::load_for_update(conn, id).await
}

fn log_created(log: &LogRow) -> String {
    log.created_at.to_rfc3339()
}

/// Only the log's owner, the org's owners and admins, and the service role classify.
async fn check_may_classify(
    conn: &mut sqlx::PgConnection,
    ctx: &RequestContext,
    log: &LogRow,
) -> FnResult<()> {
    if ctx.role() == DbRole::ServiceRole || ctx.user_id() == Some(log.user_id) {
        return Ok(());
    }
    let admin: bool = sqlx::query_scalar(
        "select $1 = any ((select private.my_org_ids('{owner,admin}'))::uuid[])",
    )
    .bind(log.org_id)
    .fetch_one(conn)
    .await?;
    if admin {
        Ok(())
    } else {
        Err(FnError::forbidden(
            "Only the log's owner or an admin of its organization may classify it",
        ))
    }
}

/// What the person gave: their locked fields.
fn given(log: &LogRow) -> Given {
    let pick = |field: &str| log.user_locked.iter().any(|f| f == field);
    Given {
        project_id: log.project_id.filter(|_| pick("project_id")),
        activity_type_id: log.activity_type_id.filter(|_| pick("activity_type_id")),
        work_mode_id: log.work_mode_id.filter(|_| pick("work_mode_id")),
        task_category_id: log.task_category_id.filter(|_| pick("task_category_id")),
        started_at: log.started_at.filter(|_| pick("started_at")),
        ended_at: log.ended_at.filter(|_| pick("ended_at")),
        duration_minutes: log.duration_minutes.filter(|_| pick("duration_minutes")),
        billable: Some(log.billable).filter(|_| pick("billable")),
    }
}

/// Writes the extraction into every field the person did not lock.
fn apply(log: &mut LogRow, e: &Extraction) {
    if !log.locked("project_id") {
        log.project_id = e.project.id;
    }
    if !log.locked("activity_type_id") {
        log.activity_type_id = e.activity_type.id;
    }
    if !log.locked("work_mode_id") {
        log.work_mode_id = e.work_mode.id;
    }
    if !log.locked("task_category_id") {
        log.task_category_id = e.task_category.id;
    }
    let times_locked = ["started_at", "ended_at", "duration_minutes"]
        .iter()
        .any(|f| log.locked(f));
    if !times_locked {
        log.started_at = e.started_at;
        log.ended_at = e.ended_at;
        log.duration_minutes = e.duration_minutes;
    } else if e.started_at.is_some() || e.ended_at.is_some() {
        // The extractor kept the person's times and filled the rest consistently.
        if !log.locked("started_at") {
            log.started_at = e.started_at;
        }
        if !log.locked("ended_at") {
            log.ended_at = e.ended_at;
        }
        if !log.locked("duration_minutes") {
            log.duration_minutes = e.duration_minutes;
        }
    }
    if !log.locked("billable") {
        log.billable = e.billable;
    }
    if !log.locked("tags") {
        for tag in &e.tags {
            if !log.tags.contains(tag) {
                log.tags.push(tag.clone());
            }
        }
    }
}

fn confidences(e: &Extraction) -> Value {
    json!({
        "project_id": e.project.confidence,
        "activity_type_id": e.activity_type.confidence,
        "work_mode_id": e.work_mode.confidence,
        "task_category_id": e.task_category.confidence,
        "time": e.time_confidence,
        "billable": e.billable_confidence,
        "overall": e.confidence,
    })
}

/// Marks a log whose classification failed for good: status `failed`, and an
/// `ai_extractions` row with the reason.
pub async fn mark_failed(pool: &PgPool, log_id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    let mut tx = RequestContext::service().begin(pool).await?;
    sqlx::query(
        "with l as (update public.time_logs set status = 'failed' \
                    where id = $1 and status in ('pending', 'processing') \
                    returning id, org_id, user_id) \
         insert into public.ai_extractions (org_id, user_id, time_log_id, provider, model, \
                prompt_version, status, error) \
         select org_id, user_id, id, $2, $3, $3, 'error', $4 from l",
    )
    .bind(log_id)
    .bind(BUILTIN)
    .bind(RULES_VERSION)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("tally_classifications_total", "status" => "failed").increment(1);
    Ok(())
}
