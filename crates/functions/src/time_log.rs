//! A time log's editable fields as the functions read and write them, always through the
//! caller's transaction (RLS decides what is visible and writable).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{FnError, FnResult};

/// One time log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogRow {
    /// Id.
    pub id: Uuid,
    /// Organization.
    pub org_id: Uuid,
    /// Person.
    pub user_id: Uuid,
    /// What the person wrote.
    pub comment: Option<String>,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub ended_at: Option<DateTime<Utc>>,
    /// Minutes.
    pub duration_minutes: Option<i32>,
    /// Project.
    pub project_id: Option<Uuid>,
    /// Activity type.
    pub activity_type_id: Option<Uuid>,
    /// Work mode.
    pub work_mode_id: Option<Uuid>,
    /// Task category.
    pub task_category_id: Option<Uuid>,
    /// Billable.
    pub billable: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Fields the person set, which classification never changes.
    pub user_locked: Vec<String>,
    /// Status (`pending`, `ready`, ...).
    pub status: String,
    /// The extractor's overall confidence.
    pub ai_confidence: Option<f32>,
    /// Where it came from (`log_source`: manual, slack, jira, calendar, ...).
    pub source: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

impl LogRow {
    /// Whether the person locked `field`. A timer's times are its clock's, never read from
    /// its text.
    pub fn locked(&self, field: &str) -> bool {
        self.status == "finalized"
            || self.user_locked.iter().any(|f| f == field)
            || (self.source == "timer"
                && matches!(field, "started_at" | "ended_at" | "duration_minutes"))
    }

    /// Locks `field` (the person set it).
    pub fn lock(&mut self, field: &str) {
        if !self.user_locked.iter().any(|f| f == field) {
            self.user_locked.push(field.to_owned());
        }
    }
}

/// Loads log `id` for update, as the caller sees it: 404 when it does not exist for them
/// (another org's log looks exactly like a missing one).
pub async fn load_for_update(conn: &mut PgConnection, id: Uuid) -> FnResult<LogRow> {
    sqlx::query_as::<_, LogRow>(
        "select id, org_id, user_id, comment, started_at, ended_at, duration_minutes, project_id, \
                activity_type_id, work_mode_id, task_category_id, billable, tags, user_locked, \
                status::text as status, ai_confidence, source::text as source, created_at \
         from public.time_logs where id = $1 and deleted_at is null for update",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| FnError::not_found("Log"))
}

/// Writes every editable field of `row` back and returns the stored log as JSON. A log the
/// caller may read but not change is 403.
pub async fn save(conn: &mut PgConnection, row: &LogRow) -> FnResult<Value> {
    sqlx::query_scalar::<_, Value>(
        "update public.time_logs l set comment = $2, started_at = $3, ended_at = $4, \
                duration_minutes = $5, project_id = $6, activity_type_id = $7, work_mode_id = $8, \
                task_category_id = $9, billable = $10, tags = $11, user_locked = $12, \
                status = $13::public.log_status, ai_confidence = $14 \
         where id = $1 returning to_jsonb(l)",
    )
    .bind(row.id)
    .bind(&row.comment)
    .bind(row.started_at)
    .bind(row.ended_at)
    .bind(row.duration_minutes)
    .bind(row.project_id)
    .bind(row.activity_type_id)
    .bind(row.work_mode_id)
    .bind(row.task_category_id)
    .bind(row.billable)
    .bind(&row.tags)
    .bind(&row.user_locked)
    .bind(&row.status)
    .bind(row.ai_confidence)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| FnError::forbidden("You may read this log but not change it"))
}
