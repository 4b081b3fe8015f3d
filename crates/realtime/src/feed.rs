//! The change feed: every instance LISTENs on `tally_changes` (fed by the tables' triggers),
//! and for each run of changes of one table and operation asks the database, in one statement
//! for all the distinct callers subscribed, which of them may read which rows (RLS), reads
//! each row once, and sends each subscriber what its bindings and columns allow.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sqlx::postgres::PgListener;
use tally_core::{DbRole, RequestContext};
use tokio::sync::mpsc;

use crate::{
    binding::Op,
    caller::Caller,
    catalog::{Columns, describe, project},
    frame::Message,
    metrics, relay,
    state::{Fanout, RealtimeState, SESSION_REVOKED},
};

/// The NOTIFY channel of the tables' triggers.
pub const CHANNEL: &str = "tally_changes";
/// The NOTIFY channel of `auth.sessions`' trigger: the id of each session signed out or revoked.
const SESSIONS: &str = "tally_sessions";
/// Notifications read at once before a batch is processed.
const BATCH: usize = 512;
/// Changes waiting for processing before the listener waits too.
const BACKLOG: usize = 8192;
/// Callers checked in one statement; more are split over several connections.
const CALLERS_PER_STATEMENT: usize = 500;
/// How long spilled messages are kept for every instance to read.
const SPILL_KEPT: &str = "10 minutes";

/// The feed's two tasks: one listens, one processes what it heard.
pub fn tasks(state: RealtimeState) -> [tally_core::Task; 2] {
    let (tx, rx) = mpsc::channel(BACKLOG);
    [
        Box::pin(listen(state.clone(), tx)),
        Box::pin(process(state, rx)),
    ]
}

