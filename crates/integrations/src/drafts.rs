//! Time logs made from external records. A new one enters the pipeline like `log-create`
//! (pending, the fields the record gave locked, classified by the worker); one made from a
//! Jira worklog or a calendar event is remembered in `private.external_links`, so a later
//! change of the record moves or removes its draft — unless the person has finalized it.
//! Events about one record are applied one at a time, and judged by when they were received:
//! an older one processed late (a retried job) never undoes a newer one, nor brings back a
//! record a newer event removed.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A log to create or update for one person.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Whose log.
    pub user: Uuid,
    /// What happened, as the record says it.
    pub comment: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// How long, in minutes.
    pub duration_minutes: Option<i32>,
    /// The project the record names, when one matched.
    pub project_id: Option<Uuid>,
    /// A vocabulary key of `work_modes` (the org's own term first, else the default).
    pub work_mode: Option<&'static str>,
    /// A vocabulary key of `activity_types`.
    pub activity_type: Option<&'static str>,
    /// `log_source`: slack, jira, calendar, api.
    pub source: &'static str,
}

impl Draft {
    fn ended_at(&self) -> Option<DateTime<Utc>> {
        Some(self.started_at? + chrono::Duration::minutes(i64::from(self.duration_minutes?)))
    }

    fn locked(&self) -> Vec<&'static str> {
        let mut locked = vec!["comment"];
        if self.started_at.is_some() {
            locked.push("started_at");
        }
        if self.duration_minutes.is_some() {
            locked.push("duration_minutes");
            if self.started_at.is_some() {
                locked.push("ended_at");
            }
        }
        if self.project_id.is_some() {
            locked.push("project_id");
        }
        if self.work_mode.is_some() {
            locked.push("work_mode_id");
        }
        if self.activity_type.is_some() {
            locked.push("activity_type_id");
        }
        locked
    }
}

/// What became of a linked draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new draft.
    Created(Uuid),
    /// The draft was moved or edited.
    Updated(Uuid),
    /// The draft was removed (soft-deleted).
    Removed(Uuid),
    /// The person finalized it: left as they confirmed it.
    Finalized(Uuid),
    /// A newer event already shaped it: this older one changes nothing.
    Outdated(Uuid),
    /// A newer event removed the record: this older one creates no draft.
    Gone,
}

/// Creates a pending log for `draft`; returns its id.
pub async fn create(
    conn: &mut PgConnection,
    org: Uuid,
    draft: &Draft,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "insert into public.time_logs (org_id, user_id, comment, started_at, ended_at, \
                duration_minutes, project_id, work_mode_id, activity_type_id, source, user_locked, status) \
         values ($1, $2, $3, $4, $5, $6, $7, \
                 (select id from public.work_modes where key = $8 and (org_id = $1 or org_id is null) \
                  and archived_at is null order by org_id nulls last limit 1), \
                 (select id from public.activity_types where key = $9 and (org_id = $1 or org_id is null) \
                  and archived_at is null order by org_id nulls last limit 1), \
                 $10::public.log_source, $11, 'pending') returning id",
    )
    .bind(org)
    .bind(draft.user)
    .bind(&draft.comment)
    .bind(draft.started_at)
    .bind(draft.ended_at())
    .bind(draft.duration_minutes)
    .bind(draft.project_id)
    .bind(draft.work_mode)
    .bind(draft.activity_type)
    .bind(draft.source)
    .bind(draft.locked())
    .fetch_one(conn)
    .await
}

