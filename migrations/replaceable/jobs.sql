-- The job queue: enqueueing (in the caller's transaction, deduplicated by key).
-- The current definition, applied after the numbered migrations on every migrate.

-- private.enqueue_job (last changed in 20261128000003_jobs_dedupe_waiting.sql)
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

-- private.enqueue_classification (last changed in 20261127000001_jobs.sql)
-- A pending log is classified: inserting one, or setting a log back to pending, enqueues
-- classify_log in the same transaction. Classifying takes milliseconds and a person waits for
-- it, so it goes ahead of slow jobs such as transcriptions (priority 10).
create or replace function private.enqueue_classification() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if new.status = 'pending' and new.deleted_at is null
     and (tg_op = 'INSERT' or old.status is distinct from 'pending') then
    perform private.enqueue_job('classify_log', jsonb_build_object('log_id', new.id),
                                new.org_id, new.id::text, priority => 10::smallint);
  end if;
  return null;
end
$$;
alter function private.enqueue_classification() owner to tally_definer;
