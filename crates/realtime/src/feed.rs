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
use uuid::Uuid;

use crate::{
    binding::Op,
    caller::Caller,
    catalog::{Columns, describe, project},
    frame::Message,
    metrics,
    registry::{Rows, Subscription},
    relay,
    state::{Fanout, RealtimeState, SESSION_REVOKED, SIGNING_KEYS_CHANGED},
};

/// The NOTIFY channel of the tables' triggers.
pub const CHANNEL: &str = "tally_changes";
/// The NOTIFY channel of `auth.sessions`' trigger: the id of each session signed out or revoked.
const SESSIONS: &str = "tally_sessions";
/// Notifications read at once before a batch is processed.
const BATCH: usize = 512;
/// Changes waiting for processing before the listener waits too.
const BACKLOG: usize = 8192;
/// Callers checked in one statement at most; more are split over several connections.
const CALLERS_PER_STATEMENT: usize = 500;
/// Callers worth a statement of their own: fewer share one.
const MIN_CALLERS_PER_STATEMENT: usize = 16;
/// Connections a batch's RLS checks spread over when there are callers enough.
const PARALLEL: usize = 4;
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

/// Tells this instance's sockets each time its signing keys change (they reload on every
/// instance), so that channels whose token's key was revoked close at once.
pub fn key_changes(state: RealtimeState) -> tally_core::Task {
    let mut changes = state.keys().changes();
    Box::pin(async move {
        while changes.changed().await.is_ok() {
            state.fan_out(Fanout::remote("", SIGNING_KEYS_CHANGED, Value::Null));
        }
    })
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
    // The registry generation whose callers' orgs are all known.
    let mut learned = 0;
    loop {
        let mut raw = Vec::new();
        // While no change waits, learn the orgs of callers not yet known, a statement at a
        // time, so that their first changes need not ask.
        let generation = state.registry().generation();
        if rx.is_empty() && generation != learned {
            let unknown = state
                .registry()
                .callers_where(|id| orgs.0.contains_key(&id), CALLERS_PER_STATEMENT);
            let ids: Vec<u64> = unknown.iter().map(|(id, _)| *id).collect();
            if let Err(e) = orgs.fill(&state, unknown).await {
                tracing::warn!(error = %e, "asking subscribers' orgs failed");
            }
            // All known, or some that asking did not teach (then until the next subscriber).
            if ids.is_empty() || ids.iter().any(|id| !orgs.0.contains_key(id)) {
                learned = generation;
            }
            continue;
        }
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
                learned = 0;
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

/// The orgs of each caller seen (by caller id), so callers outside a change's org are not
/// even asked about it. `None` for service_role (every org). Cleared whenever memberships
/// change; a caller not yet known is a candidate for every row (RLS decides) and asked after.
#[derive(Default)]
struct OrgCache(HashMap<u64, Option<HashSet<Uuid>>>);

impl OrgCache {
    async fn fill(
        &mut self,
        state: &RealtimeState,
        callers: Vec<(u64, Arc<Caller>)>,
    ) -> sqlx::Result<()> {
        let mut ask = Vec::new();
        for (id, caller) in callers {
            if self.0.contains_key(&id) {
                continue;
            }
            if caller.role == DbRole::ServiceRole {
                self.0.insert(id, None);
            } else {
                ask.push((id, caller));
            }
        }
        for chunk in ask.chunks(CALLERS_PER_STATEMENT) {
            let json = Value::Array(chunk.iter().map(|(_, c)| c.to_json()).collect());
            let rows: Vec<(i32, Vec<Uuid>)> =
                sqlx::query_as("select caller, orgs from realtime.caller_orgs($1)")
                    .bind(json)
                    .fetch_all(state.pool())
                    .await?;
            for (index, orgs) in rows {
                if let Some((id, _)) = usize::try_from(index).ok().and_then(|i| chunk.get(i)) {
                    self.0.insert(*id, Some(orgs.into_iter().collect()));
                }
            }
        }
        Ok(())
    }
}

/// The rows of a change by org, for matching callers' orgs.
struct RowOrgs {
    by_org: HashMap<Uuid, Vec<usize>>,
    /// Rows of tables without an org, or whose org could not be read.
    orgless: Vec<usize>,
    /// Each row's org.
    of_row: Vec<Option<Uuid>>,
}

impl RowOrgs {
    fn new(change: &Change) -> Self {
        let mut by_org: HashMap<Uuid, Vec<usize>> = HashMap::new();
        let mut orgless = Vec::new();
        let of_row: Vec<Option<Uuid>> = change
            .rows
            .iter()
            .map(|(row, _)| change.org(row).and_then(|o| o.parse().ok()))
            .collect();
        for (n, org) in of_row.iter().enumerate() {
            match org {
                Some(org) => by_org.entry(*org).or_default().push(n),
                None => orgless.push(n),
            }
        }
        Self {
            by_org,
            orgless,
            of_row,
        }
    }

    /// The rows a caller in `orgs` may be told of (`None`: any org).
    fn visible_to(&self, orgs: Option<&HashSet<Uuid>>, mut each: impl FnMut(usize)) {
        let Some(orgs) = orgs else {
            return (0..self.of_row.len()).for_each(each);
        };
        // Whichever side is smaller: a caller is usually in one org, a batch in many.
        if orgs.len() < self.by_org.len() {
            for org in orgs {
                if let Some(rows) = self.by_org.get(org) {
                    rows.iter().copied().for_each(&mut each);
                }
            }
        } else {
            for (org, rows) in &self.by_org {
                if orgs.contains(org) {
                    rows.iter().copied().for_each(&mut each);
                }
            }
        }
        self.orgless.iter().copied().for_each(each);
    }
}

async fn deliver(state: &RealtimeState, orgs: &mut OrgCache, change: &Change) -> sqlx::Result<()> {
    if !state.registry().listens(&change.table, change.op) {
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
    let mut records: Vec<Option<Map<String, Value>>> = vec![None; change.rows.len()];
    if deleted {
        for (n, (row, _)) in change.rows.iter().enumerate() {
            records[n] = row.as_object().cloned();
        }
    } else {
        for (_, n, record) in authorize(state, &table, false, &changes, &[], true).await? {
            if let (Some(slot), Some(Value::Object(record))) = (records.get_mut(n), record) {
                *slot = Some(record);
            }
        }
    }
    let mut columns_of: HashMap<&'static str, Columns> = HashMap::new();
    for role in [DbRole::Anon, DbRole::Authenticated, DbRole::ServiceRole] {
        columns_of.insert(
            role.as_str(),
            state.catalog().columns(&change.table, role).await?,
        );
    }
    let row_orgs = RowOrgs::new(change);
    // What each candidate subscription would hear if RLS allows — its bindings' filters apply
    // first, on the columns its role may read — so only callers with something to hear are
    // asked. The registry's index narrows `column=eq.value` bindings to their rows; callers
    // outside a row's org are skipped.
    let mut projected: HashMap<(&'static str, usize), Map<String, Value>> = HashMap::new();
    let mut wanted: Vec<(Arc<Subscription>, usize, Vec<u32>)> = Vec::new();
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let mut unknown: HashMap<u64, Arc<Caller>> = HashMap::new();
    let record_refs: Vec<Option<&Map<String, Value>>> =
        records.iter().map(Option::as_ref).collect();
    state
        .registry()
        .candidates(&change.table, change.op, &record_refs, |s, rows| {
            let known = orgs.0.get(&s.caller_id);
            if known.is_none() {
                unknown
                    .entry(s.caller_id)
                    .or_insert_with(|| s.caller.clone());
            }
            let caller_orgs = known.and_then(Option::as_ref);
            let any_org = known.is_none() || caller_orgs.is_none();
            let mut consider = |n: usize| {
                if !seen.insert((Arc::as_ptr(s) as usize, n)) {
                    return;
                }
                let Some(full) = records[n].as_ref() else {
                    return;
                };
                let role = s.caller.role.as_str();
                let record = projected
                    .entry((role, n))
                    .or_insert_with(|| project(full, &columns_of[role]));
                let ids: Vec<u32> = s
                    .bindings
                    .iter()
                    .filter(|b| b.listens_to(&change.table, change.op) && b.accepts(record))
                    .map(|b| b.id)
                    .collect();
                if !ids.is_empty() {
                    wanted.push((s.clone(), n, ids));
                }
            };
            match rows {
                Rows::One(n) => {
                    let visible = any_org
                        || row_orgs.of_row[n]
                            .is_none_or(|org| caller_orgs.is_some_and(|o| o.contains(&org)));
                    if visible {
                        consider(n);
                    }
                }
                Rows::All if any_org => row_orgs.visible_to(None, consider),
                Rows::All => row_orgs.visible_to(caller_orgs, consider),
            }
        });
    let unknown: Vec<(u64, Arc<Caller>)> = unknown.into_iter().collect();
    if wanted.is_empty() {
        return orgs.fill(state, unknown).await;
    }
    // Each subscriber hears a batch's rows in the order they changed.
    wanted.sort_by_key(|(_, n, _)| *n);
    // RLS: the callers with something to hear, in one statement per few hundred of them,
    // side by side on several connections.
    let mut callers: Vec<Arc<Caller>> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    for (s, _, _) in &wanted {
        index.entry(s.caller_id).or_insert_with(|| {
            callers.push(s.caller.clone());
            callers.len() - 1
        });
    }
    // Side by side on up to PARALLEL connections once there are enough callers to share.
    let per_statement = callers
        .len()
        .div_ceil(PARALLEL)
        .clamp(MIN_CALLERS_PER_STATEMENT, CALLERS_PER_STATEMENT);
    let parts = callers.chunks(per_statement).enumerate().map(|(c, chunk)| {
        let asked: Vec<&Arc<Caller>> = chunk.iter().collect();
        let (table, changes) = (&table, &changes);
        async move {
            let answers = authorize(state, table, deleted, changes, &asked, false).await?;
            Ok::<_, sqlx::Error>(
                answers
                    .filter_map(|(caller, n, _)| caller.map(|i| (c * per_statement + i, n)))
                    .collect::<Vec<_>>(),
            )
        }
    });
    let visible: HashSet<(usize, usize)> = futures_util::future::try_join_all(parts)
        .await?
        .into_iter()
        .flatten()
        .collect();
    for (s, n, ids) in wanted {
        if !visible.contains(&(index[&s.caller_id], n)) {
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
        // Never waits: a client that does not keep up is dropped, never the others delayed.
        if s.outbox.send(&message).is_ok()
            && let Ok(at) = DateTime::parse_from_rfc3339(at)
        {
            let latency = Utc::now().signed_duration_since(at);
            metrics::change_latency(latency.to_std().unwrap_or_default());
        }
    }
    // Callers heard of for the first time: their orgs, for the next changes (after the sends,
    // so that this batch does not wait for them).
    orgs.fill(state, unknown).await
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
