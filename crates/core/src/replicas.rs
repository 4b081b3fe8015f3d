//! Reads on streaming replicas (`TALLY_DATABASE_READ_URLS`), without a stale read after one's
//! own write.
//!
//! A watcher samples the primary's WAL insert position every [`POLL`] and each replica's
//! replayed position: a replica is *fresh as of* the latest sample it has replayed past, so it
//! holds every commit that finished before that moment. A read goes to a replica that is
//! fresh as of less than the lag bound ago and, when its caller wrote recently, fresh as of
//! after that write ended; otherwise, or when no replica is reachable, to the primary. A
//! replica that cannot be reached is skipped until the watcher reaches it again.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{
    PgPool, Postgres, Transaction,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{Error, RequestContext, config::redact_url, db};

/// How often the watcher samples the primary and the replicas.
pub const POLL: Duration = Duration::from_millis(50);

/// How long a replica may take to answer before it counts as unreachable.
const REPLICA_TIMEOUT: Duration = Duration::from_secs(1);

/// The writer key of callers who are nobody in particular (anon and service keys, sign-ins
/// and webhooks): their writes send everyone's reads to the primary for a moment.
pub const EVERYONE: &str = "*";

/// Writers older than this are forgotten (every replica is past them, or skipped).
const WRITER_MEMORY: Duration = Duration::from_secs(60);

/// The primary's request pool and the replicas' pools, with what decides between them.
#[derive(Clone)]
pub struct Reads(Arc<Inner>);

struct Inner {
    primary: PgPool,
    replicas: Vec<Replica>,
    max_lag: Duration,
    next: AtomicUsize,
    /// When each recent writer's last write request ended, by [`caller_key`].
    writers: Mutex<HashMap<String, Instant>>,
}

struct Replica {
    /// Its URL, password redacted, for logs.
    name: String,
    pool: PgPool,
    /// The moment before which every commit is replayed here; `None` while unreachable.
    fresh_as_of: Mutex<Option<Instant>>,
}

