//! The queue against a real database: transactional enqueue, dedupe, SKIP LOCKED claims,
//! leases, retries, dead jobs, shutdown, schedules.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod queue;
mod schedules;
mod workers;
