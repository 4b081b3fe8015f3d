-- Analytics phase 2, the replicator's progress: per destination, its slot, the position to
-- stream from (the end of the last transaction the destination confirmed it stored, or the
-- slot's consistent point right after the initial copy), whether that copy completed, and
-- how many times the destination was copied again because its slot was lost. Written only
-- after the destination confirmed; read at start, so a restart resumes exactly there.
create table private.analytics_progress (
  destination text primary key check (destination ~ '^[a-z][a-z0-9_]{0,31}$'),
  slot text not null check (length(slot) <= 63),
  lsn pg_lsn not null,
  copied boolean not null default false,
  resyncs integer not null default 0,
  committed_at timestamptz,
  updated_at timestamptz not null default now()
);
alter table private.analytics_progress enable row level security;
alter table private.analytics_progress force row level security;
grant select on private.analytics_progress to service_role;
create policy analytics_progress_service on private.analytics_progress
  for select to service_role using (true);
