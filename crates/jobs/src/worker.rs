//! Workers: claim due jobs, run their handlers outside any transaction, and complete, retry or
//! bury them (counted in `tally_jobs_finished_total` and timed in `tally_job_duration_seconds`
//! by kind). Idle workers sleep until a `tally_jobs` notification, a poll tick or shutdown;
//! on shutdown they stop claiming, let running jobs finish for a grace period, then release
//! what is left so another worker takes it at once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use sqlx::postgres::PgListener;
use tokio::{sync::watch, task::JoinSet};

use crate::{
    handler::{Handler, JobError},
    queue::{Job, Queue, backoff},
    schedule,
    typed::{JobHandler, Payload, Typed},
};

/// How workers run.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claim lasts before another worker may take the job.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs (retries and schedules come due without a
    /// notification).
    pub poll: Duration,
    /// How long shutdown waits for running jobs.
    pub grace: Duration,
    /// How long a worker may go unheard (it says it is alive every `poll`) before its jobs
    /// are taken from it.
    pub stale_after: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 2,
            lease: Duration::from_secs(300),
            poll: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            stale_after: crate::queue::STALE_AFTER,
        }
    }
}

/// Handlers by job kind, and the loop that runs them.
#[derive(Clone)]
pub struct Workers {
    queue: Queue,
    handlers: Arc<HashMap<String, Arc<dyn Handler>>>,
    /// Typed registrations: kind and payload type.
    payloads: Arc<Vec<(String, &'static str)>>,
    options: WorkerOptions,
}

impl Workers {
    /// Workers over `pool` (the request pool).
    pub fn new(pool: sqlx::PgPool, options: WorkerOptions) -> Self {
        Self {
            queue: Queue::new(pool, options.lease).stale_after(options.stale_after),
            handlers: Arc::default(),
            payloads: Arc::default(),
            options,
        }
    }

    /// Registers the handler of `kind`.
    pub fn register(mut self, kind: &str, handler: impl Handler) -> Self {
        Arc::make_mut(&mut self.handlers).insert(kind.to_owned(), Arc::new(handler));
        self
    }

    /// Registers a typed handler, for its payload's kind.
    pub fn job<H: JobHandler>(mut self, handler: H) -> Self {
        let kind = <H::Payload as Payload>::KIND;
        Arc::make_mut(&mut self.payloads)
            .push((kind.to_owned(), std::any::type_name::<H::Payload>()));
        self.register(kind, Typed(handler))
    }

    /// The typed registrations: each kind with its payload's type name, sorted by kind.
    pub fn registered(&self) -> Vec<(String, &'static str)> {
        let mut all = self.payloads.as_ref().clone();
        all.sort();
        all
    }

    /// The queue these workers claim from.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    fn kinds(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    /// Claims and runs one due job, if any; returns whether one ran. (For tests and tools:
    /// [`Workers::run`] is the loop.)
    pub async fn run_one(&self) -> Result<bool, sqlx::Error> {
        match self.queue.claim(&self.kinds()).await? {
            Some(job) => {
                self.execute(job).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Runs `job`'s handler and records the outcome.
    async fn execute(&self, job: Job) {
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            let _ = self.queue.bury(&job, "no handler for this kind").await;
            return;
        };
        let span =
            tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempts);
        let _enter = span.enter();
        let started = std::time::Instant::now();
        let outcome = handler.run(&job).await;
        metrics::histogram!("tally_job_duration_seconds", "kind" => job.kind.clone())
            .record(started.elapsed().as_secs_f64());
        let (recorded, finished) = match outcome {
            Ok(()) => (self.queue.complete(&job).await, "done"),
            Err(JobError::Retry(e)) if !job.is_last_attempt() => {
                tracing::warn!(error = %e, "job failed; retrying");
                (
                    self.queue.retry(&job, &e, backoff(job.attempts)).await,
                    "retried",
                )
            }
            Err(e) => {
                let error = e.to_string();
                tracing::error!(error = %error, "job is dead");
                handler.dead(&job, &error).await;
                (self.queue.bury(&job, &error).await, "dead")
            }
        };
        metrics::counter!("tally_jobs_finished_total", "kind" => job.kind.clone(), "outcome" => finished)
            .increment(1);
        if let Err(e) = recorded {
            // The lease runs out and the job is tried again: never lost.
            tracing::error!(error = %e, "could not record a job's outcome");
        }
    }

    /// Runs until `shutdown` turns true: claims due jobs up to the concurrency, runs due
    /// schedules, sleeps when idle.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut listener = match PgListener::connect_with(self.queue.pool()).await {
            Ok(mut l) => match l.listen("tally_jobs").await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "workers poll without notifications");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "workers poll without notifications");
                None
            }
        };
        let kinds = self.kinds();
        let mut running: JoinSet<()> = JoinSet::new();
        let mut claimed: HashMap<tokio::task::Id, Job> = HashMap::new();
        let mut last_tick: Option<tokio::time::Instant> = None;
        let mut last_beat = tokio::time::Instant::now();
        // Often enough that a busy worker is never taken for a silent one.
        let beat_every = (self.options.stale_after / 3).min(self.options.poll);
        while !*shutdown.borrow() {
            if last_beat.elapsed() >= beat_every {
                last_beat = tokio::time::Instant::now();
                if let Err(e) = self.queue.heartbeat().await {
                    tracing::warn!(error = %e, "could not say the worker is alive");
                }
            }
            if last_tick.is_none_or(|t| t.elapsed() >= self.options.poll) {
                last_tick = Some(tokio::time::Instant::now());
                if let Err(e) = schedule::tick(self.queue.pool()).await {
                    tracing::warn!(error = %e, "could not run the schedules");
                }
            }
            // Fill the free slots.
            let mut idle = true;
            while running.len() < self.options.concurrency {
                match self.queue.claim(&kinds).await {
                    Ok(Some(job)) => {
                        idle = false;
                        let workers = self.clone();
                        let handle = running.spawn({
                            let job = job.clone();
                            async move { workers.execute(job).await }
                        });
                        claimed.insert(handle.id(), job);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim a job");
                        break;
                    }
                }
            }
            if !idle && running.len() < self.options.concurrency {
                continue;
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => {
                        if l.recv().await.is_err() {
                            tokio::time::sleep(self.options.poll).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => e.id(),
                    };
                    claimed.remove(&id);
                }
                () = notified => {}
                () = tokio::time::sleep(beat_every) => {}
            }
        }
        self.drain(running, claimed).await;
    }

    /// Waits up to the grace period for running jobs, then aborts and releases the rest.
    async fn drain(&self, mut running: JoinSet<()>, mut claimed: HashMap<tokio::task::Id, Job>) {
        let deadline = tokio::time::Instant::now() + self.options.grace;
        while !running.is_empty() {
            match tokio::time::timeout_at(deadline, running.join_next_with_id()).await {
                Ok(Some(Ok((id, ())))) => {
                    claimed.remove(&id);
                }
                Ok(Some(Err(e))) => {
                    claimed.remove(&e.id());
                }
                Ok(None) => break,
                Err(_) => {
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                    break;
                }
            }
        }
        for job in claimed.values() {
            if let Err(e) = self.queue.release(job).await {
                tracing::warn!(error = %e, job = job.id, "could not release a job");
            }
        }
        if let Err(e) = self.queue.retire().await {
            tracing::warn!(error = %e, "could not retire the worker");
        }
    }
}
