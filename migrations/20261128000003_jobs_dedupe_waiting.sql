-- Deduplicate waiting jobs only. A job being run no longer blocks a new one with the same key:
-- a change made while a job runs (a log set back to pending while it is being classified) must
-- be picked up by a run that starts after it, not folded into the run already under way.
drop index private.jobs_dedupe_key;
create unique index jobs_dedupe_key on private.jobs (kind, dedupe_key)
    where dedupe_key is not null and not dead and locked_until is null;

-- (private.enqueue_job: its definition lives in migrations/replaceable/jobs.sql.)
