//! The job queue, in Postgres only.
//!
//! - [`queue`]: [`enqueue`] inside the caller's transaction (an outbox), and the worker side:
//!   claim with `FOR UPDATE SKIP LOCKED` and a lease, complete, retry with backoff, bury, release.
//! - [`worker`]: [`Workers`] run registered [`Handler`]s, woken by `LISTEN tally_jobs`; a
//!   handler's attempt fails with a [`JobError`].
//! - [`schedule`]: cron schedules with time zones, fired once across instances.
//! - [`typed`]: typed jobs: a [`Payload`] names its kind and is what Rust enqueues
//!   ([`NewJob::of`]); a [`JobHandler`] runs the jobs of one payload type.

mod handler;
pub mod queue;
pub mod schedule;
pub mod typed;
pub mod worker;

pub use handler::{BoxFuture, Handler, JobError};
pub use queue::{Job, NewJob, Queue, enqueue};
pub use typed::{JobHandler, Payload};
pub use worker::{WorkerOptions, Workers};
