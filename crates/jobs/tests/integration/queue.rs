use std::{collections::HashSet, time::Duration};

use serde_json::json;
use tally_core::RequestContext;
use tally_jobs::{NewJob, Queue, enqueue};
use tally_testkit::TestDb;

fn kinds() -> Vec<String> {
    vec!["test".into()]
}

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

#[tokio::test]
async fn enqueue_joins_the_callers_transaction() {
    let db = TestDb::new().await.unwrap();
    // As a signed-in user (the role a function runs as), through the definer function.
    let user = RequestContext::from_claims(tally_core::Claims(
        json!({"role": "authenticated", "sub": uuid::Uuid::now_v7().to_string()})
            .as_object()
            .unwrap()
            .clone(),
    ))
    .unwrap();
    let mut tx = user.begin(&db.requests).await.unwrap();
    enqueue(&mut tx, &NewJob::new("test", json!({"n": 1})))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&db, "select count(*) from private.jobs").await, 0);

    let mut tx = user.begin(&db.requests).await.unwrap();
    let id = enqueue(&mut tx, &NewJob::new("test", json!({"n": 2})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(id.is_some());
    assert_eq!(count(&db, "select count(*) from private.jobs").await, 1);

    // The user cannot read or change the queue itself.
    let mut tx = user.begin(&db.requests).await.unwrap();
    let err = sqlx::query("select * from private.jobs")
        .fetch_all(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("42501")
    );
}

#[tokio::test]
async fn a_dedupe_key_keeps_one_live_job() {
    let db = TestDb::new().await.unwrap();
    let queue = Queue::new(db.requests.clone(), Duration::from_secs(60));
    let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
    let first = enqueue(&mut tx, &NewJob::new("test", json!({})).dedupe("k"))
        .await
        .unwrap();
    let second = enqueue(&mut tx, &NewJob::new("test", json!({})).dedupe("k"))
        .await
        .unwrap();
    let other = enqueue(&mut tx, &NewJob::new("test", json!({})).dedupe("other"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(first.is_some() && other.is_some());
    assert_eq!(second, None);
    // Once the job is dead, the key is free again.
    let job = queue.claim(&kinds()).await.unwrap().unwrap();
    assert_eq!(Some(job.id), first, "oldest first");
    queue.bury(&job, "boom").await.unwrap();
    let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
    let again = enqueue(&mut tx, &NewJob::new("test", json!({})).dedupe("k"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(again.is_some());
}

#[tokio::test]
async fn a_job_enqueued_while_its_twin_runs_is_kept_and_a_retry_then_yields_to_it() {
    let db = TestDb::new().await.unwrap();
    let queue = Queue::new(db.requests.clone(), Duration::from_secs(60));
    let enqueue_k = || async {
        let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
        let id = enqueue(&mut tx, &NewJob::new("test", json!({})).dedupe("k"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let first = enqueue_k().await.unwrap();
    let running = queue.claim(&kinds()).await.unwrap().unwrap();
    assert_eq!(running.id, first);
    // The change that made it due again happened after the run began: a new job waits.
    let waiting = enqueue_k().await;
    assert!(
        waiting.is_some(),
        "a running job does not swallow a new one"
    );
    assert_eq!(
        enqueue_k().await,
        None,
        "but waiting ones still deduplicate"
    );
    // The running one fails: the waiting twin does the work, so the failed one leaves.
    queue.retry(&running, "boom", Duration::ZERO).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("select id from private.jobs order by id")
        .fetch_all(&db.owner)
        .await
        .unwrap();
    assert_eq!(ids, vec![waiting.unwrap()]);
}

#[tokio::test]
async fn two_workers_never_claim_one_job() {
    let db = TestDb::new().await.unwrap();
    let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
    for n in 0..40 {
        enqueue(&mut tx, &NewJob::new("test", json!({"n": n})))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let claim_all = |queue: Queue| async move {
        let mut ids = Vec::new();
        while let Some(job) = queue.claim(&kinds()).await.unwrap() {
            ids.push(job.id);
        }
        ids
    };
    let a = Queue::new(db.requests.clone(), Duration::from_secs(60));
    let b = Queue::new(db.requests.clone(), Duration::from_secs(60));
    let (x, y) = tokio::join!(tokio::spawn(claim_all(a)), tokio::spawn(claim_all(b)));
    let (x, y) = (x.unwrap(), y.unwrap());
    let all: HashSet<i64> = x.iter().chain(&y).copied().collect();
    assert_eq!(x.len() + y.len(), 40, "every job claimed exactly once");
    assert_eq!(all.len(), 40);
}

#[tokio::test]
async fn a_crashed_workers_job_is_retried_after_its_lease() {
    let db = TestDb::new().await.unwrap();
    let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
    enqueue(&mut tx, &NewJob::new("test", json!({})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let crashed = Queue::new(db.requests.clone(), Duration::from_secs(1));
    let job = crashed.claim(&kinds()).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1);
    // The worker dies without a word; while the lease holds, nobody else takes the job.
    drop(crashed);
    let other = Queue::new(db.requests.clone(), Duration::from_secs(60));
    assert!(other.claim(&kinds()).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = other.claim(&kinds()).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (job.id, 2));
    other.complete(&again).await.unwrap();
    assert_eq!(count(&db, "select count(*) from private.jobs").await, 0);
}

/// A worker that crashed stops saying it is alive: its job is taken once it has been silent
/// for the stale interval, long before the 5-minute lease ends; a live worker keeps its job.
#[tokio::test]
async fn a_silent_workers_job_is_taken_long_before_its_lease_ends() {
    let db = TestDb::new().await.unwrap();
    for _ in 0..2 {
        let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
        enqueue(&mut tx, &NewJob::new("test", json!({})))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let lease = Duration::from_secs(300);
    let crashed = Queue::new(db.requests.clone(), lease);
    let lost = crashed.claim(&kinds()).await.unwrap().unwrap();
    let alive = Queue::new(db.requests.clone(), lease).stale_after(Duration::from_secs(1));
    let kept = alive.claim(&kinds()).await.unwrap().unwrap();
    drop(crashed);
    let other = Queue::new(db.requests.clone(), lease).stale_after(Duration::from_secs(1));
    assert!(
        other.claim(&kinds()).await.unwrap().is_none(),
        "both workers were just heard"
    );
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        alive.heartbeat().await.unwrap();
    }
    let again = other.claim(&kinds()).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (lost.id, 2));
    assert!(
        other.claim(&kinds()).await.unwrap().is_none(),
        "the live worker's job {} stays with it",
        kept.id
    );
}

#[tokio::test]
async fn retries_wait_and_keep_the_error() {
    let db = TestDb::new().await.unwrap();
    let queue = Queue::new(db.requests.clone(), Duration::from_secs(60));
    let mut tx = RequestContext::service().begin(&db.requests).await.unwrap();
    enqueue(&mut tx, &NewJob::new("test", json!({})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let job = queue.claim(&kinds()).await.unwrap().unwrap();
    queue
        .retry(&job, "timed out", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        queue.claim(&kinds()).await.unwrap().is_none(),
        "not due yet"
    );
    let (error, wait): (String, f64) = sqlx::query_as(
        "select last_error, extract(epoch from run_at - now())::float8 from private.jobs",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(error, "timed out");
    assert!((25.0..=31.0).contains(&wait), "{wait}");
}
