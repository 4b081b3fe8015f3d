-- Deduplicate waiting jobs only. A job being run no longer blocks a new one with the same key:
-- a change made while a job runs (a log set back to pending while it is being classified) must
-- be picked up by a run that starts after it, not folded into the run already under way.
drop index private.jobs_dedupe_key;
create unique index jobs_dedupe_key on private.jobs (kind, dedupe_key)
    where dedupe_key is not null and not dead and locked_until is null;

create or replace function private.enqueue_job(
    kind text, payload jsonb default '{}'::jsonb, org_id uuid default null,
    dedupe_key text default null, run_at timestamptz default null,
    max_attempts integer default 5, priority smallint default 0)
returns bigint
  language sql security definer set search_path = ''
as $$
  insert into private.jobs (kind, payload, org_id, dedupe_key, run_at, max_attempts, priority)
  values (kind, coalesce(payload, '{}'::jsonb), org_id, dedupe_key,
          coalesce(run_at, pg_catalog.now()), max_attempts, priority)
  on conflict (kind, dedupe_key) where dedupe_key is not null and not dead and locked_until is null
  do nothing
  returning id
$$;