impl Reads {
    /// Reads over `primary` and the replicas at `urls` (connected lazily, as
    /// `tally_authenticator` with the password `secret` gives it): a replica down at start is
    /// skipped, not fatal.
    pub fn connect(
        primary: PgPool,
        urls: &[String],
        secret: &str,
        max_connections: u32,
        max_lag: Duration,
    ) -> Result<Self, Error> {
        let password = db::authenticator_password(secret);
        let replicas = urls
            .iter()
            .map(|url| {
                let options: PgConnectOptions = url.parse().map_err(|e| {
                    Error::Config(format!(
                        "TALLY_DATABASE_READ_URLS has an invalid URL ({}): {e}",
                        redact_url(url)
                    ))
                })?;
                let options = options
                    .username(db::AUTHENTICATOR)
                    .password(&password)
                    .application_name("tally-reads");
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(REPLICA_TIMEOUT)
                    .connect_lazy_with(options);
                Ok(Replica {
                    name: redact_url(url),
                    pool,
                    fresh_as_of: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self::new(primary, replicas, max_lag))
    }

    fn new(primary: PgPool, replicas: Vec<Replica>, max_lag: Duration) -> Self {
        Self(Arc::new(Inner {
            primary,
            replicas,
            max_lag,
            next: AtomicUsize::new(0),
            writers: Mutex::new(HashMap::new()),
        }))
    }

    /// The primary's request pool (writes, and reads no replica can serve).
    pub fn primary(&self) -> &PgPool {
        &self.0.primary
    }

    /// Whether any replica is configured.
    pub fn has_replicas(&self) -> bool {
        !self.0.replicas.is_empty()
    }

    /// Notes that the caller `key` (see [`caller_key`]) has just finished a write: their
    /// reads stay on the primary until a replica has replayed past this moment.
    pub fn wrote(&self, key: &str) {
        if !self.has_replicas() {
            return;
        }
        let now = Instant::now();
        if let Ok(mut writers) = self.0.writers.lock() {
            if writers.len() >= 4096 {
                writers.retain(|_, at| now.duration_since(*at) < WRITER_MEMORY);
            }
            writers.insert(key.to_owned(), now);
        }
    }

    /// A read-only transaction as the caller, on a replica when one may serve them, else on
    /// the primary. A replica that cannot be reached is marked so, and the read goes to the
    /// primary.
    pub async fn begin_read_only(
        &self,
        ctx: &RequestContext,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        if let Some(replica) = self.pick(&caller_key(ctx)) {
            match ctx.begin_read_only(&replica.pool).await {
                Ok(tx) => {
                    metrics::counter!("tally_db_reads_total", "on" => "replica").increment(1);
                    return Ok(tx);
                }
                Err(e) if unreachable(&e) => {
                    tracing::warn!(replica = %replica.name, error = %e, "replica unreachable; reading from the primary");
                    replica.set_fresh_as_of(None);
                }
                Err(e) => return Err(e),
            }
        }
        metrics::counter!("tally_db_reads_total", "on" => "primary").increment(1);
        ctx.begin_read_only(&self.0.primary).await
    }

    /// A replica that may serve `key` now, taken in turn.
    fn pick(&self, key: &str) -> Option<&Replica> {
        let replicas = &self.0.replicas;
        if replicas.is_empty() {
            return None;
        }
        let now = Instant::now();
        let wrote = self.0.writers.lock().ok().and_then(|w| {
            let mine = w.get(key).copied();
            let anyones = w.get(EVERYONE).copied();
            mine.max(anyones)
        });
        let start = self.0.next.fetch_add(1, Ordering::Relaxed);
        (0..replicas.len())
            .map(|k| &replicas[(start + k) % replicas.len()])
            .find(|replica| {
                replica.fresh_as_of().is_some_and(|fresh| {
                    now.saturating_duration_since(fresh) <= self.0.max_lag
                        && wrote.is_none_or(|w| fresh >= w)
                })
            })
    }

    /// The watcher: samples the primary and the replicas every [`POLL`] (nothing to do
    /// without replicas).
    pub fn watcher(&self) -> crate::Task {
        let reads = self.clone();
        Box::pin(async move {
            if !reads.has_replicas() {
                return;
            }
            // The primary's insert positions, oldest first, back to a little over the bound.
            let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
            let keep = reads.0.max_lag + Duration::from_secs(1);
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let at = Instant::now();
                match position(&reads.0.primary, "pg_current_wal_insert_lsn()").await {
                    Ok(Some(lsn)) => samples.push_back((at, lsn)),
                    Ok(None) | Err(_) => continue,
                }
                while samples
                    .front()
                    .is_some_and(|(t, _)| at.duration_since(*t) > keep)
                    && samples.len() > 1
                {
                    samples.pop_front();
                }
                for replica in &reads.0.replicas {
                    replica.watch(&samples).await;
                }
            }
        })
    }
}

impl Replica {
    fn fresh_as_of(&self) -> Option<Instant> {
        self.fresh_as_of.lock().ok().and_then(|f| *f)
    }

    fn set_fresh_as_of(&self, fresh: Option<Instant>) {
        if let Ok(mut slot) = self.fresh_as_of.lock() {
            *slot = fresh;
        }
    }

    /// Reads the replayed position and sets how fresh this replica is from the samples.
    async fn watch(&self, samples: &VecDeque<(Instant, i64)>) {
        let replayed = tokio::time::timeout(
            REPLICA_TIMEOUT,
            position(&self.pool, "pg_last_wal_replay_lsn()"),
        )
        .await;
        let fresh = match replayed {
            Ok(Ok(Some(replayed))) => samples
                .iter()
                .rev()
                .find(|(_, lsn)| *lsn <= replayed)
                .map(|(t, _)| *t),
            Ok(Ok(None)) => {
                tracing::warn!(replica = %self.name, "not a standby (no replay position); skipped");
                None
            }
            Ok(Err(e)) => {
                if self.fresh_as_of().is_some() {
                    tracing::warn!(replica = %self.name, error = %e, "replica unreachable; skipped");
                }
                None
            }
            Err(_) => None,
        };
        self.set_fresh_as_of(fresh);
    }
}

/// A WAL position (`pg_current_wal_insert_lsn()` or `pg_last_wal_replay_lsn()`) in bytes.
async fn position(pool: &PgPool, function: &'static str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select ({function} - '0/0'::pg_lsn)::int8"
    )))
    .fetch_one(pool)
    .await
}

/// Whom read-your-writes follows: the token's `sub`, else [`EVERYONE`].
pub fn caller_key(ctx: &RequestContext) -> String {
    writer_key(ctx.claims().get("sub").and_then(serde_json::Value::as_str))
}

/// The writer key for a token's `sub` (see [`caller_key`]).
pub fn writer_key(sub: Option<&str>) -> String {
    sub.filter(|s| !s.is_empty()).unwrap_or(EVERYONE).to_owned()
}

/// Whether `e` says the server cannot be reached (as opposed to refusing the statement).
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}
