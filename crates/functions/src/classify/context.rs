//! What classification reads besides the log: the person's time zone, text from attachments,
//! the org's projects and vocabulary (an org's term overrides the default with its key), and
//! the nearest finalized logs.

use chrono_tz::Tz;
use sqlx::PgConnection;
use tally_ai::{Candidates, Project, Term};
use uuid::Uuid;

use crate::{error::FnResult, time_log::LogRow};

/// Everything the extractor needs about one log's surroundings.
pub struct Context {
    /// The person's time zone (their profile's, else the org's).
    pub tz: Tz,
    /// Text extracted from the log's attachments.
    pub attachment_text: Option<String>,
    /// What the log can be classified as.
    pub candidates: Candidates,
}

/// Loads the context of `log` on `conn` (the caller's transaction).
pub async fn load(conn: &mut PgConnection, log: &LogRow) -> FnResult<Context> {
    let (tz, attachment_text): (Option<String>, Option<String>) = sqlx::query_as(
        "select coalesce(p.timezone, o.timezone), \
                (select string_agg(a.extracted_text, E'\\n' order by a.created_at) \
                 from public.attachments a \
                 where a.time_log_id = $1 and a.deleted_at is null and a.extracted_text <> '') \
         from public.organizations o left join public.profiles p on p.id = $3 \
         where o.id = $2",
    )
    .bind(log.id)
    .bind(log.org_id)
    .bind(log.user_id)
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or_default();
    let tz = tz.and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);

    let projects = sqlx::query_as::<_, (Uuid, String, Option<String>, Vec<String>, bool)>(
        "select id, name, code, aliases, billable from public.projects \
         where org_id = $1 and deleted_at is null and archived_at is null",
    )
    .bind(log.org_id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(id, name, code, aliases, billable)| Project {
        id,
        name,
        code,
        aliases,
        billable,
    })
    .collect();
    let [activity_types, work_modes, task_categories] = vocabularies(conn, log.org_id).await?;
    Ok(Context {
        tz,
        attachment_text,
        candidates: Candidates {
            projects,
            activity_types,
            work_modes,
            task_categories,
            neighbours: Vec::new(),
            embedding: None,
        },
    })
}

/// The three vocabularies in one round trip: activity types, work modes, task categories.
async fn vocabularies(conn: &mut PgConnection, org: Uuid) -> FnResult<[Vec<Term>; 3]> {
    let rows = sqlx::query_as::<_, (i32, Uuid, String, String, Vec<String>, String, Vec<String>)>(
        "with terms as ( \
           select 0 as vocabulary, id, org_id, key, name, keywords, description, examples, \
                  deleted_at, archived_at from public.activity_types \
           union all select 1, id, org_id, key, name, keywords, description, examples, \
                  deleted_at, archived_at from public.work_modes \
           union all select 2, id, org_id, key, name, keywords, description, examples, \
                  deleted_at, archived_at from public.task_categories) \
         select distinct on (vocabulary, key) vocabulary, id, key, name, keywords, \
                description, examples from terms \
         where (org_id = $1 or org_id is null) and deleted_at is null and archived_at is null \
         order by vocabulary, key, org_id nulls last",
    )
    .bind(org)
    .fetch_all(conn)
    .await?;
    let mut out: [Vec<Term>; 3] = Default::default();
    for (vocabulary, id, key, name, keywords, description, examples) in rows {
        if let Some(terms) = usize::try_from(vocabulary)
            .ok()
            .and_then(|v| out.get_mut(v))
        {
            terms.push(Term {
                id,
                key,
                name,
                keywords,
                description,
                examples,
                prototypes: Vec::new(),
            });
        }
    }
    Ok(out)
}
