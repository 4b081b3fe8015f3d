-- The job queue and the cron schedules: Postgres only, no extra server.
--
-- Jobs are enqueued inside the caller's transaction (an outbox: a rolled-back request enqueues
-- nothing) through private.enqueue_job, a definer function; nobody reads or writes the tables
-- directly but the workers, which run as service_role. Workers claim with FOR UPDATE SKIP
-- LOCKED and a lease (locked_until), run the job outside any transaction, then delete or
-- reschedule it.

create table private.jobs (
    id           bigint generated always as identity primary key,
    kind         text not null check (kind ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    payload      jsonb not null default '{}'::jsonb,
    org_id       uuid references public.organizations (id) on delete cascade,
    dedupe_key   text,
    priority     smallint not null default 0,
    run_at       timestamptz not null default now(),
    attempts     integer not null default 0,
    max_attempts integer not null default 5 check (max_attempts between 1 and 100),
    locked_until timestamptz,
    locked_by    text,
    dead         boolean not null default false,
    last_error   text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
-- One live job per (kind, dedupe key); a dead one does not block a new one.
create unique index jobs_dedupe_key on private.jobs (kind, dedupe_key)
    where dedupe_key is not null and not dead;
create index jobs_ready_idx on private.jobs (priority desc, run_at, id) where not dead;
create index jobs_org_idx on private.jobs (org_id, kind) where org_id is not null;
create trigger jobs_updated_at before update on private.jobs
    for each row execute function private.set_updated_at();

create table private.schedules (
    name        text primary key check (name ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    cron        text not null,
    timezone    text not null default 'UTC' check (private.is_time_zone(timezone)),
    kind        text not null,
    payload     jsonb not null default '{}'::jsonb,
    enabled     boolean not null default true,
    next_run_at timestamptz,
    last_run_at timestamptz,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create trigger schedules_updated_at before update on private.schedules
    for each row execute function private.set_updated_at();

-- Workers (service_role) own the queue; everyone else goes through enqueue_job.
alter table private.jobs enable row level security;
alter table private.jobs force row level security;
alter table private.schedules enable row level security;
alter table private.schedules force row level security;
grant select, insert, update, delete on private.jobs, private.schedules to service_role;
grant usage on sequence private.jobs_id_seq to service_role;
create policy jobs_service on private.jobs for all to service_role using (true) with check (true);
create policy schedules_service on private.schedules for all to service_role using (true) with check (true);
grant select, insert on private.jobs to tally_definer;
create policy jobs_definer on private.jobs for all to tally_definer using (true) with check (true);

-- Idle workers wake on this channel.
create or replace function private.notify_jobs() returns trigger
  language plpgsql
as $$
begin
  perform pg_notify('tally_jobs', new.kind);
  return null;
end
$$;
create trigger jobs_notify after insert on private.jobs
    for each row execute function private.notify_jobs();

-- Enqueues a job in the caller's transaction; with a dedupe key, a live job of the same kind
-- and key makes this a no-op. Returns the job's id, or null when deduplicated.
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
  on conflict (kind, dedupe_key) where dedupe_key is not null and not dead do nothing
  returning id
$$;
alter function private.enqueue_job(text, jsonb, uuid, text, timestamptz, integer, smallint)
    owner to tally_definer;
revoke execute on function private.enqueue_job(text, jsonb, uuid, text, timestamptz, integer, smallint)
    from public;
grant execute on function private.enqueue_job(text, jsonb, uuid, text, timestamptz, integer, smallint)
    to authenticated, service_role;

-- A pending log is classified: inserting one (through /functions/v1 or /rest/v1), or setting a
-- log back to pending, enqueues classify_log in the same transaction.
create or replace function private.enqueue_classification() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if new.status = 'pending' and new.deleted_at is null
     and (tg_op = 'INSERT' or old.status is distinct from 'pending') then
    perform private.enqueue_job('classify_log', jsonb_build_object('log_id', new.id),
                                new.org_id, new.id::text);
  end if;
  return null;
end
$$;
alter function private.enqueue_classification() owner to tally_definer;
create trigger time_logs_classify after insert or update of status on public.time_logs
    for each row execute function private.enqueue_classification();
