use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;
use tally_core::RequestContext;
use tally_jobs::{BoxFuture, Handler, Job, JobError, NewJob, WorkerOptions, Workers, enqueue};
use tally_testkit::TestDb;
use tokio::sync::{mpsc, watch};

/// Records what happened to the jobs it ran.
#[derive(Clone, Default)]
struct Probe {
    runs: Arc<Mutex<Vec<(i64, i32)>>>,
    dead: Arc<Mutex<Vec<(i64, String)>>>,
}

/// A handler that fails as its payload says: `{"fail": "retry"|"fatal"}`, or sleeps.
struct Scripted {
    probe: Probe,
    started: Option<mpsc::UnboundedSender<i64>>,
}

impl Handler for Scripted {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            self.probe.runs.lock().unwrap().push((job.id, job.attempts));
            if let Some(tx) = &self.started {
                let _ = tx.send(job.id);
            }
            if let Some(ms) = job.payload["sleep_ms"].as_u64() {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match job.payload["fail"].as_str() {
                Some("retry") => Err(JobError::Retry("upstream 503".into())),
                Some("fatal") => Err(JobError::Fatal("bad payload".into())),
                _ => Ok(()),
            }
        })
    }

    fn dead<'a>(&'a self, job: &'a Job, error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.probe
                .dead
                .lock()
                .unwrap()
                .push((job.id, error.to_owned()));
        })
    }
}

fn workers(db: &TestDb, probe: &Probe, started: Option<mpsc::UnboundedSender<i64>>) -> Workers {
    Workers::new(
        db.requests.clone(),
        WorkerOptions {
            concurrency: 2,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(30),
            grace: Duration::from_millis(300),
            ..WorkerOptions::default()
        },
    )
    .register(
        "test",
        Scripted {
            probe: probe.clone(),
            started,
        },
    )
}

async fn push(db: &TestDb, job: NewJob) -> i64 {
    let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
    let id = enqueue(&mut tx, &job).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    id
}

/// Makes every job due now (instead of waiting out the backoff).
async fn make_due(db: &TestDb) {
    sqlx::query("update private.jobs set run_at = now()")
        .execute(&db.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn failing_jobs_retry_then_die_with_their_last_error() {
    let db = TestDb::new().await.unwrap();
    let probe = Probe::default();
    let w = workers(&db, &probe, None);
    let id = push(
        &db,
        NewJob::new("test", json!({"fail": "retry"})).max_attempts(3),
    )
    .await;
    for _ in 0..3 {
        assert!(w.run_one().await.unwrap());
        make_due(&db).await;
    }
    assert!(!w.run_one().await.unwrap(), "a dead job is never claimed");
    assert_eq!(*probe.runs.lock().unwrap(), [(id, 1), (id, 2), (id, 3)]);
    assert_eq!(
        *probe.dead.lock().unwrap(),
        [(id, "upstream 503".to_owned())]
    );
    let (dead, error, attempts): (bool, String, i32) =
        sqlx::query_as("select dead, last_error, attempts from private.jobs where id = $1")
            .bind(id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!((dead, error.as_str(), attempts), (true, "upstream 503", 3));

    // A fatal error needs no more attempts.
    let id = push(&db, NewJob::new("test", json!({"fail": "fatal"}))).await;
    assert!(w.run_one().await.unwrap());
    assert_eq!(probe.dead.lock().unwrap().last().unwrap().0, id);

    // Success removes the job.
    push(&db, NewJob::new("test", json!({}))).await;
    assert!(w.run_one().await.unwrap());
    let live: i64 = sqlx::query_scalar("select count(*) from private.jobs where not dead")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(live, 0);
}

#[tokio::test]
async fn an_idle_worker_wakes_on_enqueue_and_stops_on_shutdown() {
    let db = TestDb::new().await.unwrap();
    let probe = Probe::default();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(workers(&db, &probe, Some(started_tx)).run(shutdown));
    // Let it go idle (the poll interval is 30 s, so only a notification can wake it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = push(&db, NewJob::new("test", json!({}))).await;
    let ran = tokio::time::timeout(Duration::from_secs(5), started.recv())
        .await
        .expect("woken by the notification");
    assert_eq!(ran, Some(id));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops promptly")
        .unwrap();
}

#[tokio::test]
async fn shutdown_releases_jobs_that_outlive_the_grace_period() {
    let db = TestDb::new().await.unwrap();
    let probe = Probe::default();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(false);
    let id = push(&db, NewJob::new("test", json!({"sleep_ms": 60_000}))).await;
    let running = tokio::spawn(workers(&db, &probe, Some(started_tx)).run(shutdown));
    assert_eq!(started.recv().await, Some(id));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("grace is 300 ms")
        .unwrap();
    let (locked, attempts): (bool, i32) =
        sqlx::query_as("select locked_until is not null, attempts from private.jobs where id = $1")
            .bind(id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(
        (locked, attempts),
        (false, 0),
        "released for the next worker"
    );
}