/// Creates the draft linked to `key`, or moves it to what `draft` says now; `at` is when the
/// event saying so was received.
pub async fn upsert_linked(
    conn: &mut PgConnection,
    org: Uuid,
    integration: Uuid,
    key: &str,
    draft: &Draft,
    at: DateTime<Utc>,
) -> Result<Change, sqlx::Error> {
    serialize(conn, integration, key).await?;
    let linked: Option<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "select l.id, l.status::text, x.source_at from private.external_links x \
         join public.time_logs l on l.id = x.time_log_id \
         where x.integration_id = $1 and x.external_key = $2 and x.user_id = $3 \
         for update of l, x",
    )
    .bind(integration)
    .bind(key)
    .bind(draft.user)
    .fetch_optional(&mut *conn)
    .await?;
    match linked {
        Some((id, _, source_at)) if at < source_at => Ok(Change::Outdated(id)),
        Some((id, status, _)) if status == "finalized" => Ok(Change::Finalized(id)),
        Some((id, _, _)) => {
            sqlx::query(
                "update public.time_logs set comment = $2, started_at = $3, ended_at = $4, \
                        duration_minutes = $5, project_id = coalesce($6, project_id), deleted_at = null \
                 where id = $1",
            )
            .bind(id)
            .bind(&draft.comment)
            .bind(draft.started_at)
            .bind(draft.ended_at())
            .bind(draft.duration_minutes)
            .bind(draft.project_id)
            .execute(&mut *conn)
            .await?;
            touch(conn, integration, key, draft.user, at).await?;
            Ok(Change::Updated(id))
        }
        None => {
            let removed: Option<DateTime<Utc>> = sqlx::query_scalar(
                "select removed_at from private.external_removals \
                 where integration_id = $1 and external_key = $2 and removed_at > $3",
            )
            .bind(integration)
            .bind(key)
            .bind(at)
            .fetch_optional(&mut *conn)
            .await?;
            if removed.is_some() {
                return Ok(Change::Gone);
            }
            let id = create(&mut *conn, org, draft).await?;
            sqlx::query(
                "insert into private.external_links (integration_id, external_key, user_id, time_log_id, source_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(integration)
            .bind(key)
            .bind(draft.user)
            .bind(id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Ok(Change::Created(id))
        }
    }
}

/// Holds back, until the caller's transaction ends, any other transaction applying an event
/// about the same record.
async fn serialize(
    conn: &mut PgConnection,
    integration: Uuid,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2, 0))")
        .bind(integration)
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
}

async fn touch(
    conn: &mut PgConnection,
    integration: Uuid,
    key: &str,
    user: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update private.external_links set source_at = $4 \
         where integration_id = $1 and external_key = $2 and user_id = $3",
    )
    .bind(integration)
    .bind(key)
    .bind(user)
    .bind(at)
    .execute(conn)
    .await
    .map(drop)
}

/// Removes the drafts linked to `key` of everyone not in `keep` (all of them, and the record
/// is remembered as removed, when `keep` is empty), as an event received at `at` says;
/// finalized logs stay.
pub async fn remove_linked(
    conn: &mut PgConnection,
    integration: Uuid,
    key: &str,
    keep: &[Uuid],
    at: DateTime<Utc>,
) -> Result<Vec<Change>, sqlx::Error> {
    serialize(conn, integration, key).await?;
    if keep.is_empty() {
        sqlx::query(
            "insert into private.external_removals (integration_id, external_key, removed_at) \
             values ($1, $2, $3) on conflict (integration_id, external_key) \
             do update set removed_at = greatest(excluded.removed_at, external_removals.removed_at)",
        )
        .bind(integration)
        .bind(key)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    let rows: Vec<(Uuid, Uuid, String, bool, DateTime<Utc>)> = sqlx::query_as(
        "select l.id, x.user_id, l.status::text, l.deleted_at is not null, x.source_at \
         from private.external_links x join public.time_logs l on l.id = x.time_log_id \
         where x.integration_id = $1 and x.external_key = $2 and x.user_id <> all ($3) \
         for update of l, x",
    )
    .bind(integration)
    .bind(key)
    .bind(keep)
    .fetch_all(&mut *conn)
    .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for (id, user, status, deleted, source_at) in rows {
        if at < source_at {
            changes.push(Change::Outdated(id));
        } else if status == "finalized" {
            changes.push(Change::Finalized(id));
        } else if !deleted {
            sqlx::query("update public.time_logs set deleted_at = now() where id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            touch(conn, integration, key, user, at).await?;
            changes.push(Change::Removed(id));
        }
    }
    Ok(changes)
}

/// The org's project whose code or one of whose aliases is `key` (case-insensitive).
pub async fn project_by_key(
    conn: &mut PgConnection,
    org: Uuid,
    key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from public.projects \
         where org_id = $1 and deleted_at is null and archived_at is null \
           and (lower(code) = lower($2) or exists (select 1 from unnest(aliases) a where lower(a) = lower($2))) \
         order by (lower(code) = lower($2)) desc nulls last, created_at limit 1",
    )
    .bind(org)
    .bind(key)
    .fetch_optional(conn)
    .await
}
