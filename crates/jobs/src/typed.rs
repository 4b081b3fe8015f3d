//! Typed jobs, in the manner of crates.io's background jobs: a payload type names its kind
//! ([`Payload::KIND`], as SQL triggers and schedules spell it) and is what Rust enqueues
//! ([`NewJob::of`]); a [`JobHandler`] runs the jobs of one payload type, which the worker reads
//! from the queued JSON before calling it.

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    handler::{BoxFuture, Handler, JobError},
    queue::{Job, NewJob},
};

/// What a job of one kind carries.
pub trait Payload: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind it is queued as.
    const KIND: &'static str;
}

/// Runs the jobs of one payload type.
pub trait JobHandler: Send + Sync + 'static {
    /// The jobs it runs.
    type Payload: Payload;

    /// Runs one attempt with the job's payload.
    fn run<'a>(
        &'a self,
        payload: Self::Payload,
        job: &'a Job,
    ) -> BoxFuture<'a, Result<(), JobError>>;

    /// Called once when the job is dead (its last attempt failed, or a fatal error).
    fn dead<'a>(&'a self, _job: &'a Job, _error: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

impl NewJob {
    /// A job carrying `payload`, of its kind.
    pub fn of<P: Payload>(payload: &P) -> Result<Self, sqlx::Error> {
        let value = serde_json::to_value(payload).map_err(|e| sqlx::Error::Encode(e.into()))?;
        Ok(Self::new(P::KIND, value))
    }
}

impl Job {
    /// The payload read as `P`; a payload that is not one is fatal (no attempt will read it).
    pub fn payload_as<P: Payload>(&self) -> Result<P, JobError> {
        serde_json::from_value(self.payload.clone())
            .map_err(|e| JobError::Fatal(format!("the {} payload is not valid: {e}", P::KIND)))
    }
}

/// A [`JobHandler`] as the worker's untyped [`Handler`].
pub(crate) struct Typed<H>(pub(crate) H);

impl<H: JobHandler> Handler for Typed<H> {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        match job.payload_as::<H::Payload>() {
            Ok(payload) => self.0.run(payload, job),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn dead<'a>(&'a self, job: &'a Job, error: &'a str) -> BoxFuture<'a, ()> {
        self.0.dead(job, error)
    }
}