async fn listen(state: RealtimeState, changes: mpsc::Sender<String>) {
    loop {
        if let Err(e) = listen_once(&state, &changes).await {
            tracing::warn!(error = %e, "realtime lost its LISTEN connection; reconnecting");
        }
        if changes.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(
    state: &RealtimeState,
    changes: &mpsc::Sender<String>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(state.pool()).await?;
    listener
        .listen_all([CHANNEL, relay::CHANNEL, SESSIONS])
        .await?;
    state.mark_listening();
    loop {
        let notification = listener.recv().await?;
        if notification.channel() == relay::CHANNEL {
            relay::receive(state, notification.payload());
        } else if notification.channel() == SESSIONS {
            state.fan_out(Fanout::remote(
                "",
                SESSION_REVOKED,
                Value::from(notification.payload()),
            ));
        } else if changes
            .send(notification.payload().to_owned())
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

/// One run of changes of a table by an operation.
struct Change {
    table: String,
    op: Op,
    /// For inserts and updates `[id, org]`; for deletes the old row. With its change time.
    rows: Vec<(Value, String)>,
}

impl Change {
    fn id(&self, row: &Value) -> Value {
        match self.op {
            Op::Delete => row["id"].clone(),
            _ => row[0].clone(),
        }
    }

    fn org(&self, row: &Value) -> Option<String> {
        let org = match self.op {
            Op::Delete if self.table == "organizations" => &row["id"],
            Op::Delete => &row["org_id"],
            _ => &row[1],
        };
        org.as_str().map(str::to_owned)
    }
}

async fn process(state: RealtimeState, mut rx: mpsc::Receiver<String>) {
    let mut orgs = OrgCache::default();
    let mut purge = tokio::time::interval(Duration::from_secs(60));
    loop {
        let mut raw = Vec::new();
        tokio::select! {
            got = rx.recv_many(&mut raw, BATCH) => if got == 0 { return },
            _ = purge.tick() => {
                if let Err(e) = purge_spill(&state).await {
                    tracing::warn!(error = %e, "purging realtime.spill failed");
                }
                continue;
            }
        }
        let mut changes: Vec<Change> = Vec::new();
        for text in raw {
            match parse(&state, &text).await {
                Ok(Some(change)) => match changes.last_mut() {
                    Some(last) if last.table == change.table && last.op == change.op => {
                        last.rows.extend(change.rows);
                    }
                    _ => changes.push(change),
                },
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a change notification was lost"),
            }
        }
        for change in changes {
            if change.table == "memberships" {
                // Who belongs where may have changed: ask again.
                orgs.0.clear();
            }
            if let Err(e) = deliver(&state, &mut orgs, &change).await {
                tracing::warn!(error = %e, table = %change.table, "delivering changes failed");
            }
        }
    }
}

async fn parse(state: &RealtimeState, text: &str) -> Result<Option<Change>, sqlx::Error> {
    let mut message: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if let Some(spill) = message["spill"].as_i64() {
        let mut tx = RequestContext::service().begin(state.pool()).await?;
        let payload: Option<String> =
            sqlx::query_scalar("select payload from realtime.spill where id = $1")
                .bind(spill)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        message = payload
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or(Value::Null);
    }
    let (Some(table), Some(op), Some(at), Some(rows)) = (
        message["t"].as_str(),
        message["o"].as_str().and_then(Op::parse),
        message["ts"].as_str(),
        message["r"].as_array(),
    ) else {
        return Ok(None);
    };
    Ok(Some(Change {
        table: table.to_owned(),
        op,
        rows: rows.iter().map(|r| (r.clone(), at.to_owned())).collect(),
    }))
}

async fn purge_spill(state: &RealtimeState) -> Result<(), sqlx::Error> {
    let mut tx = RequestContext::service().begin(state.pool()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "delete from realtime.spill where created_at < now() - interval '{SPILL_KEPT}'"
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The orgs of each caller seen, so callers outside a change's org are not even asked about
/// it. `None` for service_role (every org). Cleared whenever memberships change.
#[derive(Default)]
struct OrgCache(HashMap<String, Option<Arc<HashSet<String>>>>);

impl OrgCache {
    async fn fill(&mut self, state: &RealtimeState, callers: &[Arc<Caller>]) -> sqlx::Result<()> {
        let missing: Vec<&Arc<Caller>> = callers
            .iter()
            .filter(|c| !self.0.contains_key(&c.key))
            .collect();
        for caller in &missing {
            if caller.role == DbRole::ServiceRole {
                self.0.insert(caller.key.clone(), None);
            }
        }
        let ask: Vec<&&Arc<Caller>> = missing
            .iter()
            .filter(|c| c.role != DbRole::ServiceRole)
            .collect();
        if ask.is_empty() {
            return Ok(());
        }
        let json = Value::Array(ask.iter().map(|c| c.to_json()).collect());
        let rows: Vec<(i32, Vec<uuid::Uuid>)> =
            sqlx::query_as("select caller, orgs from realtime.caller_orgs($1)")
                .bind(json)
                .fetch_all(state.pool())
                .await?;
        for (index, orgs) in rows {
            if let Some(caller) = usize::try_from(index).ok().and_then(|i| ask.get(i)) {
                let set = orgs.iter().map(ToString::to_string).collect();
                self.0.insert(caller.key.clone(), Some(Arc::new(set)));
            }
        }
        Ok(())
    }

    fn may_see(&self, caller: &Caller, org: Option<&str>) -> bool {
        match (self.0.get(&caller.key), org) {
            (Some(None), _) | (_, None) => true,
            (Some(Some(orgs)), Some(org)) => orgs.contains(org),
            (None, Some(_)) => true,
        }
    }
}

async fn deliver(state: &RealtimeState, orgs: &mut OrgCache, change: &Change) -> sqlx::Result<()> {
    let subscriptions = state.registry().listening(&change.table, change.op);
    if subscriptions.is_empty() {
        return Ok(());
    }
    let table = format!("public.\"{}\"", change.table.replace('"', "\"\""));
    let deleted = change.op == Op::Delete;
    let changes = Value::Array(
        change
            .rows
            .iter()
            .map(|(row, _)| if deleted { row.clone() } else { change.id(row) })
            .collect(),
    );
    // The rows, read once: the old images of deletes, the current rows otherwise.
    let records: HashMap<usize, Map<String, Value>> = if deleted {
        change
            .rows
            .iter()
            .enumerate()
            .filter_map(|(n, (row, _))| row.as_object().map(|r| (n, r.clone())))
            .collect()
    } else {
        authorize(state, &table, false, &changes, &[], true)
            .await?
            .filter_map(|(_, n, record)| match record {
                Some(Value::Object(record)) => Some((n, record)),
                _ => None,
            })
            .collect()
    };
    let mut callers: Vec<Arc<Caller>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for s in &subscriptions {
        index.entry(s.caller.key.as_str()).or_insert_with(|| {
            callers.push(s.caller.clone());
            callers.len() - 1
        });
    }
    orgs.fill(state, &callers).await?;
    // What each subscription would hear if RLS allows — its bindings' filters apply first, on
    // the columns its role may read — so only callers with something to hear are asked.
    let mut projected: HashMap<(&'static str, usize), Map<String, Value>> = HashMap::new();
    let mut columns_of: HashMap<&'static str, Columns> = HashMap::new();
    let mut wanted: Vec<(usize, usize, Vec<u32>)> = Vec::new();
    let row_orgs: Vec<Option<String>> = change.rows.iter().map(|(r, _)| change.org(r)).collect();
    let mut asked: Vec<bool> = vec![false; callers.len()];
    for (si, s) in subscriptions.iter().enumerate() {
        let role = s.caller.role.as_str();
        let columns = match columns_of.get(role) {
            Some(columns) => columns.clone(),
            None => {
                let columns = state
                    .catalog()
                    .columns(&change.table, s.caller.role)
                    .await?;
                columns_of.insert(role, columns.clone());
                columns
            }
        };
        for (n, org) in row_orgs.iter().enumerate() {
            if !orgs.may_see(&s.caller, org.as_deref()) {
                continue;
            }
            let Some(full) = records.get(&n) else {
                continue;
            };
            let record = projected
                .entry((role, n))
                .or_insert_with(|| project(full, &columns));
            let ids: Vec<u32> = s
                .bindings
                .iter()
                .filter(|b| b.listens_to(&change.table, change.op) && b.accepts(record))
                .map(|b| b.id)
                .collect();
            if !ids.is_empty() {
                asked[index[s.caller.key.as_str()]] = true;
                wanted.push((si, n, ids));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    // RLS: the callers with something to hear, in one statement per few hundred of them,
    // side by side on several connections.
    let relevant: Vec<usize> = (0..callers.len()).filter(|&i| asked[i]).collect();
    let parts = relevant.chunks(CALLERS_PER_STATEMENT).map(|chunk| {
        let asked: Vec<&Arc<Caller>> = chunk.iter().map(|&i| &callers[i]).collect();
        let (table, changes) = (&table, &changes);
        async move {
            let answers = authorize(state, table, deleted, changes, &asked, false).await?;
            Ok::<_, sqlx::Error>(
                answers
                    .filter_map(|(caller, n, _)| caller.and_then(|c| chunk.get(c)).map(|&c| (c, n)))
                    .collect::<Vec<_>>(),
            )
        }
    });
    let visible: HashSet<(usize, usize)> = futures_util::future::try_join_all(parts)
        .await?
        .into_iter()
        .flatten()
        .collect();
    for (si, n, ids) in wanted {
        let s = &subscriptions[si];
        if !visible.contains(&(index[s.caller.key.as_str()], n)) {
            continue;
        }
        let (row, at) = &change.rows[n];
        let role = s.caller.role.as_str();
        let mut data = json!({
            "schema": "public", "table": change.table, "commit_timestamp": at,
            "type": change.op.as_str(), "columns": describe(&columns_of[role]), "errors": null,
        });
        if change.op != Op::Delete {
            data["record"] = Value::Object(projected[&(role, n)].clone());
        }
        if change.op != Op::Insert {
            data["old_record"] = json!({ "id": change.id(row) });
        }
        let message = Message::push(
            &s.topic,
            "postgres_changes",
            None,
            json!({ "ids": ids, "data": data }),
        );
        if s.outbox.send_patiently(&message).await.is_ok()
            && let Ok(at) = DateTime::parse_from_rfc3339(at)
        {
            let latency = Utc::now().signed_duration_since(at);
            metrics::change_latency(latency.to_std().unwrap_or_default());
        }
    }
    Ok(())
}

/// `realtime.authorize`: `(caller index, change index, row)` — the callers' visible changes,
/// and with `with_rows` each changed row once (caller `None`).
async fn authorize(
    state: &RealtimeState,
    table: &str,
    deleted: bool,
    changes: &Value,
    callers: &[&Arc<Caller>],
    with_rows: bool,
) -> sqlx::Result<impl Iterator<Item = (Option<usize>, usize, Option<Value>)> + use<>> {
    let asked = Value::Array(callers.iter().map(|c| c.to_json()).collect());
    let rows: Vec<(Option<i32>, i32, Option<Value>)> = sqlx::query_as(
        "select caller, change, record from realtime.authorize($1::regclass, $2, $3, $4, $5)",
    )
    .bind(table)
    .bind(deleted)
    .bind(changes)
    .bind(asked)
    .bind(with_rows)
    .fetch_all(state.pool())
    .await?;
    Ok(rows.into_iter().filter_map(|(caller, n, record)| {
        let n = usize::try_from(n).ok()?;
        Some((caller.and_then(|c| usize::try_from(c).ok()), n, record))
    }))
}
