//! What a job kind's handler is to the workers: one attempt at a time, told when the job is
//! dead; and why an attempt failed.

use std::{future::Future, pin::Pin};

use crate::queue::Job;

/// Why a job's attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (a time-out, a 5xx, a lost connection).
    #[error("{0}")]
    Retry(String),
    /// Never going to work (bad payload): the job is dead at once.
    #[error("{0}")]
    Fatal(String),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Retry(format!("database: {e}"))
    }
}

/// A boxed future a handler returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs jobs of one kind.
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt.
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>>;

    /// Called once when the job is dead (its last attempt failed, or a fatal error).
    fn dead<'a>(&'a self, _job: &'a Job, _error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
