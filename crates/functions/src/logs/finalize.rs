//! `log-finalize`: the person's corrections win (and are locked), the log is `finalized`, and
//! it becomes a labelled example for its org and person.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tally_core::RequestContext;
use uuid::Uuid;

use tally_jobs::NewJob;

use crate::{
    error::FnResult,
    job::EmbedLog,
    state::FunctionsState,
    time_log::{self, LogRow},
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinalizeLog {
    log_id: Uuid,
    #[serde(default)]
    overrides: Overrides,
}

/// Corrections; every field given is written and locked.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    comment: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    duration_minutes: Option<i32>,
    project_id: Option<Uuid>,
    activity_type_id: Option<Uuid>,
    work_mode_id: Option<Uuid>,
    task_category_id: Option<Uuid>,
    tags: Option<Vec<String>>,
    billable: Option<bool>,
}

/// Finalizes the log; `{log}`.
pub async fn run(
    state: &FunctionsState,
    ctx: &RequestContext,
    body: FinalizeLog,
) -> FnResult<Value> {
    let mut tx = ctx.begin(state.pool()).await?;
    let mut log = time_log::load_for_update(&mut tx, body.log_id).await?;
    let new_text = body.overrides.comment.is_some();
    apply(&mut log, body.overrides);
    log.status = "finalized".into();
    let saved = time_log::save(&mut tx, &log).await?;
    if new_text {
        // The example is compared by its text: embed the corrected one.
        let job = NewJob::of(&EmbedLog { log_id: log.id })?
            .org(log.org_id)
            .dedupe(log.id.to_string());
        tally_jobs::enqueue(&mut tx, &job).await?;
    }
    tx.commit().await?;
    Ok(json!({ "log": saved }))
}

fn apply(log: &mut LogRow, o: Overrides) {
    macro_rules! set {
        ($field:ident) => {
            if let Some(value) = o.$field {
                log.$field = value.into();
                log.lock(stringify!($field));
            }
        };
    }
    set!(comment);
    set!(project_id);
    set!(activity_type_id);
    set!(work_mode_id);
    set!(task_category_id);
    set!(tags);
    set!(billable);
    reconcile_times(log, o.started_at, o.ended_at, o.duration_minutes);
}

/// Applies corrected times and keeps start, end and duration consistent: what the person gave
/// wins, the third follows from the other two.
fn reconcile_times(
    log: &mut LogRow,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    minutes: Option<i32>,
) {
    let span = |m: i32| Duration::minutes(m.into());
    match (start, end, minutes) {
        (None, None, None) => return,
        (Some(s), Some(e), _) => {
            log.started_at = Some(s);
            log.ended_at = Some(e);
            log.duration_minutes = Some((e - s).num_minutes() as i32);
        }
        (Some(s), None, Some(m)) => {
            log.started_at = Some(s);
            log.duration_minutes = Some(m);
            log.ended_at = Some(s + span(m));
        }
        (None, Some(e), Some(m)) => {
            log.ended_at = Some(e);
            log.duration_minutes = Some(m);
            log.started_at = Some(e - span(m));
        }
        (Some(s), None, None) => {
            log.started_at = Some(s);
            log.ended_at = log.duration_minutes.map(|m| s + span(m));
        }
        (None, Some(e), None) => {
            log.ended_at = Some(e);
            log.started_at = log.duration_minutes.map(|m| e - span(m));
        }
        (None, None, Some(m)) => {
            log.duration_minutes = Some(m);
            log.ended_at = log.started_at.map(|s| s + span(m));
        }
    }
    for (field, given) in [
        ("started_at", start.is_some()),
        ("ended_at", end.is_some()),
        ("duration_minutes", minutes.is_some()),
    ] {
        if given {
            log.lock(field);
        }
    }
}
