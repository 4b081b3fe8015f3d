//! A log's embedding in the database: stored with its model id, and compared only with
//! vectors of the same model (pgvector cosine distance).

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use tally_ai::Neighbour;
use uuid::Uuid;

use crate::{error::FnResult, time_log::LogRow};

/// How many finalized logs vote.
const NEIGHBOURS: i64 = 7;

/// pgvector's text form of a vector.
pub fn literal(vector: &[f32]) -> String {
    let mut out = String::with_capacity(vector.len() * 10 + 2);
    out.push('[');
    for (i, x) in vector.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&x.to_string());
    }
    out.push(']');
    out
}

/// The text a log is embedded from, and its hash.
pub fn content_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Project, activity type, work mode, task category, similarity, and whether it is the
/// person's own.
type NeighbourRow = (
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    f64,
    bool,
);

/// The finalized logs of `log`'s org nearest to `vector` (the caller's visible ones), most
/// similar first; the person's own count a little more.
pub async fn neighbours(
    conn: &mut PgConnection,
    log: &LogRow,
    model: &str,
    vector: &[f32],
) -> FnResult<Vec<Neighbour>> {
    let rows: Vec<NeighbourRow> = sqlx::query_as(
        "select l.project_id, l.activity_type_id, l.work_mode_id, l.task_category_id, \
                    1 - (e.embedding operator(extensions.<=>) $1::extensions.vector), \
                    l.user_id = $4 \
             from public.time_log_embeddings e join public.time_logs l on l.id = e.time_log_id \
             where e.org_id = $2 and e.model = $3 and l.status = 'finalized' \
               and l.deleted_at is null and l.id <> $5 \
             order by e.embedding operator(extensions.<=>) $1::extensions.vector \
             limit $6",
    )
    .bind(literal(vector))
    .bind(log.org_id)
    .bind(model)
    .bind(log.user_id)
    .bind(log.id)
    .bind(NEIGHBOURS)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(project, activity, mode, category, similarity, own)| Neighbour {
                similarity: (similarity as f32 + if own { 0.05 } else { 0.0 }).min(1.0),
                project_id: project,
                activity_type_id: activity,
                work_mode_id: mode,
                task_category_id: category,
            },
        )
        .collect())
}

/// Stores (or replaces) `log`'s embedding.
pub async fn store(
    conn: &mut PgConnection,
    log: &LogRow,
    model: &str,
    vector: &[f32],
    text: &str,
) -> FnResult<()> {
    sqlx::query(
        "insert into public.time_log_embeddings (org_id, user_id, time_log_id, model, embedding, \
                content_hash) \
         values ($1, $2, $3, $4, $5::extensions.vector, $6) \
         on conflict (time_log_id) do update set model = excluded.model, \
                embedding = excluded.embedding, content_hash = excluded.content_hash",
    )
    .bind(log.org_id)
    .bind(log.user_id)
    .bind(log.id)
    .bind(model)
    .bind(literal(vector))
    .bind(content_hash(text))
    .execute(conn)
    .await?;
    Ok(())
}
